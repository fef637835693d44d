//! SEARCH / UID SEARCH (RFC 9051 §6.4.4) with ESEARCH result options (RFC 4731 / RFC 9051
//! `RETURN (MIN MAX COUNT ALL)`) and CONDSTORE's `MODSEQ` key (RFC 7162 §3.1.5).
//!
//! IMAP4rev1 clients get `* SEARCH n ...`; a client that used `RETURN` or enabled IMAP4rev2
//! gets `* ESEARCH (TAG "t") [UID] ...`.

use skua_core::disk::{Bytes, Disk};
use skua_core::store::UserStore;
use skua_core::types::{MailboxId, Uid};

use super::search_eval::{self, Candidate, Loader};
use super::slice::{Slice, scan_units};
use super::{LOOKUP_ONE_BY_ONE_MAX, Progress, Task, lookup, view};
use crate::imap::encode;
use crate::imap::reply::{self, Code, Completion};
use crate::imap::session::Conn;
use crate::imap::session::out::Out;
use crate::imap::types::{PartialRange, SearchKey, SearchReturn, SequenceSet, Tag};
use crate::imap::view::View;

/// A parsed SEARCH.
pub(crate) struct SearchRequest<'a> {
    /// UID SEARCH
    pub uid: bool,
    /// `RETURN (...)`
    pub esearch: Option<SearchReturn>,
    /// `CHARSET`
    pub charset: Option<String>,
    /// The keys (all must match).
    pub keys: &'a [SearchKey],
}

/// Reads a message's body and cache blob at most once, on first use, and counts the text the
/// keys scan (each key that reads the body scans it again).
struct LazyMessage<'a, D: Disk> {
    store: &'a UserStore<D>,
    mailbox: MailboxId,
    uid: Uid,
    body: Lazy,
    cache: Lazy,
    /// Bytes handed to keys that scan them.
    scanned: usize,
}

/// A value read at most once.
enum Lazy {
    /// Not asked for yet.
    Unread,
    /// Read (`None`: the store could not give it).
    Read(Option<Bytes>),
}

impl Lazy {
    fn get(&mut self, read: impl FnOnce() -> Option<Bytes>) -> Option<Bytes> {
        if let Lazy::Unread = self {
            *self = Lazy::Read(read());
        }
        match self {
            Lazy::Read(value) => value.clone(),
            Lazy::Unread => None,
        }
    }
}

impl<D: Disk> Loader for LazyMessage<'_, D> {
    fn body(&mut self) -> Option<Bytes> {
        let (store, mailbox, uid) = (self.store, self.mailbox, self.uid);
        let body = self.body.get(|| store.body(mailbox, uid).ok());
        self.scanned += body.as_ref().map_or(0, |b| b.len());
        body
    }

    fn cache(&mut self) -> Option<Bytes> {
        let (store, mailbox, uid) = (self.store, self.mailbox, self.uid);
        self.cache.get(|| store.cache(mailbox, uid).ok())
    }

    fn email_id(&mut self) -> Option<u64> {
        self.store.email_id(self.mailbox, self.uid).ok()
    }

    fn thread_id(&mut self) -> Option<u64> {
        self.store.thread_id(self.mailbox, self.uid).ok()
    }
}

/// A SEARCH between slices (see `slice.rs`).
#[derive(Debug)]
pub(crate) struct SearchTask {
    uid: bool,
    esearch: Option<SearchReturn>,
    key: SearchKey,
    uses_modseq: bool,
    /// Answer with ESEARCH (IMAP4rev2) when no RETURN was given.
    rev2: bool,
    /// The next position in the view to evaluate.
    position: usize,
    /// Matches so far (UIDs or sequence numbers), ascending.
    hits: Vec<u32>,
    /// With a MODSEQ key, the modseq of each hit (same order); empty otherwise.
    modseqs: Vec<u64>,
    /// `RETURN (UPDATE)` is honoured: the result becomes a context (`context.rs`) kept from
    /// these marks of the store, taken when the command started.
    update: Option<skua_core::store::MailboxMarks>,
    /// When the command started, unix seconds: every slice measures WITHIN's intervals from
    /// the same instant.
    now: i64,
}

