//! Command execution, one file per command family. Each family takes the session state
//! ([`Conn`]), the user's store and the output, writes its untagged responses and returns the
//! tagged [`Completion`].
//!
//! [`run`] dispatches by state, and after every command in the Selected state brings the
//! client's view up to date ([`sync`]) before the tagged reply, so a client learns about other
//! sessions' changes at the points RFC 9051 §7.4.1 allows.
//!
//! FETCH, SEARCH, SORT, THREAD, LIST, LSUB, STORE, EXPUNGE, COPY and MOVE (and a QRESYNC
//! SELECT's FETCHes) are resumable ([`slice`]): [`run`] may answer
//! [`Outcome::Paused`], and the session calls [`resume`] on its next turn until the command is
//! done; the sync and the tagged reply come after the last slice.

pub(crate) mod acl;
mod acl_grant;
pub(crate) mod append;
pub(crate) mod catenate;
pub(crate) mod context;
pub(crate) mod copy_move;
pub(crate) mod expunge;
pub(crate) mod fetch;
mod fetch_binary;
mod fetch_body;
mod fetch_partial;
pub(crate) mod list;
mod list_across;
pub(crate) mod mailbox;
mod mailbox_foreign;
pub(crate) mod metadata;
pub(crate) mod misc;
pub(crate) mod notify;
mod objectid;
mod pattern;
pub(crate) mod qresync;
mod quota;
pub(crate) mod rename_inbox;
pub(crate) mod rights;
pub(crate) mod route;
pub(crate) mod search;
mod search_eval;
pub(crate) mod select;
pub(crate) mod slice;
pub(crate) mod sort;
pub(crate) mod store;
#[cfg(test)]
mod sync_changes_tests;
#[cfg(test)]
mod sync_tests;
mod thread;
mod transfer;
pub(crate) mod uidonly;
pub(crate) mod urlauth;
mod utf8;

use skua_core::disk::Disk;
use skua_core::error::ReadError;
use skua_core::store::{MailboxMarks, MessageMeta, UserStore};
use skua_core::types::{MailboxId, Uid};

use crate::imap::reply::{self, Completion};
use crate::imap::session::Conn;
use crate::imap::session::out::Out;
use crate::imap::types::{CommandBody, Tag};
use crate::imap::view::View;

/// A command paused between slices of its work.
#[derive(Debug)]
pub(crate) enum Task {
    /// FETCH / UID FETCH
    Fetch(fetch::FetchTask),
    /// SEARCH / UID SEARCH
    Search(search::SearchTask),
    /// LIST / LSUB
    List(list::ListTask),
    /// STORE / UID STORE
    Store(store::StoreTask),
    /// EXPUNGE / UID EXPUNGE
    Expunge(expunge::ExpungeTask),
    /// COPY / MOVE and their UID forms
    Copy(copy_move::CopyTask),
    /// COPY / MOVE into another user's store (`transfer.rs`)
    Transfer(transfer::TransferTask),
    /// SETACL noting its grant in the grantee's store (`acl_grant.rs`)
    Grant(acl_grant::GrantTask),
    /// LIST across every user (`list_across.rs`)
    ListAcross(Box<list_across::AcrossTask>),
    /// RENAME INBOX (moving its messages)
    RenameInbox(rename_inbox::RenameInboxTask),
    /// The FETCHes of a SELECT / EXAMINE with QRESYNC
    Resync(qresync::ResyncTask),
    /// SORT / THREAD and their UID forms
    Sort(sort::SortTask),
    /// The `* STATUS` lines of NOTIFY SET STATUS
    NotifyStatus(notify::StatusTask),
}

/// Where a resumable command stands after a slice.
#[derive(Debug)]
pub(crate) enum Progress {
    /// Finished: the tagged reply.
    Done(Completion),
    /// More to do.
    Paused(Task),
}

/// A command in progress, with what its end needs to know.
#[derive(Debug)]
pub(crate) struct Running {
    /// The command's tag.
    pub tag: Tag,
    task: Task,
    ending: Ending,
    /// The store's change counter when the last slice ended.
    counter_seen: u64,
    /// Whose store the command runs on (`None`: the session's own): its slices need it.
    pub owner: Option<String>,
}

