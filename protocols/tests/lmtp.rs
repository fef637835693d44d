//! LMTP sessions driven by `C:`/`S:` transcripts, with no socket: recipients are resolved by a
//! real [`UserDb`], and deliveries are answered by a table of outcomes per user.
//!
//! In a transcript, consecutive `C:` lines are sent in one piece (pipelined), each followed by
//! CRLF; then the session runs until it needs input, and everything it wrote must equal the
//! `S:` lines that follow.

use skua_core::types::InternalDate;
use skua_core::users::UserDb;
use skua_protocols::lmtp::{DeliveryFailure, LmtpConfig, LmtpSession, LmtpStep, ResolvedRecipient};

const USERS: &[u8] = b"alice@example.com:{PLAIN}a\nbob:{PLAIN}b\nfull@example.com:{PLAIN}f\n";

/// A delivery the harness was asked for.
#[derive(Debug)]
struct Delivered {
    /// The message stored for the first recipient (the config writes no `Received:` or
    /// `Delivered-To:`, so this is `Return-Path:` and the client's bytes).
    message: Vec<u8>,
    /// The users, one per copy.
    recipients: Vec<String>,
    return_path: String,
}

struct Harness {
    session: LmtpSession,
    users: UserDb,
    deliveries: Vec<Delivered>,
    closed: bool,
}

impl Harness {
    fn new(config: LmtpConfig) -> Harness {
        Harness {
            session: LmtpSession::new(config),
            users: UserDb::parse(USERS, "test"),
            deliveries: Vec::new(),
            closed: false,
        }
    }

    /// Feeds `input` and runs the session until it needs input; returns what it wrote.
    fn exchange(&mut self, input: &[u8]) -> String {
        self.session.feed(input);
        let mut written = Vec::new();
        loop {
            match self.session.next() {
                LmtpStep::NeedInput => break,
                LmtpStep::Write(bytes) => written.extend_from_slice(&bytes),
                LmtpStep::ResolveRecipient { address } => {
                    let entry = self.users.resolve_recipient(&address, true);
                    let resolved = entry.map(|e| ResolvedRecipient::user(e.name.clone()));
                    self.session.recipient_resolved(resolved);
                }
                LmtpStep::Deliver(delivery) => {
                    let recipients: Vec<String> =
                        delivery.copies.iter().map(|copy| copy.user.clone()).collect();
                    let results = recipients.iter().map(|user| outcome(user)).collect();
                    let date = InternalDate { unix_seconds: 0, zone_minutes: 0 };
                    let message = delivery.message_for(&delivery.copies[0].targets[0], date);
                    let return_path = delivery.return_path.clone();
                    self.deliveries.push(Delivered { message, recipients, return_path });
                    self.session.delivery_done(results);
                }
                // As if the handshake succeeded (a config with STARTTLS on).
                LmtpStep::StartTls => self.session.tls_started(),
                LmtpStep::Close => {
                    self.closed = true;
                    break;
                }
            }
        }
        String::from_utf8(written).expect("replies are UTF-8")
    }

    /// Runs a transcript; panics at the first difference.
    fn transcript(&mut self, text: &str) {
        let mut lines = text.lines().map(str::trim_start).filter(|l| !l.is_empty()).peekable();
        while lines.peek().is_some() {
            let mut input = String::new();
            while let Some(line) = lines.next_if(|l| l.starts_with("C:")) {
                input.push_str(line.strip_prefix("C: ").unwrap_or(&line[2..]));
                input.push_str("\r\n");
            }
            let mut expected = String::new();
            while let Some(line) = lines.next_if(|l| l.starts_with("S:")) {
                expected.push_str(line.strip_prefix("S: ").unwrap_or(&line[2..]));
                expected.push_str("\r\n");
            }
            let actual = self.exchange(input.as_bytes());
            assert_eq!(actual, expected, "after sending:\n{input}");
        }
    }
}

