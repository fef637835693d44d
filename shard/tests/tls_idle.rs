//! What an idle TLS session costs in heap (issue 8, "Performance": an idle TLS connection at
//! most 4 KiB of server memory, holding no record buffers). The bench measured 9.49 KiB per
//! idle TLS connection against 2.18 KiB for a plain one while skua used rustls's buffered
//! `ServerConnection`, which keeps its 4 KiB receive buffer for the life of the connection.
//!
//! Measured here, in heap bytes held after a handshake and one command and answer, with a
//! counting global allocator (this test binary's own): `TlsLayer` (rustls's unbuffered
//! connection and skua's own buffers, which it frees when empty), beside rustls's buffered
//! connection for reference, for TLS 1.3 and TLS 1.2 and with a resumed handshake.
//! Invariants: an idle `TlsLayer` holds no buffer of its own, and all it holds stays within
//! the per-connection budget; a layer whose client stopped reading holds at most one buffer of
//! records ([`TLS_SENDABLE_BYTES_MAX`]) however much is written.
//!
//! Numbers are printed (`--nocapture`) for the results file; the assertions count bytes, not
//! time.

mod tls_support;

use std::io::IoSlice;
use std::sync::Arc;

use rustls::{ClientConfig, ServerConnection};
use skua_shard::conn_tls::TlsLayer;
use skua_shard::limits::TLS_SENDABLE_BYTES_MAX;
use skua_shard::tls::TlsSettings;
use tls_support::layer::LayerPair;
use tls_support::{TestCa, Versions, client, load};

#[global_allocator]
static ALLOCATOR: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

/// Live heap at one moment: bytes asked for, allocations, and an estimate of what glibc's
/// malloc spends on them (a chunk is the request plus an 8-byte header, rounded up to 16:
/// about 16 bytes more per allocation).
#[derive(Clone, Copy, Debug)]
struct Heap {
    bytes: usize,
    chunks: usize,
    allocations: usize,
}

/// Bytes glibc's malloc spends per allocation beyond the bytes asked for, on average.
const MALLOC_OVERHEAD_BYTES: usize = 16;

fn heap() -> Heap {
    let stats = ALLOCATOR.stats();
    let bytes = (stats.bytes_allocated - stats.bytes_deallocated)
        .checked_add_signed(stats.bytes_reallocated)
        .expect("live bytes");
    let allocations = stats.allocations - stats.deallocations;
    Heap { bytes, chunks: bytes + MALLOC_OVERHEAD_BYTES * allocations, allocations }
}

/// What dropping `value` gives back: the heap it held.
fn held_by<T>(value: T) -> Heap {
    let before = heap();
    drop(value);
    let after = heap();
    Heap {
        bytes: before.bytes - after.bytes,
        chunks: before.chunks - after.chunks,
        allocations: before.allocations - after.allocations,
    }
}

/// The most heap an idle TLS session may hold, malloc's overhead included. rustls 0.23's own
/// state is most of it (about 3.4 KiB with TLS 1.3 and AES-256-GCM: the connection, 1.1 KiB,
/// boxed; a key schedule per direction, 560 bytes each; the handshake deframer's span list,
/// 640 bytes, kept for the connection's life; the traffic state): see
/// perf/results/2026-12-06-tls-idle.md. The buffered connection held about 3.7 KiB more,
/// its receive buffer first.
const TLS_SESSION_BUDGET_BYTES: usize = 4096;

/// The tests run one at a time: the counters are process-wide.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Setup {
    _dir: tempfile::TempDir,
    configs: skua_shard::tls::TlsConfigs,
    roots: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("skua test CA");
    let chain = ca.pem();
    let issued = ca.server(&["mail.example.org"]);
    let configs = load(TlsSettings::new(issued.write(dir.path(), "server", &chain)));
    Setup { _dir: dir, configs, roots: ca.pem() }
}

/// A `TlsLayer` after its handshake with `client` and one command and answer.
fn idle_layer(setup: &Setup, client_config: &Arc<ClientConfig>) -> LayerPair {
    let mut pair = LayerPair::connected(client_config, setup.configs.imap(), "mail.example.org");
    assert_eq!(pair.client_says(b"a1 NOOP\r\n"), b"a1 NOOP\r\n");
    let answer = b"a1 OK NOOP completed\r\n";
    pair.server_says(&[answer]);
    assert_eq!(pair.client_reads(answer.len()), answer);
    pair
}

