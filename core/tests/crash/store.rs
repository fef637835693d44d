//! The only place the crash tests touch the `UserStore` API: mailboxes by name, flags as bits
//! plus keyword names, and a snapshot of everything.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::rc::Rc;

use crate::TestDisk;
use skua_core::acl::{Identifier, RightsChange};
use skua_core::store::{InboxRename, InboxStep, NewMessage, Renamed, ThreadKeys, UserStore};
use skua_core::types::{Flags, FlagsOp, InternalDate, Keywords, MailboxId, SystemFlags, Uid};

use crate::model::{INBOX, MailboxState, MessageState, Snapshot};

/// The user's directory on the simulated disk.
const USER_DIR: &str = "users/crash-test";

/// A message's bytes and its cache blob, shared by every snapshot that shows them.
type BodyAndCache = (Rc<[u8]>, Rc<[u8]>);

/// A user's store on the simulated disk.
pub struct Store {
    inner: UserStore<TestDisk>,
    /// Bodies and cache blobs already read, by mailbox id and UID: they never change (ids
    /// and UIDs are never reused), so snapshots after each action share them instead of
    /// reading and copying every message again. A new `Store` (a reopen) starts empty.
    read: RefCell<HashMap<(MailboxId, u32), BodyAndCache>>,
}

fn uids(values: &[u32]) -> Vec<Uid> {
    values.iter().map(|&v| Uid::new(v).expect("UIDs are never zero")).collect()
}

/// The Message-ID of the message of `serial`, and the one it replies to: two of every three
/// messages reply to the one before, so workloads build threads (some joined across a crash).
fn thread_ids(serial: u64) -> (String, Option<String>) {
    let parent =
        (!serial.is_multiple_of(3) && serial > 0).then(|| format!("m{}@crash", serial - 1));
    (format!("m{serial}@crash"), parent)
}

impl Store {
    /// The Message-ID map equals a replay of the spool (`core/FORMAT.md`, `threads.log`).
    pub fn thread_map_agrees(&self) -> Result<(), String> {
        let spool = self.inner.thread_map_from_spool().map_err(|e| format!("replay: {e}"))?;
        let live = self.inner.thread_map();
        if live == spool {
            return Ok(());
        }
        Err(format!(
            "the Message-ID map ({} ids) differs from the spool's ({})",
            live.len(),
            spool.len()
        ))
    }

    /// The store's quota usage (kept incrementally since open) equals a recount of
    /// `snapshot`, which was read message by message: live messages, their bytes, mailboxes.
    pub fn quota_agrees(&self, snapshot: &Snapshot) -> Result<(), String> {
        let usage = self.inner.quota_usage();
        let messages = snapshot.values().map(|m| m.messages.len() as u64).sum::<u64>();
        let bytes = snapshot
            .values()
            .flat_map(|m| m.messages.iter())
            .map(|(_, message)| message.body.len() as u64)
            .sum::<u64>();
        let mailboxes = snapshot.len() as u64;
        if (usage.messages, usage.storage_bytes, usage.mailboxes) == (messages, bytes, mailboxes) {
            return Ok(());
        }
        Err(format!(
            "quota usage {usage:?} differs from the recount ({messages} messages, {bytes} \
             bytes, {mailboxes} mailboxes)"
        ))
    }

    /// Opens (creating or recovering) the store on `disk`.
    pub fn open(disk: &TestDisk) -> Result<Store, String> {
        UserStore::open(Rc::new(disk.clone()), Path::new(USER_DIR))
            .map(|inner| Store { inner, read: RefCell::default() })
            .map_err(|e| format!("{e} ({e:?})"))
    }

    /// Rebuilds every index from the spool and the log (`skua reconstruct`); the store must
    /// not be open.
    pub fn reconstruct(disk: &TestDisk) -> Result<(), String> {
        skua_core::store::reconstruct(Rc::new(disk.clone()), Path::new(USER_DIR))
            .map(drop)
            .map_err(|e| format!("{e} ({e:?})"))
    }

    /// Spool records the recovery on open checked: those past the oldest index checkpoint.
    #[allow(dead_code, reason = "used by crash.rs, not by every test binary")]
    pub fn records_scanned_at_open(&self) -> u64 {
        self.inner.recovery().spool_records_scanned
    }

    fn id(&self, name: &str) -> Result<MailboxId, String> {
        self.inner.mailbox_id(name).ok_or_else(|| format!("no mailbox {name}"))
    }

    fn flags(&mut self, id: MailboxId, system: u16, keywords: &[&str]) -> Result<Flags, String> {
        let keywords = if keywords.is_empty() {
            Keywords::default()
        } else {
            self.inner.keyword_bits(id, keywords).map_err(|e| format!("keyword_bits: {e}"))?
        };
        Ok(Flags { system: SystemFlags(system), keywords })
    }

