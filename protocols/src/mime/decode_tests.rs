//! The transfer decoders: RFC 2045 examples, the documented handling of malformed input, and
//! property tests (round trips against an independent encoder, chunked reads equal to one
//! read, `measure` equal to what is read, no panic on any input).

use super::*;
use base64::Engine as _;
use proptest::prelude::*;

fn decode(encoding: TransferEncoding, input: &[u8]) -> Vec<u8> {
    decode_all(encoding, input)
}

#[test]
fn encodings_are_named_by_their_field() {
    let from = |v: &[u8]| TransferEncoding::from_field(Some(v));
    assert_eq!(TransferEncoding::from_field(None), Ok(TransferEncoding::Identity));
    assert_eq!(from(b" BASE64 "), Ok(TransferEncoding::Base64));
    assert_eq!(from(b"(comment) Quoted-Printable"), Ok(TransferEncoding::QuotedPrintable));
    assert_eq!(from(b"8bit (x)"), Ok(TransferEncoding::Identity));
    assert_eq!(from(b"binary"), Ok(TransferEncoding::Identity));
    assert_eq!(from(b""), Ok(TransferEncoding::Identity));
    assert_eq!(from(b"x-uuencode"), Err(UnknownEncoding));
    assert_eq!(from(b"base64x"), Err(UnknownEncoding));
    let message = b"Content-Type: text/plain\r\nContent-Transfer-Encoding:\r\n base64\r\n\r\nAA==";
    assert_eq!(transfer_encoding(message, 0..message.len() - 4), Ok(TransferEncoding::Base64));
}

#[test]
fn base64_decodes_across_lines_and_skips_what_is_not_base64() {
    let b64 = TransferEncoding::Base64;
    assert_eq!(decode(b64, b"aGVsbG8g\r\nd29y\r\nbGQ=\r\n"), b"hello world");
    assert_eq!(decode(b64, b"aGVs bG8*!"), b"hello");
    // An incomplete last quantum keeps its whole bytes; a lone sextet is no byte.
    assert_eq!(decode(b64, b"aGVsbA"), b"hell");
    assert_eq!(decode(b64, b"aGVsbGQ"), b"helld");
    assert_eq!(decode(b64, b"aGVsb"), b"hel");
    // `=` ends a quantum; what follows is a new one (concatenated blocks).
    assert_eq!(decode(b64, b"aA==aQ=="), b"hi");
    assert_eq!(decode(b64, b"===="), b"");
    assert_eq!(decode(b64, b""), b"");
}

#[test]
fn quoted_printable_follows_rfc_2045() {
    let qp = TransferEncoding::QuotedPrintable;
    assert_eq!(decode(qp, b"caf=C3=A9 ok\r\n"), "café ok\r\n".as_bytes());
    assert_eq!(decode(qp, b"lower =c3=a9"), "lower é".as_bytes());
    // Soft line breaks vanish, with or without blanks after the `=`, CRLF or LF.
    assert_eq!(decode(qp, b"soft=\r\nbreak= \t\nhere="), b"softbreakhere");
    // Trailing blanks are transport padding; inner blanks stay.
    assert_eq!(decode(qp, b"a  b \t\r\nc \nd "), b"a  b\r\nc\nd");
    // A `=` that is neither an escape nor a soft break stays.
    assert_eq!(decode(qp, b"1+1=2 =G0 =4"), b"1+1=2 =G0 =4");
    assert_eq!(decode(qp, b"nul=00byte"), b"nul\0byte");
}

#[test]
fn measure_counts_and_finds_nul() {
    let b64 = TransferEncoding::Base64;
    assert_eq!(measure(b64, b"AAEC\r\n"), Measure { len: 3, has_nul: true });
    assert_eq!(measure(b64, b"aGk="), Measure { len: 2, has_nul: false });
    let id = TransferEncoding::Identity;
    assert_eq!(measure(id, b"abc"), Measure { len: 3, has_nul: false });
    assert_eq!(measure(id, b"a\0c"), Measure { len: 3, has_nul: true });
    let qp = TransferEncoding::QuotedPrintable;
    assert_eq!(measure(qp, b"x=00=\r\n"), Measure { len: 2, has_nul: true });
}

#[test]
fn skip_then_read_gives_the_tail() {
    for encoding in [TransferEncoding::Identity, TransferEncoding::Base64] {
        let input: &[u8] = if encoding == TransferEncoding::Base64 {
            b"MDEyMzQ1\r\nNjc4OQ=="
        } else {
            b"0123456789"
        };
        let mut decoder = Decoder::new(encoding);
        assert_eq!(decoder.skip(input, 4), 4);
        let mut out = Vec::new();
        decoder.read_into(input, &mut out, 3);
        assert_eq!(out, b"456");
        assert_eq!(decoder.skip(input, 100), 3, "only what is left");
        assert_eq!(decoder.read(input, &mut [0; 8]), 0);
    }
}

