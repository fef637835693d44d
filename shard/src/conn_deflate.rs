//! COMPRESS=DEFLATE (RFC 4978) under a [`Connection`](crate::conn::Connection): raw DEFLATE
//! (RFC 1951, no zlib header or checksum) both ways, between the protocol session, which sees
//! plaintext, and the transport below (plain TCP or TLS: plaintext → deflate → TLS).
//!
//! ```text
//!  transport ─ compressed ─► receive: incoming ─ inflate (≤ INFLATE_OUTPUT_BYTES_MAX) ─► sink
//!  slices ─► compress (the shard's one compressor, sync flush at the end) ─► transport
//! ```
//!
//! - *Reads.* Compressed bytes from the transport wait in `incoming`; each read inflates at
//!   most [`INFLATE_OUTPUT_BYTES_MAX`] of plaintext (a plain read's size) into a thread's
//!   scratch buffer and hands it to the session, and the transport is read again only once
//!   `incoming` is used up. A decompression bomb (a few KiB that inflate to gigabytes) thus
//!   reaches the session a read's worth at a time, exactly as plain input would, and runs into
//!   the session's own limits (line, literal, command deadline); the heap never holds more
//!   than one read of compressed input and the inflater's window.
//! - *Writes.* Every write is compressed by the shard's **one** compressor (a thread-local:
//!   a shard writes one response at a time) and ends with a sync flush (RFC 4978 §4: the
//!   client can decode everything sent so far; an empty stored block, `00 00 FF FF`, leaves
//!   the stream byte-aligned). Because each write ends aligned, a *fresh* compressor may go on
//!   with the stream: the decoder only sees more blocks, none referring back past where the
//!   new compressor began. So when the shared compressor was last used by another connection
//!   it is reset before it compresses this one's bytes (its history is another client's data
//!   and must never be referred to); a connection that writes again before anyone else keeps
//!   the history and compresses as well as a compressor of its own would. An idle compressed
//!   connection thus holds no compressor state at all: the compressor (about 300 KiB with
//!   miniz_oxide's 32 KiB window and hash chains) is paid once per shard, not per connection.
//!   A reset costs about 10 µs (it clears the hash tables), and the first block after it
//!   carries its own Huffman tables; so a *short* write (under [`STORED_WRITE_BYTES_MAX`])
//!   that would need a reset is sent as a stored block instead (RFC 1951 §3.2.4: 5 bytes of
//!   header, no compression, no compressor), which the stream's alignment allows as well.
//! - *Inflate state* is per connection and cannot be dropped while idle: the client's
//!   compressor may refer back 32 KiB into what it sent before, whatever it chose as its
//!   window. miniz_oxide's `InflateState` (the 32 KiB window and the Huffman tables) is the
//!   cost of an idle compressed connection; see `shard/tests/deflate_idle.rs` for the figure.
//!
//! The crate is miniz_oxide, used directly: pure Rust (no C zlib to build or audit), already
//! in the tree, and its low-level compressor can be reset in place and shared, which flate2's
//! `Compress` wrapper does not offer. The layer is `Send` and moves with a hand-off.

use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use miniz_oxide::deflate::core::{
    CompressorOxide, TDEFLFlush, TDEFLStatus, compress_to_output, create_comp_flags_from_zip_params,
};
use miniz_oxide::inflate::stream::{InflateState, inflate};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

use crate::limits::READ_SCRATCH_BYTES;

/// The most plaintext one read inflates and hands to the session: a plain read's size, so
/// compressed input meets the session's limits exactly as plain input does.
pub const INFLATE_OUTPUT_BYTES_MAX: usize = READ_SCRATCH_BYTES;
/// The plaintext one compression step takes before its sync flush and its write to the
/// transport: a response is sent in pieces of this size, so a client that stops reading holds
/// one piece's compressed bytes, and other connections may use the shard's compressor in
/// between.
pub const DEFLATE_WRITE_CHUNK_BYTES: usize = 64 * 1024;
/// The compressor's level (miniz_oxide: 1 fastest … 9 best). Measured on synthetic
/// mail-like text (miniz_oxide 0.9, release): level 1 kept 31% of the bytes at ~100-160 MB/s,
/// level 6 23.5% at ~9 MB/s. A shard shares its core with every other session: speed wins.
pub const DEFLATE_LEVEL: u8 = 1;

