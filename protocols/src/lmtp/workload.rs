//! A repeatable LMTP delivery workload without sockets or executors, for instruction counts
//! (`perf/PROFILING.md`, "callgrind"): glommio does not run under valgrind here, so the
//! server itself cannot be counted, but everything a delivery costs above the runtime can:
//! the LMTP session (command parsing, dot-unstuffing, replies), the cache blob
//! (`mime::cache::build`) and the store append (record encoding, CRC-32C, two positioned
//! writes), plus the flush rounds' syscalls on a real disk.
//!
//! Shape of the load, as `skua-bench lmtp --size 4096` makes it: pipelined `MAIL`/`RCPT`/`DATA`
//! with one recipient, a 4 KiB text message with a fresh Message-ID, recipients spread over
//! the users, one flush round every `connections` deliveries (as a shard batches them).
//! Settings come from the environment so the same test binary serves every run:
//! `SKUA_WORKLOAD_DELIVERIES` (default 2000), `SKUA_WORKLOAD_USERS` (100),
//! `SKUA_WORKLOAD_SIZE` (4096), `SKUA_WORKLOAD_BATCH` (4), `SKUA_WORKLOAD_TRACE` (1: write
//! `Received:` and `Delivered-To:`; 0: only `Return-Path:`, to count what they cost).

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use skua_core::disk::os::OsDisk;
use skua_core::disk::{Disk, Flush};
use skua_core::store::UserStore;
use skua_core::types::InternalDate;

use crate::lmtp::{LmtpConfig, LmtpSession, LmtpStep, ResolvedRecipient, deliver};

/// What a workload run is asked to do.
struct Settings {
    deliveries: usize,
    users: usize,
    size: usize,
    batch: usize,
    trace: bool,
}

impl Settings {
    fn from_env() -> Settings {
        let get = |name: &str, default: usize| {
            std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default).max(1)
        };
        Settings {
            deliveries: get("SKUA_WORKLOAD_DELIVERIES", 2000),
            users: get("SKUA_WORKLOAD_USERS", 100),
            size: get("SKUA_WORKLOAD_SIZE", 4096),
            batch: get("SKUA_WORKLOAD_BATCH", 4),
            trace: std::env::var("SKUA_WORKLOAD_TRACE").map_or(true, |v| v != "0"),
        }
    }
}

/// A text message of about `size` bytes with Message-ID number `n` (the body is filler lines).
fn message(n: usize, size: usize) -> Vec<u8> {
    let mut m = format!(
        "Message-ID: <{n:016x}@workload.invalid>\r\n\
         From: Bench Sender <sender@workload.invalid>\r\n\
         To: Bench Recipient <rcpt@workload.invalid>\r\n\
         Subject: workload fixed-size message\r\n\
         Date: Wed, 01 Jan 2025 00:00:00 +0000\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    )
    .into_bytes();
    let line =
        b"The quick brown fox jumps over the lazy dog while the mail server keeps count.\r\n";
    while m.len() + line.len() <= size {
        m.extend_from_slice(line);
    }
    m
}

/// The client's bytes for one pipelined transaction to `user`, terminator included.
fn transaction(user: &str, message: &[u8]) -> Vec<u8> {
    let mut t = format!(
        "MAIL FROM:<sender@workload.invalid>\r\nRCPT TO:<{user}@workload.invalid>\r\nDATA\r\n"
    )
    .into_bytes();
    t.extend_from_slice(message);
    t.extend_from_slice(b".\r\n");
    t
}

/// Runs the session until it needs input, answering look-ups and deliveries against `stores`;
/// returns the reply bytes.
fn drive(session: &mut LmtpSession, stores: &mut [UserStore<OsDisk>]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        match session.next() {
            LmtpStep::NeedInput => return out,
            LmtpStep::Write(bytes) => out.extend_from_slice(&bytes),
            LmtpStep::ResolveRecipient { address } => {
                let user = address.split('@').next().unwrap_or_default();
                session.recipient_resolved(Some(ResolvedRecipient::user(user)));
            }
            LmtpStep::Deliver(delivery) => {
                let results = (0..delivery.copies.len())
                    .map(|copy| {
                        let user = &delivery.copies[copy].user;
                        let index: usize = user.trim_start_matches("user").parse().expect("ours");
                        deliver(&mut stores[index], &delivery, copy, date()).map(|_| ())
                    })
                    .collect();
                session.delivery_done(results);
            }
            LmtpStep::Close => panic!("the session closed"),
            LmtpStep::StartTls => panic!("the workload's config offers no STARTTLS"),
        }
    }
}

