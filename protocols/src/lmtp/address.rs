//! `+detail` addressing: `user+Folder@example.org` reaches `user@example.org`, and the detail
//! `Folder` names a mailbox of that user (chosen at delivery, `deliver::target_mailbox`).
//!
//! The separator is configurable (`[lmtp] detail_separator`, default `+`, empty: off). The
//! detail starts after the *first* separator of the local part, so `a+b+c@d` is user `a`
//! with detail `b+c`. A quoted local part has no detail. The shard first looks the whole
//! address up (a user may really be called `a+b`), and only then the address without its
//! detail.

/// Splits `address` into the address without its detail and the detail; `None` when it has
/// no separator in an unquoted local part, or nothing before it. An empty detail (`user+@d`)
/// gives `Some((user@d, None))`.
#[must_use]
pub fn split_detail(address: &str, separator: char) -> Option<(String, Option<String>)> {
    let (local, domain) = match address.rfind('@') {
        Some(at) => (&address[..at], Some(&address[at + 1..])),
        None => (address, None),
    };
    if local.starts_with('"') {
        return None;
    }
    let (user, detail) = local.split_once(separator)?;
    if user.is_empty() {
        return None;
    }
    let base = match domain {
        Some(domain) => format!("{user}@{domain}"),
        None => user.to_owned(),
    };
    let detail = Some(detail).filter(|d| !d.is_empty()).map(str::to_owned);
    Some((base, detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(address: &str) -> Option<(String, Option<String>)> {
        split_detail(address, '+')
    }

    #[test]
    fn details() {
        let some = |base: &str, detail: &str| Some((base.to_owned(), Some(detail.to_owned())));
        assert_eq!(split("user+Work@example.org"), some("user@example.org", "Work"));
        assert_eq!(split("user+Lists.rust"), some("user", "Lists.rust"));
        assert_eq!(split("a+b+c@d"), some("a@d", "b+c"));
        assert_eq!(split("user+@d"), Some(("user@d".to_owned(), None)));
        assert_eq!(split("user@d"), None);
        assert_eq!(split("+x@d"), None);
        assert_eq!(split("\"a+b\"@d"), None);
        // The domain is after the last `@`; a separator in it is not a detail.
        assert_eq!(split("a@b+c.example"), None);
        assert_eq!(split_detail("user-Work@d", '-'), some("user@d", "Work"));
    }
}
