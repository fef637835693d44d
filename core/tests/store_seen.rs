//! Per-reader `\Seen` on a store's mailboxes (shared folders, issue 10 item 4): `seen.log`
//! across restarts and crashes, the bounds, modseqs, and sets following RENAME and vanishing
//! with DELETE (`core/FORMAT.md`, "seen.log").
//!
//! Crash invariant: after any crash, every reader's set (on the live messages) is exactly the
//! one after some prefix of the changes issued, never shorter than the acknowledged ones (each
//! change is one record; replay is a prefix); and a second crash after recovery cut a tail and
//! new records were written never brings a cut record back after them.
#![cfg(feature = "sim")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::rc::Rc;

use skua_core::disk::sim::{CrashMode, Fate, PendingOp, SimDisk};
use skua_core::disk::{Disk, Flush};
use skua_core::error::ReadError;
use skua_core::limits::{SEEN_RANGES_PER_READER_MAX, SEEN_READERS_PER_MAILBOX_MAX};
use skua_core::store::{SeenError, UserStore};
use skua_core::types::{Flags, Keywords, MailboxId, ModSeq, SystemFlags, Uid};

/// The owner is "bob": his store's directory is named after him.
const DIR: &str = "users/bob";

fn open(disk: &SimDisk) -> UserStore<SimDisk> {
    let mut store = UserStore::open(Rc::new(disk.clone()), Path::new(DIR)).expect("opens");
    store.load_seen().expect("seen log loads");
    store.check_invariants();
    store
}

fn flush(disk: &SimDisk) {
    if let Some(job) = disk.flush_begin() {
        let epoch = job.epoch();
        job.run().expect("flush runs");
        disk.flush_end(epoch);
    }
}

fn uid(n: u32) -> Uid {
    Uid::new(n).unwrap()
}

fn uids(list: impl IntoIterator<Item = u32>) -> Vec<Uid> {
    list.into_iter().map(uid).collect()
}

fn plain() -> Flags {
    Flags { system: SystemFlags(0), keywords: Keywords(0) }
}

fn fill(store: &mut UserStore<SimDisk>, id: MailboxId, count: u32) {
    for i in 0..count {
        store
            .append(id, format!("Subject: {i}\r\n\r\nbody {i}\r\n").as_bytes(), b"", plain(), None)
            .unwrap();
    }
}

/// What each reader has seen among the live messages of `id`.
fn state(store: &mut UserStore<SimDisk>, id: MailboxId, readers: &[&str]) -> Vec<BTreeSet<u32>> {
    let live: Vec<Uid> = store.messages(id).unwrap().iter().map(|m| m.uid).collect();
    readers
        .iter()
        .map(|reader| {
            let set = store.reader_seen(id, reader).unwrap();
            let seen: BTreeSet<u32> =
                live.iter().filter(|&&u| set.contains(u)).map(|u| u.get()).collect();
            let unseen = store.reader_unseen(id, reader).unwrap();
            assert_eq!(unseen as usize, live.len() - seen.len(), "UNSEEN agrees with the set");
            seen
        })
        .collect()
}