/// The outcome of delivering to `user`: the user `full@example.com` is over quota.
fn outcome(user: &str) -> Result<(), DeliveryFailure> {
    if user == "full@example.com" { Err(DeliveryFailure::OverQuota) } else { Ok(()) }
}

fn config() -> LmtpConfig {
    LmtpConfig {
        received_header: false,
        delivered_to_header: false,
        ..LmtpConfig::new("lmtp.example")
    }
}

fn greeted() -> Harness {
    let mut harness = Harness::new(config());
    assert_eq!(harness.session.greeting(), b"220 lmtp.example LMTP skua ready\r\n");
    harness.transcript(
        "C: LHLO mx.example.org
         S: 250-lmtp.example
         S: 250-PIPELINING
         S: 250-ENHANCEDSTATUSCODES
         S: 250-8BITMIME
         S: 250-SIZE 67108864
         S: 250-DSN
         S: 250-SMTPUTF8
         S: 250-BINARYMIME
         S: 250 CHUNKING",
    );
    harness
}

#[test]
fn one_transaction_three_recipients_one_unknown() {
    let mut h = greeted();
    h.transcript(
        "C: MAIL FROM:<sender@example.org>
         S: 250 2.1.0 Sender ok
         C: RCPT TO:<alice@example.com>
         S: 250 2.1.5 Recipient ok
         C: RCPT TO:<nobody@example.com>
         S: 550 5.1.1 <nobody@example.com>: user unknown
         C: RCPT TO:<Bob@example.net>
         S: 250 2.1.5 Recipient ok
         C: RCPT TO:<full@example.com>
         S: 250 2.1.5 Recipient ok
         C: DATA
         S: 354 Start mail input; end with <CRLF>.<CRLF>
         C: Subject: hello
         C:
         C: Hi.
         C: .
         S: 250 2.0.0 <alice@example.com> Delivered
         S: 250 2.0.0 <Bob@example.net> Delivered
         S: 552 5.2.2 <full@example.com> Mailbox over quota
         C: QUIT
         S: 221 2.0.0 lmtp.example closing connection",
    );
    assert!(h.closed);
    assert_eq!(h.deliveries.len(), 1);
    let delivered = &h.deliveries[0];
    assert_eq!(delivered.recipients, ["alice@example.com", "bob", "full@example.com"]);
    assert_eq!(delivered.return_path, "sender@example.org");
    assert_eq!(
        &*delivered.message,
        b"Return-Path: <sender@example.org>\r\nSubject: hello\r\n\r\nHi.\r\n"
    );
}

#[test]
fn pipelined_commands_in_one_feed_reply_in_order() {
    let mut h = greeted();
    let replies = h.exchange(
        b"MAIL FROM:<> BODY=8BITMIME SIZE=20\r\nRCPT TO:<alice@example.com>\r\n\
          RCPT TO:<x@y>\r\nDATA\r\nbody \xc3\xa9\r\n.\r\nNOOP\r\n",
    );
    assert_eq!(
        replies,
        "250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n550 5.1.1 <x@y>: user unknown\r\n\
         354 Start mail input; end with <CRLF>.<CRLF>\r\n\
         250 2.0.0 <alice@example.com> Delivered\r\n250 2.0.0 Ok\r\n"
    );
    assert_eq!(&*h.deliveries[0].message, "Return-Path: <>\r\nbody é\r\n".as_bytes());
}

#[test]
fn dot_stuffing_is_undone() {
    let mut h = greeted();
    h.transcript(
        "C: MAIL FROM:<s@example.org>
         C: RCPT TO:<bob>
         C: DATA
         S: 250 2.1.0 Sender ok
         S: 250 2.1.5 Recipient ok
         S: 354 Start mail input; end with <CRLF>.<CRLF>
         C: ..leading dot
         C: ...
         C: .
         S: 250 2.0.0 <bob> Delivered",
    );
    assert_eq!(
        &*h.deliveries[0].message,
        b"Return-Path: <s@example.org>\r\n.leading dot\r\n..\r\n"
    );
}