/// What a command's end (the sync before its tagged reply) needs to know of its start.
#[derive(Clone, Copy, Debug)]
struct Ending {
    /// See [`allows_expunge`].
    allow_expunge: bool,
    /// See [`reports_own_changes`].
    reports_own_changes: bool,
    /// Nobody else changed the store since the command started (so far).
    quiet: bool,
}

/// What running (a slice of) a command came to.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The command is finished: its tagged reply.
    Done(Completion),
    /// The command paused; resume it on the next turn.
    Paused(Box<Running>),
}

/// Runs a command that needs the Authenticated or Selected state (its first slice, for the
/// resumable ones).
pub(crate) fn run<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    tag: &Tag,
    body: CommandBody,
    out: &mut Out,
) -> Outcome {
    let ending = Ending {
        allow_expunge: allows_expunge(&body),
        reports_own_changes: reports_own_changes(&body),
        quiet: conn.selected.as_ref().is_some_and(|v| v.change_counter() == store.change_counter()),
    };
    if let Some(refused) = uidonly::refuse(conn, &body) {
        return settle(conn, store, tag, ending, Progress::Done(refused), out);
    }
    if let Some(refused) = utf8::refuse(conn, &body) {
        return settle(conn, store, tag, ending, Progress::Done(refused), out);
    }
    let mut slice = slice::Slice::new(conn.interrupt);
    let progress = match body {
        body @ (CommandBody::Noop | CommandBody::Id) => Progress::Done(misc::stateless(&body, out)),
        CommandBody::Enable(names) => Progress::Done(misc::enable(conn, &names, out)),
        CommandBody::Namespace => Progress::Done(misc::namespace(conn, out)),
        CommandBody::Select { mailbox, condstore, qresync } => {
            let params = select::SelectParams { condstore, qresync: qresync.as_deref() };
            select::select(conn, store, &mailbox, false, params, out, &mut slice)
        }
        CommandBody::Examine { mailbox, condstore, qresync } => {
            let params = select::SelectParams { condstore, qresync: qresync.as_deref() };
            select::select(conn, store, &mailbox, true, params, out, &mut slice)
        }
        CommandBody::Create(name) if conn.store_owner.is_some() => {
            Progress::Done(mailbox_foreign::create(conn, store, &name, out))
        }
        CommandBody::Create(name) => Progress::Done(mailbox::create(store, &name, &[], out)),
        CommandBody::CreateSpecialUse { mailbox, uses } => {
            Progress::Done(mailbox::create(store, &mailbox, &uses, out))
        }
        CommandBody::Delete(name) if conn.store_owner.is_some() => {
            Progress::Done(mailbox_foreign::delete(conn, store, &name, out))
        }
        CommandBody::Delete(name) => Progress::Done(mailbox::delete(conn, store, &name, out)),
        CommandBody::Rename(old, new) if conn.store_owner.is_some() => {
            mailbox_foreign::rename(conn, store, &old, &new, out, &mut slice)
        }
        CommandBody::Rename(old, new) => mailbox::rename(store, &old, &new, out, &mut slice),
        CommandBody::Subscribe(name) => Progress::Done(mailbox::subscribe(store, &name, true, out)),
        CommandBody::Unsubscribe(name) => {
            Progress::Done(mailbox::subscribe(store, &name, false, out))
        }
        CommandBody::Status { mailbox, attributes } => {
            Progress::Done(mailbox::status(conn, store, &mailbox, &attributes, out))
        }
        CommandBody::List {
            reference,
            patterns,
            subscribed_only,
            recursive_match,
            special_use_only,
            return_subscribed,
            return_status,
            return_metadata,
            return_myrights,
        } => {
            let options = list::ListOptions {
                subscribed_only,
                recursive_match,
                special_use_only,
                return_subscribed,
                lsub: false,
                utf8_names: conn.enabled.utf8_names(),
                rev2: conn.enabled.rev2,
                append_limit: append::append_limit(conn),
            };
            let returns = list::Returns {
                status: return_status,
                metadata: return_metadata,
                myrights: return_myrights,
            };
            let foreign = list::foreign(conn);
            let across = if foreign.is_none() {
                list_across::owners(conn, store, &reference, &patterns, options)
            } else {
                Vec::new()
            };
            if across.is_empty() {
                list::list(store, &reference, &patterns, options, returns, foreign, out, &mut slice)
            } else {
                let (reference, patterns) = (reference.as_str(), patterns.as_slice());
                list_across::start(
                    store, reference, patterns, options, returns, across, out, &mut slice,
                )
            }
        }
        CommandBody::Lsub { reference, pattern } => {
            let options = list::ListOptions {
                subscribed_only: true,
                recursive_match: false,
                special_use_only: false,
                return_subscribed: false,
                lsub: true,
                utf8_names: conn.enabled.utf8_names(),
                rev2: conn.enabled.rev2,
                append_limit: append::append_limit(conn),
            };
            let returns = list::Returns::default();
            let foreign = list::foreign(conn);
            list::list(store, &reference, &[pattern], options, returns, foreign, out, &mut slice)
        }
        CommandBody::Append { mailbox, messages } => {
            Progress::Done(append::append(conn, store, &mailbox, &messages, out))
        }
        CommandBody::ResetKey { mailbox, mechanisms } => {
            Progress::Done(urlauth::reset_key(store, mailbox.as_deref(), &mechanisms, out))
        }
        CommandBody::GenUrlAuth(urls) => {
            Progress::Done(urlauth::gen_url_auth(conn, store, &urls, out))
        }
        CommandBody::UrlFetch(urls) => Progress::Done(urlauth::url_fetch(conn, store, &urls, out)),
        CommandBody::Notify(request) => notify::notify(conn, store, *request, out, &mut slice),
        CommandBody::GetMetadata { mailbox, request } => {
            Progress::Done(metadata::get(conn, store, &mailbox, &request, out))
        }
        CommandBody::SetMetadata { mailbox, entries } => {
            Progress::Done(metadata::set(store, &mailbox, &entries, out))
        }
        CommandBody::GetAcl(mailbox) => Progress::Done(acl::get_acl(conn, store, &mailbox, out)),
        CommandBody::SetAcl { mailbox, identifier, change } => {
            acl::set_acl(conn, store, &mailbox, &identifier, change, out)
        }
        CommandBody::DeleteAcl { mailbox, identifier } => {
            Progress::Done(acl::delete_acl(conn, store, &mailbox, &identifier, out))
        }
        CommandBody::ListRights { mailbox, identifier, spelled } => {
            Progress::Done(acl::list_rights(conn, store, &mailbox, &identifier, &spelled, out))
        }
        CommandBody::MyRights(mailbox) => {
            Progress::Done(acl::my_rights(conn, store, &mailbox, out))
        }
        CommandBody::GetQuota(root) => Progress::Done(quota::get_quota(conn, store, &root, out)),
        CommandBody::GetQuotaRoot(mailbox) => {
            Progress::Done(quota::get_quota_root(conn, store, &mailbox, out))
        }
        CommandBody::SetQuota { root, limits } => {
            Progress::Done(quota::set_quota(conn, store, &root, &limits, out))
        }
        body => run_selected(conn, store, tag, body, out, &mut slice),
    };
    settle(conn, store, tag, ending, progress, out)
}

