//! SORT / UID SORT (RFC 5256 §3), ESORT's `RETURN (MIN MAX ALL COUNT)` answered with ESEARCH
//! (RFC 5267 §3), the DISPLAYFROM / DISPLAYTO keys (SORT=DISPLAY, RFC 5957), and the part of
//! THREAD they share: choosing the messages and gathering their keys.
//!
//! A SORT or THREAD runs in three phases, each resumable (`slice.rs`):
//!
//! 1. **Gather**, a bounded number of messages per slice: evaluate the search keys (SEARCH's
//!    evaluator) and, for each match, copy the keys the order needs into an [`Item`]: the index
//!    record's size and internal date, and from the cache blob the sent date and the key
//!    section (`mime/cache/keys.rs`). The blob is read only when a key needs it, and the message
//!    only when a search key does (or for a version 1 blob, which has no key section).
//! 2. **Order**, in one step: sort the items (O(n log n); 100,000 keys take a few tens of
//!    milliseconds) or thread them (`thread.rs`), and render the whole response.
//! 3. **Emit**: write the rendered response at most one slice's output budget at a time, so a
//!    session holds no more than that for a client that stops reading.
//!
//! Strings compare with `i;ascii-casemap` (RFC 4790 §9.2): they are upper-cased in ASCII when
//! gathered, then compared as octets. Ties, and equal keys, go by sequence number (RFC 5256
//! §3); `REVERSE` reverses one key, not the tie-break.

use std::cmp::Ordering;

use skua_core::disk::{Bytes, Disk};
use skua_core::store::UserStore;
use skua_core::types::{MailboxId, Uid};

use super::search_eval::{self, Candidate, Loader};
use super::slice::{Slice, scan_units};
use super::{LOOKUP_ONE_BY_ONE_MAX, Progress, Task, lookup, thread, view};
use crate::imap::encode;
use crate::imap::limits::SLICE_OUTPUT_BYTES_MAX;
use crate::imap::reply::{self, Code, Completion};
use crate::imap::session::Conn;
use crate::imap::session::out::Out;
use crate::imap::types::{SearchKey, SearchReturn, SortCriterion, SortKey, Tag, ThreadAlgorithm};
use crate::mime::cache::{CacheView, SortKeys};

/// What to do with the messages found.
#[derive(Clone, Debug)]
pub(crate) enum Order {
    /// SORT: by these criteria; ESORT when `esearch` is set.
    Sort {
        /// Most significant first.
        criteria: Vec<SortCriterion>,
        /// `RETURN (...)`.
        esearch: Option<SearchReturn>,
    },
    /// THREAD with this algorithm.
    Thread(ThreadAlgorithm),
}

/// A parsed SORT or THREAD.
pub(crate) struct OrderRequest<'a> {
    /// UID SORT / UID THREAD
    pub uid: bool,
    /// SORT or THREAD.
    pub order: Order,
    /// The charset of the search keys.
    pub charset: &'a str,
    /// The search keys (all must match).
    pub keys: &'a [SearchKey],
}

/// One message that matched, with the keys its order needs.
#[derive(Debug)]
pub(crate) struct Item {
    /// Sequence number in this session.
    pub msn: u32,
    /// UID.
    pub uid: u32,
    /// RFC822.SIZE.
    pub size: u32,
    /// Internal date, seconds since the epoch.
    pub arrival: i64,
    /// Sent date (the Date: header, else the internal date), seconds since the epoch; 0 when
    /// the order does not need it.
    pub sent: i64,
    /// Its mod-sequence (for CONDSTORE's `(MODSEQ n)`).
    pub modseq: u64,
    /// The key section, display and address strings upper-cased (`i;ascii-casemap`); `None`
    /// when the order does not need it.
    pub keys: Option<Box<SortKeys>>,
}

impl Item {
    /// The number the response gives: UID or sequence number.
    pub(crate) fn number(&self, uid: bool) -> u32 {
        if uid { self.uid } else { self.msn }
    }

    fn keys(&self) -> &SortKeys {
        self.keys.as_deref().expect("gathered when a key needs it")
    }
}

/// What the order reads from the cache blob.
#[derive(Clone, Copy, Debug)]
struct Needs {
    sent: bool,
    keys: bool,
}

