//! skua-protocols: IMAP and LMTP as sans-IO state machines.
//!
//! Bytes in, bytes out, calls into `skua-core`; never a socket, an executor or a clock read.
//! See `ARCHITECTURE.md` for how `skua-shard` drives these sessions.
#![forbid(unsafe_code)]

pub mod imap;
pub mod import;
pub mod lmtp;
pub mod mime;
pub mod restore;
pub mod sasl;
pub mod socketmap;
