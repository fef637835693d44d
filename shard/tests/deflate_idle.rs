//! What an idle COMPRESS=DEFLATE connection costs in heap (issue 9, COMPRESS on the transport
//! of #5): a compressor's state is hundreds of KiB with zlib's defaults, so skua shares one
//! compressor per shard and keeps only the inflater per connection (`conn_deflate.rs`).
//!
//! Measured here with a counting global allocator (this test binary's own), after a
//! connection's layer inflated a few commands and compressed their answers: the heap a
//! `DeflateLayer` holds (its inflater: RFC 1951's 32 KiB window, which the client may refer
//! back into at any time, and the Huffman tables), and the one-time cost of the shard's shared
//! compressor. Invariants: an idle layer holds no buffer of its own; it holds no compressor;
//! what it holds stays within its budget; many layers writing in turn share one compressor.
//!
//! Numbers are printed (`--nocapture`) for the results file; the assertions count bytes.

use skua_shard::conn_deflate::{DeflateLayer, compressor_resets};

#[global_allocator]
static ALLOCATOR: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

/// Live heap bytes (asked for) and allocations.
fn heap() -> (usize, usize) {
    let stats = ALLOCATOR.stats();
    let bytes = (stats.bytes_allocated - stats.bytes_deallocated)
        .checked_add_signed(stats.bytes_reallocated)
        .expect("live bytes");
    (bytes, stats.allocations - stats.deallocations)
}

/// The most heap an idle compressed connection's layer may hold, malloc's overhead included.
/// Measured: 59,680 bytes in 2 allocations, all but the layer's 48-byte box being
/// miniz_oxide 0.9's boxed `InflateState`: its 32 KiB window and its decompressor (the
/// Huffman tables with their fast look-up arrays, about 26 KiB).
const IDLE_LAYER_BUDGET_BYTES: usize = 60 * 1024;

/// What the shard's one compressor may take (measured: 319,326 bytes with miniz_oxide 0.9:
/// its 64 KiB LZ code buffer, the 32 KiB window, 64 KiB hash heads, 64 KiB hash chains and
/// its output and Huffman buffers). A compressor per connection would cost this each.
const SHARED_COMPRESSOR_BUDGET_BYTES: usize = 320 * 1024;

/// The tests run one at a time: the counters are process-wide.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A peer's raw DEFLATE of `plaintext`, sync-flushed (a second layer stands in: its output is
/// checked against the first layer's input).
fn client_sends(client: &mut DeflateLayer, plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let taken = client.compress(&[plaintext], &mut out).expect("compress");
    assert_eq!(taken, plaintext.len());
    out
}

/// A layer that took three commands and answered them, as a session's first exchange.
fn used_layer(client: &mut DeflateLayer) -> DeflateLayer {
    let mut layer = DeflateLayer::new();
    for command in [&b"a1 SELECT INBOX\r\n"[..], b"a2 FETCH 1:* (FLAGS)\r\n", b"a3 IDLE\r\n"] {
        layer.receive(&client_sends(client, command));
        let mut seen = Vec::new();
        while layer.inflate(&mut |bytes| seen.extend_from_slice(bytes)).expect("inflate") > 0 {}
        assert_eq!(seen, command);
        let mut answer = Vec::new();
        layer
            .compress(&[b"* 1 FETCH (FLAGS (\\Seen))\r\n", b"a2 OK done\r\n"], &mut answer)
            .expect("compress");
    }
    layer
}

#[test]
fn an_idle_compressed_connection_holds_only_its_inflater() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut client = DeflateLayer::new();
    // The shard's compressor, made by the first compressed write on this thread.
    let (before, _) = heap();
    let mut out = Vec::new();
    let long = b"a FETCH 1:* (FLAGS)\r\n".repeat(100);
    DeflateLayer::new().compress(&[&long], &mut out).expect("compress");
    drop(out);
    let (after, _) = heap();
    println!("the shard's shared compressor (once per shard): {} bytes", after - before);
    assert!(after - before <= SHARED_COMPRESSOR_BUDGET_BYTES, "{}", after - before);

    let (before, allocations_before) = heap();
    let layer = used_layer(&mut client);
    let (after, allocations_after) = heap();
    assert_eq!(layer.buffered_bytes(), 0, "an idle layer holds no input buffer");
    let held = after - before;
    let allocations = allocations_after - allocations_before;
    println!("size_of::<DeflateLayer>() = {}", std::mem::size_of::<DeflateLayer>());
    println!("an idle DeflateLayer: {held} bytes in {allocations} allocations");
    assert!(held + 16 * allocations <= IDLE_LAYER_BUDGET_BYTES, "{held} in {allocations}");
    // No compressor per connection: one would be five times what the layer holds.
    assert!(held < SHARED_COMPRESSOR_BUDGET_BYTES / 4, "{held}");
    drop(layer);
}

#[test]
fn many_connections_writing_in_turn_share_one_compressor() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut client = DeflateLayer::new();
    let mut layers: Vec<DeflateLayer> = (0..100).map(|_| used_layer(&mut client)).collect();
    let headers =
        b"Received: from mx.example.org by skua with LMTP; Mon, 7 Dec 2026\r\n".repeat(40);
    // The shard's compressor, made before the count starts.
    DeflateLayer::new().compress(&[&headers], &mut Vec::new()).expect("compress");
    let (before, _) = heap();
    let resets_before = compressor_resets();
    for layer in &mut layers {
        let mut out = Vec::new();
        layer.compress(&[&headers], &mut out).expect("compress");
        // A short write right after, by the same connection: its history, no reset.
        layer.compress(&[b"a OK FETCH completed\r\n"], &mut out).expect("compress");
    }
    let (after, _) = heap();
    // Each long write found another connection's history in the compressor and reset it in
    // place; the short ones went on with it.
    assert_eq!(compressor_resets() - resets_before, 100);
    // No compressor was made (one is over 300 KiB): what the loop left is small change.
    assert!(after < before + 64 * 1024, "{before} -> {after}");
}
