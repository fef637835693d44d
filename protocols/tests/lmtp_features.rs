//! LMTP as MTA clusters use it, from bytes to the store (issue 10, item 6): `+detail`
//! addressing, one copy per user per transaction, the DSN / SMTPUTF8 / BINARYMIME parameters,
//! the `Received:` and `Delivered-To:` trace fields, and bare line endings.
//!
//! Recipients are resolved as the shard does (`shard/src/lmtp.rs`): the whole address by a
//! real [`UserDb`], then the address without its `+detail`. Each copy goes through
//! [`lmtp::deliver`] into a real store on a temporary directory.

use skua_core::acl::{Identifier, RightsChange};
use std::path::Path;
use std::rc::Rc;

use skua_core::disk::os::OsDisk;
use skua_core::disk::{Disk, Flush};
use skua_core::store::UserStore;
use skua_core::types::InternalDate;
use skua_core::users::UserDb;
use skua_protocols::lmtp::{
    self, BareLineEndings, Delivery, LmtpConfig, LmtpSession, LmtpStep, ResolvedRecipient, address,
};

/// 2023-11-14 22:13:20 UTC.
const DATE: InternalDate = InternalDate { unix_seconds: 1_700_000_000, zone_minutes: 0 };
const USERS: &[u8] = b"user1:{PLAIN}a\nuser2@example.com:{PLAIN}b\n";

struct Server {
    _root: tempfile::TempDir,
    disk: Rc<OsDisk>,
    users: UserDb,
    config: LmtpConfig,
}

/// What a run of a session produced.
struct Run {
    replies: String,
    deliveries: Vec<Delivery>,
}

impl Server {
    fn new() -> Server {
        let root = tempfile::tempdir().unwrap();
        let disk = Rc::new(OsDisk::new(root.path()).unwrap());
        let server = Server {
            _root: root,
            disk,
            users: UserDb::parse(USERS, "test"),
            config: LmtpConfig::new("store.example"),
        };
        // user1 has `Work` and `Lists/rust`, which anyone may post to (ACL `p`), and `Lists`
        // and `Private`, which nobody but user1 may.
        let mut store = server.store("user1");
        let anyone = Identifier::parse("anyone").unwrap();
        for (name, post) in
            [("Work", true), ("Lists", false), ("Lists/rust", true), ("Private", false)]
        {
            let id = store.create_mailbox(name).unwrap();
            if post {
                store.set_acl(id, &anyone, RightsChange::parse("+p").unwrap()).unwrap();
            }
        }
        drop(store);
        server.flush();
        server
    }

    fn store(&self, user: &str) -> UserStore<OsDisk> {
        UserStore::open(self.disk.clone(), Path::new(user)).unwrap()
    }

    fn flush(&self) {
        if let Some(flush) = self.disk.flush_begin() {
            let epoch = flush.epoch();
            flush.run().expect("flush");
            self.disk.flush_end(epoch);
        }
    }

    fn resolve(&self, address: &str) -> Option<ResolvedRecipient> {
        if let Some(entry) = self.users.resolve_recipient(address, true) {
            return Some(ResolvedRecipient::user(entry.name.clone()));
        }
        let (base, detail) = address::split_detail(address, self.config.detail_separator?)?;
        let entry = self.users.resolve_recipient(&base, true)?;
        Some(ResolvedRecipient { user: entry.name.clone(), detail })
    }

    /// Feeds `pieces` one read at a time to a fresh session and delivers what it asks for.
    fn run(&self, pieces: &[&[u8]]) -> Run {
        let session = LmtpSession::new(self.config.clone());
        let mut session = session.with_connection(Some("192.0.2.25".parse().unwrap()), "s1");
        let mut run = Run { replies: String::new(), deliveries: Vec::new() };
        for piece in pieces {
            session.feed(piece);
            loop {
                match session.next() {
                    LmtpStep::NeedInput | LmtpStep::Close | LmtpStep::StartTls => break,
                    LmtpStep::Write(bytes) => {
                        run.replies.push_str(std::str::from_utf8(&bytes).unwrap())
                    }
                    LmtpStep::ResolveRecipient { address } => {
                        let resolved = self.resolve(&address);
                        session.recipient_resolved(resolved);
                    }
                    LmtpStep::Deliver(delivery) => {
                        let results = (0..delivery.copies.len())
                            .map(|copy| {
                                let mut store = self.store(&delivery.copies[copy].user);
                                lmtp::deliver(&mut store, &delivery, copy, DATE).map(|_| ())
                            })
                            .collect();
                        self.flush();
                        session.delivery_done(results);
                        run.deliveries.push((*delivery).clone());
                    }
                }
            }
        }
        run
    }

