//! GETQUOTA, GETQUOTAROOT and SETQUOTA (RFC 9208 §4.1). Resource names are atoms, uppercased
//! here; which ones are supported is the command's business (`command/quota.rs`).

use crate::imap::types::CommandBody;

use super::ParseErrorKind;
use super::cursor::{Cursor, PResult, fail, utf8};
use super::values::mailbox;

/// The most `resource limit` pairs one SETQUOTA takes (three are supported; a few more are
/// read so that an unsupported one is answered NO rather than BAD).
const SETQUOTA_RESOURCES_MAX: usize = 16;

/// `getquota = "GETQUOTA" SP quota-root-name` with `quota-root-name = astring`
pub(crate) fn getquota(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    Ok(CommandBody::GetQuota(root(c)?))
}

/// `getquotaroot = "GETQUOTAROOT" SP mailbox`
pub(crate) fn getquotaroot(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    Ok(CommandBody::GetQuotaRoot(mailbox(c)?))
}

/// ```text
/// setquota          = "SETQUOTA" SP quota-root-name SP setquota-list
/// setquota-list     = "(" [setquota-resource *(SP setquota-resource)] ")"
/// setquota-resource = resource-name SP resource-limit
/// resource-name     = "STORAGE" / "MESSAGE" / "MAILBOX" / "ANNOTATION-STORAGE" / atom
/// resource-limit    = number64
/// ```
pub(crate) fn setquota(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let root = root(c)?;
    c.sp()?;
    c.expect(b'(', "expected a list of resource limits")?;
    let mut limits = Vec::new();
    if !c.eat(b')') {
        loop {
            if limits.len() == SETQUOTA_RESOURCES_MAX {
                return fail(ParseErrorKind::TooMany, "too many quota resources");
            }
            let name = String::from_utf8_lossy(c.atom()?).to_ascii_uppercase();
            c.sp()?;
            limits.push((name, c.number64()?));
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    }
    Ok(CommandBody::SetQuota { root, limits })
}

/// `quota-root-name = astring`, as UTF-8.
fn root(c: &mut Cursor<'_>) -> PResult<String> {
    let raw = c.astring()?;
    utf8(raw, "quota root name is not UTF-8")
}

#[cfg(test)]
mod tests {
    use crate::imap::limits::ParseLimits;
    use crate::imap::types::CommandBody;

    fn parse(line: &[u8]) -> Result<CommandBody, super::super::cursor::Fail> {
        let mut c = super::Cursor::new(line, ParseLimits::default(), false);
        let name = c.keyword().unwrap();
        let body = match name.as_slice() {
            b"GETQUOTA" => super::getquota(&mut c),
            b"GETQUOTAROOT" => super::getquotaroot(&mut c),
            _ => super::setquota(&mut c),
        }?;
        c.end()?;
        Ok(body)
    }

    #[test]
    fn rfc_9208_examples() {
        let body = parse(br#"SETQUOTA "" (STORAGE 512)"#).unwrap();
        let expected =
            CommandBody::SetQuota { root: String::new(), limits: vec![("STORAGE".into(), 512)] };
        assert_eq!(body, expected);
        let body = parse(b"SETQUOTA \"\" (storage 1 Message 2 MAILBOX 3)").unwrap();
        let CommandBody::SetQuota { limits, .. } = body else { panic!() };
        let names: Vec<&str> = limits.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["STORAGE", "MESSAGE", "MAILBOX"]);
        assert_eq!(
            parse(b"SETQUOTA \"\" ()").unwrap(),
            CommandBody::SetQuota { root: String::new(), limits: Vec::new() }
        );
        assert_eq!(parse(b"GETQUOTA \"\"").unwrap(), CommandBody::GetQuota(String::new()));
        assert_eq!(
            parse(b"GETQUOTA \"!partition/sda4\"").unwrap(),
            CommandBody::GetQuota("!partition/sda4".into())
        );
        assert_eq!(
            parse(b"GETQUOTAROOT INBOX").unwrap(),
            CommandBody::GetQuotaRoot("INBOX".into())
        );
    }

    #[test]
    fn malformed() {
        for bad in [
            &b"GETQUOTA"[..],
            b"GETQUOTA ",
            b"GETQUOTAROOT",
            b"SETQUOTA \"\"",
            b"SETQUOTA \"\" STORAGE 1",
            b"SETQUOTA \"\" (STORAGE)",
            b"SETQUOTA \"\" (STORAGE -1)",
            b"SETQUOTA \"\" (STORAGE 1 )",
            b"SETQUOTA \"\" (STORAGE 99999999999999999999)",
            b"SETQUOTA \"\" (STORAGE 1",
            b"SETQUOTA \"\" ( )",
            b"SETQUOTA \"\" (STORAGE 1) x",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
