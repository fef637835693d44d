//! Namespaces (RFC 2342): where a mailbox name the client sends lives.
//!
//! ```text
//!  "Projects/2026"                 the session's own store: personal namespace ""
//!  "Other Users/bob/Projects"      bob's store, mailbox "Projects" (rights from bob's ACL)
//!  "Shared/Announcements"          the public owner's store (a pseudo-user), "Announcements"
//! ```
//!
//! The prefixes are exact (case-sensitive) strings from the configuration; the user name
//! after `Other Users/` is matched as the passwd-file matches names (ASCII case-insensitive),
//! by the shard, which knows the users. A name is never a path: it is split here into an owner
//! and a mailbox name, and each is looked up in its own table (the user in the passwd-file,
//! the mailbox in that user's mailbox list), so `Other Users/../x` names the user `..`, who
//! does not exist.

/// The namespace prefixes of a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespaces {
    /// Prefix of other users' mailboxes, ending in the separator (`Other Users/`).
    pub other_users: String,
    /// Prefix of the public mailboxes (`Shared/`), ending in the separator.
    pub shared: String,
    /// The pseudo-user whose mailboxes are the public ones; `None`: no public namespace.
    pub public_owner: Option<String>,
}

impl Default for Namespaces {
    fn default() -> Namespaces {
        Namespaces {
            other_users: "Other Users/".to_owned(),
            shared: "Shared/".to_owned(),
            public_owner: None,
        }
    }
}

/// Where a name lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place<'a> {
    /// The session's own store, under this name.
    Own(&'a str),
    /// Another user's store (as the client spelled the user), under this name there.
    Foreign { owner: &'a str, name: &'a str },
    /// A namespace prefix or a user's root (`Other Users/bob`): a level of the hierarchy, not
    /// a mailbox.
    Root,
}

impl Namespaces {
    /// Where `name` lives for the session of `user`.
    pub(crate) fn place<'a>(&'a self, user: &str, name: &'a str) -> Place<'a> {
        if let Some(rest) = strip_level(name, &self.other_users) {
            let Some(rest) = rest else { return Place::Root };
            return match rest.split_once('/') {
                Some((owner, name)) if !owner.is_empty() && !name.is_empty() => {
                    if owner.eq_ignore_ascii_case(user) {
                        Place::Own(name)
                    } else {
                        Place::Foreign { owner, name }
                    }
                }
                _ => Place::Root,
            };
        }
        if let Some(public) = self.public_owner.as_deref()
            && let Some(rest) = strip_level(name, &self.shared)
        {
            return match rest {
                Some(name) if public.eq_ignore_ascii_case(user) => Place::Own(name),
                Some(name) => Place::Foreign { owner: public, name },
                None => Place::Root,
            };
        }
        Place::Own(name)
    }

    /// The name a client uses for `owner`'s mailbox `name` (the inverse of [`Self::place`]).
    pub(crate) fn client_name(&self, owner: &str, name: &str) -> String {
        match self.public_owner.as_deref() {
            Some(public) if public.eq_ignore_ascii_case(owner) => format!("{}{name}", self.shared),
            _ => format!("{}{owner}/{name}", self.other_users),
        }
    }

    /// The NAMESPACE response's line.
    pub(crate) fn response(&self) -> String {
        let other = quoted(&self.other_users);
        let shared = match self.public_owner {
            Some(_) => format!("((\"{}\" \"/\"))", quoted(&self.shared)),
            None => "NIL".to_owned(),
        };
        format!("* NAMESPACE ((\"\" \"/\")) ((\"{other}\" \"/\")) {shared}\r\n")
    }
}

/// `Some(Some(rest))` when `name` is inside the level `prefix` (which ends in `/`),
/// `Some(None)` when it names the level itself (with or without the separator), else `None`.
fn strip_level<'a>(name: &'a str, prefix: &str) -> Option<Option<&'a str>> {
    let bare = prefix.strip_suffix('/').unwrap_or(prefix);
    if name == bare || name == prefix {
        return Some(None);
    }
    name.strip_prefix(prefix).map(Some)
}

/// A prefix inside a quoted string (configured prefixes are checked at load to be printable
/// ASCII without `"` or `\`; escaped anyway).
fn quoted(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public() -> Namespaces {
        Namespaces { public_owner: Some("public".to_owned()), ..Namespaces::default() }
    }

    #[test]
    fn names_split_into_owner_and_mailbox_and_nothing_else() {
        let ns = public();
        assert_eq!(ns.place("alice", "INBOX"), Place::Own("INBOX"));
        assert_eq!(
            ns.place("alice", "Other Users/bob/Projects/2026"),
            Place::Foreign { owner: "bob", name: "Projects/2026" }
        );
        assert_eq!(ns.place("alice", "Other Users/ALICE/Work"), Place::Own("Work"));
        assert_eq!(ns.place("alice", "Other Users/bob"), Place::Root);
        assert_eq!(ns.place("alice", "Other Users/bob/"), Place::Root);
        assert_eq!(ns.place("alice", "Other Users/"), Place::Root);
        assert_eq!(ns.place("alice", "Other Users"), Place::Root);
        assert_eq!(ns.place("alice", "Other Users//x"), Place::Root);
        assert_eq!(
            ns.place("alice", "Other Users/../bob/x"),
            Place::Foreign { owner: "..", name: "bob/x" },
            "`..` is a user name like any other, and no user is called that"
        );
        assert_eq!(ns.place("alice", "other users/bob/x"), Place::Own("other users/bob/x"));
        assert_eq!(
            ns.place("alice", "Shared/News"),
            Place::Foreign { owner: "public", name: "News" }
        );
        assert_eq!(ns.place("alice", "Shared"), Place::Root);
        assert_eq!(ns.place("public", "Shared/News"), Place::Own("News"));
        assert_eq!(Namespaces::default().place("alice", "Shared/News"), Place::Own("Shared/News"));
    }

    #[test]
    fn client_names_invert_places() {
        let ns = public();
        for (owner, name) in [("bob", "Projects"), ("public", "News"), ("bob", "a/b")] {
            let client = ns.client_name(owner, name);
            assert_eq!(ns.place("alice", &client), Place::Foreign { owner, name });
        }
    }

    #[test]
    fn the_namespace_line_lists_what_is_configured() {
        assert_eq!(
            Namespaces::default().response(),
            "* NAMESPACE ((\"\" \"/\")) ((\"Other Users/\" \"/\")) NIL\r\n"
        );
        assert_eq!(
            public().response(),
            "* NAMESPACE ((\"\" \"/\")) ((\"Other Users/\" \"/\")) ((\"Shared/\" \"/\"))\r\n"
        );
    }
}