#[test]
fn data_split_across_reads() {
    let mut h = greeted();
    h.transcript(
        "C: MAIL FROM:<s@example.org>
         C: RCPT TO:<bob>
         C: DATA
         S: 250 2.1.0 Sender ok
         S: 250 2.1.5 Recipient ok
         S: 354 Start mail input; end with <CRLF>.<CRLF>",
    );
    for piece in [&b"line one\r"[..], b"\n..", b"\r", b"\nline two\r\n", b".", b"\r"] {
        assert_eq!(h.exchange(piece), "");
    }
    assert!(h.deliveries.is_empty());
    assert_eq!(h.exchange(b"\n"), "250 2.0.0 <bob> Delivered\r\n");
    assert_eq!(
        &*h.deliveries[0].message,
        b"Return-Path: <s@example.org>\r\nline one\r\n.\r\nline two\r\n"
    );
}

#[test]
fn oversize_message_is_read_to_the_end_then_refused_per_recipient() {
    let mut h = Harness::new(LmtpConfig { max_message_bytes: 16, ..config() });
    h.transcript(
        "C: LHLO mx
         S: 250-lmtp.example
         S: 250-PIPELINING
         S: 250-ENHANCEDSTATUSCODES
         S: 250-8BITMIME
         S: 250-SIZE 16
         S: 250-DSN
         S: 250-SMTPUTF8
         S: 250-BINARYMIME
         S: 250 CHUNKING
         C: MAIL FROM:<s@example.org> SIZE=17
         S: 552 5.3.4 Message too big for system
         C: MAIL FROM:<s@example.org>
         C: RCPT TO:<alice@example.com>
         C: RCPT TO:<bob@example.com>
         C: DATA
         S: 250 2.1.0 Sender ok
         S: 250 2.1.5 Recipient ok
         S: 250 2.1.5 Recipient ok
         S: 354 Start mail input; end with <CRLF>.<CRLF>
         C: 0123456789
         C: 0123456789
         C: .
         C: NOOP
         S: 552 5.3.4 <alice@example.com> Message too big
         S: 552 5.3.4 <bob@example.com> Message too big
         S: 250 2.0.0 Ok",
    );
    assert!(h.deliveries.is_empty());
}

#[test]
fn bdat_chunks() {
    let mut h = greeted();
    h.transcript(
        "C: MAIL FROM:<s@example.org>
         C: RCPT TO:<alice@example.com>
         C: RCPT TO:<full@example.com>
         C: BDAT 12
         C: Subject: x
         C: BDAT 6 LAST
         C: body
         S: 250 2.1.0 Sender ok
         S: 250 2.1.5 Recipient ok
         S: 250 2.1.5 Recipient ok
         S: 250 2.0.0 12 octets received
         S: 250 2.0.0 <alice@example.com> Delivered
         S: 552 5.2.2 <full@example.com> Mailbox over quota
         C: MAIL FROM:<s@example.org>
         C: RCPT TO:<bob>
         C: BDAT 0 LAST
         S: 250 2.1.0 Sender ok
         S: 250 2.1.5 Recipient ok
         S: 250 2.0.0 <bob> Delivered",
    );
    assert_eq!(
        &*h.deliveries[0].message,
        b"Return-Path: <s@example.org>\r\nSubject: x\r\nbody\r\n"
    );
    assert_eq!(&*h.deliveries[1].message, b"Return-Path: <s@example.org>\r\n");
}

#[test]
fn bdat_data_is_raw_and_may_hold_command_lookalikes() {
    let mut h = greeted();
    let replies = h.exchange(
        b"MAIL FROM:<s@example.org>\r\nRCPT TO:<bob>\r\nBDAT 11 LAST\r\n.\r\nQUIT\r\n\r\nNOOP\r\n",
    );
    assert_eq!(
        replies,
        "250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n250 2.0.0 <bob> Delivered\r\n\
         250 2.0.0 Ok\r\n"
    );
    assert!(!h.closed);
    assert_eq!(&*h.deliveries[0].message, b"Return-Path: <s@example.org>\r\n.\r\nQUIT\r\n\r\n");
}

