//! Users: the passwd-file, password verification and hashing, and safe edits of the file.
//!
//! skua reads its users from a passwd-file in the format Dovecot's `passwd-file` driver uses
//! (`user:{SCHEME}hash:uid:gid:gecos:home:shell:extra`), so an existing Dovecot file can be
//! pointed at unchanged. Only the first two fields matter here; the rest are kept verbatim
//! when the file is rewritten, as are comments and blank lines. See [`scheme`] for the
//! supported hashes.
//!
//! Beyond passwords, for SASL (the exchange itself is `skua_protocols::sasl`):
//!
//! - [`scram`]: SCRAM keys as Dovecot stores them (`{SCRAM-SHA-256}iter,salt,stored,server`),
//!   the proof check, and fake keys for unknown users;
//! - [`master`]: master users (a second passwd-file) and who a login is for
//!   ([`master::Logins`]: password checks, SCRAM key lookups, authorization ids);
//! - [`jwt`]: bearer tokens for OAUTHBEARER/XOAUTH2, checked against a JWKS file under a
//!   [`jwt::TokenPolicy`];
//! - [`load_or_create_server_secret`]: the long-lived secret SCRAM fakes are derived from.
//!
//! # Names compare ASCII case-insensitively
//!
//! Dovecot compares names exactly. skua lowercases ASCII letters on both sides instead,
//! because most names are mail addresses and senders and clients do not preserve case
//! (`Alice@Example.com` must reach `alice@example.com`). The file's spelling stays the
//! canonical name ([`UserEntry::name`]): that is what the shard hashes to place a user and
//! what becomes the store's directory, so always use it, never the name a client typed. When
//! two lines differ only in case the first wins and the later one is logged and ignored.
//!
//! # Threads
//!
//! [`UserDb`] is immutable after [`UserDb::load`], `Send + Sync`, and meant to be shared in an
//! `Arc` by every shard; reloading means loading a new one and swapping the `Arc`.
//! [`UserDb::check_login`], [`UserEntry::verify`] and [`hash_password`] are CPU-heavy on
//! purpose (up to ~0.4 s): call them off the reactor thread.
//!
//! # Logins do not tell which users exist
//!
//! [`UserDb::check_login`] runs one password verification whatever the name: for an unknown
//! name, or a user who cannot log in, it verifies the password against a dummy hash of
//! [`DEFAULT_SCHEME`] (made once, on first need) and then fails, so the time a failed login
//! takes does not reveal whether the user exists. Passwords travel as [`Secret`]s.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read};
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

mod edit;
mod error;
mod file;
mod hash;
pub mod jwt;
pub mod limits;
pub mod master;
pub mod quota_rule;
pub mod scheme;
pub mod scram;
mod secret;
mod server_secret;

pub(crate) use edit::replace_file;
pub use edit::{add_user, delete_user, list_users, set_password};
pub use error::UsersError;
pub use hash::{HashCost, hash_password, hash_password_with};
pub use scheme::Scheme;
pub use secret::{Secret, Wipe};
pub use server_secret::{SERVER_SECRET_BYTES, load_or_create_server_secret};

/// The scheme skua hashes new passwords with: SHA512-CRYPT verifies in a few milliseconds, so
/// logins stay cheap for the shard's blocking pool, and every Dovecot-compatible tool reads
/// it. Also the scheme of the dummy hash an unknown user's login is checked against.
pub const DEFAULT_SCHEME: Scheme = Scheme::Sha512Crypt;

use file::{Line, name_key, parse_line, strip_line_ending};
use limits::PASSWD_FILE_BYTES_MAX;
use scheme::Credential;
use scram::{ScramAlgorithm, ScramKeys};

/// One user from the passwd-file.
#[derive(Clone)]
pub struct UserEntry {
    /// The canonical name, spelled as in the file. Use this (not what a client sent) for
    /// placement, store paths and logs.
    pub name: String,
    credential: Credential,
    /// Quota limits from the line's `userdb_quota_rule` extra fields (`quota_rule.rs`).
    quota: quota_rule::UserQuota,
}

