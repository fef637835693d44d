//! FETCH: data items, body sections, partials and the CHANGEDSINCE, VANISHED and PARTIAL
//! modifiers (RFC 9051 §6.4.5, RFC 3501 §6.4.5 for the RFC822 forms, RFC 7162 §3.1.4,
//! RFC 9394 §3.3).

use crate::imap::types::{CommandBody, FetchAttribute, PartialRange, Section, SectionText};

use super::ParseErrorKind;
use super::cursor::{Cursor, PResult, fail, syntax, utf8};
use super::values::sequence_set;

/// ```text
/// fetch           = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" /
///                   fetch-att / "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]
/// fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")"
/// fetch-modifier  = "CHANGEDSINCE" SP mod-sequence-valzer        ; RFC 7162
///                 / "VANISHED"                                   ; RFC 7162 §3.2.6
///                 / "PARTIAL" SP partial-range                   ; RFC 9394 §4
/// ```
/// Called after `FETCH SP`. Macros are expanded here.
pub(crate) fn fetch(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    let set = sequence_set(c)?;
    c.sp()?;
    let attributes = if c.eat(b'(') {
        attribute_list(c)?
    } else {
        let start = c.pos();
        match macro_items(c.word()?) {
            Some(items) => items,
            None => {
                c.rewind(start);
                vec![attribute(c)?]
            }
        }
    };
    let Modifiers { changed_since, vanished, partial } =
        if c.eat(b' ') { fetch_modifiers(c)? } else { Modifiers::default() };
    Ok(CommandBody::Fetch { uid, set, attributes, changed_since, vanished, partial })
}

/// `ALL`, `FAST` and `FULL`, expanded (RFC 9051 §6.4.5).
fn macro_items(word: &[u8]) -> Option<Vec<FetchAttribute>> {
    use FetchAttribute::{Body, Envelope, Flags, InternalDate, Rfc822Size};
    let items = if word.eq_ignore_ascii_case(b"ALL") {
        vec![Flags, InternalDate, Rfc822Size, Envelope]
    } else if word.eq_ignore_ascii_case(b"FAST") {
        vec![Flags, InternalDate, Rfc822Size]
    } else if word.eq_ignore_ascii_case(b"FULL") {
        vec![Flags, InternalDate, Rfc822Size, Envelope, Body]
    } else {
        return None;
    };
    Some(items)
}

/// `fetch-att *(SP fetch-att) ")"`, after the `(`.
fn attribute_list(c: &mut Cursor<'_>) -> PResult<Vec<FetchAttribute>> {
    let mut attributes = Vec::new();
    loop {
        if attributes.len() == c.limits.list_items_max {
            return fail(ParseErrorKind::TooMany, "too many fetch attributes");
        }
        attributes.push(attribute(c)?);
        if c.eat(b')') {
            return Ok(attributes);
        }
        c.sp()?;
    }
}

