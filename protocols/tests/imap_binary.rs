//! FETCH BINARY / BINARY.PEEK / BINARY.SIZE (RFC 3516) and PREVIEW (RFC 8970) against a real
//! store: exact decoded bytes, `literal8` only for NUL, `NO [UNKNOWN-CTE]`, `\Seen`, partials,
//! large parts streamed in bounded slices, and issue 9's bug: NUL bytes stored by a `literal8`
//! APPEND were sent inside a plain `{n}` literal by `BODY[]`, which may not hold NUL.

mod imap_support;

use base64::Engine as _;
use imap_support::{Client, World, tagged};
use skua_core::types::{Flags, Uid};
use skua_protocols::imap::limits::SLICE_OUTPUT_BYTES_MAX;
use skua_protocols::mime::cache::build;

/// Stores `message` in INBOX directly (as a `literal8` APPEND would) and returns its UID.
fn store(world: &mut World, message: &[u8]) -> Uid {
    let inbox = world.store.mailbox_id("INBOX").expect("inbox");
    let (uid, _) = world
        .store
        .append(inbox, message, &build(message), Flags::default(), None)
        .expect("append");
    uid
}

fn selected(messages: &[&[u8]]) -> (World, Client) {
    let mut world = World::new();
    for message in messages {
        store(&mut world, message);
    }
    let mut client = Client::new();
    client.login(&mut world);
    tagged(&client.command(&mut world, "s SELECT INBOX"), "s OK");
    (world, client)
}

/// The raw output bytes of one command.
fn output(client: &mut Client, world: &mut World, line: &str) -> Vec<u8> {
    let start = client.transcript.len();
    client.command(world, line);
    client.transcript[start..].to_vec()
}

/// Pseudo-random bytes (every value, NUL included), reproducible.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn base64_lines(data: &[u8]) -> Vec<u8> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = Vec::new();
    for line in encoded.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn attachment_message(data: &[u8]) -> Vec<u8> {
    let mut m = b"Subject: parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
caf=C3=A9 au=\r\n lait\r\n--b\r\nContent-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\r\n"
        .to_vec();
    m.extend_from_slice(&base64_lines(data));
    m.extend_from_slice(
        b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n\
begin 644 x\r\nend\r\n--b--\r\n",
    );
    m
}

#[test]
fn parts_are_decoded_and_nul_goes_out_in_a_literal8() {
    let data = [0u8, 1, 2, 0xff, 0, b'x'];
    let (mut world, mut client) = selected(&[&attachment_message(&data)]);
    let got =
        output(&mut client, &mut world, "f FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[2] BINARY.PEEK[2])");
    let mut expected =
        b"* 1 FETCH (BINARY[1] {13}\r\ncaf\xc3\xa9 au lait BINARY.SIZE[2] 6 BINARY[2] ~{6}\r\n"
            .to_vec();
    expected.extend_from_slice(&data);
    expected.extend_from_slice(b")\r\nf OK FETCH completed\r\n");
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&expected));
    assert_eq!(got, expected);
    // Partial fetches count decoded bytes; the response names the section without origin.
    let got =
        output(&mut client, &mut world, "f FETCH 1 (BINARY.PEEK[2]<3.2> BINARY.PEEK[1]<4.100>)");
    assert_eq!(
        got,
        b"* 1 FETCH (BINARY[2] ~{2}\r\n\xff\0 BINARY[1] {9}\r\n\xa9 au lait)\r\nf OK FETCH completed\r\n"
    );
    // A part that does not exist is empty, as BODY[] answers.
    let got = output(&mut client, &mut world, "f FETCH 1 (BINARY.PEEK[7] BINARY.SIZE[7])");
    assert_eq!(got, b"* 1 FETCH (BINARY[7] \"\" BINARY.SIZE[7] 0)\r\nf OK FETCH completed\r\n");
    // BINARY[] is the message as stored.
    let lines = client.command(&mut world, "f FETCH 1 BINARY.SIZE[]");
    assert_eq!(lines[0], format!("* 1 FETCH (BINARY.SIZE[] {})", attachment_message(&data).len()));
    // The flags were not touched by the PEEK forms.
    let lines = client.command(&mut world, "f FETCH 1 FLAGS");
    assert_eq!(lines[0], "* 1 FETCH (FLAGS (\\Recent))");
}

