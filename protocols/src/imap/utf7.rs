//! Modified UTF-7 for mailbox names (RFC 3501 §5.1.3), the `IMAP4rev1` way to carry non-ASCII
//! names over a 7-bit protocol.
//!
//! Printable ASCII other than `&` stands for itself; `&` is written `&-`; any run of other
//! characters is written `&`, then their UTF-16BE code units in base64 with `,` for `/` and no
//! padding, then `-`.
//!
//! Decoding is strict so that every name has exactly one wire form: a shifted run may not
//! encode printable ASCII, two shifted runs may not be adjacent, the padding bits must be zero
//! and surrogates must pair. Otherwise two spellings could name one mailbox, which would let a
//! client slip past a per-name check.

use thiserror::Error;

/// Why a name is not valid modified UTF-7.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum Utf7Error {
    /// A byte outside printable ASCII appeared outside a shifted run.
    #[error("mailbox name has a byte outside printable ASCII")]
    NotPrintable,
    /// A shifted run is malformed (bad base64, no closing `-`, stray bits, bad surrogates).
    #[error("malformed modified UTF-7 in mailbox name")]
    Malformed,
    /// A shifted run encodes something that must be written directly, or follows another run.
    #[error("non-canonical modified UTF-7 in mailbox name")]
    NonCanonical,
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn sextet(byte: u8) -> Option<u32> {
    let value = match byte {
        b'A'..=b'Z' => byte - b'A',
        b'a'..=b'z' => byte - b'a' + 26,
        b'0'..=b'9' => byte - b'0' + 52,
        b'+' => 62,
        b',' => 63,
        _ => return None,
    };
    Some(u32::from(value))
}

fn is_direct(c: u32) -> bool {
    (0x20..=0x7e).contains(&c)
}

/// Decodes a modified UTF-7 name to UTF-8.
///
/// # Errors
/// [`Utf7Error`] when `wire` is not the canonical modified UTF-7 form of a name.
pub fn decode(wire: &[u8]) -> Result<String, Utf7Error> {
    let mut out = String::with_capacity(wire.len());
    let mut i = 0;
    let mut previous_run_end = None;
    while i < wire.len() {
        let byte = wire[i];
        if !is_direct(u32::from(byte)) {
            return Err(Utf7Error::NotPrintable);
        }
        if byte != b'&' {
            out.push(char::from(byte));
            i += 1;
            continue;
        }
        let run_start = i + 1;
        let run_len =
            wire[run_start..].iter().position(|&b| b == b'-').ok_or(Utf7Error::Malformed)?;
        let run = &wire[run_start..run_start + run_len];
        if run.is_empty() {
            out.push('&');
        } else {
            if previous_run_end == Some(i) {
                return Err(Utf7Error::NonCanonical);
            }
            decode_run(run, &mut out)?;
            previous_run_end = Some(run_start + run_len + 1);
        }
        i = run_start + run_len + 1;
    }
    Ok(out)
}

/// Decodes one shifted run (between `&` and `-`) into `out`.
fn decode_run(run: &[u8], out: &mut String) -> Result<(), Utf7Error> {
    let mut bits: u32 = 0;
    let mut bit_count = 0;
    let mut high_surrogate: Option<u32> = None;
    for &byte in run {
        bits = (bits << 6) | sextet(byte).ok_or(Utf7Error::Malformed)?;
        bit_count += 6;
        if bit_count < 16 {
            continue;
        }
        bit_count -= 16;
        let unit = (bits >> bit_count) & 0xffff;
        bits &= (1 << bit_count) - 1;
        match (high_surrogate.take(), unit) {
            (None, 0xd800..=0xdbff) => high_surrogate = Some(unit),
            (Some(high), 0xdc00..=0xdfff) => {
                let c = 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00);
                out.push(char::from_u32(c).ok_or(Utf7Error::Malformed)?);
            }
            (None, c) if is_direct(c) => return Err(Utf7Error::NonCanonical),
            (None, c) => out.push(char::from_u32(c).ok_or(Utf7Error::Malformed)?),
            (Some(_), _) => return Err(Utf7Error::Malformed),
        }
    }
    // At most 4 leftover bits (6 would be a wasted sextet), and they must be zero.
    if high_surrogate.is_some() || bit_count >= 6 || bits != 0 {
        return Err(Utf7Error::Malformed);
    }
    Ok(())
}

