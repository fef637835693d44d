//! `skua import`: migration into skua from a Maildir++ tree (`maildir.rs`, with Dovecot's
//! `dovecot-uidlist` UIDs and `dovecot-keywords`) or an mbox file (`mbox.rs`).
//!
//! Both read the source into [`Source`]: folders, each with messages (bytes, flags, keyword
//! names, internal date, and the source's UID where it has one), and hand it to [`import`],
//! which writes it into the user's store:
//!
//! - a folder becomes the mailbox of the same name (made when missing; `INBOX` is INBOX);
//! - a message keeps its source UID when the target mailbox never had that UID or a larger
//!   one (a new mailbox keeps every UID), else gets the next one;
//! - a message already in the target mailbox (the same bytes: SHA-256) is skipped, so running
//!   an import again changes nothing, and an interrupted one can simply be run again.
//!
//! Today the server must be stopped (the data-dir lock decides); importing into a running
//! server needs the admin socket to carry message bytes (its JSON lines stop at 64 KiB).

pub(crate) mod imap;
pub(crate) mod maildir;
pub(crate) mod mbox;

use std::collections::HashSet;
use std::path::PathBuf;
use std::rc::Rc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use skua_core::disk::os::OsDisk;
use skua_core::lock::{DataDirLock, LockError};
use skua_core::store::{NewMessage, UserStore};
use skua_core::types::{Flags, InternalDate, Keywords, MailboxId, SystemFlags, Uid};
use skua_protocols::mime::cache::{build_with_keys, thread_keys};

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

/// One message of a source.
#[derive(Debug)]
pub(crate) struct Message {
    pub bytes: Vec<u8>,
    pub system: SystemFlags,
    pub keywords: Vec<String>,
    pub date: Option<InternalDate>,
    /// The source's UID, when it has one.
    pub uid: Option<u32>,
}

/// What an import did.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct Report {
    pub mailboxes_created: usize,
    pub messages_imported: usize,
    /// Already in the target (an earlier run): skipped.
    pub messages_skipped: usize,
    /// Imported with their source UID.
    pub uids_kept: usize,
}

/// Where the messages come from.
enum From {
    /// Read whole first (a Maildir tree, an mbox file).
    Read(Source),
    /// Streamed from a server, folder by folder, batch by batch.
    Imap(Box<imap::Client>),
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
    let _lock = match DataDirLock::acquire(&data_dir) {
        Ok(lock) => lock,
        Err(LockError::Held { dir, pid }) => {
            let holder = pid.map_or_else(|| "pid unknown".to_owned(), |p| format!("pid {p}"));
            bail!(
                "data dir {} is in use by a running skua server ({holder}): stop it to import \
                 (importing through the admin socket is not there yet)",
                dir.display()
            );
        }
        Err(error) => return Err(error.into()),
    };
    let passwd = data_dir.join("passwd");
    let known = skua_core::users::list_users(&passwd)
        .with_context(|| format!("reading {}", passwd.display()))?;
    let Some(user) = known.iter().find(|u| u.eq_ignore_ascii_case(&target.user)) else {
        bail!("no user {} in {}", target.user, passwd.display());
    };
    let name = skua_core::paths::UserName::new(user)
        .map_err(|e| anyhow::anyhow!("invalid user name {user:?}: {e}"))?;
    let disk =
        Rc::new(OsDisk::new(&data_dir).with_context(|| format!("opening {}", data_dir.display()))?);
    let mut store = UserStore::open(disk.clone(), &skua_core::paths::user_dir(&name))
        .with_context(|| format!("opening {user}'s store"))?;
    let mut importer =
        Importer { store: &mut store, report: Report::default(), present: Default::default() };
    match from {
        From::Read(source) => {
            for folder in &source.folders {
                importer.folder(&folder.name, &folder.messages)?;
            }
        }
        From::Imap(mut client) => {
            for (name, wire) in client.folders()? {
                client.messages(&wire, |batch| importer.folder(&name, &batch))?;
            }
        }
    }
    let report = importer.report;
    crate::admin::flush_now(&disk)?;
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

/// Writes folders into a store (see the module docs), one folder or batch at a time.
struct Importer<'a, D: skua_core::disk::Disk> {
    store: &'a mut UserStore<D>,
    report: Report,
    /// The digests of each mailbox written to, read once (not once per batch).
    present: std::collections::HashMap<MailboxId, HashSet<[u8; 32]>>,
}

impl<D: skua_core::disk::Disk> Importer<'_, D> {
    /// Imports `messages` into the mailbox `name` (made when missing).
    fn folder(&mut self, name: &str, messages: &[Message]) -> anyhow::Result<()> {
        let store = &mut *self.store;
        let report = &mut self.report;
        let id = match store.mailbox_id(name) {
            Some(id) => id,
            None => {
                report.mailboxes_created += 1;
                store.create_mailbox(name).with_context(|| format!("creating mailbox {name}"))?
            }
        };
        let present = match self.present.entry(id) {
            std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
            std::collections::hash_map::Entry::Vacant(new) => new.insert(hashes_in(store, id)?),
        };
        let mut messages: Vec<&Message> = messages.iter().collect();
        // Source UIDs ascending (kept where they can be), then the ones without.
        messages.sort_by_key(|m| m.uid.map_or((1, 0), |uid| (0, uid)));
        for message in messages {
            if !present.insert(digest(&message.bytes)) {
                report.messages_skipped += 1;
                continue;
            }
            if let Some(uid) = message.uid.and_then(Uid::new)
                && store.next_uid_at_least(id, uid)
            {
                report.uids_kept += 1;
            }
            append(store, id, message)
                .with_context(|| format!("importing a message into {name}"))?;
            report.messages_imported += 1;
        }
        Ok(())
    }
}

/// Appends one message with its flags and keywords.
fn append<D: skua_core::disk::Disk>(
    store: &mut UserStore<D>,
    id: MailboxId,
    message: &Message,
) -> anyhow::Result<()> {
    let names: Vec<&str> = message.keywords.iter().map(String::as_str).collect();
    let keywords = if names.is_empty() {
        Keywords::default()
    } else {
        store.keyword_bits(id, &names).map_err(|e| anyhow::anyhow!("keywords: {e}"))?
    };
    let (cache, keys) = build_with_keys(&message.bytes);
    let new = NewMessage {
        message: &message.bytes,
        cache: &cache,
        flags: Flags { system: message.system, keywords },
        date: message.date,
        thread: thread_keys(&keys),
    };
    store.append_all(id, std::slice::from_ref(&new))?;
    Ok(())
}

/// The SHA-256 of every live message of mailbox `id`.
fn hashes_in<D: skua_core::disk::Disk>(
    store: &UserStore<D>,
    id: MailboxId,
) -> anyhow::Result<HashSet<[u8; 32]>> {
    let mut hashes = HashSet::new();
    for meta in store.messages(id)? {
        hashes.insert(digest(&store.body(id, meta.uid)?));
    }
    Ok(hashes)
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().try_into().expect("SHA-256 is 32 bytes")
}
