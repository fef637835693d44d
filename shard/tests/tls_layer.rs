//! skua's TLS layer (`conn_tls.rs`) on rustls's unbuffered server connection, against rustls's
//! client over an in-memory pipe, with the configurations `TlsConfigs` builds.
//!
//! The unbuffered API (taken so that an idle connection holds no record buffer, issue 8) says
//! neither the SNI name nor the exporter: the layer learns them from hooks in the config. And
//! the layer, not rustls, now owns the record buffers. Invariants: the SNI name, ALPN and
//! version are reported; the `tls-exporter` channel binding equals the client's own export on
//! TLS 1.3, full and resumed, and is absent on TLS 1.2, also for handshakes interleaved on one
//! thread; records split anywhere, or several in
//! one read, are all processed, and between reads the layer keeps at most a partial record;
//! a command the client sends with its Finished is delivered once; a client key update is
//! answered; close_notify works both ways; garbage fails with an alert and the layer refuses
//! to go on; short response pieces are gathered into few records, long ones sealed whole.

mod tls_support;

use std::sync::Arc;

use rustls::ClientConfig;
use skua_shard::tls::{TlsConfigs, TlsSettings};
use tls_support::layer::{LayerPair, records};
use tls_support::{TestCa, Versions, client, load};

/// TLS record content types.
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;

struct Site {
    _dir: tempfile::TempDir,
    configs: TlsConfigs,
    roots: String,
}

fn site() -> Site {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("skua test CA");
    let chain = ca.pem();
    let issued = ca.server(&["mail.example.org", "localhost", "127.0.0.1"]);
    let configs = load(TlsSettings::new(issued.write(dir.path(), "server", &chain)));
    Site { _dir: dir, configs, roots: ca.pem() }
}

fn client_export(pair: &LayerPair) -> [u8; 32] {
    pair.client
        .export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None)
        .expect("client exports")
}

#[test]
fn sni_alpn_and_the_channel_binding_are_what_the_client_sees() {
    let site = site();
    let tls13 = client(&site.roots, Versions::Tls13, &[b"imap"]);
    for round in ["full", "resumed"] {
        let pair = LayerPair::connected(&tls13, site.configs.imap(), "mail.example.org");
        assert_eq!(
            pair.client.handshake_kind(),
            Some(if round == "full" {
                rustls::HandshakeKind::Full
            } else {
                rustls::HandshakeKind::Resumed
            })
        );
        let info = pair.layer.info();
        assert_eq!(info.version, "TLSv1_3");
        assert_eq!(info.server_name.as_deref(), Some("mail.example.org"), "{round}");
        assert_eq!(info.alpn.as_deref(), Some("imap"));
        let binding = pair.layer.channel_binding().expect("a TLS 1.3 binding");
        assert_eq!(binding, client_export(&pair), "{round} handshake");
    }
    // Each connection has its own binding.
    let one = LayerPair::connected(&tls13, site.configs.imap(), "mail.example.org");
    let two = LayerPair::connected(&tls13, site.configs.imap(), "mail.example.org");
    assert_ne!(one.layer.channel_binding(), two.layer.channel_binding());

    // LMTP: no ALPN; an IP address: no SNI.
    let plain = client(&site.roots, Versions::Tls13, &[]);
    let pair = LayerPair::connected(&plain, site.configs.lmtp(), "127.0.0.1");
    let info = pair.layer.info();
    assert_eq!((info.server_name, info.alpn), (None, None));
    assert_eq!(pair.layer.channel_binding(), Some(client_export(&pair)));

    // TLS 1.2: the name is known; no binding is offered (see TlsLayer::channel_binding).
    let tls12 = client(&site.roots, Versions::Tls12, &[b"imap"]);
    let pair = LayerPair::connected(&tls12, site.configs.imap(), "localhost");
    let info = pair.layer.info();
    assert_eq!(info.version, "TLSv1_2");
    assert_eq!(info.server_name.as_deref(), Some("localhost"));
    assert_eq!(pair.layer.channel_binding(), None);
}

