//! `SEARCH BODY` and `TEXT` answered from the cache blob's part table
//! ([`body_contains_cached`], [`text_contains_cached`]) answer exactly as the scan of the
//! message does ([`body_contains`], [`text_contains`]): a property test over generated MIME
//! messages (nested multiparts, digests, message/rfc822 parts, base64 and quoted-printable text
//! in several charsets, containers the scanner reports as text) and needles cut from their
//! text, across encoded line breaks too; unit tests for the edge cases; and a measurement of
//! both paths on a message with an attachment (ignored: it prints, it asserts no timing).

use super::*;
use crate::mime::cache::build;
use base64::Engine as _;
use proptest::prelude::*;

/// A generated MIME entity.
#[derive(Clone, Debug)]
pub(crate) enum Entity {
    /// A part with content: its Content-Type (none: the default), charset, transfer encoding,
    /// the text it holds and the width its encoded lines are cut at.
    Leaf {
        content_type: Option<&'static str>,
        charset: Option<&'static str>,
        encoding: Option<&'static str>,
        text: String,
        width: usize,
    },
    /// A multipart: subtype, whether the boundary parameter is given, the parts, whether the
    /// close delimiter is written.
    Multipart { subtype: &'static str, boundary: bool, parts: Vec<Entity>, close: bool },
    /// A message/rfc822 part (Content-Type written only when `declared`: a digest's default)
    /// with an optional transfer encoding, holding a message with a Subject.
    Message { declared: bool, encoding: Option<&'static str>, inner: Box<Entity> },
}

/// Pieces of text: ASCII words in mixed case, Latin-1 and other non-ASCII letters, the two
/// characters that fold to ASCII, a QP look-alike, a delimiter look-alike and line breaks.
const WORDS: &[&str] = &[
    "alpha",
    "Beta",
    "GAMMA",
    "d\u{e9}lta",
    "STRA\u{df}E",
    "\u{212A}elvin",
    "\u{130}stanbul",
    "x=3D",
    "n\u{e4}ive",
    "\u{3A3}\u{3C3}",
    "--b1",
    "Subject: inner",
    "0123456789",
    "\n",
    "\n",
    " ",
];

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("text/plain"),
    Some("text/plain"),
    Some("TEXT/HTML"),
    Some("image/png"),
    Some("application/octet-stream"),
    Some("multipart/mixed"),
    Some("message/rfc822"),
    Some("text"),
];
const CHARSETS: &[Option<&str>] =
    &[None, Some("utf-8"), Some("UTF-8"), Some("iso-8859-1"), Some("us-ascii"), Some("utf-7")];
const ENCODINGS: &[Option<&str>] = &[
    None,
    Some("base64"),
    Some("BASE64"),
    Some("quoted-printable"),
    Some("Quoted-Printable"),
    Some("7bit"),
    Some("8bit"),
];
const SUBTYPES: &[&str] = &["mixed", "alternative", "digest", "related"];

fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(WORDS), 0..14).prop_map(|words| {
        words.iter().enumerate().fold(String::new(), |mut text, (i, word)| {
            if i > 0 && !word.starts_with('\n') {
                text.push(' ');
            }
            text.push_str(word);
            text
        })
    })
}

/// Generated entities, up to four levels of containers.
pub(crate) fn entity() -> impl Strategy<Value = Entity> {
    let leaf = (
        proptest::sample::select(CONTENT_TYPES),
        proptest::sample::select(CHARSETS),
        proptest::sample::select(ENCODINGS),
        text(),
        4usize..80,
    )
        .prop_map(|(content_type, charset, encoding, text, width)| Entity::Leaf {
            content_type,
            charset,
            encoding,
            text,
            width,
        });
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            (
                proptest::sample::select(SUBTYPES),
                proptest::bool::weighted(0.9),
                proptest::collection::vec(inner.clone(), 0..4),
                proptest::bool::weighted(0.8),
            )
                .prop_map(|(subtype, boundary, parts, close)| Entity::Multipart {
                    subtype,
                    boundary,
                    parts,
                    close
                }),
            (
                proptest::bool::weighted(0.8),
                proptest::sample::select(&[None, None, Some("7bit"), Some("base64")][..]),
                inner,
            )
                .prop_map(|(declared, encoding, inner)| Entity::Message {
                    declared,
                    encoding,
                    inner: Box::new(inner)
                }),
        ]
    })
}

