//! Session behaviour that transcripts cannot express well: spool chunks for bodies, durability
//! tickets, configuration (plaintext refused), limits, CONDSTORE arithmetic, AUTHENTICATE forms.

mod imap_support;

use imap_support::{Client, World, tagged};
use skua_protocols::imap::limits::FrameLimits;
use skua_protocols::imap::session::{ImapConfig, Step, BAD_COMMANDS_MAX};

/// A message of `body_len` bytes of body text.
fn message(subject: &str, body_len: usize) -> Vec<u8> {
    let mut m = format!("From: a@example.org\r\nSubject: {subject}\r\n\r\n").into_bytes();
    m.extend(std::iter::repeat_n(b'x', body_len));
    m.extend_from_slice(b"\r\n");
    m
}

fn append(client: &mut Client, world: &mut World, raw: &[u8]) -> Vec<String> {
    client.lines.clear();
    let mut command = format!("ap APPEND INBOX {{{}+}}\r\n", raw.len()).into_bytes();
    command.extend_from_slice(raw);
    command.extend_from_slice(b"\r\n");
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
    assert!(reply.iter().any(|l| l.contains("FLAGS (\\Seen)")), "{reply:?}");
    let reply = client.command(&mut world, "g FETCH 1 (FLAGS)");
    assert_eq!(reply[0], "* 1 FETCH (FLAGS (\\Seen))");
}

#[test]
fn mutations_carry_a_durability_ticket_and_reads_do_not() {
    let mut world = World::new();
    let mut client = Client::new();
    client.login(&mut world);
    let raw = message("t", 10);
    let mut command = format!("ap APPEND INBOX {{{}+}}\r\n", raw.len()).into_bytes();
    command.extend_from_slice(&raw);
    command.extend_from_slice(b"\r\n");
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
    assert!(reply[0].starts_with("* 2 FETCH (FLAGS (\\Flagged) MODSEQ ("), "{reply:?}");
    // UNCHANGEDSINCE below message 2's modseq fails for it only.
    let reply =
        client.command(&mut world, &format!("u STORE 1:3 (UNCHANGEDSINCE {since}) +FLAGS (\\Seen)"));
    tagged(&reply, "u OK [MODIFIED 2]");
    assert_eq!(reply.iter().filter(|l| l.contains("\\Seen")).count(), 2, "{reply:?}");
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
    assert_eq!(idler.drain(), vec!["* 1 EXISTS".to_owned()]);
    idler.run(&mut world);
    assert!(idler.drain().is_empty(), "nothing new, nothing said");
    let reply = idler.command(&mut world, "DONE");
    tagged(&reply, "i OK");
}
