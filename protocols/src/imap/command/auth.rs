//! SASL PLAIN (RFC 4616) decoding for AUTHENTICATE; the password check itself runs in the
//! shard, off the reactor.

use base64::Engine as _;

use crate::imap::reply::{Code, Completion};
use crate::imap::types::Secret;

/// Longest base64 PLAIN response accepted: authzid, authcid and password of 255 bytes each.
const PLAIN_RESPONSE_MAX: usize = 1100;

/// Decodes a PLAIN response (`[authzid] NUL authcid NUL password`, base64; `=` is empty and
/// `*` cancels). An authorization identity other than the user itself is refused: skua has no
/// proxy authorization.
///
/// # Errors
/// The tagged reply to send instead of authenticating.
pub(crate) fn decode_plain(response: &[u8]) -> Result<(String, Secret<String>), Completion> {
    let response = response.trim_ascii();
    if response == b"*" {
        return Err(Completion::bad("Authentication cancelled"));
    }
    if response.len() > PLAIN_RESPONSE_MAX {
        return Err(Completion::bad("SASL response too long"));
    }
    // The decoded bytes hold the password: wiped when dropped.
    let decoded = Secret::new(if response == b"=" {
        Vec::new()
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(response)
            .map_err(|_| Completion::bad("Invalid base64 in SASL response"))?
    });
    let mut fields = decoded.expose().split(|&b| b == 0);
    let (Some(authz), Some(user), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(Completion::bad("Malformed PLAIN response"));
    };
    let (Ok(authz), Ok(user), Ok(password)) =
        (std::str::from_utf8(authz), std::str::from_utf8(user), std::str::from_utf8(password))
    else {
        return Err(Completion::bad("PLAIN response is not UTF-8"));
    };
    if user.is_empty() {
        return Err(Completion::bad("Empty user name"));
    }
    if !authz.is_empty() && authz != user {
        return Err(
            Completion::no("Proxy authorization is not supported").with(Code::AuthenticationFailed)
        );
    }
    Ok((user.to_owned(), Secret::from(password)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(raw: &[u8]) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.encode(raw).into_bytes()
    }

    #[test]
    fn plain_forms() {
        assert_eq!(
            decode_plain(&b64(b"\0alice\0pw")).unwrap(),
            ("alice".to_owned(), Secret::from("pw"))
        );
        assert_eq!(
            decode_plain(&b64(b"alice\0alice\0pw")).unwrap(),
            ("alice".to_owned(), Secret::from("pw"))
        );
        assert!(decode_plain(&b64(b"bob\0alice\0pw")).is_err());
        assert!(decode_plain(b"*").is_err());
        assert!(decode_plain(b"=").is_err());
        assert!(decode_plain(b"!!!").is_err());
        assert!(decode_plain(&b64(b"\0alice")).is_err());
        assert!(decode_plain(&b64(b"\0\0pw")).is_err());
    }
}