fn date() -> InternalDate {
    InternalDate { unix_seconds: 1_764_115_200, zone_minutes: 0 }
}

/// One flush round, as the shard's group commit makes it.
fn flush(disk: &OsDisk) {
    if let Some(flush) = disk.flush_begin() {
        let epoch = flush.epoch();
        flush.run().expect("flush");
        disk.flush_end(epoch);
    }
}

/// Delivers `settings.deliveries` messages; returns how many `250` replies came back.
fn run(settings: &Settings, root: &Path) -> usize {
    let disk = Rc::new(OsDisk::new(root).expect("disk"));
    let mut stores: Vec<UserStore<OsDisk>> = (0..settings.users)
        .map(|i| UserStore::open(disk.clone(), &PathBuf::from(format!("user{i}"))).expect("open"))
        .collect();
    flush(&disk);
    let config = LmtpConfig {
        received_header: settings.trace,
        delivered_to_header: settings.trace,
        ..LmtpConfig::new("workload.invalid")
    };
    let mut session = LmtpSession::new(Arc::new(config));
    let mut accepted = 0;
    session.feed(b"LHLO workload.invalid\r\n");
    drive(&mut session, &mut stores);
    for n in 0..settings.deliveries {
        // A fixed, well-spread walk over the users (a multiplicative step, no RNG needed).
        let user = format!("user{}", (n * 7919) % settings.users);
        session.feed(&transaction(&user, &message(n, settings.size)));
        let replies = drive(&mut session, &mut stores);
        accepted +=
            replies.split(|&b| b == b'\n').filter(|line| line.starts_with(b"250 2.0.0")).count();
        if (n + 1) % settings.batch == 0 {
            flush(&disk);
        }
    }
    flush(&disk);
    accepted
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The profiling entry point: `cargo test --profile profiling -p skua-protocols --lib
    /// lmtp::workload -- --ignored` under callgrind (see perf/PROFILING.md).
    #[test]
    #[ignore = "a profiling workload; run explicitly"]
    fn profile_lmtp_deliveries() {
        let settings = Settings::from_env();
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(run(&settings, dir.path()), settings.deliveries);
    }

    #[test]
    fn a_small_workload_delivers_every_message() {
        let settings = Settings { deliveries: 12, users: 3, size: 4096, batch: 4, trace: true };
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(run(&settings, dir.path()), 12);
        let disk = Rc::new(OsDisk::new(dir.path()).expect("disk"));
        let store = UserStore::open(disk, Path::new("user1")).expect("open");
        let inbox = store.mailbox_id("INBOX").expect("inbox");
        assert_eq!(store.messages(inbox).expect("messages").len(), 4);
        let body = store.body(inbox, store.messages(inbox).unwrap()[0].uid).unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.starts_with(
                "Return-Path: <sender@workload.invalid>\r\n\
                 Delivered-To: user1@workload.invalid\r\n\
                 Received: from workload.invalid\r\n\tby workload.invalid (skua) with LMTP id 0-"
            ),
            "{text}"
        );
        assert!(text.contains(" +0000\r\nMessage-ID: <"), "{text}");
    }

    #[test]
    fn messages_have_the_asked_size() {
        let m = message(1, 4096);
        assert!(m.len() <= 4096 && m.len() > 4096 - 82, "{}", m.len());
    }
}
