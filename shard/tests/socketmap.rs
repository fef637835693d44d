//! The socketmap service (`[socketmap] listen`, `shard/src/socketmap.rs`) on two shards over
//! real sockets, spoken the way Postfix's socketmap client speaks it (one netstring per
//! request and per reply, several requests per connection): recipients resolved as LMTP
//! `RCPT` resolves them, quota answered by the user's home shard (many connections, spread
//! by the kernel over both shards), `PERM` with the connection kept for bad content and
//! closed for broken framing, and an idle connection closed at shutdown.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use skua_core::store::QuotaLimits;

mod support;

use support::{Server, deliver, free_port, init_logging};

/// One socketmap connection.
struct MapClient(TcpStream);

impl MapClient {
    fn connect(address: SocketAddr) -> MapClient {
        let stream = TcpStream::connect(address).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        MapClient(stream)
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).expect("send");
    }

    /// One request, one reply (the reply's string, without the netstring around it).
    fn ask(&mut self, request: &str) -> String {
        self.send_raw(format!("{}:{request},", request.len()).as_bytes());
        self.reply().expect("a reply")
    }

    /// The next reply, or `None` when the server closed the connection.
    fn reply(&mut self) -> Option<String> {
        let mut length = 0usize;
        let mut byte = [0u8; 1];
        loop {
            if self.0.read(&mut byte).expect("read") == 0 {
                return None;
            }
            match byte[0] {
                b':' => break,
                digit @ b'0'..=b'9' => length = length * 10 + usize::from(digit - b'0'),
                other => panic!("not a netstring length: {other:#x}"),
            }
        }
        let mut body = vec![0; length + 1];
        self.0.read_exact(&mut body).expect("the string and its comma");
        assert_eq!(body.pop(), Some(b','), "netstring ends with a comma");
        Some(String::from_utf8(body).expect("UTF-8"))
    }
}

#[test]
fn lookups_are_answered_like_rcpt_and_quota_comes_from_the_home_shard() {
    init_logging();
    let dir = tempfile::tempdir().expect("temp dir");
    let map = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let server = Server::start_with(dir.path(), |config| {
        config.socketmap_listen = vec![map];
        // One message each: frank (shard 1) fills his with one delivery.
        config.quota_default = QuotaLimits { messages: Some(1), ..QuotaLimits::UNLIMITED };
    });
    let replies = deliver(&server, &["frank@localhost"], "fills the mailbox");
    assert!(replies[0].starts_with("250"), "{replies:?}");

    // Twelve connections: the kernel spreads them over the shards (SO_REUSEPORT hashes each
    // connection), so each user's quota is almost surely asked both from its own shard and
    // across from the other (all twelve on one shard: a chance of 1 in 2048).
    for _ in 0..12 {
        let mut client = MapClient::connect(map);
        assert_eq!(client.ask("user frank+lists@localhost"), "OK frank");
        assert_eq!(client.ask("user ALICE@localhost"), "OK alice");
        assert_eq!(client.ask("user nobody@localhost"), "NOTFOUND ");
        assert_eq!(client.ask("quota frank@localhost"), "OK 552 5.2.2 Mailbox over quota");
        assert_eq!(client.ask("quota frank+x@localhost"), "OK 552 5.2.2 Mailbox over quota");
        assert_eq!(client.ask("quota alice@localhost"), "NOTFOUND ", "room for one");
        assert_eq!(client.ask("quota nobody@localhost"), "NOTFOUND ");
    }
    server.stop().expect("clean shutdown");
}

#[test]
fn bad_requests_get_perm_and_broken_framing_closes_the_connection() {
    init_logging();
    let dir = tempfile::tempdir().expect("temp dir");
    let map = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let server = Server::start_with(dir.path(), |config| config.socketmap_listen = vec![map]);

    let mut client = MapClient::connect(map);
    assert_eq!(client.ask("virtual alice@localhost"), "PERM unknown map name");
    assert_eq!(client.ask("user"), "PERM expected \"name key\"");
    // Two requests in one write: two replies, in order.
    client.send_raw(b"19:user ivan@localhost,20:quota ivan@localhost,");
    assert_eq!(client.reply().as_deref(), Some("OK ivan"));
    assert_eq!(client.reply().as_deref(), Some("NOTFOUND "));
    client.send_raw(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(client.reply().as_deref(), Some("PERM netstring length is not a decimal number"));
    assert_eq!(client.reply(), None, "closed after broken framing");

    let mut too_long = MapClient::connect(map);
    too_long.send_raw(b"99999:");
    assert_eq!(too_long.reply().as_deref(), Some("PERM request longer than 4096 bytes"));
    assert_eq!(too_long.reply(), None);

    // An idle connection (Postfix keeps them open) does not hold the shutdown up.
    let mut idle = MapClient::connect(map);
    assert_eq!(idle.ask("user alice@localhost"), "OK alice");
    server.stop().expect("clean shutdown");
    assert_eq!(idle.reply(), None, "closed at shutdown");
}