#[test]
fn readers_have_their_own_seen_and_the_owners_flag_is_untouched() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    fill(&mut store, inbox, 10);
    let before = store.mailbox_info(inbox).unwrap().highest_modseq;
    let changed = store.set_reader_seen(inbox, "alice", &uids([3, 1, 2, 2, 99]), true).unwrap();
    // Ascending, once each, live messages only, each with its own new modseq.
    assert_eq!(changed.iter().map(|c| c.0.get()).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(changed.windows(2).all(|w| w[0].1 < w[1].1));
    assert!(changed[0].1 > before);
    let after = store.mailbox_info(inbox).unwrap();
    assert_eq!(after.highest_modseq, changed[2].1, "HIGHESTMODSEQ follows");
    assert_eq!(after.unseen, 10, "the owner's \\Seen is the flag, untouched");
    for (u, modseq) in &changed {
        let meta = store.message(inbox, *u).unwrap().unwrap();
        assert_eq!(meta.flags, plain(), "flags unchanged");
        assert_eq!(meta.modseq, *modseq);
    }
    // Nothing changes, nothing is written, no modseq moves.
    assert!(store.set_reader_seen(inbox, "alice", &uids([1, 2]), true).unwrap().is_empty());
    assert!(store.set_reader_seen(inbox, "carol", &uids([5]), false).unwrap().is_empty());
    assert_eq!(store.mailbox_info(inbox).unwrap().highest_modseq, changed[2].1);
    let alice = store.reader_seen(inbox, "alice").unwrap();
    assert_eq!(alice.ranges().collect::<Vec<_>>(), vec![1..=3]);
    assert_eq!(alice.count_in(&uids([1, 3, 4, 5, 1])), 3);
    assert!(store.reader_seen(inbox, "carol").unwrap().is_empty());
    assert_eq!(store.reader_unseen(inbox, "alice").unwrap(), 7);
    // Readers are compared as given (the caller canonicalizes).
    assert!(store.reader_seen(inbox, "Alice").unwrap().is_empty());
    // Unmarking.
    let changed = store.set_reader_seen(inbox, "alice", &uids([2, 7]), false).unwrap();
    assert_eq!(changed.iter().map(|c| c.0.get()).collect::<Vec<_>>(), vec![2]);
    flush(&disk);
    let mut store = open(&disk.crash(0, CrashMode::DropPending));
    let alice = store.reader_seen(inbox, "alice").unwrap();
    assert_eq!(alice.ranges().collect::<Vec<_>>(), vec![1..=1, 3..=3]);
    assert!(store.mailbox_info(inbox).unwrap().highest_modseq >= changed[0].1);
}

#[test]
fn bad_readers_and_mailboxes_are_refused() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    fill(&mut store, inbox, 2);
    let one = uids([1]);
    for reader in ["", "bob", &"x".repeat(256)] {
        let err = store.set_reader_seen(inbox, reader, &one, true);
        assert!(matches!(err, Err(SeenError::BadReader)), "{reader:?}: {err:?}");
    }
    store.set_reader_seen(inbox, &"x".repeat(255), &one, true).unwrap();
    let gone = MailboxId(999);
    assert!(matches!(store.set_reader_seen(gone, "a", &one, true), Err(SeenError::NoSuchMailbox)));
    assert!(matches!(store.reader_seen(gone, "a"), Err(ReadError::NoSuchMailbox)));
    assert!(matches!(store.reader_unseen(gone, "a"), Err(ReadError::NoSuchMailbox)));
}

#[test]
fn sets_follow_rename_and_vanish_with_delete() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    store.create_mailbox("Projects").unwrap();
    let id = store.mailbox_id("Projects").unwrap();
    fill(&mut store, id, 3);
    store.set_reader_seen(id, "alice", &uids([2]), true).unwrap();
    let _renamed = store.rename_mailbox("Projects", "Work").unwrap();
    assert_eq!(store.mailbox_id("Work"), Some(id));
    assert!(store.reader_seen(id, "alice").unwrap().contains(uid(2)));
    flush(&disk);
    let disk = disk.crash(0, CrashMode::DropPending);
    let mut store = open(&disk);
    assert!(store.reader_seen(id, "alice").unwrap().contains(uid(2)));
    store.delete_mailbox("Work").unwrap();
    assert!(matches!(store.reader_seen(id, "alice"), Err(ReadError::NoSuchMailbox)));
    store.create_mailbox("Work").unwrap();
    let new = store.mailbox_id("Work").unwrap();
    assert_ne!(new, id);
    fill(&mut store, new, 3);
    assert!(store.reader_seen(new, "alice").unwrap().is_empty(), "a new mailbox starts clean");
    flush(&disk);
    let mut store = open(&disk.crash(0, CrashMode::DropPending));
    assert!(store.reader_seen(new, "alice").unwrap().is_empty());
}

