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
use crate::mime::cache::{CacheView, KeyField, SortKeys};

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
    /// THREAD's keys (the whole key section), the base subject upper-cased
    /// (`i;ascii-casemap`); `None` for SORT.
    pub keys: Option<Box<SortKeys>>,
    /// SORT: where this message's strings start in its [`Texts`] (one per string criterion).
    pub text: u32,
}

/// The strings SORT compares, upper-cased (`i;ascii-casemap`): per message, one range per
/// string criterion into one buffer, so that gathering allocates nothing per message. A kept
/// context (`context.rs`) owns one too and appends the strings of messages that join it;
/// [`Texts::compact`] drops those of messages that left.
#[derive(Debug, Default)]
pub(crate) struct Texts {
    bytes: Vec<u8>,
    ranges: Vec<(u32, u32)>,
}

impl Texts {
    /// Appends one string, upper-cased, and its range.
    fn push(&mut self, text: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend(text.iter().map(u8::to_ascii_uppercase));
        let at = |n: usize| u32::try_from(n).expect("key strings of a SORT fit in 4 GiB");
        self.ranges.push((at(start), at(self.bytes.len())));
    }

    /// Item `first`'s string number `slot`.
    fn get(&self, first: u32, slot: usize) -> &[u8] {
        let (start, end) = self.ranges[first as usize + slot];
        &self.bytes[start as usize..end as usize]
    }

    /// The index the next item's first string gets.
    fn next(&self) -> u32 {
        u32::try_from(self.ranges.len()).expect("fewer than 2^32 strings")
    }

    /// Keeps only the strings of `items` (`per_item` each), once more than half of what is
    /// held belongs to messages no longer among them: a kept context's strings stay within
    /// twice what its members need.
    pub(crate) fn compact(&mut self, items: &mut [Item], per_item: usize) {
        if per_item == 0 || self.ranges.len() <= 2 * per_item * items.len() + 64 {
            return;
        }
        let mut kept = Texts::default();
        for item in items {
            let first = kept.next();
            for slot in 0..per_item {
                let (start, end) = self.ranges[item.text as usize + slot];
                let at = kept.bytes.len();
                kept.bytes.extend_from_slice(&self.bytes[start as usize..end as usize]);
                let end_at = u32::try_from(kept.bytes.len()).expect("fits as before");
                kept.ranges.push((u32::try_from(at).expect("fits as before"), end_at));
            }
            item.text = first;
        }
        *self = kept;
    }
}

impl Item {
    /// The number the response gives: UID or sequence number.
    pub(crate) fn number(&self, uid: bool) -> u32 {
        if uid { self.uid } else { self.msn }
    }
}

/// What the order reads from the cache blob.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Needs {
    /// The sent date.
    sent: bool,
    /// The whole key section (THREAD).
    keys: bool,
}

impl Needs {
    /// Nothing (SEARCH).
    pub(crate) const NOTHING: Needs = Needs { sent: false, keys: false };
}

/// What sorting by `criteria` reads from the cache blob: the sent date, and the key strings
/// it compares, in criterion order.
pub(crate) fn needs(criteria: &[SortCriterion]) -> (Needs, Vec<KeyField>) {
    let sent = criteria.iter().any(|c| c.key == SortKey::Date);
    (Needs { sent, keys: false }, criteria.iter().filter_map(|c| text_field(c.key)).collect())
}

/// Evaluates `key` for one message (a kept context's re-evaluation, `context.rs`): its item,
/// with the keys `needs` names, when it matches.
pub(crate) fn evaluate<D: Disk>(
    store: &UserStore<D>,
    mailbox: MailboxId,
    key: &SearchKey,
    candidate: &Candidate<'_>,
    needs: Needs,
    fields: &[KeyField],
    texts: &mut Texts,
) -> Option<Item> {
    let meta = candidate.meta;
    let mut message = Message::new(store, mailbox, meta.uid);
    if !search_eval::matches(key, candidate, &mut message) {
        return None;
    }
    let arrival = meta.internal_date.unix_seconds;
    let text = texts.next();
    let (sent, keys) = message.order_keys(needs, fields, texts, arrival);
    Some(Item {
        msn: candidate.msn,
        uid: meta.uid.get(),
        size: meta.size,
        arrival,
        sent,
        modseq: meta.modseq.0,
        keys,
        text,
    })
}

/// Where `item` goes in `items` (sorted by `criteria`): after every item that sorts before it.
pub(crate) fn position(
    items: &[Item],
    item: &Item,
    criteria: &[SortCriterion],
    texts: &Texts,
) -> usize {
    items.partition_point(|other| compare(other, item, criteria, texts) == Ordering::Less)
}

