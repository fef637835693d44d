//! skua-core: the mail store.
//!
//! One user's mail lives in one directory: an append-only spool of message records, one
//! fixed-record index per mailbox, and a log of the mailbox list (`store`). Every byte on disk is
//! described in `core/FORMAT.md`; `ARCHITECTURE.md` is the map of the whole server.
//!
//! The key decision: the store reaches the disk only through the [`disk::Disk`] trait, never
//! fsyncs by itself, and leaves durability to the caller's group commit (one flush round for
//! everything written in a turn of the shard's executor). That keeps an append at two writes
//! and lets a simulated disk (`disk::sim`) crash the store at every point in tests.
#![allow(clippy::module_name_repetitions)]

pub mod acl;
pub mod backup;
pub mod deny;
pub mod disk;
pub mod error;
pub mod limits;
pub mod lock;
mod mmap;
pub mod paths;
pub mod store;
pub mod types;
pub mod users;