/// `text` in `charset`: Latin-1 where the charset says so (other characters as `?`), else UTF-8.
fn in_charset(text: &str, charset: Option<&str>) -> Vec<u8> {
    if charset.is_some_and(|c| c.eq_ignore_ascii_case("iso-8859-1")) {
        text.chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')).collect()
    } else {
        text.as_bytes().to_vec()
    }
}

/// `bytes` (lines separated by LF) with `encoding` applied, encoded lines at most about
/// `width` long, so that words are cut by soft line breaks and base64 line ends.
fn encoded(bytes: &[u8], encoding: Option<&str>, width: usize) -> Vec<u8> {
    let encoding = encoding.map(str::to_ascii_lowercase);
    match encoding.as_deref() {
        Some("base64") => {
            let text = base64::engine::general_purpose::STANDARD.encode(bytes);
            text.as_bytes().chunks(width).collect::<Vec<_>>().join(&b"\r\n"[..])
        }
        Some("quoted-printable") => {
            let mut out = Vec::new();
            let mut column = 0;
            for &byte in bytes {
                if byte == b'\n' {
                    out.extend_from_slice(b"\r\n");
                    column = 0;
                    continue;
                }
                if column >= width {
                    out.extend_from_slice(b"=\r\n");
                    column = 0;
                }
                if byte == b'=' || !byte.is_ascii() || (byte % 7 == 0 && byte.is_ascii_alphabetic())
                {
                    out.extend_from_slice(format!("={byte:02X}").as_bytes());
                    column += 3;
                } else {
                    out.push(byte);
                    column += 1;
                }
            }
            out
        }
        _ => bytes.iter().fold(Vec::new(), |mut out, &byte| {
            if byte == b'\n' {
                out.push(b'\r');
            }
            out.push(byte);
            out
        }),
    }
}

/// Writes `entity` (its header fields, the blank line, its body) to `out`; `boundaries`
/// numbers the multiparts so nested ones differ.
fn render(entity: &Entity, out: &mut Vec<u8>, boundaries: &mut u32) {
    match entity {
        Entity::Leaf { content_type, charset, encoding, text, width } => {
            if let Some(content_type) = content_type {
                out.extend_from_slice(format!("Content-Type: {content_type}").as_bytes());
                if let Some(charset) = charset {
                    out.extend_from_slice(format!("; charset=\"{charset}\"").as_bytes());
                }
                out.extend_from_slice(b"\r\n");
            }
            if let Some(encoding) = encoding {
                out.extend_from_slice(
                    format!("Content-Transfer-Encoding: {encoding}\r\n").as_bytes(),
                );
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&encoded(&in_charset(text, *charset), *encoding, *width));
        }
        Entity::Multipart { subtype, boundary, parts, close } => {
            *boundaries += 1;
            let name = format!("=_b{boundaries}");
            out.extend_from_slice(format!("Content-Type: multipart/{subtype}").as_bytes());
            if *boundary {
                out.extend_from_slice(format!(";\r\n boundary=\"{name}\"").as_bytes());
            }
            out.extend_from_slice(b"\r\n\r\npreamble alpha\r\n");
            for part in parts {
                out.extend_from_slice(format!("--{name}\r\n").as_bytes());
                render(part, out, boundaries);
                out.extend_from_slice(b"\r\n");
            }
            if *close {
                out.extend_from_slice(format!("--{name}--\r\nepilogue beta\r\n").as_bytes());
            }
        }
        Entity::Message { declared, encoding, inner } => {
            if *declared {
                out.extend_from_slice(b"Content-Type: message/rfc822\r\n");
            }
            if let Some(encoding) = encoding {
                out.extend_from_slice(
                    format!("Content-Transfer-Encoding: {encoding}\r\n").as_bytes(),
                );
            }
            out.extend_from_slice(b"\r\nSubject: Inner GAMMA\r\n");
            render(inner, out, boundaries);
        }
    }
}