/// ```text
/// fetch-att = "ENVELOPE" / "FLAGS" / "INTERNALDATE" / "RFC822.SIZE" / "RFC822" /
///             "RFC822.HEADER" / "RFC822.TEXT" / "BODY" ["STRUCTURE"] / "UID" /
///             "BODY" section [partial] / "BODY.PEEK" section [partial] / "MODSEQ"
/// fetch-att =/ "EMAILID" / "THREADID"     ; RFC 8474
/// fetch-att =/ "SAVEDATE"                 ; RFC 8514
/// ```
pub(crate) fn attribute(c: &mut Cursor<'_>) -> PResult<FetchAttribute> {
    let word = c.keyword()?;
    let simple = match word.as_slice() {
        b"ENVELOPE" => FetchAttribute::Envelope,
        b"FLAGS" => FetchAttribute::Flags,
        b"INTERNALDATE" => FetchAttribute::InternalDate,
        b"RFC822.SIZE" => FetchAttribute::Rfc822Size,
        b"RFC822" => FetchAttribute::Rfc822,
        b"RFC822.HEADER" => FetchAttribute::Rfc822Header,
        b"RFC822.TEXT" => FetchAttribute::Rfc822Text,
        b"BODYSTRUCTURE" => FetchAttribute::BodyStructure,
        b"UID" => FetchAttribute::Uid,
        b"MODSEQ" => FetchAttribute::ModSeq,
        b"BODY" if c.peek() != Some(b'[') => FetchAttribute::Body,
        b"BODY" | b"BODY.PEEK" => {
            let section = section(c)?;
            let partial = if c.peek() == Some(b'<') { Some(partial(c)?) } else { None };
            let peek = word.as_slice().len() > 4;
            return Ok(FetchAttribute::BodySection { section, partial, peek });
        }
        b"BINARY" | b"BINARY.PEEK" | b"BINARY.SIZE" | b"PREVIEW" => {
            return binary_or_preview(c, word.as_slice());
        }
        b"EMAILID" => FetchAttribute::EmailId,
        b"THREADID" => FetchAttribute::ThreadId,
        b"SAVEDATE" => FetchAttribute::SaveDate,
        _ => return syntax("unknown fetch attribute"),
    };
    Ok(simple)
}

/// ```text
/// fetch-att      =/ "BINARY" [".PEEK"] section-binary [partial] /
///                   "BINARY.SIZE" section-binary                 ; RFC 3516, RFC 9051
/// fetch-att      =/ "PREVIEW" [SP "(" preview-mod *(SP preview-mod) ")"]   ; RFC 8970
/// preview-mod     = "LAZY"
/// section-binary  = "[" [section-part] "]"
/// ```
/// `word` is the upper-cased keyword already read.
fn binary_or_preview(c: &mut Cursor<'_>, word: &[u8]) -> PResult<FetchAttribute> {
    if word == b"PREVIEW" {
        // `PREVIEW (LAZY)`: the modifier list follows after a space and a parenthesis; a
        // space followed by anything else belongs to the next item.
        // A `(` that does not open `(LAZY)` starts the FETCH modifiers (`CHANGEDSINCE`).
        let start = c.pos();
        let is_lazy = |c: &mut Cursor<'_>| c.keyword().is_ok_and(|m| m.as_slice() == b"LAZY");
        if c.eat(b' ') && c.eat(b'(') && is_lazy(c) {
            while c.eat(b' ') {
                if !is_lazy(c) {
                    return syntax("unknown PREVIEW modifier");
                }
            }
            c.expect(b')', "expected ) after LAZY")?;
            return Ok(FetchAttribute::Preview { lazy: true });
        }
        c.rewind(start);
        return Ok(FetchAttribute::Preview { lazy: false });
    }
    let part = section_binary(c)?;
    if word == b"BINARY.SIZE" {
        return Ok(FetchAttribute::BinarySize { part });
    }
    let partial = if c.peek() == Some(b'<') { Some(partial(c)?) } else { None };
    Ok(FetchAttribute::Binary { part, partial, peek: word == b"BINARY.PEEK" })
}

/// `section-binary = "[" [section-part] "]"`, `section-part = nz-number *("." nz-number)`.
fn section_binary(c: &mut Cursor<'_>) -> PResult<Vec<u32>> {
    c.expect(b'[', "expected [")?;
    let mut part = Vec::new();
    if c.peek() != Some(b']') {
        part.push(c.nz_number()?);
        while c.eat(b'.') {
            if part.len() == c.limits.list_items_max {
                return fail(ParseErrorKind::TooMany, "too many section parts");
            }
            part.push(c.nz_number()?);
        }
    }
    c.expect(b']', "expected ] after section")?;
    Ok(part)
}

