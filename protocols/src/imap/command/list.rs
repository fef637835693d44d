//! LIST and LSUB (RFC 9051 §6.3.9, RFC 3501 §6.3.9): wildcard matching over the user's
//! mailbox names, with `\HasChildren`/`\HasNoChildren` and `\Subscribed`.
//!
//! Matching is an NFA walk over the pattern (no recursion, `O(name × pattern)`), with `*`
//! matching anything and `%` anything but the separator `/`.

use std::collections::BTreeSet;

use skua_core::disk::Disk;
use skua_core::store::UserStore;

use crate::imap::encode;
use crate::imap::reply::Completion;
use crate::imap::session::out::Out;

/// The hierarchy separator.
pub(crate) const SEPARATOR: char = '/';

/// What kind of listing is asked for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ListOptions {
    /// Only subscribed names (`LIST (SUBSCRIBED)` or LSUB).
    pub subscribed_only: bool,
    /// Add `\Subscribed` (`RETURN (SUBSCRIBED)`).
    pub return_subscribed: bool,
    /// Reply with `* LSUB` lines.
    pub lsub: bool,
    /// Names go out as UTF-8 (IMAP4rev2), not modified UTF-7.
    pub utf8_names: bool,
}

/// LIST / LSUB
pub(crate) fn list<D: Disk>(
    store: &mut UserStore<D>,
    reference: &str,
    patterns: &[String],
    options: ListOptions,
    out: &mut Out,
) -> Completion {
    let verb = if options.lsub { "LSUB" } else { "LIST" };
    if patterns.len() == 1 && patterns[0].is_empty() {
        // `LIST "" ""`: the separator and the reference's root.
        let root = reference.split(SEPARATOR).next().unwrap_or("");
        let b = out.buf();
        b.extend_from_slice(format!("* {verb} (\\Noselect) \"/\" ").as_bytes());
        encode::string(b, root.as_bytes());
        b.extend_from_slice(b"\r\n");
        return Completion::ok(format!("{verb} completed"));
    }
    let existing: BTreeSet<String> = store.mailboxes().into_iter().map(|m| m.name).collect();
    let subscribed: BTreeSet<String> = store.subscriptions().into_iter().collect();
    let candidates = if options.subscribed_only { &subscribed } else { &existing };
    let mut names: BTreeSet<&str> = candidates.iter().map(String::as_str).collect();
    // Parents implied by deeper names are listed too (as non-selectable) when they match.
    let parents: Vec<&str> = candidates.iter().flat_map(|n| parents_of(n)).collect();
    names.extend(parents);
    let full: Vec<String> =
        patterns.iter().map(|p| normalize_inbox(&format!("{reference}{p}"))).collect();
    for name in names {
        if !full.iter().any(|p| matches(p, name)) {
            continue;
        }
        let exists = existing.contains(name);
        let is_subscribed = subscribed.contains(name);
        if options.subscribed_only && !is_subscribed && !options.lsub {
            // A parent implied by a subscription: LIST (SUBSCRIBED) leaves it out.
            continue;
        }
        let mut attributes = Vec::new();
        if !exists {
            // IMAP4rev2 and LIST-EXTENDED (RFC 5258) say \NonExistent for a name that is only
            // a hierarchy level or a subscription; plain rev1 LIST knows \Noselect.
            let extended = options.utf8_names || (options.subscribed_only && !options.lsub);
            attributes.push(if extended { "\\NonExistent" } else { "\\Noselect" });
        }
        if !options.lsub {
            let prefix = format!("{name}{SEPARATOR}");
            let children =
                existing.range(prefix.clone()..).next().is_some_and(|n| n.starts_with(&prefix));
            attributes.push(if children { "\\HasChildren" } else { "\\HasNoChildren" });
            if is_subscribed && (options.return_subscribed || options.subscribed_only) {
                attributes.push("\\Subscribed");
            }
        }
        let b = out.buf();
        b.extend_from_slice(format!("* {verb} ({}) \"/\" ", attributes.join(" ")).as_bytes());
        encode::mailbox(b, name, options.utf8_names);
        b.extend_from_slice(b"\r\n");
    }
    Completion::ok(format!("{verb} completed"))
}

/// `a/b/c` → `a`, `a/b`.
fn parents_of(name: &str) -> impl Iterator<Item = &str> {
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

/// True when `name` matches the LIST `pattern` (`*` anything, `%` anything but `/`).
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.as_bytes();
    // states[i]: the pattern prefix of length i matches the name prefix read so far.
    let mut states = vec![false; pattern.len() + 1];
    states[0] = true;
    close_wildcards(pattern, &mut states);
    for &c in name.as_bytes() {
        let mut next = vec![false; pattern.len() + 1];
        for i in 0..pattern.len() {
            if !states[i] {
                continue;
            }
            match pattern[i] {
                b'*' => next[i] = true,
                b'%' if c != b'/' => next[i] = true,
                b'%' => {}
                p if p == c => next[i + 1] = true,
                _ => {}
            }
        }
        close_wildcards(pattern, &mut next);
        if !next.iter().any(|&s| s) {
            return false;
        }
        states = next;
    }
    states[pattern.len()]
}

/// A wildcard may match nothing: a state before it also stands after it.
fn close_wildcards(pattern: &[u8], states: &mut [bool]) {
    for i in 0..pattern.len() {
        if states[i] && matches!(pattern[i], b'*' | b'%') {
            states[i + 1] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(matches("*", "a/b/c"));
        assert!(matches("%", "abc"));
        assert!(!matches("%", "a/b"));
        assert!(matches("a/%", "a/b"));
        assert!(!matches("a/%", "a/b/c"));
        assert!(matches("a/*", "a/b/c"));
        assert!(matches("a*c", "abbbc"));
        assert!(!matches("a*c", "abbbd"));
        assert!(matches("%/%", "x/y"));
        assert!(matches("INBOX", "INBOX"));
        assert!(!matches("INBOX", "INBOX/x"));
        assert!(matches("", ""));
        assert!(matches("**%%", "abc"));
    }

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
