//! LIST across every user: `LIST "" "*"` or `LIST "" "Other Users/*"` shows, besides the own
//! mailboxes, every other user's that the session's user may see (`l`), and the public ones
//! (`Shared/`).
//!
//! Which users to visit comes from the user's own grant index (`UserStore::granted_by`, kept
//! by SETACL: `acl_grant.rs`), plus the public owner when one is configured: no store is
//! asked whom it shares with. The LIST lists the own store, then pauses naming the next user
//! (the shard carries the session to that user's store, as for COPY between users:
//! `transfer.rs`) and lists that store with `list::list`'s foreign listing, one user after
//! the other. A user only visited when a pattern can reach their namespace at all; one whose
//! store cannot be had (gone, or their shard busy) is left out of the answer. The namespace's
//! root (`Other Users`) is listed once.

use skua_core::disk::Disk;
use skua_core::store::UserStore;

use super::list::{self, ListOptions, ListTask, Returns};
use super::slice::Slice;
use super::{Progress, Task};
use crate::imap::reply::Completion;
use crate::imap::session::Conn;
use crate::imap::session::out::Out;
use crate::imap::types::StatusAttribute;

/// A LIST across users between steps.
#[derive(Debug)]
pub(crate) struct AcrossTask {
    reference: String,
    patterns: Vec<String>,
    options: ListOptions,
    /// `RETURN (STATUS ...)`: returned for other users' mailboxes too (METADATA and MYRIGHTS
    /// only for the own ones, as `list.rs` does).
    status: Vec<StatusAttribute>,
    /// Users still to visit, the next one last.
    owners: Vec<String>,
    /// The listing in progress on the store at hand, if one paused.
    current: Option<ListTask>,
    /// The store `current` belongs to (`None`: the own).
    at: Option<String>,
    /// Namespace roots listed already.
    listed: Vec<String>,
}

impl AcrossTask {
    /// The owner of the store the next step runs on (`None`: the session's own).
    pub(crate) fn next_owner(&self) -> Option<String> {
        if self.current.is_some() { self.at.clone() } else { self.owners.last().cloned() }
    }

    /// The next user's store cannot be had: that user is left out.
    pub(crate) fn skip_next(&mut self) {
        if self.current.is_none() {
            self.owners.pop();
        }
    }
}

/// The users a LIST on the own store also visits: those in the grant index (and the public
/// owner) whose namespace one of the patterns can reach. Empty for LSUB and `LIST
/// (SUBSCRIBED)`, which list the own subscriptions only.
pub(crate) fn owners<D: Disk>(
    conn: &Conn,
    store: &UserStore<D>,
    reference: &str,
    patterns: &[String],
    options: ListOptions,
) -> Vec<String> {
    if options.subscribed_only || options.lsub || options.special_use_only {
        return Vec::new();
    }
    let reaches = |prefix: &str| {
        patterns.iter().any(|p| can_extend(format!("{reference}{p}").as_bytes(), prefix.as_bytes()))
    };
    let namespaces = &conn.config.namespaces;
    let user = conn.user.as_deref().unwrap_or("");
    let mut owners = Vec::new();
    if let Some(public) = &namespaces.public_owner
        && !public.eq_ignore_ascii_case(user)
        && reaches(&namespaces.shared)
    {
        owners.push(public.clone());
    }
    if reaches(&namespaces.other_users) {
        let granted = store.granted_by().into_iter();
        owners.extend(granted.filter(|owner| {
            !owner.eq_ignore_ascii_case(user)
                && !namespaces
                    .public_owner
                    .as_deref()
                    .is_some_and(|p| p.eq_ignore_ascii_case(owner))
        }));
    }
    // Visited in name order (popped from the end).
    owners.sort();
    owners.reverse();
    owners
}

/// LIST on the own store, then on each of `owners`' stores.
#[allow(clippy::too_many_arguments)]
pub(crate) fn start<D: Disk>(
    store: &mut UserStore<D>,
    reference: &str,
    patterns: &[String],
    options: ListOptions,
    returns: Returns,
    owners: Vec<String>,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    let task = AcrossTask {
        reference: reference.to_owned(),
        patterns: patterns.to_vec(),
        options,
        status: returns.status.clone(),
        owners,
        current: None,
        at: None,
        listed: Vec::new(),
    };
    let progress = list::list(store, reference, patterns, options, returns, None, out, slice);
    after(task, progress)
}