/// Encodes a UTF-8 name as modified UTF-7, appending to `out`.
pub fn encode(name: &str, out: &mut Vec<u8>) {
    let mut units: Vec<u16> = Vec::new();
    for c in name.chars() {
        if is_direct(u32::from(c)) {
            flush_run(&mut units, out);
            out.push(c as u8);
            if c == '&' {
                out.push(b'-');
            }
        } else {
            let mut buffer = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buffer));
        }
    }
    flush_run(&mut units, out);
}

/// Encodes a UTF-8 name as modified UTF-7 into a new string.
///
/// # Panics
/// Never: the encoding is printable ASCII by construction (the `expect` states it).
#[must_use]
pub fn encode_to_string(name: &str) -> String {
    let mut out = Vec::with_capacity(name.len());
    encode(name, &mut out);
    // The encoding is printable ASCII by construction.
    String::from_utf8(out).expect("modified UTF-7 is ASCII")
}

/// Writes `&<base64 of units>-` and empties `units`, if there are any.
fn flush_run(units: &mut Vec<u16>, out: &mut Vec<u8>) {
    if units.is_empty() {
        return;
    }
    out.push(b'&');
    let mut bits: u32 = 0;
    let mut bit_count = 0;
    for &unit in units.iter() {
        bits = (bits << 16) | u32::from(unit);
        bit_count += 16;
        while bit_count >= 6 {
            bit_count -= 6;
            out.push(ALPHABET[((bits >> bit_count) & 0x3f) as usize]);
        }
        bits &= (1 << bit_count) - 1;
    }
    if bit_count > 0 {
        out.push(ALPHABET[((bits << (6 - bit_count)) & 0x3f) as usize]);
    }
    out.push(b'-');
    units.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3501_example_round_trips() {
        // RFC 3501 §5.1.3: "~peter/mail/台北/日本語"
        let wire = b"~peter/mail/&U,BTFw-/&ZeVnLIqe-";
        let name = decode(wire).unwrap();
        assert_eq!(name, "~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}");
        assert_eq!(encode_to_string(&name).as_bytes(), wire);
    }

    #[test]
    fn ampersand_and_astral_characters() {
        assert_eq!(decode(b"Tom &- Jerry").unwrap(), "Tom & Jerry");
        assert_eq!(encode_to_string("Tom & Jerry"), "Tom &- Jerry");
        let name = "mail \u{1f600} x";
        assert_eq!(decode(encode_to_string(name).as_bytes()).unwrap(), name);
        assert_eq!(encode_to_string("Entw\u{fc}rfe"), "Entw&APw-rfe");
    }

    #[test]
    fn non_canonical_and_malformed_are_refused() {
        assert_eq!(decode(b"&AGE-"), Err(Utf7Error::NonCanonical)); // "a" shifted
        assert_eq!(decode(b"&APw-&APw-"), Err(Utf7Error::NonCanonical));
        assert_eq!(decode(b"&APw"), Err(Utf7Error::Malformed));
        assert_eq!(decode(b"&APx-"), Err(Utf7Error::Malformed)); // stray bits
        assert_eq!(decode(b"&2D0-"), Err(Utf7Error::Malformed)); // lone surrogate
        assert_eq!(decode(b"&A/w-"), Err(Utf7Error::Malformed));
        assert_eq!(decode("\u{fc}".as_bytes()), Err(Utf7Error::NotPrintable));
        assert_eq!(decode(b"a\tb"), Err(Utf7Error::NotPrintable));
    }

    #[test]
    fn round_trip_over_many_strings() {
        let samples = ["", "INBOX", "a&b", "\u{e9}t\u{e9}", "\u{4e2d}\u{6587}", "x\u{10ffff}y"];
        for name in samples {
            assert_eq!(decode(encode_to_string(name).as_bytes()).unwrap(), name);
        }
    }
}
