//! MIME analysis for IMAP: ENVELOPE and BODYSTRUCTURE, `BODY[section]` ranges, SEARCH helpers.
//!
//! A message is analysed once, when it is delivered or appended: [`cache::build`] walks it in
//! one pass and produces a compact blob (format: `CACHE-FORMAT.md` in this directory) that the
//! store keeps beside the message. Every FETCH then reads the blob through [`cache::CacheView`]:
//! ENVELOPE/BODYSTRUCTURE are stored as the exact response bytes, and sections are byte ranges
//! of the message, so the server sends them straight from the mapped spool without parsing.
//!
//! [`search`] answers SEARCH keys over a raw message (decoded header and body text).
//!
//! Everything here is bounded ([`limits`]) and never panics on any input: malformed MIME is
//! reported as well as it can be, never refused.

pub mod cache;
pub mod decode;
pub mod limits;
pub mod preview;
pub mod search;
pub mod subject;

mod address;
mod content;
mod date;
mod envelope;
mod header;
mod imap_text;
mod structure;
mod tree;