    /// Appends a message; its UID.
    pub fn append(
        &mut self,
        mailbox: &str,
        body: &[u8],
        cache: &[u8],
        system: u16,
        keywords: &[&str],
        serial: u64,
    ) -> Result<u32, String> {
        let id = self.id(mailbox)?;
        let flags = self.flags(id, system, keywords)?;
        let seconds = 1_700_000_000 + i64::try_from(serial).expect("small serial");
        let date = InternalDate { unix_seconds: seconds, zone_minutes: 60 };
        let (message_id, parent) = thread_ids(serial);
        let references = parent.iter().cloned().collect::<Vec<_>>();
        let keys = ThreadKeys {
            message_id: &message_id,
            in_reply_to: parent.as_deref().unwrap_or(""),
            references: &references,
        };
        let (uid, _modseq) = self
            .inner
            .append_threaded(id, body, cache, keys, flags, Some(date))
            .map_err(|e| format!("append: {e}"))?;
        Ok(uid.get())
    }

    /// Appends `bodies` as one batch (MULTIAPPEND); each message's cache and date follow from
    /// its serial (`first_serial`, then the next ones), as [`Store::append`] makes them.
    pub fn append_all(
        &mut self,
        mailbox: &str,
        bodies: &[Vec<u8>],
        system: u16,
        keywords: &[&str],
        first_serial: u64,
    ) -> Result<Vec<u32>, String> {
        let id = self.id(mailbox)?;
        let flags = self.flags(id, system, keywords)?;
        let caches: Vec<Vec<u8>> = (0..bodies.len() as u64)
            .map(|i| format!("cache of message {}", first_serial + i).into_bytes())
            .collect();
        let batch: Vec<NewMessage<'_>> = bodies
            .iter()
            .zip(&caches)
            .enumerate()
            .map(|(i, (body, cache))| {
                let serial = i64::try_from(first_serial + i as u64).expect("small serial");
                let date = InternalDate { unix_seconds: 1_700_000_000 + serial, zone_minutes: 60 };
                NewMessage {
                    message: body,
                    cache,
                    flags,
                    date: Some(date),
                    thread: ThreadKeys::NONE,
                }
            })
            .collect();
        let appended = self.inner.append_all(id, &batch).map_err(|e| format!("append_all: {e}"))?;
        Ok(appended.into_iter().map(|(uid, _)| uid.get()).collect())
    }

    /// Changes flags.
    pub fn store_flags(
        &mut self,
        mailbox: &str,
        targets: &[u32],
        op: FlagsOp,
        system: u16,
        keywords: &[&str],
    ) -> Result<(), String> {
        let id = self.id(mailbox)?;
        let flags = self.flags(id, system, keywords)?;
        self.inner
            .store_flags(id, &uids(targets), op, flags, None)
            .map(drop)
            .map_err(|e| format!("store_flags: {e}"))
    }

    /// Expunges messages.
    pub fn expunge(&mut self, mailbox: &str, targets: &[u32]) -> Result<(), String> {
        let id = self.id(mailbox)?;
        self.inner.expunge(id, &uids(targets)).map(drop).map_err(|e| format!("expunge: {e}"))
    }

    /// Copies messages; the (source, new) UID pairs.
    pub fn copy(
        &mut self,
        source: &str,
        targets: &[u32],
        target: &str,
    ) -> Result<Vec<(u32, u32)>, String> {
        let (source, target) = (self.id(source)?, self.id(target)?);
        let pairs =
            self.inner.copy(source, &uids(targets), target).map_err(|e| format!("copy: {e}"))?;
        Ok(pairs.into_iter().map(|(from, to)| (from.get(), to.get())).collect())
    }

    /// Creates a mailbox.
    pub fn create(&mut self, name: &str) -> Result<(), String> {
        self.inner.create_mailbox(name).map(drop).map_err(|e| format!("create: {e}"))
    }

    /// Renames a mailbox other than INBOX.
    pub fn rename(&mut self, old: &str, new: &str) -> Result<(), String> {
        match self.inner.rename_mailbox(old, new).map_err(|e| format!("rename: {e}"))? {
            Renamed::Done => Ok(()),
            Renamed::Inbox(_) => Err("INBOX goes through rename_inbox".to_owned()),
        }
    }

    /// Starts RENAME INBOX: the target exists, the messages are still to move.
    pub fn rename_inbox(&mut self, new: &str) -> Result<InboxRename, String> {
        match self.inner.rename_mailbox(INBOX, new).map_err(|e| format!("rename: {e}"))? {
            Renamed::Inbox(job) => Ok(job),
            Renamed::Done => Err("INBOX was renamed, not moved".to_owned()),
        }
    }

    /// One step of RENAME INBOX, two messages at a time (so a move takes several steps).
    pub fn rename_inbox_step(&mut self, job: &mut InboxRename) -> Result<InboxStep, String> {
        self.inner.rename_inbox_step(job, 2).map_err(|e| format!("rename INBOX: {e}"))
    }

    /// Subscribes or unsubscribes a name.
    pub fn subscribe(&mut self, name: &str, on: bool) -> Result<(), String> {
        let result = if on { self.inner.subscribe(name) } else { self.inner.unsubscribe(name) };
        result.map_err(|e| format!("subscribe {on}: {e}"))
    }

