//! SIGHUP reloads skua's TLS certificates (issue 8, item 2: "reloaded on SIGHUP without
//! dropping a connection"). Its own test binary: the signal goes to the whole process.
//!
//! Invariants: after SIGHUP the next handshake gets the new certificate while a session set up
//! before keeps working; a SIGHUP while a file is broken keeps the certificate loaded before
//! and counts a failed reload; SIGHUP no longer ends the process once the handler is in.
//! No assertion on time: the test waits for the reload counters to move.

mod tls_support;

use std::sync::Arc;

use rustls::HandshakeKind;
use skua_shard::tls::{TlsConfigs, TlsSettings, reload};
use tls_support::{TestCa, Versions, client, connect, write};

/// Polls of the counters before giving up (a stuck reload thread fails the test, not hangs it).
const POLLS_MAX: usize = 3000;

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..POLLS_MAX {
        if done() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{what} did not happen");
}

#[test]
fn sighup_swaps_the_certificate_for_new_handshakes_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("skua test CA");
    let first = ca.server(&["mail.example.org"]);
    let paths = first.write(dir.path(), "server", &ca.pem());
    let configs = Arc::new(TlsConfigs::load(TlsSettings::new(paths.clone())).expect("load"));
    let reloader = reload::reload_on_hangup(configs.clone()).expect("handler");

    let old_client = client(&ca.pem(), Versions::Both, &[b"imap"]);
    let mut open = connect(&old_client, configs.imap(), "mail.example.org");
    open.exchange("a1 NOOP\r\n");

    let second = ca.server(&["mail.example.org"]);
    second.write(dir.path(), "server", &ca.pem());
    signal_hook::low_level::raise(signal_hook::consts::SIGHUP).expect("raise");
    wait_until("reload to generation 2", || configs.generation() == 2);
    let fresh = connect(&old_client, configs.imap(), "mail.example.org");
    assert_eq!(fresh.server.handshake_kind(), Some(HandshakeKind::Full));
    assert_eq!(fresh.server_certificate(), second.der);
    open.exchange("a2 NOOP\r\n");

    write(dir.path(), "server.key", "-----BEGIN PRIVATE KEY-----\ntruncated\n");
    signal_hook::low_level::raise(signal_hook::consts::SIGHUP).expect("raise");
    wait_until("a failed reload", || configs.reloads_failed() == 1);
    assert_eq!(configs.generation(), 2);
    let new_client = client(&ca.pem(), Versions::Both, &[]);
    let after = connect(&new_client, configs.imap(), "mail.example.org");
    assert_eq!(after.server_certificate(), second.der);
    open.exchange("a3 NOOP\r\n");
    drop(reloader);
}
