//! skua-core: the mail store.
//!
//! See `core/FORMAT.md` for every byte on disk and `ARCHITECTURE.md` for the map.
#![allow(clippy::module_name_repetitions)]

pub mod disk;
pub mod types;
pub mod users;
