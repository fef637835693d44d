//! The FETCH items that read the message itself or its cache blob: ENVELOPE, BODY,
//! BODYSTRUCTURE, `BODY[section]<partial>`, RFC822, RFC822.HEADER, RFC822.TEXT, PREVIEW
//! (RFC 8970), and the reading side of BINARY (planned in `fetch_binary.rs`).
//!
//! Byte ranges of the message go out as spool slices; only computed data (HEADER.FIELDS
//! selections) is built in memory. A `BODY[...]` literal cannot carry NUL (`CHAR8`), so a
//! range holding NUL (a message appended with `literal8`) is copied with each NUL written as
//! [`encode::NUL_REPLACEMENT`]; `BINARY[...]` sends the exact bytes.

use skua_core::disk::{Bytes, Disk};
use skua_core::error::ReadError;
use skua_core::store::UserStore;
use skua_core::types::{MailboxId, Uid};

use super::fetch_binary::{self, PartPlan};
use crate::imap::encode;
use crate::imap::limits::PREFETCH_AHEAD_MESSAGES;
use crate::imap::session::out::Out;
use crate::imap::types::{FetchAttribute, Section, SectionText};
use crate::mime::cache::{CacheView, SectionBytes};
use crate::mime::decode::{Measure, UnknownEncoding};
use crate::mime::preview::preview;

/// The message and cache blob of one message, read once per FETCH response as needed.
pub(crate) struct Sources {
    body: Option<Bytes>,
    cache: Option<Bytes>,
}

impl Sources {
    /// Reads what `attributes` need.
    ///
    /// # Errors
    /// The store's read error (the message is gone, or its data is damaged).
    pub(crate) fn load<D: Disk>(
        store: &UserStore<D>,
        mailbox: MailboxId,
        uid: Uid,
        attributes: &[FetchAttribute],
    ) -> Result<Sources, ReadError> {
        let needs_cache = attributes.iter().any(|a| match a {
            FetchAttribute::Envelope
            | FetchAttribute::Body
            | FetchAttribute::BodyStructure
            | FetchAttribute::Rfc822Header
            | FetchAttribute::Rfc822Text => true,
            // `BODY[]` is the whole message: no part table needed (the most common body fetch
            // then reads one spool record, not two).
            FetchAttribute::BodySection { section, .. } => !is_whole(section),
            FetchAttribute::Binary { part, .. } | FetchAttribute::BinarySize { part } => {
                !part.is_empty()
            }
            FetchAttribute::Preview { .. } => true,
            _ => false,
        });
        let needs_body = needs_body(attributes);
        let cache = if needs_cache { Some(store.cache(mailbox, uid)?) } else { None };
        let body = if needs_body { Some(store.body(mailbox, uid)?) } else { None };
        Ok(Sources { body, cache })
    }

    /// Writes one item (label and value).
    pub(crate) fn write(&self, attribute: &FetchAttribute, out: &mut Out) {
        let cache = self.cache.as_deref().and_then(|blob| CacheView::parse(blob).ok());
        match attribute {
            FetchAttribute::Envelope => {
                out.put(b"ENVELOPE ");
                out.put(cache.as_ref().map_or(EMPTY_ENVELOPE, CacheView::envelope));
            }
            FetchAttribute::Body => {
                out.put(b"BODY ");
                out.put(cache.as_ref().map_or(EMPTY_BODY, CacheView::body));
            }
            FetchAttribute::BodyStructure => {
                out.put(b"BODYSTRUCTURE ");
                out.put(cache.as_ref().map_or(EMPTY_BODY, CacheView::body_structure));
            }
            FetchAttribute::BodySection { section, partial, .. } => {
                out.put(b"BODY");
                encode::section(out.buf(), section);
                if let Some((origin, _)) = partial {
                    out.put(format!("<{origin}>").as_bytes());
                }
                out.put(b" ");
                self.write_section(cache.as_ref(), section, *partial, out);
            }
            FetchAttribute::Rfc822 => {
                out.put(b"RFC822 ");
                self.write_section(cache.as_ref(), &WHOLE, None, out);
            }
            FetchAttribute::Rfc822Header => {
                out.put(b"RFC822.HEADER ");
                self.write_section(cache.as_ref(), &HEADER, None, out);
            }
            FetchAttribute::Rfc822Text => {
                out.put(b"RFC822.TEXT ");
                self.write_section(cache.as_ref(), &TEXT, None, out);
            }
            FetchAttribute::Preview { .. } => {
                out.put(b"PREVIEW ");
                match (&self.body, cache.as_ref()) {
                    (Some(body), Some(cache)) => {
                        encode::string(out.buf(), preview(body, cache).as_bytes());
                    }
                    // Only a damaged blob gets here: LAZY's "not available now".
                    _ => out.put(b"NIL"),
                }
            }
            // Answered from the index, or planned, by the caller.
            FetchAttribute::Binary { .. }
            | FetchAttribute::BinarySize { .. }
            | FetchAttribute::Flags
            | FetchAttribute::InternalDate
            | FetchAttribute::Rfc822Size
            | FetchAttribute::Uid
            | FetchAttribute::ModSeq
            | FetchAttribute::EmailId
            | FetchAttribute::ThreadId
            | FetchAttribute::SaveDate => {}
        }
    }

