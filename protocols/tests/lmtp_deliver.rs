//! LMTP from bytes to durable mail: a session resolves recipients with a real [`UserDb`] and
//! each copy goes through [`lmtp::deliver`] into a real store on a temporary directory.

use std::path::Path;
use std::rc::Rc;

use skua_core::disk::os::OsDisk;
use skua_core::disk::{Disk, Flush};
use skua_core::store::UserStore;
use skua_core::types::{InternalDate, Uid};
use skua_core::users::UserDb;
use skua_protocols::lmtp::{self, LmtpConfig, LmtpSession, LmtpStep, ResolvedRecipient};
use skua_protocols::mime;

const DATE: InternalDate = InternalDate { unix_seconds: 1_700_000_000, zone_minutes: 60 };

fn flush(disk: &OsDisk) {
    if let Some(flush) = disk.flush_begin() {
        let epoch = flush.epoch();
        flush.run().expect("flush");
        disk.flush_end(epoch);
    }
}

/// Runs `input` through a session, delivering into the users' stores under `root`.
fn run(root: &Path, users: &UserDb, input: &[u8]) -> (String, Vec<Rc<[u8]>>) {
    let disk = Rc::new(OsDisk::new(root).expect("disk"));
    let config = LmtpConfig {
        received_header: false,
        delivered_to_header: false,
        ..LmtpConfig::new("lmtp.example")
    };
    let mut session = LmtpSession::new(config);
    session.feed(input);
    let mut written = String::new();
    let mut messages = Vec::new();
    loop {
        match session.next() {
            LmtpStep::NeedInput | LmtpStep::Close | LmtpStep::StartTls => break,
            LmtpStep::Write(bytes) => written.push_str(std::str::from_utf8(&bytes).unwrap()),
            LmtpStep::ResolveRecipient { address } => {
                let entry = users.resolve_recipient(&address, true);
                session.recipient_resolved(entry.map(|e| ResolvedRecipient::user(e.name.clone())));
            }
            LmtpStep::Deliver(delivery) => {
                let results = (0..delivery.copies.len())
                    .map(|copy| {
                        let user = &delivery.copies[copy].user;
                        let mut store = UserStore::open(disk.clone(), Path::new(user)).unwrap();
                        lmtp::deliver(&mut store, &delivery, copy, DATE).map(|_| ())
                    })
                    .collect();
                flush(&disk);
                session.delivery_done(results);
                let first = &delivery.copies[0].targets[0];
                messages.push(Rc::from(delivery.message_for(first, DATE)));
            }
        }
    }
    (written, messages)
}

#[test]
fn delivered_messages_are_in_each_inbox_with_their_cache() {
    let root = tempfile::tempdir().unwrap();
    let users = UserDb::parse(b"alice:{PLAIN}a\nbob@example.com:{PLAIN}b\n", "test");
    let input = b"LHLO mx\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<alice@example.com>\r\n\
                  RCPT TO:<BOB@example.com>\r\nDATA\r\nSubject: one\r\n\r\n..body\r\n.\r\n\
                  MAIL FROM:<>\r\nRCPT TO:<alice>\r\nBDAT 16 LAST\r\nSubject: two\r\n\r\nQUIT\r\n";
    let (replies, messages) = run(root.path(), &users, input);
    assert!(
        replies.ends_with(
            "250 2.0.0 <alice@example.com> Delivered\r\n250 2.0.0 <BOB@example.com> Delivered\r\n\
         250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n250 2.0.0 <alice> Delivered\r\n\
         221 2.0.0 lmtp.example closing connection\r\n"
        ),
        "{replies}"
    );
    assert_eq!(&*messages[0], b"Return-Path: <s@example.org>\r\nSubject: one\r\n\r\n.body\r\n");
    assert_eq!(&*messages[1], b"Return-Path: <>\r\nSubject: two\r\n\r\n");

    // Reopen from disk: what was acknowledged is there, byte for byte.
    let disk = Rc::new(OsDisk::new(root.path()).unwrap());
    let alice = UserStore::open(disk.clone(), Path::new("alice")).unwrap();
    let inbox = alice.mailbox_id("INBOX").unwrap();
    let stored = alice.messages(inbox).unwrap();
    assert_eq!(stored.len(), 2);
    for (meta, message) in stored.iter().zip(&messages) {
        assert_eq!(&*alice.body(inbox, meta.uid).unwrap(), &**message);
        assert_eq!(&*alice.cache(inbox, meta.uid).unwrap(), &mime::cache::build(message)[..]);
        assert_eq!(meta.internal_date, DATE);
    }
    assert_eq!(stored[0].uid, Uid::MIN);
    let bob = UserStore::open(disk, Path::new("bob@example.com")).unwrap();
    let inbox = bob.mailbox_id("INBOX").unwrap();
    let stored = bob.messages(inbox).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(&*bob.body(inbox, stored[0].uid).unwrap(), &*messages[0]);
}