/// Runs the next slice of a paused command.
pub(crate) fn resume<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    running: Running,
    out: &mut Out,
) -> Outcome {
    let Running { tag, task, mut ending, counter_seen, owner: _ } = running;
    // Another session (or a delivery) changed the store while this command was paused: its
    // changes are for the sync to report, not to be absorbed as this command's own.
    ending.quiet &= store.change_counter() == counter_seen;
    // Only the end of a command changes the selection, so a paused command that needs one
    // still has it; checked anyway, since `view()` would panic.
    if matches!(task, Task::Transfer(_) | Task::Grant(_) | Task::ListAcross(_)) {
        // Its steps run on two stores: one's change counter says nothing of the other's.
        ending.quiet = false;
    }
    if !matches!(
        task,
        Task::List(_)
            | Task::RenameInbox(_)
            | Task::NotifyStatus(_)
            | Task::Transfer(_)
            | Task::Grant(_)
            | Task::ListAcross(_)
    ) && conn.selected.is_none()
    {
        return Outcome::Done(Completion::bad("No mailbox selected"));
    }
    let mut slice = slice::Slice::new(conn.interrupt);
    let progress = match task {
        Task::Fetch(task) => fetch::resume(conn, store, task, out, &mut slice),
        Task::Search(task) => search::resume(conn, store, &tag, task, out, &mut slice),
        Task::List(task) => list::resume(task, store, out, &mut slice),
        Task::Store(task) => store::resume(conn, store, task, out, &mut slice),
        Task::Expunge(task) => expunge::resume(conn, store, task, out, &mut slice),
        Task::Copy(task) => copy_move::resume(conn, store, task, out, &mut slice),
        Task::Transfer(task) => transfer::resume(conn, store, task, out, &mut slice),
        Task::Grant(task) if task.noted => {
            Progress::Done(acl_grant::finish(conn, store, &task, out))
        }
        Task::Grant(task) => acl_grant::note(store, task, out),
        Task::ListAcross(task) => list_across::resume(conn, store, *task, out, &mut slice),
        Task::RenameInbox(task) => rename_inbox::resume(task, store, out, &mut slice),
        Task::Resync(task) => qresync::resume(conn, store, task, out, &mut slice),
        Task::Sort(task) => sort::resume(conn, store, &tag, task, out, &mut slice),
        Task::NotifyStatus(task) => notify::resume_status(conn, store, task, out, &mut slice),
    };
    settle(conn, store, &tag, ending, progress, out)
}

