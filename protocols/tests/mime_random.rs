//! Robustness: thousands of truncated, mutated and generated messages go through
//! `mime::cache::build`, `CacheView::parse`, every section and the search helpers. Nothing may
//! panic, every blob must parse, the response texts must be well-formed IMAP (balanced lists,
//! exact literal lengths), every section must lie inside the message, and SEARCH BODY/TEXT
//! answer the same with the blob as by scanning the message.
//! Deterministic: a fixed-seed xorshift generator, so a failure replays exactly.

mod mime_fixtures;

use mime_fixtures::{ALTERNATIVE, MIXED, SIMPLE};
use skua_protocols::imap::types::SectionText;
use skua_protocols::mime::cache::{CacheView, SectionBytes, build};
use skua_protocols::mime::search;

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
}

const PIECES: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b"--",
    b"--b",
    b"--b--",
    b"--XX",
    b"--outer",
    b"--inner--",
    b" ",
    b"\t",
    b":",
    b";",
    b"\"",
    b"(",
    b")",
    b"<",
    b">",
    b"@",
    b",",
    b"=?utf-8?q?x?=",
    b"\0",
    b"\xff\xfe",
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: multipart/digest; boundary=b\r\n\r\n--b\r\n\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Disposition: attachment; filename=\"x\"\r\n",
    b"From: a@b, \"c\" <d@e>, g: h@i;\r\n",
    b"Date: 1 Jan 2020 00:00 +0100\r\n",
    b"\r\n\r\n",
    b"Subject: x\r\n y\r\n",
    b"{5}\r\n",
    b"\\",
    b"Content-Language: en\r\n",
    b"Content-Type: text/plain; charset=utf-7\r\n",
    b"Content-Type: text/plain; charset=iso-2022-jp\r\n",
    b"Content-Type: text/plain; charset=shift_jis\r\n",
    b"Content-Type: text/html; charset=utf-16le\r\n",
    b"Content-Type: text/plain; charset=\"gb18030\"\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"=E2=82",
    b"=\r\n",
    b"+AGEAYgBj-",
    b"\x1b$B",
    b"====",
    b"QUJD\r\nRA==",
];

