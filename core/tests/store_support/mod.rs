//! Shared helpers for the `store_*` integration tests: a store on the real disk in a temporary
//! directory, flushed the way the shard's group commit would.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::rc::Rc;

use skua_core::disk::os::OsDisk;
use skua_core::disk::{Disk, Flush};
use skua_core::store::UserStore;
use skua_core::types::{Flags, MailboxId, Uid};

/// The user directory inside the disk root.
pub const USER: &str = "users/aa/alice";

/// A temporary data directory and a disk over it.
pub struct World {
    pub dir: tempfile::TempDir,
    pub disk: Rc<OsDisk>,
}

impl World {
    pub fn new() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = Rc::new(OsDisk::new(dir.path()).expect("disk"));
        World { dir, disk }
    }

    /// Opens (or reopens) the user's store on a fresh disk object, as a restart would.
    pub fn open(&mut self) -> UserStore<OsDisk> {
        self.disk = Rc::new(OsDisk::new(self.dir.path()).expect("disk"));
        UserStore::open(self.disk.clone(), Path::new(USER)).expect("open")
    }

    /// Runs one group-commit round.
    pub fn flush(&self) {
        flush(&*self.disk);
    }

    /// The absolute path of a file of the user's store.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(USER).join(relative)
    }

    /// The absolute path of a mailbox's index file.
    pub fn index_path(&self, id: MailboxId) -> PathBuf {
        self.path(&format!("mbox/{:08}.idx", id.0))
    }
}

/// Runs one group-commit round on `disk`, as the shard would; false when nothing was written
/// since the last one.
pub fn flush<D: Disk>(disk: &D) -> bool {
    let Some(job) = disk.flush_begin() else {
        return false;
    };
    let epoch = job.epoch();
    job.run().expect("the flush runs");
    disk.flush_end(epoch);
    true
}

/// Flushes until the store's housekeeping (sealing new index headers, catching up checkpoints)
/// has nothing left to write, so that the next write a test injects a failure into is the
/// operation's own.
pub fn settle<D: Disk>(store: &mut UserStore<D>, disk: &D) {
    flush(disk);
    for _ in 0..6 {
        // A subscription already there writes nothing itself; only housekeeping writes.
        store.subscribe("INBOX").expect("an existing subscription");
        if !flush(disk) {
            return;
        }
    }
    panic!("housekeeping keeps writing");
}

/// Runs the store's O(n) invariant checks (compiled only with debug assertions).
pub fn check(store: &UserStore<OsDisk>) {
    #[cfg(debug_assertions)]
    store.check_invariants();
    #[cfg(not(debug_assertions))]
    let _ = store;
}

/// A message of exactly `len` bytes that depend on `n`, so mix-ups show.
pub fn message(n: u32, len: usize) -> Vec<u8> {
    let mut bytes = format!("Subject: message {n}\r\n\r\n").into_bytes();
    let mut x = n.wrapping_mul(2_654_435_761).wrapping_add(1);
    while bytes.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.push(x.to_le_bytes()[0]);
    }
    bytes.truncate(len);
    bytes
}

/// Appends `count` messages numbered from `first` to `mailbox`; returns their UIDs.
pub fn append_many(
    store: &mut UserStore<OsDisk>,
    mailbox: MailboxId,
    first: u32,
    count: u32,
) -> Vec<Uid> {
    (first..first + count)
        .map(|n| {
            let cache = format!("cache {n}").into_bytes();
            let body = message(n, 100 + (n as usize * 37) % 3000);
            store.append(mailbox, &body, &cache, Flags::default(), None).expect("append").0
        })
        .collect()
}
