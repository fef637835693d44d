//! Search contexts kept up to date (CONTEXT=SEARCH and CONTEXT=SORT, RFC 5267 §4.3):
//! `UID SEARCH RETURN (UPDATE ...)` and `UID SORT RETURN (UPDATE ...)`.
//!
//! A context is owned data kept in the selected [`View`]: the command's tag, its search key
//! (with `$` already replaced by UIDs), for SORT the criteria, the current result (UIDs in
//! mailbox order for SEARCH; for SORT the gathered sort keys in sort order) and the store's
//! marks of the mailbox when the result was last brought up to date. Nothing in it points into
//! the store (DESIGN.md, "Seams").
//!
//! After every sync (`command::sync`: at the end of each command, and in IDLE), [`update`]
//! compares each context's marks with the store's. Unchanged marks cost nothing. When only
//! appends happened (the same arithmetic as `View::appended_range`) just the new messages are
//! looked up; otherwise the mailbox's index records are walked once to find the messages whose
//! modseq passed the context's and the members that were expunged. Only those changed messages
//! are evaluated against the stored key (the key may read message text: that cost is paid for
//! changed messages only). What changed goes out as one line per context after the sync's
//! EXISTS / FETCH / EXPUNGE lines:
//! `* ESEARCH (TAG "t") UID REMOVEFROM (pos uids) ADDTO (pos uids)`, position 0 for SEARCH
//! (RFC 5267 §4.3.3 allows it; the sets are in mailbox order) and the 1-based position in the
//! sort order for SORT, each pair applied in the order written.
//!
//! Limits and refusals (RFC 5267 §4.3.1: the search still completes, with
//! `* NO [NOUPDATE "tag"]`): contexts are kept only for the UID forms, whose results do not
//! shift when other messages are expunged; only for keys whose answer depends on the message
//! alone (no message numbers, no `*`, no `\Recent`, no OLDER/YOUNGER, which change without any
//! change to the mailbox); and at most [`CONTEXTS_MAX`] per selection. A tag already naming a
//! live context cannot start another (BAD, RFC 5267 §4.3). A flag change does not move a
//! message in a SORT order: no sort key reads flags.

use skua_core::disk::Disk;
use skua_core::store::{MailboxMarks, MessageMeta, UserStore};
use skua_core::types::{ModSeq, Uid};

use super::search_eval::Candidate;
use super::sort::{self, Item, Needs, Texts};
use super::{LOOKUP_ONE_BY_ONE_MAX, lookup};
use crate::imap::encode;
use crate::imap::session::Conn;
use crate::imap::session::out::Out;
use crate::imap::types::{Flag, SearchKey, SeqBound, SortCriterion};
use crate::imap::view::View;
use crate::mime::cache::KeyField;

/// Live contexts per selected mailbox (RFC 5267 §4.3.1: at least one, more are advised).
pub(crate) const CONTEXTS_MAX: usize = 8;

/// The live contexts of one selection.
#[derive(Debug, Default)]
pub(crate) struct Contexts {
    list: Vec<Context>,
}

/// One context kept by `RETURN (UPDATE)`.
#[derive(Debug)]
pub(crate) struct Context {
    /// The searching command's tag (the ESEARCH correlator).
    tag: String,
    /// The search key, `$` replaced by UIDs.
    key: SearchKey,
    /// SORT: the criteria; `None` for SEARCH.
    criteria: Option<Vec<SortCriterion>>,
    /// What the order reads from the cache blob.
    needs: Needs,
    /// SORT: the key strings the criteria compare.
    fields: Vec<KeyField>,
    /// The result: SEARCH in UID order, SORT in sort order. Each item's `msn` is its UID, so
    /// the tie-break by sequence number (RFC 5256 §3) keeps working as numbers shift.
    items: Vec<Item>,
    /// SORT: the items' key strings.
    texts: Texts,
    /// The store's marks when `items` were last right.
    marks: MailboxMarks,
}

/// Why a context is not kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The tag already names a live context: the command is BAD.
    TagInUse,
    /// The server does not keep this one: `* NO [NOUPDATE "tag"]`, the command goes on.
    NoUpdate(&'static str),
}

impl Contexts {
    /// Number of live contexts.
    #[must_use]
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// True when no context is live.
    #[must_use]
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Ends the contexts of these tags (CANCELUPDATE); returns how many ended.
    pub(crate) fn cancel(&mut self, tags: &[String]) -> usize {
        let before = self.list.len();
        self.list.retain(|c| !tags.contains(&c.tag));
        before - self.list.len()
    }
}

