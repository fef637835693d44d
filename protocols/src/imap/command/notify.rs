//! NOTIFY (RFC 5465): the command, and the notifications a session with NOTIFY set sends.
//!
//! *The command.* `NOTIFY SET [STATUS] groups` replaces the session's event groups (`NOTIFY
//! NONE` removes them). Refused with `BAD`: `MessageNew` without `MessageExpunge` or the
//! reverse, `FlagChange`/`AnnotationChange` without both, more than one `SELECTED` /
//! `SELECTED-DELAYED` group, a non-message event in such a group, and FETCH items for
//! `MessageNew` outside one. Refused with `NO [BADEVENT (...)]`, naming the events skua
//! supports: `AnnotationChange`, the METADATA events and any unknown event. `STATUS` sends
//! `* STATUS` now for every mailbox a group watches for message events (not the selected
//! one): the mailboxes are picked in one pass (O(mailboxes)), the lines written in slices.
//!
//! *Notifications* ([`report`], each time the session would wait for input, and in IDLE):
//! - the selected mailbox, with a `SELECTED` group, when its messages changed (or its flags,
//!   with `FlagChange`): the usual sync (`EXISTS`, `EXPUNGE` or `VANISHED`, `FETCH FLAGS`) at
//!   once; `SELECTED-DELAYED` holds expunges back for a command that may report them. New
//!   messages get the `MessageNew` FETCH items, if any were given. Without a `SELECTED` group
//!   (or for flags without `FlagChange`) the selected mailbox is synced only at the end of
//!   commands, as without NOTIFY.
//! - other mailboxes: `* STATUS name (MESSAGES n UIDNEXT n UIDVALIDITY n [UNSEEN n]
//!   [HIGHESTMODSEQ n])` for each mailbox whose messages (`MessageNew`/`MessageExpunge`) or
//!   flags (`FlagChange`; a mailbox watched for it gets `UNSEEN`) changed since the last
//!   report (`HIGHESTMODSEQ` once CONDSTORE is on), found through
//!   the store's change generations: O(changed mailboxes), not O(mailboxes).
//! - `MailboxName`: `* LIST () "/" name` (created), `* LIST (\NonExistent) "/" name`
//!   (deleted), `* LIST () "/" new ("OLDNAME" (old))` (renamed); `SubscriptionChange`:
//!   `* LIST (\Subscribed) "/" name` or `* LIST () "/" name`, from the store's bounded journal.
//!
//! *Bounded.* One report writes at most [`NOTIFICATIONS_MAX`] lines; past that, or when the
//! store's journal no longer holds changes the session has not seen, the session says
//! `* OK [NOTIFICATIONOVERFLOW]` and NOTIFY is off, as if the client had sent NOTIFY NONE
//! (RFC 5465 §5.8).
//!
//! Changes a session made itself are reported like any other's.

use skua_core::disk::Disk;
use skua_core::store::{ListChange, ListChanges, MailboxChange, UserStore};
use skua_core::types::Uid;

use super::{Progress, fetch, slice};
use crate::imap::encode;
use crate::imap::parser::{EventGroup, NotifyEvent, NotifyFilter, NotifyRequest, NotifySet};
use crate::imap::reply::{Code, Completion};
use crate::imap::session::Conn;
use crate::imap::session::notify::NotifyState;
use crate::imap::session::out::Out;
use crate::imap::types::{SeqBound, SequenceSet, StatusAttribute};

/// Notification lines one report may write before the session overflows.
pub(crate) const NOTIFICATIONS_MAX: usize = 1000;

/// The events skua supports, as `[BADEVENT]` lists them.
const SUPPORTED: &str = "MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange";

/// `NOTIFY SET STATUS`'s `* STATUS` lines, written over as many slices as their output
/// needs: the mailboxes to report (and whether each gets UNSEEN), gathered when NOTIFY ran.
#[derive(Debug)]
pub(crate) struct StatusTask {
    mailboxes: Vec<(skua_core::types::MailboxId, bool)>,
    position: usize,
}