/// A SORT or THREAD between slices.
#[derive(Debug)]
pub(crate) struct SortTask {
    uid: bool,
    order: Order,
    key: SearchKey,
    uses_modseq: bool,
    needs: Needs,
    /// SORT: the key strings the criteria compare, in criterion order.
    fields: Vec<KeyField>,
    /// SORT: the gathered strings.
    texts: Texts,
    /// Next position in the view to evaluate.
    position: usize,
    items: Vec<Item>,
    /// The rendered response and how much of it was written, once ordered.
    emit: Option<(Vec<u8>, usize)>,
    /// When the command started, unix seconds (WITHIN's keys count from it).
    now: i64,
    /// `RETURN (UPDATE)` is honoured: the store's marks when the command started, and once
    /// ordered the items the context keeps (`context.rs`).
    update: Option<skua_core::store::MailboxMarks>,
    kept: Vec<Item>,
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
    let esearch = match &request.order {
        Order::Sort { esearch, .. } => *esearch,
        Order::Thread(_) => None,
    };
    if !request.charset.eq_ignore_ascii_case("US-ASCII")
        && !request.charset.eq_ignore_ascii_case("UTF-8")
    {
        if esearch.is_some_and(|options| options.save) {
            // RFC 5182 §2.1: a searching command with SAVE that fails leaves `$` empty.
            view(conn).save_result(Vec::new());
        }
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
    let (needs, fields) = match &request.order {
        Order::Thread(_) => (Needs { sent: true, keys: true }, Vec::new()),
        Order::Sort { criteria, .. } => needs(criteria),
    };
    let update =
        match super::search::start_update(conn, store, tag, request.uid, esearch, &key, out) {
            Ok(update) => update,
            Err(completion) => return Progress::Done(completion),
        };
    let task = SortTask {
        now: super::search::unix_now(),
        uid: request.uid,
        order: request.order,
        key,
        uses_modseq,
        needs,
        fields,
        texts: Texts::default(),
        position: 0,
        items: Vec::new(),
        emit: None,
        update,
        kept: Vec::new(),
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
        if let Order::Sort { esearch: Some(options), .. } = task.order
            && options.save
        {
            save_sorted(&task.items, options, view(conn));
        }
        let items = std::mem::take(&mut task.items);
        if task.update.is_some() {
            task.kept = items;
        } else {
            task.texts = Texts::default();
        }
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
    if let (Some(marks), Order::Sort { criteria, .. }) = (task.update, task.order) {
        let kept = (task.kept, task.texts);
        super::context::keep(view(conn), tag.as_str(), task.key, Some(criteria), kept, marks);
    }
    Progress::Done(Completion::ok(done))
}

/// `SORT RETURN (SAVE ...)` (RFC 5182 §2.4 with RFC 5267 §3): `$` keeps the messages the
/// answer names, MIN and MAX being the first and last in sort order; `$` is a set, so it is
/// kept in UID order like any other saved result.
fn save_sorted(items: &[Item], options: SearchReturn, view: &mut crate::imap::view::View) {
    let mut uids: Vec<Uid> = match super::search::named_indexes(options, items.len()) {
        Some(indexes) => indexes.into_iter().filter_map(|i| Uid::new(items[i].uid)).collect(),
        None => items.iter().filter_map(|i| Uid::new(i.uid)).collect(),
    };
    uids.sort_unstable();
    uids.dedup();
    view.save_result(uids);
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
                let text = task.texts.next();
                let (sent, keys) =
                    message.order_keys(task.needs, &task.fields, &mut task.texts, arrival);
                task.items.push(Item {
                    msn: candidate.msn,
                    uid: uid.get(),
                    size: meta.size,
                    arrival,
                    sent,
                    modseq: meta.modseq.0,
                    keys,
                    text,
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
            let texts = &task.texts;
            task.items.sort_unstable_by(|a, b| compare(a, b, criteria, texts));
            let mut text = Vec::new();
            match esearch {
                // RFC 5182 §2.4: SAVE alone answers nothing.
                Some(o)
                    if o.save && !(o.min || o.max || o.all || o.count || o.partial.is_some()) => {}
                Some(options) => write_esearch(&mut text, tag, task, *options),
                None => write_sort(&mut text, task),
            }
            text
        }
    }
}

/// The key-section string a sort key compares, if it is one.
fn text_field(key: SortKey) -> Option<KeyField> {
    match key {
        SortKey::Arrival | SortKey::Date | SortKey::Size => None,
        SortKey::Cc => Some(KeyField::CcMailbox),
        SortKey::From => Some(KeyField::FromMailbox),
        SortKey::To => Some(KeyField::ToMailbox),
        SortKey::Subject => Some(KeyField::BaseSubject),
        SortKey::DisplayFrom => Some(KeyField::FromDisplay),
        SortKey::DisplayTo => Some(KeyField::ToDisplay),
    }
}

/// RFC 5256 §3: the criteria in turn, then the sequence number.
fn compare(a: &Item, b: &Item, criteria: &[SortCriterion], texts: &Texts) -> Ordering {
    let mut slot = 0;
    for criterion in criteria {
        let order = match criterion.key {
            SortKey::Arrival => a.arrival.cmp(&b.arrival),
            SortKey::Date => a.sent.cmp(&b.sent),
            SortKey::Size => a.size.cmp(&b.size),
            _ => {
                slot += 1;
                texts.get(a.text, slot - 1).cmp(texts.get(b.text, slot - 1))
            }
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
    if let Some(range) = options.partial {
        let page = &items[super::search::partial_indexes(range, items.len())];
        let numbers: Vec<u32> = page.iter().map(|i| i.number(task.uid)).collect();
        super::search::write_partial(text, range, page.is_empty(), |b| ordered_set(b, &numbers));
    }
    if task.uses_modseq && !items.is_empty() {
        // RFC 4731 §3.2: the highest modseq of the messages the answer names.
        let highest = match super::search::named_indexes(options, items.len()) {
            Some(indexes) => indexes.into_iter().map(|i| items[i].modseq).max().unwrap_or(0),
            None => items.iter().map(|i| i.modseq).max().unwrap_or(0),
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

    /// The sent date and what else the order needs: THREAD's keys (returned), or SORT's
    /// strings (appended to `texts`, one per field). A blob without a key section (version 1)
    /// or a damaged one: the keys are computed from the message, as `build` would.
    fn order_keys(
        &mut self,
        needs: Needs,
        fields: &[KeyField],
        texts: &mut Texts,
        arrival: i64,
    ) -> (i64, Option<Box<SortKeys>>) {
        let wants_keys = needs.keys || !fields.is_empty();
        if !needs.sent && !wants_keys {
            return (0, None);
        }
        let blob = self.read_cache();
        let fields_of = blob.as_deref().and_then(|b| CacheView::order_fields(b, wants_keys).ok());
        let sent = fields_of.and_then(|f| f.sent_date).unwrap_or(arrival);
        let section = fields_of.and_then(|f| f.keys);
        if fields.is_empty() && !needs.keys {
            return (sent, None);
        }
        if !needs.keys {
            let read: Option<Vec<&[u8]>> =
                section.and_then(|s| fields.iter().map(|f| f.read(s).ok()).collect());
            match read {
                Some(strings) => strings.into_iter().for_each(|text| texts.push(text)),
                None => {
                    let keys = self.extract_keys();
                    for field in fields {
                        texts.push(field_of(&keys, *field).as_bytes());
                    }
                }
            }
            return (sent, None);
        }
        let cached = section.and_then(|s| SortKeys::decode(s).ok());
        let mut keys = match cached {
            Some(keys) => keys,
            None => self.extract_keys(),
        };
        keys.base_subject.make_ascii_uppercase();
        (sent, Some(Box::new(keys)))
    }

    /// The keys computed from the message itself (no usable key section).
    fn extract_keys(&mut self) -> SortKeys {
        self.read_body().map(|m| SortKeys::extract(&m)).unwrap_or_default()
    }
}

/// One string of owned keys.
fn field_of(keys: &SortKeys, field: KeyField) -> &str {
    match field {
        KeyField::BaseSubject => &keys.base_subject,
        KeyField::FromMailbox => &keys.from_mailbox,
        KeyField::FromDisplay => &keys.from_display,
        KeyField::ToMailbox => &keys.to_mailbox,
        KeyField::ToDisplay => &keys.to_display,
        KeyField::CcMailbox => &keys.cc_mailbox,
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
    fn kept_strings_are_compacted_to_the_members_left() {
        let mut texts = Texts::default();
        let mut items: Vec<Item> = (0..100u32)
            .map(|uid| {
                let text = texts.next();
                texts.push(format!("subject {uid}").as_bytes());
                texts.push(format!("from{uid}").as_bytes());
                Item { msn: uid, uid, size: 0, arrival: 0, sent: 0, modseq: 0, keys: None, text }
            })
            .collect();
        // Below the bound nothing moves.
        texts.compact(&mut items, 2);
        assert_eq!(texts.ranges.len(), 200);
        items.retain(|i| i.uid % 10 == 3);
        texts.compact(&mut items, 2);
        assert_eq!(texts.ranges.len(), 20, "only the members' strings are kept");
        for item in &items {
            assert_eq!(texts.get(item.text, 0), format!("SUBJECT {}", item.uid).as_bytes());
            assert_eq!(texts.get(item.text, 1), format!("FROM{}", item.uid).as_bytes());
        }
    }

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
