//! Evaluation of one SEARCH key tree against one message.
//!
//! Index keys (flags, sizes, dates, UIDs, sequence numbers, MODSEQ) read the message's record;
//! header and text keys read the message from the spool through `mime::search` (BODY and TEXT
//! find its text parts in the cache blob's part table); SENT* keys read the Date: header's
//! time from the cache blob; EMAILID reads the spool record's EMAILID. The message and blob are
//! read only when a key needs them, at most once per message.

use skua_core::disk::Bytes;
use skua_core::store::MessageMeta;
use skua_core::types::{InternalDate, SystemFlags};

use crate::imap::types::{Flag, SearchKey};
use crate::mime::cache::CacheView;

/// Deepest key nesting evaluated. The parser bounds nesting more tightly; this guards the
/// recursion against a command built by other means.
pub(crate) const DEPTH_MAX: u32 = crate::imap::limits::SEARCH_DEPTH_CEILING;

/// What a message offers to the evaluator.
pub(crate) struct Candidate<'a> {
    /// Its sequence number in this session.
    pub msn: u32,
    /// Its index record.
    pub meta: &'a MessageMeta,
    /// Its keyword names (bit i = `keywords[i]`).
    pub keywords: &'a [String],
    /// Number of messages in the view (`*` for sequence sets).
    pub msn_largest: u32,
    /// Largest UID in the view (`*` for UID sets).
    pub uid_largest: u32,
    /// `\Recent` for this session (IMAP4rev1).
    pub recent: bool,
    /// When the search started, unix seconds (WITHIN's OLDER and YOUNGER count back from it).
    pub now: i64,
}

impl<'a> Candidate<'a> {
    /// The message at `index` of `view` (its record `meta`), for a command that started at
    /// `now` (unix seconds).
    pub(crate) fn in_view(
        view: &crate::imap::view::View,
        index: usize,
        meta: &'a MessageMeta,
        keywords: &'a [String],
        now: i64,
    ) -> Candidate<'a> {
        Candidate {
            msn: crate::imap::view::msn_from_index(index),
            meta,
            keywords,
            msn_largest: u32::try_from(view.len()).unwrap_or(u32::MAX),
            uid_largest: view.uids().last().map_or(0, |u| u.get()),
            recent: view.is_recent(meta.uid),
            now,
        }
    }
}

/// Lazily loaded message data.
pub(crate) trait Loader {
    /// The raw message.
    fn body(&mut self) -> Option<Bytes>;
    /// The cache blob.
    fn cache(&mut self) -> Option<Bytes>;
    /// The message's EMAILID (RFC 8474), as the store numbers it.
    fn email_id(&mut self) -> Option<u64>;
    /// The message's THREADID (RFC 8474), as the store numbers it.
    fn thread_id(&mut self) -> Option<u64>;
}

/// True when the key tree uses `MODSEQ` (the SEARCH reply then carries `(MODSEQ n)`).
pub(crate) fn uses_modseq(key: &SearchKey) -> bool {
    any_key(key, &|k| matches!(k, SearchKey::ModSeq(_)))
}

/// Walks the tree without recursion, answering whether any key satisfies `predicate`.
fn any_key(root: &SearchKey, predicate: &dyn Fn(&SearchKey) -> bool) -> bool {
    let mut stack = vec![root];
    while let Some(key) = stack.pop() {
        if predicate(key) {
            return true;
        }
        match key {
            SearchKey::Not(inner) => stack.push(inner),
            SearchKey::Or(a, b) => {
                stack.push(a);
                stack.push(b);
            }
            SearchKey::And(keys) => stack.extend(keys.iter()),
            _ => {}
        }
    }
    false
}

/// Evaluates `key` for one message.
pub(crate) fn matches(key: &SearchKey, c: &Candidate<'_>, loader: &mut dyn Loader) -> bool {
    eval(key, c, loader, 0)
}

