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
use crate::imap::types::{SearchKey, SearchReturn, SequenceSet, Tag};
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
    /// The highest modseq of all matches, of the first (MIN) and of the last (MAX).
    highest_modseq: u64,
    first_modseq: u64,
    last_modseq: u64,
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
    let task = SearchTask {
        uid: request.uid,
        esearch: request.esearch,
        key,
        uses_modseq,
        rev2: conn.enabled.rev2,
        position: 0,
        hits: Vec::new(),
        highest_modseq: 0,
        first_modseq: 0,
        last_modseq: 0,
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
                task.highest_modseq = task.highest_modseq.max(meta.modseq.0);
                if task.hits.len() == 1 {
                    task.first_modseq = meta.modseq.0;
                }
                task.last_modseq = meta.modseq.0;
            }
            slice.spend(1 + if loader.scanned > 0 { scan_units(loader.scanned) } else { 0 });
        }
    }
    if task.esearch.is_some_and(|options| options.save) {
        save_result(&task, view(conn));
    }
    write_result(&task, tag, out);
    Progress::Done(Completion::ok("SEARCH completed"))
}

/// Keeps what `SEARCH RETURN (SAVE ...)` found for `$` (RFC 5182 §2.4): with MIN and/or MAX
/// and neither ALL nor COUNT, only the messages those name; otherwise every match.
fn save_result(task: &SearchTask, view: &mut View) {
    let Some(options) = task.esearch else { return };
    let only_ends = (options.min || options.max) && !options.all && !options.count;
    let picked: Vec<u32> = if only_ends {
        let mut ends = Vec::new();
        if options.min {
            ends.extend(task.hits.first());
        }
        if options.max {
            ends.extend(task.hits.last().filter(|last| Some(*last) != ends.first()));
        }
        ends
    } else {
        task.hits.clone()
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
    if task.esearch.is_some_and(|o| o.save && !o.min && !o.max && !o.all && !o.count) {
        return;
    }
    // RFC 4731 §3.2, RFC 7162 §3.1.5: the highest modseq of the messages the answer returns;
    // with only MIN and/or MAX, those are the one or two messages it names.
    let returned_only_ends = task
        .esearch
        .is_some_and(|options| (options.min || options.max) && !options.count && !options.all);
    let highest = if returned_only_ends {
        let min = if task.esearch.is_some_and(|o| o.min) { task.first_modseq } else { 0 };
        let max = if task.esearch.is_some_and(|o| o.max) { task.last_modseq } else { 0 };
        min.max(max)
    } else {
        task.highest_modseq
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
    if let (Some(modseq), false) = (modseq, hits.is_empty()) {
        b.extend_from_slice(format!(" MODSEQ {modseq}").as_bytes());
    }
    b.extend_from_slice(b"\r\n");
}