impl UserEntry {
    /// The canonical name, spelled as in the file.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The quota limits the user's passwd-file line names (`userdb_quota_rule`); the config
    /// default fills the rest ([`quota_rule::UserQuota::over`]).
    #[must_use]
    pub fn quota(&self) -> quota_rule::UserQuota {
        self.quota
    }

    /// The scheme of the stored password; `None` when the user cannot log in (no password, an
    /// unknown scheme, or a malformed hash). Such a user still receives mail.
    #[must_use]
    pub fn scheme(&self) -> Option<Scheme> {
        self.credential.scheme()
    }

    /// The user's SCRAM keys for `algorithm`, when the stored credential is SCRAM keys of that
    /// hash (a SCRAM-SHA-256 line serves SCRAM-SHA-256(-PLUS) only; any other scheme, no
    /// SCRAM at all, as the server cannot derive keys without the password).
    #[must_use]
    pub fn scram_keys(&self, algorithm: ScramAlgorithm) -> Option<&ScramKeys> {
        match &self.credential {
            Credential::Scram(keys) if keys.algorithm() == algorithm => Some(keys),
            _ => None,
        }
    }

    /// True when `password` is this user's password.
    ///
    /// CPU-heavy by design (a SHA512-CRYPT, bcrypt or Argon2 computation, up to ~0.4 s):
    /// never call it on a shard's reactor thread; run it on a blocking pool. `PLAIN` passwords
    /// are compared in time independent of their content and length. Passwords longer than
    /// [`limits::PASSWORD_BYTES_MAX`] are refused without hashing.
    #[must_use]
    pub fn verify(&self, password: impl AsRef<[u8]>) -> bool {
        self.credential.verify(password.as_ref())
    }
}

impl fmt::Debug for UserEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserEntry")
            .field("name", &self.name)
            .field("credential", &self.credential)
            .finish()
    }
}

/// The extra fields of a line, from the fields after the password (`:uid:gid:gecos:home:shell:
/// extra`): everything after the sixth `:` (extra fields may hold `:` themselves).
fn extra_fields(rest: &str) -> &str {
    rest.splitn(7, ':').nth(6).unwrap_or("")
}

/// The users of one passwd-file, loaded once. Cheap to share: `Send + Sync`, never mutated
/// (but for a counter).
#[derive(Debug, Default)]
pub struct UserDb {
    /// In file order.
    entries: Vec<UserEntry>,
    /// [`name_key`] → index into `entries`.
    by_key: HashMap<String, usize>,
    /// Password verifications run by [`UserDb::check_login`].
    verifications: AtomicU64,
    /// Users without SCRAM-SHA-1 keys, and without SCRAM-SHA-256 keys (see
    /// [`UserDb::scram_for_everyone`]).
    without_scram: [usize; 2],
    /// Lines that were neither users, comments nor blank, duplicate users included.
    ignored_lines: usize,
}

/// The credential an unknown user's password is checked against: a hash of a random password
/// in [`DEFAULT_SCHEME`] at the default cost, made on first need (hashing costs as much as a
/// check, so not at load).
fn dummy_credential() -> &'static Credential {
    static DUMMY: OnceLock<Credential> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let password: String =
            (0..24).map(|_| char::from(b'a' + rand::random::<u8>() % 26)).collect();
        let hash = hash_password(DEFAULT_SCHEME, password.as_bytes())
            .expect("a random password hashes in the default scheme");
        Credential::parse(&hash)
    })
}

impl UserDb {
    /// Loads the passwd-file at `path`. A missing file is an empty database (so a fresh
    /// install starts; the admin adds users later). Lines that cannot be users, and users
    /// whose password cannot be verified, are logged as warnings, never fatal: one bad line
    /// must not lock every other user out.
    ///
    /// # Errors
    /// [`UsersError::Io`] when the file exists but cannot be read, and
    /// [`UsersError::FileTooLarge`] past [`limits::PASSWD_FILE_BYTES_MAX`].
    pub fn load(path: &Path) -> Result<UserDb, UsersError> {
        let contents = match read_bounded(path) {
            Ok(contents) => contents,
            Err(UsersError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                tracing::warn!(path = %path.display(), "no passwd-file: no users");
                return Ok(UserDb::default());
            }
            Err(error) => return Err(error),
        };
        let db = UserDb::parse(&contents, &path.display().to_string());
        tracing::info!(path = %path.display(), users = db.len(), "loaded passwd-file");
        Ok(db)
    }

