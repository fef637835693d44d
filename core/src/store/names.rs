//! Mailbox names and keywords: validation and the canonical form the store keeps.
//!
//! Names arrive already decoded from their wire form (modified UTF-7 is the protocol layer's
//! business). The hierarchy separator is `/`. `INBOX` is case-insensitive (RFC 9051 §5.1), and
//! so is a first hierarchy level spelled `inbox`, which is stored as `INBOX`. Names never
//! become paths (mailbox files are named by id), so the rules here are about what IMAP clients
//! can handle, not about file systems.

use crate::error::NameError;
use crate::limits::{KEYWORD_BYTES_MAX, MAILBOX_LEVELS_MAX, MAILBOX_NAME_BYTES_MAX};

/// The hierarchy separator.
pub const SEPARATOR: char = '/';

/// The name of the inbox, in its canonical spelling.
pub const INBOX: &str = "INBOX";

/// The first character of a name the protocol layer received but could not decode (a name
/// that is not valid modified UTF-7): such a name names no mailbox, matches no mailbox in a
/// LIST pattern, and cannot be made (`NameError::Undecodable`), while the command that carried
/// it still gets a proper answer (NO) instead of a syntax error.
pub const UNDECODABLE: char = '\u{7f}';

/// Validates a mailbox name and returns its canonical form (`INBOX` uppercased).
///
/// # Errors
/// Which rule the name breaks.
pub fn canonical(name: &str) -> Result<String, NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.starts_with(UNDECODABLE) {
        return Err(NameError::Undecodable);
    }
    if name.len() > MAILBOX_NAME_BYTES_MAX {
        return Err(NameError::TooLong);
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(NameError::ControlCharacter);
    }
    if name.contains(['*', '%']) {
        return Err(NameError::Wildcard);
    }
    let levels = name.split(SEPARATOR);
    let mut count = 0;
    for level in levels {
        if level.is_empty() {
            return Err(NameError::EmptyLevel);
        }
        count += 1;
    }
    if count > MAILBOX_LEVELS_MAX {
        return Err(NameError::TooDeep);
    }
    Ok(canonical_inbox(name))
}

/// Validates the name of a mailbox about to be made (CREATE, the target of RENAME): the rules
/// of [`canonical`], and no hierarchy level `.` or `..`. Existing names are only held to
/// [`canonical`], so a mailbox made before this rule stays reachable.
///
/// # Errors
/// Which rule the name breaks.
pub fn new_name(name: &str) -> Result<String, NameError> {
    let name = canonical(name)?;
    if name.split(SEPARATOR).any(|level| level == "." || level == "..") {
        return Err(NameError::DotLevel);
    }
    Ok(name)
}

/// The superiors of `name`, outermost first: `a` and `a/b` for `a/b/c`.
pub fn superiors(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices(SEPARATOR).map(|(at, _)| &name[..at])
}

/// `name` with a first level of `inbox` (any case) spelled `INBOX`. Does not validate.
#[must_use]
pub fn canonical_inbox(name: &str) -> String {
    let first = name.split(SEPARATOR).next().unwrap_or("");
    if first.eq_ignore_ascii_case(INBOX) && first != INBOX {
        format!("{INBOX}{}", &name[first.len()..])
    } else {
        name.to_owned()
    }
}

/// True when `name` is `descendant`'s ancestor in the hierarchy (`a` of `a/b/c`).
#[must_use]
pub fn is_ancestor(name: &str, descendant: &str) -> bool {
    descendant.len() > name.len()
        && descendant.starts_with(name)
        && descendant[name.len()..].starts_with(SEPARATOR)
}

/// True when `keyword` is a valid IMAP keyword: a non-empty atom of at most
/// `limits::KEYWORD_BYTES_MAX` bytes (RFC 9051 `flag-keyword = atom`, so no `\`).
#[must_use]
pub fn is_keyword(keyword: &str) -> bool {
    let atom_char = |b: u8| {
        b > 0x20
            && b < 0x7f
            && !matches!(b, b'(' | b')' | b'{' | b' ' | b'%' | b'*' | b'"' | b'\\' | b']')
    };
    !keyword.is_empty() && keyword.len() <= KEYWORD_BYTES_MAX && keyword.bytes().all(atom_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_is_case_insensitive() {
        assert_eq!(canonical("inbox").unwrap(), "INBOX");
        assert_eq!(canonical("InBoX/Work").unwrap(), "INBOX/Work");
        assert_eq!(canonical("INBOXES").unwrap(), "INBOXES");
        assert_eq!(canonical("Sent/inbox").unwrap(), "Sent/inbox");
    }

    #[test]
    fn bad_names_are_refused() {
        assert_eq!(canonical(""), Err(NameError::Empty));
        assert_eq!(canonical("a\0b"), Err(NameError::ControlCharacter));
        assert_eq!(canonical("a\r\nb"), Err(NameError::ControlCharacter));
        assert_eq!(canonical("/a"), Err(NameError::EmptyLevel));
        assert_eq!(canonical("a/"), Err(NameError::EmptyLevel));
        assert_eq!(canonical("a//b"), Err(NameError::EmptyLevel));
        assert_eq!(canonical("a*"), Err(NameError::Wildcard));
        assert_eq!(canonical(&"x".repeat(MAILBOX_NAME_BYTES_MAX + 1)), Err(NameError::TooLong));
        let deep = vec!["a"; MAILBOX_LEVELS_MAX + 1].join("/");
        assert_eq!(canonical(&deep), Err(NameError::TooDeep));
        assert!(canonical(&vec!["a"; MAILBOX_LEVELS_MAX].join("/")).is_ok());
        assert_eq!(canonical("Entwürfe").unwrap(), "Entwürfe");
    }

    #[test]
    fn ancestry() {
        assert!(is_ancestor("a", "a/b"));
        assert!(is_ancestor("a", "a/b/c"));
        assert!(!is_ancestor("a", "ab/c"));
        assert!(!is_ancestor("a", "a"));
    }

    #[test]
    fn keywords() {
        assert!(is_keyword("$Forwarded"));
        assert!(is_keyword("Junk"));
        assert!(!is_keyword(""));
        assert!(!is_keyword("\\Seen"));
        assert!(!is_keyword("a b"));
        assert!(!is_keyword(&"k".repeat(KEYWORD_BYTES_MAX + 1)));
    }
}
