//! IMAP4rev2 / IMAP4rev1: grammar (`types`, `parser`, `encode`) and the session (`session`).

pub(crate) mod command;
pub mod encode;
pub mod framing;
pub mod limits;
pub mod namespace;
pub mod parser;
pub mod reply;
pub mod session;
pub mod types;
pub(crate) mod url;
pub mod utf7;
pub mod view;
