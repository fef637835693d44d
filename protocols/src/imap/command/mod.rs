//! Command execution, one file per command family. Each family takes the session state
//! ([`Conn`]), the user's store and the output, writes its untagged responses and returns the
//! tagged [`Completion`].
//!
//! [`run`] dispatches by state, and after every command in the Selected state brings the
//! client's view up to date ([`sync`]) before the tagged reply, so a client learns about other
//! sessions' changes at the points RFC 9051 §7.4.1 allows.

pub(crate) mod append;
pub(crate) mod auth;
pub(crate) mod copy_move;
pub(crate) mod expunge;
pub(crate) mod fetch;
mod fetch_body;
pub(crate) mod list;
pub(crate) mod mailbox;
pub(crate) mod misc;
pub(crate) mod search;
mod search_eval;
pub(crate) mod select;
pub(crate) mod store;

use skua_core::disk::Disk;
use skua_core::store::UserStore;

use crate::imap::reply::{self, Code, Completion};
use crate::imap::session::Conn;
use crate::imap::session::out::Out;
use crate::imap::types::{CommandBody, Tag};
use crate::imap::view::View;

/// Runs a command that needs the Authenticated or Selected state.
pub(crate) fn run<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    tag: &Tag,
    body: CommandBody,
    out: &mut Out,
) -> Completion {
    let allow_expunge = allows_expunge(&body);
    let completion = match body {
        body @ (CommandBody::Noop | CommandBody::Id) => misc::stateless(&body, out),
        CommandBody::Enable(names) => misc::enable(conn, &names, out),
        CommandBody::Namespace => misc::namespace(out),
        CommandBody::Select { mailbox, condstore } => {
            select::select(conn, store, &mailbox, false, condstore, out)
        }
        CommandBody::Examine { mailbox, condstore } => {
            select::select(conn, store, &mailbox, true, condstore, out)
        }
        CommandBody::Create(name) => mailbox::create(store, &name, out),
        CommandBody::Delete(name) => mailbox::delete(conn, store, &name, out),
        CommandBody::Rename(old, new) => mailbox::rename(store, &old, &new, out),
        CommandBody::Subscribe(name) => mailbox::subscribe(store, &name, true, out),
        CommandBody::Unsubscribe(name) => mailbox::subscribe(store, &name, false, out),
        CommandBody::Status { mailbox, attributes } => {
            mailbox::status(conn, store, &mailbox, &attributes, out)
        }
        CommandBody::List { reference, patterns, subscribed_only, return_subscribed } => {
            let utf8_names = conn.enabled.rev2;
            let options =
                list::ListOptions { subscribed_only, return_subscribed, lsub: false, utf8_names };
            list::list(store, &reference, &patterns, options, out)
        }
        CommandBody::Lsub { reference, pattern } => {
            let options = list::ListOptions {
                subscribed_only: true,
                return_subscribed: false,
                lsub: true,
                utf8_names: conn.enabled.rev2,
            };
            list::list(store, &reference, &[pattern], options, out)
        }
        CommandBody::Append { mailbox, flags, date, message } => {
            append::append(conn, store, &mailbox, &flags, date, &message, out)
        }
        body => run_selected(conn, store, tag, body, out),
    };
    if completion.status != reply::Status::Bad {
        sync(conn, store, allow_expunge, out);
    }
    completion
}

