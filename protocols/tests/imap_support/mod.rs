//! Drives real `ImapSession`s against a real `UserStore` on a temporary directory, with no
//! socket and no executor: the test plays the shard (credentials, group commit) and the client.
//!
//! Transcripts are `C:`/`S:` lines (`C2:`/`S2:` for a second session on the same store). A `C:`
//! line is sent with CRLF; `S:` lines are the expected output lines, in order. An `S:` line
//! ending in `...` matches any line starting with what comes before; a line `S: *...` skips any
//! number of untagged lines up to the next expected one. `...` inside a line matches any text.
//! `#` lines are comments.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use skua_core::disk::os::OsDisk;
use skua_core::disk::{Disk, Flush};
use skua_core::store::UserStore;
use skua_protocols::imap::session::{
    AuthOutcome, AuthRequest, ElsewhereFailure, ImapConfig, ImapSession, Step,
};
use skua_protocols::sasl::{Context, HostAnswer};

/// The only password the test "shard" accepts (for any user).
pub const PASSWORD: &str = "secret";

/// A store on a temporary directory.
pub struct World {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
    /// The disk under the store.
    pub disk: Rc<OsDisk>,
    /// The user's store.
    pub store: UserStore<OsDisk>,
    /// Other users' stores (shared folders), by canonical name, opened on first use; only the
    /// names in [`OTHER_USERS`] exist.
    pub others: Vec<(String, UserStore<OsDisk>)>,
}

/// The users besides the session's own whose stores a shared-folder test may reach.
pub const OTHER_USERS: [&str; 2] = ["bob", "public"];

impl World {
    /// A fresh, empty store.
    pub fn new() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = Rc::new(OsDisk::new(dir.path()).expect("disk"));
        let store = UserStore::open(disk.clone(), Path::new("alice")).expect("store");
        World { dir, disk, store, others: Vec::new() }
    }

    /// The store of user `name` (case-insensitive, as the passwd-file matches), if such a user
    /// exists: what the shard's user look-up and the owner's registry give.
    pub fn other(&mut self, name: &str) -> Option<(&str, &mut UserStore<OsDisk>)> {
        let canonical = OTHER_USERS.into_iter().find(|u| u.eq_ignore_ascii_case(name))?;
        if !self.others.iter().any(|(n, _)| n == canonical) {
            let store = UserStore::open(self.disk.clone(), Path::new(canonical)).expect("store");
            self.others.push((canonical.to_owned(), store));
        }
        let (name, store) = self.others.iter_mut().find(|(n, _)| n == canonical)?;
        Some((name.as_str(), store))
    }

    /// Closes the store and opens it again, as a restart would.
    pub fn reopen(&mut self) {
        self.flush();
        let disk = Rc::new(OsDisk::new(self.dir.path()).expect("disk"));
        self.store = UserStore::open(disk.clone(), Path::new("alice")).expect("store");
        self.disk = disk;
    }

    /// Makes everything written so far durable, as the shard's group commit would; false when
    /// nothing had been written (every ticket is then durable already).
    pub fn flush(&self) -> bool {
        let Some(flush) = self.disk.flush_begin() else {
            return false;
        };
        let epoch = flush.epoch();
        flush.run().expect("flush");
        self.disk.flush_end(epoch);
        true
    }
}

/// One client connection.
pub struct Client {
    /// The session under test.
    pub session: ImapSession,
    /// Output lines not yet checked.
    pub lines: VecDeque<Vec<u8>>,
    /// Partial output line.
    partial: Vec<u8>,
    /// Every byte written, for debugging.
    pub transcript: Vec<u8>,
    /// Every byte the client sent.
    pub sent: Vec<u8>,
    /// The session asked to close.
    pub closed: bool,
    /// The session is in IDLE.
    pub idle: bool,
    /// Spool chunks seen (to check bodies are not copied).
    pub spool_chunks: usize,
    /// `Step::Yield`s seen (a long command paused between slices).
    pub yields: usize,
    /// `Step::Write`s seen, and the largest one in bytes: what a client that stopped reading
    /// would leave the session holding.
    pub writes: usize,
    /// See `writes`.
    pub largest_write: usize,
    /// `Step::StartTls` seen: the test stands in for the handshake by calling `tls_started`.
    pub tls_handshakes: usize,
    /// `Step::Compress` seen: the transport would compress from here on; the transcript goes
    /// on in plaintext (what the session sees either way).
    pub compressions: usize,
    /// `writes` when the first `Step::Compress` came.
    compressed_after_writes: Option<usize>,
}

