//! The cross-shard call on a real server of three shards in this process: LMTP deliveries to
//! many users, accepted on whichever shard the kernel picks, are each served on the recipient's
//! home shard (`call::SERVED` records where), and every copy is stored.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use skua_core::disk::os::OsDisk;
use skua_core::paths::{UserName, user_dir};
use skua_core::store::UserStore;

use crate::call::SERVED;
use crate::placement::ShardId;
use crate::shard::home_of;
use crate::{ServerConfig, ShutdownHandle, run_with_shutdown};

const SHARDS: usize = 3;
const USERS: usize = 24;

fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address")
}

fn connect(address: SocketAddr) -> TcpStream {
    for _ in 0..200 {
        if let Ok(stream) = TcpStream::connect(address) {
            stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
            return stream;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("server did not listen on {address}");
}

/// One LMTP transaction to `users`; the per-recipient replies.
fn deliver(address: SocketAddr, users: &[String]) -> Vec<String> {
    let stream = connect(address);
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    let mut line = || {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read");
        line
    };
    assert!(line().starts_with("220"));
    let mut script = String::from("LHLO test\r\nMAIL FROM:<s@example.org>\r\n");
    for user in users {
        script.push_str(&format!("RCPT TO:<{user}@localhost>\r\n"));
    }
    script.push_str("DATA\r\n");
    writer.write_all(script.as_bytes()).expect("write");
    while !line().starts_with("250 ") {}
    for _ in 0..=users.len() {
        assert!(line().starts_with("250"), "MAIL and RCPT accepted");
    }
    assert!(line().starts_with("354"));
    writer.write_all(b"Subject: spread\r\n\r\nto everyone\r\n.\r\n").expect("write");
    users.iter().map(|_| line()).collect()
}

#[test]
fn every_request_is_served_on_the_shard_that_owns_its_user() {
    let dir = tempfile::tempdir().expect("temp dir");
    let users: Vec<String> = (0..USERS).map(|i| format!("spread{i}")).collect();
    let passwd: String = users.iter().map(|u| format!("{u}:{{PLAIN}}pw::::::\n")).collect();
    std::fs::write(dir.path().join("passwd"), passwd).expect("passwd-file");
    let lmtp = free_address();
    let config = ServerConfig {
        data_dir: dir.path().join("data"),
        passwd_path: dir.path().join("passwd"),
        imap_listen: vec![free_address()],
        lmtp_listen: vec![lmtp],
        shards: SHARDS,
        io_memory_bytes: 256 * 1024,
        shutdown_grace: Duration::from_secs(5),
        ..ServerConfig::default()
    };
    let shutdown = ShutdownHandle::new();
    let handle = shutdown.clone();
    let server = std::thread::spawn(move || run_with_shutdown(config, handle));

    // Several connections, so the kernel spreads them over the shards.
    for round in 0..4 {
        let replies = deliver(lmtp, &users);
        assert!(replies.iter().all(|r| r.starts_with("250")), "round {round}: {replies:?}");
    }
    shutdown.shutdown();
    server.join().expect("server thread").expect("clean stop");

    let served: Vec<(String, ShardId)> = SERVED
        .lock()
        .expect("served record")
        .iter()
        .filter(|(name, user, _)| *name == "deliver" && user.starts_with("spread"))
        .map(|(_, user, shard)| (user.clone(), *shard))
        .collect();
    assert_eq!(served.len(), 4 * USERS, "one call per recipient and transaction");
    for (user, shard) in &served {
        assert_eq!(*shard, home_of(user, SHARDS), "{user} served on its home shard");
    }
    let mut shards: Vec<ShardId> = served.iter().map(|(_, shard)| *shard).collect();
    shards.sort_unstable_by_key(|shard| shard.0);
    shards.dedup();
    assert_eq!(shards.len(), SHARDS, "the users live on every shard");
    // Every copy is in its user's store.
    let disk = std::rc::Rc::new(OsDisk::new(&dir.path().join("data")).expect("disk"));
    for user in &users {
        let path = user_dir(&UserName::new(user).expect("name"));
        let store = UserStore::open(disk.clone(), &path).expect("store opens");
        let inbox = store.mailbox_id("INBOX").expect("INBOX");
        assert_eq!(store.mailbox_info(inbox).expect("info").messages, 4, "{user}");
    }
}
