//! LIST and LSUB (RFC 9051 §6.3.9, RFC 3501 §6.3.9): wildcard matching over the user's
//! mailbox names, with `\HasChildren`/`\HasNoChildren`, `\Subscribed` and the special-use
//! attributes (RFC 6154 §2: LIST shows them always, in rev1 and rev2 sessions alike, so
//! `RETURN (SPECIAL-USE)` changes nothing; the `SPECIAL-USE` selection option lists only
//! mailboxes that have one).
//!
//! Matching is a bit-parallel NFA walk (`pattern.rs`): linear in the name, no backtracking.
//! A LIST over many mailboxes is resumable: it matches a slice of names at a time.
//! `RETURN (STATUS ...)` (RFC 5819) and `RETURN (METADATA ...)` (RFC 9590, `metadata.rs`)
//! follow each listed mailbox that exists with its STATUS and METADATA lines.

use crate::imap::session::Conn;
use std::collections::{BTreeMap, BTreeSet};

use skua_core::disk::Disk;
use skua_core::store::{SpecialUse, UserStore};

use super::pattern::{Pattern, Scratch};
use super::slice::Slice;
use super::{Progress, Task};
use crate::imap::encode;
use crate::imap::reply::{Code, Completion};
use crate::imap::session::out::Out;
use crate::imap::types::{MetadataRequest, StatusAttribute};

/// The hierarchy separator.
pub(crate) const SEPARATOR: char = '/';

/// What kind of listing is asked for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ListOptions {
    /// Only subscribed names (`LIST (SUBSCRIBED)` or LSUB).
    pub subscribed_only: bool,
    /// `LIST (SUBSCRIBED RECURSIVEMATCH)`: also a name with a subscribed descendant, with
    /// `CHILDINFO ("SUBSCRIBED")` (RFC 5258 §3.5).
    pub recursive_match: bool,
    /// `LIST (SPECIAL-USE)`: only mailboxes with special-use attributes (RFC 6154 §2).
    pub special_use_only: bool,
    /// Add `\Subscribed` (`RETURN (SUBSCRIBED)`).
    pub return_subscribed: bool,
    /// Reply with `* LSUB` lines.
    pub lsub: bool,
    /// Names go out as UTF-8 (IMAP4rev2 or UTF8=ACCEPT), not modified UTF-7.
    pub utf8_names: bool,
    /// IMAP4rev2 is enabled (LIST's `\NonExistent`).
    pub rev2: bool,
    /// `APPENDLIMIT` for `RETURN (STATUS (APPENDLIMIT))` (RFC 7889).
    pub append_limit: u64,
}

/// What LIST returns beside the names (RFC 5258 `RETURN (...)`).
#[derive(Debug, Default)]
pub(crate) struct Returns {
    /// `RETURN (STATUS (...))`: a STATUS line after each listed mailbox that exists.
    pub status: Vec<StatusAttribute>,
    /// `RETURN (METADATA (...))` (RFC 9590): a METADATA line after each listed mailbox that
    /// exists.
    pub metadata: Option<Box<MetadataRequest>>,
    /// `RETURN (MYRIGHTS)` (RFC 8440): a MYRIGHTS line after each listed mailbox that exists.
    pub myrights: bool,
}

/// Compiled patterns of one LIST may hold at most this many u64 words (8 MiB): beyond it the
/// command is refused rather than the memory spent. Real clients send one or two short
/// patterns; only a hostile one comes near.
const PATTERN_WORDS_MAX: usize = 1 << 20;

/// A LIST or LSUB between slices (see `slice.rs`).
#[derive(Debug)]
pub(crate) struct ListTask {
    options: ListOptions,
    patterns: Vec<Pattern>,
    existing: BTreeSet<String>,
    subscribed: BTreeSet<String>,
    /// The special-use attributes of the mailboxes that have any.
    uses: BTreeMap<String, SpecialUse>,
    /// Every name that may be listed (candidates and their implied parents), sorted.
    names: Vec<String>,
    /// `RETURN (STATUS (...))`: a STATUS line after each listed mailbox that exists.
    status: Vec<StatusAttribute>,
    /// `RETURN (METADATA (...))` (RFC 9590).
    metadata: Option<Box<MetadataRequest>>,
    /// `RETURN (MYRIGHTS)` (RFC 8440).
    myrights: bool,
    /// The longest value `RETURN (METADATA (MAXSIZE n))` left out so far (0: none).
    longest_left_out: u64,
    /// The next name to consider.
    position: usize,
    /// Listing another user's mailboxes: the namespace prefix every listed name carries
    /// (`Other Users/bob/`), empty for the own store.
    prefix: String,
}

