//! COMPRESS (RFC 4978) in the IMAP session, the session's side: the shard's transport
//! compresses when the session asks (`Step::Compress`), right after the tagged OK.
//!
//! The client "MUST NOT send any further commands until it has seen the result of COMPRESS"
//! (RFC 4978 §3): bytes behind the command could be meant compressed or not, so the session
//! refuses a COMPRESS with input pipelined behind it, and runs that input as sent.

mod imap_support;

use imap_support::{Client, World, tagged};

#[test]
fn compress_asks_the_transport_once_and_only_after_its_ok() {
    let mut world = World::new();
    let mut client = Client::new();
    client.login(&mut world);
    assert_eq!(client.writes_before_compress(), None);
    let reply = client.command(&mut world, "z COMPRESS DEFLATE");
    assert_eq!(reply, ["z OK DEFLATE active"]);
    assert_eq!(client.compressions, 1);
    assert!(client.session.is_compressed());
    // The OK went out in a write of its own, before the step (it is not compressed).
    assert_eq!(client.writes_before_compress(), Some(client.writes));
    let again = client.command(&mut world, "y COMPRESS DEFLATE");
    assert_eq!(again, ["y NO [COMPRESSIONACTIVE] DEFLATE is already active"]);
    assert_eq!(client.compressions, 1, "asked once");
}

#[test]
fn compress_with_commands_pipelined_behind_it_is_refused_and_they_run_uncompressed() {
    let mut world = World::new();
    let mut client = Client::new();
    client.login(&mut world);
    client.send(&mut world, b"z COMPRESS DEFLATE\r\ny NOOP\r\n");
    let reply = client.drain();
    assert_eq!(reply.len(), 2, "{reply:?}");
    assert!(reply[0].starts_with("z BAD"), "{reply:?}");
    assert_eq!(reply[1], "y OK NOOP completed");
    assert_eq!(client.compressions, 0);
    assert!(!client.session.is_compressed());
    // Once alone, it runs.
    let reply = client.command(&mut world, "x COMPRESS DEFLATE");
    tagged(&reply, "x OK");
    assert_eq!(client.compressions, 1);
}

#[test]
fn a_partial_command_behind_compress_also_refuses_it() {
    let mut world = World::new();
    let mut client = Client::new();
    client.login(&mut world);
    client.send(&mut world, b"z COMPRESS DEFLATE\r\ny NO");
    tagged(&client.drain(), "z BAD");
    client.send(&mut world, b"OP\r\n");
    tagged(&client.drain(), "y OK");
    assert_eq!(client.compressions, 0);
}
