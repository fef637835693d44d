//! SEARCH / UID SEARCH (RFC 9051 §6.4.4) with ESEARCH result options (RFC 4731 / RFC 9051
//! `RETURN (MIN MAX COUNT ALL)`) and CONDSTORE's `MODSEQ` key (RFC 7162 §3.1.5).
//!
//! IMAP4rev1 clients get `* SEARCH n ...`; a client that used `RETURN` or enabled IMAP4rev2
//! gets `* ESEARCH (TAG "t") [UID] ...`.

use skua_core::disk::{Bytes, Disk};
use skua_core::store::UserStore;
use skua_core::types::{MailboxId, Uid};

use super::search_eval::{self, Candidate, Loader};
use super::view;
use crate::imap::encode;
use crate::imap::reply::{self, Code, Completion};
use crate::imap::session::Conn;
use crate::imap::session::out::Out;
use crate::imap::types::{SearchKey, SearchReturn, Tag};
use crate::imap::view::msn_from_index;

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

/// Reads a message's body and cache blob at most once, on first use.
struct LazyMessage<'a, D: Disk> {
    store: &'a UserStore<D>,
    mailbox: MailboxId,
    uid: Uid,
    body: Lazy,
    cache: Lazy,
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
        self.body.get(|| store.body(mailbox, uid).ok())
    }

    fn cache(&mut self) -> Option<Bytes> {
        let (store, mailbox, uid) = (self.store, self.mailbox, self.uid);
        self.cache.get(|| store.cache(mailbox, uid).ok())
    }
}

/// SEARCH / UID SEARCH
pub(crate) fn search<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    tag: &Tag,
    request: &SearchRequest<'_>,
    out: &mut Out,
) -> Completion {
    if let Some(charset) = &request.charset
        && !charset.eq_ignore_ascii_case("US-ASCII")
        && !charset.eq_ignore_ascii_case("UTF-8")
    {
        return Completion::no("Unsupported charset").with(Code::BadCharset);
    }
    let key = SearchKey::And(request.keys.to_vec());
    let uses_modseq = search_eval::uses_modseq(&key);
    if uses_modseq {
        if !conn.config.condstore {
            return Completion::bad("MODSEQ needs CONDSTORE");
        }
        conn.enabled.condstore = true;
    }
    let rev2 = conn.enabled.rev2;
    let selected = view(conn);
    let mailbox = selected.mailbox;
    let messages = match store.messages(mailbox) {
        Ok(messages) => messages,
        Err(error) => return reply::read(&error),
    };
    let keywords = store.keyword_table(mailbox).unwrap_or_default();
    let msn_largest = u32::try_from(selected.len()).unwrap_or(u32::MAX);
    let uid_largest = selected.uids().last().map_or(0, |u| u.get());
    let mut hits: Vec<u32> = Vec::new();
    let mut highest_modseq = 0u64;
    for (index, uid) in selected.uids().iter().enumerate() {
        let Ok(position) = messages.binary_search_by_key(uid, |m| m.uid) else {
            continue;
        };
        let meta = &messages[position];
        let candidate =
            Candidate { msn: msn_from_index(index), meta, keywords, msn_largest, uid_largest };
        let mut loader =
            LazyMessage { store, mailbox, uid: *uid, body: Lazy::Unread, cache: Lazy::Unread };
        if search_eval::matches(&key, &candidate, &mut loader) {
            hits.push(if request.uid { uid.get() } else { candidate.msn });
            highest_modseq = highest_modseq.max(meta.modseq.0);
        }
    }
    let modseq = uses_modseq.then_some(highest_modseq).filter(|&m| m > 0);
    match request.esearch {
        Some(options) => write_esearch(out, tag, request.uid, options, &hits, modseq),
        None if rev2 => {
            let all = SearchReturn { all: true, ..SearchReturn::default() };
            write_esearch(out, tag, request.uid, all, &hits, modseq);
        }
        None => write_search(out, &hits, modseq),
    }
    Completion::ok("SEARCH completed")
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