impl Context {
    /// Where `uid` is in the result: a binary search for SEARCH (UID order), a scan of the
    /// sort order for SORT.
    fn find(&self, uid: u32) -> Option<usize> {
        if self.criteria.is_none() {
            self.items.binary_search_by_key(&uid, |i| i.uid).ok()
        } else {
            self.items.iter().position(|i| i.uid == uid)
        }
    }
}

/// Whether a search with `RETURN (UPDATE)` under `tag` may keep a context (checked before it
/// runs, so a refused tag reuse does no work).
pub(crate) fn check(view: &View, tag: &str, uid: bool, key: &SearchKey) -> Result<(), Refusal> {
    if view.contexts.list.iter().any(|c| c.tag == tag) {
        return Err(Refusal::TagInUse);
    }
    if !uid {
        return Err(Refusal::NoUpdate("Updates are kept for UID SEARCH and UID SORT only"));
    }
    if !updatable(key) {
        return Err(Refusal::NoUpdate("These search keys cannot be kept up to date"));
    }
    if view.contexts.len() >= CONTEXTS_MAX {
        return Err(Refusal::NoUpdate("Too many contexts"));
    }
    Ok(())
}

/// `* NO [NOUPDATE "tag"] text` (RFC 5267 §4.3.1).
pub(crate) fn write_noupdate(out: &mut Out, tag: &str, text: &str) {
    let b = out.buf();
    b.extend_from_slice(b"* NO [NOUPDATE ");
    encode::string(b, tag.as_bytes());
    b.extend_from_slice(b"] ");
    b.extend_from_slice(text.as_bytes());
    b.extend_from_slice(b"\r\n");
}

/// True when the key's answer for a message depends only on that message's record and text:
/// no message numbers, no `*` (the largest UID moves), no `\Recent` (per session), no OLDER /
/// YOUNGER (they change with the clock alone).
fn updatable(key: &SearchKey) -> bool {
    let mut stack = vec![key];
    while let Some(key) = stack.pop() {
        match key {
            SearchKey::SequenceSet(_) | SearchKey::Older(_) | SearchKey::Younger(_) => {
                return false;
            }
            SearchKey::Uid(set)
                if set
                    .ranges()
                    .iter()
                    .any(|&(a, b)| a == SeqBound::Largest || b == SeqBound::Largest) =>
            {
                return false;
            }
            SearchKey::Flag(Flag::Extension(_)) | SearchKey::NotFlag(Flag::Extension(_)) => {
                return false;
            }
            SearchKey::Not(inner) => stack.push(inner),
            SearchKey::Or(a, b) => {
                stack.push(a);
                stack.push(b);
            }
            SearchKey::And(keys) => stack.extend(keys.iter()),
            _ => {}
        }
    }
    true
}

/// Keeps a new context: `items` is the result the command just returned (its `msn` fields are
/// replaced by UIDs), `marks` the store's marks when the command started, so that every change
/// made while it ran is evaluated again by the next [`update`].
pub(crate) fn keep(
    view: &mut View,
    tag: &str,
    key: SearchKey,
    criteria: Option<Vec<SortCriterion>>,
    (mut items, texts): (Vec<Item>, Texts),
    marks: MailboxMarks,
) {
    for item in &mut items {
        item.msn = item.uid;
    }
    let (needs, fields) = criteria.as_deref().map_or((Needs::NOTHING, Vec::new()), sort::needs);
    let tag = tag.to_owned();
    let context = Context { tag, key, criteria, needs, fields, items, texts, marks };
    view.contexts.list.push(context);
}

/// Brings every context of the selected mailbox up to date, writing the ESEARCH updates.
pub(crate) fn update<D: Disk>(conn: &mut Conn, store: &UserStore<D>, out: &mut Out) {
    let Some(view) = conn.selected.as_mut() else {
        return;
    };
    if view.contexts.is_empty() {
        return;
    }
    let Some(marks) = store.mailbox_marks(view.mailbox) else {
        return;
    };
    let mut contexts = std::mem::take(&mut view.contexts.list);
    let mut wrote = false;
    for context in &mut contexts {
        if context.marks == marks {
            continue;
        }
        // A read error leaves the context as it was: the next sync tries again.
        if let Ok(line) = refresh(context, view, store, marks) {
            if !line.is_empty() {
                out.put(&line);
                wrote = true;
            }
            context.marks = marks;
        }
    }
    view.contexts.list = contexts;
    if wrote {
        super::durable(store, out);
    }
}