#[test]
fn an_unknown_transfer_encoding_is_no_unknown_cte() {
    let (mut world, mut client) = selected(&[&attachment_message(b"abc")]);
    for command in [
        "f FETCH 1 BINARY.PEEK[3]",
        "f FETCH 1 BINARY.SIZE[3]",
        "f UID FETCH 1 (BINARY.PEEK[1] BINARY.PEEK[3])",
    ] {
        let lines = client.command(&mut world, command);
        assert_eq!(
            lines,
            vec!["f NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding in a BINARY part"]
        );
    }
    // Nothing was sent for the message (not even its decodable part 1); the other parts still
    // decode on their own.
    let lines = client.command(&mut world, "f FETCH 1 BINARY.SIZE[1]");
    assert_eq!(lines[0], "* 1 FETCH (BINARY.SIZE[1] 13)");
}

/// A BINARY FETCH that stops at a part it cannot decode sets `\Seen` only on the messages it
/// answered before: the refused message and those after it stay unseen (they were marked
/// with the whole chunk before).
#[test]
fn a_refused_binary_fetch_sets_no_seen_beyond_what_it_sent() {
    let refused = attachment_message(b"abc");
    let ok = String::from_utf8(refused.clone()).unwrap().replace("x-uuencode", "7bit").into_bytes();
    let (mut world, mut client) = selected(&[&ok, &refused, &ok]);
    let lines = client.command(&mut world, "f FETCH 1:3 BINARY[3]");
    assert_eq!(lines[0], "* 1 FETCH (BINARY[3] {16}");
    assert_eq!(lines[1], "begin 644 x");
    assert_eq!(lines[2], "end FLAGS (\\Seen \\Recent))");
    tagged(&lines, "f NO [UNKNOWN-CTE]");
    let lines = client.command(&mut world, "f FETCH 1:3 FLAGS");
    let expected = [
        "* 1 FETCH (FLAGS (\\Seen \\Recent))",
        "* 2 FETCH (FLAGS (\\Recent))",
        "* 3 FETCH (FLAGS (\\Recent))",
    ];
    assert_eq!(lines[..3], expected);
}

#[test]
fn binary_without_peek_sets_seen() {
    let (mut world, mut client) = selected(&[&attachment_message(b"abc")]);
    let lines = client.command(&mut world, "f FETCH 1 BINARY[2]");
    assert_eq!(lines[0], "* 1 FETCH (BINARY[2] {3}");
    assert_eq!(lines[1], "abc FLAGS (\\Seen \\Recent))");
    tagged(&lines, "f OK");
}

#[test]
fn body_sections_never_carry_nul_and_binary_keeps_it() {
    let message = b"Subject: nul\r\nContent-Transfer-Encoding: binary\r\n\r\na\0b\r\n";
    let (mut world, mut client) = selected(&[message]);
    for item in ["BODY.PEEK[]", "BODY.PEEK[TEXT]", "BODY.PEEK[1]", "RFC822.TEXT"] {
        let got = output(&mut client, &mut world, &format!("f FETCH 1 {item}"));
        assert!(!got.contains(&0), "{item}: {got:?}");
        assert!(got.windows(3).any(|w| w == b"a\x80b"), "{item}: {got:?}");
    }
    let got = output(&mut client, &mut world, "f FETCH 1 BINARY.PEEK[1]");
    assert_eq!(got, b"* 1 FETCH (BINARY[1] ~{5}\r\na\0b\r\n)\r\nf OK FETCH completed\r\n");
    let got = output(&mut client, &mut world, "f FETCH 1 (RFC822.SIZE BINARY.SIZE[])");
    assert_eq!(
        String::from_utf8_lossy(&got),
        format!(
            "* 1 FETCH (RFC822.SIZE {0} BINARY.SIZE[] {0})\r\nf OK FETCH completed\r\n",
            message.len()
        )
    );
}