/// A SORT or THREAD between slices.
#[derive(Debug)]
pub(crate) struct SortTask {
    uid: bool,
    order: Order,
    key: SearchKey,
    uses_modseq: bool,
    needs: Needs,
    /// Next position in the view to evaluate.
    position: usize,
    items: Vec<Item>,
    /// The rendered response and how much of it was written, once ordered.
    emit: Option<(Vec<u8>, usize)>,
    /// When the command started, unix seconds (WITHIN's keys count from it).
    now: i64,
}

/// SORT / THREAD and their UID forms: checks the request and runs the first slice.
pub(crate) fn start<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    tag: &Tag,
    request: OrderRequest<'_>,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    if !request.charset.eq_ignore_ascii_case("US-ASCII")
        && !request.charset.eq_ignore_ascii_case("UTF-8")
    {
        return Progress::Done(Completion::no("Unsupported charset").with(Code::BadCharset));
    }
    let selected = view(conn);
    let key = SearchKey::And(
        request.keys.iter().map(|k| super::search::with_saved(k, selected)).collect(),
    );
    let uses_modseq = search_eval::uses_modseq(&key);
    if uses_modseq {
        if !conn.config.condstore {
            return Progress::Done(Completion::bad("MODSEQ needs CONDSTORE"));
        }
        super::enable_condstore(conn, out);
    }
    let needs = match &request.order {
        Order::Thread(_) => Needs { sent: true, keys: true },
        Order::Sort { criteria, .. } => Needs {
            sent: criteria.iter().any(|c| c.key == SortKey::Date),
            keys: criteria
                .iter()
                .any(|c| !matches!(c.key, SortKey::Date | SortKey::Arrival | SortKey::Size)),
        },
    };
    let task = SortTask {
        now: super::search::unix_now(),
        uid: request.uid,
        order: request.order,
        key,
        uses_modseq,
        needs,
        position: 0,
        items: Vec::new(),
        emit: None,
    };
    resume(conn, store, tag, task, out, slice)
}

/// Runs one more slice of a SORT or THREAD.
pub(crate) fn resume<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    tag: &Tag,
    mut task: SortTask,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    if task.emit.is_none() {
        if let Err(completion) = gather(conn, store, &mut task, out, slice) {
            return Progress::Done(completion);
        }
        if task.position < view(conn).len() {
            return Progress::Paused(Task::Sort(task));
        }
        let text = render(&mut task, tag);
        // The order step is one step; count it so the slice ends after it.
        slice.spend(u64::try_from(task.items.len()).unwrap_or(u64::MAX) / 64);
        task.items = Vec::new();
        task.emit = Some((text, 0));
    }
    let (text, written) = task.emit.as_mut().expect("set above");
    let room = SLICE_OUTPUT_BYTES_MAX.saturating_sub(out.total_bytes());
    let end = (*written + room).min(text.len());
    out.put(&text[*written..end]);
    *written = end;
    if end < text.len() {
        return Progress::Paused(Task::Sort(task));
    }
    let done = match task.order {
        Order::Sort { .. } => "SORT completed",
        Order::Thread(_) => "THREAD completed",
    };
    Progress::Done(Completion::ok(done))
}

/// Evaluates and gathers messages until the view is done or the slice is spent.
fn gather<D: Disk>(
    conn: &mut Conn,
    store: &UserStore<D>,
    task: &mut SortTask,
    out: &Out,
    slice: &mut Slice,
) -> Result<(), Completion> {
    let selected = view(conn);
    let mailbox = selected.mailbox;
    let keywords = store.keyword_table(mailbox).unwrap_or_default();
    while task.position < selected.len() && !slice.spent(out) {
        let end = (task.position + LOOKUP_ONE_BY_ONE_MAX).min(selected.len());
        let uids = &selected.uids()[task.position..end];
        let messages = lookup(store, mailbox, uids.iter().copied()).map_err(|e| reply::read(&e))?;
        while task.position < end && !slice.spent(out) {
            let index = task.position;
            task.position += 1;
            let uid = selected.uids()[index];
            // Expunged by another session since the view last synced: not a match.
            let Ok(found) = messages.binary_search_by_key(&uid, |m| m.uid) else {
                slice.spend(1);
                continue;
            };
            let meta = &messages[found];
            let candidate = Candidate::in_view(selected, index, meta, keywords, task.now);
            let mut message = Message::new(store, mailbox, uid);
            if search_eval::matches(&task.key, &candidate, &mut message) {
                let arrival = meta.internal_date.unix_seconds;
                let (sent, keys) = message.order_keys(task.needs, arrival);
                task.items.push(Item {
                    msn: candidate.msn,
                    uid: uid.get(),
                    size: meta.size,
                    arrival,
                    sent,
                    modseq: meta.modseq.0,
                    keys,
                });
            }
            // Reading the blob's few hundred bytes of keys costs about what the record lookup
            // does: one unit a message either way, plus the text a search key scanned.
            let scanned = if message.scanned > 0 { scan_units(message.scanned) } else { 0 };
            slice.spend(1 + scanned);
        }
    }
    Ok(())
}