impl Client {
    /// A new connection with the default config; the greeting is already read.
    pub fn new() -> Client {
        Client::with_config(ImapConfig::new("test.example"))
    }

    /// A new connection with `config`.
    pub fn with_config(config: ImapConfig) -> Client {
        let session = ImapSession::new(Arc::new(config));
        let greeting = session.greeting();
        let mut client = Client {
            session,
            lines: VecDeque::new(),
            partial: Vec::new(),
            transcript: Vec::new(),
            sent: Vec::new(),
            closed: false,
            idle: false,
            spool_chunks: 0,
            yields: 0,
            writes: 0,
            largest_write: 0,
            tls_handshakes: 0,
            compressions: 0,
            compressed_after_writes: None,
        };
        client.take_output(&greeting);
        client
    }

    fn take_output(&mut self, bytes: &[u8]) {
        self.transcript.extend_from_slice(bytes);
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = self.partial.drain(..end + 2).collect();
            self.lines.push_back(line[..line.len() - 2].to_vec());
        }
    }

    /// Sends bytes and runs the session until it needs input.
    pub fn send(&mut self, world: &mut World, bytes: &[u8]) {
        self.sent.extend_from_slice(bytes);
        self.session.feed(bytes);
        self.run(world);
    }

    /// Runs the session until it waits (for input, or in IDLE for a change).
    pub fn run(&mut self, world: &mut World) {
        // Whose store the session asked for last (`Step::Elsewhere`): `None` is its own.
        let mut owner: Option<String> = None;
        for _ in 0..100_000 {
            let step = match owner.as_deref() {
                None => {
                    let store = self.session.is_authenticated().then_some(&mut world.store);
                    self.session.next(store)
                }
                Some(name) => {
                    let (name, store) = world.other(name).expect("checked at Elsewhere");
                    let name = name.to_owned();
                    self.session.next_on(Some(&name), Some(store))
                }
            };
            match step {
                Step::Elsewhere { owner: None } => owner = None,
                Step::Elsewhere { owner: Some(name) } => match world.other(&name) {
                    Some((canonical, _)) => owner = Some(canonical.to_owned()),
                    None => {
                        self.session.elsewhere_failed(ElsewhereFailure::NoSuchUser);
                        owner = None;
                    }
                },
                Step::NeedInput => {
                    self.idle = false;
                    return;
                }
                Step::Idle => {
                    self.idle = true;
                    return;
                }
                Step::Close => {
                    self.closed = true;
                    return;
                }
                Step::Yield => self.yields += 1,
                Step::Compress => {
                    self.compressions += 1;
                    self.compressed_after_writes.get_or_insert(self.writes);
                }
                Step::StartTls => {
                    // What the shard does after a successful handshake; input sent "inside"
                    // TLS arrives by later `send`s.
                    self.tls_handshakes += 1;
                    self.session.tls_started();
                    self.idle = false;
                    return;
                }
                Step::Write { chunks, durable } => {
                    if let Some(epoch) = durable
                        && world.flush()
                    {
                        assert!(world.disk.epoch_durable() >= epoch, "ticket not durable");
                    }
                    self.writes += 1;
                    let bytes: usize = chunks.iter().map(|c| c.as_bytes().len()).sum();
                    self.largest_write = self.largest_write.max(bytes);
                    for chunk in chunks {
                        if matches!(chunk, skua_protocols::imap::session::OutChunk::Spool(_)) {
                            self.spool_chunks += 1;
                        }
                        // What the shard does once the bytes are in memory.
                        self.take_output(chunk.without_nul().as_bytes());
                    }
                }
                Step::Authenticate(request) => self.authenticate(request),
            }
        }
        panic!("session did not settle");
    }

    /// Answers a login request the way the shard does, for a password check that accepts
    /// [`PASSWORD`] for any user (and nothing else).
    fn authenticate(&mut self, request: AuthRequest) {
        match request {
            AuthRequest::Context { .. } => self.session.auth_context(Context::new(
                [1; 18],
                skua_core::users::Secret::new(b"stand-in secret".to_vec()),
            )),
            AuthRequest::Password { authcid, password, .. } => {
                self.session.auth_answer(if password.expose() == PASSWORD {
                    HostAnswer::Accepted { user: authcid }
                } else {
                    HostAnswer::Refused("bad credentials".into())
                });
            }
            AuthRequest::ScramCredentials { .. } => {
                self.session.auth_answer(HostAnswer::ScramKeys(None));
            }
            AuthRequest::Token { .. } | AuthRequest::External { .. } => {
                self.session.auth_answer(HostAnswer::Refused("no policy".into()));
            }
            AuthRequest::LogIn { user, .. } => {
                self.session.set_user(&user);
                self.session.auth_done(AuthOutcome::Success);
            }
            AuthRequest::Failed { .. } => self.session.auth_done(AuthOutcome::Failure),
        }
    }

    /// Sends one command line (CRLF added) and returns every output line it produced.
    pub fn command(&mut self, world: &mut World, line: &str) -> Vec<String> {
        self.lines.clear();
        self.send(world, format!("{line}\r\n").as_bytes());
        self.drain()
    }

    /// How many writes came before the first `Step::Compress`, if one came.
    pub fn writes_before_compress(&self) -> Option<usize> {
        self.compressed_after_writes
    }

    /// Takes every unchecked output line.
    pub fn drain(&mut self) -> Vec<String> {
        self.lines.drain(..).map(|l| String::from_utf8_lossy(&l).into_owned()).collect()
    }

    /// Logs in as alice.
    pub fn login(&mut self, world: &mut World) {
        let reply = self.command(world, &format!("l1 LOGIN alice {PASSWORD}"));
        assert!(reply.last().is_some_and(|l| l.starts_with("l1 OK")), "{reply:?}");
    }
}

