//! SEARCH: return options, charset and search keys (RFC 9051 §6.4.4, RFC 3501 §6.4.4 for
//! `NEW`/`OLD`/`RECENT`, RFC 7162 §3.1.5 for `MODSEQ`).
//!
//! Keys nest through `(...)`, `NOT` and `OR`. The parser recurses once per level and refuses
//! input deeper than `ParseLimits::search_depth_max` (clamped to `SEARCH_DEPTH_CEILING`), and
//! counts keys across the whole program against `list_items_max`, so neither the stack nor the
//! heap can be driven without bound.

use crate::imap::limits::SEARCH_DEPTH_CEILING;
use crate::imap::types::{CommandBody, Flag, PartialRange, SearchKey, SearchReturn};

use super::ParseErrorKind;
use super::cursor::{Cursor, PResult, fail, syntax, utf8};
use super::values::{date, sequence_set};

/// ```text
/// search             = "SEARCH" [search-return-opts] SP search-program
/// search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")"
/// search-return-opt  = "MIN" / "MAX" / "ALL" / "COUNT" / "SAVE"   ; SAVE: RFC 5182
/// search-program     = ["CHARSET" SP charset SP] search-key *(SP search-key)
/// charset            = atom / quoted
/// ```
/// Called after `SEARCH`, before its `SP`. An empty `RETURN ()` means `RETURN (ALL)`
/// (RFC 4731 §3.1). `SAVE` keeps the result for `$` (SEARCHRES, RFC 5182).
pub(crate) fn search(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let esearch = if c.eat_ignore_case(b"RETURN ") { Some(return_options(c)?) } else { None };
    let charset = if c.eat_ignore_case(b"CHARSET ") {
        let raw = if c.peek() == Some(b'"') { c.quoted()? } else { c.atom()?.into() };
        c.sp()?;
        Some(utf8(raw, "charset name is not UTF-8")?)
    } else {
        None
    };
    let mut state = KeyParser::new(c);
    let mut keys = vec![state.key(c, 0)?];
    while c.eat(b' ') {
        keys.push(state.key(c, 0)?);
    }
    Ok(CommandBody::Search { uid, esearch, charset, keys })
}

