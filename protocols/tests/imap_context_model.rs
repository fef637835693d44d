//! Kept searches (RFC 5267 §4.3, CONTEXT=SEARCH and CONTEXT=SORT) against real sessions: one
//! session keeps `UID SEARCH RETURN (UPDATE) UNSEEN` and `UID SORT RETURN (UPDATE) (SUBJECT)
//! UTF-8 NOT FLAGGED` live while random deliveries, STOREs (its own and another session's) and
//! EXPUNGEs happen. A model client applies only the ADDTO / REMOVEFROM lines it receives, in
//! order, at their positions; after a NOOP its lists must equal a fresh `UID SEARCH` and a fresh
//! `UID SORT` of the same keys, order included.

mod imap_support;

use imap_support::{Client, World, tagged};
use proptest::prelude::*;
use skua_core::types::Flags;
use skua_protocols::mime::cache::build;

/// What the watching client knows of its two contexts.
#[derive(Debug, Default)]
struct Contexts {
    /// `k1`: UIDs, ascending (SEARCH contexts are in mailbox order).
    search: Vec<u32>,
    /// `k2`: UIDs in sort order.
    sort: Vec<u32>,
}

impl Contexts {
    /// Applies every ESEARCH update among `lines`, in order.
    fn apply(&mut self, lines: &[String]) {
        for line in lines {
            let list = if line.starts_with("* ESEARCH (TAG \"k1\") UID ") {
                &mut self.search
            } else if line.starts_with("* ESEARCH (TAG \"k2\") UID ") {
                &mut self.sort
            } else {
                continue;
            };
            let rest = &line["* ESEARCH (TAG \"k1\") UID ".len()..];
            let mut rest = rest;
            while !rest.is_empty() {
                let (name, tail) = rest.split_once(" (").expect("item name");
                let (payload, tail) = tail.split_once(')').expect("item payload");
                rest = tail.trim_start();
                let words: Vec<&str> = payload.split(' ').collect();
                assert!(words.len().is_multiple_of(2), "pairs: {line}");
                for pair in words.chunks(2) {
                    let position: usize = pair[0].parse().expect("position");
                    let uids = expand(pair[1]);
                    match name {
                        "ADDTO" if position == 0 => {
                            for uid in uids {
                                assert!(!list.contains(&uid), "added twice {uid}: {line}");
                                let at = list.partition_point(|&u| u < uid);
                                list.insert(at, uid);
                            }
                        }
                        "ADDTO" => {
                            for (i, uid) in uids.into_iter().enumerate() {
                                assert!(!list.contains(&uid), "added twice {uid}: {line}");
                                list.insert(position - 1 + i, uid);
                            }
                        }
                        "REMOVEFROM" if position == 0 => {
                            for uid in uids {
                                let at = list.iter().position(|&u| u == uid);
                                list.remove(at.unwrap_or_else(|| panic!("not there: {line}")));
                            }
                        }
                        "REMOVEFROM" => {
                            for uid in uids {
                                assert_eq!(list.get(position - 1), Some(&uid), "{line}");
                                list.remove(position - 1);
                            }
                        }
                        other => panic!("unexpected item {other}: {line}"),
                    }
                }
            }
        }
    }
}

/// `1:3,7` as numbers.
fn expand(set: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in set.split(',') {
        match part.split_once(':') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().unwrap(), b.parse().unwrap());
                out.extend(a.min(b)..=a.max(b));
            }
            None => out.push(part.parse().unwrap()),
        }
    }
    out
}

#[derive(Clone, Debug)]
enum Op {
    /// A delivery straight into the store, with one of a few subjects (ties in the order).
    Deliver(u8),
    /// A STORE by the watching session (`true`) or the other one, on the n-th live UID.
    Store { own: bool, pick: usize, add: bool, flag: bool },
    /// The other session expunges the n-th live UID.
    Expunge(usize),
    /// The watching session syncs.
    Noop,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..4).prop_map(Op::Deliver),
        4 => (any::<bool>(), any::<usize>(), any::<bool>(), any::<bool>())
            .prop_map(|(own, pick, add, flag)| Op::Store { own, pick, add, flag }),
        2 => any::<usize>().prop_map(Op::Expunge),
        2 => Just(Op::Noop),
    ]
}

/// The live UIDs of INBOX, ascending.
fn live(world: &World) -> Vec<u32> {
    let inbox = world.store.mailbox_id("INBOX").unwrap();
    world.store.messages(inbox).unwrap().iter().map(|m| m.uid.get()).collect()
}

fn selected(world: &mut World) -> Client {
    let mut client = Client::new();
    client.login(world);
    tagged(&client.command(world, "e1 ENABLE IMAP4rev2"), "e1 OK");
    tagged(&client.command(world, "s1 SELECT INBOX"), "s1 OK");
    client
}