/// NOTIFY SET / NOTIFY NONE.
pub(crate) fn notify<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    request: NotifyRequest,
    out: &mut Out,
    slice: &mut slice::Slice,
) -> Progress {
    let set = match request {
        NotifyRequest::None => {
            conn.notify = None;
            return Progress::Done(Completion::ok("NOTIFY completed"));
        }
        NotifyRequest::Set(set) => set,
    };
    if let Some(refused) = check(&set) {
        return Progress::Done(refused);
    }
    let NotifySet { status, groups } = set;
    let state = NotifyState {
        groups,
        generation: store.mailbox_generation(),
        list_position: store.list_position(),
        fetch_mailbox: None,
        fetch: None,
    };
    let task = status.then(|| initial_status(conn, store, &state));
    conn.notify = Some(Box::new(state));
    match task {
        Some(task) => resume_status(conn, store, task, out, slice),
        None => Progress::Done(Completion::ok("NOTIFY completed")),
    }
}

/// Writes `* STATUS` lines of a `NOTIFY SET STATUS` until the slice is spent.
pub(crate) fn resume_status<D: Disk>(
    conn: &Conn,
    store: &UserStore<D>,
    mut task: StatusTask,
    out: &mut Out,
    slice: &mut slice::Slice,
) -> Progress {
    while let Some(&(id, unseen)) = task.mailboxes.get(task.position) {
        if slice.spent(out) {
            return Progress::Paused(super::Task::NotifyStatus(task));
        }
        task.position += 1;
        slice.spend(1);
        // A mailbox deleted meanwhile has nothing to report.
        write_status(conn, store, id, unseen, out);
    }
    Progress::Done(Completion::ok("NOTIFY completed"))
}

/// The BAD and NO answers of RFC 5465 §3.1 and §5, or `None` when the set is acceptable.
fn check(set: &NotifySet) -> Option<Completion> {
    let unsupported = set.groups.iter().flat_map(|g| &g.events).any(|event| {
        matches!(
            event,
            NotifyEvent::AnnotationChange
                | NotifyEvent::MailboxMetadataChange
                | NotifyEvent::ServerMetadataChange
                | NotifyEvent::Other(_)
        )
    });
    if unsupported {
        let no = Completion::no("Event not supported").with(Code::BadEvent(SUPPORTED));
        return Some(no);
    }
    let mut selected_groups = 0;
    for group in &set.groups {
        let has = |wanted: fn(&NotifyEvent) -> bool| group.events.iter().any(wanted);
        let new = has(|e| matches!(e, NotifyEvent::MessageNew(_)));
        let expunge = has(|e| matches!(e, NotifyEvent::MessageExpunge));
        let flags = has(|e| matches!(e, NotifyEvent::FlagChange | NotifyEvent::AnnotationChange));
        if new != expunge {
            return Some(Completion::bad("MessageNew and MessageExpunge go together"));
        }
        if flags && !new {
            return Some(Completion::bad("FlagChange needs MessageNew and MessageExpunge"));
        }
        let items = has(|e| matches!(e, NotifyEvent::MessageNew(items) if !items.is_empty()));
        if group.filter.is_selected() {
            selected_groups += 1;
            if group.events.iter().any(|e| !e.is_message_event()) {
                return Some(Completion::bad("Only message events for the selected mailbox"));
            }
        } else if items {
            return Some(Completion::bad("FETCH items only for the selected mailbox"));
        }
    }
    if selected_groups > 1 {
        return Some(Completion::bad("One SELECTED or SELECTED-DELAYED group at most"));
    }
    None
}

/// The mailboxes `NOTIFY SET STATUS` reports: every one watched for message events, but the
/// selected one. One pass over the names, O(mailboxes); the lines go out in slices.
fn initial_status<D: Disk>(conn: &Conn, store: &UserStore<D>, state: &NotifyState) -> StatusTask {
    let selected = conn.selected.as_ref().map(|view| view.mailbox);
    let wanted = MailboxChange { messages: true, flags: true };
    let mailboxes = store
        .mailboxes()
        .into_iter()
        .filter(|info| Some(info.id) != selected)
        .filter_map(|info| {
            let watched = watch(&state.groups, &info.name, store, wanted);
            watched.notify.then_some((info.id, watched.unseen))
        })
        .collect();
    StatusTask { mailboxes, position: 0 }
}

