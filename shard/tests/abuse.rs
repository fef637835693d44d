//! Issue 7, defects 2, 6 and 7, against the whole runtime on loopback (two shards unless
//! said otherwise):
//!
//! - defect 6: one source could hold every connection (no per-source cap), and IMAP and LMTP
//!   shared one budget, so an IMAP flood kept the MTA out; connections sending a byte every
//!   10 s were never dropped (only a per-read timeout);
//! - defect 2: the pre-login timeout was per read, so a connection could stay logged out for
//!   ever by sending a byte now and then;
//! - defect 7: the login brake was per shard and per attempt (150 parallel connections made
//!   15 guesses/s), and a success from a source cleared its failures against every user.
//!
//! Invariants: a source holds at most `connections_per_source_max` connections across every
//! shard, and a second source is unaffected; LMTP is greeted while IMAP is at its cap; a
//! command or a logged-out session past its deadline is ended with a `BYE` / `421` naming
//! it; parallel guesses from one source take turns (most are refused unchecked); a success
//! for one user does not clear failures against another. No assertion on time: the tests
//! count answers, and deadlines are short so waits are short.

use std::net::{IpAddr, Ipv4Addr};
use std::thread;
use std::time::{Duration, Instant};

mod support;

use support::{Client, Server, init_logging};