/// Commands that need the Selected state.
fn run_selected<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    tag: &Tag,
    body: CommandBody,
    out: &mut Out,
) -> Completion {
    let Some(selected) = conn.selected.as_ref() else {
        return Completion::bad("No mailbox selected");
    };
    let msn_set = match &body {
        CommandBody::Fetch { uid: false, set, .. }
        | CommandBody::Store { uid: false, set, .. }
        | CommandBody::Copy { uid: false, set, .. }
        | CommandBody::Move { uid: false, set, .. } => Some(set),
        _ => None,
    };
    if msn_set.is_some_and(|set| !selected.msn_set_valid(set)) {
        return Completion::bad("Invalid message sequence number");
    }
    match body {
        CommandBody::Close => select::close(conn, store, out),
        CommandBody::Unselect => {
            conn.selected = None;
            Completion::ok("UNSELECT completed")
        }
        CommandBody::Expunge { uids } => expunge::expunge(conn, store, uids.as_ref(), out),
        CommandBody::Search { uid, esearch, charset, keys } => {
            let request = search::SearchRequest { uid, esearch, charset, keys: &keys };
            search::search(conn, store, tag, &request, out)
        }
        CommandBody::Fetch { uid, set, attributes, changed_since } => {
            let request = fetch::FetchRequest { uid, set: &set, attributes, changed_since };
            fetch::fetch(conn, store, &request, out)
        }
        CommandBody::Store { uid, set, op, silent, flags, unchanged_since } => {
            let request =
                store::StoreRequest { uid, set: &set, op, silent, flags: &flags, unchanged_since };
            store::store(conn, store, &request, out)
        }
        CommandBody::Copy { uid, set, mailbox } => {
            copy_move::copy(conn, store, uid, &set, &mailbox, false, out)
        }
        CommandBody::Move { uid, set, mailbox } => {
            copy_move::copy(conn, store, uid, &set, &mailbox, true, out)
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
        | CommandBody::Delete(_)
        | CommandBody::Rename(..)
        | CommandBody::Subscribe(_)
        | CommandBody::Unsubscribe(_)
        | CommandBody::List { .. }
        | CommandBody::Lsub { .. }
        | CommandBody::Status { .. }
        | CommandBody::Append { .. }
        | CommandBody::Idle
        | CommandBody::Namespace
        | CommandBody::Id => Completion::bad("Command not valid in this state"),
    }
}

/// FETCH, STORE and SEARCH by sequence number must not be followed by EXPUNGE responses
/// (RFC 9051 §7.5.1): the client's numbers would shift under it. Their UID forms may.
fn allows_expunge(body: &CommandBody) -> bool {
    !matches!(
        body,
        CommandBody::Fetch { uid: false, .. }
            | CommandBody::Store { uid: false, .. }
            | CommandBody::Search { uid: false, .. }
    )
}

/// Brings the selected view up to date with the store, writing the untagged updates.
pub(crate) fn sync<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    allow_expunge: bool,
    out: &mut Out,
) {
    let condstore = conn.enabled.condstore;
    let Some(view) = conn.selected.as_mut() else { return };
    let counter = store.change_counter();
    if counter == view.change_counter() {
        return;
    }
    let messages = match store.messages(view.mailbox) {
        Ok(messages) => messages,
        Err(_) => {
            // The mailbox went away under us (deleted by another session): the selection is
            // over. RFC 9051 has no gentler way than BYE; we unselect and say why.
            let mut line = Vec::new();
            Completion::no("Mailbox no longer exists").with(Code::Closed).write("*", &mut line);
            out.put(&line);
            conn.selected = None;
            return;
        }
    };
    let keywords = store.keywords(view.mailbox).unwrap_or_default();
    announce_new_keywords(view, &keywords, out);
    view.sync(&messages, counter, allow_expunge, &keywords, condstore, out.buf());
}

/// When keywords were created since the client last heard, repeat FLAGS / PERMANENTFLAGS.
pub(crate) fn announce_new_keywords(view: &mut View, keywords: &[String], out: &mut Out) {
    if keywords.len() > view.keywords_announced {
        select::write_flags(keywords, view.read_only, out.buf());
        view.keywords_announced = keywords.len();
    }
}

/// Marks the reply as waiting for the store's current epoch (call after a mutation).
pub(crate) fn durable<D: Disk>(store: &UserStore<D>, out: &mut Out) {
    out.durable_at(store.disk().epoch_open());
}

/// The selected view; callers checked that there is one.
pub(crate) fn view(conn: &mut Conn) -> &mut View {
    conn.selected.as_mut().expect("run_selected checked the selection")
}
