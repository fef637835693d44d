//! The cheap syncs ([`super::sync_view`]: append-only, or from the store's modseq journal)
//! against the full comparison ([`super::sync_full`]): two views of one mailbox, synced after
//! the same random changes by other sessions, must write the same bytes and end with the same
//! UIDs. More of the journal path: `sync_changes_tests.rs`.

use std::path::Path;
use std::rc::Rc;

use proptest::prelude::*;
use skua_core::disk::os::OsDisk;
use skua_core::store::UserStore;
use skua_core::types::{Flags, FlagsOp, Keywords, MailboxId, SystemFlags, Uid};

use super::{SyncPath, announce_new_keywords, sync_full, sync_view};
use crate::imap::view::View;

pub(super) struct World {
    pub(super) dir: tempfile::TempDir,
    pub(super) store: UserStore<OsDisk>,
    pub(super) inbox: MailboxId,
    pub(super) other: MailboxId,
}

impl World {
    pub(super) fn new(prefill: usize) -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = Rc::new(OsDisk::new(dir.path()).expect("disk"));
        let mut store = UserStore::open(disk, Path::new("u")).expect("store");
        let inbox = store.mailbox_id("INBOX").expect("inbox");
        let other = store.create_mailbox("Other").expect("create");
        let mut world = World { dir, store, inbox, other };
        for _ in 0..prefill {
            world.append(inbox, 0);
        }
        world
    }

    pub(super) fn append(&mut self, id: MailboxId, system: u16) {
        let flags = Flags { system: SystemFlags(system), keywords: Keywords(0) };
        let message = b"Subject: x\r\n\r\nbody\r\n";
        self.store.append(id, message, b"", flags, None).expect("append");
    }

    /// A view as SELECT makes it.
    pub(super) fn select(&self) -> View {
        let info = self.store.mailbox_info(self.inbox).expect("info");
        let messages = self.store.messages(self.inbox).expect("messages");
        let mut view = View::new(
            self.inbox,
            false,
            info.uid_validity,
            &messages,
            info.highest_modseq,
            self.store.change_counter(),
        );
        view.keywords_announced = self.store.keyword_table(self.inbox).expect("keywords").len();
        view.set_marks(self.store.mailbox_marks(self.inbox).expect("marks"));
        view
    }

    /// The `pick`-th live UID of INBOX (modulo), if any.
    pub(super) fn live(&self, pick: usize) -> Option<Uid> {
        let messages = self.store.messages(self.inbox).expect("messages");
        (!messages.is_empty()).then(|| messages[pick % messages.len()].uid)
    }

    pub(super) fn apply(&mut self, op: &Op) {
        match *op {
            Op::Append(system) => self.append(self.inbox, system),
            Op::AppendElsewhere => self.append(self.other, 0),
            Op::Expunge(pick) => {
                if let Some(uid) = self.live(pick) {
                    self.store.expunge(self.inbox, &[uid]).expect("expunge");
                }
            }
            Op::Flag(pick, system, keyword) => {
                let Some(uid) = self.live(pick) else { return };
                let keywords = match keyword {
                    Some(k) => {
                        let name = format!("kw{k}");
                        self.store.keyword_bits(self.inbox, &[name.as_str()]).expect("keyword")
                    }
                    None => Keywords(0),
                };
                let flags = Flags { system: SystemFlags(system), keywords };
                self.store
                    .store_flags(self.inbox, &[uid], FlagsOp::Replace, flags, None)
                    .expect("store");
            }
            Op::CopyIn => {
                let from = self.store.messages(self.other).expect("messages");
                let uids: Vec<Uid> = from.iter().take(2).map(|m| m.uid).collect();
                self.store.copy(self.other, &uids, self.inbox).expect("copy");
            }
            Op::Sync { .. } => {}
        }
    }
}

#[derive(Clone, Debug)]
pub(super) enum Op {
    Append(u16),
    AppendElsewhere,
    Expunge(usize),
    Flag(usize, u16, Option<u8>),
    CopyIn,
    Sync { allow_expunge: bool, condstore: bool },
}