/// The literal after `* n FETCH (... BINARY[part] ` in `output`, and what follows it.
fn literal_after<'a>(output: &'a [u8], label: &[u8]) -> (&'a [u8], &'a [u8]) {
    let at = output.windows(label.len()).position(|w| w == label).expect("label") + label.len();
    let rest = &output[at..];
    let rest = rest.strip_prefix(b"~").unwrap_or(rest);
    assert_eq!(rest[0], b'{');
    let close = rest.iter().position(|&b| b == b'}').expect("}");
    let len: usize = std::str::from_utf8(&rest[1..close]).unwrap().parse().unwrap();
    let data = &rest[close + 3..close + 3 + len];
    (data, &rest[close + 3 + len..])
}

/// The size of a large part is measured over many slices, each decoding a bounded amount: the
/// command pauses (yields) between them instead of decoding megabytes in one step.
#[test]
fn a_large_part_is_measured_in_bounded_steps() {
    let data = noise(3 * 1024 * 1024);
    let message = attachment_message(&data);
    let (mut world, mut client) = selected(&[&message]);
    let yields = client.yields;
    let lines = client.command(&mut world, "f FETCH 1 BINARY.SIZE[2]");
    assert_eq!(lines[0], format!("* 1 FETCH (BINARY.SIZE[2] {})", data.len()));
    // About 4 MiB of base64 at 256 KiB of work per slice.
    assert!(client.yields - yields >= 10, "paused {} times", client.yields - yields);
    let lines = client.command(&mut world, "f FETCH 1 BINARY.SIZE[1]");
    assert_eq!(lines[0], "* 1 FETCH (BINARY.SIZE[1] 13)");
    // The size of a part that needs no decoding (here the whole message) is its length: no
    // pass over it, so no pause.
    let yields = client.yields;
    let lines = client.command(&mut world, "f FETCH 1 BINARY.SIZE[]");
    assert_eq!(lines[0], format!("* 1 FETCH (BINARY.SIZE[] {})", message.len()));
    assert_eq!(client.yields, yields);
}

#[test]
fn a_large_attachment_is_streamed_in_bounded_slices() {
    let data = noise(3 * 1024 * 1024 + 17);
    let message = attachment_message(&data);
    let (mut world, mut client) = selected(&[&message, &message]);
    let writes = client.writes;
    let got = output(
        &mut client,
        &mut world,
        "f FETCH 1:2 (BINARY.PEEK[2] UID BINARY.PEEK[2]<1000.300000> BINARY.SIZE[2])",
    );
    assert!(got.ends_with(b"f OK FETCH completed\r\n"));
    // Two messages, each: UID and SIZE first, then the two streamed literals.
    let size_line = format!("* 1 FETCH (UID 1 BINARY.SIZE[2] {} BINARY[2] ~{{", data.len());
    assert!(got.starts_with(size_line.as_bytes()), "{:?}", String::from_utf8_lossy(&got[..80]));
    let (first, rest) = literal_after(&got, b"* 1 FETCH (UID 1 BINARY.SIZE[2] 3145745 BINARY[2] ");
    assert!(first == data.as_slice(), "message 1, whole part");
    let (second, rest) = literal_after(rest, b" BINARY[2] ");
    assert!(second == &data[1000..301_000], "message 1, partial");
    assert!(rest.starts_with(b")\r\n* 2 FETCH (UID 2 "));
    let (third, _) = literal_after(rest, b"BINARY.SIZE[2] 3145745 BINARY[2] ");
    assert!(third == data.as_slice(), "message 2");
    // Bounded: no single write holds much more than a slice's output.
    assert!(client.writes - writes > 20, "streamed over many writes: {}", client.writes - writes);
    assert!(
        client.largest_write <= SLICE_OUTPUT_BYTES_MAX + 64 * 1024,
        "largest write {}",
        client.largest_write
    );
}