/// The changes to one context since its marks, applied, and the line that tells them (empty
/// when the result did not change).
fn refresh<D: Disk>(
    context: &mut Context,
    view: &View,
    store: &UserStore<D>,
    marks: MailboxMarks,
) -> Result<Vec<u8>, skua_core::error::ReadError> {
    let mailbox = view.mailbox;
    let (changed, gone) = changes(context, store, view, marks)?;
    let keywords = store.keyword_table(mailbox)?;
    let now = super::search::unix_now();
    // Each change as it was applied: (added, 1-based position, UID).
    let mut applied: Vec<(bool, usize, u32)> = Vec::new();
    for uid in gone {
        if let Some(at) = context.find(uid) {
            context.items.remove(at);
            applied.push((false, at + 1, uid));
        }
    }
    for meta in &changed {
        let uid = meta.uid.get();
        let member = context.find(uid);
        let index = view.uids().binary_search(&meta.uid).unwrap_or(0);
        let candidate = Candidate::in_view(view, index, meta, keywords, now);
        let found = sort::evaluate(
            store,
            mailbox,
            &context.key,
            &candidate,
            context.needs,
            &context.fields,
            &mut context.texts,
        );
        match (member, found) {
            (Some(at), None) => {
                context.items.remove(at);
                applied.push((false, at + 1, uid));
            }
            (None, Some(mut item)) => {
                item.msn = item.uid;
                let at = match &context.criteria {
                    Some(criteria) => {
                        sort::position(&context.items, &item, criteria, &context.texts)
                    }
                    None => context.items.partition_point(|i| i.uid < uid),
                };
                context.items.insert(at, item);
                applied.push((true, at + 1, uid));
            }
            _ => {}
        }
    }
    context.texts.compact(&mut context.items, context.fields.len());
    if applied.is_empty() {
        return Ok(Vec::new());
    }
    let mut line = b"* ESEARCH (TAG ".to_vec();
    encode::string(&mut line, context.tag.as_bytes());
    line.extend_from_slice(b") UID");
    if context.criteria.is_some() {
        // Positions depend on the changes before them: one item per run of one kind, in the
        // order applied, which is the order the client applies them in (RFC 5267 §4.3.2).
        for run in applied.chunk_by(|a, b| a.0 == b.0) {
            line.extend_from_slice(if run[0].0 { b" ADDTO (" } else { b" REMOVEFROM (" });
            for (i, &(_, position, uid)) in run.iter().enumerate() {
                if i > 0 {
                    line.push(b' ');
                }
                encode::number(&mut line, position as u64);
                line.push(b' ');
                encode::number(&mut line, u64::from(uid));
            }
            line.push(b')');
        }
    } else {
        // Position 0: the sets commute, each in mailbox order.
        for (added, name) in [(false, &b" REMOVEFROM (0 "[..]), (true, b" ADDTO (0 ")] {
            let mut uids: Vec<u32> = applied.iter().filter(|a| a.0 == added).map(|a| a.2).collect();
            if uids.is_empty() {
                continue;
            }
            uids.sort_unstable();
            line.extend_from_slice(name);
            encode::sequence_set(&mut line, &uids);
            line.push(b')');
        }
    }
    line.extend_from_slice(b"\r\n");
    Ok(line)
}

/// The live messages whose modseq passed the context's marks (ascending UID), and the members
/// no longer live. When the marks prove only appends happened and few of them, only the new
/// UIDs are looked up; otherwise the index records are walked once.
fn changes<D: Disk>(
    context: &Context,
    store: &UserStore<D>,
    view: &View,
    now: MailboxMarks,
) -> Result<(Vec<MessageMeta>, Vec<u32>), skua_core::error::ReadError> {
    let then = context.marks;
    let since: ModSeq = then.highest_modseq;
    if let Some(added) = now.uid_next.get().checked_sub(then.uid_next.get()) {
        let only_added = now.highest_modseq.0.checked_sub(then.highest_modseq.0)
            == Some(u64::from(added))
            && u64::from(now.messages) == u64::from(then.messages) + u64::from(added);
        if only_added && (added as usize) <= LOOKUP_ONE_BY_ONE_MAX {
            let uids = (then.uid_next.get()..now.uid_next.get()).filter_map(Uid::new);
            let found = lookup(store, view.mailbox, uids.collect::<Vec<_>>().into_iter())?;
            return Ok((found, Vec::new()));
        }
    }
    let mut members: Vec<u32> = context.items.iter().map(|i| i.uid).collect();
    members.sort_unstable();
    let mut changed = Vec::new();
    let mut gone = Vec::new();
    let mut next_member = members.iter().peekable();
    for meta in store.live_messages(view.mailbox)? {
        let uid = meta.uid.get();
        while let Some(&&member) = next_member.peek() {
            if member < uid {
                gone.push(member);
                next_member.next();
            } else {
                if member == uid {
                    next_member.next();
                }
                break;
            }
        }
        if meta.modseq > since {
            changed.push(meta);
        }
    }
    gone.extend(next_member.copied());
    Ok((changed, gone))
}

