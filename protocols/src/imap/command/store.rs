//! STORE / UID STORE (RFC 9051 §6.4.6) with CONDSTORE's `UNCHANGEDSINCE` (RFC 7162 §3.1.3).
//!
//! After the store changes the flags, the session reports each named message's flags (unless
//! `.SILENT`) and records the change as its own, so the view's next sync does not report it a
//! second time.

use skua_core::disk::Disk;
use skua_core::store::UserStore;
use skua_core::types::{Flags, FlagsOp, MailboxId, ModSeq, SystemFlags, Uid};

use super::slice::Slice;
use super::{LOOKUP_ONE_BY_ONE_MAX, Progress, Task, durable, lookup, view};
use crate::imap::encode;
use crate::imap::reply::{self, Code, Completion};
use crate::imap::session::Conn;
use crate::imap::session::out::Out;
use crate::imap::types::{Flag, SequenceSet};

/// A parsed STORE.
pub(crate) struct StoreRequest<'a> {
    /// UID STORE
    pub uid: bool,
    /// The messages.
    pub set: &'a SequenceSet,
    /// Replace / add / remove.
    pub op: FlagsOp,
    /// `.SILENT`
    pub silent: bool,
    /// The flags.
    pub flags: &'a [Flag],
    /// `UNCHANGEDSINCE`
    pub unchanged_since: Option<u64>,
}

/// Turns wire flags into store flags, allocating keyword bits as needed.
///
/// # Errors
/// The reply for a flag that cannot be stored (`\Recent`, other `\` extensions) or a full
/// keyword table.
pub(crate) fn flags_for<D: Disk>(
    store: &mut UserStore<D>,
    mailbox: MailboxId,
    flags: &[Flag],
) -> Result<Flags, Completion> {
    let mut system = 0u16;
    let mut keywords: Vec<&str> = Vec::new();
    for flag in flags {
        match flag {
            Flag::Seen => system |= SystemFlags::SEEN,
            Flag::Answered => system |= SystemFlags::ANSWERED,
            Flag::Flagged => system |= SystemFlags::FLAGGED,
            Flag::Deleted => system |= SystemFlags::DELETED,
            Flag::Draft => system |= SystemFlags::DRAFT,
            Flag::Keyword(name) => keywords.push(name),
            Flag::Extension(name) => {
                return Err(Completion::bad(format!("Flag \\{name} cannot be stored")));
            }
        }
    }
    let keywords = if keywords.is_empty() {
        skua_core::types::Keywords::default()
    } else {
        store.keyword_bits(mailbox, &keywords).map_err(|e| reply::keywords(&e))?
    };
    Ok(Flags { system: SystemFlags(system), keywords })
}

/// A STORE between slices (see `slice.rs`): each slice changes the flags of one chunk of
/// messages (one store call, one modseq) and reports them.
#[derive(Debug)]
pub(crate) struct StoreTask {
    /// UID STORE: the MODIFIED set is in UIDs.
    uid: bool,
    op: FlagsOp,
    silent: bool,
    flags: Flags,
    unchanged_since: Option<ModSeq>,
    /// The messages named, in order; `position` is the next one.
    named: Vec<Uid>,
    position: usize,
    /// Messages not changed because of `UNCHANGEDSINCE` (RFC 7162 §3.1.3).
    modified: Vec<Uid>,
}

/// STORE / UID STORE: checks the request and runs its first slice.
pub(crate) fn store<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    request: &StoreRequest<'_>,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    if request.unchanged_since.is_some() {
        if !conn.config.condstore {
            return Progress::Done(Completion::bad("UNCHANGEDSINCE needs CONDSTORE"));
        }
        super::enable_condstore(conn, out);
    }
    let selected = view(conn);
    if selected.read_only {
        return Progress::Done(Completion::no("Mailbox is read-only").with(Code::ReadOnly));
    }
    let mailbox = selected.mailbox;
    let named: Vec<Uid> = selected
        .resolve(request.set, request.uid)
        .into_iter()
        .map(|i| selected.uids()[i])
        .collect();
    if named.is_empty() {
        return Progress::Done(Completion::ok("STORE completed"));
    }
    let access = selected.access;
    let flags = match flags_for(store, mailbox, request.flags) {
        Ok(flags) => flags,
        Err(completion) => return Progress::Done(completion),
    };
    if !access.may_store(request.op, &flags) {
        return Progress::Done(Completion::no("Permission denied").with(Code::NoPerm));
    }
    let task = StoreTask {
        uid: request.uid,
        op: request.op,
        silent: request.silent,
        flags,
        unchanged_since: request.unchanged_since.map(ModSeq),
        named,
        position: 0,
        modified: Vec::new(),
    };
    resume(conn, store, task, out, slice)
}