/// An encoder written from RFC 2045 §6.7 for the round trip: every byte that is not a
/// printable ASCII character other than `=` (or that is a blank) is escaped, and lines are
/// broken with soft breaks.
fn qp_encode(data: &[u8], line_max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut column = 0;
    for &byte in data {
        let plain = (33..=126).contains(&byte) && byte != b'=';
        let width = if plain { 1 } else { 3 };
        if column + width > line_max {
            out.extend_from_slice(b"=\r\n");
            column = 0;
        }
        if plain {
            out.push(byte);
        } else {
            out.extend_from_slice(format!("={byte:02X}").as_bytes());
        }
        column += width;
    }
    out
}

/// Reads the whole content in pieces of the given sizes (cycled).
fn read_chunked(encoding: TransferEncoding, input: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut decoder = Decoder::new(encoding);
    let mut out = Vec::new();
    for &size in sizes.iter().cycle() {
        let mut buffer = vec![0u8; size.max(1)];
        let n = decoder.read(input, &mut buffer);
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buffer[..n]);
        assert!(out.len() <= input.len(), "decoded output never outgrows the input");
    }
    unreachable!("cycle never ends")
}

fn any_encoding() -> impl Strategy<Value = TransferEncoding> {
    prop_oneof![
        Just(TransferEncoding::Identity),
        Just(TransferEncoding::Base64),
        Just(TransferEncoding::QuotedPrintable),
    ]
}

proptest! {
    #[test]
    fn base64_round_trips_whatever_the_line_length(
        data in prop::collection::vec(any::<u8>(), 0..600),
        line in 4usize..100,
        sizes in prop::collection::vec(1usize..40, 1..5),
    ) {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&data);
        let mut wrapped = Vec::new();
        for chunk in encoded.as_bytes().chunks(line) {
            wrapped.extend_from_slice(chunk);
            wrapped.extend_from_slice(b"\r\n");
        }
        prop_assert_eq!(&decode(TransferEncoding::Base64, &wrapped), &data);
        prop_assert_eq!(&read_chunked(TransferEncoding::Base64, &wrapped, &sizes), &data);
        let m = measure(TransferEncoding::Base64, &wrapped);
        prop_assert_eq!(m.len, data.len() as u64);
        prop_assert_eq!(m.has_nul, data.contains(&0));
    }

    #[test]
    fn quoted_printable_round_trips(
        data in prop::collection::vec(any::<u8>(), 0..600),
        line in 4usize..80,
        sizes in prop::collection::vec(1usize..40, 1..5),
    ) {
        let encoded = qp_encode(&data, line);
        prop_assert_eq!(&decode(TransferEncoding::QuotedPrintable, &encoded), &data);
        prop_assert_eq!(&read_chunked(TransferEncoding::QuotedPrintable, &encoded, &sizes), &data);
    }

    /// Any bytes at all, in any encoding: no panic, pieces equal one read, `measure` equals
    /// what is read, and skipping then reading gives the same tail.
    #[test]
    fn arbitrary_input_decodes_consistently(
        encoding in any_encoding(),
        input in prop::collection::vec(
            prop_oneof![any::<u8>(), Just(b'='), Just(b' '), Just(b'\r'), Just(b'\n'), Just(b'A')],
            0..400,
        ),
        sizes in prop::collection::vec(1usize..20, 1..5),
        skip in 0u64..300,
    ) {
        let whole = decode(encoding, &input);
        prop_assert_eq!(&read_chunked(encoding, &input, &sizes), &whole);
        let m = measure(encoding, &input);
        prop_assert_eq!(m.len, whole.len() as u64);
        prop_assert_eq!(m.has_nul, whole.contains(&0));
        // Measuring in steps of any size gives the same answer.
        let mut measuring = Measuring::new(encoding);
        let step = sizes[0];
        let mut steps = 0;
        while !measuring.step(&input, step) {
            steps += 1;
            prop_assert!(steps <= input.len() + 1, "each step moves on");
        }
        prop_assert_eq!(measuring.result(), Some(m));
        let mut decoder = Decoder::new(encoding);
        let skipped = decoder.skip(&input, skip);
        prop_assert_eq!(skipped, skip.min(whole.len() as u64));
        let mut tail = Vec::new();
        decoder.read_into(&input, &mut tail, usize::MAX);
        prop_assert_eq!(&tail[..], &whole[usize::try_from(skipped).unwrap()..]);
    }
}
