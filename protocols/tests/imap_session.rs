//! Session behaviour that transcripts cannot express well: spool chunks for bodies, durability
//! tickets, configuration (plaintext refused), limits, CONDSTORE arithmetic, AUTHENTICATE forms.

mod imap_support;

use imap_support::{Client, World, tagged};
use skua_protocols::imap::limits::FrameLimits;
use skua_protocols::imap::session::{BAD_COMMANDS_MAX, ImapConfig, Step};

/// A message of `body_len` bytes of body text.
fn message(subject: &str, body_len: usize) -> Vec<u8> {
    let mut m = format!("From: a@example.org\r\nSubject: {subject}\r\n\r\n").into_bytes();
    m.extend(std::iter::repeat_n(b'x', body_len));
    m.extend_from_slice(b"\r\n");
    m
}

/// `ap APPEND INBOX` of `raw` as one LITERAL+ command.
fn append_command(raw: &[u8]) -> Vec<u8> {
    let mut command = format!("ap APPEND INBOX {{{}+}}\r\n", raw.len()).into_bytes();
    command.extend_from_slice(raw);
    command.extend_from_slice(b"\r\n");
    command
}

fn append(client: &mut Client, world: &mut World, raw: &[u8]) -> Vec<String> {
    client.lines.clear();
    let command = append_command(raw);
    client.send(world, &command);
    client.drain()
}

#[test]
fn bodies_go_out_as_spool_chunks_and_mark_seen() {
    let mut world = World::new();
    let mut client = Client::new();
    client.login(&mut world);
    let raw = message("big", 4000);
    tagged(&append(&mut client, &mut world, &raw), "ap OK [APPENDUID");
    tagged(&client.command(&mut world, "s SELECT INBOX"), "s OK");
    let before = client.spool_chunks;
    let reply = client.command(&mut world, "f FETCH 1 BODY[]");
    assert_eq!(client.spool_chunks, before + 1, "the body must not be copied");
    assert_eq!(reply[0], format!("* 1 FETCH (BODY[] {{{}}}", raw.len()));
    let text = String::from_utf8_lossy(&client.transcript).into_owned();
    assert!(text.contains(&String::from_utf8_lossy(&raw).into_owned()));
    // BODY[] without PEEK set \Seen and reported it in the same response.
    assert!(reply.iter().any(|l| l.contains("FLAGS (\\Seen \\Recent)")), "{reply:?}");
    let reply = client.command(&mut world, "g FETCH 1 (FLAGS)");
    assert_eq!(reply[0], "* 1 FETCH (FLAGS (\\Seen \\Recent))");
}