/// Another user's store at hand (a LIST under `Other Users/<owner>/` or `Shared/`): the names
/// are listed with `prefix`, and only mailboxes `user` may see (`l`).
pub(crate) struct Foreign<'a> {
    /// The namespace prefix of the owner's mailboxes.
    pub prefix: String,
    /// The session's user.
    pub user: &'a str,
    /// Names listed already by an earlier store of the same LIST (the namespace's root,
    /// `Other Users`, on every owner after the first: `list_across.rs`).
    pub skip: Vec<String>,
}

/// The foreign listing of a session whose store at hand is another user's.
pub(crate) fn foreign(conn: &Conn) -> Option<Foreign<'_>> {
    let owner = conn.store_owner.as_deref()?;
    Some(Foreign {
        prefix: conn.config.namespaces.client_name(owner, ""),
        user: conn.user.as_deref().unwrap_or(""),
        skip: Vec::new(),
    })
}

/// LIST / LSUB: gathers the names and runs the first slice of matching.
#[allow(clippy::too_many_arguments)]
pub(crate) fn list<D: Disk>(
    store: &mut UserStore<D>,
    reference: &str,
    patterns: &[String],
    options: ListOptions,
    returns: Returns,
    foreign: Option<Foreign<'_>>,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    let verb = verb(options);
    if patterns.len() == 1 && patterns[0].is_empty() {
        // `LIST "" ""`: the separator and the reference's root.
        let root = reference.split(SEPARATOR).next().unwrap_or("");
        let b = out.buf();
        b.extend_from_slice(format!("* {verb} (\\Noselect) \"/\" ").as_bytes());
        encode::string(b, root.as_bytes());
        b.extend_from_slice(b"\r\n");
        return Progress::Done(Completion::ok(format!("{verb} completed")));
    }
    let mut compiled = Vec::with_capacity(patterns.len());
    let mut words = 0;
    for pattern in patterns {
        let pattern = Pattern::new(normalize_inbox(&format!("{reference}{pattern}")).as_bytes());
        words += pattern.size_words();
        if words > PATTERN_WORDS_MAX {
            return Progress::Done(Completion::no("Patterns too complex").with(Code::Limit));
        }
        compiled.push(pattern);
    }
    if returns.metadata.is_some() {
        match store.load_metadata() {
            // Replayed just now: what it shows becomes durable with the open epoch.
            Ok(true) => super::durable(store, out),
            Ok(false) => {}
            Err(error) => return Progress::Done(crate::imap::reply::storage(&error)),
        }
    }
    if let Some(foreign) = foreign {
        return list_foreign(store, compiled, options, returns, &foreign, out, slice);
    }
    let mailboxes = store.mailboxes();
    let uses: BTreeMap<String, SpecialUse> = mailboxes
        .iter()
        .map(|m| (m.name.clone(), store.special_use(m.id)))
        .filter(|(_, uses)| !uses.is_empty())
        .collect();
    let existing: BTreeSet<String> = mailboxes.into_iter().map(|m| m.name).collect();
    let subscribed: BTreeSet<String> = store.subscriptions().into_iter().collect();
    let candidates = if options.subscribed_only { &subscribed } else { &existing };
    let mut names: BTreeSet<&str> = candidates.iter().map(String::as_str).collect();
    // Parents implied by deeper names are listed too (as non-selectable) when they match.
    let parents: Vec<&str> = candidates.iter().flat_map(|n| parents_of(n)).collect();
    names.extend(parents);
    let names: Vec<String> = names.into_iter().map(str::to_owned).collect();
    slice.spend(names.len() as u64 / 64 + 1);
    let task = ListTask {
        options,
        patterns: compiled,
        existing,
        subscribed,
        uses,
        names,
        status: returns.status,
        metadata: returns.metadata,
        myrights: returns.myrights,
        longest_left_out: 0,
        position: 0,
        prefix: String::new(),
    };
    resume(task, store, out, slice)
}