pub(super) fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u16..32).prop_map(Op::Append),
        1 => Just(Op::AppendElsewhere),
        1 => (0usize..64).prop_map(Op::Expunge),
        1 => (0usize..64, 0u16..32, proptest::option::of(0u8..4))
            .prop_map(|(p, s, k)| Op::Flag(p, s, k)),
        1 => Just(Op::CopyIn),
        4 => (any::<bool>(), any::<bool>())
            .prop_map(|(allow_expunge, condstore)| Op::Sync { allow_expunge, condstore }),
    ]
}

/// What a session does after a command: nothing when the store did not change.
pub(super) fn sync_both(
    world: &World,
    fast: &mut View,
    slow: &mut View,
    allow: bool,
    condstore: bool,
) {
    let store = &world.store;
    let counter = store.change_counter();
    assert_eq!(fast.change_counter() == counter, slow.change_counter() == counter);
    if counter == slow.change_counter() {
        return;
    }
    let mut fast_out = Vec::new();
    sync_view(fast, store, allow, condstore, &mut fast_out).expect("sync");
    let mut slow_out = Vec::new();
    announce_new_keywords(
        slow,
        store.keyword_table(slow.mailbox).expect("keywords"),
        &mut slow_out,
    );
    sync_full(slow, store, allow, condstore, &mut slow_out).expect("sync");
    assert_eq!(String::from_utf8_lossy(&fast_out), String::from_utf8_lossy(&slow_out));
    assert_eq!(fast.uids(), slow.uids());
    assert_eq!(fast.change_counter(), slow.change_counter());
}

proptest! {
    #[test]
    fn append_only_sync_writes_what_the_full_sync_writes(
        prefill in 0usize..6,
        ops in proptest::collection::vec(op(), 1..40),
        vanished in proptest::bool::ANY,
    ) {
        let mut world = World::new(prefill);
        world.append(world.other, 0);
        world.append(world.other, 0);
        let (mut fast, mut slow) = (world.select(), world.select());
        // A QRESYNC session's views report VANISHED: both ways still write the same bytes.
        (fast.vanished, slow.vanished) = (vanished, vanished);
        for op in &ops {
            world.apply(op);
            if let Op::Sync { allow_expunge, condstore } = *op {
                sync_both(&world, &mut fast, &mut slow, allow_expunge, condstore);
            }
        }
        sync_both(&world, &mut fast, &mut slow, true, true);
        let live: Vec<Uid> =
            world.store.messages(world.inbox).unwrap().iter().map(|m| m.uid).collect();
        prop_assert_eq!(fast.uids(), live.as_slice());
    }
}

#[test]
fn deliveries_take_the_append_path_and_other_changes_the_journal() {
    let mut world = World::new(3);
    let mut view = world.select();
    let mut out = Vec::new();
    let sync = |world: &World, view: &mut View, out: &mut Vec<u8>| {
        out.clear();
        sync_view(view, &world.store, true, false, out).expect("sync")
    };
    world.append(world.inbox, 0);
    world.append(world.inbox, SystemFlags::SEEN);
    assert_eq!(sync(&world, &mut view, &mut out), SyncPath::Appended);
    assert_eq!(out, b"* 5 EXISTS\r\n");
    // A change in another mailbox costs nothing here.
    world.append(world.other, 0);
    assert_eq!(sync(&world, &mut view, &mut out), SyncPath::Appended);
    assert!(out.is_empty());
    // A flag change is read from the store's journal, and the next delivery is cheap again.
    world.apply(&Op::Flag(0, SystemFlags::FLAGGED, None));
    assert_eq!(sync(&world, &mut view, &mut out), SyncPath::Changed);
    assert_eq!(out, b"* 1 FETCH (FLAGS (\\Flagged) UID 1)\r\n");
    world.append(world.inbox, 0);
    assert_eq!(sync(&world, &mut view, &mut out), SyncPath::Appended);
    assert_eq!(out, b"* 6 EXISTS\r\n");
    // An expunge that may not be reported yet leaves the view unmarked until it is; the
    // journal still names it on the next sync.
    world.apply(&Op::Expunge(0));
    out.clear();
    sync_view(&mut view, &world.store, false, false, &mut out).expect("sync");
    world.append(world.inbox, 0);
    assert_eq!(sync(&world, &mut view, &mut out), SyncPath::Changed);
    assert_eq!(out, b"* 1 EXPUNGE\r\n* 6 EXISTS\r\n");
}