    /// The bodies stored in `user`'s `mailbox`, oldest first.
    fn bodies(&self, user: &str, mailbox: &str) -> Vec<String> {
        let store = self.store(user);
        let id = store.mailbox_id(mailbox).unwrap();
        let messages = store.messages(id).unwrap();
        messages
            .iter()
            .map(|m| String::from_utf8(store.body(id, m.uid).unwrap().to_vec()).unwrap())
            .collect()
    }
}

fn transaction(recipients: &[&str], body: &str) -> Vec<u8> {
    let mut text = String::from("LHLO mx.example.org\r\nMAIL FROM:<s@example.org>\r\n");
    for recipient in recipients {
        text.push_str(&format!("RCPT TO:<{recipient}>\r\n"));
    }
    text.push_str("DATA\r\n");
    text.push_str(body);
    text.push_str(".\r\nQUIT\r\n");
    text.into_bytes()
}

/// The reply lines after the `354`.
fn after_data(replies: &str) -> Vec<&str> {
    let start = replies.find("354 ").expect("DATA accepted");
    replies[start..].lines().skip(1).collect()
}

#[test]
fn three_spellings_of_one_user_are_stored_once_and_each_answered() {
    let server = Server::new();
    let input = transaction(
        &["user1", "USER1", "user1@other.org", "user2@example.com"],
        "Subject: once\r\n\r\nbody\r\n",
    );
    let run = server.run(&[&input]);
    assert_eq!(
        after_data(&run.replies),
        [
            "250 2.0.0 <user1> Delivered",
            "250 2.0.0 <USER1> Delivered",
            "250 2.0.0 <user1@other.org> Delivered",
            "250 2.0.0 <user2@example.com> Delivered",
            "221 2.0.0 store.example closing connection",
        ]
    );
    assert_eq!(run.deliveries[0].copies.len(), 2, "one copy per user");
    assert_eq!(run.deliveries[0].copies[0].targets.len(), 3);
    let stored = server.bodies("user1", "INBOX");
    assert_eq!(stored.len(), 1, "stored once");
    // The copy carries the first recipient's trace fields.
    assert!(stored[0].starts_with("Return-Path: <s@example.org>\r\nDelivered-To: user1\r\n"));
    assert_eq!(server.bodies("user2@example.com", "INBOX").len(), 1);
}

#[test]
fn a_detail_delivers_into_its_folder_or_inbox() {
    let server = Server::new();
    let recipients = [
        "user1+Work@example.org",
        "user1+Missing@example.org",
        "user1+Lists.rust@example.org",
        "user1+Lists/rust@example.org",
        "user1+inbox@example.org",
        "user1+work@example.org",
        "user1+../Work@example.org",
        "user1+Private@example.org",
    ];
    let input = transaction(&recipients, "Subject: detail\r\n\r\nx\r\n");
    let run = server.run(&[&input]);
    let replies = after_data(&run.replies);
    assert_eq!(replies.len(), recipients.len() + 1);
    assert!(replies[..recipients.len()].iter().all(|r| r.starts_with("250 2.0.0 <user1+")));
    // Work (exact name); Lists/rust (by `/` and by `.`), once; INBOX for the rest
    // (`Missing`, `inbox`, `work` is not `Work`, `../Work` names nothing, nobody may post
    // to `Private`), once.
    let work = server.bodies("user1", "Work");
    assert_eq!(work.len(), 1);
    assert!(work[0].contains("Delivered-To: user1+Work@example.org\r\n"), "{}", work[0]);
    let rust = server.bodies("user1", "Lists/rust");
    assert_eq!(rust.len(), 1);
    assert!(rust[0].contains("for <user1+Lists.rust@example.org>;"), "{}", rust[0]);
    let inbox = server.bodies("user1", "INBOX");
    assert_eq!(inbox.len(), 1);
    assert!(inbox[0].contains("Delivered-To: user1+Missing@example.org\r\n"));
    assert_eq!(server.bodies("user1", "Lists").len(), 0);
    let store = server.store("user1");
    assert!(store.mailbox_id("Missing").is_none(), "a detail never creates a mailbox");
    assert!(store.mailbox_id("../Work").is_none());
    assert_eq!(server.bodies("user1", "Private").len(), 0, "no `p` for anyone: INBOX");
}