#[test]
fn bdat_failures_consume_the_chunk() {
    let mut h = greeted();
    h.transcript(
        "C: BDAT 5
         C: abc
         S: 503 5.5.1 Send MAIL first
         C: MAIL FROM:<s@example.org>
         C: RCPT TO:<nobody@example.com>
         C: BDAT 5
         C: abc
         C: BDAT 5 LAST
         C: def
         C: DATA
         S: 250 2.1.0 Sender ok
         S: 550 5.1.1 <nobody@example.com>: user unknown
         S: 503 5.5.1 No valid recipients
         S: 503 5.5.1 Transaction failed earlier; send RSET
         S: 503 5.5.1 Transaction failed earlier; send RSET
         C: RSET
         C: MAIL FROM:<s@example.org>
         C: RCPT TO:<bob>
         C: BDAT 3
         C: x
         C: DATA
         C: RCPT TO:<alice@example.com>
         S: 250 2.0.0 Ok
         S: 250 2.1.0 Sender ok
         S: 250 2.1.5 Recipient ok
         S: 250 2.0.0 3 octets received
         S: 503 5.5.1 Message transfer already started
         S: 503 5.5.1 Message transfer already started",
    );
    assert!(h.deliveries.is_empty());
}

#[test]
fn oversize_bdat_chunk_fails_the_transaction() {
    let mut h = Harness::new(LmtpConfig { max_message_bytes: 4, ..config() });
    h.exchange(b"LHLO mx\r\n");
    h.transcript(
        "C: MAIL FROM:<s@example.org>
         C: RCPT TO:<bob>
         C: BDAT 5
         C: abc
         C: BDAT 3 LAST
         C: x
         S: 250 2.1.0 Sender ok
         S: 250 2.1.5 Recipient ok
         S: 552 5.3.4 Message too big for system
         S: 503 5.5.1 Transaction failed earlier; send RSET",
    );
    assert!(h.deliveries.is_empty());
}

#[test]
fn sequencing_and_syntax_errors_then_recovery() {
    let mut h = Harness::new(config());
    h.transcript(
        "C: MAIL FROM:<s@example.org>
         S: 503 5.5.1 Send LHLO first
         C: EHLO mx
         S: 500 5.5.1 This is LMTP: use LHLO
         C: HELO mx
         S: 500 5.5.1 This is LMTP: use LHLO
         C: LHLO
         S: 501 5.5.4 LHLO needs one domain
         C: RSET
         S: 250 2.0.0 Ok",
    );
    h.exchange(b"LHLO mx\r\n");
    h.transcript(
        "C: RCPT TO:<bob>
         S: 503 5.5.1 Send MAIL first
         C: DATA
         S: 503 5.5.1 Send MAIL first
         C: MAIL FROM:bob
         S: 501 5.5.4 path must start with '<'
         C: MAIL FROM:<s@example.org> AUTH=<>
         S: 555 5.5.4 unsupported MAIL parameter
         C: FROB
         S: 500 5.5.1 Unknown command
         C: MAIL FROM:<s@example.org>
         S: 250 2.1.0 Sender ok
         C: MAIL FROM:<s@example.org>
         S: 503 5.5.1 MAIL already given
         C: DATA
         S: 503 5.5.1 No valid recipients
         C: VRFY bob
         S: 252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery
         C: RCPT TO:<bob>
         C: DATA
         C: ok
         C: .
         S: 250 2.1.5 Recipient ok
         S: 354 Start mail input; end with <CRLF>.<CRLF>
         S: 250 2.0.0 <bob> Delivered",
    );
    assert_eq!(h.deliveries.len(), 1);
}