#[test]
fn handshakes_interleaved_on_one_thread_each_get_their_own_name_and_binding() {
    // A shard runs many handshakes at once, a step of one between steps of others; the hooks
    // note into one slot per thread.
    let site = site();
    let tls13 = client(&site.roots, Versions::Tls13, &[]);
    let tls12 = client(&site.roots, Versions::Tls12, &[]);
    let mut pairs = [
        LayerPair::new(&tls13, site.configs.imap(), "mail.example.org"),
        LayerPair::new(&tls12, site.configs.imap(), "localhost"),
        LayerPair::new(&tls13, site.configs.lmtp(), "localhost"),
        LayerPair::new(&tls13, site.configs.imap(), "127.0.0.1"),
    ];
    for _ in 0..8 {
        for pair in &mut pairs {
            pair.deliver_to_server().expect("server accepts");
        }
        for pair in pairs.iter_mut().rev() {
            pair.deliver_to_client().expect("client accepts");
        }
    }
    let names: Vec<Option<String>> =
        pairs.iter().map(|pair| pair.layer.info().server_name).collect();
    let expected = [Some("mail.example.org"), Some("localhost"), Some("localhost"), None];
    assert_eq!(names, expected.map(|name| name.map(str::to_owned)));
    for (index, pair) in pairs.iter().enumerate() {
        assert!(!pair.layer.is_handshaking());
        let expected = (index != 1).then(|| client_export(pair));
        assert_eq!(pair.layer.channel_binding(), expected, "connection {index}");
    }
}

#[test]
fn no_binding_before_the_handshake_is_done() {
    let site = site();
    let tls13 = client(&site.roots, Versions::Tls13, &[]);
    let mut pair = LayerPair::new(&tls13, site.configs.imap(), "mail.example.org");
    assert_eq!(pair.layer.channel_binding(), None);
    // ClientHello in; the server's flight (to its Finished) out: the secret is known, but the
    // client's Finished has not come.
    pair.deliver_to_server().expect("hello");
    assert!(pair.layer.is_handshaking());
    assert_eq!(pair.layer.channel_binding(), None);
    pair.deliver_to_client().expect("server flight");
    pair.deliver_to_server().expect("client finished");
    assert!(!pair.layer.is_handshaking());
    assert_eq!(pair.layer.channel_binding(), Some(client_export(&pair)));
}

/// Feeds `bytes` to the layer `piece` bytes at a time; checks the layer keeps no more than a
/// record's start between calls.
fn feed_in_pieces(pair: &mut LayerPair, bytes: &[u8], piece: usize) {
    for chunk in bytes.chunks(piece) {
        pair.layer.receive(chunk).expect("receive");
        assert!(pair.layer.buffered_bytes() <= 2 * (16 * 1024 + 256) + bytes.len());
    }
}

#[test]
fn records_split_anywhere_or_many_in_one_read_are_all_processed() {
    let site = site();
    for versions in [Versions::Tls13, Versions::Tls12] {
        let config = client(&site.roots, versions, &[]);
        for piece in [1, 7, 100] {
            let mut pair = LayerPair::new(&config, site.configs.imap(), "mail.example.org");
            for _ in 0..8 {
                let bytes = pair.client_records();
                feed_in_pieces(&mut pair, &bytes, piece);
                pair.deliver_to_client().expect("client accepts");
                if !pair.layer.is_handshaking() && !pair.client.is_handshaking() {
                    break;
                }
            }
            assert!(!pair.layer.is_handshaking(), "{versions:?} in pieces of {piece}");
            // Three commands in separate records, delivered in pieces.
            let mut sent = Vec::new();
            for command in [&b"a1 NOOP\r\n"[..], b"a2 CAPABILITY\r\n", b"a3 LOGOUT\r\n"] {
                std::io::Write::write_all(&mut pair.client.writer(), command).expect("write");
                sent.extend_from_slice(command);
            }
            let bytes = pair.client_records();
            assert!(records(&bytes).len() >= 3, "one record per write");
            feed_in_pieces(&mut pair, &bytes, piece);
            assert_eq!(pair.drain(), sent, "{versions:?} in pieces of {piece}");
            assert_eq!(pair.layer.buffered_bytes(), 0, "nothing kept once all is processed");
        }
    }
}

#[test]
fn a_command_sent_with_the_clients_finished_is_delivered_once() {
    let site = site();
    let config = client(&site.roots, Versions::Tls13, &[]);
    let mut pair = LayerPair::new(&config, site.configs.imap(), "mail.example.org");
    pair.deliver_to_server().expect("hello");
    pair.deliver_to_client().expect("server flight");
    // The client's Finished and its first command go in one read.
    std::io::Write::write_all(&mut pair.client.writer(), b"a1 NOOP\r\n").expect("write");
    pair.deliver_to_server().expect("finished and command");
    assert!(!pair.layer.is_handshaking());
    assert_eq!(pair.drain(), b"a1 NOOP\r\n");
    assert_eq!(pair.drain(), b"");
}