/// rustls's buffered connection in the same state, for reference.
fn idle_buffered(setup: &Setup, client_config: &Arc<ClientConfig>) -> ServerConnection {
    let mut pair = tls_support::Pair::new(client_config, setup.configs.imap(), "mail.example.org");
    pair.handshake().expect("handshake");
    pair.exchange("a1 NOOP\r\n");
    pair.server
}

fn report(what: &str, held: Heap) {
    println!(
        "{what}: {} bytes asked in {} allocations, ~{} bytes of malloc chunks",
        held.bytes, held.allocations, held.chunks
    );
}

#[test]
fn an_idle_tls_session_holds_no_record_buffer_and_stays_within_its_budget() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let setup = setup();
    println!("size_of::<TlsLayer>() = {}", std::mem::size_of::<TlsLayer>());
    println!("size_of::<ServerConnection>() = {}", std::mem::size_of::<ServerConnection>());
    for (versions, label) in [(Versions::Tls13, "TLS 1.3"), (Versions::Tls12, "TLS 1.2")] {
        let client_config = client(&setup.roots, versions, &[b"imap"]);
        let LayerPair { layer, client, .. } = idle_layer(&setup, &client_config);
        assert_eq!(layer.buffered_bytes(), 0, "{label}: an idle layer holds no buffer");
        let held = held_by(layer);
        report(&format!("{label} TlsLayer (unbuffered), full handshake"), held);
        assert!(
            held.chunks <= TLS_SESSION_BUDGET_BYTES,
            "{label}: an idle TLS session holds {held:?}, over {TLS_SESSION_BUDGET_BYTES}"
        );
        // The same client again: a resumed handshake (a ticket from the first).
        let LayerPair { layer, client: _resumed, .. } = idle_layer(&setup, &client_config);
        let held = held_by(layer);
        report(&format!("{label} TlsLayer (unbuffered), resumed handshake"), held);
        assert!(held.chunks <= TLS_SESSION_BUDGET_BYTES, "{label} resumed: {held:?}");
        drop(client);

        let buffered = idle_buffered(&setup, &client_config);
        report(&format!("{label} rustls ServerConnection (buffered, boxed), for reference"), {
            held_by(Box::new(buffered))
        });
    }
}

/// A TLS 1.3 client that offers only `suite`.
fn client_with_suite(roots: &str, suite: rustls::SupportedCipherSuite) -> Arc<ClientConfig> {
    let mut provider = skua_shard::tls::provider();
    provider.cipher_suites = vec![suite];
    let config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("versions")
        .with_root_certificates(tls_support::root_store(roots))
        .with_no_client_auth();
    Arc::new(config)
}

#[test]
fn what_each_tls_1_3_suite_costs_idle() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let setup = setup();
    for suite in skua_shard::tls::provider().cipher_suites {
        if suite.version() != &rustls::version::TLS13 {
            continue;
        }
        let client_config = client_with_suite(&setup.roots, suite);
        let LayerPair { layer, .. } = idle_layer(&setup, &client_config);
        assert_eq!(layer.info().cipher, format!("{:?}", suite.suite()));
        let held = held_by(layer);
        report(&format!("TlsLayer idle with {:?}", suite.suite()), held);
        assert!(held.chunks <= TLS_SESSION_BUDGET_BYTES, "{:?}: {held:?}", suite.suite());
    }
}

#[test]
fn a_client_that_stops_reading_holds_one_buffer_of_records() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let setup = setup();
    let client_config = client(&setup.roots, Versions::Tls13, &[]);
    let LayerPair { mut layer, client: _client, .. } = idle_layer(&setup, &client_config);
    // A 1 MB body and a thousand short pieces, offered again and again; nothing is sent.
    let body = vec![b'x'; 1_000_000];
    let pieces: Vec<&[u8]> = (0..1000).map(|_| &b"* 1 FETCH (FLAGS (\\Seen))\r\n"[..]).collect();
    let mut slices: Vec<IoSlice<'_>> = vec![IoSlice::new(&body)];
    slices.extend(pieces.iter().map(|piece| IoSlice::new(piece)));
    let mut taken_total = 0;
    for _ in 0..100 {
        taken_total += layer.encrypt(&slices).expect("encrypt");
        assert!(layer.buffered_bytes() <= 2 * (TLS_SENDABLE_BYTES_MAX + 16 * 1024 + 64));
    }
    assert!(taken_total >= TLS_SENDABLE_BYTES_MAX, "a buffer's worth was taken: {taken_total}");
    assert!(taken_total <= TLS_SENDABLE_BYTES_MAX + 16 * 1024, "no more: {taken_total}");
}
