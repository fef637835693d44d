//! Guards against a one-message command costing O(mailbox) in disk work: the same UID STORE,
//! UID FETCH, FETCH by sequence number, STATUS and NOOP on a mailbox of 200 messages and of
//! 4,000 must make the same number of disk calls and move the same number of bytes (within a
//! small slack for an index checkpoint falling inside the window), counted by a `Disk` wrapper
//! around the real disk. Work is counted, not timed, so the bound holds on any machine.
//!
//! What it does not see: CPU work in memory (a loop over every index entry, a copy of the
//! message list) makes no disk call. The two benchmarks at the end measure that under
//! callgrind (instruction counts at two sizes; `--ignored`, run explicitly).

mod imap_support;

use std::cell::Cell;
use std::io;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use imap_support::{Client, World, tagged};
use skua_core::disk::os::OsDisk;
use skua_core::disk::{Bytes, Disk, DiskFile, Flush, OpenMode};
use skua_core::store::UserStore;
use skua_core::types::{Epoch, Flags, InternalDate};
use skua_protocols::imap::session::{AuthOutcome, AuthRequest, ImapConfig, ImapSession, Step};
use skua_protocols::mime::cache::build;

/// Disk work done through a [`CountingDisk`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Work {
    /// Calls of any `Disk` or `DiskFile` method that touches the file system.
    calls: u64,
    /// Bytes read with `read_exact_at`.
    bytes_read: u64,
    /// Bytes viewed with `view` (served from the memory map).
    bytes_viewed: u64,
    /// Bytes written.
    bytes_written: u64,
}

impl Work {
    fn minus(self, earlier: Work) -> Work {
        Work {
            calls: self.calls - earlier.calls,
            bytes_read: self.bytes_read - earlier.bytes_read,
            bytes_viewed: self.bytes_viewed - earlier.bytes_viewed,
            bytes_written: self.bytes_written - earlier.bytes_written,
        }
    }
}

type Counter = Rc<Cell<Work>>;

fn count(counter: &Counter, change: impl FnOnce(&mut Work)) {
    let mut work = counter.get();
    work.calls += 1;
    change(&mut work);
    counter.set(work);
}

/// The real disk, counting every call made through it.
struct CountingDisk {
    inner: OsDisk,
    work: Counter,
}

#[derive(Clone)]
struct CountingFile {
    inner: <OsDisk as Disk>::File,
    work: Counter,
}

impl Disk for CountingDisk {
    type File = CountingFile;
    type Flush = <OsDisk as Disk>::Flush;

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<CountingFile> {
        count(&self.work, |_| {});
        let inner = self.inner.open(path, mode)?;
        Ok(CountingFile { inner, work: self.work.clone() })
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        count(&self.work, |_| {});
        self.inner.create_dir_all(path)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        count(&self.work, |_| {});
        self.inner.remove_file(path)
    }
    fn rename(&self, source: &Path, target: &Path) -> io::Result<()> {
        count(&self.work, |_| {});
        self.inner.rename(source, target)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        count(&self.work, |_| {});
        self.inner.list_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        count(&self.work, |_| {});
        self.inner.exists(path)
    }
    fn epoch_open(&self) -> Epoch {
        self.inner.epoch_open()
    }
    fn epoch_durable(&self) -> Epoch {
        self.inner.epoch_durable()
    }
    fn flush_begin(&self) -> Option<Self::Flush> {
        self.inner.flush_begin()
    }
    fn flush_end(&self, epoch: Epoch) {
        self.inner.flush_end(epoch);
    }
}

impl DiskFile for CountingFile {
    fn len(&self) -> io::Result<u64> {
        count(&self.work, |_| {});
        self.inner.len()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        count(&self.work, |work| work.bytes_read += buf.len() as u64);
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        count(&self.work, |work| work.bytes_written += buf.len() as u64);
        self.inner.write_all_at(buf, offset)
    }
    fn write_all_at_unsynced(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        count(&self.work, |work| work.bytes_written += buf.len() as u64);
        self.inner.write_all_at_unsynced(buf, offset)
    }
    fn mark_dirty(&self) -> io::Result<()> {
        self.inner.mark_dirty()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        count(&self.work, |_| {});
        self.inner.set_len(len)
    }
    fn view(&self, offset: u64, len: u64) -> io::Result<Bytes> {
        count(&self.work, |work| work.bytes_viewed += len);
        self.inner.view(offset, len)
    }
    fn will_need(&self, offset: u64, len: u64) -> io::Result<()> {
        count(&self.work, |_| {});
        self.inner.will_need(offset, len)
    }
}

