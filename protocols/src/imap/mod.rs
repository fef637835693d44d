//! IMAP4rev2 / IMAP4rev1: grammar (`types`, `parser`, `encode`) and the session (`session`).

pub mod types;