/// LIST of another user's store: the mailboxes `foreign.user` may see (`l`), under the
/// owner's namespace prefix, with their implied parents (the prefix's levels included).
/// Subscriptions are the session user's own (in their own store), so none show here; STATUS
/// may be returned, MYRIGHTS and METADATA are not (yet) for another user's mailboxes.
fn list_foreign<D: Disk>(
    store: &UserStore<D>,
    patterns: Vec<Pattern>,
    options: ListOptions,
    returns: Returns,
    foreign: &Foreign<'_>,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    let visible = store
        .mailboxes()
        .into_iter()
        .filter(|m| store.rights_of(m.id, foreign.user, true).has(skua_core::acl::Right::Lookup));
    let existing: BTreeSet<String> =
        visible.map(|m| format!("{}{}", foreign.prefix, m.name)).collect();
    let candidates = if options.subscribed_only { BTreeSet::new() } else { existing.clone() };
    let mut names: BTreeSet<&str> = candidates.iter().map(String::as_str).collect();
    names.extend(candidates.iter().flat_map(|n| parents_of(n)));
    names.retain(|name| !foreign.skip.iter().any(|skip| skip == name));
    let names: Vec<String> = names.into_iter().map(str::to_owned).collect();
    slice.spend(names.len() as u64 / 64 + 1);
    let task = ListTask {
        options,
        patterns,
        existing,
        subscribed: BTreeSet::new(),
        uses: BTreeMap::new(),
        names,
        status: returns.status,
        metadata: None,
        myrights: false,
        longest_left_out: 0,
        position: 0,
        prefix: foreign.prefix.clone(),
    };
    resume(task, store, out, slice)
}

/// Runs one more slice of a LIST or LSUB.
pub(crate) fn resume<D: Disk>(
    mut task: ListTask,
    store: &UserStore<D>,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    let mut scratch = Scratch::default();
    while task.position < task.names.len() {
        if slice.spent(out) {
            return Progress::Paused(Task::List(task));
        }
        let name = &task.names[task.position];
        task.position += 1;
        // Matching costs a few words per name byte and pattern: 64 such words are one unit.
        let words: usize = task.patterns.iter().map(Pattern::words).sum();
        slice.spend(1 + (name.len() * words / 64) as u64);
        if task.patterns.iter().any(|p| p.matches(name.as_bytes(), &mut scratch))
            && write_name(&task, name, out)
            && let Some(local) = name.strip_prefix(task.prefix.as_str())
            && let Some(id) = store.mailbox_id(local)
        {
            let utf8 = task.options.utf8_names;
            if !task.status.is_empty()
                && let Some(mut info) = store.mailbox_info(id)
            {
                name.clone_into(&mut info.name);
                // LIST-STATUS (RFC 5819): the session's own \Recent is not counted here.
                let limit = task.options.append_limit;
                super::mailbox::write_status(out.buf(), store, &info, &task.status, 0, utf8, limit);
            }
            if task.myrights {
                // LIST-MYRIGHTS (RFC 8440): the MYRIGHTS line follows the mailbox's LIST line.
                super::acl::write_for_list(out.buf(), store, id, name, utf8);
            }
            if let Some(request) = &task.metadata {
                // LIST-METADATA (RFC 9590): the METADATA line follows the mailbox's LIST line.
                let b = out.buf();
                let longest = super::metadata::write_for_list(b, store, id, name, request, utf8);
                task.longest_left_out = task.longest_left_out.max(longest);
            }
        }
    }
    if task.metadata.is_some() {
        let text = if task.options.lsub { "LSUB completed" } else { "LIST completed" };
        return Progress::Done(super::metadata::completion(text, task.longest_left_out));
    }
    Progress::Done(Completion::ok(format!("{} completed", verb(task.options))))
}