const SECOND_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Retries `attempt` every 20 ms for up to 20 s (a closed connection gives its place back
/// a moment after the client sees the close); true once it succeeded.
fn eventually(mut attempt: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if attempt() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn one_source_is_capped_across_shards_and_another_source_is_not() {
    init_logging();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_with(dir.path(), |config| config.connections_per_source_max = 3);
    // Three from 127.0.0.1, spread over both shards by the kernel: a per-shard count would
    // allow six.
    let mut held = Vec::new();
    assert!(eventually(|| {
        // The start-up probe's connection may not have been closed on the server yet.
        held = (0..3).map(|_| Client::connect(server.imap)).collect();
        held.iter_mut().all(|client| client.line().starts_with("* OK"))
    }));
    for _ in 0..4 {
        let mut refused = Client::connect(server.imap);
        assert_eq!(
            refused.line(),
            "* BYE [LIMIT] Too many connections from your address; try again later\r\n"
        );
        assert_eq!(refused.line(), "", "closed");
    }
    let mut lmtp = Client::connect(server.lmtp);
    assert!(lmtp.line().starts_with("421 4.7.0 Too many connections from your address"));
    // Another address is its own source.
    let mut other = Client::connect_from(SECOND_SOURCE, server.imap);
    assert!(other.line().starts_with("* OK"), "a second source is greeted");
    let mut other_lmtp = Client::connect_from(SECOND_SOURCE, server.lmtp);
    assert!(other_lmtp.line().starts_with("220"), "and may deliver");
    // A closed connection gives its place back.
    drop(held.pop());
    assert!(eventually(|| Client::connect(server.imap).line().starts_with("* OK")));
    server.stop().expect("clean shutdown");
}

#[test]
fn lmtp_is_greeted_while_imap_is_at_its_cap() {
    init_logging();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_with(dir.path(), |config| {
        config.shards = 1;
        config.connections_per_shard_max = 4;
        config.lmtp_connections_per_shard_max = 2;
    });
    // IMAP may use 4 - 2 = 2 of the shard's connections.
    let mut imap = Vec::new();
    assert!(eventually(|| {
        // The start-up probe's connection may not have been closed on the server yet.
        imap.clear();
        let refused = loop {
            let mut client = Client::connect(server.imap);
            let line = client.line();
            if !line.starts_with("* OK") {
                break line;
            }
            imap.push(client);
            assert!(imap.len() <= 4, "IMAP took LMTP's share");
        };
        assert_eq!(refused, "* BYE [LIMIT] Too many connections; try again later\r\n");
        imap.len() == 2
    }));
    let mut first = Client::connect(server.lmtp);
    assert!(first.line().starts_with("220"), "LMTP greeted while IMAP is full");
    let mut second = Client::connect(server.lmtp);
    assert!(second.line().starts_with("220"));
    let mut third = Client::connect(server.lmtp);
    assert!(third.line().starts_with("421 4.7.0 Too many connections"), "LMTP has its own cap");
    server.stop().expect("clean shutdown");
}

/// Sends `bytes` one at a time, `pause` apart, then keeps sending `filler` bytes until the
/// server closes; returns the thread.
fn trickle(client: &Client, bytes: &'static [u8], pause: Duration) -> thread::JoinHandle<()> {
    let mut writer = client.writer.try_clone().expect("clone");
    thread::spawn(move || {
        use std::io::Write;
        for byte in bytes.iter().chain(std::iter::repeat(&b'x')).take(10_000) {
            if writer.write_all(&[*byte]).is_err() {
                return;
            }
            thread::sleep(pause);
        }
    })
}

#[test]
fn a_command_trickling_in_is_ended_at_the_command_deadline() {
    init_logging();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_with(dir.path(), |config| {
        config.command_deadline = Duration::from_millis(600);
    });
    let mut slow = server.login("alice", "alice-pw");
    // A byte every 50 ms: far inside the per-read timeout (30 min), so only the command
    // deadline can end it.
    let sender = trickle(&slow, b"a2 SEARCH TEXT ", Duration::from_millis(50));
    assert_eq!(slow.line(), "* BYE Autologout; command took too long to arrive\r\n");
    assert_eq!(slow.line(), "", "closed after BYE");
    sender.join().expect("sender");
    // Whole commands are never cut, however long the session.
    let mut steady = server.login("alice", "alice-pw");
    for tag in 0..12 {
        thread::sleep(Duration::from_millis(100));
        steady.send(&format!("n{tag} NOOP\r\n"));
        let lines = steady.until(&format!("n{tag} "));
        assert!(lines.last().expect("tagged").contains("OK"), "{lines:?}");
    }

    let mut lmtp = Client::connect(server.lmtp);
    assert!(lmtp.line().starts_with("220"));
    lmtp.send("LHLO test.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<alice@localhost>\r\n");
    lmtp.until("250 ");
    assert!(lmtp.line().starts_with("250"));
    assert!(lmtp.line().starts_with("250"));
    lmtp.send("DATA\r\n");
    assert!(lmtp.line().starts_with("354"));
    let sender = trickle(&lmtp, b"Subject: slow\r\n\r\n", Duration::from_millis(50));
    assert_eq!(lmtp.line(), "421 4.4.2 Command took too long, closing connection\r\n");
    sender.join().expect("sender");
    server.stop().expect("clean shutdown");
}

#[test]
fn a_session_that_never_logs_in_is_ended_at_the_login_deadline() {
    init_logging();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_with(dir.path(), |config| {
        config.login_deadline = Duration::from_millis(800);
    });
    let mut lingering = Client::connect(server.imap);
    assert!(lingering.line().starts_with("* OK"));
    // Whole commands, well inside the per-read timeout (60 s), until the server says BYE.
    let mut answered = 0;
    let bye = loop {
        if !lingering.try_send(&format!("c{answered} NOOP\r\n")) {
            panic!("closed without BYE after {answered} NOOPs");
        }
        let line = lingering.line();
        if line.starts_with("* BYE") {
            break line;
        }
        assert!(line.starts_with(&format!("c{answered} OK")), "{line}");
        answered += 1;
        thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(bye, "* BYE Autologout; no login within the time allowed\r\n");
    assert!(answered > 0, "commands were served until the deadline");
    // A login in time is not affected: the deadline ends at login.
    let mut prompt = server.login("frank", "frank-pw");
    thread::sleep(Duration::from_millis(1200));
    prompt.send("a2 NOOP\r\n");
    assert!(prompt.until("a2 ").last().expect("tagged").starts_with("a2 OK"));
    server.stop().expect("clean shutdown");
}

/// One wrong LOGIN per connection, `count` at once from 127.0.0.1: the tagged answers.
fn parallel_guesses(server: &Server, user: &'static str, count: usize) -> Vec<String> {
    let imap = server.imap;
    let guessers: Vec<_> = (0..count)
        .map(|i| {
            thread::spawn(move || {
                let mut client = Client::connect(imap);
                assert!(client.line().starts_with("* OK"));
                client.send(&format!("g LOGIN {user} guess{i}\r\n"));
                client.until("g ").pop().expect("tagged")
            })
        })
        .collect();
    guessers.into_iter().map(|guesser| guesser.join().expect("guesser")).collect()
}

fn count(answers: &[String], code: &str) -> usize {
    answers.iter().filter(|answer| answer.contains(code)).count()
}

#[test]
fn parallel_guesses_from_one_source_take_turns() {
    init_logging();
    let dir = tempfile::tempdir().expect("temp dir");
    // Short delays so the queue (64 delays' worth of turns at most) empties in ~3 s.
    let server = Server::start_with(dir.path(), |config| {
        config.auth_failure_delay = Duration::from_millis(50);
    });
    let answers = parallel_guesses(&server, "alice", 16);
    let checked = count(&answers, "[AUTHENTICATIONFAILED]");
    let refused = count(&answers, "[UNAVAILABLE]");
    assert_eq!(checked + refused, 16, "{answers:?}");
    // Four at once, then one per turn (turns 50, 100, 200, 400, 800, 800, 800 ms apart).
    assert!(checked <= 11, "{checked} guesses checked: {answers:?}");
    assert!(refused >= 5, "{answers:?}");
    // The right password from a second source is not held up by the first one's queue.
    let mut honest = Client::connect_from(SECOND_SOURCE, server.imap);
    assert!(honest.line().starts_with("* OK"));
    honest.send("a1 LOGIN alice alice-pw\r\n");
    assert!(honest.until("a1 ").last().expect("tagged").starts_with("a1 OK"));
    server.stop().expect("clean shutdown");
}

#[test]
fn a_success_for_one_user_does_not_clear_failures_against_another() {
    init_logging();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_with(dir.path(), |config| {
        config.auth_failure_delay = Duration::from_millis(50);
    });
    // Five failures against frank, one after the other.
    let mut guesser = Client::connect(server.imap);
    assert!(guesser.line().starts_with("* OK"));
    for i in 0..5 {
        guesser.send(&format!("f{i} LOGIN frank wrong{i}\r\n"));
        let answer = guesser.until(&format!("f{i} ")).pop().expect("tagged");
        if answer.contains("[UNAVAILABLE]") || answer.starts_with("* BYE") {
            break;
        }
        assert!(answer.contains("[AUTHENTICATIONFAILED]"), "{answer}");
        if i == 2 {
            // The session allows three failures; go on with a fresh connection.
            guesser = Client::connect(server.imap);
            assert!(guesser.line().starts_with("* OK"));
        }
    }
    // The guesser logs in to its own account from the same address...
    let own = server.login("alice", "alice-pw");
    drop(own);
    // ...and guesses on in parallel. Had the success cleared the source, four would be
    // checked at once and seven more queued; with frank's failures kept, every check waits
    // a full delay (800 ms) after the previous one.
    let answers = parallel_guesses(&server, "frank", 12);
    let checked = count(&answers, "[AUTHENTICATIONFAILED]");
    assert_eq!(checked + count(&answers, "[UNAVAILABLE]"), 12, "{answers:?}");
    assert!(checked <= 5, "{checked} guesses checked after the success: {answers:?}");
    server.stop().expect("clean shutdown");
}

#[test]
fn a_user_has_at_most_its_cap_of_sessions() {
    init_logging();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_with(dir.path(), |config| config.connections_per_user_max = 2);
    let first = server.login("ivan", "ivan-pw");
    let _second = server.login("IVAN", "ivan-pw");
    let mut third = Client::connect(server.imap);
    assert!(third.line().starts_with("* OK"));
    third.send("a1 LOGIN ivan ivan-pw\r\n");
    let answer = third.until("a1 ").pop().expect("tagged");
    assert!(answer.starts_with("a1 NO [LIMIT]"), "{answer}");
    // Another user is not affected, and a session that ends gives its place back.
    let _other = server.login("alice", "alice-pw");
    drop(first);
    let mut attempt = 2;
    assert!(eventually(|| {
        attempt += 1;
        third.send(&format!("a{attempt} LOGIN ivan ivan-pw\r\n"));
        third.until(&format!("a{attempt} ")).pop().expect("tagged").contains(" OK")
    }));
    server.stop().expect("clean shutdown");
}