    /// Builds a database from the contents of a passwd-file; `origin` names it in warnings.
    #[must_use]
    pub fn parse(contents: &[u8], origin: &str) -> UserDb {
        let mut db = UserDb::default();
        for (index, raw) in contents.split_inclusive(|&b| b == b'\n').enumerate() {
            let line_number = index + 1;
            let line = strip_line_ending(raw);
            match parse_line(line) {
                Line::Blank | Line::Comment => {}
                Line::Invalid(reason) => {
                    tracing::warn!(origin, line = line_number, reason, "passwd-file: line ignored");
                    db.ignored_lines += 1;
                }
                Line::User { name, password, rest_offset } => {
                    let text = std::str::from_utf8(line).expect("a user line is UTF-8");
                    let extra = extra_fields(&text[rest_offset..]);
                    db.insert(name, password, extra, origin, line_number);
                }
            }
        }
        for (slot, algorithm) in
            [ScramAlgorithm::Sha1, ScramAlgorithm::Sha256].into_iter().enumerate()
        {
            db.without_scram[slot] =
                db.entries.iter().filter(|entry| entry.scram_keys(algorithm).is_none()).count();
        }
        db
    }

    /// True when every user has SCRAM keys for `algorithm` (and there is a user): only then
    /// may a server offer that SCRAM mechanism, since the mechanism is chosen before the user
    /// is named, and a user stored as a crypt hash can never pass it (a client that prefers
    /// SCRAM, as mbsync does, would be refused where PLAIN would have worked).
    #[must_use]
    pub fn scram_for_everyone(&self, algorithm: ScramAlgorithm) -> bool {
        let slot = match algorithm {
            ScramAlgorithm::Sha1 => 0,
            ScramAlgorithm::Sha256 => 1,
        };
        !self.entries.is_empty() && self.without_scram[slot] == 0
    }

    fn insert(
        &mut self,
        name: &str,
        password: &str,
        extra: &str,
        origin: &str,
        line_number: usize,
    ) {
        let key = name_key(name);
        if self.by_key.contains_key(&key) {
            tracing::warn!(origin, line = line_number, name, "passwd-file: duplicate user ignored");
            self.ignored_lines += 1;
            return;
        }
        let credential = Credential::parse(password);
        if let Credential::Unusable(reason) = &credential {
            tracing::warn!(
                origin,
                line = line_number,
                name,
                reason = reason.as_str(),
                "passwd-file: user cannot log in"
            );
        }
        let (quota, warnings) = quota_rule::parse_extra(extra);
        for warning in warnings {
            tracing::warn!(
                origin,
                line = line_number,
                name,
                warning,
                "passwd-file: quota rule ignored"
            );
        }
        self.by_key.insert(key, self.entries.len());
        self.entries.push(UserEntry { name: name.to_owned(), credential, quota });
    }

    /// Checks a login: the user's entry when `name` is a user (ASCII case-insensitive) and
    /// `password` is theirs. Every call runs exactly one password verification: an unknown
    /// name, or a user who cannot log in, is checked against a dummy hash of
    /// [`DEFAULT_SCHEME`] and then refused, so the answer's timing does not reveal whether the
    /// user exists.
    ///
    /// CPU-heavy by design: never call it on a shard's reactor thread.
    #[must_use]
    pub fn check_login(&self, name: &str, password: &Secret<String>) -> Option<&UserEntry> {
        let entry = self.lookup(name).filter(|e| e.scheme().is_some());
        let credential: &Credential = match entry {
            Some(entry) => &entry.credential,
            None => dummy_credential(),
        };
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let right = credential.verify(password.expose().as_bytes());
        entry.filter(|_| right)
    }

    /// How many password verifications [`UserDb::check_login`] has run.
    #[must_use]
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// The user called `name` (ASCII case-insensitive).
    #[must_use]
    pub fn lookup(&self, name: &str) -> Option<&UserEntry> {
        self.by_key.get(&name_key(name)).map(|&index| &self.entries[index])
    }

