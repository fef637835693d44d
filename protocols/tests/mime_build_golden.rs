//! Pins the exact bytes of `mime::cache::build`: the blobs of the fixtures are checked in
//! beside them (`mime_fixtures/*.blob`), and a digest of the blobs of thousands of generated
//! messages (`mime_fixtures/generated.digest`). Blobs are stored by the server, so any change
//! to one output byte is a format change and must be deliberate.
//!
//! The files were written by the implementation before the 2026-11-26 rewrite of the
//! ENVELOPE writer and checked against it byte for byte. After a deliberate change, rewrite
//! them with `SKUA_BLESS_MIME=1 cargo test -p skua-protocols --test mime_build_golden` and
//! review the difference.

mod mime_fixtures;

use std::path::PathBuf;

use mime_fixtures::{ALTERNATIVE, MIXED, SIMPLE};
use skua_protocols::mime::cache::build;

/// Deterministic xorshift generator: the corpus is the same on every run.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % (bound.max(1) as u64)).expect("fits")
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

#[rustfmt::skip]
const NAMES: &[&str] = &[
    "Date", "Subject", "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "In-Reply-To",
    "Message-ID", "DATE", "subject", "fRoM", "reply-to", "Received", "X-Junk", "Content-Type",
    "Content-Transfer-Encoding", "Content-ID", "Content-Description", "Content-Disposition",
    "Content-Language", "Content-Location", "Content-MD5", "MIME-Version", "To ", "Cc\t",
];

#[rustfmt::skip]
const VALUE_PIECES: &[&[u8]] = &[
    b"a@b.c", b"\"Doe, John\" <john.doe@example.com>", b"jane@example.org (Jane)", b",", b" ",
    b"\t", b"\r\n ", b"\r\n\t", b"\n ", b"<", b">", b"@", b":", b";", b".", b"\"", b"\\",
    b"(", b")", b"(comment (nested))", b"[1.2.3.4]", b"=?utf-8?q?J=C3=B6rg?=",
    b"=?iso-8859-1?b?SvZyZw==?=", b"J\xc3\xb6rg", b"\xff", b"\0", b"group:", b"<@r1,@r2:x@y>",
    b"<>", b"undisclosed-recipients:;", b"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)",
    b"1 Jan 2020 00:00 +0100", b"Mon, 31 Feb 2021 25:61:61 GMT", b"text/plain; charset=utf-8",
    b"multipart/mixed; boundary=b", b"attachment; filename=\"x y\"", b"en, de", b"base64",
    b"<id@host>", b"plain words here", b"{5}", b"\r", b"\"quoted \\\" string\"",
    b"99999999999999999999", b"FEB", b"jAn", b" 12:00:00 ", b"\"plain quoted\" <q@r>",
];

/// A header block with random fields and values, then a short body.
fn header_heavy(random: &mut Random) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..random.below(14) {
        out.extend_from_slice(random.pick(NAMES).as_bytes());
        out.push(b':');
        for _ in 0..random.below(7) {
            out.extend_from_slice(random.pick(VALUE_PIECES));
        }
        out.extend_from_slice(if random.below(5) == 0 { b"\n" } else { b"\r\n" });
        if random.below(8) == 0 {
            out.extend_from_slice(b" continued\r\n");
        }
    }
    match random.below(4) {
        0 => {}
        1 => out.extend_from_slice(b"\r\nbody\r\n"),
        _ => out.extend_from_slice(b"\r\nbody\r\n--b\r\n\r\npart\r\n--b--\r\n"),
    }
    out
}

/// `message` with a few random edits: insertions of value pieces, deletions, byte changes.
fn mutate(random: &mut Random, message: &[u8]) -> Vec<u8> {
    let mut out = message.to_vec();
    for _ in 0..=random.below(6) {
        let at = random.below(out.len() + 1);
        match random.below(3) {
            0 => {
                let piece = random.pick(VALUE_PIECES);
                out.splice(at..at, piece.iter().copied());
            }
            1 => {
                let end = (at + random.below(40)).min(out.len());
                out.drain(at..end);
            }
            _ => {
                if at < out.len() {
                    out[at] = u8::try_from(random.below(256)).expect("byte");
                }
            }
        }
    }
    out
}

/// The fixed corpus: header-heavy messages, their mutations, and mutations of the fixtures.
fn corpus() -> Vec<Vec<u8>> {
    let headers: &[u8] = include_bytes!("mime_fixtures/headers.eml");
    let mut random = Random(0x5eed_cafe_f00d_0001);
    let mut messages = Vec::new();
    for _ in 0..5_000 {
        let message = header_heavy(&mut random);
        messages.push(mutate(&mut random, &message));
        messages.push(message);
    }
    for base in [SIMPLE, ALTERNATIVE, MIXED, headers] {
        for cut in 0..=base.len() {
            messages.push(base[..cut].to_vec());
        }
        for _ in 0..1_000 {
            messages.push(mutate(&mut random, base));
        }
    }
    messages
}

/// 64-bit FNV-1a over every blob, each preceded by its length.
fn digest(messages: &[Vec<u8>]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for message in messages {
        let blob = build(message);
        for &byte in (blob.len() as u64).to_le_bytes().iter().chain(&blob) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mime_fixtures").join(name)
}

/// Compares `actual` with the checked-in file `name`, or rewrites the file when blessing.
fn check_golden(name: &str, actual: &[u8]) {
    let path = fixture_path(name);
    if std::env::var_os("SKUA_BLESS_MIME").is_some() {
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read(&path).expect("golden file exists");
    assert!(
        expected == actual,
        "{name} differs from the pinned output\n expected {:?}\n actual   {:?}",
        String::from_utf8_lossy(&expected),
        String::from_utf8_lossy(actual)
    );
}

#[test]
fn fixture_blobs_are_pinned() {
    let headers: &[u8] = include_bytes!("mime_fixtures/headers.eml");
    for (name, message) in [
        ("simple.blob", SIMPLE),
        ("alternative.blob", ALTERNATIVE),
        ("mixed.blob", MIXED),
        ("headers.blob", headers),
    ] {
        check_golden(name, &build(message));
    }
}

#[test]
fn generated_blobs_are_pinned() {
    let digest = format!("{:016x}\n", digest(&corpus()));
    check_golden("generated.digest", digest.as_bytes());
}
