//! Writing IMAP strings (RFC 9051 §4.3): `quoted` when the bytes allow it, a `literal`
//! otherwise, `NIL` for absent values.
//!
//! Quoted strings are limited to 7-bit text without CR or LF so that IMAP4rev1 clients read
//! them; anything else (8-bit header text, bare CR/LF) becomes a literal. NUL is not allowed in
//! either form (`CHAR8 = %x01-ff`) and is dropped.

/// Appends `value` as an IMAP `string`.
pub(crate) fn string(out: &mut Vec<u8>, value: &[u8]) {
    write(out, value, false);
}

/// Appends `value` as an IMAP `nstring`: `NIL` when absent.
pub(crate) fn nstring(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(value) => string(out, value),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// Appends `value` upper-cased (ASCII) as an IMAP string; used for media types, encodings
/// and parameter names, which are case-insensitive tokens.
pub(crate) fn upper_string(out: &mut Vec<u8>, value: &[u8]) {
    write(out, value, true);
}

/// What one look at a value found: can it be quoted, and does it need escapes. Eight bytes
/// at a time: a word with no byte that is 8-bit, NUL, CR, LF, `"` or `\\` (the usual case)
/// is passed over whole; any other word is looked at byte by byte.
fn classify(value: &[u8]) -> (bool, bool) {
    let mut escapes = false;
    let mut chunks = value.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        if plain_word(word) {
            continue;
        }
        let (quotable, escaped) = classify_bytes(chunk);
        if !quotable {
            return (false, escapes);
        }
        escapes |= escaped;
    }
    let (quotable, escaped) = classify_bytes(chunks.remainder());
    (quotable, escapes || escaped)
}

/// [`classify`] one byte at a time.
fn classify_bytes(bytes: &[u8]) -> (bool, bool) {
    let mut escapes = false;
    for &b in bytes {
        if !(0x01..0x80).contains(&b) || b == b'\r' || b == b'\n' {
            return (false, escapes);
        }
        escapes |= b == b'"' || b == b'\\';
    }
    (true, escapes)
}

/// True when no byte of `word` is 8-bit, NUL, CR, LF, `"` or `\\`.
fn plain_word(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Per byte of a 7-bit `x`, the high bit of `(x & LOW7) + LOW7` is set exactly when the
    // byte is not zero (no carry crosses bytes); XOR with a repeated byte makes matches zero.
    let nonzero = |x: u64| ((x & LOW7) + LOW7) & HIGH == HIGH;
    word & HIGH == 0
        && nonzero(word)
        && nonzero(word ^ (ONES * u64::from(b'\r')))
        && nonzero(word ^ (ONES * u64::from(b'\n')))
        && nonzero(word ^ (ONES * u64::from(b'"')))
        && nonzero(word ^ (ONES * u64::from(b'\\')))
}

/// Writes `value` (upper-cased when `upper`) straight into `out`: one scan to choose the
/// form, then a bulk copy unless quoting needs escapes or a literal drops NULs.
fn write(out: &mut Vec<u8>, value: &[u8], upper: bool) {
    let start = out.len();
    let (quotable, escapes) = classify(value);
    if quotable {
        out.push(b'"');
        if escapes {
            for &b in value {
                if b == b'"' || b == b'\\' {
                    out.push(b'\\');
                }
                out.push(b);
            }
        } else {
            out.extend_from_slice(value);
        }
        out.push(b'"');
    } else {
        let nuls = value.iter().filter(|&&b| b == 0).count();
        out.push(b'{');
        decimal(out, (value.len() - nuls) as u64);
        out.extend_from_slice(b"}\r\n");
        if nuls == 0 {
            out.extend_from_slice(value);
        } else {
            out.extend(value.iter().copied().filter(|&b| b != 0));
        }
    }
    if upper {
        // Digits, braces, quotes and backslashes are unchanged by ASCII upper-casing.
        out[start..].make_ascii_uppercase();
    }
}

/// Appends `value` in decimal, without allocating.
pub(crate) fn decimal(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(value: Option<&[u8]>) -> String {
        let mut out = Vec::new();
        nstring(&mut out, value);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn quoted_literal_and_nil() {
        assert_eq!(written(None), "NIL");
        assert_eq!(written(Some(b"")), "\"\"");
        assert_eq!(written(Some(b"a \"b\" \\c")), r#""a \"b\" \\c""#);
        assert_eq!(written(Some("Jörg".as_bytes())), "{5}\r\nJörg");
        assert_eq!(written(Some(b"a\r\nb")), "{4}\r\na\r\nb");
        assert_eq!(written(Some(b"a\0b")), "{2}\r\nab");
    }

    #[test]
    fn word_scan_matches_byte_scan() {
        let special = [0u8, b'\r', b'\n', b'"', b'\\', 0x80, 0xff, 0x7f, b'a', b' '];
        for length in 0..20 {
            for position in 0..length {
                for &b in &special {
                    let mut value = vec![b'x'; length];
                    value[position] = b;
                    assert_eq!(classify(&value), classify_bytes(&value), "{value:?}");
                }
            }
        }
    }

    #[test]
    fn upper_and_decimal() {
        let mut out = Vec::new();
        upper_string(&mut out, b"text/pl\"ain");
        upper_string(&mut out, "\u{e9}x\0".as_bytes());
        for n in [0, 7, 10, 4096, u64::MAX] {
            decimal(&mut out, n);
            out.push(b' ');
        }
        assert_eq!(
            String::from_utf8_lossy(&out),
            "\"TEXT/PL\\\"AIN\"{3}\r\n\u{e9}X0 7 10 4096 18446744073709551615 "
        );
    }
}
