//! `skua user ...`, `skua reconstruct`, and the demo user made on first start.
//!
//! `skua user add|passwd|del` return only once a server running on the data dir serves the
//! edit: they read its acknowledgement (`DATA_DIR/users-loaded`, written by the server after
//! each load attempt; `skua_core::lock::UsersAck`) until it names the file as written, for at
//! most [`CONFIRM_WAIT`]. No server running: they return at once.

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::Rng;
use skua_core::lock::{self, FileVersion, Holder, LoadOutcome, UsersAck};
use skua_core::users;

use crate::config::FileConfig;
use crate::{Common, UserCommand};

/// Name of the user made on a data dir with no users.
const DEMO_USER: &str = "demo";
/// Length of the demo user's random password.
const DEMO_PASSWORD_LEN: usize = 16;

/// Longest wait for a running server to confirm it serves an edit.
const CONFIRM_WAIT: Duration = Duration::from_secs(10);
/// How often the acknowledgement is read meanwhile (a small file; the server usually answers
/// within a few milliseconds of the rename).
const CONFIRM_POLL: Duration = Duration::from_millis(5);

/// Runs a `skua user` subcommand.
pub fn run(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add { name, scheme, common } => {
            let password = read_password()?;
            let scheme = scheme.unwrap_or(users::DEFAULT_SCHEME);
            let hash = users::hash_password(scheme, password.as_bytes())?;
            let files = Files::of(&common)?;
            users::add_user(&files.passwd, &name, &hash)
                .with_context(|| format!("adding user {name}"))?;
            eprintln!("added user {name}");
            confirm(&files)?;
        }
        UserCommand::Passwd { name, scheme, common } => {
            let password = read_password()?;
            let scheme = scheme.unwrap_or(users::DEFAULT_SCHEME);
            let hash = users::hash_password(scheme, password.as_bytes())?;
            let files = Files::of(&common)?;
            users::set_password(&files.passwd, &name, &hash)
                .with_context(|| format!("setting the password of {name}"))?;
            eprintln!("password of {name} changed");
            confirm(&files)?;
        }
        UserCommand::Del { name, purge, common } => {
            let files = Files::of(&common)?;
            let purge = purge || ask_purge(&name)?;
            // Held until the mail is gone, so no server starts and opens the store meanwhile.
            let lock = if purge { Some(lock_for_purge(&files.data_dir, &name)?) } else { None };
            users::delete_user(&files.passwd, &name)
                .with_context(|| format!("deleting user {name}"))?;
            if purge {
                match purge_mail(&files.data_dir, &name)? {
                    Some(dir) => {
                        eprintln!("deleted user {name} and their mail ({})", dir.display())
                    }
                    None => eprintln!("deleted user {name} (they had no mail directory)"),
                }
            } else {
                eprintln!(
                    "deleted user {name} (their mail stays in the data dir; --purge removes it)"
                );
            }
            drop(lock);
            confirm(&files)?;
        }
        UserCommand::List { common } => {
            // A wrong data dir must not read as "no users" (issue 11), and listing creates
            // nothing. A data dir without a passwd-file yet (a fresh install, before the
            // first `user add` or `serve`) has no users: said on stderr, exit 0, so that
            // provisioning (the ansible role) can ask before adding any.
            let (file, data_dir) = crate::admin::data_dir_of(&common)?;
            let passwd = file.passwd_file(&data_dir);
            if !passwd.exists() {
                eprintln!("skua: no passwd-file at {} yet: no users", passwd.display());
                return Ok(());
            }
            for name in users::list_users(&passwd)? {
                println!("{name}");
            }
        }
    }
    Ok(())
}

