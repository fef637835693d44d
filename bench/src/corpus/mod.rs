//! Messages to send: a fixed-size synthetic message (`--size`), or a corpus directory
//! (`--corpus DIR`, written by `skua-bench corpus`, or any directory of RFC 5322 files).
//!
//! Every message sent gets a fresh `Message-ID` (the corpus's own is stripped at load), so a
//! server that suppresses duplicate deliveries, as Cyrus does, still stores every one.

mod encode;
pub mod generate;
mod words;

#[cfg(test)]
mod generate_tests;

use std::path::Path;
use std::sync::Arc;

use rand::Rng;

use crate::limits::MAX_MESSAGE_BYTES;

/// Why a corpus cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// Reading the directory or a file failed.
    #[error("corpus {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The directory holds no message.
    #[error("corpus {0} holds no message")]
    Empty(String),
    /// A file is larger than [`MAX_MESSAGE_BYTES`].
    #[error("corpus file {0} is larger than {MAX_MESSAGE_BYTES} bytes")]
    TooLarge(String),
}

/// Where message bytes come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// One synthetic message of an exact size (Message-ID included).
    Fixed(Arc<Vec<u8>>),
    /// Messages loaded from a corpus directory, Message-ID stripped.
    Corpus(Arc<Vec<Vec<u8>>>),
}

/// Length of the `Message-ID` line [`Source::render`] writes: fixed, so `--size` is exact.
const MESSAGE_ID_LINE: usize =
    "Message-ID: <0000000000000000.0000000000000000@skua-bench.invalid>\r\n".len();

impl Source {
    /// A synthetic text message of exactly `size` bytes once rendered (or the smallest
    /// well-formed one, if `size` is smaller than its headers).
    pub fn fixed(size: usize) -> Self {
        let head = "From: Bench Sender <sender@skua-bench.invalid>\r\n\
                    To: Bench Recipient <rcpt@skua-bench.invalid>\r\n\
                    Subject: skua-bench fixed-size message\r\n\
                    Date: Wed, 01 Jan 2025 00:00:00 +0000\r\n\
                    MIME-Version: 1.0\r\n\
                    Content-Type: text/plain; charset=us-ascii\r\n\r\n";
        let mut m = head.as_bytes().to_vec();
        let body = size.min(MAX_MESSAGE_BYTES).saturating_sub(m.len() + MESSAGE_ID_LINE);
        let line =
            b"The quick brown fox jumps over the lazy dog while the mail server keeps count. ";
        let mut left = body;
        while left > 0 {
            // Lines of up to 78 bytes with CRLF; the last one may be shorter (but keeps its CRLF
            // when there is room for it).
            let take = left.min(78);
            if take <= 2 {
                m.extend(std::iter::repeat_n(b'x', take));
                break;
            }
            m.extend_from_slice(&line[..take - 2]);
            m.extend_from_slice(b"\r\n");
            left -= take;
        }
        Source::Fixed(Arc::new(m))
    }

    /// Loads every regular file of `dir` (sorted by name) as one message.
    pub fn load(dir: &Path) -> Result<Self, CorpusError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| CorpusError::Io { path, source }
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        let mut messages = Vec::with_capacity(paths.len());
        for p in &paths {
            if std::fs::metadata(p).map_err(io(p))?.len() > MAX_MESSAGE_BYTES as u64 {
                return Err(CorpusError::TooLarge(p.display().to_string()));
            }
            let raw = std::fs::read(p).map_err(io(p))?;
            messages.push(strip_header(&raw, b"message-id"));
        }
        if messages.is_empty() {
            return Err(CorpusError::Empty(dir.display().to_string()));
        }
        Ok(Source::Corpus(Arc::new(messages)))
    }

    /// Writes one message to `out` (cleared first): a fresh Message-ID line built from `id`,
    /// then the fixed message or a corpus message picked with `rng`.
    pub fn render(&self, id: (u64, u64), rng: &mut impl Rng, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(
            format!("Message-ID: <{:016x}.{:016x}@skua-bench.invalid>\r\n", id.0, id.1).as_bytes(),
        );
        debug_assert_eq!(out.len(), MESSAGE_ID_LINE);
        match self {
            Source::Fixed(m) => out.extend_from_slice(m),
            Source::Corpus(ms) => out.extend_from_slice(&ms[rng.gen_range(0..ms.len())]),
        }
    }
}

/// `message` without the header field `name` (lower-case) in its top-level header, folded
/// continuation lines included. The body is untouched.
pub fn strip_header(message: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len());
    let mut rest = message;
    let mut dropping = false;
    while !rest.is_empty() {
        let end = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        if line == b"\r\n" || line == b"\n" {
            out.extend_from_slice(rest);
            break;
        }
        let folded = line.first().is_some_and(|&b| b == b' ' || b == b'\t');
        if !folded {
            dropping = line.len() > name.len()
                && line[..name.len()].eq_ignore_ascii_case(name)
                && line[name.len()] == b':';
        }
        if !dropping {
            out.extend_from_slice(line);
        }
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn fixed_size_is_exact() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut out = Vec::new();
        for size in [400, 401, 402, 403, 480, 1000, 4096, 65536] {
            Source::fixed(size).render((1, 2), &mut rng, &mut out);
            assert_eq!(out.len(), size, "size {size}");
            assert!(out.starts_with(b"Message-ID: <0000000000000001.0000000000000002@"));
            let parsed = mail_parser::MessageParser::default().parse(&out[..]).unwrap();
            assert_eq!(parsed.subject(), Some("skua-bench fixed-size message"));
        }
        Source::fixed(10).render((1, 2), &mut rng, &mut out);
        assert!(out.len() > 10 && out.ends_with(b"\r\n\r\n"), "smallest well-formed message");
    }

    #[test]
    fn strips_message_id_with_folding_but_not_in_body() {
        let m = b"Subject: a\r\nMessage-ID:\r\n <x@y>\r\nmessage-idx: keep\r\nTo: b\r\n\r\nMessage-ID: <body>\r\n";
        let s = strip_header(m, b"message-id");
        assert_eq!(s, b"Subject: a\r\nmessage-idx: keep\r\nTo: b\r\n\r\nMessage-ID: <body>\r\n");
    }

    #[test]
    fn load_reads_sorted_files_and_refuses_empty_dirs() {
        let dir = std::env::temp_dir().join(format!("skua-bench-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(matches!(Source::load(&dir), Err(CorpusError::Empty(_))));
        std::fs::write(dir.join("b.eml"), b"Subject: b\r\n\r\nB\r\n").unwrap();
        std::fs::write(dir.join("a.eml"), b"Message-ID: <1@x>\r\nSubject: a\r\n\r\nA\r\n").unwrap();
        let Source::Corpus(ms) = Source::load(&dir).unwrap() else { panic!("corpus") };
        assert_eq!(ms[0], b"Subject: a\r\n\r\nA\r\n");
        assert_eq!(ms[1], b"Subject: b\r\n\r\nB\r\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