#[test]
fn expunges_leave_no_fragments_and_a_reader_who_read_everything_is_one_range() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    fill(&mut store, inbox, 20);
    store.expunge(inbox, &uids([1, 2, 5, 9, 10, 11, 20])).unwrap();
    let live: Vec<Uid> = store.messages(inbox).unwrap().iter().map(|m| m.uid).collect();
    // Marked one at a time, in a jumbled order.
    for &u in live.iter().rev().step_by(2).chain(live.iter().skip(1).step_by(2)) {
        store.set_reader_seen(inbox, "alice", &[u], true).unwrap();
    }
    let set = store.reader_seen(inbox, "alice").unwrap();
    assert_eq!(set.ranges().collect::<Vec<_>>(), vec![1..=19], "never past the last UID");
    assert_eq!(store.reader_unseen(inbox, "alice").unwrap(), 0);
    // New mail after the range is unseen.
    fill(&mut store, inbox, 1);
    assert!(!store.reader_seen(inbox, "alice").unwrap().contains(uid(21)));
    assert_eq!(store.reader_unseen(inbox, "alice").unwrap(), 1);
    // A live message between stops the filling.
    store.set_reader_seen(inbox, "carol", &uids([3]), true).unwrap();
    store.set_reader_seen(inbox, "carol", &uids([7]), true).unwrap();
    let set = store.reader_seen(inbox, "carol").unwrap();
    assert_eq!(set.ranges().collect::<Vec<_>>(), vec![1..=3, 7..=7], "4 and 6 are live");
}

#[test]
fn bounds_refuse_with_a_typed_error() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    let count = u32::try_from(2 * SEEN_RANGES_PER_READER_MAX + 2).unwrap();
    fill(&mut store, inbox, count);
    // The pathological alternating set: every other message.
    let odd = uids((1..=count).step_by(2));
    let err = store.set_reader_seen(inbox, "alice", &odd, true);
    assert!(matches!(err, Err(SeenError::TooManyRanges)), "{err:?}");
    assert!(store.reader_seen(inbox, "alice").unwrap().is_empty(), "nothing written");
    let fits = &odd[..SEEN_RANGES_PER_READER_MAX];
    assert_eq!(store.set_reader_seen(inbox, "alice", fits, true).unwrap().len(), fits.len());
    let err = store.set_reader_seen(inbox, "alice", &odd[fits.len()..], true);
    assert!(matches!(err, Err(SeenError::TooManyRanges)), "{err:?}");
    // Changes that do not add a range still pass: one that joins two ranges, one that
    // removes a whole range.
    store.set_reader_seen(inbox, "alice", &uids([2]), true).unwrap();
    store.set_reader_seen(inbox, "alice", &uids([5]), false).unwrap();
    let set = store.reader_seen(inbox, "alice").unwrap();
    assert_eq!(set.ranges().len(), SEEN_RANGES_PER_READER_MAX - 2);
    // Readers per mailbox.
    for i in 1..SEEN_READERS_PER_MAILBOX_MAX {
        store.set_reader_seen(inbox, &format!("r{i}"), &uids([1]), true).unwrap();
    }
    let err = store.set_reader_seen(inbox, "one-too-many", &uids([1]), true);
    assert!(matches!(err, Err(SeenError::TooManyReaders)), "{err:?}");
    // A reader who unmarks everything is gone and makes room.
    store.set_reader_seen(inbox, "r1", &uids([1]), false).unwrap();
    store.set_reader_seen(inbox, "one-too-many", &uids([1]), true).unwrap();
    flush(&disk);
    let mut store = open(&disk.crash(0, CrashMode::DropPending));
    assert_eq!(store.reader_seen(inbox, "alice").unwrap(), set);
    assert!(store.reader_seen(inbox, "one-too-many").unwrap().contains(uid(1)));
    assert!(store.reader_seen(inbox, "r1").unwrap().is_empty());
}