/// On a terminal, asks whether `user del` should remove the user's mail too; elsewhere
/// (scripts) the answer is no: only `--purge` removes mail without a person saying so.
fn ask_purge(name: &str) -> anyhow::Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("Also remove all mail of {name}? This cannot be undone. [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().take(64).read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// Takes the data-dir lock for removing a user's mail: a running server keeps the user's
/// store open and would write over a removed directory. Refused while one runs: removing the
/// mail of a running server's user goes through its admin socket (issue 11), not done yet.
fn lock_for_purge(data_dir: &Path, name: &str) -> anyhow::Result<lock::DataDirLock> {
    lock::DataDirLock::acquire(data_dir).map_err(|error| match error {
        lock::LockError::Held { pid, .. } => anyhow::anyhow!(
            "not deleting {name}: a skua server ({}) runs on {}, and removing a user's mail \
             needs it stopped (a running server will do it through its admin socket, issue \
             11); nothing was changed",
            pid.map_or_else(|| "pid unknown".to_owned(), |p| format!("pid {p}")),
            data_dir.display()
        ),
        other => anyhow::Error::new(other).context(format!("locking {}", data_dir.display())),
    })
}

/// Removes a user's mail directory (the data-dir lock must be held): the name goes through
/// `paths::UserName`, the only mapping from user names to directories, and the directory is
/// first renamed into `DATA_DIR/deleting/` (so a crash never leaves half a store under the
/// user's name), then removed. Returns the directory removed, `None` when there was none.
///
/// # Errors
/// The name cannot name a store, or the file system refused.
pub fn purge_mail(data_dir: &Path, name: &str) -> anyhow::Result<Option<PathBuf>> {
    let user = skua_core::paths::UserName::new(name)
        .map_err(|e| anyhow::anyhow!("user name {name:?} names no mail directory: {e}"))?;
    let dir = data_dir.join(skua_core::paths::user_dir(&user));
    let trash = data_dir.join("deleting");
    // Leftovers of an earlier purge a crash interrupted.
    if let Ok(entries) = std::fs::read_dir(&trash) {
        for entry in entries.flatten() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    if !dir.exists() {
        return Ok(None);
    }
    std::fs::create_dir_all(&trash).with_context(|| format!("creating {}", trash.display()))?;
    let aside = trash.join(format!("{:016x}", rand::thread_rng().r#gen::<u64>()));
    std::fs::rename(&dir, &aside)
        .with_context(|| format!("moving {} to {}", dir.display(), aside.display()))?;
    std::fs::remove_dir_all(&aside).with_context(|| format!("removing {}", aside.display()))?;
    Ok(Some(dir))
}

/// The files a `skua user` command works on.
struct Files {
    /// The passwd-file.
    passwd: PathBuf,
    /// The data dir, where a running server holds the lock and acknowledges loads.
    data_dir: PathBuf,
}

impl Files {
    fn of(common: &Common) -> anyhow::Result<Files> {
        let file = FileConfig::load(common.config.as_deref())?;
        let data_dir = file.data_dir(common.data_dir.as_deref());
        let passwd = file.passwd_file(&data_dir);
        if let Some(parent) = passwd.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        Ok(Files { passwd, data_dir })
    }
}

/// After an edit: when a server runs on the data dir, waits until it acknowledges the file as
/// it is now (which holds this edit: edits are serialized and each rewrites the whole file, so
/// a later one by someone else includes ours). Returns at once when no server runs (the next
/// one loads the file at start). After [`CONFIRM_WAIT`], warns and succeeds: the file is
/// written and the server's periodic check will find it. A server that could not load the
/// file is an error: the change is not in effect.
fn confirm(files: &Files) -> anyhow::Result<()> {
    let server = match lock::holder(&files.data_dir) {
        Holder::Free => return Ok(()),
        Holder::Held { pid } => Some(pid),
        Holder::Unknown { pid } => pid,
    };
    let wanted = UsersAck::spell_path(&files.passwd);
    let deadline = Instant::now() + CONFIRM_WAIT;
    let mut seen = identity(&files.passwd);
    let mut version = FileVersion::of_file(&files.passwd);
    loop {
        if let Ok(Some(ack)) = UsersAck::read(&files.data_dir)
            && server.is_none_or(|pid| pid == ack.pid)
        {
            if ack.passwd != wanted {
                eprintln!(
                    "warning: the server running on {} (pid {}) serves the users of {}, not {}: \
                     it will not see this change",
                    files.data_dir.display(),
                    ack.pid,
                    ack.passwd,
                    wanted
                );
                return Ok(());
            }
            if ack.version == version {
                return report(&ack);
            }
        }
        if Instant::now() >= deadline {
            eprintln!(
                "warning: the server has not confirmed yet that it loaded {} (waited {} s); \
                 the change is written and the server checks the file periodically",
                files.passwd.display(),
                CONFIRM_WAIT.as_secs()
            );
            return Ok(());
        }
        if lock::holder(&files.data_dir) == Holder::Free {
            // The server stopped meanwhile: the next one loads the file at start.
            return Ok(());
        }
        std::thread::sleep(CONFIRM_POLL);
        // Someone changed the file again: wait for that version (it holds ours).
        let now = identity(&files.passwd);
        if now != seen {
            seen = now;
            version = FileVersion::of_file(&files.passwd);
        }
    }
}

/// What the server said about the version we wait for.
fn report(ack: &UsersAck) -> anyhow::Result<()> {
    match &ack.outcome {
        LoadOutcome::Loaded { ignored_lines, .. } => {
            if *ignored_lines > 0 {
                eprintln!(
                    "warning: the server ignored {ignored_lines} line(s) of {} that are not \
                     users (its log names them)",
                    ack.passwd
                );
            }
            eprintln!("in effect on the running server (pid {})", ack.pid);
            Ok(())
        }
        LoadOutcome::Refused { reason } => bail!(
            "the running server (pid {}) cannot load {}: {reason}; it keeps the users it had, \
             so this change is not in effect",
            ack.pid,
            ack.passwd
        ),
    }
}

/// The passwd-file's identity: cheap to take, and it changes whenever the file is replaced
/// or written (size, inode, modification and change times in nanoseconds).
fn identity(path: &Path) -> Option<(u64, u64, i64, i64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.ino(), m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec()))
}

/// One line from stdin, without its line end; refuses an empty password.
fn read_password() -> anyhow::Result<String> {
    let mut input = String::new();
    std::io::stdin().take(4096).read_to_string(&mut input).context("reading the password")?;
    let password = input.lines().next().unwrap_or("").to_owned();
    if password.is_empty() {
        bail!("no password on stdin (give it on one line: echo 'secret' | skua user add NAME)");
    }
    Ok(password)
}

/// On a data dir with no users, adds `demo` with a random password and prints how to connect:
/// only while every listener is on loopback, so a server reachable from elsewhere never starts
/// with an account whose password went to its log.
pub fn ensure_demo_user(
    passwd_file: &Path,
    imap_listen: &[SocketAddr],
    imaps_listen: &[SocketAddr],
    lmtp_listen: &[SocketAddr],
) -> anyhow::Result<()> {
    if !users::list_users(passwd_file)?.is_empty() {
        return Ok(());
    }
    if let Some(exposed) = not_loopback(&[imap_listen, imaps_listen, lmtp_listen]) {
        println!(
            "skua: no users in {}; no demo account is made since the server listens on \
             {exposed}, which is not loopback: add users with `skua user add`",
            passwd_file.display()
        );
        return Ok(());
    }
    let password: String = rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(DEMO_PASSWORD_LEN)
        .map(char::from)
        .collect();
    let hash = users::hash_password(users::DEFAULT_SCHEME, password.as_bytes())?;
    users::add_user(passwd_file, DEMO_USER, &hash)?;
    let imap = imap_listen.first().map(ToString::to_string).unwrap_or_default();
    let lmtp = lmtp_listen.first().map(ToString::to_string).unwrap_or_default();
    println!("skua: no users in {}; created a demo account:", passwd_file.display());
    println!("  user {DEMO_USER} password {password}");
    println!("  IMAP {imap}   (e.g. curl -u {DEMO_USER}:{password} imap://{imap}/INBOX)");
    if let Some(imaps) = imaps_listen.first() {
        println!(
            "  IMAPS {imaps}  (implicit TLS with the certificate below; STARTTLS on IMAP too)"
        );
    }
    println!("  LMTP {lmtp}   (deliver to {DEMO_USER}@localhost)");
    Ok(())
}

/// The first listener address that is not on loopback (unspecified addresses such as
/// `0.0.0.0` included: they listen on every interface).
fn not_loopback(listeners: &[&[SocketAddr]]) -> Option<SocketAddr> {
    listeners.iter().flat_map(|addresses| addresses.iter()).copied().find(|a| !a.ip().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temporary directory, removed at the end.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let name = format!("skua-{tag}-{}-{:x}", std::process::id(), rand::random::<u64>());
            let dir = std::env::temp_dir().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Regression: `skua serve` made the demo account (its password printed to the log) on a
    /// server listening on every interface, where anyone could log in with it.
    #[test]
    fn no_demo_account_on_a_server_reachable_from_elsewhere() {
        let scratch = Scratch::new("demo");
        let passwd = scratch.0.join("passwd");
        let local: SocketAddr = "127.0.0.1:143".parse().unwrap();
        let everywhere: SocketAddr = "0.0.0.0:143".parse().unwrap();
        let public: SocketAddr = "[2001:db8::1]:24".parse().unwrap();
        for exposed in [everywhere, public] {
            ensure_demo_user(&passwd, &[local], &[], &[exposed]).unwrap();
            assert!(users::list_users(&passwd).unwrap().is_empty(), "{exposed}");
        }
        let local6: SocketAddr = "[::1]:993".parse().unwrap();
        ensure_demo_user(&passwd, &[local], &[local6], &[local]).unwrap();
        assert_eq!(users::list_users(&passwd).unwrap().len(), 1, "loopback only: the demo");
    }

    #[test]
    fn purge_removes_only_the_users_mail_directory() {
        let scratch = Scratch::new("purge");
        let data = &scratch.0;
        let name = skua_core::paths::UserName::new("alice").unwrap();
        let mine = data.join(skua_core::paths::user_dir(&name));
        let theirs =
            data.join(skua_core::paths::user_dir(&skua_core::paths::UserName::new("bob").unwrap()));
        for dir in [&mine, &theirs] {
            std::fs::create_dir_all(dir.join("spool")).unwrap();
            std::fs::write(dir.join("spool/00000001.seg"), b"mail").unwrap();
        }
        assert_eq!(purge_mail(data, "alice").unwrap(), Some(mine.clone()));
        assert!(!mine.exists());
        assert!(theirs.join("spool/00000001.seg").exists(), "another user's mail stays");
        assert_eq!(purge_mail(data, "alice").unwrap(), None, "nothing left to remove");
        assert_eq!(std::fs::read_dir(data.join("deleting")).unwrap().count(), 0);
        for bad in ["../bob", "", "a/b", ".."] {
            assert!(purge_mail(data, bad).is_err(), "{bad:?}");
        }
        assert!(theirs.exists());
    }

    #[test]
    fn purge_is_refused_while_a_server_holds_the_data_dir() {
        let scratch = Scratch::new("purge-lock");
        let server = lock::DataDirLock::acquire(&scratch.0).unwrap();
        let error = lock_for_purge(&scratch.0, "alice").unwrap_err().to_string();
        assert!(error.contains("admin socket") && error.contains("nothing was changed"), "{error}");
        drop(server);
        let ours = lock_for_purge(&scratch.0, "alice").expect("free once the server is gone");
        drop(ours);
    }
}