    /// The user an LMTP recipient address belongs to: the whole address first (surrounding
    /// `<>` and whitespace removed), then, when `by_local_part` is set, the part before the
    /// last `@` (so `alice@example.com` reaches a user named `alice`). `None` when neither
    /// is a user.
    #[must_use]
    pub fn resolve_recipient(&self, address: &str, by_local_part: bool) -> Option<&UserEntry> {
        let address = address.trim();
        let address =
            address.strip_prefix('<').and_then(|inner| inner.strip_suffix('>')).unwrap_or(address);
        if address.is_empty() {
            return None;
        }
        if let Some(entry) = self.lookup(address) {
            return Some(entry);
        }
        if !by_local_part {
            return None;
        }
        let (local_part, _domain) = address.rsplit_once('@')?;
        if local_part.is_empty() {
            return None;
        }
        self.lookup(local_part)
    }

    /// The SCRAM iteration count most of this file's SCRAM users have (the larger on a tie),
    /// or `None` when no user has SCRAM keys. The host makes unknown users pretend to have it
    /// (`skua_protocols::sasl::Context::scram_fake_iterations`), so they do not stand out.
    #[must_use]
    pub fn scram_iterations_common(&self) -> Option<NonZeroU32> {
        let mut counts: HashMap<NonZeroU32, usize> = HashMap::new();
        for entry in &self.entries {
            if let Credential::Scram(keys) = &entry.credential {
                *counts.entry(keys.iterations()).or_default() += 1;
            }
        }
        counts.into_iter().max_by_key(|&(iterations, count)| (count, iterations)).map(|(i, _)| i)
    }

    /// Number of users.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Lines of the file that are neither users, comments nor blank (each logged as a
    /// warning when parsed), duplicate users included.
    #[must_use]
    pub fn ignored_lines(&self) -> usize {
        self.ignored_lines
    }

    /// True when there are no users.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The users, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &UserEntry> {
        self.entries.iter()
    }
}