/// Asserts that `lines` ends with a tagged line starting `prefix` and returns it.
pub fn tagged<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    let last = lines.last().map_or("", String::as_str);
    assert!(last.starts_with(prefix), "expected {prefix:?}, got {lines:#?}");
    last
}

/// What one session of a transcript sent and received, byte for byte.
pub struct Exchange {
    /// The client's bytes.
    pub sent: Vec<u8>,
    /// The server's bytes, greeting included.
    pub received: Vec<u8>,
}

/// Runs a transcript (see the module docs) against fresh sessions on one fresh store, and
/// returns what each session sent and received.
pub fn run_transcript(name: &str, text: &str) -> Vec<Exchange> {
    let mut world = World::new();
    let mut clients: Vec<Client> = Vec::new();
    for (number, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (who, rest) = line.split_once(':').unwrap_or_else(|| {
            panic!("{name}:{}: expected C: or S: line, got {line:?}", number + 1)
        });
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        let (kind, index) = who.split_at(1);
        let index: usize = if index.is_empty() { 0 } else { index.parse::<usize>().unwrap() - 1 };
        while clients.len() <= index {
            let mut client = Client::new();
            // A transcript that opens a session with a C: line does not check the greeting.
            if kind == "C" {
                client.lines.clear();
            }
            clients.push(client);
        }
        match kind {
            "C" => {
                let client = &mut clients[index];
                client.send(&mut world, format!("{rest}\r\n").as_bytes());
                // Other sessions in IDLE are woken as the shard would after a store change.
                for (i, other) in clients.iter_mut().enumerate() {
                    if i != index && other.idle {
                        other.run(&mut world);
                    }
                }
            }
            "S" => expect_line(&mut clients[index], &mut world, rest, name, number + 1),
            _ => panic!("{name}:{}: unknown line kind {who:?}", number + 1),
        }
    }
    for (i, client) in clients.iter_mut().enumerate() {
        assert!(
            client.lines.is_empty(),
            "{name}: session {} has unexpected output: {:#?}",
            i + 1,
            client.drain()
        );
    }
    clients.into_iter().map(|c| Exchange { sent: c.sent, received: c.transcript }).collect()
}

fn expect_line(client: &mut Client, world: &mut World, expected: &str, name: &str, line: usize) {
    if client.lines.is_empty() && client.idle {
        client.run(world);
    }
    if expected == "*..." {
        while client.lines.front().is_some_and(|l| l.starts_with(b"* ")) {
            client.lines.pop_front();
        }
        return;
    }
    let Some(actual) = client.lines.pop_front() else {
        panic!(
            "{name}:{line}: expected {expected:?}, got nothing; transcript:\n{}",
            String::from_utf8_lossy(&client.transcript)
        );
    };
    let actual = String::from_utf8_lossy(&actual);
    let ok = glob_matches(expected, &actual);
    assert!(
        ok,
        "{name}:{line}: expected {expected:?}\n got {actual:?}; transcript:\n{}",
        String::from_utf8_lossy(&client.transcript)
    );
}

/// True when `actual` matches `pattern`, where each `...` stands for any text.
pub fn glob_matches(pattern: &str, actual: &str) -> bool {
    let parts: Vec<&str> = pattern.split("...").collect();
    let Some((first, rest)) = parts.split_first() else {
        return actual.is_empty();
    };
    let Some(mut remaining) = actual.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return remaining.is_empty();
    };
    for part in middle {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.ends_with(last)
}