#[test]
fn mutations_carry_a_durability_ticket_and_reads_do_not() {
    let mut world = World::new();
    let mut client = Client::new();
    client.login(&mut world);
    let raw = message("t", 10);
    let command = append_command(&raw);
    client.session.feed(&command);
    let store = &mut world.store;
    match client.session.next(Some(store)) {
        Step::Write { durable, .. } => assert!(durable.is_some(), "APPEND must wait for a flush"),
        other => panic!("unexpected {other:?}"),
    }
    world.flush();
    client.session.feed(b"n NOOP\r\n");
    match client.session.next(Some(&mut world.store)) {
        Step::Write { durable, .. } => assert!(durable.is_none(), "NOOP must not wait"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn plaintext_refused_when_not_allowed() {
    let mut world = World::new();
    let mut config = ImapConfig::new("test.example");
    config.plaintext_login_allowed = false;
    let mut client = Client::with_config(config);
    let greeting = client.drain();
    assert!(greeting[0].contains("LOGINDISABLED"), "{greeting:?}");
    tagged(&client.command(&mut world, "a LOGIN alice secret"), "a NO [PRIVACYREQUIRED]");
    tagged(&client.command(&mut world, "b AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA=="), "b NO");
}

#[test]
fn too_many_bad_commands_end_the_session() {
    let mut world = World::new();
    let mut client = Client::new();
    for i in 0..BAD_COMMANDS_MAX {
        client.command(&mut world, &format!("x{i} FROBNICATE"));
    }
    assert!(client.closed, "session should close");
    let text = String::from_utf8_lossy(&client.transcript).into_owned();
    assert!(text.contains("* BYE"), "{text}");
}

#[test]
fn oversized_append_is_toobig_and_connection_survives() {
    let mut world = World::new();
    let limits = FrameLimits { append_literal_bytes_max: 100_000, ..FrameLimits::default() };
    let mut config = ImapConfig::new("test.example");
    config.frame_limits = limits;
    let mut client = Client::with_config(config);
    client.login(&mut world);
    let reply = client.command(&mut world, "a APPEND INBOX {200000}");
    tagged(&reply, "a NO [TOOBIG]");
    tagged(&client.command(&mut world, "b NOOP"), "b OK");
}

#[test]
fn authenticate_plain_with_continuation_and_initial_response() {
    let mut world = World::new();
    let mut client = Client::new();
    let reply = client.command(&mut world, "a AUTHENTICATE PLAIN");
    assert_eq!(reply, vec!["+ ".to_owned()]);
    let reply = client.command(&mut world, "AGFsaWNlAHNlY3JldA==");
    tagged(&reply, "a OK [CAPABILITY");
    let mut other = Client::new();
    let reply = other.command(&mut world, "b AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==");
    tagged(&reply, "b OK [CAPABILITY");
    assert!(other.session.is_authenticated());
}

/// Extracts the number after `MODSEQ (` in a line.
fn modseq_of(line: &str) -> u64 {
    let start = line.find("MODSEQ (").expect("MODSEQ") + 8;
    line[start..].split(')').next().unwrap().parse().unwrap()
}

#[test]
fn condstore_changedsince_and_unchangedsince() {
    let mut world = World::new();
    let mut client = Client::new();
    client.login(&mut world);
    for i in 0..3 {
        append(&mut client, &mut world, &message(&format!("m{i}"), 5));
    }
    let select = client.command(&mut world, "s SELECT INBOX (CONDSTORE)");
    assert!(select.iter().any(|l| l.starts_with("* OK [HIGHESTMODSEQ ")), "{select:?}");
    let reply = client.command(&mut world, "f FETCH 1:3 (MODSEQ)");
    let before: Vec<u64> = reply[..3].iter().map(|l| modseq_of(l)).collect();
    let reply = client.command(&mut world, "t STORE 2 +FLAGS (\\Flagged)");
    let changed = modseq_of(&reply[0]);
    assert!(changed > *before.iter().max().unwrap());
    // Only message 2 changed since the old highest modseq.
    let since = before.iter().max().unwrap();
    let reply = client.command(&mut world, &format!("c FETCH 1:* (FLAGS) (CHANGEDSINCE {since})"));
    assert_eq!(reply.len(), 2, "{reply:?}");
    assert!(reply[0].starts_with("* 2 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ ("), "{reply:?}");
    // UNCHANGEDSINCE below message 2's modseq fails for it only.
    let reply = client
        .command(&mut world, &format!("u STORE 1:3 (UNCHANGEDSINCE {since}) +FLAGS (\\Seen)"));
    tagged(&reply, "u OK [MODIFIED 2]");
    assert_eq!(reply.iter().filter(|l| l.contains("\\Seen")).count(), 2, "{reply:?}");
    // A silent STORE still reports the new modseq of what it changed (RFC 7162 §3.1.3).
    let reply = client.command(&mut world, "q STORE 3 +FLAGS.SILENT (\\Deleted)");
    assert!(reply[0].starts_with("* 3 FETCH (UID 3 MODSEQ ("), "{reply:?}");
    let reply = client.command(&mut world, "r STORE 3 +FLAGS.SILENT (\\Deleted)");
    assert_eq!(reply.len(), 1, "nothing changed, nothing reported: {reply:?}");
    let status = client.command(&mut world, "st STATUS INBOX (HIGHESTMODSEQ)");
    assert!(status[0].starts_with("* STATUS INBOX (HIGHESTMODSEQ "), "{status:?}");
}

#[test]
fn idle_reports_other_sessions_changes() {
    let mut world = World::new();
    let mut idler = Client::new();
    let mut other = Client::new();
    idler.login(&mut world);
    other.login(&mut world);
    idler.command(&mut world, "s SELECT INBOX");
    let reply = idler.command(&mut world, "i IDLE");
    assert_eq!(reply, vec!["+ idling".to_owned()]);
    assert!(idler.idle);
    append(&mut other, &mut world, &message("new", 3));
    // The shard calls next() when the store changed.
    idler.run(&mut world);
    // The idler is the first session told of the new message: it is its \Recent.
    assert_eq!(idler.drain(), vec!["* 1 EXISTS".to_owned(), "* 1 RECENT".to_owned()]);
    idler.run(&mut world);
    assert!(idler.drain().is_empty(), "nothing new, nothing said");
    let reply = idler.command(&mut world, "DONE");
    tagged(&reply, "i OK");
}

#[test]
fn reports_of_foreign_changes_wait_for_their_flush() {
    let mut world = World::new();
    let mut idler = Client::new();
    let mut other = Client::new();
    idler.login(&mut world);
    other.login(&mut world);
    idler.command(&mut world, "s SELECT INBOX");
    idler.command(&mut world, "i IDLE");
    // The other session's APPEND, fed by hand so its flush does not run yet.
    let raw = message("unflushed", 3);
    let command = append_command(&raw);
    other.session.feed(&command);
    let Step::Write { durable: Some(append_epoch), .. } =
        other.session.next(Some(&mut world.store))
    else {
        panic!("APPEND must wait for a flush");
    };
    // The idler's EXISTS must not go out before the appended message is durable.
    match idler.session.next(Some(&mut world.store)) {
        Step::Write { durable, .. } => {
            assert!(
                durable.is_some_and(|epoch| epoch >= append_epoch),
                "EXISTS sent before its flush: {durable:?}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // Once reported, nothing new: the next turn writes nothing and waits for nothing.
    assert!(matches!(idler.session.next(Some(&mut world.store)), Step::Idle));
}

#[test]
fn repeated_login_failures_end_the_session() {
    let mut world = World::new();
    let mut client = Client::new();
    for i in 0..skua_protocols::imap::session::AUTH_FAILURES_MAX {
        assert!(!client.closed);
        let reply = client.command(&mut world, &format!("a{i} LOGIN alice wrong"));
        assert!(reply[0].starts_with(&format!("a{i} NO [AUTHENTICATIONFAILED]")), "{reply:?}");
    }
    assert!(client.closed);
    assert!(String::from_utf8_lossy(&client.transcript).contains("* BYE Too many failed"));
}

#[test]
fn deleting_the_selected_mailbox_elsewhere_ends_the_session() {
    let mut world = World::new();
    let mut reader = Client::new();
    let mut admin = Client::new();
    reader.login(&mut world);
    admin.login(&mut world);
    tagged(&admin.command(&mut world, "c CREATE Doomed"), "c OK");
    tagged(&reader.command(&mut world, "s SELECT Doomed"), "s OK");
    tagged(&admin.command(&mut world, "d DELETE Doomed"), "d OK");
    let reply = reader.command(&mut world, "n NOOP");
    assert_eq!(reply[0], "* BYE Selected mailbox was deleted");
    assert!(reader.closed);
}

#[test]
fn pipelined_appends_share_one_write_and_one_ticket() {
    let mut world = World::new();
    let mut client = Client::new();
    client.login(&mut world);
    let raw = message("p", 10);
    let mut burst = Vec::new();
    for i in 0..5 {
        burst.extend_from_slice(format!("p{i} APPEND INBOX {{{}+}}\r\n", raw.len()).as_bytes());
        burst.extend_from_slice(&raw);
        burst.extend_from_slice(b"\r\n");
    }
    client.session.feed(&burst);
    let Step::Write { chunks, durable } = client.session.next(Some(&mut world.store)) else {
        panic!("expected one write");
    };
    assert!(durable.is_some());
    let text: Vec<u8> = chunks.iter().flat_map(|c| c.as_bytes().to_vec()).collect();
    let text = String::from_utf8_lossy(&text);
    assert_eq!(text.matches(" OK [APPENDUID ").count(), 5, "{text}");
}

#[test]
fn own_changes_are_absorbed_but_foreign_ones_still_reported() {
    let mut world = World::new();
    let mut a = Client::new();
    let mut b = Client::new();
    a.login(&mut world);
    b.login(&mut world);
    for i in 0..3 {
        append(&mut a, &mut world, &message(&format!("m{i}"), 3));
    }
    tagged(&a.command(&mut world, "s SELECT INBOX"), "s OK");
    tagged(&b.command(&mut world, "s SELECT INBOX"), "s OK");
    // A's own STORE is reported once, by the STORE itself.
    let reply = a.command(&mut world, "t STORE 2 +FLAGS (\\Flagged)");
    assert_eq!(reply.len(), 2, "{reply:?}");
    assert_eq!(a.command(&mut world, "n NOOP").len(), 1, "nothing new for A");
    // B's change before A's next STORE is reported to A alongside A's own.
    tagged(&b.command(&mut world, "u STORE 1 +FLAGS (\\Answered)"), "u OK");
    let reply = a.command(&mut world, "t2 STORE 3 +FLAGS (\\Seen)");
    // A selected first, so the three messages are A's \Recent.
    assert!(
        reply.contains(&"* 1 FETCH (FLAGS (\\Answered \\Recent) UID 1)".to_owned()),
        "{reply:?}"
    );
    assert!(reply.contains(&"* 3 FETCH (FLAGS (\\Seen \\Recent) UID 3)".to_owned()), "{reply:?}");
    // And B's change after A's quiet STORE arrives with A's NOOP.
    tagged(&a.command(&mut world, "t3 STORE 2 -FLAGS (\\Flagged)"), "t3 OK");
    let b_reply = b.command(&mut world, "u2 STORE 3 +FLAGS (\\Deleted)");
    let reply = a.command(&mut world, "n2 NOOP");
    assert_eq!(reply[0], "* 3 FETCH (FLAGS (\\Seen \\Deleted \\Recent) UID 3)", "{reply:?}");
    // B heard about A's changes with its own STORE.
    assert!(b_reply.contains(&"* 2 FETCH (FLAGS () UID 2)".to_owned()), "{b_reply:?}");
    assert_eq!(b.command(&mut world, "n NOOP").len(), 1);
}