/// `key` with every `$` (SEARCHRES) replaced by the UIDs it stands for, so that evaluation
/// needs no session state; `$` standing for nothing matches nothing.
pub(crate) fn with_saved(key: &SearchKey, view: &View) -> SearchKey {
    let saved = |set: &SequenceSet| match view.concrete(set) {
        Some(set) => SearchKey::Uid(set),
        None => SearchKey::Not(Box::new(SearchKey::All)),
    };
    match key {
        SearchKey::SequenceSet(set) | SearchKey::Uid(set) if set.is_saved() => saved(set),
        SearchKey::Not(inner) => SearchKey::Not(Box::new(with_saved(inner, view))),
        SearchKey::Or(a, b) => {
            SearchKey::Or(Box::new(with_saved(a, view)), Box::new(with_saved(b, view)))
        }
        SearchKey::And(keys) => SearchKey::And(keys.iter().map(|k| with_saved(k, view)).collect()),
        other => other.clone(),
    }
}

/// SEARCH / UID SEARCH: checks the request and runs its first slice.
pub(crate) fn search<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    tag: &Tag,
    request: &SearchRequest<'_>,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    if let Some(charset) = &request.charset
        && !charset.eq_ignore_ascii_case("US-ASCII")
        && !charset.eq_ignore_ascii_case("UTF-8")
    {
        if request.esearch.is_some_and(|options| options.save) {
            // RFC 5182 §2.1: a SEARCH with SAVE that fails leaves `$` empty.
            view(conn).save_result(Vec::new());
        }
        return Progress::Done(Completion::no("Unsupported charset").with(Code::BadCharset));
    }
    let selected = view(conn);
    let key = SearchKey::And(request.keys.iter().map(|key| with_saved(key, selected)).collect());
    let uses_modseq = search_eval::uses_modseq(&key);
    if uses_modseq {
        if !conn.config.condstore {
            return Progress::Done(Completion::bad("MODSEQ needs CONDSTORE"));
        }
        super::enable_condstore(conn, out);
    }
    let update = match start_update(conn, store, tag, request.uid, request.esearch, &key, out) {
        Ok(update) => update,
        Err(completion) => return Progress::Done(completion),
    };
    let task = SearchTask {
        uid: request.uid,
        esearch: request.esearch,
        key,
        uses_modseq,
        rev2: conn.enabled.rev2,
        position: 0,
        hits: Vec::new(),
        modseqs: Vec::new(),
        update,
        now: unix_now(),
    };
    resume(conn, store, tag, task, out, slice)
}

