//! The deny list (`skua deny`, Cyrus's `cyr_deny`): users refused at login (and, when asked,
//! at LMTP `RCPT`) whatever their password, with a message for them.
//!
//! It is data-dir-wide, not per store: it is read at every login, before any store opens, and
//! it may name a user who has no store yet. The file is `<data>/deny.list`, text, described
//! in `core/FORMAT.md` ("`deny.list`"): a version line, then one line per user
//! (`user TAB services TAB message`). Missing means nobody is denied. Every write replaces the
//! whole file (temporary file, fsync, rename, fsync of the directory), so a crash leaves the
//! old list or the new one.
//!
//! A file that does not parse is refused as a whole, with every bad line named
//! ([`DenyError::Invalid`]): the list keeps people out, so a server must not start with part
//! of it silently dropped (fail closed), and `skua deny` must not rewrite a file it did not
//! understand.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::paths::UserName;

/// The file's name in the data dir.
pub const DENY_FILE: &str = "deny.list";

/// The file's first line: its format and version (`core/FORMAT.md`).
pub const DENY_VERSION_LINE: &str = "skua-deny 1";

/// Most users on the list. Bounds the file, the memory every shard reads it from, and what a
/// start-up has to parse.
pub const DENY_ENTRIES_MAX: usize = 100_000;

/// Longest message (bytes, printable ASCII): it goes into one IMAP response line.
pub const DENY_MESSAGE_BYTES_MAX: usize = 200;

/// Largest file: every entry at its longest (name, every service, message) plus the version.
pub const DENY_FILE_BYTES_MAX: u64 = (DENY_ENTRIES_MAX as u64) * 512 + 64;

const _: () = assert!(crate::limits::USER_NAME_BYTES_MAX + DENY_MESSAGE_BYTES_MAX + 32 <= 512);

/// Bad lines reported in one error (the rest are counted).
const BAD_LINES_REPORTED_MAX: usize = 20;

/// The message a denied user gets when the operator gave none.
pub const DENY_MESSAGE_DEFAULT: &str = "Access disabled; contact your administrator";

/// A service a user can be denied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// IMAP logins (LOGIN and AUTHENTICATE, any mechanism, master users included).
    Imap,
    /// LMTP delivery: `RCPT` answered `550 5.2.1`.
    Lmtp,
}

impl Service {
    /// Every service, in the file's order.
    pub const ALL: [Service; 2] = [Service::Imap, Service::Lmtp];

    /// The name in the file and on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Service::Imap => "imap",
            Service::Lmtp => "lmtp",
        }
    }

    /// The service named `name` (lowercase).
    ///
    /// # Errors
    /// Not a service skua serves; the message names the ones it does.
    pub fn parse(name: &str) -> Result<Service, String> {
        Service::ALL.into_iter().find(|s| s.name() == name).ok_or_else(|| {
            let known: Vec<&str> = Service::ALL.iter().map(|s| s.name()).collect();
            format!("unknown service {name:?} (skua serves {})", known.join(", "))
        })
    }
}

/// One denied user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenyEntry {
    /// The user, lowercased (names compare ASCII case-insensitively, as in the passwd-file).
    pub user: String,
    /// What is refused (sorted, no repeats, not empty).
    pub services: Vec<Service>,
    /// What the user is told; empty: [`DENY_MESSAGE_DEFAULT`].
    pub message: String,
}

impl DenyEntry {
    /// Makes an entry, checking each part as the parser does.
    ///
    /// # Errors
    /// A bad user name, no services, or a bad message.
    pub fn new(user: &str, services: &[Service], message: &str) -> Result<DenyEntry, String> {
        let user = UserName::new(user).map_err(|e| format!("user {user:?}: {e}"))?;
        let mut services = services.to_vec();
        services.sort_unstable();
        services.dedup();
        if services.is_empty() {
            return Err("no services".to_owned());
        }
        check_message(message)?;
        Ok(DenyEntry { user: user.as_str().to_owned(), services, message: message.to_owned() })
    }

    /// True when `service` is refused.
    #[must_use]
    pub fn refuses(&self, service: Service) -> bool {
        self.services.contains(&service)
    }

    /// What the user is told.
    #[must_use]
    pub fn message_or_default(&self) -> &str {
        if self.message.is_empty() { DENY_MESSAGE_DEFAULT } else { &self.message }
    }
}