#[test]
fn detail_addressing_can_be_turned_off() {
    let mut server = Server::new();
    server.config.detail_separator = None;
    let run = server.run(&[&transaction(&["user1+Work@example.org"], "x\r\n")]);
    assert!(run.replies.contains("550 5.1.1 <user1+Work@example.org>: user unknown\r\n"));
    assert!(run.deliveries.is_empty());
}

#[test]
fn received_and_delivered_to_head_each_copy() {
    let server = Server::new();
    let run = server.run(&[&transaction(&["user1@example.org"], "Subject: t\r\n\r\nb\r\n")]);
    assert!(run.replies.contains("250 2.0.0 <user1@example.org> Delivered"));
    assert_eq!(
        server.bodies("user1", "INBOX"),
        ["Return-Path: <s@example.org>\r\n\
             Delivered-To: user1@example.org\r\n\
             Received: from mx.example.org ([192.0.2.25])\r\n\
             \tby store.example (skua) with LMTP id s1-1\r\n\
             \tfor <user1@example.org>; Tue, 14 Nov 2023 22:13:20 +0000\r\n\
             Subject: t\r\n\r\nb\r\n"]
    );
    let mut server = server;
    server.config.received_header = false;
    server.config.delivered_to_header = false;
    server.run(&[&transaction(&["user2@example.com"], "b\r\n")]);
    assert_eq!(
        server.bodies("user2@example.com", "INBOX"),
        ["Return-Path: <s@example.org>\r\nb\r\n"]
    );
}

#[test]
fn dsn_smtputf8_and_binarymime_parameters_are_accepted_and_recorded() {
    let server = Server::new();
    let input = "LHLO mx\r\n\
                 MAIL FROM:<s@example.org> RET=HDRS ENVID=QQ+2B314 SMTPUTF8 BODY=8BITMIME\r\n\
                 RCPT TO:<user1@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;user1+2Bx@example.org\r\n\
                 RCPT TO:<us\u{e9}r@example.org>\r\n\
                 DATA\r\nSubject: dsn\r\n\r\nb\r\n.\r\n";
    let run = server.run(&[input.as_bytes()]);
    assert!(run.replies.contains("250-DSN\r\n250-SMTPUTF8\r\n250-BINARYMIME\r\n"));
    assert!(run.replies.contains("550 5.1.1 <us\u{e9}r@example.org>: user unknown\r\n"));
    assert!(
        run.replies.ends_with("250 2.0.0 <user1@example.org> Delivered\r\n"),
        "{}",
        run.replies
    );
    let delivery = &run.deliveries[0];
    assert_eq!(delivery.mail.envid.as_deref(), Some("QQ+314"));
    assert!(delivery.mail.smtputf8);
    let target = &delivery.copies[0].targets[0];
    assert_eq!(target.parameters.orcpt.as_ref().unwrap().address, "user1+x@example.org");
    assert_eq!(target.parameters.notify.unwrap().to_string(), "SUCCESS,FAILURE");
}

