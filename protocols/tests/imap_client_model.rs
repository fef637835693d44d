//! A client model against real sessions: several sessions on one store, random deliveries,
//! APPENDs, STOREs, EXPUNGEs, MOVEs, NOOP/IDLE syncs and reselects (QRESYNC ones included),
//! with QRESYNC and UIDONLY (RFC 9586: UID forms only, `UIDFETCH` back) off and on per
//! session. Each session has a model client that knows only what
//! the lines it received say (EXISTS, EXPUNGE, VANISHED, FETCH) and asks for new messages as
//! a client does; after a final NOOP every model must hold exactly the server's UIDs, flags
//! and modseqs. Along the way the lines must be coherent: a FETCH's UID matches the model's
//! UID at that number, a `VANISHED` names only messages the client counts, a
//! `VANISHED (EARLIER)` none of them, and after a QRESYNC SELECT the client's cache, cut by
//! what VANISHED (EARLIER) named and grown by the FETCHed new messages, is exactly as long as
//! EXISTS says (a UID the server failed to name as vanished would show here).

mod imap_support;

use std::collections::{BTreeMap, BTreeSet};

use imap_support::{Client, World, tagged};
use proptest::prelude::*;
use skua_core::types::{Flags, SystemFlags};
use skua_protocols::mime::cache::build;

/// Flags as a client sees them: names, `\Recent` left out, sorted.
type FlagSet = BTreeSet<String>;

/// What one client knows of the selected INBOX.
#[derive(Debug, Default)]
struct Model {
    /// UID per message sequence number; 0 while only EXISTS told of the message.
    uids: Vec<u32>,
    /// Flags and modseq per UID, for UIDs in `uids` (and a QRESYNC cache between selects).
    known: BTreeMap<u32, (FlagSet, u64)>,
    /// QRESYNC is enabled for this session.
    qresync: bool,
    /// UIDONLY is enabled: only UID forms are sent, `UIDFETCH` comes back.
    uid_only: bool,
    /// UIDVALIDITY and HIGHESTMODSEQ of the last SELECT.
    uid_validity: u32,
    highest_at_select: u64,
}

impl Model {
    /// Applies the untagged lines of one command's answer, in order.
    fn apply(&mut self, lines: &[String]) {
        for line in lines {
            let Some(rest) = line.strip_prefix("* ") else { continue };
            if let Some(set) = rest.strip_prefix("VANISHED (EARLIER) ") {
                for uid in expand(set) {
                    assert!(!self.uids.contains(&uid), "EARLIER names counted UID {uid}: {line}");
                    self.known.remove(&uid);
                }
            } else if let Some(set) = rest.strip_prefix("VANISHED ") {
                assert!(self.qresync || self.uid_only, "VANISHED unasked for: {line}");
                for uid in expand(set) {
                    let at = self.uids.iter().position(|&u| u == uid).unwrap_or_else(|| {
                        // A message only EXISTS told of (in IDLE the client cannot FETCH):
                        // its UID is above every known one, and the messages still unnamed
                        // are the last ones, alike until fetched: drop one of them.
                        let highest = self.uids.iter().copied().max().unwrap_or(0);
                        let last = self.uids.iter().rposition(|&u| u == 0);
                        assert!(uid > highest, "VANISHED names unknown {uid}: {line}");
                        last.unwrap_or_else(|| panic!("VANISHED names unknown {uid}: {line}"))
                    });
                    self.uids.remove(at);
                    self.known.remove(&uid);
                }
            } else if let Some(text) = rest.strip_prefix("OK [UIDVALIDITY ") {
                self.uid_validity = number_prefix(text) as u32;
            } else if let Some(text) = rest.strip_prefix("OK [HIGHESTMODSEQ ") {
                self.highest_at_select = self.highest_at_select.max(number_prefix(text));
            } else if let Some((n, what)) = rest.split_once(' ') {
                let Ok(n) = n.parse::<usize>() else { continue };
                if what == "EXISTS" {
                    assert!(n >= self.uids.len(), "EXISTS went down: {line}");
                    self.uids.resize(n, 0);
                } else if what == "EXPUNGE" {
                    assert!(!self.qresync && !self.uid_only, "EXPUNGE, not VANISHED: {line}");
                    let uid = self.uids.remove(n - 1);
                    self.known.remove(&uid);
                } else if let Some(items) = what.strip_prefix("FETCH (") {
                    assert!(!self.uid_only, "FETCH under UIDONLY: {line}");
                    self.fetch(n, items.strip_suffix(')').unwrap_or(items), line);
                } else if let Some(items) = what.strip_prefix("UIDFETCH (") {
                    assert!(self.uid_only, "UIDFETCH without UIDONLY: {line}");
                    let uid = u32::try_from(n).unwrap();
                    self.uidfetch(uid, items.strip_suffix(')').unwrap_or(items), line);
                }
            }
        }
    }