/// A logged-in session on a store of `messages` messages in INBOX, on a counting disk.
struct Bench {
    _dir: tempfile::TempDir,
    disk: Rc<CountingDisk>,
    store: UserStore<CountingDisk>,
    session: ImapSession,
    output: Vec<u8>,
}

fn raw_message(number: usize) -> Vec<u8> {
    format!("From: a@example.org\r\nSubject: message {number}\r\n\r\nbody {number}\r\n")
        .into_bytes()
}

impl Bench {
    fn new(messages: usize) -> Bench {
        let dir = tempfile::tempdir().expect("tempdir");
        let inner = OsDisk::new(dir.path()).expect("disk");
        let disk = Rc::new(CountingDisk { inner, work: Counter::default() });
        let mut store = UserStore::open(disk.clone(), Path::new("alice")).expect("store");
        let inbox = store.mailbox_id("INBOX").expect("INBOX");
        let date = InternalDate { unix_seconds: 1_700_000_000, zone_minutes: 0 };
        for number in 0..messages {
            let raw = raw_message(number);
            store.append(inbox, &raw, &build(&raw), Flags::default(), Some(date)).expect("append");
            if number % 500 == 499 {
                flush(&*disk);
            }
        }
        flush(&*disk);
        let session = ImapSession::new(Arc::new(ImapConfig::new("test.example")));
        let output = session.greeting();
        let mut bench = Bench { _dir: dir, disk, store, session, output };
        bench.command("l LOGIN alice secret");
        bench.command("s SELECT INBOX");
        bench
    }

    /// Sends one command and runs the session until it waits; returns the output.
    fn command(&mut self, line: &str) -> String {
        self.output.clear();
        self.session.feed(format!("{line}\r\n").as_bytes());
        for _ in 0..10_000 {
            let store = self.session.is_authenticated().then_some(&mut self.store);
            match self.session.next(store) {
                Step::NeedInput
                | Step::Idle
                | Step::Close
                | Step::StartTls
                | Step::Compress
                | Step::Elsewhere { .. } => {
                    return String::from_utf8_lossy(&self.output).into_owned();
                }
                Step::Yield => {}
                Step::Write { chunks, durable } => {
                    if durable.is_some() {
                        flush(&*self.disk);
                    }
                    for chunk in &chunks {
                        self.output.extend_from_slice(chunk.as_bytes());
                    }
                }
                Step::Authenticate(AuthRequest::Password { authcid, .. }) => self
                    .session
                    .auth_answer(skua_protocols::sasl::HostAnswer::Accepted { user: authcid }),
                Step::Authenticate(_) => self.session.auth_done(AuthOutcome::Success),
            }
        }
        panic!("session did not settle");
    }

    /// The disk work of `rounds` rounds of one-message commands, spread over the mailbox.
    fn one_message_commands(&mut self, messages: usize, rounds: usize) -> Work {
        let before = self.disk.work.get();
        for round in 0..rounds {
            let uid = 1 + (round * 7919) % messages;
            let seq = 1 + (round * 104_729) % messages;
            let replies = [
                self.command(&format!("t UID STORE {uid} +FLAGS (\\Seen)")),
                self.command(&format!("f UID FETCH {uid} (FLAGS BODY.PEEK[])")),
                self.command(&format!("g FETCH {seq} (UID RFC822.SIZE ENVELOPE)")),
                self.command("u STATUS INBOX (MESSAGES UNSEEN)"),
                self.command("n NOOP"),
            ];
            for reply in &replies {
                assert!(reply.lines().last().is_some_and(|l| l.contains(" OK ")), "{reply}");
            }
        }
        self.disk.work.get().minus(before)
    }
}

fn flush<D: Disk>(disk: &D) {
    if let Some(round) = disk.flush_begin() {
        let epoch = round.epoch();
        round.run().expect("flush");
        disk.flush_end(epoch);
    }
}

