//! Target `imap_utf7`: bytes as a modified UTF-7 mailbox name (RFC 3501 §5.1.3), and as
//! UTF-8 text to encode.
//!
//! Expectations: never panics; whatever decodes re-encodes to exactly the same bytes (the
//! decoder accepts only canonical forms); any UTF-8 text encodes to ASCII and decodes back to
//! itself.

use skua_protocols::imap::utf7;

/// The target.
pub fn target(data: &[u8]) {
    if let Ok(name) = utf7::decode(data) {
        assert_eq!(utf7::encode_to_string(&name).as_bytes(), data);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let encoded = utf7::encode_to_string(text);
        assert!(encoded.is_ascii());
        assert_eq!(utf7::decode(encoded.as_bytes()).expect("our encoding decodes"), text);
    }
}