    /// One `* uid UIDFETCH (...)`: a known message, or the first one only EXISTS told of.
    fn uidfetch(&mut self, uid: u32, items: &str, line: &str) {
        assert!(item(items, "UID ").is_none() || items == format!("UID {uid}"), "{line}");
        if !self.uids.contains(&uid) {
            let highest = self.uids.iter().copied().max().unwrap_or(0);
            assert!(uid > highest, "UIDFETCH of an unknown, older UID: {line}");
            let slot = self.uids.iter().position(|&u| u == 0);
            let slot = slot.unwrap_or_else(|| panic!("UIDFETCH of a message not counted: {line}"));
            self.uids[slot] = uid;
        }
        let entry = self.known.entry(uid).or_default();
        if let Some(flags) = flags_of(items) {
            entry.0 = flags;
        }
        if let Some(modseq) = item(items, "MODSEQ (") {
            entry.1 = modseq.parse().unwrap();
        }
    }

    /// One `* n FETCH (...)`.
    fn fetch(&mut self, msn: usize, items: &str, line: &str) {
        let uid = item(items, "UID ").map(|v| v.parse::<u32>().unwrap());
        let slot = &mut self.uids[msn - 1];
        if let Some(uid) = uid {
            assert!(*slot == 0 || *slot == uid, "FETCH {msn} names UID {uid}, not {slot}: {line}");
            *slot = uid;
        }
        let uid = *slot;
        assert_ne!(uid, 0, "a FETCH of an unknown message without UID: {line}");
        let entry = self.known.entry(uid).or_default();
        if let Some(flags) = flags_of(items) {
            entry.0 = flags;
        }
        if let Some(modseq) = item(items, "MODSEQ (") {
            entry.1 = modseq.parse().unwrap();
        }
    }
}

/// The value after `key` in a FETCH item list, up to the next space.
fn item<'a>(items: &'a str, key: &str) -> Option<&'a str> {
    let at = items.find(key)?;
    let rest = &items[at + key.len()..];
    Some(rest.split(' ').next().unwrap_or(rest).trim_end_matches(')'))
}

/// The FLAGS of a FETCH item list.
fn flags_of(items: &str) -> Option<FlagSet> {
    let at = items.find("FLAGS (")?;
    let rest = &items[at + 7..];
    let end = rest.find(')').unwrap();
    Some(
        rest[..end]
            .split(' ')
            .filter(|f| !f.is_empty() && *f != "\\Recent")
            .map(String::from)
            .collect(),
    )
}

fn number_prefix(text: &str) -> u64 {
    text.split(']').next().unwrap().parse().unwrap()
}

/// The numbers of a UID set with no `*`.
fn expand(set: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in set.split(',') {
        let (low, high) = part.split_once(':').unwrap_or((part, part));
        let (low, high): (u32, u32) = (low.parse().unwrap(), high.parse().unwrap());
        out.extend(low.min(high)..=low.max(high));
    }
    out
}