/// Orders the gathered items and renders the whole response.
fn render(task: &mut SortTask, tag: &Tag) -> Vec<u8> {
    match &task.order {
        Order::Thread(algorithm) => thread::render(&mut task.items, *algorithm, task.uid),
        Order::Sort { criteria, esearch } => {
            task.items.sort_unstable_by(|a, b| compare(a, b, criteria));
            let mut text = Vec::new();
            match esearch {
                Some(options) => write_esearch(&mut text, tag, task, *options),
                None => write_sort(&mut text, task),
            }
            text
        }
    }
}

/// RFC 5256 §3: the criteria in turn, then the sequence number.
fn compare(a: &Item, b: &Item, criteria: &[SortCriterion]) -> Ordering {
    for criterion in criteria {
        let order = match criterion.key {
            SortKey::Arrival => a.arrival.cmp(&b.arrival),
            SortKey::Date => a.sent.cmp(&b.sent),
            SortKey::Size => a.size.cmp(&b.size),
            SortKey::Cc => a.keys().cc_mailbox.cmp(&b.keys().cc_mailbox),
            SortKey::From => a.keys().from_mailbox.cmp(&b.keys().from_mailbox),
            SortKey::To => a.keys().to_mailbox.cmp(&b.keys().to_mailbox),
            SortKey::Subject => a.keys().base_subject.cmp(&b.keys().base_subject),
            SortKey::DisplayFrom => a.keys().from_display.cmp(&b.keys().from_display),
            SortKey::DisplayTo => a.keys().to_display.cmp(&b.keys().to_display),
        };
        let order = if criterion.reverse { order.reverse() } else { order };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.msn.cmp(&b.msn)
}

/// `* SORT n n ...` (RFC 5256 §4), with `(MODSEQ n)` when a MODSEQ key was used (RFC 7162
/// §3.1.5).
fn write_sort(text: &mut Vec<u8>, task: &SortTask) {
    text.extend_from_slice(b"* SORT");
    for item in &task.items {
        text.push(b' ');
        encode::number(text, u64::from(item.number(task.uid)));
    }
    let highest = task.items.iter().map(|i| i.modseq).max();
    if let (true, Some(highest)) = (task.uses_modseq, highest) {
        text.extend_from_slice(format!(" (MODSEQ {highest})").as_bytes());
    }
    text.extend_from_slice(b"\r\n");
}

/// ESORT (RFC 5267 §3): `* ESEARCH (TAG "t") [UID] [MIN n] [MAX n] [COUNT n] [ALL set]`, MIN
/// and MAX being the first and last message in sort order and ALL the set in sort order.
fn write_esearch(text: &mut Vec<u8>, tag: &Tag, task: &SortTask, options: SearchReturn) {
    let items = &task.items;
    text.extend_from_slice(b"* ESEARCH (TAG ");
    encode::string(text, tag.as_str().as_bytes());
    text.push(b')');
    if task.uid {
        text.extend_from_slice(b" UID");
    }
    let (first, last) = (items.first(), items.last());
    if let (true, Some(first)) = (options.min, first) {
        text.extend_from_slice(format!(" MIN {}", first.number(task.uid)).as_bytes());
    }
    if let (true, Some(last)) = (options.max, last) {
        text.extend_from_slice(format!(" MAX {}", last.number(task.uid)).as_bytes());
    }
    if options.count {
        text.extend_from_slice(format!(" COUNT {}", items.len()).as_bytes());
    }
    if options.all && !items.is_empty() {
        text.extend_from_slice(b" ALL ");
        let numbers: Vec<u32> = items.iter().map(|i| i.number(task.uid)).collect();
        ordered_set(text, &numbers);
    }
    if task.uses_modseq && !items.is_empty() {
        let only_ends = (options.min || options.max) && !options.all && !options.count;
        let highest = if only_ends {
            let min = first.filter(|_| options.min).map_or(0, |i| i.modseq);
            let max = last.filter(|_| options.max).map_or(0, |i| i.modseq);
            min.max(max)
        } else {
            items.iter().map(|i| i.modseq).max().unwrap_or(0)
        };
        text.extend_from_slice(format!(" MODSEQ {highest}").as_bytes());
    }
    text.extend_from_slice(b"\r\n");
}

/// A sequence-set that keeps the given order: ascending runs of consecutive numbers become
/// `a:b`, everything else is listed one by one.
fn ordered_set(text: &mut Vec<u8>, numbers: &[u32]) {
    let mut i = 0;
    while i < numbers.len() {
        if i > 0 {
            text.push(b',');
        }
        let start = numbers[i];
        let mut j = i;
        while j + 1 < numbers.len() && numbers[j].checked_add(1) == Some(numbers[j + 1]) {
            j += 1;
        }
        encode::number(text, u64::from(start));
        if j > i {
            text.push(b':');
            encode::number(text, u64::from(numbers[j]));
        }
        i = j + 1;
    }
}

/// One message's body and cache blob, each read at most once and only when asked for.
struct Message<'a, D: Disk> {
    store: &'a UserStore<D>,
    mailbox: MailboxId,
    uid: Uid,
    body: Option<Option<Bytes>>,
    cache: Option<Option<Bytes>>,
    /// Bytes handed to search keys that scan them.
    scanned: usize,
}