#[test]
fn malformed_parameters_and_utf8_without_smtputf8_are_refused() {
    let server = Server::new();
    let input = "LHLO mx\r\n\
                 MAIL FROM:<s@example.org> RET=SOME\r\n\
                 MAIL FROM:<s@example.org> ENVID=a+zz\r\n\
                 MAIL FROM:<s\u{e9}@example.org>\r\n\
                 MAIL FROM:<s@example.org> X-FOO=1\r\n\
                 MAIL FROM:<s@example.org>\r\n\
                 RCPT TO:<user1> NOTIFY=NEVER,DELAY\r\n\
                 RCPT TO:<user1> ORCPT=rfc822\r\n\
                 RCPT TO:<\u{fc}ser1@example.org>\r\n\
                 QUIT\r\n";
    let run = server.run(&[input.as_bytes()]);
    let lines: Vec<&str> = run.replies.lines().collect();
    let tail = &lines[lines.len() - 9..];
    assert_eq!(
        tail,
        [
            "501 5.5.4 RET must be FULL or HDRS",
            "501 5.5.4 ENVID is not xtext",
            "553 5.6.7 Non-ASCII address needs SMTPUTF8",
            "555 5.5.4 unsupported MAIL parameter",
            "250 2.1.0 Sender ok",
            "501 5.5.4 NOTIFY must be NEVER or SUCCESS,FAILURE,DELAY",
            "501 5.5.4 ORCPT must be addr-type;xtext",
            "553 5.6.7 Non-ASCII address needs SMTPUTF8",
            "221 2.0.0 store.example closing connection",
        ]
    );
}

#[test]
fn binarymime_comes_by_bdat_only_and_is_stored_as_sent() {
    let mut server = Server::new();
    server.config.received_header = false;
    server.config.delivered_to_header = false;
    let input = b"LHLO mx\r\nMAIL FROM:<s@example.org> BODY=BINARYMIME\r\nRCPT TO:<user1>\r\n\
                  DATA\r\nBDAT 10 LAST\r\na\nb\rc\r\n\x00\r\n";
    let run = server.run(&[input]);
    assert!(run.replies.contains("503 5.5.1 BODY=BINARYMIME requires BDAT\r\n"), "{}", run.replies);
    assert!(run.replies.ends_with("250 2.0.0 <user1> Delivered\r\n"), "{}", run.replies);
    assert_eq!(
        server.bodies("user1", "INBOX"),
        ["Return-Path: <s@example.org>\r\na\nb\rc\r\n\u{0}\r\n"]
    );
}

#[test]
fn bare_line_endings_are_normalized_across_reads() {
    let mut server = Server::new();
    server.config.received_header = false;
    server.config.delivered_to_header = false;
    // DATA with a bare LF and a lone CR; BDAT whose first chunk ends on the CR of a CRLF.
    let data = b"LHLO mx\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<user1>\r\nDATA\r\n\
                 Subject: lf\nbare\rcr\r\n.\r\n";
    let bdat_first = b"MAIL FROM:<s@example.org>\r\nRCPT TO:<user1>\r\nBDAT 3\r\na\n\r";
    let bdat_last = b"BDAT 3 LAST\r\n\nb\n";
    let run = server.run(&[&data[..40], &data[40..], bdat_first, bdat_last]);
    assert_eq!(run.replies.matches("250 2.0.0 <user1> Delivered").count(), 2, "{}", run.replies);
    assert_eq!(
        server.bodies("user1", "INBOX"),
        [
            "Return-Path: <s@example.org>\r\nSubject: lf\r\nbare\r\ncr\r\n",
            "Return-Path: <s@example.org>\r\na\r\n\r\nb\r\n",
        ]
    );
}

#[test]
fn bare_line_endings_can_be_refused_per_recipient() {
    let mut server = Server::new();
    server.config.bare_line_endings = BareLineEndings::Refuse;
    let input = transaction(&["user1", "user2@example.com"], "Subject: x\r\n\r\nbare\nlf\r\n");
    let run = server.run(&[&input]);
    assert_eq!(
        after_data(&run.replies),
        [
            "550 5.6.2 <user1> Bare CR or LF in the message is not allowed",
            "550 5.6.2 <user2@example.com> Bare CR or LF in the message is not allowed",
            "221 2.0.0 store.example closing connection",
        ]
    );
    assert!(run.deliveries.is_empty());
    // A clean message still goes through.
    let run = server.run(&[&transaction(&["user1"], "Subject: x\r\n\r\nclean\r\n")]);
    assert!(run.replies.contains("250 2.0.0 <user1> Delivered"));
}