/// Runs one more slice of a STORE.
pub(crate) fn resume<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    mut task: StoreTask,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    while task.position < task.named.len() {
        if slice.spent(out) {
            return Progress::Paused(Task::Store(task));
        }
        let end = (task.position + LOOKUP_ONE_BY_ONE_MAX).min(task.named.len());
        let chunk = &task.named[task.position..end];
        slice.spend(chunk.len() as u64);
        if let Err(completion) = store_chunk(conn, store, &mut task, end, out) {
            return Progress::Done(completion);
        }
        task.position = end;
    }
    let selected = view(conn);
    Progress::Done(if task.modified.is_empty() {
        Completion::ok("STORE completed")
    } else {
        let set = uid_set(&task.modified, task.uid, selected);
        Completion::ok("Conditional STORE failed for some messages").with(Code::Modified(set))
    })
}

/// Changes and reports the flags of the named messages from `task.position` to `end`.
fn store_chunk<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    task: &mut StoreTask,
    end: usize,
    out: &mut Out,
) -> Result<(), Completion> {
    let condstore = conn.enabled.condstore;
    let mailbox = view(conn).mailbox;
    let chunk = &task.named[task.position..end];
    let live = lookup(store, mailbox, chunk.iter().copied()).map_err(|e| reply::read(&e))?;
    // Messages expunged by another session (not yet reported here) are left alone.
    let uids: Vec<Uid> = chunk
        .iter()
        .copied()
        .filter(|uid| live.binary_search_by_key(uid, |m| m.uid).is_ok())
        .collect();
    if uids.is_empty() {
        return Ok(());
    }
    let outcome = store
        .store_flags(mailbox, &uids, task.op, task.flags, task.unchanged_since)
        .map_err(|e| reply::update(&e))?;
    durable(store, out);
    task.modified.extend_from_slice(&outcome.modified);
    let messages = lookup(store, mailbox, uids.iter().copied()).map_err(|e| reply::read(&e))?;
    let keywords = store.keyword_table(mailbox).map_err(|e| reply::read(&e))?;
    let selected = view(conn);
    // New keywords are announced before the FETCH responses that carry them.
    super::announce_new_keywords(selected, keywords, out.buf());
    for uid in &uids {
        if outcome.modified.contains(uid) {
            continue;
        }
        let Ok(index) = messages.binary_search_by_key(uid, |m| m.uid) else {
            continue;
        };
        let message = &messages[index];
        selected.own_change(message.uid, message.modseq);
        let Some(msn) = selected.msn_of(message.uid) else {
            continue;
        };
        if !task.silent {
            let recent = selected.is_recent(message.uid);
            selected.write_flags_update(out.buf(), msn, message, keywords, condstore, recent);
        } else if condstore && outcome.changed.iter().any(|&(changed, _)| changed == *uid) {
            // RFC 7162 §3.1.3: even a silent STORE reports the new modseq of what it changed.
            let line = if selected.uid_only {
                format!("* {} UIDFETCH (MODSEQ ({}))\r\n", message.uid.get(), message.modseq.0)
            } else {
                format!(
                    "* {msn} FETCH (UID {} MODSEQ ({}))\r\n",
                    message.uid.get(),
                    message.modseq.0
                )
            };
            out.put(line.as_bytes());
        }
    }
    Ok(())
}

/// Formats UIDs (or their MSNs) as a compact sequence set `1:3,7`.
pub(crate) fn uid_set(uids: &[Uid], as_uids: bool, selected: &crate::imap::view::View) -> String {
    let mut numbers: Vec<u32> = if as_uids {
        uids.iter().map(|u| u.get()).collect()
    } else {
        uids.iter().filter_map(|u| selected.msn_of(*u)).collect()
    };
    numbers.sort_unstable();
    let mut text = Vec::new();
    encode::sequence_set(&mut text, &numbers);
    String::from_utf8_lossy(&text).into_owned()
}
