//! The workload: actions on a `UserStore<SimDisk>`, flush rounds that acknowledge them, and a
//! snapshot of the live store after each action.
//!
//! An action is acknowledged only when a whole flush round (`flush_begin` → `run` →
//! `flush_end`) after it succeeded and the disk's durable epoch reached the ticket read after
//! the action, as the shard does before it sends a tagged OK or an LMTP 250. A flush run that
//! fails (the sim froze the disk at the chosen crash point) ends the workload: the store would
//! stop acknowledging there, and the crash comes next.

use std::collections::BTreeSet;

use skua_core::disk::sim::SimRng;

use crate::TestDisk;
use crate::disk::CrashDisk;
use skua_core::disk::{Disk, Flush};
use skua_core::types::{FlagsOp, SystemFlags};

use crate::model::{INBOX, MailboxState, Snapshot, Violations};
use crate::store::Store;

/// Which of a mailbox's messages an action touches; resolved against the live store.
#[derive(Clone, Copy, Debug)]
pub enum Pick {
    /// The lowest UID.
    First,
    /// The highest UID.
    Last,
    /// Every other message, starting with the first.
    EveryOther,
    /// A random non-empty subset, drawn from this seed.
    Random(u64),
}

/// One thing the workload does.
#[derive(Clone, Debug)]
pub enum Action {
    /// Appends a new message (an LMTP delivery or an IMAP APPEND).
    Append {
        /// Target mailbox.
        mailbox: String,
        /// Body size in bytes (bodies are unique per action).
        size: usize,
        /// System flags.
        system: u16,
        /// Keyword names.
        keywords: Vec<&'static str>,
    },
    /// Appends several messages as one batch, all or none (IMAP MULTIAPPEND,
    /// `UserStore::append_all`).
    AppendAll {
        /// Target mailbox.
        mailbox: String,
        /// Body sizes, one per message, in order.
        sizes: Vec<usize>,
        /// System flags of every message.
        system: u16,
        /// Keyword names of every message.
        keywords: Vec<&'static str>,
    },
    /// Changes flags (IMAP STORE).
    Flags {
        /// Mailbox.
        mailbox: String,
        /// Messages.
        pick: Pick,
        /// Replace, add or remove.
        op: FlagsOp,
        /// System flags.
        system: u16,
        /// Keyword names.
        keywords: Vec<&'static str>,
    },
    /// Expunges messages.
    Expunge {
        /// Mailbox.
        mailbox: String,
        /// Messages.
        pick: Pick,
    },
    /// Copies messages to another mailbox.
    Copy {
        /// Source mailbox.
        source: String,
        /// Messages.
        pick: Pick,
        /// Target mailbox.
        target: String,
    },
    /// Creates a mailbox.
    Create(String),
    /// Renames a mailbox.
    Rename(String, String),
    /// Deletes a mailbox.
    Delete(String),
    /// Subscribes (`true`) or unsubscribes a name.
    Subscribe(String, bool),
    /// Changes an ACL entry (RFC 4314 SETACL): mailbox, identifier, `mod-rights`. Never the
    /// owner's own entry (whose fixed rights `semantics.rs` would have to model).
    SetAcl(String, &'static str, &'static str),
    /// A flush round: everything before it is acknowledged if it succeeds.
    Flush,
    /// Closes the open epoch and starts a flush round; actions until [`Action::FlushEnd`] land
    /// in the next epoch while it runs, as with the shard's group commit off the reactor.
    FlushBegin,
    /// Runs and ends the round [`Action::FlushBegin`] started: acknowledges what came before
    /// that begin.
    FlushEnd,
}

impl Action {
    /// A short name of the kind of action, for counts.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Append { .. } => "append",
            Action::AppendAll { .. } => "multiappend",
            Action::Flags { .. } => "store",
            Action::Expunge { .. } => "expunge",
            Action::Copy { .. } => "copy",
            Action::Create(name) if name.contains('/') => "create-child",
            Action::Create(_) => "create",
            Action::Rename(old, _) if old == INBOX => "rename-inbox",
            Action::Rename(..) => "rename",
            Action::Delete(_) => "delete",
            Action::Subscribe(_, true) => "subscribe",
            Action::Subscribe(_, false) => "unsubscribe",
            Action::SetAcl(..) => "setacl",
            Action::Flush => "flush",
            Action::FlushBegin | Action::FlushEnd => "overlapped-flush",
        }
    }

    /// True for actions that change the set of mailboxes. The workload flushes alone each of
    /// these, so that the crash check may demand that the set of names after a crash is one
    /// the store had (a rename is atomic).
    pub fn changes_names(&self) -> bool {
        matches!(self, Action::Create(_) | Action::Rename(..) | Action::Delete(_))
    }
}

