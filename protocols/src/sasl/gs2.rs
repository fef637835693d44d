//! The GS2 header SCRAM and OAUTHBEARER messages open with (RFC 5801 §4, RFC 5802 §7), and
//! SCRAM's `saslname` escaping.
//!
//! ```text
//! gs2-header     = gs2-cbind-flag "," [ authzid ] ","
//! gs2-cbind-flag = ("p=" cb-name) / "n" / "y"
//! authzid        = "a=" saslname
//! saslname       = 1*(value-safe-char / "=2C" / "=3D")   ; "," and "=" escaped
//! cb-name        = 1*(ALPHA / DIGIT / "." / "-")
//! ```

use super::limits::IDENTITY_BYTES_MAX;

/// The channel-binding flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum BindingFlag {
    /// `n`: the client does not support channel binding.
    No,
    /// `y`: the client supports it but thinks the server does not.
    ClientOnly,
    /// `p=name`: the client binds to channel binding type `name`.
    Bound(String),
}

/// A parsed GS2 header.
#[derive(Debug)]
pub(super) struct Header<'a> {
    pub(super) flag: BindingFlag,
    pub(super) authzid: Option<String>,
    /// The header's bytes as sent, with its final `,` (SCRAM binds to them).
    pub(super) raw: &'a [u8],
    /// What follows the header.
    pub(super) rest: &'a [u8],
}

/// Parses the GS2 header at the start of `message`.
///
/// # Errors
/// What is malformed.
pub(super) fn parse_header(message: &[u8]) -> Result<Header<'_>, &'static str> {
    let first = message.iter().position(|&b| b == b',').ok_or("GS2 header")?;
    let second = message[first + 1..]
        .iter()
        .position(|&b| b == b',')
        .map(|offset| first + 1 + offset)
        .ok_or("GS2 header")?;
    let flag = match &message[..first] {
        b"n" => BindingFlag::No,
        b"y" => BindingFlag::ClientOnly,
        other => {
            let name = other.strip_prefix(b"p=").ok_or("GS2 channel-binding flag")?;
            let valid = |b: &u8| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-';
            if name.is_empty() || !name.iter().all(valid) {
                return Err("channel-binding name");
            }
            BindingFlag::Bound(String::from_utf8_lossy(name).into_owned())
        }
    };
    let authzid = match &message[first + 1..second] {
        b"" => None,
        field => {
            let name = field.strip_prefix(b"a=").ok_or("GS2 authzid")?;
            Some(decode_saslname(name)?)
        }
    };
    Ok(Header { flag, authzid, raw: &message[..=second], rest: &message[second + 1..] })
}

/// Unescapes a `saslname`: `=2C` is `,`, `=3D` is `=`; any other `=`, a `,`, a NUL, invalid
/// UTF-8, an empty name, or one over [`IDENTITY_BYTES_MAX`] bytes is refused.
///
/// # Errors
/// What is malformed.
pub(super) fn decode_saslname(raw: &[u8]) -> Result<String, &'static str> {
    if raw.is_empty() || raw.len() > IDENTITY_BYTES_MAX {
        return Err("name length");
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut index = 0;
    while index < raw.len() {
        match raw[index] {
            b'=' => {
                match raw.get(index + 1..index + 3) {
                    Some(b"2C") => out.push(b','),
                    Some(b"3D") => out.push(b'='),
                    _ => return Err("saslname escape"),
                }
                index += 3;
            }
            b',' | 0 => return Err("saslname character"),
            byte => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "saslname UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        let header = parse_header(b"n,,n=user,r=abc").unwrap();
        assert_eq!((header.flag, header.authzid), (BindingFlag::No, None));
        assert_eq!((header.raw, header.rest), (&b"n,,"[..], &b"n=user,r=abc"[..]));
        let header = parse_header(b"p=tls-exporter,a=bob=2Cx=3D,rest").unwrap();
        assert_eq!(header.flag, BindingFlag::Bound("tls-exporter".into()));
        assert_eq!(header.authzid.as_deref(), Some("bob,x="));
        assert_eq!(parse_header(b"y,,").unwrap().flag, BindingFlag::ClientOnly);
        for bad in
            [&b""[..], b"n", b"n,", b"x,,", b"p=,,", b"p=a b,,", b"n,b=x,", b"n,a=,", b"n,a==41,"]
        {
            assert!(parse_header(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn saslnames() {
        assert_eq!(decode_saslname(b"a=3D=2Cb").unwrap(), "a=,b");
        for bad in [&b""[..], b"a=", b"a=2", b"a=2D", b"a,b", b"\xff", b"a\0"] {
            assert!(decode_saslname(bad).is_err());
        }
        assert!(decode_saslname(&vec![b'a'; IDENTITY_BYTES_MAX + 1]).is_err());
    }
}