/// Writes shorter than this that would need the shared compressor reset go out as a stored
/// block (see the module docs): a few hundred bytes compress by a few hundred bytes at most,
/// not worth a reset and a fresh block's Huffman tables.
pub const STORED_WRITE_BYTES_MAX: usize = 1024;

const _: () = assert!(DEFLATE_LEVEL >= 1 && DEFLATE_LEVEL <= 9, "0 would only store");
const _: () = assert!(STORED_WRITE_BYTES_MAX <= u16::MAX as usize, "one stored block");
const _: () = assert!(DEFLATE_WRITE_CHUNK_BYTES >= INFLATE_OUTPUT_BYTES_MAX);

/// The window the shard's compressor uses: RFC 1951's largest, 32 KiB. Its memory is paid
/// once per shard, so there is no reason to compress worse with a smaller one.
const WINDOW_BITS: i32 = 15;

/// Owner tokens of the shard's shared compressor: unique over the process, since a layer may
/// move to another shard with its connection.
static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The shard's one compressor and the layer whose stream it last wrote (see the module
    /// docs). Made on the first compressed write of the shard.
    static COMPRESSOR: RefCell<Option<Shared>> = const { RefCell::new(None) };
    /// Where a read inflates to before the session takes the bytes.
    static INFLATED: RefCell<Box<[u8]>> =
        RefCell::new(vec![0u8; INFLATE_OUTPUT_BYTES_MAX].into_boxed_slice());
}

/// The shard's compressor and whose stream it holds the history of.
struct Shared {
    compressor: Box<CompressorOxide>,
    owner: u64,
    /// Times the compressor was reset for another connection (for tests and measurements).
    resets: u64,
}

/// A DEFLATE session over a connection's transport.
pub struct DeflateLayer {
    inflater: Box<InflateState>,
    /// Compressed bytes received and not yet inflated. Freed when empty.
    incoming: Vec<u8>,
    /// This layer's token for the shared compressor.
    owner: u64,
    /// The last inflate filled the space it was given: the inflater may hold more plaintext
    /// (in its window) even with no compressed input left.
    output_pending: bool,
    /// The client ended its DEFLATE stream (a final block): nothing more can be decoded.
    ended: bool,
    /// The client's stream is not valid DEFLATE: every further call fails.
    failed: bool,
}

impl std::fmt::Debug for DeflateLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeflateLayer")
            .field("incoming", &self.incoming.len())
            .field("owner", &self.owner)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Default for DeflateLayer {
    fn default() -> Self {
        DeflateLayer::new()
    }
}

impl DeflateLayer {
    /// The connection moved to another shard: takes a new token, so that no shard's compressor
    /// takes itself for this stream's (the one it left may still hold the stream's history,
    /// which the client's window no longer matches once another shard has written). The next
    /// write resets the compressor of the shard it is on, which is always safe: every write
    /// ends on a byte boundary (sync flush).
    pub fn moved(&mut self) {
        self.owner = NEXT_OWNER.fetch_add(1, Ordering::Relaxed);
    }

    /// A layer whose first bytes each way start a raw DEFLATE stream.
    #[must_use]
    pub fn new() -> DeflateLayer {
        DeflateLayer {
            inflater: InflateState::new_boxed(DataFormat::Raw),
            incoming: Vec::new(),
            owner: NEXT_OWNER.fetch_add(1, Ordering::Relaxed),
            output_pending: false,
            ended: false,
            failed: false,
        }
    }

    /// Takes compressed bytes from the transport (inflated by [`DeflateLayer::inflate`]).
    pub fn receive(&mut self, compressed: &[u8]) {
        self.incoming.extend_from_slice(compressed);
    }

    /// True when compressed bytes wait to be inflated, or inflated bytes to be handed out
    /// (or an error to be reported).
    #[must_use]
    pub fn has_input(&self) -> bool {
        !self.incoming.is_empty() || self.output_pending || self.failed
    }

    /// Heap bytes this layer's own input buffer holds now (the inflater not counted).
    #[must_use]
    pub fn buffered_bytes(&self) -> usize {
        self.incoming.capacity()
    }