/// Whether the groups ask to hear of `changed` in the mailbox `name` (not the selected one).
fn watch<D: Disk>(
    groups: &[EventGroup],
    name: &str,
    store: &UserStore<D>,
    changed: MailboxChange,
) -> Watched {
    let new = wants(groups, name, store, |e| matches!(e, NotifyEvent::MessageNew(_)));
    let flags = wants(groups, name, store, |e| matches!(e, NotifyEvent::FlagChange));
    Watched { notify: (changed.messages && new) || (changed.flags && flags), unseen: flags }
}

/// What [`watch`] found for one mailbox.
struct Watched {
    /// Send its STATUS.
    notify: bool,
    /// The mailbox is watched for flag changes: STATUS carries UNSEEN (which new messages and
    /// expunges change too).
    unseen: bool,
}

/// True when the groups ask for events of `kind` on the mailbox `name`: the first group
/// (other than a selected one) whose filter names the mailbox and which lists that kind
/// decides, and a group with `NONE` events naming it first stops the search.
fn wants<D: Disk>(
    groups: &[EventGroup],
    name: &str,
    store: &UserStore<D>,
    kind: fn(&NotifyEvent) -> bool,
) -> bool {
    for group in groups.iter().filter(|g| !g.filter.is_selected()) {
        if !names(&group.filter, name, store) {
            continue;
        }
        if group.events.is_empty() {
            return false;
        }
        if group.events.iter().any(kind) {
            return true;
        }
    }
    false
}

/// True when `filter` (not a selected one) names the mailbox `name`.
fn names<D: Disk>(filter: &NotifyFilter, name: &str, store: &UserStore<D>) -> bool {
    match filter {
        NotifyFilter::Selected | NotifyFilter::SelectedDelayed => false,
        // Deliveries only ever go to INBOX.
        NotifyFilter::Inboxes => name == "INBOX",
        NotifyFilter::Personal => true,
        NotifyFilter::Subscribed => store.is_subscribed(name),
        NotifyFilter::Subtree(tops) => tops.iter().any(|top| {
            name == top || (name.starts_with(top.as_str()) && name[top.len()..].starts_with('/'))
        }),
        NotifyFilter::Mailboxes(list) => list.iter().any(|n| n == name),
    }
}

/// `* STATUS name (MESSAGES n UIDNEXT n UIDVALIDITY n [UNSEEN n] [HIGHESTMODSEQ n])`.
fn write_status<D: Disk>(
    conn: &Conn,
    store: &UserStore<D>,
    id: skua_core::types::MailboxId,
    unseen: bool,
    out: &mut Out,
) {
    let Some(info) = store.mailbox_info(id) else {
        return;
    };
    let mut attributes =
        vec![StatusAttribute::Messages, StatusAttribute::UidNext, StatusAttribute::UidValidity];
    if unseen {
        attributes.push(StatusAttribute::Unseen);
    }
    if conn.enabled.condstore {
        attributes.push(StatusAttribute::HighestModSeq);
    }
    super::mailbox::write_status(out.buf(), store, &info, &attributes, 0, conn.enabled.rev2, 0);
}

