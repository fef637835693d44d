//! The cross-shard call on a real server in this process: LMTP deliveries to many users (three
//! shards), accepted on whichever shard the kernel picks, are each served on the recipient's
//! home shard (`call::SERVED` records where), and every copy is stored; and a command on
//! another user's mailbox (two shards) costs exactly one call to that user's home shard.

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

/// Sends one IMAP command and reads up to its tagged reply.
fn imap(stream: &mut BufReader<TcpStream>, tag: &str, command: &str) -> Vec<String> {
    stream.get_mut().write_all(format!("{tag} {command}\r\n").as_bytes()).expect("write");
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).expect("read");
        assert!(!line.is_empty(), "connection closed after {lines:?}");
        let done = line.starts_with(&format!("{tag} "));
        lines.push(line);
        if done {
            return lines;
        }
    }
}

fn log_in(address: SocketAddr, user: &str) -> BufReader<TcpStream> {
    let mut stream = BufReader::new(connect(address));
    let mut greeting = String::new();
    stream.read_line(&mut greeting).expect("greeting");
    let reply = imap(&mut stream, "l", &format!("LOGIN {user} pw"));
    assert!(reply.last().expect("tagged").starts_with("l OK"), "{reply:?}");
    stream
}

/// Calls served for `user`'s store as shared-folder commands so far.
fn shared_calls(user: &str) -> usize {
    SERVED
        .lock()
        .expect("served")
        .iter()
        .filter(|(n, u, _)| *n == "imap-shared" && u == user)
        .count()
}

#[test]
fn a_command_on_another_users_mailbox_is_one_call_to_the_owners_shard() {
    let shards = 2;
    let owner = "sharer0";
    let reader = (0..)
        .map(|i| format!("reader{i}"))
        .find(|name| home_of(name, shards) != home_of(owner, shards))
        .expect("some name lives on the other shard");
    let reader = reader.as_str();
    let dir = tempfile::tempdir().expect("temp dir");
    let passwd = format!("{owner}:{{PLAIN}}pw::::::\n{reader}:{{PLAIN}}pw::::::\n");
    std::fs::write(dir.path().join("passwd"), passwd).expect("passwd-file");
    let (imap_address, lmtp) = (free_address(), free_address());
    let config = ServerConfig {
        data_dir: dir.path().join("data"),
        passwd_path: dir.path().join("passwd"),
        imap_listen: vec![imap_address],
        lmtp_listen: vec![lmtp],
        shards,
        io_memory_bytes: 256 * 1024,
        shutdown_grace: Duration::from_secs(5),
        ..ServerConfig::default()
    };
    let shutdown = ShutdownHandle::new();
    let handle = shutdown.clone();
    let server = std::thread::spawn(move || run_with_shutdown(config, handle));

    assert!(deliver(lmtp, &[owner.to_owned()])[0].starts_with("250"));
    let mut sharer = log_in(imap_address, owner);
    let reply = imap(&mut sharer, "a", &format!("SETACL INBOX {reader} lr"));
    assert!(reply.last().expect("tagged").starts_with("a OK"), "{reply:?}");

    let mut session = log_in(imap_address, reader);
    let shared = "\"Other Users/sharer0/INBOX\"";
    for (tag, command, calls) in [
        ("b", format!("SELECT {shared}"), 1),
        ("c", "FETCH 1 (FLAGS BODY.PEEK[])".to_owned(), 1),
        ("d", "UID SEARCH ALL".to_owned(), 1),
        ("e", "STATUS INBOX (MESSAGES)".to_owned(), 0),
        ("f", format!("STATUS {shared} (MESSAGES)"), 1),
        ("g", "NOOP".to_owned(), 1),
    ] {
        let before = shared_calls(owner);
        let reply = imap(&mut session, tag, &command);
        assert!(reply.last().expect("tagged").starts_with(&format!("{tag} OK")), "{reply:?}");
        assert_eq!(shared_calls(owner) - before, calls, "{command}: {reply:?}");
    }
    let served_on: Vec<ShardId> = SERVED
        .lock()
        .expect("served")
        .iter()
        .filter(|(n, u, _)| *n == "imap-shared" && u == owner)
        .map(|(_, _, shard)| *shard)
        .collect();
    assert!(served_on.iter().all(|&shard| shard == home_of(owner, shards)));
    drop((session, sharer));
    shutdown.shutdown();
    server.join().expect("server thread").expect("clean stop");
}
