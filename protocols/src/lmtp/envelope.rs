//! The envelope parameters of `MAIL` and `RCPT` that skua accepts and records: `SIZE`
//! (RFC 1870), `BODY` (RFC 6152, RFC 3030), `SMTPUTF8` (RFC 6531) and the DSN parameters
//! `RET`, `ENVID`, `NOTIFY`, `ORCPT` (RFC 3461).
//!
//! skua is the final delivery agent, so it sends no DSNs itself: a successful delivery is
//! reported by the per-recipient `250`, and failures go back to the MTA, which owns the DSN.
//! The parameters are still validated (a malformed one gets `501 5.5.4`) and recorded: every
//! one is in the delivery log line, and the recipient's address and `ORCPT` reach the store
//! with the message (see `deliver.rs` for which header uses what).

use std::fmt;

use crate::lmtp::command::ParseError;
use crate::lmtp::xtext;

/// `BODY=` of `MAIL` (RFC 6152, RFC 3030 §3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Body {
    /// `BODY=7BIT` or no parameter.
    #[default]
    SevenBit,
    /// `BODY=8BITMIME`.
    EightBitMime,
    /// `BODY=BINARYMIME`: the message comes by `BDAT` only and is stored exactly as sent.
    BinaryMime,
}

/// `RET=` (RFC 3461 §4.3): what a failure DSN should carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    /// `RET=FULL`: the whole message.
    Full,
    /// `RET=HDRS`: the header only.
    Headers,
}

/// `NOTIFY=` (RFC 3461 §4.1): which events the sender wants a DSN for; all false is `NEVER`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Notify {
    /// `SUCCESS`.
    pub success: bool,
    /// `FAILURE`.
    pub failure: bool,
    /// `DELAY`.
    pub delay: bool,
}

/// `ORCPT=` (RFC 3461 §4.2): the recipient as the sender's first MTA knew it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Orcpt {
    /// The address type, e.g. `rfc822` (an atom, kept as sent).
    pub address_type: String,
    /// The address, xtext-decoded.
    pub address: String,
}

/// The parameters of one `MAIL` command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailParameters {
    /// `SIZE=` (RFC 1870), the client's estimate of the message size.
    pub size: Option<u64>,
    /// `BODY=`.
    pub body: Body,
    /// `SMTPUTF8` (RFC 6531): addresses and header fields may be UTF-8.
    pub smtputf8: bool,
    /// `RET=`.
    pub ret: Option<Ret>,
    /// `ENVID=`, xtext-decoded (printable ASCII).
    pub envid: Option<String>,
}

/// The parameters of one `RCPT` command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RcptParameters {
    /// `NOTIFY=`.
    pub notify: Option<Notify>,
    /// `ORCPT=`.
    pub orcpt: Option<Orcpt>,
}

/// RFC 3461 §4.4: an `ENVID` value is at most 100 characters.
const ENVID_CHARS_MAX: usize = 100;
/// RFC 3461 §4.2: an `ORCPT` value is at most 500 characters.
const ORCPT_CHARS_MAX: usize = 500;

/// `Mail-parameters` (RFC 5321 §4.1.2) with the keywords skua knows; each at most once.
///
/// # Errors
/// `Syntax` (`501 5.5.4`) for a malformed or repeated value, `Parameter` (`555 5.5.4`) for a
/// keyword or `BODY` type skua does not support.
pub(crate) fn mail_parameters(
    parameters: &[(&str, Option<&str>)],
) -> Result<MailParameters, ParseError> {
    let mut result = MailParameters::default();
    let mut seen = [false; 5];
    for &(keyword, value) in parameters {
        let keyword = keyword.to_ascii_uppercase();
        let slot = match keyword.as_str() {
            "SIZE" => 0,
            "BODY" => 1,
            "SMTPUTF8" => 2,
            "RET" => 3,
            "ENVID" => 4,
            _ => return Err(ParseError::Parameter("unsupported MAIL parameter")),
        };
        if std::mem::replace(&mut seen[slot], true) {
            return Err(ParseError::Syntax("MAIL parameter given twice"));
        }
        match (slot, value) {
            (0, Some(value)) => result.size = Some(size(value)?),
            (1, Some(value)) => result.body = body(value)?,
            (2, None) => result.smtputf8 = true,
            (3, Some(value)) => result.ret = Some(ret(value)?),
            (4, Some(value)) => result.envid = Some(envid(value)?),
            (2, Some(_)) => return Err(ParseError::Syntax("SMTPUTF8 takes no value")),
            _ => return Err(ParseError::Syntax("MAIL parameter needs a value")),
        }
    }
    Ok(result)
}