/// Sends what changed since the last report, as the session's NOTIFY groups ask (see the
/// module docs). Call when the session is about to wait for input, and in IDLE.
pub(crate) fn report<D: Disk>(conn: &mut Conn, store: &mut UserStore<D>, out: &mut Out) {
    let Some(mut state) = conn.notify.take() else {
        return;
    };
    let written = out.buffered();
    if let Some(task) = state.fetch.take() {
        // A paused FETCH of new messages goes first; nothing else until it is done.
        resume_fetch(conn, store, &mut state, task, out);
        conn.notify = Some(state);
        return;
    }
    let selected = state.groups.iter().find(|g| g.filter.is_selected()).cloned();
    if let Some(group) = selected.as_ref().filter(|g| selected_is_due(conn, store, &state, g)) {
        let delayed = matches!(group.filter, NotifyFilter::SelectedDelayed);
        let before = conn.selected.as_ref().map(|v| v.uids().last().copied());
        super::sync(conn, store, !delayed, out);
        if conn.closing {
            return;
        }
        if let Some(before) = before {
            new_message_items(conn, store, &mut state, group, before, out);
        }
        if state.fetch.is_some() {
            conn.notify = Some(state);
            return;
        }
    }
    let mut lines = 0;
    let overflow = other_mailboxes(conn, store, &mut state, &mut lines, out).is_err()
        || list_changes(conn, store, &mut state, &mut lines, out).is_err();
    if overflow {
        out.put(b"* OK [NOTIFICATIONOVERFLOW] Too many changes: NOTIFY is off\r\n");
    } else {
        conn.notify = Some(state);
    }
    if out.buffered() != written {
        // Other sessions' changes may not be durable yet: as the sync, wait for them.
        super::durable(store, out);
    }
}

/// True when the selected mailbox changed in a way `group` asks to hear of now: messages
/// added or expunged, or flags with `FlagChange`. Flag changes nobody asked for wait for the
/// next command's sync, as without NOTIFY. O(mailboxes changed since the last report).
fn selected_is_due<D: Disk>(
    conn: &Conn,
    store: &UserStore<D>,
    state: &NotifyState,
    group: &EventGroup,
) -> bool {
    let Some(view) = conn.selected.as_ref() else {
        return false;
    };
    if group.events.is_empty() {
        // `(SELECTED NONE)`: nothing about the selected mailbox between commands.
        return false;
    }
    let flags = group.events.iter().any(|e| matches!(e, NotifyEvent::FlagChange));
    store
        .mailboxes_changed_since(state.generation)
        .find(|(id, _)| *id == view.mailbox)
        .is_some_and(|(_, change)| change.messages || (flags && change.flags))
}

/// STATUS for the mailboxes whose messages changed; `Err` past [`NOTIFICATIONS_MAX`].
fn other_mailboxes<D: Disk>(
    conn: &Conn,
    store: &UserStore<D>,
    state: &mut NotifyState,
    lines: &mut usize,
    out: &mut Out,
) -> Result<(), ()> {
    let now = store.mailbox_generation();
    if now == state.generation {
        return Ok(());
    }
    let selected = conn.selected.as_ref().map(|view| view.mailbox);
    for (id, change) in store.mailboxes_changed_since(state.generation) {
        if Some(id) == selected {
            continue;
        }
        let Some(info) = store.mailbox_info(id) else {
            continue;
        };
        let watched = watch(&state.groups, &info.name, store, change);
        if !watched.notify {
            continue;
        }
        *lines += 1;
        if *lines > NOTIFICATIONS_MAX {
            return Err(());
        }
        write_status(conn, store, id, watched.unseen, out);
    }
    state.generation = now;
    Ok(())
}

