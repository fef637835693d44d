//! The store fuzz targets (`protocols/fuzz/targets/store_*.rs`) on the stable toolchain: an
//! edit of one spool segment, mailbox index or `mailboxes.log` of a small store on the
//! simulated disk, then recovery, reads, a write, a reopen and reconstruct. Each runs as a
//! proptest property over any bytes, mutated edits and strung pieces; a plain `cargo test`
//! runs a smoke from a fixed seed; the long mode is described in `protocols/fuzz/README.md`.
#![cfg(feature = "sim")]

#[path = "../../protocols/fuzz/runner.rs"]
mod runner;
#[path = "../../protocols/fuzz/targets/store_support.rs"]
mod store_support;

#[path = "../../protocols/fuzz/targets/store_index.rs"]
mod store_index;
#[path = "../../protocols/fuzz/targets/store_log.rs"]
mod store_log;
#[path = "../../protocols/fuzz/targets/store_spool.rs"]
mod store_spool;

use runner::Corpus;

/// Edits aimed at the fields `core/FORMAT.md` names: `[control, offset (u16 LE), payload]`.
/// Control 0x80 | 3 XORs and reseals; 0x80 | 1 writes and reseals; 3 XORs alone.
const EDITS: Corpus = Corpus {
    seeds: &[
        // Header fields: magic, format_major, header_size, ids, nonce, reserved, checksum.
        &[0x83, 0, 0, 0x01],
        &[0x83, 8, 0, 0x01],
        &[0x03, 8, 0, 0x02],
        &[0x83, 12, 0, 0x40],
        &[0x83, 16, 0, 0x01],
        &[0x83, 20, 0, 0x01],
        &[0x83, 24, 0, 0xff],
        &[0x83, 28, 0, 0xff, 0xff],
        &[0x83, 32, 0, 0x80],
        &[0x83, 40, 0, 0x10],
        &[0x83, 48, 0, 0x01],
        &[0x83, 52, 0, 0x02],
        &[0x03, 60, 0, 0x01],
        // First records: kind, lengths, ids, UIDs, flags, dates, keywords, spool references.
        &[0x83, 64, 0, 0x03],
        &[0x83, 68, 0, 0x00, 0x01],
        &[0x83, 72, 0, 0x01],
        &[0x83, 76, 0, 0x02],
        &[0x83, 80, 0, 0x07],
        &[0x83, 84, 0, 0x00, 0x80],
        &[0x83, 86, 0, 0x00, 0x01],
        &[0x83, 96, 0, 0x01],
        &[0x83, 104, 0, 0xff, 0xff, 0xff, 0xff],
        &[0x83, 128, 0, 0x01],
        &[0x83, 132, 0, 0x20],
        &[0x83, 134, 0, 0x01],
        &[0x83, 144, 0, 0x01],
        &[0x83, 164, 0, 0xff],
        &[0x83, 168, 0, 0x01],
        &[0x83, 172, 0, 0x08],
        &[0x83, 176, 0, 0x08],
        &[0x83, 192, 0, 0x05],
        // Cuts and tails.
        &[0x02, 64, 0],
        &[0x02, 100, 0],
        &[0x82, 200, 1, 0, 0, 0, 0],
        &[0x02, 0xff, 0xff, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01],
        // Another file of the kind (bits 2..6 of control).
        &[0x87, 64, 0, 0x01],
        &[0x8b, 128, 0, 0x01],
        &[0x8f, 192, 0, 0x01],
    ],
    pieces: &[
        &[0],
        &[0xff],
        &[0, 0, 0, 0],
        &[0xff, 0xff, 0xff, 0xff],
        &[0x01, 0, 0, 0],
        &[0x02, 0, 0, 0],
        &[0x89, b'S', b'K', b'S', b'\r', b'\n', 0x1a, b'\n'],
        &[0x89, b'S', b'K', b'I', b'\r', b'\n', 0x1a, b'\n'],
        &[0x89, b'S', b'K', b'L', b'\r', b'\n', 0x1a, b'\n'],
        &[0x40, 0, 0, 0],
        &[0x80, 0, 0, 0],
        b"INBOX",
        b"Work",
    ],
};

#[test]
fn store_spool() {
    assert!(runner::run("store_spool", store_spool::target, &EDITS) > 0);
}

#[test]
fn store_index() {
    assert!(runner::run("store_index", store_index::target, &EDITS) > 0);
}

#[test]
fn store_log() {
    assert!(runner::run("store_log", store_log::target, &EDITS) > 0);
}