fn check_message(message: &str) -> Result<(), String> {
    if message.len() > DENY_MESSAGE_BYTES_MAX {
        return Err(format!("message longer than {DENY_MESSAGE_BYTES_MAX} bytes"));
    }
    // Printable ASCII only: it is sent as IMAP response text (no CR, LF, NUL, no 8-bit).
    if let Some(bad) = message.bytes().find(|b| !(b' '..=b'~').contains(b)) {
        return Err(format!("message has a byte that is not printable ASCII: 0x{bad:02x}"));
    }
    Ok(())
}

/// Why a deny list could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DenyError {
    /// The file does not parse; nothing of it is used.
    #[error("{path}: {}", describe(.lines, *.more))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The first bad lines.
        lines: Vec<BadLine>,
        /// Bad lines past those.
        more: usize,
    },
    /// The file is larger than [`DENY_FILE_BYTES_MAX`].
    #[error("{path}: larger than {DENY_FILE_BYTES_MAX} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The list would hold more than [`DENY_ENTRIES_MAX`] users.
    #[error("the deny list holds at most {DENY_ENTRIES_MAX} users")]
    Full,
    /// `skua deny USER` of a user with no login and no store (a typo, most likely).
    #[error("user {0} is unknown (not in the passwd-file, no store)")]
    UnknownUser(String),
    /// `skua deny --allow USER` of a user who is not denied.
    #[error("user {0} is not on the deny list")]
    NotDenied(String),
    /// An entry that cannot be made (bad name, services or message).
    #[error("{0}")]
    BadEntry(String),
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

fn describe(lines: &[BadLine], more: usize) -> String {
    let mut text: Vec<String> = lines.iter().map(ToString::to_string).collect();
    if more > 0 {
        text.push(format!("and {more} more bad lines"));
    }
    format!("invalid deny list, nothing of it used: {}", text.join("; "))
}

/// A line that does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// Its number, from 1.
    pub line: usize,
    /// What is wrong.
    pub what: String,
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.what)
    }
}

/// The deny list: who is refused what. Immutable once loaded; a change makes a new one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DenyList {
    entries: BTreeMap<String, DenyEntry>,
}

impl DenyList {
    /// The entry of `user` (any case), if denied anything.
    #[must_use]
    pub fn entry(&self, user: &str) -> Option<&DenyEntry> {
        if self.entries.is_empty() {
            return None; // the common case: no allocation
        }
        self.entries.get(&user.to_ascii_lowercase())
    }

    /// The entry of `user` if `service` is refused to them.
    #[must_use]
    pub fn refusal(&self, user: &str, service: Service) -> Option<&DenyEntry> {
        self.entry(user).filter(|entry| entry.refuses(service))
    }

    /// Every entry, by user.
    pub fn entries(&self) -> impl Iterator<Item = &DenyEntry> {
        self.entries.values()
    }

    /// Number of users on the list.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nobody is denied.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds `entry`, replacing the user's earlier one (services are not merged: the new entry
    /// says everything refused).
    ///
    /// # Errors
    /// [`DenyError::Full`].
    pub fn insert(&mut self, entry: DenyEntry) -> Result<(), DenyError> {
        if self.entries.len() >= DENY_ENTRIES_MAX && !self.entries.contains_key(&entry.user) {
            return Err(DenyError::Full);
        }
        self.entries.insert(entry.user.clone(), entry);
        Ok(())
    }

    /// Lifts `user`'s entry (any case), returning it; `None` when they were not denied.
    pub fn remove(&mut self, user: &str) -> Option<DenyEntry> {
        self.entries.remove(&user.to_ascii_lowercase())
    }