/// The wall clock in unix seconds (the only clock SEARCH reads: WITHIN, RFC 5032).
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Runs one more slice of a SEARCH; the last one writes the result.
pub(crate) fn resume<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    tag: &Tag,
    mut task: SearchTask,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    let selected = view(conn);
    let mailbox = selected.mailbox;
    let keywords = store.keyword_table(mailbox).unwrap_or_default();
    while task.position < selected.len() {
        if slice.spent(out) {
            return Progress::Paused(Task::Search(task));
        }
        // One lookup-sized chunk: O(chunk × log n) to find its records.
        let end = (task.position + LOOKUP_ONE_BY_ONE_MAX).min(selected.len());
        let uids = &selected.uids()[task.position..end];
        let messages = match lookup(store, mailbox, uids.iter().copied()) {
            Ok(messages) => messages,
            Err(error) => return Progress::Done(reply::read(&error)),
        };
        while task.position < end && !slice.spent(out) {
            let index = task.position;
            task.position += 1;
            let uid = selected.uids()[index];
            // Expunged by another session since the view last synced: not a match.
            let Ok(position) = messages.binary_search_by_key(&uid, |m| m.uid) else {
                slice.spend(1);
                continue;
            };
            let meta = &messages[position];
            let candidate = Candidate::in_view(selected, index, meta, keywords, task.now);
            let mut loader = LazyMessage {
                store,
                mailbox,
                uid,
                body: Lazy::Unread,
                cache: Lazy::Unread,
                scanned: 0,
            };
            if search_eval::matches(&task.key, &candidate, &mut loader) {
                task.hits.push(if task.uid { uid.get() } else { candidate.msn });
                if task.uses_modseq {
                    task.modseqs.push(meta.modseq.0);
                }
            }
            slice.spend(1 + if loader.scanned > 0 { scan_units(loader.scanned) } else { 0 });
        }
    }
    if task.esearch.is_some_and(|options| options.save) {
        save_result(&task, view(conn));
    }
    write_result(&task, tag, out);
    if let Some(marks) = task.update {
        let items = task.hits.iter().map(|&uid| context_item(uid)).collect();
        super::context::keep(
            view(conn),
            tag.as_str(),
            task.key,
            None,
            (items, Default::default()),
            marks,
        );
    }
    Progress::Done(Completion::ok("SEARCH completed"))
}

/// A SEARCH result as a context keeps it: the UID alone (no order keys).
fn context_item(uid: u32) -> super::sort::Item {
    super::sort::Item {
        msn: uid,
        uid,
        size: 0,
        arrival: 0,
        sent: 0,
        modseq: 0,
        keys: None,
        text: 0,
    }
}

/// `RETURN (UPDATE)` at the start of a SEARCH or SORT: `Ok(Some(marks))` when a context will be
/// kept from the store's marks now, `Ok(None)` when none was asked for or it is refused with
/// `* NO [NOUPDATE]` (the command goes on), `Err` for a tag already naming a context (BAD,
/// RFC 5267 §4.3).
pub(crate) fn start_update<D: Disk>(
    conn: &mut Conn,
    store: &UserStore<D>,
    tag: &Tag,
    uid: bool,
    esearch: Option<SearchReturn>,
    key: &SearchKey,
    out: &mut Out,
) -> Result<Option<skua_core::store::MailboxMarks>, Completion> {
    if !esearch.is_some_and(|options| options.update) {
        return Ok(None);
    }
    let selected = view(conn);
    match super::context::check(selected, tag.as_str(), uid, key) {
        Ok(()) => Ok(store.mailbox_marks(selected.mailbox)),
        Err(super::context::Refusal::TagInUse) => Err(Completion::bad("Tag reuse")),
        Err(super::context::Refusal::NoUpdate(text)) => {
            super::context::write_noupdate(out, tag.as_str(), text);
            Ok(None)
        }
    }
}

/// The results a `RETURN` names by position among `n` results in answer order (RFC 4731
/// §3.2, RFC 9394 §3.2): `None` for every result (with ALL or COUNT, or when no MIN, MAX or
/// PARTIAL narrows them), else the PARTIAL page with the MIN (first) and MAX (last) result.
/// `$` keeps these (SAVE), and MODSEQ is the highest among them.
pub(crate) fn named_indexes(options: SearchReturn, n: usize) -> Option<Vec<usize>> {
    if options.all || options.count || !(options.min || options.max || options.partial.is_some()) {
        return None;
    }
    let mut picked: Vec<usize> =
        options.partial.map_or(Vec::new(), |r| partial_indexes(r, n).collect());
    if options.min && n > 0 {
        picked.push(0);
    }
    if options.max && n > 0 {
        picked.push(n - 1);
    }
    picked.sort_unstable();
    picked.dedup();
    Some(picked)
}