const READERS: [&str; 3] = ["alice", "carol", "dave"];

/// The workload: readers mark and unmark sets of messages of INBOX (10 messages).
fn step(i: usize) -> (usize, Vec<u32>, bool) {
    let reader = i % 3;
    let on = i % 4 != 3;
    let list = (1..=10).filter(|n| (n * 7 + i) % 5 < 2 + i % 3).map(|n| n as u32).collect();
    (reader, list, on)
}

fn apply(model: &mut [BTreeSet<u32>], (reader, list, on): &(usize, Vec<u32>, bool)) {
    for n in list {
        if *on {
            model[*reader].insert(*n);
        } else {
            model[*reader].remove(n);
        }
    }
}

/// Runs one group-commit round; true when it made everything written before it durable
/// (false once the disk is frozen: `SimDisk::freeze_after_flushes`).
fn try_flush(disk: &SimDisk) -> bool {
    let Some(job) = disk.flush_begin() else {
        return true;
    };
    let epoch = job.epoch();
    if job.run().is_err() {
        return false;
    }
    disk.flush_end(epoch);
    true
}

/// The reader sets after each prefix of `steps` (index 0: before any).
fn states_of(steps: &[(usize, Vec<u32>, bool)]) -> Vec<Vec<BTreeSet<u32>>> {
    let mut states = vec![vec![BTreeSet::new(); 3]];
    for step in steps {
        let mut next = states.last().unwrap().clone();
        apply(&mut next, step);
        states.push(next);
    }
    states
}

/// What a run frozen at one flush point left: the disk, how many steps were acknowledged,
/// and the modseqs their changes gave.
struct Frozen {
    disk: SimDisk,
    acked: usize,
    acked_modseqs: BTreeMap<Uid, ModSeq>,
}

/// INBOX with `messages` messages (flushed), then `steps`, each acknowledged by a flush
/// round, the disk frozen after `freeze` rounds of them; runs `extra` steps past the freeze
/// (written, never acknowledged) and stops.
fn run_frozen(
    messages: u32,
    steps: &[(usize, Vec<u32>, bool)],
    freeze: usize,
    extra: usize,
) -> Frozen {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    fill(&mut store, inbox, messages);
    assert!(try_flush(&disk));
    disk.freeze_after_flushes(disk.flushes_done() + freeze as u64);
    let mut acked = 0;
    let mut acked_modseqs = BTreeMap::new();
    let mut pending = BTreeMap::new();
    // After a failed round nothing is acknowledged any more (a shard stops; the sim's next
    // round may find nothing new to sync and "succeed").
    let mut failed = false;
    for (i, (reader, list, on)) in steps.iter().enumerate().take(freeze + extra) {
        let changed = store.set_reader_seen(inbox, READERS[*reader], &uids(list.clone()), *on);
        pending.extend(changed.unwrap());
        failed = failed || !try_flush(&disk);
        if !failed {
            acked = i + 1;
            acked_modseqs.append(&mut pending);
        }
    }
    Frozen { disk, acked, acked_modseqs }
}