    /// Parses a file's contents (see `core/FORMAT.md`).
    ///
    /// # Errors
    /// Every bad line (the first [`BAD_LINES_REPORTED_MAX`], then a count), in
    /// [`DenyError::Invalid`] with `path` as the file's name.
    pub fn parse(contents: &[u8], path: &Path) -> Result<DenyList, DenyError> {
        let mut list = DenyList::default();
        let mut bad = Vec::new();
        let text = String::from_utf8_lossy(contents);
        let mut lines = text.split_terminator('\n').enumerate();
        match lines.next() {
            Some((_, first)) if first == DENY_VERSION_LINE => {}
            Some((_, first)) => bad.push(BadLine {
                line: 1,
                what: format!("the first line is {first:?}, not {DENY_VERSION_LINE:?}"),
            }),
            None => {} // an empty file is an empty list
        }
        for (index, line) in lines {
            let what = match parse_line(line) {
                Ok(entry) if list.entries.contains_key(&entry.user) => {
                    format!("user {} is listed twice", entry.user)
                }
                Ok(entry) => match list.insert(entry) {
                    Ok(()) => continue,
                    Err(error) => error.to_string(),
                },
                Err(what) => what,
            };
            bad.push(BadLine { line: index + 1, what });
        }
        if !contents.is_empty() && !contents.ends_with(b"\n") {
            bad.push(BadLine { line: text.lines().count(), what: "no line end".to_owned() });
        }
        if bad.is_empty() {
            return Ok(list);
        }
        let more = bad.len().saturating_sub(BAD_LINES_REPORTED_MAX);
        bad.truncate(BAD_LINES_REPORTED_MAX);
        Err(DenyError::Invalid { path: path.to_owned(), lines: bad, more })
    }

    /// The file's contents: the version line, then one line per user, sorted.
    #[must_use]
    pub fn render(&self) -> Vec<u8> {
        let mut out = format!("{DENY_VERSION_LINE}\n");
        for entry in self.entries.values() {
            let services: Vec<&str> = entry.services.iter().map(|s| s.name()).collect();
            out.push_str(&format!("{}\t{}\t{}\n", entry.user, services.join(","), entry.message));
        }
        out.into_bytes()
    }

    /// Loads `<data_dir>/deny.list`; no file is an empty list.
    ///
    /// # Errors
    /// The file cannot be read, is too large, or does not parse.
    pub fn load(data_dir: &Path) -> Result<DenyList, DenyError> {
        let path = data_dir.join(DENY_FILE);
        let io = |source| DenyError::Io { path: path.clone(), source };
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DenyList::default());
            }
            Err(error) => return Err(io(error)),
        };
        let mut contents = Vec::new();
        // The `take` bounds a file that grows while it is read.
        file.take(DENY_FILE_BYTES_MAX + 1).read_to_end(&mut contents).map_err(io)?;
        if contents.len() as u64 > DENY_FILE_BYTES_MAX {
            return Err(DenyError::TooLarge { path });
        }
        DenyList::parse(&contents, &path)
    }

    /// Replaces `<data_dir>/deny.list` with this list, durably (write a temporary file, fsync,
    /// rename over, fsync the directory; mode 0600 on a new file).
    ///
    /// # Errors
    /// The disk failed; the old file is then untouched.
    pub fn save(&self, data_dir: &Path) -> Result<(), DenyError> {
        crate::users::replace_file(&data_dir.join(DENY_FILE), &self.render()).map_err(|error| {
            match error {
                crate::users::UsersError::Io { path, source } => DenyError::Io { path, source },
                other => DenyError::Io {
                    path: data_dir.join(DENY_FILE),
                    source: std::io::Error::other(other.to_string()),
                },
            }
        })
    }
}

impl DenyError {
    /// The error's `kind` on the admin socket (`ARCHITECTURE.md`, "Admin socket").
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            DenyError::UnknownUser(_) => "no-such-user",
            DenyError::NotDenied(_) => "not-denied",
            DenyError::BadEntry(_) => "bad-request",
            DenyError::Full => "limit",
            DenyError::Invalid { .. } | DenyError::TooLarge { .. } | DenyError::Io { .. } => {
                "storage"
            }
        }
    }
}

/// What `skua deny` does (the same in both modes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DenyChange {
    /// Deny these users these services with this message (replacing earlier entries).
    Deny {
        /// The users, as given.
        users: Vec<String>,
        /// What is refused.
        services: Vec<Service>,
        /// What they are told (empty: [`DENY_MESSAGE_DEFAULT`]).
        message: String,
    },
    /// Lift these users' entries.
    Allow(Vec<String>),
    /// Change nothing; report the whole list.
    List,
}

