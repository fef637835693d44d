//! OAUTHBEARER (RFC 7628) and XOAUTH2: a bearer token in one client message; the host checks
//! it. A refused token is answered with an error challenge (JSON) that the client
//! acknowledges before the failure, as both mechanisms require.
//!
//! ```text
//! OAUTHBEARER: client-resp = gs2-header kvsep *kvpair kvsep     kvsep  = %x01
//!              kvpair      = key "=" value kvsep                 key    = 1*ALPHA
//!              auth value  = "Bearer" 1*SP b64token              (scheme case-insensitive)
//!              on failure: S: {"status":"invalid_token",...}  C: kvsep  S: failure
//! XOAUTH2:     client-resp = "user=" user %x01 "auth=Bearer " token %x01 %x01
//!              on failure: S: {"status":"401","schemes":"bearer"}  C: (anything)  S: failure
//! b64token     = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//! ```

use skua_core::users::Secret;

use super::gs2::{self, BindingFlag};
use super::limits::{IDENTITY_BYTES_MAX, OAUTH_PAIRS_MAX};
use super::password::{Pending, out_of_order};
use super::types::{Context, FailureReason, HostAnswer, Step};

const KVSEP: u8 = 0x01;

/// Which of the two token mechanisms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flavor {
    OAuthBearer,
    XOAuth2,
}

/// A token exchange's state.
#[derive(Debug)]
pub(super) enum OAuth {
    AwaitMessage(Flavor),
    AwaitVerdict(Flavor, Pending),
    /// The error challenge went out; the client's acknowledgement ends in this failure.
    AwaitAcknowledgement(FailureReason),
    Finished,
}

impl OAuth {
    pub(super) fn begin(&mut self, initial: Option<&[u8]>, context: &Context) -> Step {
        match initial {
            None => Step::Challenge(Vec::new()),
            Some(message) => self.respond(message, context),
        }
    }

    pub(super) fn respond(&mut self, message: &[u8], _context: &Context) -> Step {
        match std::mem::replace(self, OAuth::Finished) {
            OAuth::AwaitMessage(flavor) => {
                let parsed = match flavor {
                    Flavor::OAuthBearer => parse_oauthbearer(message),
                    Flavor::XOAuth2 => parse_xoauth2(message),
                };
                match parsed {
                    Ok((token, authzid)) => {
                        let pending = Pending { authcid: String::new(), authzid: authzid.clone() };
                        *self = OAuth::AwaitVerdict(flavor, pending);
                        Step::VerifyToken { token, authzid }
                    }
                    Err(reason) => Step::fail(reason),
                }
            }
            OAuth::AwaitAcknowledgement(reason) => Step::fail(reason),
            OAuth::AwaitVerdict(..) | OAuth::Finished => out_of_order(),
        }
    }

    pub(super) fn answer(&mut self, answer: HostAnswer, context: &Context) -> Step {
        let OAuth::AwaitVerdict(flavor, pending) = std::mem::replace(self, OAuth::Finished) else {
            return out_of_order();
        };
        match answer {
            HostAnswer::Refused(reason) => {
                *self = OAuth::AwaitAcknowledgement(FailureReason::Refused(reason));
                Step::Challenge(error_challenge(flavor, context))
            }
            HostAnswer::NotAuthorized(reason) => {
                *self = OAuth::AwaitAcknowledgement(FailureReason::NotAuthorized(reason));
                Step::Challenge(error_challenge(flavor, context))
            }
            other => pending.verdict(other),
        }
    }
}

/// The JSON error challenge (RFC 7628 §3.2.2; XOAUTH2's form for XOAUTH2).
fn error_challenge(flavor: Flavor, context: &Context) -> Vec<u8> {
    let mut body = serde_json::Map::new();
    let status = match flavor {
        Flavor::OAuthBearer => "invalid_token",
        Flavor::XOAuth2 => "401",
    };
    body.insert("status".into(), status.into());
    body.insert("schemes".into(), "bearer".into());
    if let (Flavor::OAuthBearer, Some(url)) = (flavor, &context.openid_configuration) {
        body.insert("openid-configuration".into(), url.clone().into());
    }
    serde_json::Value::Object(body).to_string().into_bytes()
}

type Parsed = Result<(Secret<String>, Option<String>), FailureReason>;

fn parse_oauthbearer(message: &[u8]) -> Parsed {
    let malformed = FailureReason::Malformed;
    let header = gs2::parse_header(message).map_err(malformed)?;
    if let BindingFlag::Bound(_) = header.flag {
        return Err(FailureReason::Unsupported("channel binding with OAUTHBEARER"));
    }
    let body = header
        .rest
        .strip_prefix(&[KVSEP])
        .and_then(|rest| rest.strip_suffix(&[KVSEP]))
        .and_then(|rest| rest.strip_suffix(&[KVSEP]))
        .ok_or(malformed("OAUTHBEARER message framing"))?;
    let mut token = None;
    for (index, pair) in body.split(|&b| b == KVSEP).enumerate() {
        if index >= OAUTH_PAIRS_MAX {
            return Err(malformed("OAUTHBEARER (too many pairs)"));
        }
        let (key, value) = split_pair(pair).ok_or(malformed("OAUTHBEARER key/value pair"))?;
        if key == b"auth" {
            if token.is_some() {
                return Err(malformed("OAUTHBEARER (two auth values)"));
            }
            token = Some(bearer_token(value)?);
        }
    }
    let token = token.ok_or(malformed("OAUTHBEARER (no auth value)"))?;
    Ok((token, header.authzid))
}