/// The store a paused command asked for cannot be had (`ImapSession::elsewhere_failed`):
/// true when the command can do without it and carries on (its `owner` names the store of
/// its next step), false when it is to be answered with the failure. A SETACL whose grantee
/// is no user has no index to keep (`acl_grant.rs`).
pub(crate) fn carry_on_without(
    running: &mut Running,
    failure: crate::imap::session::ElsewhereFailure,
) -> bool {
    use crate::imap::session::ElsewhereFailure;
    match (&mut running.task, failure) {
        (Task::Grant(grant), ElsewhereFailure::NoSuchUser) if !grant.noted => {
            grant.grantee_missing();
            running.owner = grant.next_owner();
            true
        }
        (Task::ListAcross(list), _) => {
            // That user's mailboxes are left out of the answer.
            list.skip_next();
            running.owner = list.next_owner();
            true
        }
        _ => false,
    }
}

/// After a slice: keeps a paused command, or finishes a done one (own changes absorbed, the
/// view synced).
fn settle<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    tag: &Tag,
    ending: Ending,
    progress: Progress,
    out: &mut Out,
) -> Outcome {
    match progress {
        Progress::Paused(task) => {
            // A paused command's next slice runs on the store at hand, except a transfer's,
            // which names the store its next step needs.
            let owner = match &task {
                Task::Transfer(transfer) => transfer.next_owner(),
                Task::Grant(grant) => grant.next_owner(),
                Task::ListAcross(list) => list.next_owner(),
                _ => conn.store_owner.clone(),
            };
            Outcome::Paused(Box::new(Running {
                tag: tag.clone(),
                task,
                ending,
                counter_seen: store.change_counter(),
                owner,
            }))
        }
        Progress::Done(completion) => {
            if ending.quiet && ending.reports_own_changes {
                absorb_own_changes(conn, store);
            }
            if completion.status != reply::Status::Bad {
                sync(conn, store, ending.allow_expunge, out);
            }
            Outcome::Done(completion)
        }
    }
}

/// Commands whose every change to the selected mailbox is reported (or, for `.SILENT`, not
/// wanted) by the command itself, and which cannot add messages to it. After one of them, if
/// nobody else changed the store before it ran, there is nothing for a sync to find: skipping
/// it saves reading the whole mailbox after every STORE on a big one.
fn reports_own_changes(body: &CommandBody) -> bool {
    matches!(
        body,
        CommandBody::Fetch { .. }
            | CommandBody::Store { .. }
            | CommandBody::Expunge { .. }
            | CommandBody::Search { .. }
            | CommandBody::Sort { .. }
            | CommandBody::Thread { .. }
            | CommandBody::Noop
            | CommandBody::Create(_)
            | CommandBody::CreateSpecialUse { .. }
            | CommandBody::Subscribe(_)
            | CommandBody::Unsubscribe(_)
    )
}

/// See [`reports_own_changes`].
fn absorb_own_changes<D: Disk>(conn: &mut Conn, store: &UserStore<D>) {
    let Some(view) = conn.selected.as_mut() else {
        return;
    };
    let Some(marks) = store.mailbox_marks(view.mailbox) else {
        return;
    };
    view.absorb_own_changes(store.change_counter(), marks);
}

