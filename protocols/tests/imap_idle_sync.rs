//! Selected sessions that learn of another session's random appends, copies, flag changes and
//! expunges (in IDLE, by NOOP, or by FETCH that must defer expunges) must end, after a final
//! NOOP, with exactly the messages and flags a fresh SELECT shows. Appends alone take the
//! sessions' append-only sync, other changes the store's modseq journal (the full comparison
//! only when the journal does not reach back far enough); all must agree with it. And the
//! work another session's STORE or EXPUNGE costs each selected session is the change, not the
//! mailbox.

mod imap_support;

use imap_support::{Client, World, tagged};
use proptest::prelude::*;
use skua_core::types::Flags;

#[derive(Clone, Debug)]
enum Op {
    Append,
    CopyIn,
    Flag(u32, &'static str),
    Expunge(u32),
    /// The observers look (the IDLE one is woken, the others send NOOP / FETCH).
    Look,
}

fn op() -> impl Strategy<Value = Op> {
    let flags = prop_oneof![Just("\\Seen"), Just("\\Flagged"), Just("$Junk"), Just("kw1")];
    prop_oneof![
        4 => Just(Op::Append),
        1 => Just(Op::CopyIn),
        2 => (1u32..30, flags).prop_map(|(n, f)| Op::Flag(n, f)),
        1 => (1u32..30).prop_map(Op::Expunge),
        4 => Just(Op::Look),
    ]
}

fn client(world: &mut World, select: &str) -> Client {
    let mut client = Client::new();
    client.login(world);
    tagged(&client.command(world, &format!("s {select}")), "s OK");
    client
}

fn append(writer: &mut Client, world: &mut World) {
    let raw = "Subject: x\r\n\r\nbody\r\n";
    let lines = writer.command(world, &format!("a APPEND INBOX {{{}+}}\r\n{raw}", raw.len()));
    tagged(&lines, "a OK");
}

/// What a client knows, as `FETCH 1:* (UID FLAGS)` tells it (untagged lines, sorted by MSN).
fn state(client: &mut Client, world: &mut World) -> Vec<String> {
    let lines = client.command(world, "z FETCH 1:* (UID FLAGS)");
    tagged(&lines, "z OK");
    lines.into_iter().filter(|l| l.contains(" FETCH ")).collect()
}

fn run(ops: &[Op]) {
    let mut world = World::new();
    let mut writer = client(&mut world, "SELECT INBOX");
    writer.command(&mut world, "c CREATE Other");
    for _ in 0..3 {
        append(&mut writer, &mut world);
    }
    let raw = "Subject: y\r\n\r\nother\r\n";
    writer.command(&mut world, &format!("a APPEND Other {{{}+}}\r\n{raw}", raw.len()));
    let mut idler = client(&mut world, "EXAMINE INBOX");
    let mut noop = client(&mut world, "SELECT INBOX");
    let mut fetcher = client(&mut world, "SELECT INBOX");
    idler.command(&mut world, "i IDLE");
    for op in ops {
        match op {
            Op::Append => append(&mut writer, &mut world),
            Op::CopyIn => {
                writer.command(&mut world, "k SELECT Other");
                writer.command(&mut world, "k COPY 1 INBOX");
                writer.command(&mut world, "k SELECT INBOX");
            }
            Op::Flag(n, flag) => {
                writer.command(&mut world, &format!("f UID STORE {n} +FLAGS ({flag})"));
            }
            Op::Expunge(n) => {
                writer.command(&mut world, &format!("e UID STORE {n} +FLAGS (\\Deleted)"));
                writer.command(&mut world, &format!("e UID EXPUNGE {n}"));
            }
            Op::Look => {
                idler.run(&mut world);
                noop.command(&mut world, "n NOOP");
                // By sequence number: expunges wait.
                fetcher.command(&mut world, "g FETCH 1 (FLAGS)");
            }
        }
    }
    idler.command(&mut world, "DONE");
    let mut fresh = client(&mut world, "EXAMINE INBOX");
    let expected = state(&mut fresh, &mut world);
    for observer in [&mut idler, &mut noop, &mut fetcher] {
        observer.command(&mut world, "n NOOP");
        assert_eq!(state(observer, &mut world), expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn observers_end_where_a_fresh_select_starts(ops in proptest::collection::vec(op(), 1..30)) {
        run(&ops);
    }
}

#[test]
fn idlers_see_each_delivery_once() {
    let mut world = World::new();
    let mut writer = client(&mut world, "SELECT INBOX");
    let mut idler = client(&mut world, "EXAMINE INBOX");
    idler.command(&mut world, "i IDLE");
    for n in 1..=5 {
        append(&mut writer, &mut world);
        idler.run(&mut world);
        // The writer was told first (its APPEND's reply): nothing is the idler's \Recent.
        assert_eq!(idler.drain(), [format!("* {n} EXISTS"), "* 0 RECENT".to_owned()]);
    }
    writer.command(&mut world, "f UID STORE 2 +FLAGS (\\Seen)");
    idler.run(&mut world);
    assert_eq!(idler.drain(), ["* 2 FETCH (FLAGS (\\Seen) UID 2)"]);
    append(&mut writer, &mut world);
    idler.run(&mut world);
    assert_eq!(idler.drain(), ["* 6 EXISTS", "* 0 RECENT"]);
}

/// Issue 13: on a big mailbox selected by eight sessions (four in IDLE, four sending NOOP),
/// one session's STORE and EXPUNGE cost each of the others the changed messages, not the
/// mailbox: counted as message records the store hands out while they learn of it.
#[test]
fn a_change_costs_other_sessions_the_change_not_the_mailbox() {
    const MESSAGES: usize = 3000;
    let mut world = World::new();
    let inbox = world.store.mailbox_id("INBOX").expect("INBOX");
    for _ in 0..MESSAGES {
        let raw = b"Subject: x\r\n\r\nbody\r\n";
        world.store.append(inbox, raw, b"", Flags::default(), None).expect("append");
    }
    world.flush();
    let mut writer = client(&mut world, "SELECT INBOX");
    let mut observers: Vec<Client> = (0..8).map(|_| client(&mut world, "SELECT INBOX")).collect();
    for idler in &mut observers[..4] {
        idler.command(&mut world, "i IDLE");
        assert!(idler.idle);
    }
    let look = |world: &mut World, observers: &mut [Client]| {
        let before = world.store.metas_handed_out();
        let mut seen = Vec::new();
        for (i, observer) in observers.iter_mut().enumerate() {
            if i < 4 {
                observer.run(world);
                seen.push(observer.drain());
            } else {
                let mut lines = observer.command(world, "n NOOP");
                lines.pop();
                seen.push(lines);
            }
        }
        (world.store.metas_handed_out() - before, seen)
    };
    tagged(&writer.command(&mut world, "f UID STORE 1234 +FLAGS (\\Flagged)"), "f OK");
    let (metas, seen) = look(&mut world, &mut observers);
    for lines in &seen {
        assert_eq!(lines, &["* 1234 FETCH (FLAGS (\\Flagged) UID 1234)"]);
    }
    assert_eq!(metas, 8, "one record per observer");
    tagged(&writer.command(&mut world, "e UID STORE 7 +FLAGS (\\Deleted)"), "e OK");
    tagged(&writer.command(&mut world, "e UID EXPUNGE 7"), "e OK");
    let (metas, seen) = look(&mut world, &mut observers);
    for lines in &seen {
        // Expunged by the time they look: no FETCH for its flags, only the EXPUNGE.
        assert_eq!(lines, &["* 7 EXPUNGE"]);
    }
    assert_eq!(metas, 0, "an expunge is named, no record handed out");
}