/// The next step, on the store it named.
pub(crate) fn resume<D: Disk>(
    conn: &Conn,
    store: &mut UserStore<D>,
    mut task: AcrossTask,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    if let Some(current) = task.current.take() {
        let progress = list::resume(current, store, out, slice);
        return after(task, progress);
    }
    let Some(owner) = task.owners.pop() else {
        // The last users could not be visited.
        return Progress::Done(Completion::ok("LIST completed"));
    };
    let Some(mut foreign) = list::foreign(conn) else {
        // Only the visit of `owner` brings the session to another store.
        return Progress::Done(Completion::ok("LIST completed"));
    };
    debug_assert!(conn.store_owner.as_deref().is_some_and(|at| at.eq_ignore_ascii_case(&owner)));
    foreign.skip = task.listed.clone();
    // Every level above the user's own (`Other Users`) is listed by the first visit only.
    let node = foreign.prefix.trim_end_matches(list::SEPARATOR).to_owned();
    task.listed.extend(list::parents_of(&node).map(str::to_owned));
    task.at = conn.store_owner.clone();
    let returns = Returns { status: task.status.clone(), ..Returns::default() };
    let (reference, patterns) = (task.reference.clone(), task.patterns.clone());
    let progress =
        list::list(store, &reference, &patterns, task.options, returns, Some(foreign), out, slice);
    after(task, progress)
}

/// What a listing's slice came to, for the whole LIST: a paused listing pauses the LIST on the
/// same store; a finished one moves on to the next user, or ends the LIST after the last.
fn after(mut task: AcrossTask, progress: Progress) -> Progress {
    match progress {
        Progress::Paused(Task::List(current)) => {
            task.current = Some(current);
            Progress::Paused(Task::ListAcross(Box::new(task)))
        }
        Progress::Paused(other) => Progress::Paused(other),
        Progress::Done(completion) => {
            let ok = completion.status == crate::imap::reply::Status::Ok;
            if !ok || task.owners.is_empty() {
                return Progress::Done(completion);
            }
            Progress::Paused(Task::ListAcross(Box::new(task)))
        }
    }
}

/// True when `pattern` (LIST's wildcards: `*` anything, `%` anything but the separator) can
/// match some name that starts with `prefix` and goes on: whether a LIST can reach a
/// namespace. Over-approximates (any rest of the pattern is assumed to match something);
/// linear in `pattern.len() * prefix.len()`.
pub(crate) fn can_extend(pattern: &[u8], prefix: &[u8]) -> bool {
    let width = prefix.len() + 1;
    // reachable[i * width + j]: pattern[..i] can match prefix[..j] exactly.
    let mut reachable = vec![false; (pattern.len() + 1) * width];
    reachable[0] = true;
    for i in 0..=pattern.len() {
        for j in 0..=prefix.len() {
            if !reachable[i * width + j] {
                continue;
            }
            if j == prefix.len() {
                // The whole prefix is matched: what is left of the pattern goes on from there.
                if i < pattern.len() || prefix.is_empty() {
                    return true;
                }
                continue;
            }
            let Some(&p) = pattern.get(i) else { continue };
            match p {
                b'*' => return true,
                b'%' => {
                    // `%` ends here, or takes one more byte that is not the separator.
                    reachable[(i + 1) * width + j] = true;
                    if prefix[j] != list::SEPARATOR as u8 {
                        reachable[i * width + j + 1] = true;
                    }
                }
                _ if p == prefix[j] => reachable[(i + 1) * width + j + 1] = true,
                _ => {}
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::can_extend;

    #[test]
    fn patterns_that_reach_a_namespace() {
        let prefix = b"Other Users/";
        for pattern in ["*", "Other Users/*", "Oth*", "Other Users/%", "%/*", "%/%", "O%/bob/x"] {
            assert!(can_extend(pattern.as_bytes(), prefix), "{pattern}");
        }
        for pattern in
            ["%", "INBOX", "INBOX/*", "Other Users", "other users/*", "Other Users/", "X*"]
        {
            assert!(!can_extend(pattern.as_bytes(), prefix), "{pattern}");
        }
        // Many wildcards cost no more than the table.
        let hostile = "%".repeat(10_000);
        assert!(!can_extend(hostile.as_bytes(), prefix));
    }
}