/// Commands that need the Selected state.
fn run_selected<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    tag: &Tag,
    body: CommandBody,
    out: &mut Out,
    slice: &mut slice::Slice,
) -> Progress {
    let Some(selected) = conn.selected.as_ref() else {
        return Progress::Done(Completion::bad("No mailbox selected"));
    };
    let msn_set = match &body {
        CommandBody::Fetch { uid: false, set, .. }
        | CommandBody::Store { uid: false, set, .. }
        | CommandBody::Copy { uid: false, set, .. }
        | CommandBody::Move { uid: false, set, .. } => Some(set),
        _ => None,
    };
    if msn_set.is_some_and(|set| !selected.msn_set_valid(set)) {
        return Progress::Done(Completion::bad("Invalid message sequence number"));
    }
    let completion = match body {
        CommandBody::Close => select::close(conn, store, out),
        CommandBody::Unselect => {
            conn.selected = None;
            Completion::ok("UNSELECT completed")
        }
        CommandBody::CancelUpdate(tags) => context::cancel(conn, &tags),
        CommandBody::Expunge { uids } => return expunge::expunge(conn, store, uids, out, slice),
        CommandBody::Search { uid, esearch, charset, keys } => {
            let request = search::SearchRequest { uid, esearch, charset, keys: &keys };
            return search::search(conn, store, tag, &request, out, slice);
        }
        CommandBody::Sort { uid, esearch, criteria, charset, keys } => {
            let order = sort::Order::Sort { criteria, esearch };
            let request = sort::OrderRequest { uid, order, charset: &charset, keys: &keys };
            return sort::start(conn, store, tag, request, out, slice);
        }
        CommandBody::Thread { uid, algorithm, charset, keys } => {
            let order = sort::Order::Thread(algorithm);
            let request = sort::OrderRequest { uid, order, charset: &charset, keys: &keys };
            return sort::start(conn, store, tag, request, out, slice);
        }
        CommandBody::Fetch { uid, set, attributes, changed_since, vanished, partial } => {
            let request = fetch::FetchRequest {
                uid,
                set: &set,
                attributes,
                changed_since,
                vanished,
                partial,
            };
            return fetch::fetch(conn, store, request, out, slice);
        }
        CommandBody::Store { uid, set, op, silent, flags, unchanged_since } => {
            let request =
                store::StoreRequest { uid, set: &set, op, silent, flags: &flags, unchanged_since };
            return store::store(conn, store, &request, out, slice);
        }
        CommandBody::Copy { uid, set, mailbox } => {
            let request = copy_move::CopyRequest {
                uid,
                set: &set,
                target_name: &mailbox,
                move_messages: false,
            };
            return copy_move::copy(conn, store, &request, out, slice);
        }
        CommandBody::Move { uid, set, mailbox } => {
            let request = copy_move::CopyRequest {
                uid,
                set: &set,
                target_name: &mailbox,
                move_messages: true,
            };
            return copy_move::copy(conn, store, &request, out, slice);
        }
        // Handled before dispatch (session.rs) or above; reaching here is a state error.
        CommandBody::Capability
        | CommandBody::Noop
        | CommandBody::Logout
        | CommandBody::StartTls
        | CommandBody::Login { .. }
        | CommandBody::Authenticate { .. }
        | CommandBody::Enable(_)
        | CommandBody::Select { .. }
        | CommandBody::Examine { .. }
        | CommandBody::Create(_)
        | CommandBody::CreateSpecialUse { .. }
        | CommandBody::Delete(_)
        | CommandBody::Rename(..)
        | CommandBody::Subscribe(_)
        | CommandBody::Unsubscribe(_)
        | CommandBody::List { .. }
        | CommandBody::Lsub { .. }
        | CommandBody::GetMetadata { .. }
        | CommandBody::SetMetadata { .. }
        | CommandBody::GetAcl(_)
        | CommandBody::SetAcl { .. }
        | CommandBody::DeleteAcl { .. }
        | CommandBody::ListRights { .. }
        | CommandBody::MyRights(_)
        | CommandBody::GetQuota(_)
        | CommandBody::GetQuotaRoot(_)
        | CommandBody::SetQuota { .. }
        | CommandBody::Status { .. }
        | CommandBody::Append { .. }
        | CommandBody::Idle
        | CommandBody::Namespace
        | CommandBody::Unauthenticate
        | CommandBody::Compress
        | CommandBody::ResetKey { .. }
        | CommandBody::GenUrlAuth(_)
        | CommandBody::UrlFetch(_)
        | CommandBody::Notify(_)
        | CommandBody::Id => Completion::bad("Command not valid in this state"),
    };
    Progress::Done(completion)
}