    /// Inflates what waits, at most [`INFLATE_OUTPUT_BYTES_MAX`] bytes of plaintext, and hands
    /// them to `sink`; returns how many (0: more compressed input is needed).
    ///
    /// # Errors
    /// The client's stream is not valid DEFLATE, or goes on after its final block. The
    /// plaintext decoded before the fault is handed out first; the call after fails.
    pub fn inflate(&mut self, sink: &mut impl FnMut(&[u8])) -> io::Result<usize> {
        if self.failed {
            return Err(invalid("invalid DEFLATE data"));
        }
        INFLATED.with(|scratch| {
            // One read at a time runs on a thread, and `sink` does not inflate.
            let mut scratch = scratch.borrow_mut();
            let mut written = 0;
            while self.has_input() && written < scratch.len() {
                if self.ended {
                    if written == 0 && !self.incoming.is_empty() {
                        return Err(invalid("data after the end of the DEFLATE stream"));
                    }
                    // The plaintext before the end goes first; the next call fails.
                    break;
                }
                let result = inflate(
                    &mut self.inflater,
                    &self.incoming,
                    &mut scratch[written..],
                    MZFlush::None,
                );
                self.incoming.drain(..result.bytes_consumed);
                self.output_pending = result.bytes_written == scratch.len() - written;
                written += result.bytes_written;
                match result.status {
                    Ok(MZStatus::Ok) => {}
                    Ok(MZStatus::StreamEnd) => self.ended = true,
                    // No progress possible: the rest of a block has not arrived yet.
                    Err(MZError::Buf) => break,
                    Ok(MZStatus::NeedDict) | Err(_) => {
                        self.failed = true;
                        self.incoming = Vec::new();
                        if written == 0 {
                            return Err(invalid("invalid DEFLATE data"));
                        }
                        break;
                    }
                }
                if result.bytes_consumed == 0 && result.bytes_written == 0 {
                    break;
                }
            }
            if self.incoming.is_empty() {
                self.incoming = Vec::new();
            }
            if written > 0 {
                sink(&scratch[..written]);
            }
            Ok(written)
        })
    }

    /// Compresses the start of `slices`, at most about [`DEFLATE_WRITE_CHUNK_BYTES`] of
    /// plaintext, and ends with a sync flush; the compressed bytes are appended to `out`.
    /// Returns the plaintext bytes taken (all of `slices` when they are shorter).
    ///
    /// # Errors
    /// The compressor refused its input (not expected: it means a bug in its use here).
    pub fn compress(&mut self, slices: &[&[u8]], out: &mut Vec<u8>) -> io::Result<usize> {
        let total: usize = slices.iter().map(|slice| slice.len()).sum();
        if total < STORED_WRITE_BYTES_MAX && !holds_compressor(self.owner) {
            store_into(slices, total, out);
            return Ok(total);
        }
        with_compressor(self.owner, |compressor| {
            let mut taken = 0;
            for slice in slices {
                let room = DEFLATE_WRITE_CHUNK_BYTES - taken;
                let piece = &slice[..slice.len().min(room)];
                deflate_into(compressor, piece, TDEFLFlush::None, out)?;
                taken += piece.len();
                if taken == DEFLATE_WRITE_CHUNK_BYTES {
                    break;
                }
            }
            deflate_into(compressor, &[], TDEFLFlush::Sync, out)?;
            Ok(taken)
        })
    }
}

/// True when the shard's compressor holds `owner`'s stream (no reset needed to use it).
fn holds_compressor(owner: u64) -> bool {
    COMPRESSOR.with(|shared| shared.borrow().as_ref().is_some_and(|shared| shared.owner == owner))
}

/// Appends `slices` (`total` bytes, under [`STORED_WRITE_BYTES_MAX`]) as one stored block:
/// a byte with BFINAL 0 and BTYPE 00 (the rest of the byte is padding), LEN and its one's
/// complement NLEN, little-endian, then the bytes (RFC 1951 §3.2.4). The stream is aligned
/// before (every write ends aligned) and after.
fn store_into(slices: &[&[u8]], total: usize, out: &mut Vec<u8>) {
    let len = u16::try_from(total).expect("under STORED_WRITE_BYTES_MAX");
    out.reserve(5 + total);
    out.push(0);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    for slice in slices {
        out.extend_from_slice(slice);
    }
}

