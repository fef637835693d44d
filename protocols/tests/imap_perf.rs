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
