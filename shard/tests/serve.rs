//! The whole runtime on two shards, driven over real sockets with `std::net::TcpStream`:
//! IMAP login (with hand-off to the user's home shard), LMTP delivery to users on both shards,
//! IDLE wake-up by a delivery, and a graceful shutdown through a [`ShutdownHandle`].

use std::time::{Duration, Instant};

use skua_shard::{ServerConfig, ShutdownHandle, run_with_shutdown, shard_for};

mod support;

use support::{Client, Server, deliver, init_logging};

#[test]
fn two_shards_login_deliver_idle_and_shut_down() {
    init_logging();
    assert_eq!(shard_for("alice", 2).0, 0, "alice lives on shard 0");
    assert_eq!(shard_for("frank", 2).0, 1, "frank lives on shard 1");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path());

    // Several logins, so the kernel's spread makes some connections change shard.
    for _ in 0..4 {
        for (user, password) in [("alice", "alice-pw"), ("frank", "frank-pw")] {
            let mut client = server.login(user, password);
            client.send("a2 LOGOUT\r\n");
            assert!(client.until("a2 ").last().expect("tagged").starts_with("a2 OK"));
        }
    }
    let mut wrong = Client::connect(server.imap);
    wrong.line();
    wrong.send("a1 LOGIN alice nope\r\n");
    assert!(wrong.until("a1 ").last().expect("tagged").starts_with("a1 NO"));

    // frank idles; a delivery to alice and frank wakes him.
    let mut idler = server.login("frank", "frank-pw");
    idler.send("a2 SELECT INBOX\r\n");
    assert!(idler.until("a2 ").last().expect("tagged").starts_with("a2 OK"));
    idler.send("a3 IDLE\r\n");
    assert!(idler.line().starts_with('+'));
    let replies = deliver(&server, &["alice@localhost", "frank@localhost"], "hello both");
    assert_eq!(replies.len(), 2);
    for reply in &replies {
        assert!(reply.starts_with("250"), "{replies:?}");
    }
    assert_eq!(idler.line(), "* 1 EXISTS\r\n");

    let mut reader = server.login("alice", "alice-pw");
    reader.send("a2 SELECT INBOX\r\n");
    let selected = reader.until("a2 ");
    assert!(selected.iter().any(|l| l == "* 1 EXISTS\r\n"), "{selected:?}");
    reader.send("a3 FETCH 1 BODY[]\r\n");
    let fetched = reader.until("a3 ").concat();
    assert!(fetched.contains("hello both"), "{fetched}");

    // Shutdown: the idler hears BYE; run returns Ok.
    let result = server.stop();
    let bye = idler.until("* BYE");
    assert!(bye.last().expect("bye").contains("shutting down"), "{bye:?}");
    result.expect("clean shutdown");
}

#[test]
fn idle_connections_time_out_and_shutdown_cuts_lmtp_between_transactions() {
    init_logging();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_with(dir.path(), |config| {
        config.timeout_before_login = Duration::from_millis(300);
    });
    let mut silent = Client::connect(server.imap);
    assert!(silent.line().starts_with("* OK"));
    let started = Instant::now();
    assert_eq!(silent.line(), "* BYE Autologout; idle for too long\r\n");
    assert!(started.elapsed() >= Duration::from_millis(250), "{:?}", started.elapsed());
    assert_eq!(silent.line(), "", "closed after BYE");

    let mut lmtp = Client::connect(server.lmtp);
    assert!(lmtp.line().starts_with("220"));
    lmtp.send("LHLO test.example\r\n");
    lmtp.until("250 ");
    server.stop().expect("clean shutdown");
    assert!(lmtp.line().starts_with("421 4.3.2"), "LMTP clients hear 421 at shutdown");
}

#[test]
fn a_busy_port_is_reported_with_its_address() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A listener without SO_REUSEPORT: the shards cannot share its port.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("addr");
    let config = ServerConfig {
        data_dir: dir.path().join("data"),
        passwd_path: dir.path().join("passwd"),
        imap_listen: vec![address],
        lmtp_listen: vec![],
        shards: 2,
        io_memory_bytes: 256 * 1024,
        ..ServerConfig::default()
    };
    let error = run_with_shutdown(config, ShutdownHandle::new()).expect_err("port is taken");
    let text = error.to_string();
    assert!(text.contains(&address.to_string()) && text.contains("IMAP"), "{text}");
}

#[test]
fn a_full_shard_turns_new_connections_away_politely() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_with(dir.path(), |config| config.connections_per_shard_max = 0);
    let mut imap = Client::connect(server.imap);
    assert_eq!(imap.line(), "* BYE [LIMIT] Too many connections; try again later\r\n");
    assert_eq!(imap.line(), "", "closed");
    let mut lmtp = Client::connect(server.lmtp);
    assert!(lmtp.line().starts_with("421 4.7.0"));
    server.stop().expect("clean shutdown");
}

#[test]
fn a_large_message_round_trips_through_lmtp_and_imap() {
    init_logging();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path());
    // 2 MiB of numbered lines: many reads on the way in, a spool chunk on the way out.
    let body: String =
        (0..40_000).map(|i| format!("line {i:08} of a large message ......\r\n")).collect();
    let replies = deliver(&server, &["ivan@localhost"], body.trim_end_matches("\r\n"));
    assert!(replies[0].starts_with("250"), "{replies:?}");
    let mut reader = server.login("ivan", "ivan-pw");
    reader.send("a2 SELECT INBOX\r\n");
    reader.until("a2 ");
    reader.send("a3 FETCH 1 BODY[TEXT]\r\n");
    let header = reader.line();
    let size: usize = header
        .rsplit_once('{')
        .and_then(|(_, n)| n.trim_end().strip_suffix('}'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a literal: {header}"));
    let mut literal = vec![0; size];
    std::io::Read::read_exact(&mut reader.reader, &mut literal).expect("literal");
    assert_eq!(String::from_utf8(literal).expect("utf-8"), body);
    assert!(reader.until("a3 ").last().expect("tagged").starts_with("a3 OK"));
    server.stop().expect("clean shutdown");
}
