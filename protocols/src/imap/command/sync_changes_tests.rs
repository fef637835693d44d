//! The sync from the store's modseq journal ([`super::sync_view`], `SyncPath::Changed`)
//! against the full comparison ([`super::sync_full`]): two sessions' views of one mailbox,
//! after the same random changes by other sessions and by the session itself (its own STOREs,
//! its own EXPUNGEs, commands that absorb their own changes), with expunges deferred at
//! random, `\Recent`, CONDSTORE, QRESYNC and UIDONLY, must write the same bytes and end in the
//! same state. And the journal's sync must cost what changed, not the mailbox.

use std::path::Path;
use std::rc::Rc;

use proptest::prelude::*;
use skua_core::disk::os::OsDisk;
use skua_core::store::UserStore;
use skua_core::types::{Flags, FlagsOp, Keywords, SystemFlags, Uid};

use super::sync_tests::{Op, World, op};
use super::{SyncPath, announce_new_keywords, sync_full, sync_view};
use crate::imap::view::View;

/// What this session (the one whose views are compared) does itself.
#[derive(Clone, Debug)]
enum Own {
    /// A STORE: the session reports it itself and notes it as its own.
    Flag(usize, u16),
    /// An EXPUNGE of one message, reported by the command.
    Expunge(usize),
    /// The end of a command that reported its own changes while nobody else changed the
    /// store (`command::absorb_own_changes`).
    Absorb,
}

#[derive(Clone, Debug)]
enum Step {
    Other(Op),
    Own(Own),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => op().prop_map(Step::Other),
        1 => (0usize..64, 0u16..32).prop_map(|(p, s)| Step::Own(Own::Flag(p, s))),
        1 => (0usize..64).prop_map(|p| Step::Own(Own::Expunge(p))),
        1 => Just(Step::Own(Own::Absorb)),
    ]
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// Both views sync as after a command; returns the way the journal view went.
fn sync_pair(
    world: &World,
    fast: &mut View,
    slow: &mut View,
    allow: bool,
    condstore: bool,
) -> Option<SyncPath> {
    let store = &world.store;
    let counter = store.change_counter();
    assert_eq!(fast.change_counter() == counter, slow.change_counter() == counter);
    if counter == slow.change_counter() {
        return None;
    }
    let mut fast_out = Vec::new();
    let path = sync_view(fast, store, allow, condstore, &mut fast_out).expect("sync");
    let mut slow_out = Vec::new();
    announce_new_keywords(slow, store.keyword_table(slow.mailbox).expect("kw"), &mut slow_out);
    sync_full(slow, store, allow, condstore, &mut slow_out).expect("sync");
    assert_eq!(text(&fast_out), text(&slow_out));
    assert_same(fast, slow);
    Some(path)
}

fn assert_same(fast: &View, slow: &View) {
    assert_eq!(fast.uids(), slow.uids());
    assert_eq!(fast.change_counter(), slow.change_counter());
    assert_eq!(fast.reported_modseq(), slow.reported_modseq());
    assert_eq!(fast.recent_count(), slow.recent_count());
}

