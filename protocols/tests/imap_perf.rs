//! A smoke benchmark of the session's per-command cost on a big mailbox (run with
//! `cargo test --release -p skua-protocols --test imap_perf -- --ignored --nocapture`).
//! It guards against a command costing O(mailbox): the STORE and UID FETCH of one message
//! must stay cheap however many messages the mailbox holds.

mod imap_support;

use std::time::Instant;

use imap_support::{Client, World, tagged};

#[test]
#[ignore = "benchmark; run explicitly"]
fn one_message_commands_on_a_big_mailbox() {
    let mut world = World::new();
    let mut client = Client::new();
    client.login(&mut world);
    let raw = b"From: a@example.org\r\nSubject: s\r\n\r\nbody\r\n";
    let count = 20_000;
    let mut burst = Vec::new();
    for i in 0..count {
        burst.extend_from_slice(format!("a{i} APPEND INBOX {{{}+}}\r\n", raw.len()).as_bytes());
        burst.extend_from_slice(raw);
        burst.extend_from_slice(b"\r\n");
        if i % 500 == 499 {
            client.send(&mut world, &burst);
            client.lines.clear();
            burst.clear();
        }
    }
    tagged(&client.command(&mut world, "s SELECT INBOX"), "s OK");
    let rounds = 2_000;
    let start = Instant::now();
    for i in 0..rounds {
        let uid = 1 + (i * 7) % count;
        client.command(&mut world, &format!("t UID STORE {uid} +FLAGS (\\Seen)"));
    }
    let store_us = start.elapsed().as_micros() / rounds as u128;
    let start = Instant::now();
    for i in 0..rounds {
        let uid = 1 + (i * 13) % count;
        client.command(&mut world, &format!("f UID FETCH {uid} (FLAGS BODY.PEEK[])"));
    }
    let fetch_us = start.elapsed().as_micros() / rounds as u128;
    println!("{count} messages: UID STORE {store_us} us/command, UID FETCH {fetch_us} us/command");
}