/// CANCELUPDATE (RFC 5267 §4.3.5): ends the named contexts. Tags that name none are ignored.
pub(crate) fn cancel(conn: &mut Conn, tags: &[String]) -> crate::imap::reply::Completion {
    if let Some(view) = conn.selected.as_mut() {
        view.contexts.cancel(tags);
    }
    crate::imap::reply::Completion::ok("CANCELUPDATE completed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::types::SequenceSet;

    /// The work a change costs a kept search is the changed messages, whatever the mailbox
    /// holds: counted as the messages [`changes`] hands to the evaluator.
    #[test]
    fn a_change_re_evaluates_only_the_changed_messages() {
        use skua_core::types::{Flags, FlagsOp, Keywords, SystemFlags};
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = std::rc::Rc::new(skua_core::disk::os::OsDisk::new(dir.path()).expect("disk"));
        let mut store = UserStore::open(disk, std::path::Path::new("u")).expect("store");
        let inbox = store.mailbox_id("INBOX").expect("inbox");
        for _ in 0..500 {
            store
                .append(inbox, b"Subject: x\r\n\r\nbody\r\n", b"", Flags::default(), None)
                .unwrap();
        }
        let info = store.mailbox_info(inbox).expect("info");
        let messages = store.messages(inbox).expect("messages");
        let view = View::new(inbox, false, info.uid_validity, &messages, info.highest_modseq, 0);
        let items = messages
            .iter()
            .map(|m| Item {
                msn: m.uid.get(),
                uid: m.uid.get(),
                size: 0,
                arrival: 0,
                sent: 0,
                modseq: 0,
                keys: None,
                text: 0,
            })
            .collect();
        let context = Context {
            tag: "k".into(),
            key: SearchKey::NotFlag(Flag::Seen),
            criteria: None,
            needs: Needs::NOTHING,
            fields: Vec::new(),
            items,
            texts: Texts::default(),
            marks: store.mailbox_marks(inbox).expect("marks"),
        };
        // A delivery: the new message alone.
        store.append(inbox, b"Subject: y\r\n\r\nbody\r\n", b"", Flags::default(), None).unwrap();
        let now = store.mailbox_marks(inbox).expect("marks");
        let (changed, gone) = changes(&context, &store, &view, now).expect("changes");
        let uids: Vec<u32> = changed.iter().map(|m| m.uid.get()).collect();
        assert_eq!((uids, gone), (vec![501], vec![]));
        // Then a flag change and an expunge: those two and the delivery, not the other 498.
        let seen = Flags { system: SystemFlags(SystemFlags::SEEN), keywords: Keywords(0) };
        let three = Uid::new(3).unwrap();
        store.store_flags(inbox, &[three], FlagsOp::Add, seen, None).expect("store");
        store.expunge(inbox, &[Uid::new(7).unwrap()]).expect("expunge");
        let now = store.mailbox_marks(inbox).expect("marks");
        let (changed, gone) = changes(&context, &store, &view, now).expect("changes");
        let uids: Vec<u32> = changed.iter().map(|m| m.uid.get()).collect();
        assert_eq!((uids, gone), (vec![3, 501], vec![7]));
    }

    #[test]
    fn keys_that_move_without_a_change_are_not_kept() {
        let star = SequenceSet::new(vec![(SeqBound::Value(1), SeqBound::Largest)]).unwrap();
        let uid_star = SearchKey::Uid(star);
        assert!(!updatable(&uid_star));
        assert!(!updatable(&SearchKey::Older(5)));
        assert!(!updatable(&SearchKey::Not(Box::new(SearchKey::Flag(Flag::Extension(
            "Recent".into()
        ))))));
        assert!(updatable(&SearchKey::NotFlag(Flag::Seen)));
        assert!(updatable(&SearchKey::And(vec![SearchKey::All, SearchKey::Flag(Flag::Deleted)])));
    }
}