/// ```text
/// section         = "[" [section-spec] "]"
/// section-spec    = section-msgtext / (section-part ["." section-text])
/// section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"
/// section-part    = nz-number *("." nz-number)
/// section-text    = section-msgtext / "MIME"
/// ```
pub(crate) fn section(c: &mut Cursor<'_>) -> PResult<Section> {
    c.expect(b'[', "expected [")?;
    let mut part = Vec::new();
    let mut text = None;
    if c.peek().is_some_and(|b| b.is_ascii_digit()) {
        part.push(c.nz_number()?);
        while c.eat(b'.') {
            if !c.peek().is_some_and(|b| b.is_ascii_digit()) {
                text = Some(section_text(c, true)?);
                break;
            }
            if part.len() == c.limits.list_items_max {
                return fail(ParseErrorKind::TooMany, "too many section parts");
            }
            part.push(c.nz_number()?);
        }
    } else if c.peek() != Some(b']') {
        text = Some(section_text(c, false)?);
    }
    c.expect(b']', "expected ] after section")?;
    Ok(Section { part, text })
}

/// `section-msgtext / "MIME"` (MIME only after a part number).
fn section_text(c: &mut Cursor<'_>, after_part: bool) -> PResult<SectionText> {
    let word = c.keyword()?;
    match word.as_slice() {
        b"HEADER" => Ok(SectionText::Header),
        b"TEXT" => Ok(SectionText::Text),
        b"MIME" if after_part => Ok(SectionText::Mime),
        b"HEADER.FIELDS" => Ok(SectionText::HeaderFields(header_list(c)?)),
        b"HEADER.FIELDS.NOT" => Ok(SectionText::HeaderFieldsNot(header_list(c)?)),
        _ => syntax("invalid section"),
    }
}

/// ```text
/// header-list     = "(" header-fld-name *(SP header-fld-name) ")"
/// header-fld-name = astring
/// ```
/// Preceded by `SP`.
fn header_list(c: &mut Cursor<'_>) -> PResult<Vec<String>> {
    c.sp()?;
    c.expect(b'(', "expected header field list")?;
    let mut names = Vec::new();
    loop {
        if names.len() == c.limits.list_items_max {
            return fail(ParseErrorKind::TooMany, "too many header fields");
        }
        names.push(utf8(c.astring()?, "header field name is not UTF-8")?);
        if c.eat(b')') {
            return Ok(names);
        }
        c.sp()?;
    }
}

/// `partial = "<" number "." nz-number ">"` as `(offset, length)`.
fn partial(c: &mut Cursor<'_>) -> PResult<(u32, u32)> {
    c.expect(b'<', "expected <")?;
    let offset = c.number()?;
    c.expect(b'.', "expected . in partial")?;
    let length = c.nz_number()?;
    c.expect(b'>', "expected > after partial")?;
    Ok((offset, length))
}

/// The FETCH modifiers given, each at most once, in any order (RFC 9394 §3.4).
#[derive(Default)]
struct Modifiers {
    changed_since: Option<u64>,
    vanished: bool,
    partial: Option<PartialRange>,
}

