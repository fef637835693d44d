//! `xtext` (RFC 3461 §4): how DSN parameters (`ENVID=`, `ORCPT=`) carry arbitrary octets in
//! an ESMTP parameter value.
//!
//! ```text
//! xtext   = *( xchar / hexchar )
//! xchar   = any ASCII CHAR between "!" (33) and "~" (126) inclusive, except for "+" and "="
//! hexchar = ASCII "+" immediately followed by two upper case hexadecimal digits
//! ```

/// Why a value is not valid `xtext`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XtextError {
    /// A byte outside `xchar` (control, space, `=`, non-ASCII).
    BadCharacter,
    /// A `+` not followed by two upper-case hexadecimal digits.
    BadHex,
}

/// Decodes `xtext` into the octets it stands for.
///
/// # Errors
/// [`XtextError`] when `text` is not `xtext`.
pub fn decode(text: &str) -> Result<Vec<u8>, XtextError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                let high = bytes.get(i + 1).copied().and_then(upper_hex);
                let low = bytes.get(i + 2).copied().and_then(upper_hex);
                let (Some(high), Some(low)) = (high, low) else {
                    return Err(XtextError::BadHex);
                };
                out.push(high << 4 | low);
                i += 3;
            }
            b'=' => return Err(XtextError::BadCharacter),
            b @ 33..=126 => {
                out.push(b);
                i += 1;
            }
            _ => return Err(XtextError::BadCharacter),
        }
    }
    Ok(out)
}

/// Encodes octets as `xtext`: `xchar`s as themselves, everything else as `+XX`.
#[must_use]
pub fn encode(octets: &[u8]) -> String {
    let mut out = String::with_capacity(octets.len());
    for &b in octets {
        if (33..=126).contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push('+');
            out.push_str(&format!("{b:02X}"));
        }
    }
    out
}

/// The value of an upper-case hexadecimal digit (RFC 3461 allows no lower case).
fn upper_hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc_examples_and_errors() {
        assert_eq!(decode("rfc822;a+2Bb@example.org").unwrap(), b"rfc822;a+b@example.org");
        assert_eq!(decode("").unwrap(), b"");
        assert_eq!(decode("+3D+20").unwrap(), b"= ");
        assert_eq!(decode("+2b"), Err(XtextError::BadHex), "lower case is not xtext");
        assert_eq!(decode("a+2"), Err(XtextError::BadHex));
        assert_eq!(decode("a+"), Err(XtextError::BadHex));
        assert_eq!(decode("a=b"), Err(XtextError::BadCharacter));
        assert_eq!(decode("a b"), Err(XtextError::BadCharacter));
        assert_eq!(decode("caf\u{e9}"), Err(XtextError::BadCharacter));
        assert_eq!(encode(b"a+b=c d\x01"), "a+2Bb+3Dc+20d+01");
    }

    proptest! {
        #[test]
        fn round_trips_any_octets(octets in proptest::collection::vec(any::<u8>(), 0..64)) {
            let text = encode(&octets);
            prop_assert!(text.bytes().all(|b| (33..=126).contains(&b) && b != b'='));
            prop_assert_eq!(decode(&text).unwrap(), octets);
        }

        #[test]
        fn decoding_then_encoding_is_canonical(text in "[!-~]{0,40}") {
            // Any valid xtext decodes to octets whose encoding decodes to the same octets.
            if let Ok(octets) = decode(&text) {
                prop_assert_eq!(decode(&encode(&octets)).unwrap(), octets);
            }
        }
    }
}