#[test]
fn a_key_update_from_the_client_is_answered_and_traffic_goes_on() {
    let site = site();
    let config = client(&site.roots, Versions::Tls13, &[]);
    let mut pair = LayerPair::connected(&config, site.configs.imap(), "mail.example.org");
    pair.client.refresh_traffic_keys().expect("key update");
    assert_eq!(pair.client_says(b"a1 NOOP\r\n"), b"a1 NOOP\r\n");
    // The layer's answering key update goes out before (and with) the next response.
    pair.server_says(&[b"a1 OK\r\n"]);
    assert_eq!(pair.client_reads(7), b"a1 OK\r\n");
    assert_eq!(pair.client_says(b"a2 NOOP\r\n"), b"a2 NOOP\r\n");
    pair.server_says(&[b"a2 OK\r\n"]);
    assert_eq!(pair.client_reads(7), b"a2 OK\r\n");
}

#[test]
fn records_taken_whole_are_the_ones_written_in_pieces() {
    let site = site();
    let config = client(&site.roots, Versions::Tls13, &[]);
    let mut pair = LayerPair::connected(&config, site.configs.imap(), "mail.example.org");
    let body = vec![b'x'; 16_000];
    let taken = pair.layer.encrypt(&[std::io::IoSlice::new(&body)]).expect("encrypt");
    assert_eq!(taken, body.len());
    // Part goes out through a socket that takes 1,000 bytes, the rest is taken whole.
    let mut sent = vec![0u8; 1000];
    let written = pair.layer.write_records(&mut &mut sent[..]).expect("write");
    assert_eq!(written, 1000);
    sent.extend(pair.layer.take_records());
    assert!(!pair.layer.wants_write());
    assert_eq!(pair.layer.buffered_bytes(), 0);
    assert_eq!(records(&sent).len(), 1, "16,000 bytes: one record");
    let mut slice = &sent[..];
    while !slice.is_empty() {
        pair.client.read_tls(&mut slice).expect("from memory");
        pair.client.process_new_packets().expect("client accepts");
    }
    let mut got = vec![0; body.len()];
    std::io::Read::read_exact(&mut pair.client.reader(), &mut got).expect("read");
    assert_eq!(got, body);
}

#[test]
fn close_notify_goes_both_ways() {
    let site = site();
    let config = client(&site.roots, Versions::Tls13, &[]);
    let mut pair = LayerPair::connected(&config, site.configs.imap(), "mail.example.org");
    // The client's last command, then its close_notify, in one read.
    std::io::Write::write_all(&mut pair.client.writer(), b"a1 LOGOUT\r\n").expect("write");
    pair.client.send_close_notify();
    pair.deliver_to_server().expect("receive");
    assert!(!pair.layer.peer_closed(), "the command first");
    assert_eq!(pair.drain(), b"a1 LOGOUT\r\n");
    assert!(pair.layer.peer_closed());
    // The server may still answer, then closes.
    pair.server_says(&[b"* BYE\r\n"]);
    pair.layer.close_notify();
    let bytes = pair.deliver_to_client().expect("client accepts");
    assert_eq!(records(&bytes).len(), 1, "one alert record");
    assert_eq!(pair.client_reads(7), b"* BYE\r\n");
    let state = pair.client.process_new_packets().expect("state");
    assert!(state.peer_has_closed());
}

#[test]
fn garbage_fails_with_an_alert_and_the_layer_goes_no_further() {
    let site = site();
    let config = client(&site.roots, Versions::Tls13, &[]);
    let mut pair = LayerPair::new(&config, site.configs.imap(), "mail.example.org");
    let error = pair.layer.receive(b"a LOGIN user password\r\n").expect_err("not TLS");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    let sent = pair.server_records();
    let found = records(&sent);
    assert_eq!(found.first().map(|record| record.0), Some(ALERT), "an alert: {found:?}");
    assert!(pair.layer.receive(b"more").is_err());
    assert!(pair.layer.encrypt(&[std::io::IoSlice::new(b"* OK\r\n")]).is_err());
    assert_eq!(pair.drain(), b"", "no plaintext from garbage");

    // A bad record after the handshake: an alert, and no more traffic.
    let mut pair = LayerPair::connected(&config, site.configs.imap(), "mail.example.org");
    let mut forged = vec![APPLICATION_DATA, 3, 3, 0, 20];
    forged.extend(1..=20);
    assert!(pair.layer.receive(&forged).is_err(), "a record that does not decrypt");
    let found = records(&pair.server_records());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(pair.layer.encrypt(&[std::io::IoSlice::new(b"* OK\r\n")]).is_err());
}