fn mutate(random: &mut Random, message: &[u8]) -> Vec<u8> {
    let mut out = message.to_vec();
    for _ in 0..=random.below(6) {
        let at = random.below(out.len() + 1);
        match random.below(4) {
            0 => {
                let piece = PIECES[random.below(PIECES.len())];
                out.splice(at..at, piece.iter().copied());
            }
            1 => {
                let end = (at + random.below(40)).min(out.len());
                out.drain(at..end);
            }
            2 => {
                let end = (at + random.below(80)).min(out.len());
                let copy = out[at..end].to_vec();
                let to = random.below(out.len() + 1);
                out.splice(to..to, copy);
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

fn generated(random: &mut Random) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..random.below(60) {
        out.extend_from_slice(PIECES[random.below(PIECES.len())]);
        if random.below(3) == 0 {
            out.extend_from_slice(b"text");
        }
    }
    out
}

const CONTENT_TYPES: &[&str] = &[
    "text/plain; charset=utf-8",
    "text/plain; charset=utf-7",
    "text/plain; charset=iso-2022-jp",
    "text/html; charset=shift_jis",
    "text/plain; charset=utf-16le",
    "text/plain; charset=x-unknown",
    "image/png; name=\"a.png\"",
    "message/rfc822",
];
const ENCODINGS: &[&str] = &["7bit", "8bit", "base64", "quoted-printable", "x-junk"];

/// A random but well-formed MIME entity, `depth` levels at most.
fn structured(random: &mut Random, out: &mut Vec<u8>, depth: usize) {
    if random.below(3) == 0 {
        out.extend_from_slice(b"From: \"A\" <a@b>, c@d\r\nSubject: =?utf-8?q?x?=\r\n");
    }
    if depth > 0 && random.below(2) == 0 {
        let boundary = format!("b{}", random.below(1000));
        let subtype = ["mixed", "alternative", "digest"][random.below(3)];
        out.extend_from_slice(
            format!("Content-Type: multipart/{subtype}; boundary={boundary}\r\n\r\n").as_bytes(),
        );
        for _ in 0..=random.below(3) {
            out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            structured(random, out, depth - 1);
            out.extend_from_slice(b"\r\n");
        }
        if random.below(4) != 0 {
            out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        }
        return;
    }
    let content_type = CONTENT_TYPES[random.below(CONTENT_TYPES.len())];
    let encoding = ENCODINGS[random.below(ENCODINGS.len())];
    out.extend_from_slice(
        format!("Content-Type: {content_type}\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n")
            .as_bytes(),
    );
    if content_type == "message/rfc822" && depth > 0 {
        structured(random, out, depth - 1);
        return;
    }
    for _ in 0..random.below(8) {
        out.extend_from_slice(PIECES[random.below(PIECES.len())]);
        out.extend_from_slice(b"body text");
    }
}

/// Checks `text` is a parenthesised IMAP list: balanced parentheses outside strings, quoted
/// strings closed, literals with exactly the announced length.
fn assert_well_formed(text: &[u8], message: &[u8]) {
    assert_eq!(text.first(), Some(&b'('), "{:?}", String::from_utf8_lossy(message));
    let mut depth = 0usize;
    let mut position = 0;
    while position < text.len() {
        match text[position] {
            b'(' => depth += 1,
            b')' => {
                assert!(depth > 0, "unbalanced");
                depth -= 1;
                if depth == 0 {
                    assert_eq!(position + 1, text.len(), "text after the list");
                }
            }
            b'"' => {
                position += 1;
                while text[position] != b'"' {
                    assert!(!matches!(text[position], b'\r' | b'\n' | 0), "bad quoted char");
                    assert!(text[position] < 0x80, "8-bit in quoted string");
                    position += if text[position] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' => {
                let close = position + text[position..].iter().position(|&b| b == b'}').expect("}");
                let length: usize = std::str::from_utf8(&text[position + 1..close])
                    .expect("digits")
                    .parse()
                    .expect("number");
                assert_eq!(&text[close + 1..close + 3], b"\r\n");
                assert!(!text[close + 3..close + 3 + length].contains(&0));
                position = close + 2 + length;
            }
            b' ' | b'N' | b'I' | b'L' | b'0'..=b'9' => {}
            other => panic!("unexpected byte {other:#x} in {:?}", String::from_utf8_lossy(text)),
        }
        position += 1;
    }
    assert_eq!(depth, 0, "unclosed list");
}

fn check(message: &[u8]) {
    let blob = build(message);
    let view = CacheView::parse(&blob).expect("every built blob parses");
    assert_well_formed(view.envelope(), message);
    assert_well_formed(view.body_structure(), message);
    assert_well_formed(view.body(), message);
    assert!(view.header_len() as usize <= message.len());
    let specs = [
        None,
        Some(SectionText::Header),
        Some(SectionText::Text),
        Some(SectionText::Mime),
        Some(SectionText::HeaderFields(vec!["subject".into(), "from".into()])),
        Some(SectionText::HeaderFieldsNot(vec!["content-type".into()])),
    ];
    let mut paths: Vec<Vec<u32>> = vec![vec![]];
    for a in 1..=4 {
        paths.push(vec![a]);
        for b in 1..=4 {
            paths.push(vec![a, b]);
            for c in 1..=3 {
                paths.push(vec![a, b, c]);
            }
        }
    }
    for path in &paths {
        for spec in &specs {
            if let Some(SectionBytes::Range(range)) = view.section(message, path, spec.as_ref()) {
                assert!(
                    range.start <= range.end && range.end <= message.len(),
                    "{path:?} {spec:?}"
                );
            }
        }
    }
    let _ = search::header_contains(message, "subject", "x");
    // SEARCH BODY/TEXT from the blob's part table answer as the scan of the message.
    for needle in ["text", "ü", "b", "--", "Subject"] {
        let body = search::body_contains(message, needle);
        assert_eq!(search::body_contains_cached(message, &blob, needle), body, "{needle}");
        let text = search::text_contains(message, needle);
        assert_eq!(search::text_contains_cached(message, &blob, needle), text, "{needle}");
    }
}

#[test]
fn truncated_fixtures() {
    for fixture in [SIMPLE, ALTERNATIVE, MIXED] {
        for end in 0..=fixture.len() {
            check(&fixture[..end]);
            check(&fixture[fixture.len() - end..]);
        }
    }
}

#[test]
fn mutated_and_generated_messages() {
    let mut random = Random(0x5eed_cafe_f00d_beef);
    for round in 0..3000 {
        let fixture = [SIMPLE, ALTERNATIVE, MIXED][round % 3];
        check(&mutate(&mut random, fixture));
        check(&generated(&mut random));
        let mut message = Vec::new();
        structured(&mut random, &mut message, 4);
        check(&message);
        check(&mutate(&mut random, &message));
    }
}

#[test]
fn mutated_blobs_never_panic() {
    let mut random = Random(0x0123_4567_89ab_cdef);
    let blob = build(MIXED);
    for _ in 0..5000 {
        let mut corrupt = blob.clone();
        for _ in 0..=random.below(3) {
            let at = random.below(corrupt.len());
            corrupt[at] = u8::try_from(random.below(256)).expect("byte");
        }
        if random.below(4) == 0 {
            corrupt.truncate(random.below(corrupt.len()));
        }
        let _ = search::body_contains_cached(MIXED, &corrupt, "text");
        if let Ok(view) = CacheView::parse(&corrupt) {
            for part in [&[][..], &[1], &[3], &[3, 1], &[3, 2], &[2, 1]] {
                for spec in [
                    None,
                    Some(SectionText::Header),
                    Some(SectionText::Mime),
                    Some(SectionText::Text),
                ] {
                    if let Some(SectionBytes::Range(range)) =
                        view.section(MIXED, part, spec.as_ref())
                    {
                        assert!(range.end <= MIXED.len());
                    }
                }
            }
        }
    }
}

#[test]
fn deep_and_wide_nesting_is_bounded() {
    let mut deep = Vec::new();
    for level in 0..200 {
        deep.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=b{level}\r\n\r\n--b{level}\r\n")
                .as_bytes(),
        );
    }
    deep.extend_from_slice(b"\r\nleaf\r\n");
    check(&deep);
    let mut messages = Vec::new();
    for _ in 0..5000 {
        messages.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
    }
    check(&messages);
}

/// Writes a well-formed random entity and records, for each leaf, its part number and the
/// exact body bytes written. `number` is the entity's part number if it is not a multipart;
/// `base` is the prefix of its children's numbers if it is one.
fn oracle_entity(
    random: &mut Random,
    out: &mut Vec<u8>,
    depth: usize,
    (number, base): (&[u32], &[u32]),
    leaves: &mut Vec<(Vec<u32>, Vec<u8>)>,
) {
    match random.below(if depth == 0 { 1 } else { 3 }) {
        1 => {
            let boundary = format!("=_bnd{}", random.below(1_000_000));
            out.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\npre\r\n")
                    .as_bytes(),
            );
            for index in 1..=u32::try_from(random.below(3) + 1).expect("small") {
                out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
                let child = [base, &[index]].concat();
                oracle_entity(random, out, depth - 1, (&child, &child), leaves);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(format!("--{boundary}--\r\nepilogue\r\n").as_bytes());
        }
        2 => {
            out.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n");
            let inner = [number, &[1]].concat();
            oracle_entity(random, out, depth - 1, (&inner, number), leaves);
        }
        _ => {
            let mut body = format!("LEAF{}", leaves.len()).into_bytes();
            for _ in 0..random.below(6) {
                let fillers: [&[u8]; 5] = [b" words", b"\r\n", b"--x", b"-", b"\r\nline"];
                body.extend_from_slice(fillers[random.below(fillers.len())]);
            }
            out.extend_from_slice(b"Content-Type: text/plain\r\n\r\n");
            out.extend_from_slice(&body);
            leaves.push((number.to_vec(), body));
        }
    }
}

#[test]
fn generated_trees_have_the_generated_parts() {
    let mut random = Random(0xfeed_face_dead_beef);
    for _ in 0..2000 {
        let mut message = Vec::new();
        let mut leaves = Vec::new();
        oracle_entity(&mut random, &mut message, 4, (&[1], &[]), &mut leaves);
        let blob = build(&message);
        let view = CacheView::parse(&blob).expect("parses");
        for (number, body) in &leaves {
            let section = view.section(&message, number, None).expect("generated part exists");
            assert_eq!(
                section.bytes(&message),
                &body[..],
                "part {number:?} of {}",
                String::from_utf8_lossy(&message)
            );
        }
        let leaf_count = leaves.len();
        let text_leaves = view.body_structure().windows(6).filter(|w| w == b"\"TEXT\"").count();
        assert_eq!(text_leaves, leaf_count);
    }
}