/// Runs `work` with the shard's compressor, reset first unless it holds `owner`'s stream.
fn with_compressor<T>(
    owner: u64,
    work: impl FnOnce(&mut CompressorOxide) -> io::Result<T>,
) -> io::Result<T> {
    COMPRESSOR.with(|shared| {
        // One write compresses at a time on a thread, and `work` does not re-enter.
        let mut shared = shared.borrow_mut();
        let shared = shared.get_or_insert_with(|| Shared {
            compressor: Box::new(CompressorOxide::new(create_comp_flags_from_zip_params(
                i32::from(DEFLATE_LEVEL),
                -WINDOW_BITS,
                0,
            ))),
            owner,
            resets: 0,
        });
        if shared.owner != owner {
            shared.compressor.reset();
            shared.owner = owner;
            shared.resets += 1;
        }
        let result = work(&mut shared.compressor);
        if result.is_err() {
            // Its state is unknown: whoever comes next starts afresh.
            shared.owner = 0;
        }
        result
    })
}

/// Times this thread's compressor was reset for another connection's stream.
#[must_use]
pub fn compressor_resets() -> u64 {
    COMPRESSOR.with(|shared| shared.borrow().as_ref().map_or(0, |shared| shared.resets))
}

/// Compresses all of `input` with `flush`, appending the output to `out`.
fn deflate_into(
    compressor: &mut CompressorOxide,
    input: &[u8],
    flush: TDEFLFlush,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let (status, consumed) = compress_to_output(compressor, input, flush, |bytes| {
        out.extend_from_slice(bytes);
        true
    });
    if status != TDEFLStatus::Okay || consumed != input.len() {
        return Err(io::Error::other(format!("DEFLATE compressor: {status:?}")));
    }
    Ok(())
}