/// Crashes `frozen` in every mode and checks the recovered sets are those after a prefix of
/// the steps no shorter than the acknowledged ones, and the acknowledged modseqs durable.
fn crash_and_check(frozen: &Frozen, states: &[Vec<BTreeSet<u32>>], done: usize) -> usize {
    let mut checked = 0;
    for mode in CrashMode::ALL {
        for seed in 0..4 {
            let mut store = open(&frozen.disk.crash(seed, mode));
            let inbox = store.mailbox_id("INBOX").unwrap();
            let got = state(&mut store, inbox, &READERS);
            let acked = frozen.acked;
            assert!(
                (acked..=done).any(|j| states[j] == got),
                "acked {acked} done {done} {mode:?} seed {seed}: not a prefix: {got:?}"
            );
            for (u, modseq) in &frozen.acked_modseqs {
                let meta = store.message(inbox, *u).unwrap().unwrap();
                assert!(meta.modseq >= *modseq, "{mode:?} {seed}: {u:?} lost its modseq");
            }
            // The recovered store takes a change and keeps it across a clean restart.
            let disk = frozen.disk.crash(seed, mode);
            let mut store = open(&disk);
            store.set_reader_seen(inbox, "erin", &uids([1]), true).unwrap();
            assert!(try_flush(&disk));
            let mut store = open(&disk.crash(0, CrashMode::DropPending));
            assert!(store.reader_seen(inbox, "erin").unwrap().contains(uid(1)));
            checked += 1;
        }
    }
    checked
}

#[test]
fn every_flush_point_keeps_every_acknowledged_change_and_a_prefix() {
    const STEPS: usize = 12;
    let steps: Vec<_> = (0..STEPS).map(step).collect();
    let states = states_of(&steps);
    assert!(states.windows(2).filter(|w| w[0] != w[1]).count() >= STEPS - 2, "steps change");
    let mut checked = 0;
    for freeze in 0..=STEPS {
        for extra in [0, 1, 3] {
            let frozen = run_frozen(10, &steps, freeze, extra);
            // A step that changes nothing writes nothing and needs no round.
            assert!(frozen.acked >= freeze.min(STEPS), "flushes before the freeze succeed");
            checked += crash_and_check(&frozen, &states, (freeze + extra).min(STEPS));
        }
    }
    assert!(checked > 500, "{checked}");
}

#[test]
fn every_flush_point_around_a_compaction() {
    // Enough single-message changes to pass the compaction threshold, one flush round each.
    let steps: Vec<(usize, Vec<u32>, bool)> = {
        let mut model = vec![BTreeSet::new(); 3];
        (0..6_000usize)
            .map(|i| {
                let reader = i % 3;
                let n = u32::try_from(i * 7 % 40 + 1).unwrap();
                let on = !model[reader].contains(&n);
                apply(&mut model, &(reader, vec![n], on));
                (reader, vec![n], on)
            })
            .collect()
    };
    let states = states_of(&steps);
    // Where the compacted copy replaces the log: the first step after which the log shrank.
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    fill(&mut store, inbox, 40);
    assert!(try_flush(&disk));
    let mut replaced_at = None;
    let mut last = 0;
    for (i, (reader, list, on)) in steps.iter().enumerate() {
        store.set_reader_seen(inbox, READERS[*reader], &uids(list.clone()), *on).unwrap();
        assert!(try_flush(&disk));
        let now = store.seen_log_bytes().unwrap();
        if now < last && replaced_at.is_none() {
            replaced_at = Some(i);
        }
        last = now;
    }
    let replaced_at = replaced_at.expect("the log was compacted");
    assert!(disk.exists(std::path::Path::new("users/bob/seen.log")));
    let mut checked = 0;
    // The copy was written one step before the rename and made durable by that step's round.
    for freeze in replaced_at.saturating_sub(2)..=replaced_at + 1 {
        for extra in [1, 2] {
            let frozen = run_frozen(40, &steps, freeze, extra);
            checked += crash_and_check(&frozen, &states, freeze + extra);
        }
    }
    assert!(checked >= 160, "{checked}");
}