fn parse_xoauth2(message: &[u8]) -> Parsed {
    let malformed = FailureReason::Malformed;
    let body = message.strip_suffix(&[KVSEP, KVSEP]).ok_or(malformed("XOAUTH2 message framing"))?;
    let mut pairs = body.split(|&b| b == KVSEP);
    let (Some(user), Some(auth), None) = (pairs.next(), pairs.next(), pairs.next()) else {
        return Err(malformed("XOAUTH2 message"));
    };
    let user = user.strip_prefix(b"user=").ok_or(malformed("XOAUTH2 user="))?;
    let auth = auth.strip_prefix(b"auth=").ok_or(malformed("XOAUTH2 auth="))?;
    if user.is_empty() || user.len() > IDENTITY_BYTES_MAX {
        return Err(malformed("XOAUTH2 user"));
    }
    let user = String::from_utf8(user.to_vec()).map_err(|_| malformed("XOAUTH2 user"))?;
    if user.chars().any(char::is_control) {
        return Err(malformed("XOAUTH2 user"));
    }
    Ok((bearer_token(auth)?, Some(user)))
}

/// `key "=" value` with `key = 1*ALPHA` and `value = *(VCHAR / SP / HTAB / CR / LF)`.
fn split_pair(pair: &[u8]) -> Option<(&[u8], &[u8])> {
    let equals = pair.iter().position(|&b| b == b'=')?;
    let (key, value) = (&pair[..equals], &pair[equals + 1..]);
    let value_ok = value.iter().all(|&b| matches!(b, 0x21..=0x7e | b' ' | b'\t' | b'\r' | b'\n'));
    (!key.is_empty() && key.iter().all(u8::is_ascii_alphabetic) && value_ok).then_some((key, value))
}

/// `"Bearer" 1*SP b64token`, the scheme ASCII case-insensitive.
fn bearer_token(value: &[u8]) -> Result<Secret<String>, FailureReason> {
    let malformed = FailureReason::Malformed("bearer credentials");
    let (scheme, rest) = value.split_at_checked(6).ok_or(malformed.clone())?;
    if !scheme.eq_ignore_ascii_case(b"Bearer") || rest.first() != Some(&b' ') {
        return Err(malformed);
    }
    let token = rest.trim_ascii_start();
    let body_end = token.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    let body_ok = token[..body_end].iter().all(|&b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
    });
    if body_end == 0 || !body_ok {
        return Err(malformed);
    }
    let token = std::str::from_utf8(token).map_err(|_| malformed)?;
    Ok(Secret::new(token.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_values() {
        assert_eq!(bearer_token(b"Bearer abc.DEF-_~+/==").unwrap().expose(), "abc.DEF-_~+/==");
        assert_eq!(bearer_token(b"bearer   x").unwrap().expose(), "x");
        for bad in [
            &b"Bearer"[..],
            b"Bearer ",
            b"Bearerx",
            b"Basic abc",
            b"Bearer a b",
            b"Bearer ==",
            b"Bearer a=b",
        ] {
            assert!(bearer_token(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn oauthbearer_messages() {
        let (token, authzid) =
            parse_oauthbearer(b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmT\x01\x01").unwrap();
        assert_eq!(
            (token.expose().as_str(), authzid.as_deref()),
            ("vF9dft4qmT", Some("user@example.com"))
        );
        let (_, authzid) = parse_oauthbearer(b"n,,\x01auth=Bearer t\x01\x01").unwrap();
        assert_eq!(authzid, None);
        for bad in [
            &b"n,,\x01\x01"[..],
            b"n,,\x01auth=Bearer t\x01",
            b"n,,auth=Bearer t\x01\x01",
            b"n,,\x01auth=Bearer t\x01auth=Bearer u\x01\x01",
            b"n,,\x01=x\x01auth=Bearer t\x01\x01",
            b"\x01",
        ] {
            assert!(parse_oauthbearer(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(
            parse_oauthbearer(b"p=tls-exporter,,\x01auth=Bearer t\x01\x01").unwrap_err(),
            FailureReason::Unsupported("channel binding with OAUTHBEARER")
        );
    }

    #[test]
    fn xoauth2_messages() {
        let (token, user) =
            parse_xoauth2(b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmT\x01\x01")
                .unwrap();
        assert_eq!(
            (token.expose().as_str(), user.as_deref()),
            ("ya29.vF9dft4qmT", Some("someuser@example.com"))
        );
        for bad in [
            &b"user=a\x01auth=Bearer t\x01"[..],
            b"auth=Bearer t\x01user=a\x01\x01",
            b"user=\x01auth=Bearer t\x01\x01",
        ] {
            assert!(parse_xoauth2(bad).is_err());
        }
    }
}