impl<'a, D: Disk> Message<'a, D> {
    fn new(store: &'a UserStore<D>, mailbox: MailboxId, uid: Uid) -> Self {
        Message { store, mailbox, uid, body: None, cache: None, scanned: 0 }
    }

    fn read_body(&mut self) -> Option<Bytes> {
        let (store, mailbox, uid) = (self.store, self.mailbox, self.uid);
        self.body.get_or_insert_with(|| store.body(mailbox, uid).ok()).clone()
    }

    fn read_cache(&mut self) -> Option<Bytes> {
        let (store, mailbox, uid) = (self.store, self.mailbox, self.uid);
        self.cache.get_or_insert_with(|| store.cache(mailbox, uid).ok()).clone()
    }

    /// The sent date and the keys the order needs. A blob without a key section (version 1)
    /// or a damaged one: the keys are computed from the message, as `build` would.
    fn order_keys(&mut self, needs: Needs, arrival: i64) -> (i64, Option<Box<SortKeys>>) {
        if !needs.sent && !needs.keys {
            return (0, None);
        }
        let blob = self.read_cache();
        let fields = blob.as_deref().and_then(|b| CacheView::order_fields(b).ok());
        let sent = fields.and_then(|f| f.sent_date).unwrap_or(arrival);
        if !needs.keys {
            return (sent, None);
        }
        let cached = fields.and_then(|f| f.sort_keys().ok().flatten());
        let mut keys = match cached {
            Some(keys) => keys,
            None => self.read_body().map(|m| SortKeys::extract(&m)).unwrap_or_default(),
        };
        for text in [
            &mut keys.base_subject,
            &mut keys.from_mailbox,
            &mut keys.from_display,
            &mut keys.to_mailbox,
            &mut keys.to_display,
            &mut keys.cc_mailbox,
        ] {
            text.make_ascii_uppercase();
        }
        (sent, Some(Box::new(keys)))
    }
}

impl<D: Disk> Loader for Message<'_, D> {
    fn body(&mut self) -> Option<Bytes> {
        let body = self.read_body();
        self.scanned += body.as_ref().map_or(0, |b| b.len());
        body
    }

    fn cache(&mut self) -> Option<Bytes> {
        self.read_cache()
    }

    fn email_id(&mut self) -> Option<u64> {
        self.store.email_id(self.mailbox, self.uid).ok()
    }

    fn thread_id(&mut self) -> Option<u64> {
        self.store.thread_id(self.mailbox, self.uid).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_sets_keep_the_order_and_join_ascending_runs() {
        let mut text = Vec::new();
        ordered_set(&mut text, &[5, 3, 4, 1, 2]);
        assert_eq!(text, b"5,3:4,1:2");
        text.clear();
        ordered_set(&mut text, &[9, 8, 7, 1, 2, 3, 10]);
        assert_eq!(text, b"9,8,7,1:3,10");
        text.clear();
        ordered_set(&mut text, &[u32::MAX, 1]);
        assert_eq!(text, b"4294967295,1");
    }
}