#[test]
fn a_record_recovery_cut_never_returns_after_a_second_crash() {
    // Crash with two records unflushed, keeping only the second ("stale two"): the replay
    // stops at the lost first one and recovery cuts both. A new record of the lost one's
    // length is written where the cut is, then another; a second crash keeps the first new
    // record but loses the cut (set_len) and the second: "stale two" then directly follows
    // the new record, intact. It must not replay after it.
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    fill(&mut store, inbox, 10);
    store.set_reader_seen(inbox, "alice", &uids([1]), true).unwrap();
    flush(&disk);
    store.set_reader_seen(inbox, "alice", &uids([3]), true).unwrap(); // lost one
    store.set_reader_seen(inbox, "alice", &uids([5]), true).unwrap(); // stale two
    let is_log_write = |op: &PendingOp| op.path.ends_with("seen.log") && op.kind == "write";
    let mut writes = 0;
    let (crashed, _) = disk.crash_where(|op| {
        writes += usize::from(is_log_write(op));
        if is_log_write(op) && writes == 1 { Fate::Lost } else { Fate::Kept }
    });
    let mut store = open(&crashed);
    assert_eq!(state(&mut store, inbox, &["alice"]), vec![BTreeSet::from([1])]);
    store.set_reader_seen(inbox, "alice", &uids([7]), true).unwrap(); // new one
    store.set_reader_seen(inbox, "alice", &uids([9]), true).unwrap(); // new two
    let mut writes = 0;
    let (twice, _) = crashed.crash_where(|op| {
        writes += usize::from(is_log_write(op));
        let cut = op.kind == "set_len" && op.path.ends_with("seen.log");
        if cut || (is_log_write(op) && writes == 2) { Fate::Lost } else { Fate::Kept }
    });
    let mut store = open(&twice);
    assert_eq!(state(&mut store, inbox, &["alice"]), vec![BTreeSet::from([1, 7])]);
    // Every other crash of the same moment leaves a prefix too.
    for mode in CrashMode::ALL {
        for seed in 0..16 {
            let mut store = open(&crashed.crash(seed, mode));
            let got = state(&mut store, inbox, &["alice"]).remove(0);
            let allowed = [BTreeSet::from([1]), BTreeSet::from([1, 7]), BTreeSet::from([1, 7, 9])];
            assert!(allowed.contains(&got), "{mode:?} {seed}: {got:?}");
        }
    }
}

#[test]
fn the_log_is_compacted_and_stays_bounded() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    fill(&mut store, inbox, 40);
    let mut model = vec![BTreeSet::new(); 3];
    let mut largest = 0;
    for i in 0..20_000usize {
        let reader = i % 3;
        let n = u32::try_from(i * 7 % 40 + 1).unwrap();
        let on = !model[reader].contains(&n);
        store.set_reader_seen(inbox, READERS[reader], &[uid(n)], on).unwrap();
        if on {
            model[reader].insert(n);
        } else {
            model[reader].remove(&n);
        }
        if i % 50 == 0 {
            flush(&disk);
        }
        largest = largest.max(store.seen_log_bytes().unwrap());
    }
    // 20,000 records of 48 bytes would be 960 KB; compaction keeps it near its threshold.
    assert!(largest < 300_000, "{largest}");
    let now = store.seen_log_bytes().unwrap();
    assert!(now < 2 * skua_core::limits::SEEN_LOG_COMPACT_MIN_BYTES, "{now}");
    flush(&disk);
    let mut store = open(&disk.crash(0, CrashMode::DropPending));
    let live: BTreeSet<u32> = (1..=40).collect();
    let want: Vec<BTreeSet<u32>> = model.iter().map(|m| m & &live).collect();
    assert_eq!(state(&mut store, inbox, &READERS), want);
}

