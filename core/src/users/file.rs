//! The passwd-file's line grammar, shared by loading and by the edit functions.
//!
//! ```text
//! line     = blank / comment / user
//! comment  = *WSP "#" *any
//! user     = name [":" password [":" uid ":" gid ":" gecos ":" home ":" shell ":" extra]]
//! ```
//!
//! Only `name` and `password` mean anything to skua; the other fields are Dovecot's and are
//! kept byte for byte when the file is rewritten. Lines end in LF (a CR before it is ignored).

use super::limits::{LINE_BYTES_MAX, NAME_BYTES_MAX};

/// One line of the file, without its line ending.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// Empty or whitespace only.
    Blank,
    /// Starts with `#` (after optional whitespace).
    Comment,
    /// A user line.
    User {
        /// The name as written.
        name: &'a str,
        /// The password field, possibly empty.
        password: &'a str,
        /// Byte offset in the line where the fields after the password start (at their `:`),
        /// or the line's length when there are none.
        rest_offset: usize,
    },
    /// A line that cannot be a user; the reason is for the log. Kept as is on rewrite.
    Invalid(String),
}

/// Removes the line ending (`\n` or `\r\n`) from a raw line.
pub(crate) fn strip_line_ending(raw: &[u8]) -> &[u8] {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    raw.strip_suffix(b"\r").unwrap_or(raw)
}

/// Parses one line (its line ending already stripped).
pub(crate) fn parse_line(raw: &[u8]) -> Line<'_> {
    if raw.len() > LINE_BYTES_MAX {
        return Line::Invalid(format!("line longer than {LINE_BYTES_MAX} bytes"));
    }
    let Ok(text) = std::str::from_utf8(raw) else {
        return Line::Invalid("not UTF-8".into());
    };
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Line::Blank;
    }
    if trimmed.starts_with('#') {
        return Line::Comment;
    }
    let (name, after_name) = match text.split_once(':') {
        Some((name, after)) => (name, Some(after)),
        None => (text, None),
    };
    if let Err(reason) = validate_name(name) {
        return Line::Invalid(format!("bad user name: {reason}"));
    }
    let (password, rest_offset) = match after_name {
        None => ("", text.len()),
        Some(after) => match after.split_once(':') {
            Some((password, _)) => (password, name.len() + 1 + password.len()),
            None => (after, text.len()),
        },
    };
    Line::User { name, password, rest_offset }
}

/// Checks that a user name can be stored in the file and used as a login and as a store
/// directory name: 1..=[`NAME_BYTES_MAX`] bytes, no `:` (the field separator), no control
/// characters or whitespace (line structure, and no mail address has them), no `/` or `\`,
/// not `.` or `..` (the shard makes a directory of the name), not starting with `#` (a
/// comment).
///
/// # Errors
/// The reason the name is refused.
pub(crate) fn validate_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    if name.len() > NAME_BYTES_MAX {
        return Err("too long");
    }
    if name.starts_with('#') {
        return Err("starts with '#'");
    }
    if name == "." || name == ".." {
        return Err("is '.' or '..'");
    }
    for c in name.chars() {
        if c == ':' {
            return Err("contains ':'");
        }
        if c == '/' || c == '\\' {
            return Err("contains a path separator");
        }
        if c.is_control() || c.is_whitespace() {
            return Err("contains whitespace or a control character");
        }
    }
    Ok(())
}

/// The key names are compared by: ASCII lowercase. See the module docs of `users` for why.
pub(crate) fn name_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_every_kind() {
        assert_eq!(parse_line(b""), Line::Blank);
        assert_eq!(parse_line(b"  \t"), Line::Blank);
        assert_eq!(parse_line(b"# a comment"), Line::Comment);
        assert_eq!(parse_line(b"  #indented"), Line::Comment);
        assert_eq!(
            parse_line(b"alice"),
            Line::User { name: "alice", password: "", rest_offset: 5 }
        );
        assert_eq!(
            parse_line(b"alice:{PLAIN}x"),
            Line::User { name: "alice", password: "{PLAIN}x", rest_offset: 14 }
        );
        let line = b"bob@example.com:{PLAIN}y:1000:1000::/home/bob::userdb_quota_rule=*:storage=1G";
        let Line::User { name, password, rest_offset } = parse_line(line) else { panic!() };
        assert_eq!((name, password), ("bob@example.com", "{PLAIN}y"));
        assert_eq!(&line[rest_offset..rest_offset + 6], b":1000:");
        assert!(matches!(parse_line(b"\xff:x"), Line::Invalid(_)));
        assert!(matches!(parse_line(b"a b:x"), Line::Invalid(_)));
        assert!(matches!(parse_line(&vec![b'a'; LINE_BYTES_MAX + 1]), Line::Invalid(_)));
    }

    #[test]
    fn names() {
        assert!(validate_name("alice@example.com").is_ok());
        assert!(validate_name("jürgen").is_ok());
        for bad in ["", "a:b", "a\nb", "a\u{7f}", "a/b", "..", ".", "#x", "a b"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_name(&"a".repeat(NAME_BYTES_MAX)).is_ok());
        assert!(validate_name(&"a".repeat(NAME_BYTES_MAX + 1)).is_err());
    }

    #[test]
    fn line_endings() {
        assert_eq!(strip_line_ending(b"a\r\n"), b"a");
        assert_eq!(strip_line_ending(b"a\n"), b"a");
        assert_eq!(strip_line_ending(b"a"), b"a");
    }
}