/// The positions (0-based, in answer order) a PARTIAL range names among `n` results
/// (RFC 9394 §3.1): `1:100` the first hundred, `-1:-100` the last hundred; past the end the
/// range is cut short, possibly to nothing.
pub(crate) fn partial_indexes(range: PartialRange, n: usize) -> std::ops::Range<usize> {
    let (low, high) = (range.low as usize, range.high as usize);
    let (start, end) = if range.from_end {
        (n.saturating_sub(high), n.saturating_sub(low - 1))
    } else {
        ((low - 1).min(n), high.min(n))
    };
    start..end.max(start)
}

/// ` PARTIAL (range set)` or ` PARTIAL (range NIL)` (RFC 9394 §3.1), the range as the client
/// gave it; `write_set` writes the page's numbers.
pub(crate) fn write_partial(
    b: &mut Vec<u8>,
    range: PartialRange,
    page_empty: bool,
    write_set: impl FnOnce(&mut Vec<u8>),
) {
    let (first, second) =
        if range.reversed { (range.high, range.low) } else { (range.low, range.high) };
    let sign = if range.from_end { "-" } else { "" };
    b.extend_from_slice(format!(" PARTIAL ({sign}{first}:{sign}{second} ").as_bytes());
    if page_empty {
        b.extend_from_slice(b"NIL");
    } else {
        write_set(b);
    }
    b.push(b')');
}

/// Keeps what `SEARCH RETURN (SAVE ...)` found for `$` (RFC 5182 §2.4, RFC 9394 §3.2): the
/// results [`named_indexes`] names.
fn save_result(task: &SearchTask, view: &mut View) {
    let Some(options) = task.esearch else { return };
    let picked: Vec<u32> = match named_indexes(options, task.hits.len()) {
        Some(indexes) => indexes.into_iter().map(|i| task.hits[i]).collect(),
        None => task.hits.clone(),
    };
    // Hits are sequence numbers unless UID SEARCH: `$` keeps UIDs either way.
    let mut uids: Vec<Uid> = if task.uid {
        picked.into_iter().filter_map(Uid::new).collect()
    } else {
        picked.into_iter().filter_map(|msn| view.uids().get(msn as usize - 1).copied()).collect()
    };
    uids.sort_unstable();
    uids.dedup();
    view.save_result(uids);
}

/// The untagged SEARCH or ESEARCH response; none for `RETURN (SAVE)` alone (RFC 5182 §2.4).
fn write_result(task: &SearchTask, tag: &Tag, out: &mut Out) {
    if task
        .esearch
        .is_some_and(|o| o.save && !o.min && !o.max && !o.all && !o.count && o.partial.is_none())
    {
        return;
    }
    // RFC 4731 §3.2, RFC 7162 §3.1.5: the highest modseq of the messages the answer returns;
    // with only MIN, MAX and/or PARTIAL, those are the ones it names.
    let named = task.esearch.and_then(|options| named_indexes(options, task.modseqs.len()));
    let highest = match named {
        Some(indexes) => indexes.into_iter().map(|i| task.modseqs[i]).max().unwrap_or(0),
        None => task.modseqs.iter().copied().max().unwrap_or(0),
    };
    let modseq = task.uses_modseq.then_some(highest).filter(|&m| m > 0);
    match task.esearch {
        Some(options) => write_esearch(out, tag, task.uid, options, &task.hits, modseq),
        None if task.rev2 => {
            let all = SearchReturn { all: true, ..SearchReturn::default() };
            write_esearch(out, tag, task.uid, all, &task.hits, modseq);
        }
        None => write_search(out, &task.hits, modseq),
    }
}

/// `* SEARCH 1 2 3 [(MODSEQ n)]`
fn write_search(out: &mut Out, hits: &[u32], modseq: Option<u64>) {
    let b = out.buf();
    b.extend_from_slice(b"* SEARCH");
    for hit in hits {
        b.push(b' ');
        encode::number(b, u64::from(*hit));
    }
    if let (Some(modseq), false) = (modseq, hits.is_empty()) {
        b.extend_from_slice(format!(" (MODSEQ {modseq})").as_bytes());
    }
    b.extend_from_slice(b"\r\n");
}