/// Reads a whole file, refusing one over [`PASSWD_FILE_BYTES_MAX`] before reading it.
fn read_bounded(path: &Path) -> Result<Vec<u8>, UsersError> {
    let file = std::fs::File::open(path).map_err(|e| UsersError::io(path, e))?;
    let length = file.metadata().map_err(|e| UsersError::io(path, e))?.len();
    if length > PASSWD_FILE_BYTES_MAX {
        return Err(UsersError::FileTooLarge { path: path.into(), max: PASSWD_FILE_BYTES_MAX });
    }
    let mut contents = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
    // The `take` bounds a file that grows while we read it.
    file.take(PASSWD_FILE_BYTES_MAX + 1)
        .read_to_end(&mut contents)
        .map_err(|e| UsersError::io(path, e))?;
    if contents.len() as u64 > PASSWD_FILE_BYTES_MAX {
        return Err(UsersError::FileTooLarge { path: path.into(), max: PASSWD_FILE_BYTES_MAX });
    }
    Ok(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &[u8] = b"# users\n\
        alice@example.com:{PLAIN}alice-pw:1000:1000::/home/alice::\n\
        \n\
        Bob:{CLEAR}bob-pw\n\
        carol:{MD5-CRYPT}$1$x$y\n\
        dave\n\
        bad name:{PLAIN}x\n\
        ALICE@example.com:{PLAIN}other\n";

    #[test]
    fn every_login_check_runs_one_verification_known_user_or_not() {
        let db = UserDb::parse(FILE, "test");
        let secret = |p: &str| Secret::new(p.to_owned());
        let right = db.check_login("ALICE@example.com", &secret("alice-pw"));
        assert_eq!(right.map(UserEntry::name), Some("alice@example.com"));
        assert_eq!(db.verifications(), 1);
        assert!(db.check_login("alice@example.com", &secret("wrong")).is_none());
        assert_eq!(db.verifications(), 2);
        // Unknown, and known but unable to log in: the same one verification, then refused.
        assert!(db.check_login("nobody", &secret("alice-pw")).is_none());
        assert_eq!(db.verifications(), 3);
        assert!(db.check_login("carol", &secret("")).is_none());
        assert_eq!(db.verifications(), 4);
        // ...against a real hash of the default scheme, the cost a real user's check has.
        assert_eq!(dummy_credential().scheme(), Some(DEFAULT_SCHEME));
        assert!(!dummy_credential().verify(b"alice-pw"));
    }

    #[test]
    fn parse_and_lookup() {
        let db = UserDb::parse(FILE, "test");
        assert_eq!(db.len(), 4);
        let names: Vec<&str> = db.iter().map(UserEntry::name).collect();
        assert_eq!(names, ["alice@example.com", "Bob", "carol", "dave"]);
        let alice = db.lookup("Alice@Example.COM").unwrap();
        assert_eq!(alice.name, "alice@example.com");
        assert!(alice.verify(b"alice-pw"));
        assert!(!alice.verify("other"));
        assert!(db.lookup("bob").unwrap().verify("bob-pw"));
        let carol = db.lookup("carol").unwrap();
        assert_eq!(carol.scheme(), None);
        assert!(!carol.verify(""));
        assert!(!db.lookup("dave").unwrap().verify(""));
        assert!(db.lookup("bad name").is_none());
        assert!(db.lookup("nobody").is_none());
    }

    #[test]
    fn recipients() {
        let db = UserDb::parse(FILE, "test");
        let resolve = |a: &str, local: bool| db.resolve_recipient(a, local).map(UserEntry::name);
        assert_eq!(resolve("<alice@example.com>", false), Some("alice@example.com"));
        assert_eq!(resolve(" <ALICE@example.com> ", false), Some("alice@example.com"));
        assert_eq!(resolve("bob@example.org", false), None);
        assert_eq!(resolve("<bob@example.org>", true), Some("Bob"));
        assert_eq!(resolve("\"odd@local\"@example.org", true), None);
        assert_eq!(resolve("carol@a@b", true), None);
        assert_eq!(resolve("<>", true), None);
        assert_eq!(resolve("@example.org", true), None);
        assert_eq!(resolve("nobody@example.org", true), None);
    }

    #[test]
    fn the_common_scram_iteration_count() {
        let line = |name: &str, iterations: u32| {
            let keys = ScramKeys::derive(ScramAlgorithm::Sha1, b"pw", b"salt", iterations).unwrap();
            format!("{name}:{}\n", keys.to_passwd_field())
        };
        assert_eq!(UserDb::parse(FILE, "test").scram_iterations_common(), None);
        let file = [line("a", 3), line("b", 2), line("c", 3), line("d", 5)].concat();
        let common = UserDb::parse(file.as_bytes(), "test").scram_iterations_common();
        assert_eq!(common.map(NonZeroU32::get), Some(3));
        let tie = [line("a", 2), line("b", 7)].concat();
        let common = UserDb::parse(tie.as_bytes(), "test").scram_iterations_common();
        assert_eq!(common.map(NonZeroU32::get), Some(7));
    }

    #[test]
    fn missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let db = UserDb::load(&dir.path().join("passwd")).unwrap();
        assert!(db.is_empty());
    }

    #[test]
    fn shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<UserDb>();
    }

    #[test]
    fn debug_hides_passwords() {
        let db = UserDb::parse(FILE, "test");
        assert!(!format!("{db:?}").contains("alice-pw"));
    }

    /// A SCRAM-preferring client (mbsync) was refused for every user stored as a crypt or
    /// plain hash, because SCRAM was offered to all: it is offered per algorithm only when every
    /// user has keys for it.
    #[test]
    fn scram_is_for_everyone_only_when_every_user_has_keys() {
        let sha256 = hash::hash_password_with(Scheme::ScramSha256, b"pw", &hash::HashCost::low())
            .expect("hash");
        let only_scram = format!("a:{sha256}\nb:{sha256}\n");
        let db = UserDb::parse(only_scram.as_bytes(), "test");
        assert!(db.scram_for_everyone(ScramAlgorithm::Sha256));
        assert!(!db.scram_for_everyone(ScramAlgorithm::Sha1));
        let mixed = format!("a:{sha256}\nb:{{PLAIN}}pw\n");
        let db = UserDb::parse(mixed.as_bytes(), "test");
        assert!(!db.scram_for_everyone(ScramAlgorithm::Sha256));
        assert!(!UserDb::parse(b"", "test").scram_for_everyone(ScramAlgorithm::Sha256));
    }
}
