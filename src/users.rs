//! `skua user ...`, `skua reconstruct`, and the demo user made on first start.

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;

use anyhow::{Context, bail};
use rand::Rng;
use skua_core::users;

use crate::config::FileConfig;
use crate::{Common, UserCommand};

/// Name of the user made on a data dir with no users.
const DEMO_USER: &str = "demo";
/// Length of the demo user's random password.
const DEMO_PASSWORD_LEN: usize = 16;

/// Runs a `skua user` subcommand.
pub fn run(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add { name, scheme, common } => {
            let password = read_password()?;
            let scheme = scheme.unwrap_or(users::DEFAULT_SCHEME);
            let hash = users::hash_password(scheme, password.as_bytes())?;
            users::add_user(&passwd_path(&common)?, &name, &hash)
                .with_context(|| format!("adding user {name}"))?;
            eprintln!("added user {name}");
        }
        UserCommand::Passwd { name, scheme, common } => {
            let password = read_password()?;
            let scheme = scheme.unwrap_or(users::DEFAULT_SCHEME);
            let hash = users::hash_password(scheme, password.as_bytes())?;
            users::set_password(&passwd_path(&common)?, &name, &hash)
                .with_context(|| format!("setting the password of {name}"))?;
            eprintln!("password of {name} changed");
        }
        UserCommand::Del { name, common } => {
            users::delete_user(&passwd_path(&common)?, &name)
                .with_context(|| format!("deleting user {name}"))?;
            eprintln!("deleted user {name} (their mail stays in the data dir)");
        }
        UserCommand::List { common } => {
            for name in users::list_users(&passwd_path(&common)?)? {
                println!("{name}");
            }
        }
    }
    Ok(())
}

fn passwd_path(common: &Common) -> anyhow::Result<std::path::PathBuf> {
    let file = FileConfig::load(common.config.as_deref())?;
    let data_dir = file.data_dir(common.data_dir.as_deref());
    let passwd = file.passwd_file(&data_dir);
    if let Some(parent) = passwd.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    Ok(passwd)
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

/// On a data dir with no users, adds `demo` with a random password and prints how to connect.
pub fn ensure_demo_user(
    passwd_file: &Path,
    imap_listen: &[SocketAddr],
    lmtp_listen: &[SocketAddr],
) -> anyhow::Result<()> {
    if !users::list_users(passwd_file)?.is_empty() {
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
    println!("  LMTP {lmtp}   (deliver to {DEMO_USER}@localhost)");
    Ok(())
}

/// `skua reconstruct USER`: rebuilds the user's indexes from the spool. Run it with the server
/// stopped (the server owns the store while it runs).
pub fn reconstruct(user: &str, common: &Common, json: bool) -> anyhow::Result<()> {
    let file = FileConfig::load(common.config.as_deref())?;
    let data_dir = file.data_dir(common.data_dir.as_deref());
    let name = skua_core::paths::UserName::new(user)
        .map_err(|e| anyhow::anyhow!("invalid user name {user:?}: {e}"))?;
    let dir = skua_core::paths::user_dir(&name);
    if !data_dir.join(&dir).exists() {
        bail!("user {user} has no store in {}", data_dir.display());
    }
    let disk = Rc::new(
        skua_core::disk::os::OsDisk::new(&data_dir)
            .with_context(|| format!("opening {}", data_dir.display()))?,
    );
    let report = skua_core::store::reconstruct(disk.clone(), &dir)
        .with_context(|| format!("reconstructing {user}"))?;
    flush_now(&disk)?;
    let fields = [
        ("mailboxes", report.mailboxes),
        ("messages", report.messages),
        ("expunged", report.expunged),
        ("flags_kept", report.flags_kept),
        ("flags_reset", report.flags_reset),
        ("index_records_dropped", report.index_records_dropped),
        ("orphaned_records", report.orphaned_records),
        ("spool_records", report.spool_records),
        ("spool_truncated_bytes", report.spool_truncated_bytes),
        ("log_truncated_bytes", report.log_truncated_bytes),
        ("mailboxes_salvaged", report.mailboxes_salvaged),
    ];
    if json {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        println!("{{\"user\":\"{}\",{}}}", name.as_str(), body.join(","));
    } else {
        println!("reconstructed {}:", name.as_str());
        for (key, value) in fields {
            println!("  {key:<24} {value}");
        }
    }
    Ok(())
}

/// Runs one flush round in place (the CLI has no group-commit driver).
fn flush_now(disk: &skua_core::disk::os::OsDisk) -> anyhow::Result<()> {
    use skua_core::disk::{Disk, Flush};
    if let Some(flush) = disk.flush_begin() {
        let epoch = flush.epoch();
        flush.run().context("flushing the rebuilt indexes")?;
        disk.flush_end(epoch);
    }
    Ok(())
}
