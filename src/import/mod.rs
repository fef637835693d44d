//! `skua import`: migration into skua from a Maildir++ tree (`maildir.rs`, with Dovecot's
//! `dovecot-uidlist` UIDs and `dovecot-keywords`) or an mbox file (`mbox.rs`).
//!
//! Both read the source into [`Source`]: folders, each with messages (bytes, flags, keyword
//! names, internal date, and the source's UID where it has one), and hand it to the
//! `Importer` (`skua_protocols::import`, shared with `skua restore`), which writes it into the
//! user's store:
//!
//! - a folder becomes the mailbox of the same name (made when missing; `INBOX` is INBOX);
//! - a message keeps its source UID when the target mailbox never had that UID or a larger
//!   one (a new mailbox keeps every UID), else gets the next one;
//! - a message already in the target mailbox (the same bytes: SHA-256) is skipped, so running
//!   an import again changes nothing, and an interrupted one can simply be run again.
//!
//! The data-dir lock decides where the writing happens: with the server stopped, here (the
//! lock held meanwhile); with it running, on the user's home shard, the messages sent over the
//! admin socket as `skua restore` sends a snapshot (`online.rs`).

pub(crate) mod imap;
pub(crate) mod maildir;
pub(crate) mod mbox;
mod online;

use std::path::PathBuf;
use std::rc::Rc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use skua_core::disk::os::OsDisk;
use skua_core::lock::{DataDirLock, LockError};
use skua_core::store::UserStore;
use skua_protocols::import::{ImportCounts, Importer};

use crate::Common;
use crate::config::FileConfig;

/// `skua import ...`
#[derive(Subcommand, Debug)]
pub(crate) enum ImportCommand {
    /// A Maildir++ tree (INBOX in DIR/cur and DIR/new, folders in DIR/.Name): Maildir flags,
    /// Dovecot's `dovecot-uidlist` UIDs and `dovecot-keywords` keywords are kept.
    Maildir {
        /// The Maildir++ root.
        dir: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    /// An mbox file (mboxrd or mboxo): `Status:`/`X-Status:` flags, `X-Keywords:`, `X-UID:`
    /// and the `From ` line's date are kept.
    Mbox {
        /// The mbox file.
        file: PathBuf,
        /// The mailbox to import into.
        #[arg(long, default_value = "INBOX")]
        mailbox: String,
        #[command(flatten)]
        target: Target,
    },
    /// Another IMAP server's account: its folder tree, flags, keywords and internal dates
    /// (`imap://user:password@host:port`, or `imaps://` with --ca-file).
    Imap {
        #[command(flatten)]
        remote: imap::Remote,
        #[command(flatten)]
        target: Target,
    },
}

/// Whose store an import writes.
#[derive(Args, Debug)]
pub(crate) struct Target {
    /// The user (must exist in the passwd-file).
    #[arg(long)]
    user: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    common: Common,
}

/// What a source holds, in the order it is imported.
#[derive(Debug, Default)]
pub(crate) struct Source {
    pub folders: Vec<Folder>,
}

/// One folder of a source.
#[derive(Debug)]
pub(crate) struct Folder {
    /// The mailbox name in skua (UTF-8, `/`-separated; `INBOX` for the inbox).
    pub name: String,
    pub messages: Vec<Message>,
}

pub(crate) use skua_protocols::import::Message;

/// What an import did (`skua_protocols::import::ImportCounts`, as `--json` prints it).
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct Report {
    pub mailboxes_created: usize,
    pub messages_imported: usize,
    /// Already in the target (an earlier run): skipped.
    pub messages_skipped: usize,
    /// Imported with their source UID.
    pub uids_kept: usize,
}

impl std::convert::From<ImportCounts> for Report {
    fn from(counts: ImportCounts) -> Report {
        Report {
            mailboxes_created: counts.mailboxes_created,
            messages_imported: counts.messages_imported,
            messages_skipped: counts.messages_skipped,
            uids_kept: counts.uids_kept,
        }
    }
}

/// Where the messages come from.
enum From {
    /// Read whole first (a Maildir tree, an mbox file).
    Read(Source),
    /// Streamed from a server, folder by folder, batch by batch.
    Imap(Box<imap::Client>),
}

/// Writes `from` into `user`'s store with the data-dir lock held (no server runs).
fn offline(data_dir: &std::path::Path, user: &str, from: From) -> anyhow::Result<Report> {
    let name = skua_core::paths::UserName::new(user)
        .map_err(|e| anyhow::anyhow!("invalid user name {user:?}: {e}"))?;
    let disk =
        Rc::new(OsDisk::new(data_dir).with_context(|| format!("opening {}", data_dir.display()))?);
    let mut store = UserStore::open(disk.clone(), &skua_core::paths::user_dir(&name))
        .with_context(|| format!("opening {user}'s store"))?;
    let mut importer = Importer::default();
    match from {
        From::Read(source) => {
            for folder in &source.folders {
                importer.folder(&mut store, &folder.name, &folder.messages)?;
            }
        }
        From::Imap(mut client) => {
            for (name, wire) in client.folders()? {
                client.messages(&wire, |batch| Ok(importer.folder(&mut store, &name, &batch)?))?;
            }
        }
    }
    drop(store);
    crate::admin::flush_now(&disk)?;
    Ok(Report::from(importer.counts))
}

/// Runs `skua import ...`.
pub(crate) fn run(command: ImportCommand) -> anyhow::Result<()> {
    let (from, target) = match command {
        ImportCommand::Maildir { dir, target } => (From::Read(maildir::read(&dir)?), target),
        ImportCommand::Mbox { file, mailbox, target } => {
            (From::Read(mbox::read(&file, &mailbox)?), target)
        }
        ImportCommand::Imap { remote, target } => {
            (From::Imap(Box::new(imap::Client::connect(&remote)?)), target)
        }
    };
    let file = FileConfig::load(target.common.config.as_deref())?;
    let data_dir = file.data_dir(target.common.data_dir.as_deref());
    if !data_dir.is_dir() {
        bail!("no data dir at {}", data_dir.display());
    }
    // Lock free: write the store here. Held by a server: send it the messages.
    let lock = match DataDirLock::acquire(&data_dir) {
        Ok(lock) => Ok(lock),
        Err(LockError::Held { pid, .. }) => Err(pid),
        Err(error) => return Err(error.into()),
    };
    let passwd = file.passwd_file(&data_dir);
    let known = skua_core::users::list_users(&passwd)
        .with_context(|| format!("reading {}", passwd.display()))?;
    let Some(user) = known.iter().find(|u| u.eq_ignore_ascii_case(&target.user)) else {
        bail!("no user {} in {}", target.user, passwd.display());
    };
    let report = match lock {
        Ok(_lock) => offline(&data_dir, user, from)?,
        Err(pid) => {
            let socket = data_dir.join(skua_shard::admin_proto::ADMIN_SOCKET_FILE);
            let report = Report::default();
            let mut online = online::Online { socket, pid, user: user.clone(), report };
            match from {
                From::Read(source) => {
                    for folder in &source.folders {
                        online.folder(&folder.name, &folder.messages)?;
                    }
                }
                From::Imap(mut client) => {
                    for (name, wire) in client.folders()? {
                        client.messages(&wire, |batch| online.folder(&name, &batch))?;
                    }
                }
            }
            online.report
        }
    };
    if target.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "imported {} messages into {user} ({} skipped as already there, {} kept their \
             UID); {} mailboxes created",
            report.messages_imported,
            report.messages_skipped,
            report.uids_kept,
            report.mailboxes_created
        );
    }
    Ok(())
}
