//! The QRESYNC parameter of SELECT and EXAMINE (RFC 7162 §3.2.5, grammar in §7).

use crate::imap::types::{QresyncParams, SeqBound, SequenceSet};

use super::cursor::{Cursor, PResult, syntax};
use super::values::sequence_set;

/// ```text
/// "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")"
/// uidvalidity        = nz-number
/// known-uids         = sequence-set            ; "*" is not allowed
/// seq-match-data     = "(" known-sequence-set SP known-uid-set ")"
/// known-sequence-set = sequence-set            ; "*" is not allowed
/// known-uid-set      = sequence-set            ; "*" is not allowed
/// ```
/// Called after `QRESYNC SP`. `mod-sequence-value` is 1 or more; 0 is taken too (a client
/// that never saw a modseq asks for everything, which is what 0 means to the server).
pub(crate) fn params(c: &mut Cursor<'_>) -> PResult<QresyncParams> {
    c.expect(b'(', "expected ( after QRESYNC")?;
    let uid_validity = c.nz_number()?;
    c.sp()?;
    let modseq = c.number64()?;
    let mut known_uids = None;
    let mut seq_match = None;
    if c.eat(b' ') {
        if c.eat(b'(') {
            seq_match = Some(match_data(c)?);
        } else {
            known_uids = Some(no_star(c)?);
            if c.eat(b' ') {
                c.expect(b'(', "expected seq-match-data")?;
                seq_match = Some(match_data(c)?);
            }
        }
    }
    c.expect(b')', "expected ) after QRESYNC parameters")?;
    Ok(QresyncParams { uid_validity, modseq, known_uids, seq_match })
}

/// `known-sequence-set SP known-uid-set ")"`, after the `(`.
fn match_data(c: &mut Cursor<'_>) -> PResult<(SequenceSet, SequenceSet)> {
    let numbers = no_star(c)?;
    c.sp()?;
    let uids = no_star(c)?;
    c.expect(b')', "expected ) after seq-match-data")?;
    Ok((numbers, uids))
}

/// A sequence set without `*` or `$`.
fn no_star(c: &mut Cursor<'_>) -> PResult<SequenceSet> {
    let set = sequence_set(c)?;
    let star = set.ranges().iter().any(|&(a, b)| a == SeqBound::Largest || b == SeqBound::Largest);
    if star || set.is_saved() {
        return syntax("* and $ are not allowed in QRESYNC sets");
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::limits::ParseLimits;

    fn parse(input: &[u8]) -> PResult<QresyncParams> {
        let mut c = Cursor::new(input, ParseLimits::default(), false);
        let params = params(&mut c)?;
        c.end()?;
        Ok(params)
    }

    fn set(ranges: &[(u32, u32)]) -> SequenceSet {
        SequenceSet::new(
            ranges.iter().map(|&(a, b)| (SeqBound::Value(a), SeqBound::Value(b))).collect(),
        )
        .unwrap()
    }

    #[test]
    fn every_form_of_the_parameter() {
        let p = parse(b"(67890007 20050715194045000)").unwrap();
        assert_eq!(
            (p.uid_validity, p.modseq, &p.known_uids, &p.seq_match),
            (67890007, 20050715194045000, &None, &None)
        );
        let p = parse(b"(67890007 20050715194045000 41,43:211,214:541)").unwrap();
        assert_eq!(p.known_uids, Some(set(&[(41, 41), (43, 211), (214, 541)])));
        let p = parse(b"(67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997))").unwrap();
        assert_eq!(p.known_uids, Some(set(&[(1, 29997)])));
        let (numbers, uids) = p.seq_match.unwrap();
        assert_eq!(numbers, set(&[(5000, 5000), (7500, 7500), (9000, 9000), (9990, 9999)]));
        assert_eq!(uids.ranges().len(), 13);
        let p = parse(b"(1 2 (1:3 4:6))").unwrap();
        assert_eq!((p.known_uids, p.seq_match), (None, Some((set(&[(1, 3)]), set(&[(4, 6)])))));
    }

    #[test]
    fn malformed_parameters_are_refused() {
        for bad in [
            &b"(0 5)"[..],
            b"(1)",
            b"(1 2 1:*)",
            b"(1 2 $)",
            b"(1 2 1:5 (1:2))",
            b"(1 2 1:5 (1:* 1:2))",
            b"(1 2",
            b"1 2",
            b"(1 2 1:5 (1 2) 3)",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