fn invalid(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    //! The layer against miniz_oxide's own one-shot functions as the peer.
    use super::*;
    use miniz_oxide::deflate::compress_to_vec;

    fn inflate_all(layer: &mut DeflateLayer) -> Vec<u8> {
        let mut seen = Vec::new();
        while layer.inflate(&mut |bytes| seen.extend_from_slice(bytes)).expect("inflate") > 0 {}
        seen
    }

    #[test]
    fn a_layer_is_send() {
        fn assert_send<T: Send>() {}
        // It moves with the hand-off to the user's shard.
        assert_send::<DeflateLayer>();
    }

    #[test]
    fn what_one_layer_writes_decodes_whole_after_each_write_even_when_others_write_between() {
        let mut first = DeflateLayer::new();
        let mut second = DeflateLayer::new();
        let mut stream_first = Vec::new();
        let mut stream_second = Vec::new();
        let mut expected_first = Vec::new();
        // A long first write takes the compressor; the first layer's short writes then go on
        // with it, and the second layer's short ones go out stored.
        let greeting = b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 COMPRESS=DEFLATE]\r\n".repeat(30);
        first.compress(&[&greeting], &mut stream_first).expect("compress");
        expected_first.extend_from_slice(&greeting);
        let resets_before = compressor_resets();
        for round in 0..4u32 {
            let line = format!("* {round} FETCH (FLAGS (\\Seen) UID {round})\r\n");
            let taken = first.compress(&[line.as_bytes(), b"a OK done\r\n"], &mut stream_first);
            assert_eq!(taken.expect("compress"), line.len() + 11);
            expected_first.extend_from_slice(line.as_bytes());
            expected_first.extend_from_slice(b"a OK done\r\n");
            // After every write the stream so far decodes to everything written so far.
            let mut decoder = DeflateLayer::new();
            decoder.receive(&stream_first);
            assert_eq!(inflate_all(&mut decoder), expected_first, "round {round}");
            if round % 2 == 0 {
                second.compress(&[b"b OK other\r\n"], &mut stream_second).expect("compress");
            }
        }
        assert!(stream_first.ends_with(&[0, 0, 0xff, 0xff]), "sync flush");
        // The second layer's short writes went out stored: the first kept its history.
        assert_eq!(compressor_resets() - resets_before, 0);
        assert_eq!(stream_second[..5], [0, 12, 0, !12, 0xff], "a stored block");
        let mut decoder = DeflateLayer::new();
        decoder.receive(&stream_second);
        assert_eq!(inflate_all(&mut decoder), b"b OK other\r\nb OK other\r\n");
    }

    #[test]
    fn longer_writes_take_the_compressor_over_and_the_streams_stay_whole() {
        let mut first = DeflateLayer::new();
        let mut second = DeflateLayer::new();
        let text: Vec<u8> =
            (0..4000u32).map(|i| b"* FLAGS (\\Seen)\r\n"[(i % 17) as usize]).collect();
        let (mut stream_first, mut stream_second) = (Vec::new(), Vec::new());
        first.compress(&[&text], &mut stream_first).expect("compress");
        let resets_before = compressor_resets();
        second.compress(&[&text], &mut stream_second).expect("compress");
        first.compress(&[&text], &mut stream_first).expect("compress");
        first.compress(&[b"a OK\r\n"], &mut stream_first).expect("compress");
        assert_eq!(compressor_resets() - resets_before, 2, "second took it, first took it back");
        for (stream, expected) in
            [(stream_first, [&text[..], &text, b"a OK\r\n"].concat()), (stream_second, text)]
        {
            let mut decoder = DeflateLayer::new();
            decoder.receive(&stream);
            assert!(inflate_all(&mut decoder) == expected, "bytes differ");
            assert!(stream.len() < expected.len() / 4, "compressed: {}", stream.len());
        }
    }

    #[test]
    fn a_long_write_is_taken_a_chunk_at_a_time() {
        let body: Vec<u8> = (0..200_000u32).map(|i| b"abcdefghij\r\n"[(i % 12) as usize]).collect();
        let mut layer = DeflateLayer::new();
        let mut stream = Vec::new();
        let mut offset = 0;
        let mut writes = 0;
        while offset < body.len() {
            offset += layer.compress(&[&body[offset..]], &mut stream).expect("compress");
            writes += 1;
        }
        assert_eq!(writes, body.len().div_ceil(DEFLATE_WRITE_CHUNK_BYTES));
        let mut decoder = DeflateLayer::new();
        decoder.receive(&stream);
        let decoded = inflate_all(&mut decoder);
        assert!(decoded == body, "bytes differ");
        assert!(stream.len() < body.len() / 10, "compressed: {}", stream.len());
    }

    #[test]
    fn a_decompression_bomb_comes_out_a_read_at_a_time_and_holds_no_more_than_its_input() {
        //! A few hundred KiB that inflate to 64 MiB of one byte: each call hands out at most
        //! one read's worth, and the layer never buffers more than the compressed input.
        let bomb_bytes = 64 * 1024 * 1024;
        // A fresh layer's writes start from a reset compressor and end aligned: one MiB's
        // stream, repeated, is a valid stream of many MiB.
        let mebibyte = {
            let mut layer = DeflateLayer::new();
            let same = vec![b'a'; 1024 * 1024];
            let mut stream = Vec::new();
            let mut offset = 0;
            while offset < same.len() {
                offset += layer.compress(&[&same[offset..]], &mut stream).expect("compress");
            }
            stream
        };
        let compressed = mebibyte.repeat(bomb_bytes / (1024 * 1024));
        assert!(compressed.len() < bomb_bytes / 100, "a bomb: {}", compressed.len());
        let mut layer = DeflateLayer::new();
        let mut total = 0usize;
        let mut calls = 0usize;
        for piece in compressed.chunks(16 * 1024) {
            layer.receive(piece);
            assert!(layer.buffered_bytes() <= 2 * 16 * 1024, "{}", layer.buffered_bytes());
            loop {
                let produced = layer
                    .inflate(&mut |bytes| assert!(bytes.len() <= INFLATE_OUTPUT_BYTES_MAX))
                    .expect("inflate");
                if produced == 0 {
                    break;
                }
                assert!(produced <= INFLATE_OUTPUT_BYTES_MAX);
                total += produced;
                calls += 1;
            }
        }
        assert_eq!(total, bomb_bytes);
        assert!(calls >= bomb_bytes / INFLATE_OUTPUT_BYTES_MAX, "{calls}");
    }

    #[test]
    fn garbage_and_data_after_the_final_block_are_errors() {
        let mut layer = DeflateLayer::new();
        // BTYPE 11 is reserved (RFC 1951 §3.2.3).
        layer.receive(&[0xff, 0xff, 0xff, 0xff]);
        assert!(layer.inflate(&mut |_| {}).is_err());

        let mut layer = DeflateLayer::new();
        let mut stream = compress_to_vec(b"a LOGOUT\r\n", 6); // ends with a final block
        stream.extend_from_slice(b"more");
        layer.receive(&stream);
        let mut seen = Vec::new();
        let first = layer.inflate(&mut |bytes| seen.extend_from_slice(bytes));
        let outcome = first.and_then(|_| layer.inflate(&mut |_| {}));
        assert_eq!(seen, b"a LOGOUT\r\n");
        assert!(outcome.is_err(), "{outcome:?}");
    }
}

#[cfg(test)]
#[path = "conn_deflate_tests.rs"]
mod socket_tests;