#[test]
fn rset_abandons_the_transaction() {
    let mut h = greeted();
    h.transcript(
        "C: MAIL FROM:<s@example.org>
         C: RCPT TO:<alice@example.com>
         C: RSET
         C: RCPT TO:<bob>
         S: 250 2.1.0 Sender ok
         S: 250 2.1.5 Recipient ok
         S: 250 2.0.0 Ok
         S: 503 5.5.1 Send MAIL first
         C: MAIL FROM:<other@example.org>
         C: RCPT TO:<bob>
         C: DATA
         C: x
         C: .
         S: 250 2.1.0 Sender ok
         S: 250 2.1.5 Recipient ok
         S: 354 Start mail input; end with <CRLF>.<CRLF>
         S: 250 2.0.0 <bob> Delivered",
    );
    assert_eq!(h.deliveries[0].recipients, ["bob"]);
    assert_eq!(h.deliveries[0].return_path, "other@example.org");
}

#[test]
fn long_lines_are_refused_and_the_session_goes_on() {
    let mut h = greeted();
    let long = format!("NOOP {}\r\n", "x".repeat(5000));
    assert_eq!(h.exchange(long.as_bytes()), "500 5.5.2 Line too long\r\n");
    // The same, arriving in pieces so the session never holds the whole line.
    assert_eq!(h.exchange(&[b'x'; 3000]), "");
    assert_eq!(h.exchange(&[b'x'; 3000]), "");
    assert_eq!(h.exchange(b"x\r\nNOOP\r\n"), "500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n");
}

#[test]
fn too_many_recipients() {
    let mut h = Harness::new(LmtpConfig { max_recipients: 2, ..config() });
    h.exchange(b"LHLO mx\r\n");
    h.transcript(
        "C: MAIL FROM:<s@example.org>
         C: RCPT TO:<bob>
         C: RCPT TO:<alice@example.com>
         C: RCPT TO:<full@example.com>
         S: 250 2.1.0 Sender ok
         S: 250 2.1.5 Recipient ok
         S: 250 2.1.5 Recipient ok
         S: 452 4.5.3 Too many recipients",
    );
}

#[test]
fn too_many_errors_close_the_session() {
    let mut h = greeted();
    let garbage = "FROB\r\n".repeat(25);
    let replies = h.exchange(garbage.as_bytes());
    assert_eq!(replies.matches("500 5.5.1 Unknown command").count(), 20);
    assert!(replies.ends_with("421 4.7.0 lmtp.example Too many errors, closing connection\r\n"));
    assert!(h.closed);
}

#[test]
fn session_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<LmtpSession>();
}

/// STARTTLS (RFC 3207): announced when configured and not yet running, `220`, everything the
/// client pipelined behind it discarded (never run as commands sent over TLS), and the session
/// starts over: LHLO again, STARTTLS no longer announced, a second STARTTLS refused.
#[test]
fn starttls_discards_pipelined_commands_and_starts_over() {
    let mut with_tls = config();
    with_tls.starttls = true;
    let mut h = Harness::new(with_tls);
    let reply = h.exchange(b"LHLO mx.example.org\r\n");
    assert!(reply.contains("250-STARTTLS\r\n"), "{reply}");
    let reply =
        h.exchange(b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<alice@example.com>\r\n");
    assert_eq!(reply, "220 2.0.0 Ready to start TLS\r\n");
    assert!(h.session.is_tls(), "the harness stands in for the handshake");
    // The pipelined MAIL never ran, and LHLO is needed again.
    let reply = h.exchange(b"RCPT TO:<alice@example.com>\r\nMAIL FROM:<a@example.org>\r\n");
    assert!(reply.starts_with("503"), "{reply}");
    let reply = h.exchange(b"LHLO mx.example.org\r\n");
    assert!(!reply.contains("STARTTLS"), "{reply}");
    let reply = h.exchange(b"STARTTLS\r\n");
    assert!(reply.starts_with("503 5.5.1"), "{reply}");
    assert!(h.deliveries.is_empty());
}

#[test]
fn starttls_without_tls_configured_is_refused() {
    let mut h = greeted();
    let reply = h.exchange(b"STARTTLS\r\n");
    assert!(reply.starts_with("502 5.5.1"), "{reply}");
    assert!(!h.session.is_tls());
}