#[test]
fn a_handshake_message_too_long_or_random_bytes_fail_within_bounded_memory() {
    let site = site();
    // A ClientHello announced at 16 MB: refused at once.
    let mut layer = skua_shard::conn_tls::TlsLayer::new(site.configs.imap()).expect("layer");
    let mut record = vec![HANDSHAKE, 3, 1, 0x40, 0];
    record.extend([1, 0xff, 0xff, 0xff]);
    record.resize(5 + 0x4000, 0);
    assert!(layer.receive(&record).is_err(), "a 16 MB handshake message");

    // A ClientHello announced at 64 KiB minus one, sent in full records that never end it:
    // what the layer keeps stays within one message and one read.
    let mut layer = skua_shard::conn_tls::TlsLayer::new(site.configs.imap()).expect("layer");
    let mut first = vec![HANDSHAKE, 3, 1, 0x40, 0, 1, 0, 0xff, 0xff];
    first.resize(5 + 0x4000, 0x41);
    let mut failed = layer.receive(&first).is_err();
    let mut more = vec![HANDSHAKE, 3, 1, 0x40, 0];
    more.resize(5 + 0x4000, 0x41);
    for _ in 0..16 {
        if failed {
            break;
        }
        failed = layer.receive(&more).is_err();
        assert!(layer.buffered_bytes() <= 2 * (0xffff + 5 * 0x4000), "{}", layer.buffered_bytes());
    }
    assert!(failed, "the message never ends: refused");

    // Random bytes in random pieces: an error or more input wanted, never a panic, never
    // plaintext.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..200 {
        let mut layer = skua_shard::conn_tls::TlsLayer::new(site.configs.imap()).expect("layer");
        let len = usize::try_from(next() % 3000).expect("small");
        let mut bytes: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
        if next() % 2 == 0 && bytes.len() > 5 {
            // A handshake record header in front, so the bytes go further into rustls.
            bytes[..5].copy_from_slice(&[HANDSHAKE, 3, 1, 0, 200]);
        }
        for piece in bytes.chunks(1 + usize::try_from(next() % 700).expect("small")) {
            if layer.receive(piece).is_err() {
                break;
            }
        }
        let mut plaintext = 0;
        let _ = layer.drain_plaintext(&mut |bytes: &[u8]| plaintext += bytes.len());
        assert_eq!(plaintext, 0);
    }
    // The same after a handshake, with application-data and handshake record headers.
    let config = client(&site.roots, Versions::Tls13, &[]);
    for round in 0..40 {
        let mut pair = LayerPair::connected(&config, site.configs.imap(), "mail.example.org");
        let len = 6 + usize::try_from(next() % 2000).expect("small");
        let mut bytes: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
        let typ = if round % 2 == 0 { APPLICATION_DATA } else { HANDSHAKE };
        bytes[..3].copy_from_slice(&[typ, 3, 3]);
        let mut failed = false;
        for piece in bytes.chunks(1 + usize::try_from(next() % 700).expect("small")) {
            if pair.layer.receive(piece).is_err() {
                failed = true;
                break;
            }
        }
        assert_eq!(pair.drain(), b"", "no plaintext from random bytes");
        if failed {
            let found = records(&pair.server_records());
            assert!(found.len() <= 1, "at most the alert: {found:?}");
        }
    }
}

/// A response of `pieces` short lines around a long body, as the FETCH writer hands it over.
fn response<'a>(pieces: &'a [Vec<u8>], body: &'a [u8]) -> Vec<&'a [u8]> {
    let half = pieces.len() / 2;
    let mut slices: Vec<&[u8]> = pieces[..half].iter().map(Vec::as_slice).collect();
    slices.push(body);
    slices.extend(pieces[half..].iter().map(Vec::as_slice));
    slices
}

#[test]
fn short_pieces_are_gathered_into_few_records_and_a_long_body_is_sealed_whole() {
    let site = site();
    let config: Arc<ClientConfig> = client(&site.roots, Versions::Tls13, &[]);
    let mut pair = LayerPair::connected(&config, site.configs.imap(), "mail.example.org");
    let pieces: Vec<Vec<u8>> =
        (0..2000).map(|n| format!("* {n} FETCH (FLAGS (\\Seen))\r\n").into_bytes()).collect();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let slices = response(&pieces, &body);
    let expected = slices.concat();
    let sent = pair.server_says(&slices);
    assert_eq!(pair.client_reads(expected.len()), expected);
    let found = records(&sent);
    assert!(found.iter().all(|record| record.0 == APPLICATION_DATA));
    let short_bytes: usize = pieces.iter().map(Vec::len).sum();
    // Full records for the pieces (two runs, each ending in a partial record) and the body.
    let most = short_bytes.div_ceil(16 * 1024) + 2 + body.len().div_ceil(16 * 1024) + 1;
    assert!(found.len() <= most, "{} records for {} slices", found.len(), slices.len());
    assert_eq!(pair.layer.buffered_bytes(), 0, "all sent, nothing kept");
}
