//! METADATA (RFC 5464) beyond the transcript (`transcripts/31_metadata.txt`): the limits'
//! response codes, the configured admin contact, values holding NUL (literal8 both ways),
//! SETMETADATA waiting for durability, and entries read back after a restart.

mod imap_support;

use imap_support::{Client, World, tagged};
use skua_core::disk::Disk;
use skua_core::limits::{METADATA_ENTRIES_PER_MAILBOX_MAX, METADATA_VALUE_BYTES_MAX};
use skua_protocols::imap::session::ImapConfig;

#[test]
fn admin_contact_comes_from_the_config_and_is_read_only() {
    let mut world = World::new();
    let mut config = ImapConfig::new("test.example");
    config.admin_contact = Some("mailto:postmaster@test.example".into());
    let mut client = Client::with_config(config);
    client.login(&mut world);
    let reply = client.command(&mut world, "a GETMETADATA \"\" (/shared/admin /shared/comment)");
    assert_eq!(
        reply[0],
        "* METADATA \"\" (/shared/admin \"mailto:postmaster@test.example\" /shared/comment NIL)"
    );
    tagged(&reply, "a OK GETMETADATA completed");
    let reply = client.command(&mut world, "b SETMETADATA \"\" (/shared/admin \"mailto:x@y\")");
    tagged(&reply, "b NO ");
    // DEPTH from /shared shows it too (it is an entry like the others to a reader).
    let reply = client.command(&mut world, "c GETMETADATA \"\" (DEPTH infinity) /shared/admin");
    assert!(reply[0].contains("mailto:postmaster@test.example"), "{reply:?}");
    // Without a configured contact there is none.
    let mut world = World::new();
    let mut client = Client::new();
    client.login(&mut world);
    let reply = client.command(&mut world, "a GETMETADATA \"\" /shared/admin");
    assert_eq!(reply[0], "* METADATA \"\" (/shared/admin NIL)");
}

#[test]
fn limits_answer_maxsize_and_toomany() {
    let mut world = World::new();
    let mut client = Client::new();
    client.login(&mut world);
    let len = METADATA_VALUE_BYTES_MAX as usize + 1;
    let mut command = format!("a SETMETADATA INBOX (/private/big {{{len}+}}\r\n").into_bytes();
    command.extend(std::iter::repeat_n(b'x', len));
    command.extend_from_slice(b")\r\n");
    client.lines.clear();
    client.send(&mut world, &command);
    let reply = client.drain();
    let want = format!("a NO [METADATA MAXSIZE {METADATA_VALUE_BYTES_MAX}] Value too long");
    assert_eq!(reply, [want]);
    // Exactly the limit is accepted.
    let len = METADATA_VALUE_BYTES_MAX as usize;
    let mut command = format!("b SETMETADATA INBOX (/private/big {{{len}+}}\r\n").into_bytes();
    command.extend(std::iter::repeat_n(b'x', len));
    command.extend_from_slice(b")\r\n");
    client.send(&mut world, &command);
    tagged(&client.drain(), "b OK");
    let entries: Vec<String> =
        (0..METADATA_ENTRIES_PER_MAILBOX_MAX).map(|i| format!("/private/e{i} \"{i}\"")).collect();
    let reply = client.command(&mut world, &format!("c SETMETADATA INBOX ({})", entries.join(" ")));
    assert_eq!(reply, ["c NO [METADATA TOOMANY] Too many metadata entries"]);
    // All or none: nothing of the refused command was stored.
    let last = METADATA_ENTRIES_PER_MAILBOX_MAX - 1;
    let reply =
        client.command(&mut world, &format!("d GETMETADATA INBOX (/private/e0 /private/e{last})"));
    assert_eq!(reply[0], format!("* METADATA INBOX (/private/e0 NIL /private/e{last} NIL)"));
}

#[test]
fn values_with_nul_go_both_ways_as_literal8() {
    let mut world = World::new();
    let mut client = Client::new();
    client.login(&mut world);
    client.lines.clear();
    client.send(&mut world, b"a SETMETADATA \"\" (/private/vendor/skua/blob ~{3+}\r\na\0b)\r\n");
    tagged(&client.drain(), "a OK");
    client.lines.clear();
    client.send(&mut world, b"b GETMETADATA \"\" /private/vendor/skua/blob\r\n");
    let bytes = String::from_utf8_lossy(&client.transcript).into_owned();
    assert!(
        bytes.ends_with("* METADATA \"\" (/private/vendor/skua/blob ~{3}\r\na\0b)\r\nb OK GETMETADATA completed\r\n"),
        "{bytes:?}"
    );
}

#[test]
fn setmetadata_waits_for_durability_and_entries_survive_a_restart() {
    let mut world = World::new();
    let mut client = Client::new();
    client.login(&mut world);
    let reply = client.command(&mut world, "a CREATE Lists");
    tagged(&reply, "a OK");
    let reply = client.command(
        &mut world,
        "b SETMETADATA Lists (/shared/comment \"mailing lists\" /private/vendor/skua/colour \"#336699\")",
    );
    tagged(&reply, "b OK SETMETADATA completed");
    // The reply carried a durability ticket: the harness flushed before writing it, so there
    // is nothing left to flush.
    assert!(!world.flush(), "the SETMETADATA reply went out before its write was durable");
    let reply = client.command(&mut world, "c SETMETADATA \"\" (/private/comment \"mine\")");
    tagged(&reply, "c OK");
    world.reopen();
    let mut client = Client::new();
    client.login(&mut world);
    // The first metadata command of the store's life replays metadata.log. What it read may
    // be in the page cache only (a crashed process wrote it, never synced): the replay marks
    // the log dirty and the reply waits for the flush that syncs it.
    let before = world.disk.epoch_durable();
    let reply = client
        .command(&mut world, "d GETMETADATA Lists (/shared/comment /private/vendor/skua/colour)");
    assert_eq!(
        reply[0],
        "* METADATA Lists (/shared/comment \"mailing lists\" /private/vendor/skua/colour \"#336699\")"
    );
    assert!(world.disk.epoch_durable() > before, "the first GETMETADATA waited for no flush");
    let reply = client.command(&mut world, "e GETMETADATA \"\" /private/comment");
    assert_eq!(reply[0], "* METADATA \"\" (/private/comment \"mine\")");
}
