//! Where a user's store lives, and the only way a name from outside becomes part of a path.
//!
//! A [`UserName`] is validated once: 1 to `limits::USER_NAME_BYTES_MAX` bytes of
//! `[a-z0-9._+@-]` after ASCII lowercasing, not starting with `.` (so never `.`, `..` or a hidden
//! name). Those bytes cannot form a path separator, a parent reference or a NUL, so
//! `users/<hh>/<name>` is always one directory inside the data directory. Anything else a client
//! sends (mailbox names, keywords) never becomes a path: mailbox files are named by
//! [`MailboxId`](crate::types::MailboxId), spool segments by number.
//!
//! `<hh>` is two lowercase hex digits of a stable hash of the name (CRC-32C, low byte), which
//! spreads users over 256 directories so no directory grows to millions of entries. The hash is
//! part of the on-disk layout: it must never change (pinned by a test).

use std::fmt;
use std::path::PathBuf;

use crate::limits::USER_NAME_BYTES_MAX;

/// Why a user name was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UserNameError {
    /// Empty.
    #[error("empty user name")]
    Empty,
    /// Longer than `limits::USER_NAME_BYTES_MAX` bytes.
    #[error("user name too long")]
    TooLong,
    /// A byte outside `[a-z0-9._+@-]` (after lowercasing).
    #[error("user name contains a character that is not allowed")]
    InvalidCharacter,
    /// Starts with `.`.
    #[error("user name starts with a dot")]
    LeadingDot,
}

/// A validated, lowercased user name: safe to use as one path component.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserName(String);

impl UserName {
    /// Validates and lowercases (ASCII) a user name.
    ///
    /// # Errors
    /// Which rule the name breaks.
    pub fn new(raw: &str) -> Result<UserName, UserNameError> {
        if raw.is_empty() {
            return Err(UserNameError::Empty);
        }
        if raw.len() > USER_NAME_BYTES_MAX {
            return Err(UserNameError::TooLong);
        }
        let name = raw.to_ascii_lowercase();
        let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._+@-".contains(&b);
        if !name.bytes().all(allowed) {
            return Err(UserNameError::InvalidCharacter);
        }
        if name.starts_with('.') {
            return Err(UserNameError::LeadingDot);
        }
        Ok(UserName(name))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The two hex digits that spread users over directories (stable forever; see module docs).
#[must_use]
pub fn user_bucket(name: &UserName) -> String {
    format!("{:02x}", crc32c::crc32c(name.0.as_bytes()) & 0xff)
}

/// The user's store directory relative to the data directory: `users/<hh>/<name>`.
#[must_use]
pub fn user_dir(name: &UserName) -> PathBuf {
    let mut path = PathBuf::from("users");
    path.push(user_bucket(name));
    path.push(&name.0);
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Component, Path};

    #[test]
    fn valid_names_are_lowercased() {
        let name = UserName::new("Alice.Smith+tag@Example.ORG").unwrap();
        assert_eq!(name.as_str(), "alice.smith+tag@example.org");
        assert_eq!(UserName::new("a").unwrap().as_str(), "a");
        assert!(UserName::new(&"x".repeat(USER_NAME_BYTES_MAX)).is_ok());
    }

    #[test]
    fn bad_names_are_refused() {
        assert_eq!(UserName::new(""), Err(UserNameError::Empty));
        assert_eq!(UserName::new("."), Err(UserNameError::LeadingDot));
        assert_eq!(UserName::new(".."), Err(UserNameError::LeadingDot));
        assert_eq!(UserName::new(".hidden"), Err(UserNameError::LeadingDot));
        assert_eq!(UserName::new("a/b"), Err(UserNameError::InvalidCharacter));
        assert_eq!(UserName::new("a\0b"), Err(UserNameError::InvalidCharacter));
        assert_eq!(UserName::new("a b"), Err(UserNameError::InvalidCharacter));
        assert_eq!(UserName::new("ü"), Err(UserNameError::InvalidCharacter));
        assert_eq!(UserName::new(&"x".repeat(256)), Err(UserNameError::TooLong));
    }

    #[test]
    fn user_dir_is_stable_and_plain() {
        let name = UserName::new("alice").unwrap();
        // Pinned: the bucket is part of the on-disk layout.
        assert_eq!(user_bucket(&name), format!("{:02x}", crc32c::crc32c(b"alice") & 0xff));
        assert_eq!(user_dir(&name), Path::new("users").join(user_bucket(&name)).join("alice"));
        assert_eq!(user_bucket(&UserName::new("bob").unwrap()), "d4");
        for raw in ["a..b", "a.", "x@y", "-"] {
            let dir = user_dir(&UserName::new(raw).unwrap());
            assert!(dir.components().all(|c| matches!(c, Component::Normal(_))));
            assert_eq!(dir.components().count(), 3);
        }
    }
}
