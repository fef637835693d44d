//! skua-shard: the thread-per-core runtime.
//!
//! One glommio executor ("shard") per core, pinned; every user belongs to one shard
//! ([`placement::shard_for`]) and all of that user's state lives and changes only there, so no
//! lock guards mail data. Every shard listens on every port (SO_REUSEPORT); a connection is
//! served where it was accepted until it authenticates, then moves, socket and session, to the
//! user's home shard ([`handoff`]). LMTP deliveries travel to each recipient's home shard as
//! owned messages over bounded channels ([`mesh`]). Durability is a group commit per shard
//! ([`commit`]): replies that promise durability wait for the next flush round, which runs off
//! the reactor thread.
//!
//! Admission ([`admission`]) keeps one source, one user or one protocol from taking every
//! connection; deadlines bound how long a session may stay logged out and a command may take
//! to arrive; the login brake (`auth.rs`) is process-wide, per source and per user.
//!
//! This crate is the only user of glommio in the workspace: a move to another io_uring runtime
//! touches nothing else.
//!
//! Entry points: [`run`] (installs SIGTERM/SIGINT handlers) and [`run_with_shutdown`] (stopped
//! through a [`ShutdownHandle`]; [`run_with_ready`] also says when it is up), all configured by
//! a [`ServerConfig`].

mod admin;
mod admin_mboxlist;
pub mod admin_proto;
pub mod admin_purge;
mod admin_stream;
pub mod admission;
mod auth;
mod call;
#[cfg(test)]
mod call_tests;
pub mod commit;
pub mod compaction;
pub mod config;
pub mod conn;
pub mod conn_deflate;
pub mod conn_tls;
mod deliver;
pub mod deny;
mod driver;
pub mod error;
pub mod event;
pub mod guard;
pub mod handoff;
mod imap;
pub mod limits;
pub mod listen;
mod lmtp;
mod maintenance;
pub mod mesh;
mod metrics;
mod metrics_http;
mod pagein;
pub mod placement;
mod registry;
mod reply;
mod reserve;
pub mod sasl;
mod server;
mod shard;
mod shared_run;
pub mod shutdown;
mod socketmap;
#[cfg(test)]
mod testutil;
pub mod tls;
pub mod tracker;
mod users;
mod watch;

pub use config::ServerConfig;
pub use error::ServeError;
pub use placement::{ShardId, shard_for};
pub use server::{run, run_with_ready, run_with_shutdown};
pub use shutdown::ShutdownHandle;