/// A workload in progress, or stopped at its crash point.
pub struct Runner {
    /// The disk under the store.
    pub disk: TestDisk,
    /// The disk's flush runs before the workload began (a journal's open flushes).
    base_flushes: u64,
    /// The store.
    pub store: Store,
    /// The state acknowledged by the last successful flush round.
    pub acked: Snapshot,
    /// Snapshots after each action since then.
    pub in_flight: Vec<Snapshot>,
    /// Every body ever appended.
    pub written: BTreeSet<Vec<u8>>,
    /// Successful flush rounds.
    pub flushes: u64,
    /// True once a flush failed: the crash point.
    pub frozen: bool,
    /// A flush round begun and not ended, with how many in-flight snapshots it covers.
    round: Option<(<TestDisk as Disk>::Flush, usize)>,
    /// Wrong answers of the live store (not crash related, but bugs all the same).
    pub live_errors: Violations,
    serial: u64,
}

/// Why the workload could not go on.
#[derive(Debug)]
pub struct Broken(pub String);

impl Runner {
    /// Opens a fresh store on `disk`. The store's own first writes are in flight.
    ///
    /// # Errors
    /// If the store does not open.
    pub fn start(disk: TestDisk) -> Result<Runner, Broken> {
        let store = Store::open(&disk).map_err(|e| Broken(format!("first open: {e}")))?;
        let first = store.snapshot().map_err(Broken)?;
        Ok(Runner {
            base_flushes: disk.sim().flushes_done(),
            disk,
            store,
            acked: Snapshot::new(),
            in_flight: vec![first],
            written: BTreeSet::new(),
            flushes: 0,
            frozen: false,
            round: None,
            live_errors: Violations::default(),
            serial: 0,
        })
    }

    /// Reopens the store on `disk`, which a crash of `before`'s disk left, and goes on from
    /// there: what `before` acknowledged stays acknowledged, its actions in flight stay in
    /// flight, and the recovered state joins them until the next flush round covers it.
    ///
    /// # Errors
    /// If the store does not open.
    pub fn resume(disk: TestDisk, before: &Runner) -> Result<Runner, Broken> {
        let store = Store::open(&disk).map_err(|e| Broken(format!("reopen: {e}")))?;
        let mut in_flight = before.in_flight.clone();
        in_flight.push(store.snapshot().map_err(Broken)?);
        Ok(Runner {
            base_flushes: disk.sim().flushes_done(),
            disk,
            store,
            acked: before.acked.clone(),
            in_flight,
            written: before.written.clone(),
            flushes: 0,
            frozen: false,
            round: None,
            live_errors: Violations::default(),
            serial: before.serial,
        })
    }

    /// Flush runs of the disk since the workload began: the crash points there are (more than
    /// [`Runner::flushes`] on a journaled disk, whose renames sync).
    pub fn disk_flushes(&self) -> u64 {
        self.disk.sim().flushes_done() - self.base_flushes
    }

    /// The live state now.
    pub fn live(&self) -> &Snapshot {
        self.in_flight.last().unwrap_or(&self.acked)
    }

    /// Runs one action; `false` once the workload reached its crash point.
    ///
    /// # Errors
    /// If the store failed an action it should have done.
    pub fn act(&mut self, action: &Action) -> Result<bool, Broken> {
        if self.frozen {
            return Ok(false);
        }
        match action {
            Action::Flush => {
                self.flush_end();
                if !self.frozen {
                    self.flush_begin();
                    self.flush_end();
                }
                return Ok(!self.frozen);
            }
            Action::FlushBegin => {
                self.flush_end();
                if !self.frozen {
                    self.flush_begin();
                }
                return Ok(!self.frozen);
            }
            Action::FlushEnd => {
                self.flush_end();
                return Ok(!self.frozen);
            }
            _ => {}
        }
        let before = self.live().clone();
        if let Action::Rename(old, new) = action
            && old == INBOX
        {
            return self.rename_inbox(action, new, &before);
        }
        let appended = match self.perform(action, &before) {
            Ok(appended) => appended,
            // A journaled disk syncs inside a rename or removal (a blocking checkpoint): the
            // disk froze there, so this is the crash point. What the action did so far is as
            // unacknowledged as the rest in flight.
            Err(_) if self.disk.sim().is_frozen() => {
                self.frozen = true;
                if let Ok(partial) = self.store.snapshot() {
                    self.in_flight.push(partial);
                }
                return Ok(false);
            }
            Err(error) => return Err(error),
        };
        let after = self.store.snapshot().map_err(Broken)?;
        crate::semantics::check_action(action, &appended, &before, &after, &mut self.live_errors);
        if let Err(violation) = self.store.quota_agrees(&after) {
            self.live_errors.0.push(format!("{action:?}: {violation}"));
        }
        self.in_flight.push(after);
        Ok(true)
    }

