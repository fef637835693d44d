//! Shared by the runtime's integration tests: a server on free loopback ports with a small
//! passwd-file, and a line-oriented client (also one bound to a chosen loopback source
//! address, to be a second source).

#![allow(dead_code, reason = "each test file uses part of the helpers")]

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use skua_shard::{ServerConfig, ShutdownHandle, run_with_shutdown};

/// Users and where they live among two shards (pinned by the placement test too).
pub const USERS: [(&str, &str); 3] =
    [("alice", "alice-pw"), ("frank", "frank-pw"), ("ivan", "ivan-pw")];

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("addr").port()
}

pub fn wait_for_port(address: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(address).is_err() {
        assert!(Instant::now() < deadline, "server did not listen on {address}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// A line-oriented client.
pub struct Client {
    pub reader: BufReader<TcpStream>,
    pub writer: TcpStream,
}

impl Client {
    pub fn connect(address: SocketAddr) -> Client {
        Client::from_stream(TcpStream::connect(address).expect("connect"))
    }

    /// Connects from `source` (any loopback address: all of 127.0.0.0/8 is local).
    pub fn connect_from(source: IpAddr, address: SocketAddr) -> Client {
        let domain = socket2::Domain::for_address(address);
        let socket = socket2::Socket::new(domain, socket2::Type::STREAM, None).expect("socket");
        socket.bind(&SocketAddr::new(source, 0).into()).expect("bind the source address");
        socket.connect(&address.into()).expect("connect");
        Client::from_stream(socket.into())
    }

    fn from_stream(stream: TcpStream) -> Client {
        stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        Client { reader: BufReader::new(stream.try_clone().expect("clone")), writer: stream }
    }

    /// Sends `text` without failing when the server has closed the connection already.
    pub fn try_send(&mut self, text: &str) -> bool {
        self.writer.write_all(text.as_bytes()).is_ok()
    }

    pub fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).expect("send");
    }

    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read line");
        line
    }

    /// Lines up to and including the first that starts with `prefix`.
    pub fn until(&mut self, prefix: &str) -> Vec<String> {
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

pub struct Server {
    pub imap: SocketAddr,
    pub lmtp: SocketAddr,
    pub shutdown: ShutdownHandle,
    thread: Option<thread::JoinHandle<Result<(), skua_shard::ServeError>>>,
}

impl Server {
    pub fn start(dir: &Path) -> Server {
        Server::start_with(dir, |_| {})
    }

    pub fn start_with(dir: &Path, adjust: impl FnOnce(&mut ServerConfig)) -> Server {
        let passwd = dir.join("passwd");
        let lines: String =
            USERS.iter().map(|(user, pw)| format!("{user}:{{PLAIN}}{pw}::::::\n")).collect();
        std::fs::write(&passwd, lines).expect("passwd-file");
        let imap = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let lmtp = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut config = ServerConfig {
            data_dir: dir.join("data"),
            passwd_path: passwd,
            imap_listen: vec![imap],
            lmtp_listen: vec![lmtp],
            shards: 2,
            io_memory_bytes: 256 * 1024,
            shutdown_grace: Duration::from_secs(5),
            detect_stalls: true,
            ..ServerConfig::default()
        };
        adjust(&mut config);
        let shutdown = ShutdownHandle::new();
        let handle = shutdown.clone();
        let thread = thread::spawn(move || run_with_shutdown(config, handle));
        wait_for_port(imap);
        wait_for_port(lmtp);
        Server { imap, lmtp, shutdown, thread: Some(thread) }
    }

    pub fn stop(mut self) -> Result<(), skua_shard::ServeError> {
        self.shutdown.shutdown();
        self.thread.take().expect("running").join().expect("server thread")
    }

    pub fn login(&self, user: &str, password: &str) -> Client {
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

pub fn deliver(server: &Server, recipients: &[&str], body: &str) -> Vec<String> {
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

/// Shows the server's logs when `SKUA_LOG` is set (e.g. `SKUA_LOG=debug`).
pub fn init_logging() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("SKUA_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
}