    /// Writes a section's data as a literal (spool slice or computed bytes), `partial` applied.
    fn write_section(
        &self,
        cache: Option<&CacheView<'_>>,
        section: &Section,
        partial: Option<(u32, u32)>,
        out: &mut Out,
    ) {
        let Some(body) = &self.body else {
            out.put(b"NIL");
            return;
        };
        let data = if is_whole(section) {
            Some(SectionBytes::Range(0..body.len()))
        } else {
            cache.and_then(|c| c.section(body, &section.part, section.text.as_ref()))
        };
        match data {
            None => out.put(b"\"\""),
            Some(SectionBytes::Range(range)) => {
                let (start, end) = clip(range.start, range.end.min(body.len()), partial);
                encode::literal_header(out.buf(), end - start);
                // No NUL check here: it would read the whole range in this step, cold pages
                // included; the host makes it after the page-in (`OutChunk::Spool`).
                out.spool_text(body.slice(start, end));
            }
            Some(SectionBytes::Owned(bytes)) => {
                let (start, end) = clip(0, bytes.len(), partial);
                encode::literal_header(out.buf(), end - start);
                encode::extend_without_nul(out.buf(), &bytes[start..end]);
            }
        }
    }
}

impl Sources {
    /// The message, when it was read.
    pub(crate) fn message(&self) -> Option<&[u8]> {
        self.body.as_deref()
    }

    /// Plans `BINARY[part]<partial>` (see [`fetch_binary::plan`]); `Missing` when the part
    /// does not exist (or the message was not read).
    ///
    /// # Errors
    /// [`UnknownEncoding`]: answered `NO [UNKNOWN-CTE]`.
    pub(crate) fn binary_plan(
        &self,
        part: &[u32],
        partial: Option<(u32, u32)>,
        known: Option<Measure>,
        defer: bool,
        size_only: bool,
    ) -> Result<PartPlan, UnknownEncoding> {
        let Some(body) = &self.body else { return Ok(PartPlan::Missing) };
        let cache = self.cache.as_deref().and_then(|blob| CacheView::parse(blob).ok());
        fetch_binary::plan(cache.as_ref(), body, part, partial, known, defer, size_only)
    }
}

/// How many of `uids`, from the first, have BINARY parts (the non-PEEK ones of `attributes`)
/// in transfer encodings this server decodes: a FETCH answers `NO [UNKNOWN-CTE]` at the
/// next one, so only these may get `\Seen`. A message that cannot be read counts as
/// decodable (the FETCH reports it otherwise). Reads only part headers.
pub(crate) fn binary_decodable_prefix<D: Disk>(
    store: &UserStore<D>,
    mailbox: MailboxId,
    uids: impl ExactSizeIterator<Item = Uid>,
    attributes: &[FetchAttribute],
) -> usize {
    let count = uids.len();
    let parts: Vec<&[u32]> = attributes
        .iter()
        .filter_map(|a| match a {
            FetchAttribute::Binary { part, peek: false, .. } if !part.is_empty() => Some(&part[..]),
            _ => None,
        })
        .collect();
    if parts.is_empty() {
        return count;
    }
    for (index, uid) in uids.enumerate() {
        let (Ok(body), Ok(cache)) = (store.body(mailbox, uid), store.cache(mailbox, uid)) else {
            continue;
        };
        let Ok(view) = CacheView::parse(&cache) else { continue };
        if !parts.iter().all(|part| fetch_binary::encoding_known(&view, &body, part)) {
            return index;
        }
    }
    count
}

/// True for `BODY[]`: the whole message, as stored.
fn is_whole(section: &Section) -> bool {
    section.part.is_empty() && section.text.is_none()
}