/// Carries out `change` on `<data_dir>/deny.list`: loads it, changes it, saves it (unless
/// listing). `known` says whether a user name is a user (in the passwd-file or with a store);
/// denying anyone else is refused, as a typo would lock out nobody. Returns the new list and
/// the report: the entries made, the entries lifted, or every entry.
///
/// The caller serializes calls (the data-dir lock offline, one mutex in the server): this is
/// a read-modify-write of the file.
///
/// # Errors
/// The file does not load or cannot be written; an unknown user; a user to lift who is not
/// denied; a bad entry. Nothing is written then.
pub fn change(
    data_dir: &Path,
    change: &DenyChange,
    known: impl Fn(&str) -> bool,
) -> Result<(DenyList, Vec<DenyEntry>), DenyError> {
    let mut list = DenyList::load(data_dir)?;
    let report = match change {
        DenyChange::List => return Ok((list.clone(), list.entries().cloned().collect())),
        DenyChange::Deny { users, services, message } => {
            let mut made = Vec::with_capacity(users.len());
            for user in users {
                let entry = DenyEntry::new(user, services, message).map_err(DenyError::BadEntry)?;
                if !known(user) {
                    return Err(DenyError::UnknownUser(user.clone()));
                }
                list.insert(entry.clone())?;
                made.push(entry);
            }
            made
        }
        DenyChange::Allow(users) => {
            let mut lifted = Vec::with_capacity(users.len());
            for user in users {
                lifted.push(list.remove(user).ok_or_else(|| DenyError::NotDenied(user.clone()))?);
            }
            lifted
        }
    };
    list.save(data_dir)?;
    Ok((list, report))
}