/// `* ESEARCH (TAG "t") [UID] [MIN n] [MAX n] [COUNT n] [ALL set] [MODSEQ n]`. An empty
/// `RETURN ()` means `ALL` (RFC 4731 §3.1).
fn write_esearch(
    out: &mut Out,
    tag: &Tag,
    uid: bool,
    options: SearchReturn,
    hits: &[u32],
    modseq: Option<u64>,
) {
    let options = if options == SearchReturn::default() {
        SearchReturn { all: true, ..options }
    } else {
        options
    };
    let b = out.buf();
    b.extend_from_slice(b"* ESEARCH (TAG ");
    encode::string(b, tag.as_str().as_bytes());
    b.push(b')');
    if uid {
        b.extend_from_slice(b" UID");
    }
    if let (true, Some(min)) = (options.min, hits.first()) {
        b.extend_from_slice(format!(" MIN {min}").as_bytes());
    }
    if let (true, Some(max)) = (options.max, hits.last()) {
        b.extend_from_slice(format!(" MAX {max}").as_bytes());
    }
    if options.count {
        b.extend_from_slice(format!(" COUNT {}", hits.len()).as_bytes());
    }
    if options.all && !hits.is_empty() {
        b.extend_from_slice(b" ALL ");
        encode::sequence_set(b, hits);
    }
    if let Some(range) = options.partial {
        let page = &hits[partial_indexes(range, hits.len())];
        write_partial(b, range, page.is_empty(), |b| encode::sequence_set(b, page));
    }
    if let (Some(modseq), false) = (modseq, hits.is_empty()) {
        b.extend_from_slice(format!(" MODSEQ {modseq}").as_bytes());
    }
    b.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(first: u32, second: u32, from_end: bool) -> PartialRange {
        PartialRange {
            low: first.min(second),
            high: first.max(second),
            from_end,
            reversed: first > second,
        }
    }

    #[test]
    fn partial_ranges_count_from_either_end_and_stop_at_the_results() {
        assert_eq!(partial_indexes(range(1, 2, false), 5), 0..2);
        assert_eq!(partial_indexes(range(4, 9, false), 5), 3..5);
        assert_eq!(partial_indexes(range(6, 9, false), 5), 5..5);
        assert_eq!(partial_indexes(range(1, 2, true), 5), 3..5);
        assert_eq!(partial_indexes(range(2, 100, true), 5), 0..4);
        assert_eq!(partial_indexes(range(6, 9, true), 5), 0..0);
        assert_eq!(partial_indexes(range(1, u32::MAX, true), 0), 0..0);
    }

    #[test]
    fn save_keeps_the_page_and_the_ends_unless_count_or_all() {
        let partial = Some(range(2, 3, false));
        let only = |o: SearchReturn| named_indexes(o, 6);
        assert_eq!(only(SearchReturn { partial, ..SearchReturn::default() }), Some(vec![1, 2]));
        let with_max = SearchReturn { partial, max: true, ..SearchReturn::default() };
        assert_eq!(only(with_max), Some(vec![1, 2, 5]));
        let with_count = SearchReturn { partial, count: true, ..SearchReturn::default() };
        assert_eq!(only(with_count), None);
        assert_eq!(only(SearchReturn { save: true, ..SearchReturn::default() }), None);
        let ends = SearchReturn { min: true, max: true, ..SearchReturn::default() };
        assert_eq!(named_indexes(ends, 1), Some(vec![0]));
    }

    #[test]
    fn partial_echoes_the_range_as_given() {
        let mut b = Vec::new();
        write_partial(&mut b, range(1, 100, true), false, |b| b.extend_from_slice(b"7:9"));
        write_partial(&mut b, range(500, 400, false), true, |_| unreachable!());
        assert_eq!(b, b" PARTIAL (-1:-100 7:9) PARTIAL (500:400 NIL)");
    }
}