fn eval(key: &SearchKey, c: &Candidate<'_>, loader: &mut dyn Loader, depth: u32) -> bool {
    if depth > DEPTH_MAX {
        return false;
    }
    let meta = c.meta;
    match key {
        SearchKey::All => true,
        SearchKey::SequenceSet(set) => set.contains(c.msn, c.msn_largest),
        SearchKey::Uid(set) => set.contains(meta.uid.get(), c.uid_largest),
        SearchKey::Flag(flag) => has_flag(c, flag),
        SearchKey::NotFlag(flag) => !has_flag(c, flag),
        SearchKey::Larger(n) => meta.size > *n,
        SearchKey::Smaller(n) => meta.size < *n,
        SearchKey::ModSeq(n) => meta.modseq.0 >= *n,
        SearchKey::Older(n) => {
            c.now.saturating_sub(meta.internal_date.unix_seconds) > i64::from(*n)
        }
        SearchKey::Younger(n) => {
            c.now.saturating_sub(meta.internal_date.unix_seconds) <= i64::from(*n)
        }
        SearchKey::Before(day) => local_day(meta.internal_date) < *day,
        SearchKey::On(day) => local_day(meta.internal_date) == *day,
        SearchKey::Since(day) => local_day(meta.internal_date) >= *day,
        SearchKey::SentBefore(day) => sent_day(c, loader) < *day,
        SearchKey::SentOn(day) => sent_day(c, loader) == *day,
        SearchKey::SentSince(day) => sent_day(c, loader) >= *day,
        SearchKey::From(s) => address_header(loader, "From", s),
        SearchKey::To(s) => address_header(loader, "To", s),
        SearchKey::Cc(s) => address_header(loader, "Cc", s),
        SearchKey::Bcc(s) => address_header(loader, "Bcc", s),
        SearchKey::Subject(s) => header(loader, "Subject", s),
        SearchKey::Header(name, s) => header(loader, name, s),
        SearchKey::Body(s) => body_text(loader, s, false),
        SearchKey::Text(s) => body_text(loader, s, true),
        SearchKey::EmailId(id) => {
            super::objectid::parse_email_id(id).is_some_and(|id| loader.email_id() == Some(id))
        }
        SearchKey::ThreadId(id) => {
            super::objectid::parse_thread_id(id).is_some_and(|id| loader.thread_id() == Some(id))
        }
        SearchKey::SavedBefore(day) => super::objectid::saved_day(meta) < *day,
        SearchKey::SavedOn(day) => super::objectid::saved_day(meta) == *day,
        SearchKey::SavedSince(day) => super::objectid::saved_day(meta) >= *day,
        // Every mailbox keeps save dates (RFC 8514 §4.3).
        SearchKey::SavedateSupported => true,
        SearchKey::Not(inner) => !eval(inner, c, loader, depth + 1),
        SearchKey::Or(a, b) => eval(a, c, loader, depth + 1) || eval(b, c, loader, depth + 1),
        SearchKey::And(keys) => keys.iter().all(|k| eval(k, c, loader, depth + 1)),
    }
}

fn address_header(loader: &mut dyn Loader, name: &str, needle: &str) -> bool {
    loader.body().is_some_and(|m| crate::mime::search::address_header_contains(&m, name, needle))
}

fn header(loader: &mut dyn Loader, name: &str, needle: &str) -> bool {
    loader.body().is_some_and(|m| crate::mime::search::header_contains(&m, name, needle))
}

/// `BODY` (`text` false) or `TEXT`: the text parts are read from the message's cache blob
/// (`mime::cache::for_each_text_leaf`) rather than found by scanning the whole message, its
/// attachments included; without a blob the message is scanned. The answer is the same.
fn body_text(loader: &mut dyn Loader, needle: &str, text: bool) -> bool {
    use crate::mime::search;
    let Some(message) = loader.body() else { return false };
    match (loader.cache(), text) {
        (Some(blob), false) => search::body_contains_cached(&message, &blob, needle),
        (Some(blob), true) => search::text_contains_cached(&message, &blob, needle),
        (None, false) => search::body_contains(&message, needle),
        (None, true) => search::text_contains(&message, needle),
    }
}

fn has_flag(c: &Candidate<'_>, flag: &Flag) -> bool {
    let system = c.meta.flags.system;
    match flag {
        Flag::Seen => system.contains(SystemFlags::SEEN),
        Flag::Answered => system.contains(SystemFlags::ANSWERED),
        Flag::Flagged => system.contains(SystemFlags::FLAGGED),
        Flag::Deleted => system.contains(SystemFlags::DELETED),
        Flag::Draft => system.contains(SystemFlags::DRAFT),
        Flag::Keyword(name) => c
            .keywords
            .iter()
            .position(|k| k.eq_ignore_ascii_case(name))
            .is_some_and(|i| i < 64 && c.meta.flags.keywords.0 & (1u64 << i) != 0),
        // `\Recent` is the session's; other extension flags are never set here.
        Flag::Extension(name) => name.eq_ignore_ascii_case("Recent") && c.recent,
    }
}

/// The day (since the epoch) of a date in its own zone: RFC 9051 compares dates
/// "disregarding time and timezone".
pub(crate) fn local_day(date: InternalDate) -> i64 {
    (date.unix_seconds + i64::from(date.zone_minutes) * 60).div_euclid(86_400)
}

/// The Date: header's day, falling back to the internal date when there is none.
fn sent_day(c: &Candidate<'_>, loader: &mut dyn Loader) -> i64 {
    let sent = loader.cache().and_then(|blob| CacheView::parse(&blob).ok()?.sent_day());
    sent.unwrap_or_else(|| local_day(c.meta.internal_date))
}
