//! FETCH of MIME structure and sections from the cache blob and the spool: ENVELOPE,
//! BODYSTRUCTURE, BODY[n], BODY[n.MIME], HEADER.FIELDS, partials, RFC822.* forms.

mod imap_support;

use imap_support::{Client, World, tagged};

const MULTIPART: &str = "From: Ann <ann@example.org>\r\n\
To: bob@example.org\r\n\
Subject: parts\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain\r\n\
\r\n\
first part\r\n\
--b1\r\n\
Content-Type: text/html\r\n\
\r\n\
<p>second</p>\r\n\
--b1--\r\n";

fn setup() -> (World, Client) {
    let mut world = World::new();
    let mut client = Client::new();
    client.login(&mut world);
    let mut command = format!("a APPEND INBOX {{{}+}}\r\n", MULTIPART.len()).into_bytes();
    command.extend_from_slice(MULTIPART.as_bytes());
    command.extend_from_slice(b"\r\n");
    client.send(&mut world, &command);
    tagged(&client.drain(), "a OK [APPENDUID");
    tagged(&client.command(&mut world, "s SELECT INBOX"), "s OK");
    (world, client)
}

/// The output bytes of one command, as text.
fn output(client: &mut Client, world: &mut World, line: &str) -> String {
    let start = client.transcript.len();
    client.command(world, line);
    String::from_utf8_lossy(&client.transcript[start..]).into_owned()
}

#[test]
fn envelope_and_bodystructure_come_from_the_cache() {
    let (mut world, mut client) = setup();
    let text = output(&mut client, &mut world, "f FETCH 1 (ENVELOPE BODYSTRUCTURE BODY)");
    assert!(text.contains("ENVELOPE ("), "{text}");
    assert!(text.contains("\"parts\""), "{text}");
    assert!(text.contains("\"ann\" \"example.org\""), "{text}");
    let upper = text.to_uppercase();
    assert!(upper.contains("BODYSTRUCTURE ((\"TEXT\" \"PLAIN\""), "{text}");
    assert!(upper.contains("\"MIXED\""), "{text}");
    assert!(text.ends_with("f OK FETCH completed\r\n"), "{text}");
}

#[test]
fn sections_and_partials() {
    let (mut world, mut client) = setup();
    let text = output(&mut client, &mut world, "f FETCH 1 (BODY.PEEK[1])");
    assert!(text.starts_with("* 1 FETCH (BODY[1] {10}\r\nfirst part)\r\n"), "{text}");
    let text = output(&mut client, &mut world, "f FETCH 1 (BODY.PEEK[2.MIME])");
    assert!(text.contains("BODY[2.MIME] {"), "{text}");
    assert!(text.contains("Content-Type: text/html\r\n\r\n)"), "{text}");
    let text = output(&mut client, &mut world, "f FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert!(
        text.contains("BODY[HEADER.FIELDS (SUBJECT)] {18}\r\nSubject: parts\r\n\r\n)"),
        "{text}"
    );
    let text = output(&mut client, &mut world, "f FETCH 1 (BODY.PEEK[]<6.3>)");
    assert!(text.starts_with("* 1 FETCH (BODY[]<6> {3}\r\nAnn)\r\n"), "{text}");
    let text = output(&mut client, &mut world, "f FETCH 1 (BODY.PEEK[3])");
    assert!(text.starts_with("* 1 FETCH (BODY[3] \"\")\r\n"), "{text}");
    let text = output(&mut client, &mut world, "f FETCH 1 (RFC822.HEADER)");
    assert!(text.contains("RFC822.HEADER {"), "{text}");
    assert!(!text.contains("FLAGS"), "RFC822.HEADER does not set \\Seen: {text}");
    let text = output(&mut client, &mut world, "f FETCH 1 (RFC822.TEXT)");
    assert!(text.contains("RFC822.TEXT {"), "{text}");
    assert!(text.contains("FLAGS (\\Seen \\Recent)"), "RFC822.TEXT sets \\Seen: {text}");
}

#[test]
fn fetch_macros_and_index_items() {
    let (mut world, mut client) = setup();
    let text = output(&mut client, &mut world, "f FETCH 1 FAST");
    // Delivered before this session selected the mailbox: it is this session's \Recent.
    assert!(text.contains("FLAGS (\\Recent)"), "{text}");
    assert!(text.contains("INTERNALDATE \""), "{text}");
    assert!(text.contains(&format!("RFC822.SIZE {}", MULTIPART.len())), "{text}");
    let text = output(&mut client, &mut world, "f UID FETCH 1:* (FLAGS)");
    assert!(text.starts_with("* 1 FETCH (UID 1 FLAGS (\\Recent))"), "{text}");
}

#[test]
fn condstore_fetch_that_sets_seen_reports_uid_and_modseq() {
    let (mut world, mut client) = setup();
    tagged(&client.command(&mut world, "e ENABLE CONDSTORE"), "e OK");
    let text = output(&mut client, &mut world, "f FETCH 1 (BODY[1])");
    assert!(text.contains("first part FLAGS (\\Seen \\Recent) UID 1 MODSEQ ("), "{text}");
}