/// FETCH, STORE and SEARCH by sequence number must not be followed by EXPUNGE responses
/// (RFC 9051 §7.5.1): the client's numbers would shift under it. Their UID forms may.
fn allows_expunge(body: &CommandBody) -> bool {
    !matches!(
        body,
        CommandBody::Fetch { uid: false, .. }
            | CommandBody::Store { uid: false, .. }
            | CommandBody::Search { uid: false, .. }
            | CommandBody::Sort { uid: false, .. }
            | CommandBody::Thread { uid: false, .. }
    )
}

/// Brings the selected view up to date with the store, writing the untagged updates.
pub(crate) fn sync<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    allow_expunge: bool,
    out: &mut Out,
) {
    sync_messages(conn, store, allow_expunge, out);
    // Kept searches (RFC 5267 §4.3) follow the lines above, own changes included: the view
    // skips those, a context does not.
    context::update(conn, store, out);
}

/// [`sync`] of the view itself: EXISTS, EXPUNGE / VANISHED, FETCH, RECENT.
fn sync_messages<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    allow_expunge: bool,
    out: &mut Out,
) {
    let condstore = conn.enabled.condstore;
    let Some(view) = conn.selected.as_mut() else {
        return;
    };
    let counter = store.change_counter();
    if counter == view.change_counter() {
        return;
    }
    let written = out.buffered();
    let last_known = view.uids().last().copied();
    if sync_view(view, store, allow_expunge, condstore, out.buf()).is_err() {
        // The mailbox was deleted by another session. Its messages and numbers are gone and
        // IMAP has no way to tell the client so in the Selected state: say BYE, as Dovecot
        // does, and let the client reconnect.
        out.put(b"* BYE Selected mailbox was deleted\r\n");
        conn.selected = None;
        conn.closing = true;
        return;
    }
    if !conn.enabled.rev2 && view.uids().last().copied() > last_known {
        // New messages were announced: those no session was told of are this one's \Recent,
        // and the count goes with the EXISTS (RFC 3501 §7.3.2).
        select::take_recent(view, store);
        out.put(format!("* {} RECENT\r\n", view.recent_count()).as_bytes());
    }
    if out.buffered() != written {
        // What is reported may be another session's change or a delivery that is not durable
        // yet. A client must never see a UID or a flag that a crash could take back (the UID
        // could then be given to another message under the same UIDVALIDITY), so the report
        // waits for the epoch the store is writing in now, like a mutation's reply.
        durable(store, out);
    }
}

/// Which way [`sync_view`] went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SyncPath {
    /// Only appends (or nothing in this mailbox) since the last sync: just the new records
    /// were looked up, O(new × log n).
    Appended,
    /// The store's modseq journal named what changed since the view's synced modseq:
    /// O(changes × log n).
    Changed,
    /// The whole mailbox was compared, O(n).
    Full,
}

/// Brings `view` up to date with the store's mailbox, writing the updates to `out`: through
/// the new records only when the store's marks prove nothing but appends happened, else
/// through what the store's journal says changed since the view's synced modseq, and through
/// the whole mailbox only when the journal does not reach back that far (the store was
/// reopened, or more changes happened than it keeps). All ways write the same bytes. A view in
/// IDLE on a big mailbox thus pays for a delivery or another session's STORE or EXPUNGE in
/// proportion to the change, not to the mailbox.
///
/// # Errors
/// [`ReadError::NoSuchMailbox`] when the mailbox is gone.
pub(crate) fn sync_view<D: Disk>(
    view: &mut View,
    store: &UserStore<D>,
    allow_expunge: bool,
    condstore: bool,
    out: &mut Vec<u8>,
) -> Result<SyncPath, ReadError> {
    let marks = store.mailbox_marks(view.mailbox).ok_or(ReadError::NoSuchMailbox)?;
    let keywords = store.keyword_table(view.mailbox)?;
    announce_new_keywords(view, keywords, out);
    if let Some(added) = appended(view, store, &marks)? {
        view.sync_appended(&added, store.change_counter(), marks, out);
        return Ok(SyncPath::Appended);
    }
    let changes = match view.synced_modseq() {
        Some(since) => store.changes_since(view.mailbox, since)?,
        None => None,
    };
    if let Some(changes) = changes {
        let counter = store.change_counter();
        view.sync_changes(&changes, counter, marks, allow_expunge, keywords, condstore, out);
        return Ok(SyncPath::Changed);
    }
    sync_full(view, store, allow_expunge, condstore, out)?;
    Ok(SyncPath::Full)
}