/// `user TAB services TAB message`.
fn parse_line(line: &str) -> Result<DenyEntry, String> {
    let mut fields = line.splitn(3, '\t');
    let (Some(user), Some(services), Some(message)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err("not user<TAB>services<TAB>message".to_owned());
    };
    if UserName::new(user).map_err(|e| format!("user {user:?}: {e}"))?.as_str() != user {
        return Err(format!("user {user:?} is not in lowercase"));
    }
    let services =
        services.split(',').map(Service::parse).collect::<Result<Vec<Service>, String>>()?;
    let mut sorted = services.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted != services {
        return Err("services are not sorted, or repeat".to_owned());
    }
    DenyEntry::new(user, &services, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn path() -> &'static Path {
        Path::new("deny.list")
    }

    #[test]
    fn a_list_reads_back_what_it_wrote() {
        let mut list = DenyList::default();
        list.insert(DenyEntry::new("Alice", &[Service::Lmtp, Service::Imap], "call us").unwrap())
            .unwrap();
        list.insert(DenyEntry::new("bob@example.com", &[Service::Imap], "").unwrap()).unwrap();
        let text = list.render();
        assert_eq!(
            String::from_utf8(text.clone()).unwrap(),
            "skua-deny 1\nalice\timap,lmtp\tcall us\nbob@example.com\timap\t\n"
        );
        assert_eq!(DenyList::parse(&text, path()).unwrap(), list);
        assert!(list.refusal("ALICE", Service::Lmtp).is_some(), "any case");
        assert!(list.refusal("bob@example.com", Service::Lmtp).is_none());
        assert_eq!(
            list.entry("bob@example.com").unwrap().message_or_default(),
            DENY_MESSAGE_DEFAULT
        );
        assert!(DenyList::parse(b"", path()).unwrap().is_empty());
        assert!(DenyList::parse(b"skua-deny 1\n", path()).unwrap().is_empty());
    }

    #[test]
    fn every_bad_line_is_named_and_nothing_is_used() {
        let text = b"skua-deny 2\nalice\timap\tok\nBob\timap\t\ncarol\tpop3\t\n\
            dave\timap\nalice\tlmtp\t\neve\tlmtp,imap\t\nfrank\timap\tbell\x07\n../x\timap\t\n\
            gina\t\t\nhal\timap\tno end";
        let Err(DenyError::Invalid { lines, more, .. }) = DenyList::parse(text, path()) else {
            panic!("invalid");
        };
        let numbers: Vec<usize> = lines.iter().map(|bad| bad.line).collect();
        assert_eq!(numbers, [1, 3, 4, 5, 6, 7, 8, 9, 10, 11], "{lines:?}");
        assert_eq!(more, 0);
        assert!(lines[2].what.contains("unknown service \"pop3\""), "{}", lines[2].what);
        assert!(lines[3].what.contains("TAB"), "{}", lines[3].what);
        assert!(lines[4].what.contains("twice"), "{}", lines[4].what);
        assert!(lines[9].what.contains("no line end"), "{}", lines[9].what);
    }

    #[test]
    fn bad_lines_past_the_reported_count_are_counted() {
        let mut text = format!("{DENY_VERSION_LINE}\n");
        for _ in 0..BAD_LINES_REPORTED_MAX + 5 {
            text.push_str("nonsense\n");
        }
        let Err(error @ DenyError::Invalid { .. }) = DenyList::parse(text.as_bytes(), path())
        else {
            panic!("invalid");
        };
        assert!(error.to_string().contains("and 5 more bad lines"), "{error}");
    }

    #[test]
    fn entries_are_checked_when_made() {
        assert!(DenyEntry::new("", &[Service::Imap], "").is_err());
        assert!(DenyEntry::new("a/b", &[Service::Imap], "").is_err());
        assert!(DenyEntry::new("alice", &[], "").is_err());
        assert!(DenyEntry::new("alice", &[Service::Imap], "two\r\nlines").is_err());
        assert!(DenyEntry::new("alice", &[Service::Imap], &"x".repeat(201)).is_err());
        assert!(DenyEntry::new("alice", &[Service::Imap], &"x".repeat(200)).is_ok());
    }

    #[test]
    fn save_replaces_the_file_and_load_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        assert!(DenyList::load(dir.path()).unwrap().is_empty(), "no file");
        let mut list = DenyList::default();
        list.insert(DenyEntry::new("alice", &[Service::Imap], "gone").unwrap()).unwrap();
        list.save(dir.path()).unwrap();
        assert_eq!(DenyList::load(dir.path()).unwrap(), list);
        list.remove("ALICE").expect("was there");
        list.save(dir.path()).unwrap();
        assert!(DenyList::load(dir.path()).unwrap().is_empty());
        let names: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [DENY_FILE], "no temporary file left");
    }

    #[test]
    fn changes_are_checked_then_saved_whole() {
        let dir = tempfile::tempdir().unwrap();
        let known = |user: &str| user != "nobody";
        let deny = |users: &[&str]| DenyChange::Deny {
            users: users.iter().map(|u| (*u).to_owned()).collect(),
            services: vec![Service::Imap],
            message: "bye".to_owned(),
        };
        let (list, made) = change(dir.path(), &deny(&["Alice", "bob"]), known).unwrap();
        assert_eq!(made.len(), 2);
        assert_eq!(list, DenyList::load(dir.path()).unwrap(), "saved");
        let error = change(dir.path(), &deny(&["carol", "nobody"]), known).unwrap_err();
        assert_eq!(error.kind(), "no-such-user");
        assert_eq!(DenyList::load(dir.path()).unwrap().len(), 2, "nothing of it written");
        let lift = DenyChange::Allow(vec!["ALICE".to_owned()]);
        let (list, lifted) = change(dir.path(), &lift, known).unwrap();
        assert_eq!(lifted[0].user, "alice");
        assert_eq!(list.len(), 1);
        assert_eq!(change(dir.path(), &lift, known).unwrap_err().kind(), "not-denied");
        let (_, all) = change(dir.path(), &DenyChange::List, known).unwrap();
        assert_eq!(all.iter().map(|e| e.user.as_str()).collect::<Vec<_>>(), ["bob"]);
    }

    proptest! {
        #[test]
        fn parsing_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = DenyList::parse(&bytes, path());
        }

        #[test]
        fn rendered_lists_parse_back(
            entries in proptest::collection::vec(
                ("[a-z0-9._+@-]{0,20}", any::<(bool, bool)>(), "[ -~]{0,40}"), 0..20),
        ) {
            let mut list = DenyList::default();
            for (user, (imap, lmtp), message) in entries {
                let services: Vec<Service> = [(imap, Service::Imap), (lmtp, Service::Lmtp)]
                    .into_iter().filter(|(on, _)| *on).map(|(_, s)| s).collect();
                if let Ok(entry) = DenyEntry::new(&user, &services, &message) {
                    list.insert(entry).unwrap();
                }
            }
            prop_assert_eq!(DenyList::parse(&list.render(), path()).unwrap(), list);
        }
    }
}