fn set_of(uids: &[u32]) -> String {
    uids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// One session and its model.
struct Session {
    client: Client,
    model: Model,
    tags: u32,
}

impl Session {
    /// Runs a command, applies what came back, then fetches messages only EXISTS told of.
    fn run(&mut self, world: &mut World, command: &str) -> String {
        self.tags += 1;
        let tag = format!("t{}", self.tags);
        let lines = self.client.command(world, &format!("{tag} {command}"));
        let done = tagged(&lines, &tag).to_string();
        self.model.apply(&lines[..lines.len() - 1]);
        self.learn_new(world);
        done
    }

    /// `FETCH a:b (UID FLAGS MODSEQ)` for the messages known only by number (by number, so no
    /// expunge moves them meanwhile).
    /// Under UIDONLY: `UID FETCH n:* (FLAGS MODSEQ)` from the UID after the largest known.
    fn learn_new(&mut self, world: &mut World) {
        for _ in 0..4 {
            let Some(first) = self.model.uids.iter().position(|&u| u == 0) else {
                return;
            };
            self.tags += 1;
            let tag = format!("t{}", self.tags);
            let command = if self.model.uid_only {
                let next = self.model.uids.iter().copied().max().unwrap_or(0) + 1;
                format!("{tag} UID FETCH {next}:* (FLAGS MODSEQ)")
            } else {
                format!("{tag} FETCH {}:* (UID FLAGS MODSEQ)", first + 1)
            };
            let lines = self.client.command(world, &command);
            tagged(&lines, &format!("{tag} OK"));
            self.model.apply(&lines[..lines.len() - 1]);
        }
        assert!(!self.model.uids.contains(&0), "new messages never named");
    }

    /// `STORE` of one message by number, or by UID under UIDONLY.
    fn store(&mut self, world: &mut World, (msn, uid): (usize, u32), what: &str) {
        if self.model.uid_only {
            self.run(world, &format!("UID STORE {uid} {what}"));
        } else {
            self.run(world, &format!("STORE {msn} {what}"));
        }
    }

    /// SELECT INBOX, with QRESYNC and the model's cache when `resync` (and QRESYNC is on).
    fn select(&mut self, world: &mut World, resync: bool, known_uids: bool) {
        let cache: Vec<u32> = self.model.known.keys().copied().collect();
        let command = if resync && self.model.qresync && self.model.uid_validity != 0 {
            let mut params =
                format!("{} {}", self.model.uid_validity, self.model.highest_at_select);
            if known_uids && !cache.is_empty() {
                params.push(' ');
                params.push_str(&set_of(&cache));
            }
            format!("SELECT INBOX (QRESYNC ({params}))")
        } else {
            self.model.known.clear();
            "SELECT INBOX".to_string()
        };
        self.tags += 1;
        let tag = format!("t{}", self.tags);
        let lines = self.client.command(world, &format!("{tag} {command}"));
        tagged(&lines, &format!("{tag} OK"));
        let exists = lines
            .iter()
            .find_map(|l| l.strip_prefix("* ").and_then(|r| r.strip_suffix(" EXISTS")))
            .map(|n| n.parse::<usize>().unwrap())
            .expect("EXISTS");
        // The new selection's numbers: the cache (what survives of it) and new messages.
        self.model.uids.clear();
        self.model.highest_at_select = 0;
        let untagged: Vec<String> =
            lines[..lines.len() - 1].iter().filter(|l| !l.ends_with(" EXISTS")).cloned().collect();
        // VANISHED (EARLIER) first: it cuts the cache before numbers are given.
        let (earlier, rest): (Vec<String>, Vec<String>) =
            untagged.into_iter().partition(|l| l.starts_with("* VANISHED (EARLIER) "));
        self.model.apply(&earlier);
        if command.contains("QRESYNC") {
            // Every cached UID left is a message, and so is every UID a FETCH names.
            let mut uids: BTreeSet<u32> = self.model.known.keys().copied().collect();
            for line in &rest {
                if let Some(uid) = line.find("FETCH (").and_then(|at| item(&line[at..], "UID ")) {
                    uids.insert(uid.parse().unwrap());
                }
                if let Some((uid, _)) =
                    line.strip_prefix("* ").and_then(|r| r.split_once(" UIDFETCH "))
                {
                    uids.insert(uid.parse().unwrap());
                }
            }
            assert_eq!(uids.len(), exists, "QRESYNC left the client counting wrong: {lines:#?}");
            self.model.uids = uids.into_iter().collect();
            self.model.apply(&rest);
        } else {
            self.model.apply(&rest);
            self.model.uids = vec![0; exists];
            self.learn_new(world);
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// A delivery straight into the store (as LMTP would).
    Deliver,
    /// APPEND by a session.
    Append(usize),
    /// STORE on one message number: add (or remove) one flag.
    Store {
        session: usize,
        pick: usize,
        flag: usize,
        add: bool,
    },
    /// \Deleted on a message, then EXPUNGE (or UID EXPUNGE of it).
    Expunge {
        session: usize,
        pick: usize,
        by_uid: bool,
    },
    /// UID MOVE of one message to Archive.
    Move {
        session: usize,
        pick: usize,
    },
    /// FETCH by number (expunges must wait).
    FetchBySeq(usize),
    Noop(usize),
    /// IDLE while a delivery and another session's change happen.
    Idle {
        session: usize,
        other: usize,
        pick: usize,
    },
    /// SELECT again, with QRESYNC where enabled; with or without known-uids.
    Reselect {
        session: usize,
        known_uids: bool,
    },
}

const SESSIONS: usize = 3;
const FLAGS: [&str; 4] = ["\\Seen", "\\Flagged", "\\Answered", "$Work"];

fn op() -> impl Strategy<Value = Op> {
    let s = 0..SESSIONS;
    prop_oneof![
        2 => Just(Op::Deliver),
        1 => s.clone().prop_map(Op::Append),
        3 => (s.clone(), any::<usize>(), 0..FLAGS.len(), any::<bool>())
            .prop_map(|(session, pick, flag, add)| Op::Store { session, pick, flag, add }),
        2 => (s.clone(), any::<usize>(), any::<bool>())
            .prop_map(|(session, pick, by_uid)| Op::Expunge { session, pick, by_uid }),
        1 => (s.clone(), any::<usize>()).prop_map(|(session, pick)| Op::Move { session, pick }),
        1 => s.clone().prop_map(Op::FetchBySeq),
        1 => s.clone().prop_map(Op::Noop),
        1 => (s.clone(), s.clone(), any::<usize>())
            .prop_map(|(session, other, pick)| Op::Idle { session, other, pick }),
        2 => (s, any::<bool>()).prop_map(|(session, known_uids)| Op::Reselect { session, known_uids }),
    ]
}

fn deliver(world: &mut World, n: u32) {
    let raw = format!("Subject: m{n}\r\n\r\nbody {n}\r\n").into_bytes();
    let inbox = world.store.mailbox_id("INBOX").unwrap();
    world.store.append(inbox, &raw, &build(&raw), Flags::default(), None).expect("deliver");
}

/// A message number of the session's model, or `None` when it counts none.
fn pick(session: &Session, pick: usize) -> Option<(usize, u32)> {
    let len = session.model.uids.len();
    (len > 0).then(|| (pick % len + 1, session.model.uids[pick % len]))
}

fn apply(world: &mut World, sessions: &mut [Session], op: &Op, counter: &mut u32) {
    match *op {
        Op::Deliver => {
            *counter += 1;
            deliver(world, *counter);
        }
        Op::Append(s) => {
            *counter += 1;
            let body = format!("Subject: a{counter}\r\n\r\nx\r\n");
            let command = format!("APPEND INBOX {{{}+}}\r\n{body}", body.len());
            sessions[s].run(world, &command);
        }
        Op::Store { session, pick: p, flag, add } => {
            if let Some(target) = pick(&sessions[session], p) {
                let sign = if add { '+' } else { '-' };
                sessions[session].store(world, target, &format!("{sign}FLAGS ({})", FLAGS[flag]));
            }
        }
        Op::Expunge { session, pick: p, by_uid } => {
            if let Some(target) = pick(&sessions[session], p) {
                let uid = target.1;
                sessions[session].store(world, target, "+FLAGS (\\Deleted)");
                if by_uid {
                    sessions[session].run(world, &format!("UID EXPUNGE {uid}"));
                } else {
                    sessions[session].run(world, "EXPUNGE");
                }
            }
        }
        Op::Move { session, pick: p } => {
            if let Some((_, uid)) = pick(&sessions[session], p) {
                sessions[session].run(world, &format!("UID MOVE {uid} Archive"));
            }
        }
        Op::FetchBySeq(s) => {
            if !sessions[s].model.uids.is_empty() {
                if sessions[s].model.uid_only {
                    sessions[s].run(world, "UID FETCH 1:* (FLAGS MODSEQ)");
                } else {
                    sessions[s].run(world, "FETCH 1:* (FLAGS MODSEQ)");
                }
            }
        }
        Op::Noop(s) => {
            sessions[s].run(world, "NOOP");
        }
        Op::Idle { session, other, pick: p } => {
            let tag = "idle";
            let lines = sessions[session].client.command(world, &format!("{tag} IDLE"));
            assert_eq!(lines.first().map(String::as_str), Some("+ idling"), "{lines:?}");
            sessions[session].model.apply(&lines[1..]);
            *counter += 1;
            deliver(world, *counter);
            if other != session
                && let Some(target) = pick(&sessions[other], p)
            {
                sessions[other].store(world, target, "+FLAGS (\\Deleted)");
                sessions[other].run(world, "EXPUNGE");
            }
            sessions[session].client.run(world);
            let pushed = sessions[session].client.drain();
            sessions[session].model.apply(&pushed);
            let lines = sessions[session].client.command(world, "DONE");
            tagged(&lines, "idle OK");
            sessions[session].model.apply(&lines[..lines.len() - 1]);
            sessions[session].learn_new(world);
        }
        Op::Reselect { session, known_uids } => {
            sessions[session].select(world, true, known_uids);
        }
    }
}

/// The server's INBOX as a client should know it: UID → (flags, modseq).
fn server_state(world: &World) -> BTreeMap<u32, (FlagSet, u64)> {
    let inbox = world.store.mailbox_id("INBOX").unwrap();
    let keywords = world.store.keywords(inbox).unwrap();
    let names = [
        (SystemFlags::SEEN, "\\Seen"),
        (SystemFlags::FLAGGED, "\\Flagged"),
        (SystemFlags::ANSWERED, "\\Answered"),
        (SystemFlags::DELETED, "\\Deleted"),
        (SystemFlags::DRAFT, "\\Draft"),
    ];
    let mut state = BTreeMap::new();
    for message in world.store.messages(inbox).unwrap() {
        let mut flags: FlagSet = names
            .iter()
            .filter(|(bit, _)| message.flags.system.contains(*bit))
            .map(|(_, name)| (*name).to_string())
            .collect();
        for (bit, name) in keywords.iter().enumerate() {
            if message.flags.keywords.0 & (1 << bit) != 0 {
                flags.insert(name.clone());
            }
        }
        state.insert(message.uid.get(), (flags, message.modseq.0));
    }
    state
}

/// How a session's client runs: QRESYNC on or off, UIDONLY on or off.
type Mode = (bool, bool);

fn check_run(modes: [Mode; SESSIONS], prefill: u32, ops: &[Op]) {
    let mut world = World::new();
    let mut counter = 0;
    for _ in 0..prefill {
        counter += 1;
        deliver(&mut world, counter);
    }
    let mut sessions: Vec<Session> = Vec::new();
    for &(qresync, uid_only) in &modes {
        let mut client = Client::new();
        client.login(&mut world);
        let mut session = Session { client, model: Model::default(), tags: 0 };
        let mut enable = if qresync { "ENABLE QRESYNC" } else { "ENABLE CONDSTORE" }.to_string();
        if uid_only {
            enable.push_str(" UIDONLY");
        }
        session.run(&mut world, &enable);
        session.model.qresync = qresync;
        session.model.uid_only = uid_only;
        session.select(&mut world, false, false);
        sessions.push(session);
    }
    sessions[0].run(&mut world, "CREATE Archive");
    for op in ops {
        apply(&mut world, &mut sessions, op, &mut counter);
    }
    let expected = server_state(&world);
    for (i, session) in sessions.iter_mut().enumerate() {
        session.run(&mut world, "NOOP");
        let uids: Vec<u32> = expected.keys().copied().collect();
        assert_eq!(session.model.uids, uids, "session {i}'s UIDs");
        for uid in &uids {
            assert_eq!(session.model.known.get(uid), expected.get(uid), "session {i}, UID {uid}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn clients_end_with_the_servers_state(
        modes in proptest::array::uniform3((any::<bool>(), any::<bool>())),
        prefill in 0u32..6,
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        check_run(modes, prefill, &ops);
    }
}

#[test]
fn every_session_with_qresync_and_uidonly_and_without() {
    let ops = [
        Op::Deliver,
        Op::Store { session: 0, pick: 0, flag: 0, add: true },
        Op::Expunge { session: 1, pick: 1, by_uid: false },
        Op::FetchBySeq(2),
        Op::Reselect { session: 0, known_uids: true },
        Op::Move { session: 2, pick: 0 },
        Op::Idle { session: 0, other: 1, pick: 0 },
        Op::Reselect { session: 2, known_uids: false },
        Op::Expunge { session: 0, pick: 0, by_uid: true },
        Op::Reselect { session: 0, known_uids: false },
    ];
    check_run([(true, false), (false, false), (true, true)], 4, &ops);
    check_run([(false, true), (true, false), (false, false)], 4, &ops);
}

/// RFC 7162 §3.2.5.2's example, adapted to a real store: after the usual SELECT responses,
/// `VANISHED (EARLIER)` (cut to known-uids), then FETCH for each message changed or added
/// since the given modseq, then the tagged OK; a UIDVALIDITY that does not match gives a plain
/// SELECT.
#[test]
fn qresync_select_answers_in_the_rfc_order() {
    let mut world = World::new();
    for n in 1..=6 {
        deliver(&mut world, n);
    }
    let mut client = Client::new();
    client.login(&mut world);
    tagged(&client.command(&mut world, "e ENABLE QRESYNC"), "e OK");
    let lines = client.command(&mut world, "s1 SELECT INBOX");
    let mut model = Model::default();
    model.apply(&lines);
    let (validity, since) = (model.uid_validity, model.highest_at_select);
    tagged(&client.command(&mut world, "st STORE 2 +FLAGS.SILENT (\\Seen)"), "st OK");
    tagged(&client.command(&mut world, "d STORE 3:5 +FLAGS.SILENT (\\Deleted)"), "d OK");
    let lines = client.command(&mut world, "x UID EXPUNGE 3:4");
    assert_eq!(lines[0], "* VANISHED 3:4");
    deliver(&mut world, 7);
    let command = format!("s2 SELECT INBOX (QRESYNC ({validity} {since} 1:3,5:7))");
    let lines = client.command(&mut world, &command);
    let tail: Vec<&str> =
        lines.iter().map(String::as_str).skip_while(|l| !l.contains("VANISHED")).collect();
    let modseq = |uid: u32| {
        world
            .store
            .message(
                world.store.mailbox_id("INBOX").unwrap(),
                skua_core::types::Uid::new(uid).unwrap(),
            )
            .unwrap()
            .unwrap()
            .modseq
            .0
    };
    assert_eq!(
        tail,
        vec![
            "* VANISHED (EARLIER) 3".to_string(),
            format!("* 2 FETCH (FLAGS (\\Seen) MODSEQ ({}) UID 2)", modseq(2)),
            format!("* 3 FETCH (FLAGS (\\Deleted) MODSEQ ({}) UID 5)", modseq(5)),
            format!("* 5 FETCH (FLAGS (\\Recent) MODSEQ ({}) UID 7)", modseq(7)),
            "s2 OK [READ-WRITE] SELECT completed".to_string(),
        ],
        "{lines:#?}"
    );
    assert_eq!(lines[0], "* OK [CLOSED] Previous mailbox closed");
    // seq-match-data (the RFC's third example) is only a hint: the same answer.
    let command = format!("s4 SELECT INBOX (QRESYNC ({validity} {since} 1:3,5:7 (1,2 1,2)))");
    let again = client.command(&mut world, &command);
    let again_tail: Vec<&str> =
        again.iter().map(String::as_str).skip_while(|l| !l.contains("VANISHED")).collect();
    assert_eq!(again_tail.len(), tail.len(), "{again:#?}");
    // (UID 7 is no longer \Recent: the previous SELECT claimed it.)
    assert_eq!(again_tail[..3], tail[..3]);
    // Another UIDVALIDITY: nothing but the plain SELECT.
    let command = format!("s3 EXAMINE INBOX (QRESYNC ({} {since}))", validity + 1);
    let lines = client.command(&mut world, &command);
    assert!(!lines.iter().any(|l| l.contains("VANISHED") || l.contains("FETCH")), "{lines:#?}");
    tagged(&lines, "s3 OK [READ-ONLY]");
}

/// A QRESYNC SELECT that owes many FETCHes answers them in slices (a write per slice, as for a
/// long FETCH) and still sends each exactly once, in order, before the tagged OK.
#[test]
fn a_long_qresync_select_is_resumable() {
    const N: u32 = 3000;
    let mut world = World::new();
    for n in 1..=N {
        deliver(&mut world, n);
    }
    let mut client = Client::new();
    client.login(&mut world);
    tagged(&client.command(&mut world, "e ENABLE QRESYNC"), "e OK");
    let mut model = Model::default();
    model.apply(&client.command(&mut world, "s1 SELECT INBOX"));
    let validity = model.uid_validity;
    tagged(&client.command(&mut world, "u UNSELECT"), "u OK");
    let before = client.writes;
    let lines = client.command(&mut world, &format!("s2 SELECT INBOX (QRESYNC ({validity} 1))"));
    // One write per slice: 64 changed messages make a slice.
    let writes = client.writes - before;
    assert!(writes > 40, "{writes} writes");
    let uids: Vec<u32> = lines
        .iter()
        .filter(|l| l.contains(" FETCH "))
        .map(|l| item(l, "UID ").unwrap().parse().unwrap())
        .collect();
    assert_eq!(uids, (1..=N).collect::<Vec<_>>());
    tagged(&lines, "s2 OK [READ-WRITE] SELECT completed");
}