/// `"(" fetch-modifier *(SP fetch-modifier) ")"`, after the SP. Whether VANISHED may be given
/// is the command's to say (RFC 7162 §3.2.6).
fn fetch_modifiers(c: &mut Cursor<'_>) -> PResult<Modifiers> {
    c.expect(b'(', "expected fetch modifiers")?;
    let mut modifiers = Modifiers::default();
    loop {
        let word = c.word()?;
        if word.eq_ignore_ascii_case(b"CHANGEDSINCE") && modifiers.changed_since.is_none() {
            c.sp()?;
            modifiers.changed_since = Some(c.number64()?);
        } else if word.eq_ignore_ascii_case(b"VANISHED") && !modifiers.vanished {
            modifiers.vanished = true;
        } else if word.eq_ignore_ascii_case(b"PARTIAL") && modifiers.partial.is_none() {
            c.sp()?;
            modifiers.partial = Some(super::search::partial_range(c)?);
        } else {
            return syntax("unknown fetch modifier");
        }
        if c.eat(b')') {
            return Ok(modifiers);
        }
        c.sp()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::limits::ParseLimits;
    use crate::imap::types::SeqBound;

    fn parse(input: &[u8]) -> PResult<CommandBody> {
        let mut c = Cursor::new(input, ParseLimits::default(), false);
        let body = fetch(&mut c, false)?;
        c.end()?;
        Ok(body)
    }

    fn attributes(input: &[u8]) -> Vec<FetchAttribute> {
        match parse(input).unwrap() {
            CommandBody::Fetch { attributes, .. } => attributes,
            other => panic!("not a fetch: {other:?}"),
        }
    }

    #[test]
    fn macros_expand() {
        assert_eq!(attributes(b"1 fast").len(), 3);
        assert_eq!(attributes(b"1 ALL").len(), 4);
        assert_eq!(attributes(b"1 FULL")[4], FetchAttribute::Body);
        assert!(parse(b"1 (FAST)").is_err());
    }

    #[test]
    fn simple_items_and_lists() {
        let items = attributes(b"1:* (FLAGS uid RFC822.SIZE BODYSTRUCTURE BODY MODSEQ)");
        assert_eq!(items[0], FetchAttribute::Flags);
        assert_eq!(items[1], FetchAttribute::Uid);
        assert_eq!(items[4], FetchAttribute::Body);
        assert!(parse(b"1 ()").is_err());
        assert!(parse(b"1 (FLAGS ").is_err());
        assert!(parse(b"1 FOO").is_err());
        assert_eq!(
            attributes(b"1 (emailid THREADID SaveDate)"),
            vec![FetchAttribute::EmailId, FetchAttribute::ThreadId, FetchAttribute::SaveDate]
        );
    }

    #[test]
    fn body_sections_and_partials() {
        let items =
            attributes(b"2 (BODY[] BODY.PEEK[1.2.MIME]<0.1024> body[header.fields (From \"To\")])");
        assert_eq!(
            items[0],
            FetchAttribute::BodySection {
                section: Section { part: vec![], text: None },
                partial: None,
                peek: false
            }
        );
        assert_eq!(
            items[1],
            FetchAttribute::BodySection {
                section: Section { part: vec![1, 2], text: Some(SectionText::Mime) },
                partial: Some((0, 1024)),
                peek: true
            }
        );
        let FetchAttribute::BodySection { section, .. } = &items[2] else { panic!() };
        assert_eq!(section.text, Some(SectionText::HeaderFields(vec!["From".into(), "To".into()])));
        assert!(parse(b"1 BODY[MIME]").is_err());
        assert!(parse(b"1 BODY[1.0]").is_err());
        assert!(parse(b"1 BODY[HEADER.FIELDS]").is_err());
        assert!(parse(b"1 BODY[TEXT]<0.0>").is_err());
        assert!(parse(b"1 BODY.PEEK").is_err());
        assert!(parse(b"1 BODY[1.TEXT").is_err());
    }

    #[test]
    fn binary_items_and_preview() {
        let items = attributes(
            b"1 (BINARY[] binary.peek[1.2]<0.10> BINARY.SIZE[3] PREVIEW PREVIEW (LAZY) UID)",
        );
        assert_eq!(items[0], FetchAttribute::Binary { part: vec![], partial: None, peek: false });
        assert_eq!(
            items[1],
            FetchAttribute::Binary { part: vec![1, 2], partial: Some((0, 10)), peek: true }
        );
        assert_eq!(items[2], FetchAttribute::BinarySize { part: vec![3] });
        assert_eq!(items[3], FetchAttribute::Preview { lazy: false });
        assert_eq!(items[4], FetchAttribute::Preview { lazy: true });
        assert_eq!(
            attributes(b"1 PREVIEW (lazy LAZY)"),
            vec![FetchAttribute::Preview { lazy: true }]
        );
        assert!(parse(b"1 PREVIEW (LAZY FUZZY)").is_err());
        assert_eq!(items[5], FetchAttribute::Uid);
        assert_eq!(attributes(b"1 PREVIEW"), vec![FetchAttribute::Preview { lazy: false }]);
        // section-binary holds part numbers only.
        assert!(parse(b"1 BINARY[1.MIME]").is_err());
        assert!(parse(b"1 BINARY[TEXT]").is_err());
        assert!(parse(b"1 BINARY[0]").is_err());
        assert!(parse(b"1 BINARY.SIZE[1]<0.5>").is_err());
        assert!(parse(b"1 BINARY").is_err());
        assert!(parse(b"1 (PREVIEW (FUZZY))").is_err());
        let body = parse(b"1 PREVIEW (CHANGEDSINCE 7)").unwrap();
        let CommandBody::Fetch { attributes, changed_since, .. } = body else { panic!() };
        assert_eq!((attributes.len(), changed_since), (1, Some(7)));
        assert!(parse(b"1 (PREVIEW (LAZY)").is_err());
    }

    #[test]
    fn changedsince_modifier() {
        let body = parse(b"1:3,5 (FLAGS) (CHANGEDSINCE 12345)").unwrap();
        let CommandBody::Fetch { set, changed_since, .. } = body else { panic!() };
        assert_eq!(changed_since, Some(12_345));
        assert_eq!(set.ranges()[1], (SeqBound::Value(5), SeqBound::Value(5)));
        assert!(parse(b"1 FLAGS (CHANGEDSINCE)").is_err());
        let body = parse(b"1 FLAGS (CHANGEDSINCE 5 VANISHED)").unwrap();
        assert!(matches!(body, CommandBody::Fetch { vanished: true, changed_since: Some(5), .. }));
        assert!(parse(b"1 FLAGS (VANISHED VANISHED)").is_err());
        assert!(parse(b"1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)").is_err());
    }

    #[test]
    fn partial_modifier() {
        let parts = |input: &[u8]| match parse(input).unwrap() {
            CommandBody::Fetch { partial, changed_since, vanished, .. } => {
                (partial, changed_since, vanished)
            }
            other => panic!("not a fetch: {other:?}"),
        };
        let range = |low, high, from_end, reversed| PartialRange { low, high, from_end, reversed };
        assert_eq!(parts(b"1:* (FLAGS) (PARTIAL -1:-30)").0, Some(range(1, 30, true, false)));
        assert_eq!(parts(b"1:* FLAGS (partial 10:1)").0, Some(range(1, 10, false, true)));
        // With CHANGEDSINCE and VANISHED, in any order (RFC 9394 §3.4).
        assert_eq!(
            parts(b"1:* FLAGS (PARTIAL 1:5 CHANGEDSINCE 9 VANISHED)"),
            (Some(range(1, 5, false, false)), Some(9), true)
        );
        assert_eq!(
            parts(b"1:* FLAGS (CHANGEDSINCE 9 PARTIAL -2:-1)"),
            (Some(range(1, 2, true, true)), Some(9), false)
        );
        assert_eq!(parts(b"1 FLAGS").0, None);
        // partial-range: two non-zero 32-bit numbers of one sign, no "*"; PARTIAL once.
        for bad in [
            &b"1 FLAGS (PARTIAL)"[..],
            b"1 FLAGS (PARTIAL 0:5)",
            b"1 FLAGS (PARTIAL 1:*)",
            b"1 FLAGS (PARTIAL -1:5)",
            b"1 FLAGS (PARTIAL 1:-5)",
            b"1 FLAGS (PARTIAL 5)",
            b"1 FLAGS (PARTIAL \"1:5\")",
            b"1 FLAGS (PARTIAL 1:4294967296)",
            b"1 FLAGS (PARTIAL 1:2 PARTIAL 3:4)",
            b"1 FLAGS (PARTIAL 1:2",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