/// A whole message: an outer header, then `entity`; with LF line ends when `lf`.
pub(crate) fn message(entity: &Entity, lf: bool) -> Vec<u8> {
    let mut out = b"From: =?utf-8?q?J=C3=B6rg?= <j@example.org>\r\nSubject: Outer\r\n".to_vec();
    render(entity, &mut out, &mut 0);
    if lf {
        let text = out.split(|&b| b == b'\r').collect::<Vec<_>>();
        out = text.concat();
    }
    out
}

/// Every text a leaf of `entity` holds, for cutting needles from.
fn texts(entity: &Entity, into: &mut String) {
    match entity {
        Entity::Leaf { text, .. } => into.push_str(text),
        Entity::Multipart { parts, .. } => parts.iter().for_each(|part| texts(part, into)),
        Entity::Message { inner, .. } => texts(inner, into),
    }
}

/// A needle cut from `text` at `start` (chars), `len` chars long, upper-cased when `upper`.
fn cut(text: &str, start: usize, len: usize, upper: bool) -> String {
    let chars: Vec<char> = text.chars().collect();
    let start = start % chars.len().max(1);
    let needle: String = chars.iter().skip(start).take(len).collect();
    if upper { needle.to_uppercase() } else { needle }
}

/// The answer of each path for one needle: `(scan, cache)` for BODY, then for TEXT.
fn answers(message: &[u8], blob: &[u8], needle: &str) -> [(bool, bool); 2] {
    [
        (body_contains(message, needle), body_contains_cached(message, blob, needle)),
        (text_contains(message, needle), text_contains_cached(message, blob, needle)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// The cache path answers as the scan for generated messages and needles cut from their
    /// text (across soft line breaks and base64 line ends), fixed words, and random ones.
    #[test]
    fn the_cache_path_answers_as_the_scan(
        entity in entity(),
        lf in proptest::bool::weighted(0.2),
        cuts in proptest::collection::vec((any::<usize>(), 1usize..12, any::<bool>()), 1..6),
        word in proptest::sample::select(WORDS),
        random in "[a-z\u{e9}K]{1,4}",
    ) {
        let message = message(&entity, lf);
        let blob = build(&message);
        let mut all = String::new();
        texts(&entity, &mut all);
        let mut needles: Vec<String> =
            cuts.iter().map(|&(start, len, upper)| cut(&all, start, len, upper)).collect();
        needles.push(word.to_owned());
        needles.push(random);
        for needle in &needles {
            for (scan, cache) in answers(&message, &blob, needle) {
                prop_assert_eq!(scan, cache, "needle {:?} in {}", needle, String::from_utf8_lossy(&message));
            }
        }
    }
}

#[test]
fn the_blob_is_what_the_cache_path_reads() {
    // Two messages of the same length, the part ten bytes later in the second: a blob that
    // fits the message is believed, so with the other's blob the part's range misses "hello".
    let message = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nhello\r\n--b--\r\n\
epilogue\r\n";
    let other =
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\npreamble\r\n--b\r\n\r\nhello\r\n\
--b--\r\n";
    assert_eq!(message.len(), other.len());
    assert!(body_contains(message, "hello"));
    assert!(body_contains_cached(message, &build(message), "hello"));
    assert!(!body_contains_cached(message, &build(other), "hello"));
    // A blob that does not fit (damaged, of a longer message, none) leaves the scan to answer.
    assert!(body_contains_cached(message, b"SMC", "hello"));
    assert!(body_contains_cached(message, &build(b"Subject: longer\r\n\r\nbody text"), "hello"));
    assert!(text_contains_cached(message, b"", "hello"));
}

#[test]
fn nested_messages_search_their_text_parts_not_their_headers() {
    let message = b"Subject: outer\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: message/rfc822\r\n\r\nSubject: inner subject\r\nContent-Type: text/plain; \
charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\naW5uZXIgYm9keQ==\r\n--b\r\n\
Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\naGlkZGVu\r\n--b--\r\n";
    let blob = build(message);
    for (needle, body, text) in [
        ("INNER BODY", true, true),
        ("inner subject", false, false),
        ("outer", false, true),
        // An encoded message/rfc822 is not text: its bytes are not searched.
        ("aGlkZGVu", false, false),
        ("hidden", false, false),
    ] {
        assert_eq!(answers(message, &blob, needle), [(body, body), (text, text)], "{needle}");
    }
}

#[test]
fn needles_across_encoded_line_breaks_are_found() {
    let message = b"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\
\r\nStra=DFe and caf=\r\n=E9 cr=\r\n=E8me\r\n--b\r\nContent-Type: text/html\r\n\
Content-Transfer-Encoding: base64\r\n\r\nPGI+\r\nQm9s\r\nZDwv\r\nYj4=\r\n--b--\r\n";
    let blob = build(message);
    for (needle, found) in
        [("STRASSE", false), ("stra\u{df}e", true), ("caf\u{e9}", true), ("<b>bold", true)]
    {
        assert_eq!(answers(message, &blob, needle), [(found, found); 2], "{needle}");
    }
}

/// A 40 KB message: a header, a 9 KB text part in quoted-printable, a 30 KB base64 attachment.
fn message_with_attachment() -> Vec<u8> {
    let mut message = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: report\r\n\
Content-Type: multipart/mixed; boundary=\"=_outer\"\r\n\r\n--=_outer\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        .to_vec();
    while message.len() < 9_500 {
        message
            .extend_from_slice(b"The quarterly figures are attached, caf=C3=A9 as usual.=\r\n\r\n");
    }
    message.extend_from_slice(
        b"\r\n--=_outer\r\nContent-Type: application/pdf\r\n\
Content-Transfer-Encoding: base64\r\n\r\n",
    );
    let attachment: Vec<u8> = (0..22_500u32).map(|i| (i * 7919 % 251) as u8).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(attachment);
    for line in encoded.as_bytes().chunks(76) {
        message.extend_from_slice(line);
        message.extend_from_slice(b"\r\n");
    }
    message.extend_from_slice(b"--=_outer--\r\n");
    message
}

/// Time per message of SEARCH BODY and TEXT by each path, for a key that is not there (every
/// text part is read). Run: `cargo test -p skua-protocols --lib search_cost -- --ignored
/// --nocapture`.
#[test]
#[ignore = "a measurement: prints, asserts no timing"]
fn search_cost_of_a_message_with_an_attachment() {
    let message = message_with_attachment();
    let blob = build(&message);
    // The fastest of several batches: the machine is shared, and slower batches measure the
    // neighbours.
    let (batches, rounds) = (15, 20);
    let time = |name: &str, search: &dyn Fn() -> bool| {
        let fastest = (0..batches)
            .map(|_| {
                let start = std::time::Instant::now();
                for _ in 0..rounds {
                    assert!(!std::hint::black_box(search()));
                }
                start.elapsed() / rounds
            })
            .min()
            .expect("batches");
        println!("{name}: {fastest:?} per {} byte message", message.len());
    };
    let needle = "not in there";
    time("BODY scan ", &|| body_contains(&message, needle));
    time("BODY cache", &|| body_contains_cached(&message, &blob, needle));
    time("TEXT scan ", &|| text_contains(&message, needle));
    time("TEXT cache", &|| text_contains_cached(&message, &blob, needle));
}