/// The numbers of the one `* ESEARCH ... ALL set` or `* SORT ...` line among `lines`.
fn result_of(lines: &[String], prefix: &str) -> Vec<u32> {
    let line = lines.iter().find(|l| l.starts_with(prefix)).expect("result line");
    let rest = line[prefix.len()..].trim();
    if rest.is_empty() {
        return Vec::new();
    }
    let rest = rest.strip_prefix("ALL ").unwrap_or(rest);
    if prefix.starts_with("* SORT") {
        return rest.split(' ').map(|n| n.parse().unwrap()).collect();
    }
    expand(rest)
}

fn run(ops: &[Op], initial: u8) {
    let mut world = World::new();
    let mut counter = 0u32;
    let deliver = |world: &mut World, counter: &mut u32, subject: u8| {
        *counter += 1;
        let raw = format!("Subject: s{subject}\r\n\r\nbody {counter}\r\n").into_bytes();
        let inbox = world.store.mailbox_id("INBOX").unwrap();
        world.store.append(inbox, &raw, &build(&raw), Flags::default(), None).expect("deliver");
    };
    for i in 0..initial {
        deliver(&mut world, &mut counter, i % 3);
    }
    let mut watcher = selected(&mut world);
    let mut other = selected(&mut world);
    let mut model = Contexts::default();
    let lines = watcher.command(&mut world, "k1 UID SEARCH RETURN (UPDATE) UNSEEN");
    tagged(&lines, "k1 OK");
    model.search = result_of(&lines, "* ESEARCH (TAG \"k1\") UID");
    let lines =
        watcher.command(&mut world, "k2 UID SORT RETURN (UPDATE) (SUBJECT) UTF-8 NOT FLAGGED");
    tagged(&lines, "k2 OK");
    model.sort = result_of(&lines, "* ESEARCH (TAG \"k2\") UID");
    let mut tag = 0;
    for op in ops {
        tag += 1;
        match *op {
            Op::Deliver(subject) => deliver(&mut world, &mut counter, subject),
            Op::Store { own, pick, add, flag } => {
                let uids = live(&world);
                if uids.is_empty() {
                    continue;
                }
                let uid = uids[pick % uids.len()];
                let sign = if add { '+' } else { '-' };
                let name = if flag { "\\Flagged" } else { "\\Seen" };
                let command = format!("t{tag} UID STORE {uid} {sign}FLAGS ({name})");
                let client = if own { &mut watcher } else { &mut other };
                let lines = client.command(&mut world, &command);
                tagged(&lines, &format!("t{tag} OK"));
                if own {
                    model.apply(&lines);
                }
            }
            Op::Expunge(pick) => {
                let uids = live(&world);
                if uids.is_empty() {
                    continue;
                }
                let uid = uids[pick % uids.len()];
                let command = format!("x{tag} UID STORE {uid} +FLAGS.SILENT (\\Deleted)");
                tagged(&other.command(&mut world, &command), &format!("x{tag} OK"));
                let command = format!("y{tag} UID EXPUNGE {uid}");
                tagged(&other.command(&mut world, &command), &format!("y{tag} OK"));
            }
            Op::Noop => {
                let lines = watcher.command(&mut world, &format!("n{tag} NOOP"));
                model.apply(&lines);
            }
        }
        world.flush();
    }
    let lines = watcher.command(&mut world, "z1 NOOP");
    model.apply(&lines);
    let fresh = watcher.command(&mut world, "z2 UID SEARCH UNSEEN");
    model.apply(&fresh);
    assert_eq!(model.search, result_of(&fresh, "* ESEARCH (TAG \"z2\") UID"), "SEARCH context");
    let fresh = watcher.command(&mut world, "z3 UID SORT (SUBJECT) UTF-8 NOT FLAGGED");
    model.apply(&fresh);
    assert_eq!(model.sort, result_of(&fresh, "* SORT"), "SORT context");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn kept_contexts_equal_a_fresh_search(
        initial in 0u8..6,
        ops in proptest::collection::vec(op(), 0..40),
    ) {
        run(&ops, initial);
    }
}

/// A fixed run through each kind of change, so a failure shows without shrinking.
#[test]
fn each_kind_of_change_reaches_the_contexts() {
    let ops = [
        Op::Deliver(2),
        Op::Noop,
        Op::Store { own: true, pick: 0, add: true, flag: false },
        Op::Store { own: false, pick: 1, add: true, flag: true },
        Op::Deliver(0),
        Op::Expunge(0),
        Op::Store { own: false, pick: 0, add: false, flag: true },
        Op::Noop,
    ];
    run(&ops, 4);
}