/// LIST for the list changes; `Err` when the journal lost some or past
/// [`NOTIFICATIONS_MAX`].
fn list_changes<D: Disk>(
    conn: &Conn,
    store: &UserStore<D>,
    state: &mut NotifyState,
    lines: &mut usize,
    out: &mut Out,
) -> Result<(), ()> {
    let now = store.list_position();
    let listens = state
        .groups
        .iter()
        .flat_map(|g| &g.events)
        .any(|e| matches!(e, NotifyEvent::MailboxName | NotifyEvent::SubscriptionChange));
    if now == state.list_position || !listens {
        // A session that asked for no list events cannot overflow on them.
        state.list_position = now;
        return Ok(());
    }
    let ListChanges::Since(changes) = store.list_changes_since(state.list_position) else {
        return Err(());
    };
    let utf8 = conn.enabled.rev2;
    let renamed = |e: &NotifyEvent| matches!(e, NotifyEvent::MailboxName);
    let subscription = |e: &NotifyEvent| matches!(e, NotifyEvent::SubscriptionChange);
    for (_, change) in changes {
        let wants = |name: &str, kind| wants(&state.groups, name, store, kind);
        let line = match change {
            ListChange::Created(name) if wants(name, renamed) => Some(("", name, None)),
            ListChange::Deleted(name) if wants(name, renamed) => {
                Some(("\\NonExistent", name, None))
            }
            ListChange::Renamed { old, new } if wants(new, renamed) || wants(old, renamed) => {
                Some(("", new, Some(old)))
            }
            ListChange::Subscribed(name) if wants(name, subscription) => {
                Some(("\\Subscribed", name, None))
            }
            ListChange::Unsubscribed(name) if wants(name, subscription) => Some(("", name, None)),
            _ => None,
        };
        let Some((attributes, name, old)) = line else {
            continue;
        };
        *lines += 1;
        if *lines > NOTIFICATIONS_MAX {
            return Err(());
        }
        let b = out.buf();
        b.extend_from_slice(format!("* LIST ({attributes}) \"/\" ").as_bytes());
        encode::mailbox(b, name, utf8);
        if let Some(old) = old {
            // A string, as RFC 9051 §7.3.1 shows it: some clients read nothing else here.
            let mut wire = Vec::new();
            if utf8 {
                wire.extend_from_slice(old.as_bytes());
            } else {
                crate::imap::utf7::encode(old, &mut wire);
            }
            b.extend_from_slice(b" (\"OLDNAME\" (");
            encode::string(b, &wire);
            b.extend_from_slice(b"))");
        }
        b.extend_from_slice(b"\r\n");
    }
    state.list_position = now;
    Ok(())
}

/// The `MessageNew` FETCH items of the messages this report's sync announced (those above
/// `covered`, the view's newest UID before it, if any). Messages the session learnt of at the end of
/// a command (its own APPEND, a NOOP) are not notifications and get none.
fn new_message_items<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    state: &mut NotifyState,
    group: &EventGroup,
    covered: Option<Uid>,
    out: &mut Out,
) {
    let Some(view) = conn.selected.as_ref() else {
        return;
    };
    let Some(newest) = view.uids().last().copied() else {
        return;
    };
    if covered.is_some_and(|covered| newest <= covered) {
        return;
    }
    let items = group.events.iter().find_map(|e| match e {
        NotifyEvent::MessageNew(items) if !items.is_empty() => Some(items.clone()),
        _ => None,
    });
    let Some(attributes) = items else {
        return;
    };
    let Some(set) = SequenceSet::new(vec![(
        SeqBound::Value(covered.map_or(1, |covered| covered.get().saturating_add(1))),
        SeqBound::Value(newest.get()),
    )]) else {
        return;
    };
    state.fetch_mailbox = Some(view.mailbox);
    let request = fetch::FetchRequest {
        uid: true,
        set: &set,
        attributes,
        changed_since: None,
        vanished: false,
        partial: None,
    };
    let mut slice = slice::Slice::new(conn.interrupt);
    if let Progress::Paused(super::Task::Fetch(task)) =
        fetch::fetch(conn, store, request, out, &mut slice)
    {
        state.fetch = Some(task);
    }
}

/// Runs one more slice of the new messages' FETCH.
fn resume_fetch<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    state: &mut NotifyState,
    task: fetch::FetchTask,
    out: &mut Out,
) {
    // The task's messages are the selected mailbox's; a paused FETCH runs before any other
    // command, so the selection cannot have changed, but a stale task is dropped anyway.
    let same = conn.selected.as_ref().map(|view| view.mailbox) == state.fetch_mailbox;
    if !same || conn.selected.is_none() {
        return;
    }
    let mut slice = slice::Slice::new(conn.interrupt);
    if let Progress::Paused(super::Task::Fetch(task)) =
        fetch::resume(conn, store, task, out, &mut slice)
    {
        state.fetch = Some(task);
    }
}