/// `Rcpt-parameters` (RFC 5321 §4.1.2) with the keywords skua knows; each at most once.
///
/// # Errors
/// As [`mail_parameters`].
pub(crate) fn rcpt_parameters(
    parameters: &[(&str, Option<&str>)],
) -> Result<RcptParameters, ParseError> {
    let mut result = RcptParameters::default();
    for &(keyword, value) in parameters {
        let keyword = keyword.to_ascii_uppercase();
        let value = match (keyword.as_str(), value) {
            ("NOTIFY" | "ORCPT", Some(value)) => value,
            ("NOTIFY" | "ORCPT", None) => {
                return Err(ParseError::Syntax("RCPT parameter needs a value"));
            }
            _ => return Err(ParseError::Parameter("unsupported RCPT parameter")),
        };
        let repeated = if keyword == "NOTIFY" {
            result.notify.replace(notify(value)?).is_some()
        } else {
            result.orcpt.replace(orcpt(value)?).is_some()
        };
        if repeated {
            return Err(ParseError::Syntax("RCPT parameter given twice"));
        }
    }
    Ok(result)
}

/// `size-value = 1*20DIGIT`
fn size(value: &str) -> Result<u64, ParseError> {
    let valid = !value.is_empty() && value.len() <= 20 && value.bytes().all(|b| b.is_ascii_digit());
    value.parse::<u64>().ok().filter(|_| valid).ok_or(ParseError::Syntax("bad SIZE value"))
}

/// `body-value = "7BIT" / "8BITMIME" / "BINARYMIME"`
fn body(value: &str) -> Result<Body, ParseError> {
    match value.to_ascii_uppercase().as_str() {
        "7BIT" => Ok(Body::SevenBit),
        "8BITMIME" => Ok(Body::EightBitMime),
        "BINARYMIME" => Ok(Body::BinaryMime),
        _ => Err(ParseError::Parameter("unsupported BODY value")),
    }
}

/// `ret-value = "FULL" / "HDRS"`
fn ret(value: &str) -> Result<Ret, ParseError> {
    match value.to_ascii_uppercase().as_str() {
        "FULL" => Ok(Ret::Full),
        "HDRS" => Ok(Ret::Headers),
        _ => Err(ParseError::Syntax("RET must be FULL or HDRS")),
    }
}

/// `envid-value = xtext`, at most 100 characters, decoding to printable US-ASCII.
fn envid(value: &str) -> Result<String, ParseError> {
    if value.len() > ENVID_CHARS_MAX {
        return Err(ParseError::Syntax("ENVID too long"));
    }
    let octets = xtext::decode(value).map_err(|_| ParseError::Syntax("ENVID is not xtext"))?;
    if !octets.iter().all(|&b| (32..=126).contains(&b)) {
        return Err(ParseError::Syntax("ENVID is not printable ASCII"));
    }
    Ok(String::from_utf8(octets).expect("checked ASCII"))
}

/// `notify-list = "NEVER" / 1#notify-item`, `notify-item = "SUCCESS" / "FAILURE" / "DELAY"`
/// (each item at most once, `NEVER` alone).
fn notify(value: &str) -> Result<Notify, ParseError> {
    const BAD: ParseError = ParseError::Syntax("NOTIFY must be NEVER or SUCCESS,FAILURE,DELAY");
    if value.eq_ignore_ascii_case("NEVER") {
        return Ok(Notify::default());
    }
    let mut notify = Notify::default();
    for item in value.split(',') {
        let flag = match item.to_ascii_uppercase().as_str() {
            "SUCCESS" => &mut notify.success,
            "FAILURE" => &mut notify.failure,
            "DELAY" => &mut notify.delay,
            _ => return Err(BAD),
        };
        if std::mem::replace(flag, true) {
            return Err(BAD);
        }
    }
    Ok(notify)
}

/// `orcpt-value = addr-type ";" xtext`, `addr-type = atom`, at most 500 characters; the
/// address must decode to UTF-8 without control characters.
fn orcpt(value: &str) -> Result<Orcpt, ParseError> {
    const BAD: ParseError = ParseError::Syntax("ORCPT must be addr-type;xtext");
    if value.len() > ORCPT_CHARS_MAX {
        return Err(ParseError::Syntax("ORCPT too long"));
    }
    let (address_type, encoded) = value.split_once(';').ok_or(BAD)?;
    let atom = !address_type.is_empty()
        && address_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b));
    if !atom || encoded.is_empty() {
        return Err(BAD);
    }
    let octets = xtext::decode(encoded).map_err(|_| BAD)?;
    let address = String::from_utf8(octets).map_err(|_| BAD)?;
    if address.chars().any(char::is_control) {
        return Err(BAD);
    }
    Ok(Orcpt { address_type: address_type.to_owned(), address })
}