    /// RENAME INBOX: the store copies INBOX's messages to `new`, waits until the copies are
    /// durable, then expunges them from INBOX. The wait is a flush round of this runner (so
    /// it acknowledges what it covers, or freezes the workload), and the state it makes
    /// durable, both mailboxes full, is one more state in flight.
    fn rename_inbox(
        &mut self,
        action: &Action,
        new: &str,
        before: &Snapshot,
    ) -> Result<bool, Broken> {
        let broken = |e: String| Broken(format!("{action:?}: {e}"));
        let mut job = self.store.rename_inbox(new).map_err(broken)?;
        loop {
            match self.store.rename_inbox_step(&mut job).map_err(broken)? {
                skua_core::store::InboxStep::More => {}
                skua_core::store::InboxStep::WaitDurable(_) => {
                    let copied = self.store.snapshot().map_err(Broken)?;
                    self.in_flight.push(copied);
                    self.flush_end();
                    if !self.frozen {
                        self.flush_begin();
                        self.flush_end();
                    }
                    if self.frozen {
                        return Ok(false);
                    }
                }
                skua_core::store::InboxStep::Done => break,
            }
        }
        let after = self.store.snapshot().map_err(Broken)?;
        crate::semantics::check_action(action, &[], before, &after, &mut self.live_errors);
        if let Err(violation) = self.store.quota_agrees(&after) {
            self.live_errors.0.push(format!("{action:?}: {violation}"));
        }
        self.in_flight.push(after);
        Ok(true)
    }

    /// Does the action; returns the bodies it appended, in order (none for most actions).
    fn perform(&mut self, action: &Action, before: &Snapshot) -> Result<Vec<Vec<u8>>, Broken> {
        let store = &mut self.store;
        let result = match action {
            Action::Append { mailbox, size, system, keywords } => {
                self.serial += 1;
                let body = body_bytes(self.serial, *size);
                self.written.insert(body.clone());
                let cache = format!("cache of message {}", self.serial).into_bytes();
                let appended = store.append(mailbox, &body, &cache, *system, keywords, self.serial);
                return appended
                    .map(|_uid| vec![body])
                    .map_err(|e| Broken(format!("{action:?}: {e}")));
            }
            Action::AppendAll { mailbox, sizes, system, keywords } => {
                let first_serial = self.serial + 1;
                let mut bodies = Vec::with_capacity(sizes.len());
                for size in sizes {
                    self.serial += 1;
                    let body = body_bytes(self.serial, *size);
                    self.written.insert(body.clone());
                    bodies.push(body);
                }
                let appended = store.append_all(mailbox, &bodies, *system, keywords, first_serial);
                return appended
                    .map(|_uids| bodies)
                    .map_err(|e| Broken(format!("{action:?}: {e}")));
            }
            Action::Flags { mailbox, pick, op, system, keywords } => {
                let uids = pick_uids(before, mailbox, *pick);
                store.store_flags(mailbox, &uids, *op, *system, keywords)
            }
            Action::Expunge { mailbox, pick } => {
                store.expunge(mailbox, &pick_uids(before, mailbox, *pick))
            }
            Action::Copy { source, pick, target } => {
                store.copy(source, &pick_uids(before, source, *pick), target).map(drop)
            }
            Action::Create(name) => store.create(name),
            Action::Rename(old, new) => store.rename(old, new),
            Action::Delete(name) => store.delete(name),
            Action::Subscribe(name, on) => store.subscribe(name, *on),
            Action::SetAcl(name, identifier, change) => store.set_acl(name, identifier, change),
            Action::Flush | Action::FlushBegin | Action::FlushEnd => unreachable!("done by act"),
        };
        result.map(|()| Vec::new()).map_err(|e| Broken(format!("{action:?}: {e}")))
    }