#[test]
fn one_message_commands_cost_the_same_on_a_big_mailbox() {
    const SMALL: usize = 200;
    const BIG: usize = 4_000;
    const ROUNDS: usize = 150;
    let small = Bench::new(SMALL).one_message_commands(SMALL, ROUNDS);
    let big = Bench::new(BIG).one_message_commands(BIG, ROUNDS);
    println!("{ROUNDS} rounds of 5 commands: {SMALL} messages {small:?}, {BIG} messages {big:?}");
    // The commands touch at most a few records each: at least one disk call per round (the
    // flag write), and no more than a handful.
    assert!(small.calls >= ROUNDS as u64, "{small:?}");
    assert!(small.calls <= 10 * ROUNDS as u64, "{small:?}");
    // 20 times the messages: the same work, up to one index-header rewrite and a few calls.
    let slack_calls = 8;
    let slack_bytes = 4096;
    assert!(big.calls <= small.calls + slack_calls, "disk calls grew: {small:?} -> {big:?}");
    assert!(big.bytes_read <= small.bytes_read + slack_bytes, "{small:?} -> {big:?}");
    assert!(big.bytes_viewed <= small.bytes_viewed + slack_bytes, "{small:?} -> {big:?}");
    assert!(big.bytes_written <= small.bytes_written + slack_bytes, "{small:?} -> {big:?}");
}
/// `count` messages appended to INBOX through `client` (logged in).
fn fill(world: &mut World, client: &mut Client, count: usize) {
    let raw = b"From: a@example.org\r\nSubject: s\r\n\r\nbody\r\n";
    let mut burst = Vec::new();
    for i in 0..count {
        burst.extend_from_slice(format!("a{i} APPEND INBOX {{{}+}}\r\n", raw.len()).as_bytes());
        burst.extend_from_slice(raw);
        burst.extend_from_slice(b"\r\n");
        if i % 500 == 499 || i + 1 == count {
            client.send(world, &burst);
            client.lines.clear();
            burst.clear();
        }
    }
}

/// A number from the environment (for callgrind runs at two sizes), or `default`.
fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Deliveries to a big mailbox watched by many IDLE sessions: each delivery must cost each
/// idler the new message, not the mailbox. For instruction counts, run under callgrind with
/// `SKUA_PERF_DELIVERIES` at two values and take the difference.
#[test]
#[ignore = "benchmark; run explicitly"]
fn deliveries_to_idlers_on_a_big_mailbox() {
    let mut world = World::new();
    let mut writer = Client::new();
    writer.login(&mut world);
    let count = env_number("SKUA_PERF_MESSAGES", 5_000);
    fill(&mut world, &mut writer, count);
    let mut idlers: Vec<Client> = (0..env_number("SKUA_PERF_IDLERS", 20))
        .map(|_| {
            let mut client = Client::new();
            client.login(&mut world);
            tagged(&client.command(&mut world, "s EXAMINE INBOX"), "s OK");
            client.command(&mut world, "i IDLE");
            assert!(client.idle);
            client
        })
        .collect();
    let deliveries = env_number("SKUA_PERF_DELIVERIES", 200);
    let start = Instant::now();
    for i in 0..deliveries {
        fill(&mut world, &mut writer, 1);
        for idler in &mut idlers {
            idler.run(&mut world);
            let lines = idler.drain();
            assert_eq!(lines, [format!("* {} EXISTS", count + i + 1)]);
        }
    }
    let per_us = start.elapsed().as_micros() / deliveries.max(1) as u128;
    println!("{count} messages, {} idlers: {per_us} us per delivery", idlers.len());
}

/// A mix of small selected-state commands in one session, for counting instructions and allocations per
/// command under callgrind (`SKUA_PERF_ROUNDS` at two values; each round is 7 commands).
#[test]
#[ignore = "benchmark; run explicitly"]
fn small_command_mix() {
    let mut world = World::new();
    let mut client = Client::new();
    client.login(&mut world);
    let count = 1_000;
    fill(&mut world, &mut client, count);
    tagged(&client.command(&mut world, "s SELECT INBOX"), "s OK");
    let rounds = env_number("SKUA_PERF_ROUNDS", 500);
    let start = Instant::now();
    for i in 0..rounds {
        let uid = 1 + (i * 7) % count;
        client.command(&mut world, &format!("f UID FETCH {uid} (FLAGS UID RFC822.SIZE)"));
        let low = uid.min(count - 5);
        client.command(&mut world, &format!("g FETCH {}:{} (FLAGS)", low, low + 5));
        client.command(&mut world, &format!("t UID STORE {uid} +FLAGS (\\Flagged)"));
        client.command(&mut world, "n NOOP");
        client.command(&mut world, &format!("o UID STORE {uid} -FLAGS.SILENT (\\Flagged)"));
        client.command(&mut world, &format!("h UID FETCH {uid} (FLAGS BODY.PEEK[HEADER])"));
        client.command(&mut world, "m NOOP");
    }
    let per_us = start.elapsed().as_micros() / rounds.max(1) as u128;
    println!("{count} messages: {per_us} us per round of 7 commands");
}