impl fmt::Display for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Body::SevenBit => "7BIT",
            Body::EightBitMime => "8BITMIME",
            Body::BinaryMime => "BINARYMIME",
        })
    }
}

impl fmt::Display for Ret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ret::Full => "FULL",
            Ret::Headers => "HDRS",
        })
    }
}

impl fmt::Display for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items = [(self.success, "SUCCESS"), (self.failure, "FAILURE"), (self.delay, "DELAY")];
        let names: Vec<&str> = items.iter().filter(|(on, _)| *on).map(|(_, name)| *name).collect();
        if names.is_empty() { f.write_str("NEVER") } else { f.write_str(&names.join(",")) }
    }
}

impl fmt::Display for Orcpt {
    /// As sent: `addr-type;xtext`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{};{}", self.address_type, xtext::encode(self.address.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(parameters: &[(&str, Option<&str>)]) -> Result<MailParameters, ParseError> {
        mail_parameters(parameters)
    }

    #[test]
    fn mail_parameters_are_parsed_once_each() {
        let parsed = mail(&[
            ("size", Some("10")),
            ("BODY", Some("binarymime")),
            ("SMTPUTF8", None),
            ("RET", Some("hdrs")),
            ("ENVID", Some("QQ+2B314")),
        ])
        .unwrap();
        assert_eq!(parsed.size, Some(10));
        assert_eq!(parsed.body, Body::BinaryMime);
        assert!(parsed.smtputf8);
        assert_eq!(parsed.ret, Some(Ret::Headers));
        assert_eq!(parsed.envid.as_deref(), Some("QQ+314"));
        for bad in [
            vec![("RET", Some("ALL"))],
            vec![("RET", None)],
            vec![("SMTPUTF8", Some("yes"))],
            vec![("ENVID", Some("a+2"))],
            vec![("ENVID", Some("+0A"))],
            vec![("SIZE", Some("1")), ("size", Some("2"))],
            vec![("SMTPUTF8", None), ("SMTPUTF8", None)],
        ] {
            assert!(matches!(mail(&bad), Err(ParseError::Syntax(_))), "{bad:?}");
        }
        let long = "x".repeat(101);
        assert!(matches!(mail(&[("ENVID", Some(&long))]), Err(ParseError::Syntax(_))));
        assert!(matches!(mail(&[("AUTH", Some("<>"))]), Err(ParseError::Parameter(_))));
        assert!(matches!(mail(&[("BODY", Some("9BIT"))]), Err(ParseError::Parameter(_))));
    }

    #[test]
    fn rcpt_parameters_are_validated() {
        let parsed = rcpt_parameters(&[
            ("NOTIFY", Some("failure,Delay")),
            ("ORCPT", Some("rfc822;Bob+2Bx@example.org")),
        ])
        .unwrap();
        let notify = parsed.notify.unwrap();
        assert_eq!(notify.to_string(), "FAILURE,DELAY");
        let orcpt = parsed.orcpt.unwrap();
        assert_eq!(orcpt.address, "Bob+x@example.org");
        assert_eq!(orcpt.to_string(), "rfc822;Bob+2Bx@example.org");
        let never = rcpt_parameters(&[("notify", Some("NEVER"))]).unwrap().notify.unwrap();
        assert_eq!(never.to_string(), "NEVER");
        for bad in [
            ("NOTIFY", Some("NEVER,SUCCESS")),
            ("NOTIFY", Some("SUCCESS,SUCCESS")),
            ("NOTIFY", Some("")),
            ("NOTIFY", Some("SOMETIMES")),
            ("NOTIFY", None),
            ("ORCPT", Some("rfc822")),
            ("ORCPT", Some(";a@b")),
            ("ORCPT", Some("rfc822;")),
            ("ORCPT", Some("rfc822;a+2g")),
            ("ORCPT", Some("rfc822;a+0Ab")),
            ("ORCPT", Some("rfc822;+FF")),
        ] {
            assert!(matches!(rcpt_parameters(&[bad]), Err(ParseError::Syntax(_))), "{bad:?}");
        }
        let twice = [("NOTIFY", Some("NEVER")), ("NOTIFY", Some("NEVER"))];
        assert!(matches!(rcpt_parameters(&twice), Err(ParseError::Syntax(_))));
        assert!(matches!(rcpt_parameters(&[("X", None)]), Err(ParseError::Parameter(_))));
    }
}