    /// Begins a flush round covering every action so far.
    fn flush_begin(&mut self) {
        assert!(self.round.is_none(), "one round at a time");
        let covered = self.in_flight.len();
        match self.disk.flush_begin() {
            Some(job) => self.round = Some((job, covered)),
            // Nothing written since the last round: every earlier round covered every write.
            None => self.acknowledge(covered),
        }
    }

    /// Runs and ends the round in progress, if any; acknowledges what it covered.
    fn flush_end(&mut self) {
        let Some((job, covered)) = self.round.take() else {
            return;
        };
        let epoch = job.epoch();
        if job.run().is_err() {
            self.frozen = true;
            return;
        }
        self.disk.flush_end(epoch);
        self.flushes += 1;
        // The durability ticket of the last covered action was the epoch this round closed.
        assert!(self.disk.epoch_durable() >= epoch, "the round made its epoch durable");
        self.acknowledge(covered);
        // A journaled disk's background checkpoints run between rounds, as the server's
        // runtime runs them beside its rounds; each sync is a crash point of its own.
        while let Some(job) = self.disk.checkpoint_job() {
            let result = (job.run)();
            if std::env::var_os("CJ").is_some() {
                eprintln!("CJ job");
            }
            let failed = result.is_err();
            self.disk.checkpoint_done(job.id, result);
            if failed {
                self.frozen = true;
                return;
            }
        }
    }

    /// The first `covered` in-flight snapshots are durable: the last one is acknowledged.
    fn acknowledge(&mut self, covered: usize) {
        if covered > 0 {
            self.acked = self.in_flight[covered - 1].clone();
            self.in_flight.drain(..covered);
        }
    }
}

/// The UIDs a pick selects in a mailbox of the snapshot (empty if the mailbox is empty).
pub fn pick_uids(snapshot: &Snapshot, mailbox: &str, pick: Pick) -> Vec<u32> {
    let uids: Vec<u32> = snapshot
        .get(mailbox)
        .map_or_else(Vec::new, |m: &MailboxState| m.messages.iter().map(|(uid, _)| *uid).collect());
    match pick {
        Pick::First => uids.first().copied().into_iter().collect(),
        Pick::Last => uids.last().copied().into_iter().collect(),
        Pick::EveryOther => uids.iter().copied().step_by(2).collect(),
        Pick::Random(seed) => {
            let mut rng = SimRng::new(seed);
            let picked: Vec<u32> = uids.iter().copied().filter(|_| rng.chance(1, 2)).collect();
            if picked.is_empty() { uids.first().copied().into_iter().collect() } else { picked }
        }
    }
}

/// A unique, deterministic RFC 5322 message of about `size` bytes.
pub fn body_bytes(serial: u64, size: usize) -> Vec<u8> {
    let mut body = format!(
        "From: sender{serial}@example.org\r\nTo: user@example.com\r\n\
         Subject: crash test message {serial}\r\nMessage-ID: <{serial}@crash.skua.test>\r\n\r\n"
    )
    .into_bytes();
    let mut line = 0u64;
    while body.len() < size {
        body.extend_from_slice(format!("line {line} of message {serial}\r\n").as_bytes());
        line += 1;
    }
    body
}