    /// Changes an ACL entry (RFC 4314 SETACL): `change` is `mod-rights`.
    pub fn set_acl(&mut self, name: &str, identifier: &str, change: &str) -> Result<(), String> {
        let id = self.inner.mailbox_id(name).ok_or_else(|| format!("no mailbox {name}"))?;
        let identifier = Identifier::parse(identifier).map_err(|e| format!("identifier: {e}"))?;
        let change = RightsChange::parse(change).map_err(|e| format!("rights: {e}"))?;
        self.inner.set_acl(id, &identifier, change).map(drop).map_err(|e| format!("setacl: {e}"))
    }

    /// Deletes a mailbox.
    pub fn delete(&mut self, name: &str) -> Result<(), String> {
        self.inner.delete_mailbox(name).map(drop).map_err(|e| format!("delete: {e}"))
    }

    /// Everything the store shows, by mailbox name.
    pub fn snapshot(&self) -> Result<Snapshot, String> {
        let mut snapshot = Snapshot::new();
        for info in self.inner.mailboxes() {
            let mailbox = self.mailbox_state(info.id)?;
            if snapshot.insert(info.name.clone(), mailbox).is_some() {
                return Err(format!("mailbox {} listed twice", info.name));
            }
        }
        Ok(snapshot)
    }

    /// A message's body and cache blob, read once per store.
    fn bytes(&self, id: MailboxId, uid: Uid) -> Result<BodyAndCache, String> {
        if let Some(known) = self.read.borrow().get(&(id, uid.get())) {
            return Ok(known.clone());
        }
        let body = self.inner.body(id, uid).map_err(|e| format!("body {}: {e}", uid.get()))?;
        let cache = self.inner.cache(id, uid).map_err(|e| format!("cache {}: {e}", uid.get()))?;
        let read: BodyAndCache = (Rc::from(&body[..]), Rc::from(&cache[..]));
        self.read.borrow_mut().insert((id, uid.get()), read.clone());
        Ok(read)
    }

    fn mailbox_state(&self, id: MailboxId) -> Result<MailboxState, String> {
        let info = self.inner.mailbox_info(id).ok_or("listed mailbox has no info")?;
        let names = self.inner.keywords(id).map_err(|e| format!("keywords: {e}"))?;
        let metas = self.inner.messages(id).map_err(|e| format!("messages: {e}"))?;
        let mut messages = Vec::with_capacity(metas.len());
        for meta in metas {
            let (body, cache) = self.bytes(id, meta.uid)?;
            let bits = meta.flags.keywords.0;
            let keywords: BTreeSet<String> = (0..64)
                .filter(|bit| bits & (1 << bit) != 0)
                .map(|bit| names.get(bit).cloned().ok_or(format!("keyword bit {bit} has no name")))
                .collect::<Result<_, _>>()?;
            let message = MessageState {
                body,
                cache,
                system: meta.flags.system.0,
                keywords,
                modseq: meta.modseq.0,
                email_id: self
                    .inner
                    .email_id(id, meta.uid)
                    .map_err(|e| format!("email id: {e}"))?,
                thread_id: self
                    .inner
                    .thread_id(id, meta.uid)
                    .map_err(|e| format!("thread id: {e}"))?,
                save_date: meta.save_date,
            };
            messages.push((meta.uid.get(), message));
        }
        Ok(MailboxState {
            uid_validity: info.uid_validity.get(),
            uid_next: info.uid_next.get(),
            highest_modseq: info.highest_modseq.0,
            count: info.messages,
            unseen_deleted: (info.unseen, info.deleted),
            subscribed: info.subscribed,
            acl: self
                .inner
                .acl(id)
                .map_err(|e| format!("acl: {e}"))?
                .entries()
                .iter()
                .map(|e| format!("{} {}", e.identifier, e.rights.letters()))
                .collect(),
            messages,
        })
    }
}

/// One message of a damaged store: mailbox name, UIDVALIDITY, UID, and its bytes or the
/// error reading them.
pub type ReadBack = (String, u32, u32, Result<Vec<u8>, String>);

impl Store {
    /// Every listed message's mailbox name, UIDVALIDITY and UID, with its bytes or the error
    /// reading them: for damaged stores, where a message may be listed and still fail its
    /// checks when read.
    #[allow(dead_code, reason = "used by crash_corruption.rs, not by every test binary")]
    pub fn read_everything(&self) -> Vec<ReadBack> {
        let mut all = Vec::new();
        for info in self.inner.mailboxes() {
            let Ok(metas) = self.inner.messages(info.id) else {
                continue;
            };
            for meta in metas {
                let body = self.inner.body(info.id, meta.uid);
                let body = body.map(|b| b.to_vec()).map_err(|e| e.to_string());
                all.push((info.name.clone(), info.uid_validity.get(), meta.uid.get(), body));
            }
        }
        all
    }
}