/// `LIST` or `LSUB`.
fn verb(options: ListOptions) -> &'static str {
    if options.lsub { "LSUB" } else { "LIST" }
}

/// Writes the `* LIST` / `* LSUB` line of one matching name (or nothing, for a parent that
/// `LIST (SUBSCRIBED)` leaves out); true when a line was written for a mailbox that exists.
fn write_name(task: &ListTask, name: &str, out: &mut Out) -> bool {
    let options = task.options;
    let exists = task.existing.contains(name);
    let is_subscribed = task.subscribed.contains(name);
    let prefix = format!("{name}{SEPARATOR}");
    let subscribed_child = options.recursive_match
        && task.subscribed.range(prefix.clone()..).next().is_some_and(|n| n.starts_with(&prefix));
    if options.subscribed_only && !is_subscribed && !options.lsub && !subscribed_child {
        // A parent implied by a subscription: LIST (SUBSCRIBED) leaves it out, unless
        // RECURSIVEMATCH asks for it (with CHILDINFO, below).
        return false;
    }
    let uses = task.uses.get(name).copied().unwrap_or_default();
    if options.special_use_only && uses.is_empty() {
        return false;
    }
    let mut attributes = Vec::new();
    if options.lsub {
        // LSUB's \Noselect: a name that is not subscribed itself (a parent implied by a
        // subscribed child, RFC 3501 §6.3.9), or a subscribed name with no mailbox.
        if !is_subscribed || !exists {
            attributes.push("\\Noselect");
        }
    } else if !exists {
        // IMAP4rev2 and LIST-EXTENDED (RFC 5258) say \NonExistent for a name that is only
        // a hierarchy level or a subscription; plain rev1 LIST knows \Noselect.
        let extended = options.rev2 || (options.subscribed_only && !options.lsub);
        attributes.push(if extended { "\\NonExistent" } else { "\\Noselect" });
    }
    if !options.lsub {
        attributes.extend(uses.names());
        let children =
            task.existing.range(prefix.clone()..).next().is_some_and(|n| n.starts_with(&prefix));
        attributes.push(if children { "\\HasChildren" } else { "\\HasNoChildren" });
        if is_subscribed && (options.return_subscribed || options.subscribed_only) {
            attributes.push("\\Subscribed");
        }
    }
    let b = out.buf();
    b.extend_from_slice(
        format!("* {} ({}) \"/\" ", verb(options), attributes.join(" ")).as_bytes(),
    );
    encode::mailbox(b, name, options.utf8_names);
    if subscribed_child {
        // RFC 5258 §3.5: a descendant meets the selection criteria.
        b.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
    }
    b.extend_from_slice(b"\r\n");
    exists
}

/// `a/b/c` → `a`, `a/b`.
pub(crate) fn parents_of(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices(SEPARATOR).map(move |(i, _)| &name[..i]).filter(|p| !p.is_empty())
}

/// `inbox`, `Inbox/x` ... → `INBOX`, `INBOX/x`: INBOX is case-insensitive, nothing else is.
fn normalize_inbox(pattern: &str) -> String {
    let head = pattern.get(..5);
    let rest = pattern.get(5..).unwrap_or("");
    if head.is_some_and(|h| h.eq_ignore_ascii_case("INBOX"))
        && (rest.is_empty() || rest.starts_with(SEPARATOR))
    {
        format!("INBOX{rest}")
    } else {
        pattern.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_is_case_insensitive() {
        assert_eq!(normalize_inbox("inbox"), "INBOX");
        assert_eq!(normalize_inbox("Inbox/Sub"), "INBOX/Sub");
        assert_eq!(normalize_inbox("inboxes"), "inboxes");
        assert_eq!(normalize_inbox("in"), "in");
    }

    #[test]
    fn parents() {
        assert_eq!(parents_of("a/b/c").collect::<Vec<_>>(), vec!["a", "a/b"]);
        assert_eq!(parents_of("a").count(), 0);
    }
}
