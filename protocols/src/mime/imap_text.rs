//! Writing IMAP strings (RFC 9051 §4.3): `quoted` when the bytes allow it, a `literal`
//! otherwise, `NIL` for absent values.
//!
//! Quoted strings are limited to 7-bit text without CR or LF so that IMAP4rev1 clients read
//! them; anything else (8-bit header text, bare CR/LF) becomes a literal. NUL is not allowed in
//! either form (`CHAR8 = %x01-ff`) and is dropped.

/// Appends `value` as an IMAP `string`.
pub(crate) fn string(out: &mut Vec<u8>, value: &[u8]) {
    if value.iter().all(|&b| (0x01..0x80).contains(&b) && b != b'\r' && b != b'\n') {
        out.push(b'"');
        for &b in value {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
        return;
    }
    let length = value.iter().filter(|&&b| b != 0).count();
    out.push(b'{');
    out.extend_from_slice(length.to_string().as_bytes());
    out.extend_from_slice(b"}\r\n");
    out.extend(value.iter().copied().filter(|&b| b != 0));
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
    string(out, &value.to_ascii_uppercase());
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
}
