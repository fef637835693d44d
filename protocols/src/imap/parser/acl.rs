//! GETACL, SETACL, DELETEACL, LISTRIGHTS and MYRIGHTS (RFC 4314 §3, §7).
//!
//! Identifiers and rights strings become typed values here (`skua_core::acl`), so a command
//! with a malformed one never reaches the store: each is `BAD` with a reason. An unknown
//! right is BAD because RFC 4314 §3.1 forbids ignoring it; an identifier that is empty, `-`
//! alone, over `limits::ACL_IDENTIFIER_BYTES_MAX` bytes, 8-bit, or not a user name skua could
//! have is BAD too (RFC 4314 §3: an identifier the server cannot prepare is refused with BAD;
//! skua's identifiers are user names, `anyone` and `authenticated`, all ASCII).

use skua_core::acl::{Identifier, IdentifierError, RightsChange};

use super::ParseErrorKind;
use super::cursor::{Cursor, PResult, fail, syntax};
use super::values::mailbox;
use crate::imap::types::CommandBody;

/// `getacl = "GETACL" SP mailbox`
pub(crate) fn getacl(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    Ok(CommandBody::GetAcl(mailbox(c)?))
}

/// `myrights = "MYRIGHTS" SP mailbox`
pub(crate) fn myrights(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    Ok(CommandBody::MyRights(mailbox(c)?))
}

/// ```text
/// setacl     = "SETACL" SP mailbox SP identifier SP mod-rights
/// mod-rights = astring   ; +rights to add, -rights to remove, rights to replace
/// ```
pub(crate) fn setacl(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let mailbox = mailbox(c)?;
    c.sp()?;
    let (identifier, _) = identifier(c)?;
    c.sp()?;
    let raw = c.astring()?;
    let Some(text) = std::str::from_utf8(&raw).ok().filter(|t| t.is_ascii()) else {
        return syntax("rights must be ASCII letters");
    };
    let Ok(change) = RightsChange::parse(text) else {
        return syntax("unknown right in rights string");
    };
    Ok(CommandBody::SetAcl { mailbox, identifier, change })
}

/// `deleteacl = "DELETEACL" SP mailbox SP identifier`
pub(crate) fn deleteacl(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let mailbox = mailbox(c)?;
    c.sp()?;
    let (identifier, _) = identifier(c)?;
    Ok(CommandBody::DeleteAcl { mailbox, identifier })
}

/// `listrights = "LISTRIGHTS" SP mailbox SP identifier`. The identifier's spelling is kept:
/// the response names it as the client did (RFC 4314 §3.7).
pub(crate) fn listrights(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let mailbox = mailbox(c)?;
    c.sp()?;
    let (identifier, spelled) = identifier(c)?;
    Ok(CommandBody::ListRights { mailbox, identifier, spelled })
}

/// `identifier = astring`, parsed (see the module docs), with the spelling sent.
fn identifier(c: &mut Cursor<'_>) -> PResult<(Identifier, String)> {
    let raw = c.astring()?;
    let Some(text) = std::str::from_utf8(&raw).ok().filter(|t| t.is_ascii()) else {
        return fail(ParseErrorKind::Encoding, "identifier must be ASCII");
    };
    match Identifier::parse(text) {
        Ok(identifier) => Ok((identifier, text.to_owned())),
        Err(IdentifierError::Empty) => syntax("empty identifier"),
        Err(IdentifierError::TooLong) => fail(ParseErrorKind::TooMany, "identifier too long"),
        Err(IdentifierError::Invalid) => syntax("identifier is not a user name or anyone"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::limits::ParseLimits;
    use skua_core::acl::Rights;

    fn parse(input: &[u8], f: fn(&mut Cursor<'_>) -> PResult<CommandBody>) -> PResult<CommandBody> {
        let mut c = Cursor::new(input, ParseLimits::default(), false);
        let body = f(&mut c)?;
        c.end()?;
        Ok(body)
    }

    #[test]
    fn setacl_parses_mod_rights() {
        let body = parse(b" INBOX Fred +lrd", setacl).unwrap();
        let CommandBody::SetAcl { mailbox, identifier, change } = body else { panic!() };
        assert_eq!(mailbox, "INBOX");
        assert_eq!(identifier.to_string(), "fred");
        assert_eq!(change, RightsChange::Add(Rights::parse("lrxte").unwrap()));
        let body = parse(b" a \"-anyone\" \"\"", setacl).unwrap();
        let CommandBody::SetAcl { identifier, change, .. } = body else { panic!() };
        assert!(identifier.negative);
        assert_eq!(change, RightsChange::Replace(Rights::NONE));
    }

    #[test]
    fn malformed_identifiers_and_rights_are_refused() {
        for bad in [
            &b" a \"\" lr"[..],
            b" a - lr",
            b" a \"b c\" lr",
            b" a \"j\xc3\xbcrgen\" lr",
            b" a fred lrX",
            b" a fred +l9",
            b" a fred \"l\xc3\xa9\"",
            b" a fred",
        ] {
            assert!(parse(bad, setacl).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let long = format!(" a {} lr", "x".repeat(300));
        let refused = parse(long.as_bytes(), setacl).unwrap_err();
        assert_eq!(refused.kind, ParseErrorKind::TooMany);
    }

    #[test]
    fn listrights_keeps_the_spelling() {
        let body = parse(b" INBOX Fred", listrights).unwrap();
        let CommandBody::ListRights { identifier, spelled, .. } = body else { panic!() };
        assert_eq!((identifier.to_string(), spelled.as_str()), ("fred".into(), "Fred"));
        assert!(parse(b" INBOX", listrights).is_err());
        assert!(parse(b" INBOX -", deleteacl).is_err());
        assert!(matches!(parse(b" x", myrights), Ok(CommandBody::MyRights(m)) if m == "x"));
        assert!(matches!(parse(b" x", getacl), Ok(CommandBody::GetAcl(m)) if m == "x"));
    }

    mod props {
        use super::*;
        use crate::imap::encode;
        use proptest::prelude::*;

        proptest! {
            /// Parse what we emit: an identifier and rights written with the response
            /// encoder (`encode::astring`, as ACL and LISTRIGHTS write them) parse back to
            /// the same values in a SETACL.
            #[test]
            fn setacl_parses_what_responses_write(
                who in "(anyone|authenticated|[a-z0-9_+@][a-z0-9._+@-]{0,20})",
                negative in any::<bool>(),
                bits in 0u32..0x800,
                sign in 0usize..3,
            ) {
                let identifier =
                    Identifier::parse(&format!("{}{who}", if negative { "-" } else { "" }));
                let identifier = identifier.unwrap();
                let rights = Rights::from_bits(bits).unwrap();
                let mut line = b" INBOX ".to_vec();
                encode::astring(&mut line, identifier.to_string().as_bytes());
                line.push(b' ');
                let prefix = ["", "+", "-"][sign];
                encode::astring(&mut line, format!("{prefix}{rights}").as_bytes());
                let CommandBody::SetAcl { identifier: parsed, change, .. } =
                    parse(&line, setacl).unwrap()
                else {
                    panic!()
                };
                prop_assert_eq!(parsed, identifier);
                let shown = Rights::parse(&rights.to_string()).unwrap();
                let want = [RightsChange::Replace(shown), RightsChange::Add(shown),
                    RightsChange::Remove(shown)][sign];
                prop_assert_eq!(change, want);
            }
        }
    }
}
