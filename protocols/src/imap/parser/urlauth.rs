//! The URLAUTH commands (RFC 4467 §9): RESETKEY, GENURLAUTH and URLFETCH. The URLs are kept
//! as sent (`astring`s); `imap/url.rs` parses them, since a URL that does not parse is not a
//! syntax error of the command (GENURLAUTH answers it BAD, URLFETCH NIL).
//!
//! ```text
//! resetkey   = "RESETKEY" [SP mailbox *(SP mechanism)]
//! genurlauth = "GENURLAUTH" 1*(SP url-rump SP mechanism)
//! urlfetch   = "URLFETCH" 1*(SP url-full)
//! url-rump   = astring          ; authimapurlrump (RFC 5092)
//! url-full   = astring          ; authimapurlfull (RFC 5092)
//! mechanism  = "INTERNAL" / 1*(ALPHA / DIGIT / "-" / ".")
//! ```

use super::ParseErrorKind;
use super::cursor::{Cursor, PResult, fail, syntax, utf8};
use super::values::mailbox;
use crate::imap::types::CommandBody;

/// The most URLs (or mechanisms) one command may carry.
pub(crate) const URLAUTH_ITEMS_MAX: usize = 64;

/// `mechanism`, upper-cased (mechanism names are case-insensitive, RFC 4467 §9).
fn mechanism(c: &mut Cursor<'_>) -> PResult<String> {
    let word = c.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'));
    if word.is_empty() {
        return syntax("expected a URLAUTH mechanism");
    }
    Ok(std::str::from_utf8(word).expect("ASCII").to_ascii_uppercase())
}

/// `resetkey = "RESETKEY" [SP mailbox *(SP mechanism)]`
pub(crate) fn resetkey(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    if !c.eat(b' ') {
        return Ok(CommandBody::ResetKey { mailbox: None, mechanisms: Vec::new() });
    }
    let name = mailbox(c)?;
    let mut mechanisms = Vec::new();
    while c.eat(b' ') {
        if mechanisms.len() == URLAUTH_ITEMS_MAX {
            return fail(ParseErrorKind::TooMany, "too many mechanisms");
        }
        mechanisms.push(mechanism(c)?);
    }
    Ok(CommandBody::ResetKey { mailbox: Some(name), mechanisms })
}

/// `genurlauth = "GENURLAUTH" 1*(SP url-rump SP mechanism)`
pub(crate) fn genurlauth(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let mut urls = Vec::new();
    while c.eat(b' ') {
        if urls.len() == URLAUTH_ITEMS_MAX {
            return fail(ParseErrorKind::TooMany, "too many URLs");
        }
        let url = utf8(c.astring()?, "URL is not UTF-8")?;
        c.sp()?;
        urls.push((url, mechanism(c)?));
    }
    if urls.is_empty() {
        return syntax("GENURLAUTH needs a URL and a mechanism");
    }
    Ok(CommandBody::GenUrlAuth(urls))
}

/// `urlfetch = "URLFETCH" 1*(SP url-full)`
pub(crate) fn urlfetch(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let mut urls = Vec::new();
    while c.eat(b' ') {
        if urls.len() == URLAUTH_ITEMS_MAX {
            return fail(ParseErrorKind::TooMany, "too many URLs");
        }
        urls.push(utf8(c.astring()?, "URL is not UTF-8")?);
    }
    if urls.is_empty() {
        return syntax("URLFETCH needs a URL");
    }
    Ok(CommandBody::UrlFetch(urls))
}

#[cfg(test)]
mod tests {
    use crate::imap::parser::parse_command;
    use crate::imap::types::CommandBody;

    fn body(line: &str) -> Result<CommandBody, String> {
        parse_command(line.as_bytes()).map(|command| command.body).map_err(|e| format!("{e:?}"))
    }

    #[test]
    fn rfc_4467_command_forms() {
        assert_eq!(
            body("a31 RESETKEY").unwrap(),
            CommandBody::ResetKey { mailbox: None, mechanisms: vec![] }
        );
        assert_eq!(
            body("a33 RESETKEY INBOX XSAMPLE").unwrap(),
            CommandBody::ResetKey {
                mailbox: Some("INBOX".into()),
                mechanisms: vec!["XSAMPLE".into()]
            }
        );
        let url = "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred";
        assert_eq!(
            body(&format!("a1 GENURLAUTH \"{url}\" internal")).unwrap(),
            CommandBody::GenUrlAuth(vec![(url.into(), "INTERNAL".into())])
        );
        let full = format!("{url}:internal:91354a473744909de610943775f92038");
        assert_eq!(
            body(&format!("a2 URLFETCH \"{full}\" \"{full}\"")).unwrap(),
            CommandBody::UrlFetch(vec![full.clone(), full])
        );
    }

    #[test]
    fn refusals() {
        for bad in [
            "a GENURLAUTH",
            "a GENURLAUTH \"imap://a@b/INBOX/;UID=1;URLAUTH=anonymous\"",
            "a GENURLAUTH \"u\" INT*ERNAL",
            "a URLFETCH",
            "a RESETKEY INBOX ",
        ] {
            assert!(body(bad).is_err(), "{bad}");
        }
        let many = format!("a URLFETCH{}", " u".repeat(super::URLAUTH_ITEMS_MAX + 1));
        assert!(body(&many).is_err());
    }
}