/// One operation of the property test.
#[derive(Clone, Debug)]
enum Op {
    /// A reader marks (or unmarks) messages, by position among UIDs 1..=24.
    Mark { reader: usize, picks: Vec<u32>, on: bool },
    /// The owner expunges one.
    Expunge(u32),
    /// A new message arrives.
    Append,
    /// A clean restart (everything flushed first).
    Reopen,
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        6 => (0..3usize, proptest::collection::vec(1..=24u32, 1..8), proptest::bool::weighted(0.7))
            .prop_map(|(reader, picks, on)| Op::Mark { reader, picks, on }),
        2 => (1..=24u32).prop_map(Op::Expunge),
        1 => Just(Op::Append),
        1 => Just(Op::Reopen),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(64))]

    /// The store against a model (a set of seen UIDs per reader, compared on the live
    /// messages) after random marks, unmarks, expunges, appends and restarts.
    #[test]
    fn the_store_matches_a_model(ops in proptest::collection::vec(op(), 1..40)) {
        let mut disk = SimDisk::new();
        let mut store = open(&disk);
        let inbox = store.mailbox_id("INBOX").unwrap();
        fill(&mut store, inbox, 12);
        let mut model = vec![BTreeSet::new(); 3];
        let mut live: BTreeSet<u32> = (1..=12).collect();
        let mut next_uid = 13;
        for op in ops {
            match op {
                Op::Mark { reader, picks, on } => {
                    let changed =
                        store.set_reader_seen(inbox, READERS[reader], &uids(picks.clone()), on);
                    let changed: BTreeSet<u32> =
                        changed.unwrap().iter().map(|c| c.0.get()).collect();
                    let mut want = BTreeSet::new();
                    for n in picks.into_iter().filter(|n| live.contains(n)) {
                        if on && model[reader].insert(n) || !on && model[reader].remove(&n) {
                            want.insert(n);
                        }
                    }
                    proptest::prop_assert_eq!(changed, want);
                }
                Op::Expunge(n) => {
                    store.expunge(inbox, &[uid(n)]).unwrap();
                    live.remove(&n);
                }
                Op::Append => {
                    fill(&mut store, inbox, 1);
                    live.insert(next_uid);
                    next_uid += 1;
                }
                Op::Reopen => {
                    flush(&disk);
                    drop(store);
                    disk = disk.crash(0, CrashMode::DropPending);
                    store = open(&disk);
                }
            }
            let want: Vec<BTreeSet<u32>> = model.iter().map(|m| m & &live).collect();
            proptest::prop_assert_eq!(state(&mut store, inbox, &READERS), want);
        }
        flush(&disk);
        let mut store = open(&disk.crash(0, CrashMode::DropPending));
        let want: Vec<BTreeSet<u32>> = model.iter().map(|m| m & &live).collect();
        proptest::prop_assert_eq!(state(&mut store, inbox, &READERS), want);
    }
}

#[test]
fn a_failed_write_changes_nothing_a_reader_can_see() {
    use skua_core::disk::sim::FailOp;
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    fill(&mut store, inbox, 4);
    store.set_reader_seen(inbox, "alice", &uids([1]), true).unwrap();
    assert!(try_flush(&disk));
    let counter = store.change_counter();
    // The seen.log write fails: the set is as before; the modseq rise stays (allowed) and
    // other sessions are told.
    disk.fail_next(FailOp::Write, "seen.log", std::io::ErrorKind::StorageFull, 1);
    let err = store.set_reader_seen(inbox, "alice", &uids([2, 3]), true);
    assert!(matches!(err, Err(SeenError::Storage(_))), "{err:?}");
    assert_eq!(state(&mut store, inbox, &["alice"]), vec![BTreeSet::from([1])]);
    assert!(store.change_counter() > counter);
    // The next change writes over the failed record's place and is kept.
    store.set_reader_seen(inbox, "alice", &uids([4]), true).unwrap();
    assert!(try_flush(&disk));
    let disk = disk.crash(0, CrashMode::DropPending);
    let mut store = open(&disk);
    assert_eq!(state(&mut store, inbox, &["alice"]), vec![BTreeSet::from([1, 4])]);
    // An index write failing first leaves no record at all.
    disk.fail_next(FailOp::Write, ".idx", std::io::ErrorKind::StorageFull, 1);
    let err = store.set_reader_seen(inbox, "alice", &uids([2]), true);
    assert!(matches!(err, Err(SeenError::Storage(_))), "{err:?}");
    assert!(!store.reader_seen(inbox, "alice").unwrap().contains(uid(2)));
}