/// `"(" [search-return-opt *(SP search-return-opt)] ")" SP`, for SEARCH and for SORT's
/// `sort-return-opt` (RFC 5267 §3; SAVE with SORT: RFC 5182 §2.4).
///
/// ```text
/// search-return-opt =/ "PARTIAL" SP partial-range / "UPDATE" / "CONTEXT"  ; RFC 9394, 5267
/// partial-range     = nz-number ":" nz-number / "-" nz-number ":" "-" nz-number
/// ```
/// A single command may not have more than one PARTIAL or ALL (RFC 9394 §3.1), nor name an
/// option twice. Without MIN, MAX, COUNT, ALL, PARTIAL or SAVE the answer is ALL (RFC 4731
/// §3.1; UPDATE and CONTEXT return nothing by themselves).
pub(crate) fn return_options(c: &mut Cursor<'_>) -> PResult<SearchReturn> {
    c.expect(b'(', "expected return options")?;
    let mut options = SearchReturn::default();
    if !c.eat(b')') {
        loop {
            let word = c.keyword()?;
            if word.as_slice() == b"PARTIAL" {
                if options.partial.is_some() {
                    return syntax("PARTIAL given twice");
                }
                c.sp()?;
                options.partial = Some(partial_range(c)?);
            } else {
                let flag = match word.as_slice() {
                    b"MIN" => &mut options.min,
                    b"MAX" => &mut options.max,
                    b"ALL" => &mut options.all,
                    b"COUNT" => &mut options.count,
                    b"SAVE" => &mut options.save,
                    b"UPDATE" => &mut options.update,
                    b"CONTEXT" => &mut options.context,
                    _ => return syntax("unknown return option"),
                };
                if *flag {
                    return syntax("return option given twice");
                }
                *flag = true;
            }
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    }
    if options.partial.is_some() && options.all {
        return syntax("PARTIAL and ALL together");
    }
    let returns = options.min
        || options.max
        || options.all
        || options.count
        || options.save
        || options.partial.is_some();
    if !returns {
        options.all = true;
    }
    c.sp()?;
    Ok(options)
}

/// `partial-range` (RFC 9394 §4): both ends non-zero 32-bit numbers of the same sign, no `*`.
pub(super) fn partial_range(c: &mut Cursor<'_>) -> PResult<PartialRange> {
    let from_end = c.eat(b'-');
    let first = c.nz_number()?;
    c.expect(b':', "expected : in a PARTIAL range")?;
    if from_end != c.eat(b'-') {
        return syntax("PARTIAL range ends of different signs");
    }
    let second = c.nz_number()?;
    Ok(PartialRange {
        low: first.min(second),
        high: first.max(second),
        from_end,
        reversed: first > second,
    })
}

/// `"CANCELUPDATE" 1*(SP quoted)` (RFC 5267 §4.3.5), after the command name.
pub(crate) fn cancel_update(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let mut tags = Vec::new();
    while c.eat(b' ') {
        if tags.len() >= c.limits.list_items_max {
            return fail(ParseErrorKind::TooMany, "too many tags");
        }
        tags.push(utf8(c.quoted()?, "tag is not UTF-8")?);
    }
    if tags.is_empty() {
        return syntax("CANCELUPDATE needs a tag");
    }
    Ok(CommandBody::CancelUpdate(tags))
}

/// Counts keys and bounds depth across one search program.
pub(crate) struct KeyParser {
    depth_max: u32,
    keys_left: usize,
}

impl KeyParser {
    /// A key parser with the cursor's limits.
    pub(crate) fn new(c: &Cursor<'_>) -> KeyParser {
        KeyParser {
            depth_max: c.limits.search_depth_max.min(SEARCH_DEPTH_CEILING),
            keys_left: c.limits.list_items_max,
        }
    }

    /// ```text
    /// search-key = "ALL" / "ANSWERED" / "BCC" SP astring / "BEFORE" SP date /
    ///              "BODY" SP astring / "CC" SP astring / "DELETED" / "FLAGGED" /
    ///              "FROM" SP astring / "KEYWORD" SP flag-keyword / "ON" SP date /
    ///              "SEEN" / "SINCE" SP date / "SUBJECT" SP astring / "TEXT" SP astring /
    ///              "TO" SP astring / "UNANSWERED" / "UNDELETED" / "UNFLAGGED" /
    ///              "UNKEYWORD" SP flag-keyword / "UNSEEN" / "DRAFT" /
    ///              "HEADER" SP header-fld-name SP astring / "LARGER" SP number64 /
    ///              "NOT" SP search-key / "OR" SP search-key SP search-key /
    ///              "SENTBEFORE" SP date / "SENTON" SP date / "SENTSINCE" SP date /
    ///              "SMALLER" SP number64 / "UID" SP sequence-set / "UNDRAFT" /
    ///              sequence-set / "(" search-key *(SP search-key) ")" /
    ///              "NEW" / "OLD" / "RECENT"                                  ; RFC 3501
    ///              "MODSEQ" [SP entry-name SP entry-type-req] SP mod-sequence-valzer
    /// ```
    /// `NEW` becomes `UNSEEN`, `OLD` becomes `ALL` and `RECENT` matches nothing (`NOT ALL`):
    /// this server keeps no `\Recent`. `LARGER`/`SMALLER` saturate at `u32::MAX`, which gives
    /// the same answer since message sizes are 32-bit.
    pub(crate) fn key(&mut self, c: &mut Cursor<'_>, depth: u32) -> PResult<SearchKey> {
        if depth >= self.depth_max {
            return fail(ParseErrorKind::TooMany, "search keys nested too deeply");
        }
        if self.keys_left == 0 {
            return fail(ParseErrorKind::TooMany, "too many search keys");
        }
        self.keys_left -= 1;
        match c.peek() {
            Some(b'(') => return self.and_list(c, depth),
            Some(b'0'..=b'9' | b'*' | b'$') => return sequence_set(c).map(SearchKey::SequenceSet),
            _ => {}
        }
        let word = c.keyword()?;
        let word = word.as_slice();
        if let Some(key) = flag_key(word) {
            return Ok(key);
        }
        match word {
            b"ALL" => Ok(SearchKey::All),
            b"SAVEDATESUPPORTED" => Ok(SearchKey::SavedateSupported),
            b"NOT" => {
                c.sp()?;
                Ok(SearchKey::Not(Box::new(self.key(c, depth + 1)?)))
            }
            b"OR" => {
                c.sp()?;
                let left = self.key(c, depth + 1)?;
                c.sp()?;
                let right = self.key(c, depth + 1)?;
                Ok(SearchKey::Or(Box::new(left), Box::new(right)))
            }
            _ => argument_key(c, word),
        }
    }

    /// `"(" search-key *(SP search-key) ")"`
    fn and_list(&mut self, c: &mut Cursor<'_>, depth: u32) -> PResult<SearchKey> {
        c.expect(b'(', "expected (")?;
        let mut keys = vec![self.key(c, depth + 1)?];
        while !c.eat(b')') {
            c.sp()?;
            keys.push(self.key(c, depth + 1)?);
        }
        Ok(SearchKey::And(keys))
    }
}

/// The keys that test a system flag and take no argument.
/// The session flag `\Recent` (IMAP4rev1), as a search key's flag.
fn recent() -> Flag {
    Flag::Extension("Recent".into())
}

fn flag_key(word: &[u8]) -> Option<SearchKey> {
    let key = match word {
        b"ANSWERED" => SearchKey::Flag(Flag::Answered),
        b"DELETED" => SearchKey::Flag(Flag::Deleted),
        b"DRAFT" => SearchKey::Flag(Flag::Draft),
        b"FLAGGED" => SearchKey::Flag(Flag::Flagged),
        b"SEEN" => SearchKey::Flag(Flag::Seen),
        b"UNANSWERED" => SearchKey::NotFlag(Flag::Answered),
        b"UNDELETED" => SearchKey::NotFlag(Flag::Deleted),
        b"UNDRAFT" => SearchKey::NotFlag(Flag::Draft),
        b"UNFLAGGED" => SearchKey::NotFlag(Flag::Flagged),
        b"UNSEEN" => SearchKey::NotFlag(Flag::Seen),
        // RFC 3501 §6.4.4: NEW is RECENT UNSEEN, OLD is NOT RECENT.
        b"RECENT" => SearchKey::Flag(recent()),
        b"OLD" => SearchKey::NotFlag(recent()),
        b"NEW" => SearchKey::And(vec![SearchKey::Flag(recent()), SearchKey::NotFlag(Flag::Seen)]),
        _ => return None,
    };
    Some(key)
}

/// The keys that take one or two arguments (not nested keys).
fn argument_key(c: &mut Cursor<'_>, word: &[u8]) -> PResult<SearchKey> {
    if word == b"MODSEQ" {
        return modseq(c);
    }
    c.sp()?;
    let text = |c: &mut Cursor<'_>| utf8(c.astring()?, "search string is not UTF-8");
    let key = match word {
        b"BCC" => SearchKey::Bcc(text(c)?),
        b"BODY" => SearchKey::Body(text(c)?),
        b"CC" => SearchKey::Cc(text(c)?),
        b"FROM" => SearchKey::From(text(c)?),
        b"SUBJECT" => SearchKey::Subject(text(c)?),
        b"TEXT" => SearchKey::Text(text(c)?),
        b"TO" => SearchKey::To(text(c)?),
        b"HEADER" => {
            let name = text(c)?;
            c.sp()?;
            SearchKey::Header(name, text(c)?)
        }
        b"KEYWORD" => SearchKey::Flag(keyword(c)?),
        b"UNKEYWORD" => SearchKey::NotFlag(keyword(c)?),
        b"BEFORE" => SearchKey::Before(date(c)?),
        b"ON" => SearchKey::On(date(c)?),
        b"SINCE" => SearchKey::Since(date(c)?),
        b"SENTBEFORE" => SearchKey::SentBefore(date(c)?),
        b"SENTON" => SearchKey::SentOn(date(c)?),
        b"SENTSINCE" => SearchKey::SentSince(date(c)?),
        b"LARGER" => SearchKey::Larger(saturate(c.number64()?)),
        b"SMALLER" => SearchKey::Smaller(saturate(c.number64()?)),
        b"UID" => SearchKey::Uid(sequence_set(c)?),
        b"OLDER" => SearchKey::Older(c.nz_number()?),
        b"YOUNGER" => SearchKey::Younger(c.nz_number()?),
        b"EMAILID" => SearchKey::EmailId(objectid(c)?),
        b"THREADID" => SearchKey::ThreadId(objectid(c)?),
        b"SAVEDBEFORE" => SearchKey::SavedBefore(date(c)?),
        b"SAVEDON" => SearchKey::SavedOn(date(c)?),
        b"SAVEDSINCE" => SearchKey::SavedSince(date(c)?),
        _ => return syntax("unknown search key"),
    };
    Ok(key)
}

/// `flag-keyword = atom` (KEYWORD's argument; a `\` flag is not a keyword).
fn keyword(c: &mut Cursor<'_>) -> PResult<Flag> {
    let atom = c.atom()?;
    Ok(Flag::Keyword(std::str::from_utf8(atom).expect("atoms are ASCII").to_owned()))
}

/// `objectid = 1*255(ALPHA / DIGIT / "_" / "-")` (RFC 8474 §7).
fn objectid(c: &mut Cursor<'_>) -> PResult<String> {
    let atom = c.atom()?;
    let valid = (1..=255).contains(&atom.len())
        && atom.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        return syntax("invalid objectid");
    }
    Ok(String::from_utf8(atom.to_vec()).expect("checked ASCII"))
}

fn saturate(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// ```text
/// search-modsequence = "MODSEQ" [search-modseq-ext] SP mod-sequence-valzer
/// search-modseq-ext  = SP entry-name SP entry-type-req
/// entry-name         = DQUOTE "/flags/" attr-flag DQUOTE
/// entry-type-req     = "priv" / "shared" / "all"
/// ```
/// The entry is checked and then ignored: one modseq per message covers every flag here.
fn modseq(c: &mut Cursor<'_>) -> PResult<SearchKey> {
    c.sp()?;
    if c.peek() == Some(b'"') {
        let entry = c.quoted()?;
        if !entry.starts_with(b"/flags/") {
            return syntax("invalid MODSEQ entry name");
        }
        c.sp()?;
        let kind = c.word()?;
        if !(kind.eq_ignore_ascii_case(b"priv")
            || kind.eq_ignore_ascii_case(b"shared")
            || kind.eq_ignore_ascii_case(b"all"))
        {
            return syntax("invalid MODSEQ entry type");
        }
        c.sp()?;
    }
    Ok(SearchKey::ModSeq(c.number64()?))
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
