//! Tests of the corpus generator: deterministic for a seed, and every message parses as MIME
//! with the structure it claims (checked with mail-parser, an independent implementation).

use mail_parser::{MessageParser, MimeHeaders};

use super::encode::{base64_encode, encode_word, qp_encode, rfc5322_date};
use super::generate::{Kind, message, write_corpus};

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    for i in [0, 1, 17, 999] {
        assert_eq!(message(7, i, 1 << 20).bytes, message(7, i, 1 << 20).bytes);
        assert_ne!(message(7, i, 1 << 20).bytes, message(8, i, 1 << 20).bytes);
    }
    assert_ne!(message(7, 1, 1 << 20).bytes, message(7, 2, 1 << 20).bytes);
}

#[test]
fn every_message_parses_with_its_structure() {
    let parser = MessageParser::default();
    let mut kinds = std::collections::HashSet::new();
    let mut non_ascii_subjects = 0;
    for i in 0..300 {
        let g = message(42, i, 256 << 10);
        assert!(g.bytes.len() <= (256 << 10) + 8192, "message {i} is {} bytes", g.bytes.len());
        assert!(g.bytes.is_ascii(), "message {i} must be 7-bit clean on the wire");
        assert!(!g.bytes.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'), "bare LF in {i}");
        let m = parser.parse(&g.bytes[..]).unwrap_or_else(|| panic!("message {i} does not parse"));
        assert_eq!(m.subject(), Some(g.subject.as_str()), "subject of {i}");
        non_ascii_subjects += usize::from(!g.subject.is_ascii());
        assert!(m.from().and_then(|f| f.first()).and_then(|a| a.address()).is_some());
        assert!(m.date().is_some(), "date of {i}");
        assert_eq!(m.attachment_count(), g.attachments, "attachments of {i}");
        match g.kind {
            Kind::Alternative => {
                assert!(m.body_html(0).is_some() && m.body_text(0).is_some(), "alternative {i}");
            }
            Kind::Attachments => {
                for a in m.attachments() {
                    assert!(a.attachment_name().is_some() && a.contents().len() >= 16);
                }
            }
            Kind::PlainQp => {
                let text = m.body_text(0).unwrap();
                assert!(text.contains("the") || text.contains("and") || !text.is_ascii());
            }
            Kind::Plain => assert!(m.body_text(0).is_some()),
        }
        kinds.insert(format!("{:?}", g.kind));
    }
    assert_eq!(kinds.len(), 4, "all kinds appear: {kinds:?}");
    assert!(non_ascii_subjects > 30, "encoded-word subjects appear ({non_ascii_subjects})");
}

#[test]
fn sizes_spread() {
    let sizes: Vec<usize> = (0..400).map(|i| message(3, i, 1 << 20).bytes.len()).collect();
    let small = sizes.iter().filter(|&&s| s < 10 << 10).count();
    let large = sizes.iter().filter(|&&s| s > 64 << 10).count();
    assert!(small > 150 && large > 20, "small {small}, large {large}");
    assert!(sizes.iter().all(|&s| s < (1 << 20) + 16384));
}

#[test]
fn encoders() {
    assert_eq!(base64_encode(b"", 76), "");
    assert_eq!(base64_encode(b"f", 76), "Zg==");
    assert_eq!(base64_encode(b"fo", 76), "Zm8=");
    assert_eq!(base64_encode(b"foobar", 76), "Zm9vYmFy");
    assert_eq!(base64_encode(&[0xff; 60], 76).lines().map(str::len).max(), Some(76));
    assert_eq!(qp_encode("a=b \r\ncafé"), "a=3Db=20\r\ncaf=C3=A9");
    assert!(qp_encode(&"x".repeat(200)).split("\r\n").all(|l| l.len() <= 76));
    assert_eq!(encode_word("café", false), "=?UTF-8?Q?caf=C3=A9?=");
    assert_eq!(encode_word("café", true), "=?UTF-8?B?Y2Fmw6k=?=");
    let long = encode_word(&"Привет ".repeat(10), true);
    assert!(long.split("\r\n ").count() > 1 && long.split("\r\n ").all(|w| w.len() <= 75));
}

#[test]
fn dates() {
    assert_eq!(rfc5322_date(0, 0), "Thu, 01 Jan 1970 00:00:00 +0000");
    assert_eq!(rfc5322_date(1_704_067_200, -300), "Sun, 31 Dec 2023 19:00:00 -0500");
    assert_eq!(rfc5322_date(1_709_164_800, 330), "Thu, 29 Feb 2024 05:30:00 +0530");
}

#[test]
fn writes_a_directory_that_loads_back() {
    let dir = std::env::temp_dir().join(format!("skua-bench-corpus-{}", std::process::id()));
    let summary = write_corpus(&dir, 5, 20, 64 << 10).unwrap();
    assert_eq!(summary.kinds.iter().sum::<u32>(), 20);
    let bytes = summary.bytes;
    let super::Source::Corpus(ms) = super::Source::load(&dir).unwrap() else { panic!("corpus") };
    assert_eq!(ms.len(), 20);
    assert!(ms.iter().all(|m| { !m.windows(11).any(|w| w.eq_ignore_ascii_case(b"message-id:")) }));
    assert!(bytes > 20 * 1024);
    assert_eq!(std::fs::read(dir.join("000003.eml")).unwrap(), message(5, 3, 64 << 10).bytes);
    std::fs::remove_dir_all(&dir).unwrap();
}