/// True when answering `attributes` reads the message itself (from the mapped spool).
pub(crate) fn needs_body(attributes: &[FetchAttribute]) -> bool {
    attributes.iter().any(|a| {
        matches!(
            a,
            FetchAttribute::BodySection { .. }
                | FetchAttribute::Rfc822
                | FetchAttribute::Rfc822Header
                | FetchAttribute::Rfc822Text
                | FetchAttribute::Binary { .. }
                | FetchAttribute::BinarySize { .. }
                | FetchAttribute::Preview { .. }
        )
    })
}

/// Asks the store to read ahead the spool records of the [`PREFETCH_AHEAD_MESSAGES`] targets
/// after `position` (the message about to be answered), skipping those asked for already
/// (`targets[..done]`); returns the new `done`. The hints let the kernel read the records of a
/// multi-message FETCH while earlier ones are answered, instead of one page fault after
/// another on the shard's thread; the window keeps a `FETCH 1:* BODY[]` of a huge mailbox from
/// asking for all of it. The message at `position` itself gets no hint: it is read at once, so
/// a hint could not arrive in time, and a one-message FETCH pays no system call for nothing.
pub(crate) fn prefetch_ahead<D: Disk>(
    store: &UserStore<D>,
    mailbox: MailboxId,
    targets: &[(u32, Uid)],
    position: usize,
    mut done: usize,
) -> usize {
    let until = targets.len().min(position.saturating_add(PREFETCH_AHEAD_MESSAGES + 1));
    done = done.max(position + 1);
    while done < until {
        // Advisory: a message that cannot be prefetched is reported when it is read.
        let _ = store.prefetch(mailbox, targets[done].1);
        done += 1;
    }
    done
}

/// Applies `<origin.length>` to `[start, end)`.
fn clip(start: usize, end: usize, partial: Option<(u32, u32)>) -> (usize, usize) {
    let start = start.min(end);
    let Some((origin, length)) = partial else {
        return (start, end);
    };
    let from = start.saturating_add(origin as usize).min(end);
    let to = from.saturating_add(length as usize).min(end);
    (from, to)
}

/// Fallbacks for a cache blob that cannot be read (never expected: it was written by us).
const EMPTY_ENVELOPE: &[u8] = b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)";
const EMPTY_BODY: &[u8] = b"(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0)";

const WHOLE: Section = Section { part: Vec::new(), text: None };
const HEADER: Section = Section { part: Vec::new(), text: Some(SectionText::Header) };
const TEXT: Section = Section { part: Vec::new(), text: Some(SectionText::Text) };

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_clipping() {
        assert_eq!(clip(10, 20, None), (10, 20));
        assert_eq!(clip(10, 20, Some((0, 5))), (10, 15));
        assert_eq!(clip(10, 20, Some((8, 5))), (18, 20));
        assert_eq!(clip(10, 20, Some((30, 5))), (20, 20));
        assert_eq!(clip(10, 20, Some((2, u32::MAX))), (12, 20));
    }

    #[test]
    fn prefetch_runs_a_bounded_window_ahead() {
        use skua_core::disk::os::OsDisk;
        use skua_core::types::Flags;
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = std::rc::Rc::new(OsDisk::new(dir.path()).expect("disk"));
        let mut store = UserStore::open(disk, std::path::Path::new("u")).expect("store");
        let inbox = store.mailbox_id("INBOX").expect("inbox");
        let message = b"Subject: s\r\n\r\nbody\r\n";
        let mut targets = Vec::new();
        for msn in 1..=40 {
            let (uid, _) = store
                .append(inbox, message, &crate::mime::cache::build(message), Flags::default(), None)
                .expect("append");
            targets.push((msn, uid));
        }
        // A UID the store does not have (expunged meanwhile) is skipped like any other.
        targets.push((41, Uid::new(999).expect("uid")));
        let window = PREFETCH_AHEAD_MESSAGES + 1;
        let done = prefetch_ahead(&store, inbox, &targets, 0, 0);
        assert_eq!(done, window, "a window after the first message (itself not hinted)");
        assert_eq!(prefetch_ahead(&store, inbox, &targets, 0, done), done, "nothing twice");
        assert_eq!(prefetch_ahead(&store, inbox, &targets, 5, done), window + 5);
        assert_eq!(prefetch_ahead(&store, inbox, &targets, 40, window + 5), targets.len());
    }
}