/// This session's own change, applied to the store and to both views alike.
fn own(world: &mut World, views: [&mut View; 2], own: &Own, quiet: bool) {
    match *own {
        Own::Flag(pick, system) => {
            let Some(uid) = world.live(pick).filter(|u| views[0].msn_of(*u).is_some()) else {
                return;
            };
            let flags = Flags { system: SystemFlags(system), keywords: Keywords(0) };
            let outcome = world
                .store
                .store_flags(world.inbox, &[uid], FlagsOp::Replace, flags, None)
                .expect("store");
            for view in views {
                for &(uid, modseq) in &outcome.changed {
                    view.own_change(uid, modseq);
                }
            }
        }
        Own::Expunge(pick) => {
            let Some(uid) = world.live(pick).filter(|u| views[0].msn_of(*u).is_some()) else {
                return;
            };
            world.store.expunge(world.inbox, &[uid]).expect("expunge");
            let mut outs = [Vec::new(), Vec::new()];
            for (view, out) in views.into_iter().zip(&mut outs) {
                view.expunged_by_self(&[uid], out);
            }
            assert_eq!(text(&outs[0]), text(&outs[1]));
        }
        Own::Absorb if quiet => {
            let marks = world.store.mailbox_marks(world.inbox).expect("marks");
            for view in views {
                view.absorb_own_changes(world.store.change_counter(), marks);
            }
        }
        Own::Absorb => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn the_journal_sync_writes_what_the_full_sync_writes(
        prefill in 0usize..80,
        steps in proptest::collection::vec(step(), 1..60),
        vanished in proptest::bool::ANY,
        uid_only in proptest::bool::ANY,
        recent_from in proptest::option::of(1u32..90),
    ) {
        let mut world = World::new(prefill);
        world.append(world.other, 0);
        world.append(world.other, 0);
        let (mut fast, mut slow) = (world.select(), world.select());
        for view in [&mut fast, &mut slow] {
            view.vanished = vanished || uid_only;
            view.uid_only = uid_only;
            if let Some(from) = recent_from {
                view.add_recent(Uid::new(from).unwrap(), Uid::new(1000).unwrap());
            }
        }
        // True while every store change since the views last matched it was this session's.
        let mut quiet = true;
        for step in &steps {
            match step {
                Step::Other(Op::Sync { allow_expunge, condstore }) => {
                    let path = sync_pair(&world, &mut fast, &mut slow, *allow_expunge, *condstore);
                    // The store stays open and the journal keeps more than these steps make.
                    prop_assert_ne!(path, Some(SyncPath::Full));
                    quiet = fast.change_counter() == world.store.change_counter();
                }
                Step::Other(op) => {
                    let before = world.store.change_counter();
                    world.apply(op);
                    quiet &= world.store.change_counter() == before;
                }
                Step::Own(change) => own(&mut world, [&mut fast, &mut slow], change, quiet),
            }
        }
        sync_pair(&world, &mut fast, &mut slow, true, true);
        let live: Vec<Uid> =
            world.store.messages(world.inbox).unwrap().iter().map(|m| m.uid).collect();
        prop_assert_eq!(fast.uids(), live.as_slice());
    }
}

/// Metas the store hands out while `view` syncs, and the way it went.
fn sync_work(world: &World, view: &mut View, out: &mut Vec<u8>) -> (SyncPath, u64) {
    let before = world.store.metas_handed_out();
    out.clear();
    let path = sync_view(view, &world.store, true, true, out).expect("sync");
    (path, world.store.metas_handed_out() - before)
}

#[test]
fn another_sessions_store_and_expunge_cost_the_change_not_the_mailbox() {
    const MESSAGES: usize = 1500;
    let mut world = World::new(MESSAGES);
    let mut views: Vec<View> = (0..8).map(|_| world.select()).collect();
    let mut out = Vec::new();
    world.apply(&Op::Flag(10, SystemFlags::FLAGGED, None));
    for view in &mut views {
        let (path, metas) = sync_work(&world, view, &mut out);
        assert_eq!((path, metas), (SyncPath::Changed, 1));
        assert_eq!(text(&out), "* 11 FETCH (FLAGS (\\Flagged) MODSEQ (1502) UID 11)\r\n");
    }
    world.apply(&Op::Expunge(3));
    world.apply(&Op::Flag(700, SystemFlags::SEEN, Some(1)));
    world.append(world.inbox, 0);
    for view in &mut views {
        let (path, metas) = sync_work(&world, view, &mut out);
        // The flagged message and the new one: the expunged one is named, not handed out.
        assert_eq!((path, metas), (SyncPath::Changed, 2));
        assert_eq!(
            text(&out),
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft kw1)\r\n\
             * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft kw1 \\*)] \
             Flags permitted\r\n\
             * 4 EXPUNGE\r\n\
             * 701 FETCH (FLAGS (\\Seen kw1) MODSEQ (1504) UID 702)\r\n\
             * 1500 EXISTS\r\n"
        );
    }
    // The full comparison it replaces hands out every live message.
    let mut slow = world.select();
    world.apply(&Op::Flag(0, SystemFlags::SEEN, None));
    let before = world.store.metas_handed_out();
    sync_full(&mut slow, &world.store, true, true, &mut out).expect("sync");
    assert_eq!(world.store.metas_handed_out() - before, MESSAGES as u64);
}

#[test]
fn a_view_older_than_the_journal_takes_the_full_comparison() {
    let mut world = World::new(4);
    let (mut fast, mut slow) = (world.select(), world.select());
    // The store is opened again (say, after its last session ended): the journal starts
    // empty there, and knows nothing of what happened before.
    world.apply(&Op::Flag(1, SystemFlags::FLAGGED, None));
    let disk = Rc::new(OsDisk::new(world.dir.path()).expect("disk"));
    let spare_dir = tempfile::tempdir().expect("tempdir");
    let spare_disk = Rc::new(OsDisk::new(spare_dir.path()).expect("disk"));
    let spare = UserStore::open(spare_disk, Path::new("u")).expect("spare");
    drop(std::mem::replace(&mut world.store, spare));
    world.store = UserStore::open(disk, Path::new("u")).expect("reopen");
    world.apply(&Op::Expunge(0));
    let counter = world.store.change_counter();
    // A fresh store counts from zero: make the views look unsynced to it.
    assert_ne!(fast.change_counter(), counter);
    assert_eq!(sync_pair(&world, &mut fast, &mut slow, true, false), Some(SyncPath::Full));
    // The next change is in the journal again.
    world.apply(&Op::Flag(0, SystemFlags::SEEN, None));
    assert_eq!(sync_pair(&world, &mut fast, &mut slow, true, false), Some(SyncPath::Changed));
}