/// [`sync_view`] by comparing the whole mailbox (keywords already announced).
fn sync_full<D: Disk>(
    view: &mut View,
    store: &UserStore<D>,
    allow_expunge: bool,
    condstore: bool,
    out: &mut Vec<u8>,
) -> Result<(), ReadError> {
    let marks = store.mailbox_marks(view.mailbox).ok_or(ReadError::NoSuchMailbox)?;
    let keywords = store.keyword_table(view.mailbox)?;
    let counter = store.change_counter();
    let messages = store.messages(view.mailbox)?;
    view.sync(&messages, counter, allow_expunge, keywords, condstore, out);
    if view.change_counter() == counter {
        // The sync was complete (no deferred expunge): the view matches these marks.
        view.set_marks(marks);
    }
    Ok(())
}

/// The records appended since the view last matched the store, when that is all that
/// changed (see [`View::appended_range`]) and there are few enough to look up one by one.
fn appended<D: Disk>(
    view: &View,
    store: &UserStore<D>,
    marks: &MailboxMarks,
) -> Result<Option<Vec<MessageMeta>>, ReadError> {
    let Some(range) = view.appended_range(marks) else {
        return Ok(None);
    };
    if range.len() > LOOKUP_ONE_BY_ONE_MAX {
        return Ok(None);
    }
    let mut added = Vec::with_capacity(range.len());
    for uid in range.filter_map(Uid::new) {
        match store.message(view.mailbox, uid)? {
            Some(meta) => added.push(meta),
            // Cannot happen when the marks add up; the full comparison is always right.
            None => return Ok(None),
        }
    }
    Ok(Some(added))
}

/// When keywords were created since the client last heard, repeat FLAGS / PERMANENTFLAGS.
pub(crate) fn announce_new_keywords(view: &mut View, keywords: &[String], out: &mut Vec<u8>) {
    if keywords.len() > view.keywords_announced {
        select::write_flags(keywords, view.read_only, out);
        view.keywords_announced = keywords.len();
    }
}

/// Up to this many messages are looked up one by one (O(log n) each) rather than by reading
/// the whole mailbox's records: a `UID FETCH` of one message must not cost O(mailbox).
pub(crate) const LOOKUP_ONE_BY_ONE_MAX: usize = 64;

/// The live index records among `uids` (ascending), possibly with others around them: callers
/// binary-search the result by UID.
///
/// # Errors
/// The store's read error.
pub(crate) fn lookup<D: Disk>(
    store: &UserStore<D>,
    mailbox: MailboxId,
    uids: impl ExactSizeIterator<Item = Uid>,
) -> Result<Vec<MessageMeta>, ReadError> {
    if uids.len() > LOOKUP_ONE_BY_ONE_MAX {
        return store.messages(mailbox);
    }
    let mut found = Vec::with_capacity(uids.len());
    for uid in uids {
        if let Some(meta) = store.message(mailbox, uid)? {
            found.push(meta);
        }
    }
    Ok(found)
}

/// Marks the reply as waiting for the store's current epoch (call after a mutation).
pub(crate) fn durable<D: Disk>(store: &UserStore<D>, out: &mut Out) {
    out.durable_at(store.disk().epoch_open());
}

/// A CONDSTORE enabling command ran (RFC 7162 §3.1): CONDSTORE is on for the rest of the
/// session, and the first time, with a mailbox selected, the client learns its HIGHESTMODSEQ
/// (the modseq up to which this session has been told of changes, so that a later
/// CHANGEDSINCE from it misses nothing).
pub(crate) fn enable_condstore(conn: &mut Conn, out: &mut Out) {
    if conn.enabled.condstore {
        return;
    }
    conn.enabled.condstore = true;
    if let Some(view) = &conn.selected {
        let highest = view.reported_modseq().0;
        out.put(format!("* OK [HIGHESTMODSEQ {highest}] Highest\r\n").as_bytes());
    }
}

/// The selected view; callers checked that there is one.
pub(crate) fn view(conn: &mut Conn) -> &mut View {
    conn.selected.as_mut().expect("run_selected checked the selection")
}