/// The scripted workload: four mailboxes (one a child, renamed with its parent), deliveries
/// (some sharing one flush, as group commit does), appends with flags and keywords, two
/// MULTIAPPEND batches (`append_all`: acknowledged whole; in part only if never acknowledged),
/// flag changes, expunges, a copy, renames (of a subtree, and of INBOX), and a tail of actions
/// never flushed.
pub fn script() -> Vec<Action> {
    let append = |mailbox: &str, size: usize, system: u16, keywords: &[&'static str]| {
        Action::Append { mailbox: mailbox.to_owned(), size, system, keywords: keywords.to_vec() }
    };
    let flags = |mailbox: &str, pick: Pick, op: FlagsOp, system: u16, keywords: &[&'static str]| {
        Action::Flags { mailbox: mailbox.to_owned(), pick, op, system, keywords: keywords.to_vec() }
    };
    let append_all = |mailbox: &str, sizes: &[usize], system: u16, keywords: &[&'static str]| {
        Action::AppendAll {
            mailbox: mailbox.to_owned(),
            sizes: sizes.to_vec(),
            system,
            keywords: keywords.to_vec(),
        }
    };
    let (seen, flagged, deleted) = (SystemFlags::SEEN, SystemFlags::FLAGGED, SystemFlags::DELETED);
    vec![
        Action::Flush,
        Action::Create("Work".into()),
        Action::Flush,
        Action::Create("Archive".into()),
        Action::Flush,
        Action::Create("Work/2026".into()),
        Action::Subscribe("Work".into(), true),
        Action::Subscribe("Archive".into(), true),
        // The first ACL change of a mailbox is a batch (owner entry and change).
        Action::SetAcl("Work".into(), "bob", "lrs"),
        Action::Flush,
        Action::SetAcl("Work".into(), "-anyone", "w"),
        Action::SetAcl(INBOX.into(), "anyone", "p"),
        Action::Flush,
        append(INBOX, 200, 0, &[]),
        Action::Flush,
        append(INBOX, 1500, 0, &[]),
        append(INBOX, 700, 0, &[]),
        append("Work", 3000, seen, &["$Important"]),
        Action::Flush,
        append("Work", 90, seen | flagged, &["$Important", "project-x"]),
        Action::Flush,
        // A MULTIAPPEND, alone in its round and then sharing one with a delivery.
        append_all("Work", &[600, 5000, 300], seen, &["batch"]),
        Action::Flush,
        append_all(INBOX, &[250, 250], 0, &[]),
        append(INBOX, 400, 0, &[]),
        Action::Flush,
        flags(INBOX, Pick::First, FlagsOp::Add, flagged, &["urgent"]),
        Action::Flush,
        flags("Work", Pick::Last, FlagsOp::Remove, seen, &["$Important"]),
        flags(INBOX, Pick::Last, FlagsOp::Replace, seen | deleted, &[]),
        Action::Flush,
        Action::Expunge { mailbox: INBOX.into(), pick: Pick::Last },
        // The expunge's round runs while the copy lands in the next epoch, as group commit does.
        Action::FlushBegin,
        Action::Copy { source: INBOX.into(), pick: Pick::EveryOther, target: "Archive".into() },
        Action::FlushEnd,
        Action::Flush,
        Action::Rename("Work".into(), "Projects".into()),
        Action::Flush,
        Action::SetAcl("Projects".into(), "bob", "+wd"),
        Action::Flush,
        Action::Subscribe("Archive".into(), false),
        Action::Flush,
        append("Projects", 2600, 0, &["project-x"]),
        append("Archive", 520, seen, &[]),
        Action::Flush,
        flags("Archive", Pick::First, FlagsOp::Add, deleted, &[]),
        Action::Expunge { mailbox: "Projects".into(), pick: Pick::First },
        Action::Flush,
        // INBOX's messages move to a new name; a new, empty INBOX takes its place.
        Action::Rename(INBOX.into(), "Old mail".into()),
        Action::Flush,
        append(INBOX, 4100, 0, &[]),
        Action::Flush,
        // Never flushed: the crash after the last flush point must be able to lose these.
        append(INBOX, 800, flagged, &[]),
        flags("Archive", Pick::Last, FlagsOp::Replace, 0, &["late"]),
    ]
}

/// A workload that carries the store past its first index checkpoint
/// (`limits::CHECKPOINT_INTERVAL_BYTES`, 16 MiB): 18 deliveries of 1 MiB, each flushed, with
/// flag changes and an expunge on the way, then small appends and changes after it, so crash
/// points fall before, at and after the headers are rewritten with a new checkpoint.
pub fn checkpoint_script() -> Vec<Action> {
    let append = |size: usize, keywords: &[&'static str]| Action::Append {
        mailbox: INBOX.to_owned(),
        size,
        system: 0,
        keywords: keywords.to_vec(),
    };
    let flags = |pick: Pick, keywords: &[&'static str]| Action::Flags {
        mailbox: INBOX.to_owned(),
        pick,
        op: FlagsOp::Add,
        system: SystemFlags::SEEN,
        keywords: keywords.to_vec(),
    };
    let mut actions = vec![Action::Flush];
    for delivery in 0..18 {
        actions.extend([append(1 << 20, &[]), Action::Flush]);
        match delivery % 6 {
            2 => actions.extend([flags(Pick::First, &["old"]), Action::Flush]),
            4 => actions.extend([Action::Expunge { mailbox: INBOX.into(), pick: Pick::Last }]),
            _ => {}
        }
    }
    actions.extend([
        append(700, &["late"]),
        flags(Pick::EveryOther, &["after-checkpoint"]),
        Action::Flush,
        append(300, &[]),
        Action::Expunge { mailbox: INBOX.into(), pick: Pick::First },
        Action::Flush,
        append(900, &[]),
    ]);
    actions
}
