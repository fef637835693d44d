//! The whole runtime on two shards, driven over real sockets with `std::net::TcpStream`:
//! IMAP login (with hand-off to the user's home shard), LMTP delivery to users on both shards,
//! IDLE wake-up by a delivery, and a graceful shutdown through a [`ShutdownHandle`].
#![cfg(feature = "wiring")]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use skua_shard::{ServerConfig, ShutdownHandle, run_with_shutdown, shard_for};

/// Users and where they live among two shards (pinned by the placement test too).
const USERS: [(&str, &str); 3] = [("alice", "alice-pw"), ("frank", "frank-pw"), ("ivan", "ivan-pw")];

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("addr").port()
}

fn wait_for_port(address: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(address).is_err() {
        assert!(Instant::now() < deadline, "server did not listen on {address}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// A line-oriented client.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(address: SocketAddr) -> Client {
        let stream = TcpStream::connect(address).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        Client { reader: BufReader::new(stream.try_clone().expect("clone")), writer: stream }
    }

    fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).expect("send");
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read line");
        line
    }

    /// Lines up to and including the first that starts with `prefix`.
    fn until(&mut self, prefix: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            assert!(!line.is_empty(), "connection closed; got {lines:?}");
            let done = line.starts_with(prefix);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }
}

struct Server {
    imap: SocketAddr,
    lmtp: SocketAddr,
    shutdown: ShutdownHandle,
    thread: Option<thread::JoinHandle<Result<(), skua_shard::ServeError>>>,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let passwd = dir.join("passwd");
        let lines: String =
            USERS.iter().map(|(user, pw)| format!("{user}:{{PLAIN}}{pw}::::::\n")).collect();
        std::fs::write(&passwd, lines).expect("passwd-file");
        let imap = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let lmtp = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let config = ServerConfig {
            data_dir: dir.join("data"),
            passwd_path: passwd,
            imap_listen: vec![imap],
            lmtp_listen: vec![lmtp],
            shards: 2,
            io_memory_bytes: 256 * 1024,
            shutdown_grace: Duration::from_secs(5),
            ..ServerConfig::default()
        };
        let shutdown = ShutdownHandle::new();
        let handle = shutdown.clone();
        let thread = thread::spawn(move || run_with_shutdown(config, handle));
        wait_for_port(imap);
        wait_for_port(lmtp);
        Server { imap, lmtp, shutdown, thread: Some(thread) }
    }

    fn stop(mut self) -> Result<(), skua_shard::ServeError> {
        self.shutdown.shutdown();
        self.thread.take().expect("running").join().expect("server thread")
    }

    fn login(&self, user: &str, password: &str) -> Client {
        let mut client = Client::connect(self.imap);
        assert!(client.line().starts_with("* OK"), "greeting");
        client.send(&format!("a1 LOGIN {user} {password}\r\n"));
        let lines = client.until("a1 ");
        assert!(lines.last().expect("tagged").starts_with("a1 OK"), "{lines:?}");
        client
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.shutdown.shutdown();
            let _ = thread.join();
        }
    }
}

fn deliver(server: &Server, recipients: &[&str], body: &str) -> Vec<String> {
    let mut lmtp = Client::connect(server.lmtp);
    assert!(lmtp.line().starts_with("220"), "LMTP greeting");
    lmtp.send("LHLO test.example\r\n");
    lmtp.until("250 ");
    lmtp.send("MAIL FROM:<sender@example.org>\r\n");
    assert!(lmtp.line().starts_with("250"));
    for rcpt in recipients {
        lmtp.send(&format!("RCPT TO:<{rcpt}>\r\n"));
        assert!(lmtp.line().starts_with("250"), "RCPT {rcpt}");
    }
    lmtp.send("DATA\r\n");
    assert!(lmtp.line().starts_with("354"));
    lmtp.send(&format!("Subject: test\r\nFrom: sender@example.org\r\n\r\n{body}\r\n.\r\n"));
    let replies: Vec<String> = recipients.iter().map(|_| lmtp.line()).collect();
    lmtp.send("QUIT\r\n");
    assert!(lmtp.line().starts_with("221"));
    replies
}

#[test]
fn two_shards_login_deliver_idle_and_shut_down() {
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