/// Sends `command` and runs the session to its first slice of output, then runs `meanwhile`
/// on the store (as another session would between slices), then lets the command finish;
/// returns the command's output.
fn interrupted(
    world: &mut World,
    client: &mut Client,
    command: &str,
    meanwhile: impl FnOnce(&mut World),
) -> Vec<u8> {
    use skua_protocols::imap::session::Step;
    let start = client.transcript.len();
    client.session.feed(format!("{command}\r\n").as_bytes());
    loop {
        match client.session.next(Some(&mut world.store)) {
            Step::Write { chunks, .. } => {
                for chunk in &chunks {
                    client.transcript.extend_from_slice(chunk.as_bytes());
                }
                break;
            }
            Step::Yield => {}
            _ => panic!("unexpected step"),
        }
    }
    meanwhile(world);
    client.run(world);
    client.transcript[start..].to_vec()
}

/// A message expunged by another session while its BINARY literal is half sent is still in
/// the spool: the literal is finished with the real bytes.
#[test]
fn a_message_expunged_while_streamed_is_sent_whole() {
    let data = noise(2 * 1024 * 1024);
    let (mut world, mut client) = selected(&[&attachment_message(&data)]);
    let got = interrupted(&mut world, &mut client, "f UID FETCH 1 BINARY.PEEK[2]", |world| {
        let inbox = world.store.mailbox_id("INBOX").unwrap();
        world.store.expunge(inbox, &[Uid::new(1).unwrap()]).expect("expunge");
    });
    let (literal, rest) = literal_after(&got, b"BINARY[2] ");
    assert!(literal == data.as_slice());
    let text = String::from_utf8_lossy(rest);
    assert!(text.starts_with(")\r\n") && text.ends_with("f OK FETCH completed\r\n"), "{text}");
}

/// The selected mailbox deleted by another session while a BINARY literal is half sent: the
/// message cannot be read again, so the literal keeps its promised length with filler and the
/// FETCH ends in NO naming the message.
#[test]
fn a_message_gone_while_streamed_gets_filler_and_no() {
    let data = noise(2 * 1024 * 1024);
    let mut world = World::new();
    world.store.create_mailbox("Box").expect("create");
    let message = attachment_message(&data);
    let boxed = world.store.mailbox_id("Box").unwrap();
    world.store.append(boxed, &message, &build(&message), Flags::default(), None).expect("append");
    let mut client = Client::new();
    client.login(&mut world);
    tagged(&client.command(&mut world, "s SELECT Box"), "s OK");
    let got = interrupted(&mut world, &mut client, "f UID FETCH 1 BINARY.PEEK[2]", |world| {
        world.store.delete_mailbox("Box").expect("delete");
    });
    let (literal, rest) = literal_after(&got, b"BINARY[2] ");
    assert_eq!(literal.len(), data.len());
    assert!(literal[..SLICE_OUTPUT_BYTES_MAX / 2] == data[..SLICE_OUTPUT_BYTES_MAX / 2]);
    assert!(literal.ends_with(b"    "), "filler after the delete");
    let text = String::from_utf8_lossy(rest);
    assert!(text.starts_with(")\r\n"), "{text}");
    assert!(text.contains("f NO [EXPUNGEISSUED] Message was expunged (UID 1)"), "{text}");
}

#[test]
fn preview_is_the_first_text_part_folded() {
    let html = b"Subject: html\r\nContent-Type: text/html; charset=iso-8859-1\r\n\r\n\
<html><head><style>b{}</style></head><body><p>Gr&uuml;&#223;e,</p>\r\n<p>K\xf6ln</p></body></html>\r\n";
    let (mut world, mut client) =
        selected(&[&attachment_message(b"x"), html, b"Subject: empty\r\n\r\n"]);
    let lines = client.command(&mut world, "p FETCH 1:3 (PREVIEW)");
    assert_eq!(lines[0], "* 1 FETCH (PREVIEW {13}");
    assert_eq!(lines[1], "caf\u{e9} au lait)");
    let text = "Gr&uuml;\u{df}e, K\u{f6}ln";
    assert_eq!(lines[2], format!("* 2 FETCH (PREVIEW {{{}}}", text.len()));
    assert_eq!(lines[3], format!("{text})"));
    assert_eq!(lines[4], "* 3 FETCH (PREVIEW \"\")");
    tagged(&lines, "p OK");
    let lines = client.command(&mut world, "p FETCH 3 (PREVIEW (LAZY) FLAGS)");
    assert_eq!(lines[0], "* 3 FETCH (PREVIEW \"\" FLAGS (\\Recent))");
}
