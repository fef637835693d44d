//! STARTTLS in the IMAP session (RFC 9051 §6.2.1, RFC 2595), the session's side: the shard runs
//! the handshake when the session asks (`Step::StartTls`) and reports it with `tls_started`.
//!
//! The STARTTLS command-injection class: bytes a client (or a man in the middle) pipelines in
//! plain text behind `STARTTLS` must never run as commands after the handshake.

mod imap_support;

use imap_support::{Client, World, tagged};
use skua_protocols::imap::session::ImapConfig;

fn config(plaintext: bool, require_tls: bool) -> ImapConfig {
    let mut config = ImapConfig::new("test.example");
    config.plaintext_login_allowed = plaintext;
    config.starttls = true;
    config.require_tls = require_tls;
    config
}

#[test]
fn starttls_then_login_over_tls() {
    let mut world = World::new();
    let mut client = Client::with_config(config(false, false));
    let caps = client.command(&mut world, "c CAPABILITY");
    assert!(caps[0].contains("STARTTLS") && caps[0].contains("LOGINDISABLED"), "{caps:?}");
    let refused = client.command(&mut world, "l LOGIN alice secret");
    assert!(tagged(&refused, "l NO").contains("[PRIVACYREQUIRED]"));
    let reply = client.command(&mut world, "s STARTTLS");
    tagged(&reply, "s OK");
    assert_eq!(client.tls_handshakes, 1);
    let caps = client.command(&mut world, "c CAPABILITY");
    assert!(!caps[0].contains("STARTTLS") && caps[0].contains("AUTH=PLAIN"), "{caps:?}");
    client.login(&mut world);
    let again = client.command(&mut world, "t STARTTLS");
    tagged(&again, "t BAD");
}

#[test]
fn commands_pipelined_behind_starttls_are_discarded() {
    let mut world = World::new();
    let mut client = Client::with_config(config(true, false));
    client.lines.clear();
    client.send(&mut world, b"s STARTTLS\r\nl1 LOGIN alice secret\r\nx SELECT INBOX\r\n");
    let reply = client.drain();
    assert_eq!(reply, vec!["s OK Begin TLS negotiation now".to_owned()]);
    assert_eq!(client.tls_handshakes, 1);
    assert!(!client.session.is_authenticated(), "the pipelined LOGIN never ran");
    // Nothing of the plain-text bytes surfaces once TLS runs either.
    let reply = client.command(&mut world, "n NOOP");
    assert_eq!(reply, vec!["n OK NOOP completed".to_owned()], "{reply:?}");
}

#[test]
fn a_second_starttls_and_one_without_tls_configured_get_bad() {
    let mut world = World::new();
    let mut client = Client::with_config(config(true, false));
    tagged(&client.command(&mut world, "s STARTTLS"), "s OK");
    tagged(&client.command(&mut world, "t STARTTLS"), "t BAD");
    assert_eq!(client.tls_handshakes, 1);

    let mut plain = Client::new();
    let caps = plain.command(&mut world, "c CAPABILITY");
    assert!(!caps[0].contains("STARTTLS"), "{caps:?}");
    tagged(&plain.command(&mut world, "s STARTTLS"), "s BAD");
    assert_eq!(plain.tls_handshakes, 0);
}

#[test]
fn require_tls_refuses_all_but_capability_noop_logout_and_starttls() {
    let mut world = World::new();
    // Plain text allowed (loopback) but TLS required by the config.
    let mut client = Client::with_config(config(true, true));
    let caps = client.command(&mut world, "c CAPABILITY");
    assert!(caps[0].contains("LOGINDISABLED"), "{caps:?}");
    tagged(&client.command(&mut world, "n NOOP"), "n OK");
    let refused = client.command(&mut world, "l LOGIN alice secret");
    assert!(tagged(&refused, "l NO").contains("[PRIVACYREQUIRED]"), "{refused:?}");
    let refused = client.command(&mut world, "a AUTHENTICATE PLAIN");
    assert!(tagged(&refused, "a NO").contains("[PRIVACYREQUIRED]"), "{refused:?}");
    tagged(&client.command(&mut world, "s STARTTLS"), "s OK");
    client.login(&mut world);
}
