//! The base subject of RFC 5256 §2.1, which SORT (SUBJECT) and THREAD compare.
//!
//! [`base_subject`] takes the Subject text with encoded words already decoded (step 1's first
//! half is the caller's: `sortkeys.rs` decodes with mail-parser) and applies the rest of the
//! algorithm on the UTF-8 text:
//!
//! ```text
//! (1) fold white space: tabs and line breaks become spaces, runs of spaces become one
//! (2) remove trailing subj-trailer ("(fwd)" / WSP), repeatedly
//! (3) remove leading subj-leader ((*subj-blob subj-refwd) / WSP), repeatedly
//! (4) remove a leading subj-blob if text remains after it
//! (5) repeat (3) and (4) until nothing changes
//! (6) if the text is "[fwd:" ... "]", remove those and go back to (2)
//! ```
//!
//! `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"`, `subj-blob = "[" *BLOBCHAR "]"
//! *WSP` with BLOBCHAR any CHAR but `[` and `]`; keywords compare case-insensitively. The
//! result also says whether the subject was a reply or forward (a subj-refwd, a `(fwd)` trailer
//! or a `[fwd: ...]` wrapper was removed): THREAD=REFERENCES step 5 needs to know.
//!
//! Every step removes at least one byte or ends the loop, so the work is bounded by the square
//! of the subject's length at worst; the cache keeps subjects to `SUBJECT_BYTES_MAX`.

/// A base subject and whether removing reply/forward markers produced it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BaseSubject {
    /// The base subject (may be empty).
    pub text: String,
    /// A `Re:`/`Fw:`/`Fwd:` leader, a `(fwd)` trailer or a `[fwd: ...]` wrapper was removed.
    pub reply_or_forward: bool,
}

/// The base subject of a decoded Subject value (RFC 5256 §2.1).
#[must_use]
pub fn base_subject(decoded: &str) -> BaseSubject {
    let mut text = fold_white_space(decoded);
    let mut reply_or_forward = false;
    loop {
        // (2)
        loop {
            let trimmed = text.trim_end_matches([' ']);
            let cut = if trimmed.len() != text.len() {
                trimmed.len()
            } else if ends_with_ignore_case(&text, "(fwd)") {
                reply_or_forward = true;
                text.len() - "(fwd)".len()
            } else {
                break;
            };
            text.truncate(cut);
        }
        // (3), (4), (5)
        loop {
            let mut changed = false;
            while let Some(leader) = leader_len(&text) {
                if is_refwd_leader(&text[..leader]) {
                    reply_or_forward = true;
                }
                text.drain(..leader);
                changed = true;
            }
            if let Some(blob) = blob_len(text.as_bytes(), 0)
                && blob < text.len()
            {
                text.drain(..blob);
                changed = true;
            }
            if !changed {
                break;
            }
        }
        // (6)
        let bytes = text.as_bytes();
        if bytes.len() >= "[fwd:]".len()
            && bytes[..5].eq_ignore_ascii_case(b"[fwd:")
            && bytes[bytes.len() - 1] == b']'
        {
            reply_or_forward = true;
            text = text[5..text.len() - 1].to_owned();
            continue;
        }
        return BaseSubject { text, reply_or_forward };
    }
}

/// Step (1)'s second half: tabs, CR and LF become spaces and runs of spaces one space.
fn fold_white_space(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            if !space {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
    out
}

fn ends_with_ignore_case(text: &str, suffix: &str) -> bool {
    let (text, suffix) = (text.as_bytes(), suffix.as_bytes());
    text.len() >= suffix.len() && text[text.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// `subj-blob = "[" *BLOBCHAR "]" *WSP` at `at`: its length, or `None`.
fn blob_len(bytes: &[u8], at: usize) -> Option<usize> {
    if bytes.get(at) != Some(&b'[') {
        return None;
    }
    let close = bytes[at + 1..].iter().position(|&b| b == b'[' || b == b']')?;
    let end = at + 1 + close;
    if bytes[end] != b']' {
        return None;
    }
    let after = end + 1;
    let spaces = bytes[after..].iter().take_while(|&&b| b == b' ').count();
    Some(after + spaces - at)
}

/// `subj-leader = (*subj-blob subj-refwd) / WSP` at the start: its length, or `None`.
fn leader_len(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    if bytes.first() == Some(&b' ') {
        return Some(1);
    }
    let mut at = 0;
    while let Some(blob) = blob_len(bytes, at) {
        at += blob;
    }
    refwd_len(bytes, at).map(|refwd| at + refwd)
}

/// `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"` at `at`: its length, or `None`.
fn refwd_len(bytes: &[u8], at: usize) -> Option<usize> {
    let rest = &bytes[at..];
    let word = if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"fwd") {
        3
    } else if rest.len() >= 2
        && (rest[..2].eq_ignore_ascii_case(b"re") || rest[..2].eq_ignore_ascii_case(b"fw"))
    {
        2
    } else {
        return None;
    };
    let mut end = word + rest[word..].iter().take_while(|&&b| b == b' ').count();
    if let Some(blob) = blob_len(rest, end) {
        end += blob;
    }
    (rest.get(end) == Some(&b':')).then_some(end + 1)
}

/// True when a removed leader held a subj-refwd (not white space alone).
fn is_refwd_leader(leader: &str) -> bool {
    leader != " "
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(text: &str) -> (String, bool) {
        let b = base_subject(text);
        (b.text, b.reply_or_forward)
    }

    #[test]
    fn plain_subjects_are_kept_with_white_space_folded() {
        assert_eq!(base("hello"), ("hello".into(), false));
        assert_eq!(base("  hello \t  world  "), ("hello world".into(), false));
        assert_eq!(base(""), (String::new(), false));
    }

    #[test]
    fn reply_and_forward_leaders_are_removed() {
        assert_eq!(base("Re: hello"), ("hello".into(), true));
        assert_eq!(base("RE: Re: re:hello"), ("hello".into(), true));
        assert_eq!(base("Fwd: hello"), ("hello".into(), true));
        assert_eq!(base("FW: hello"), ("hello".into(), true));
        assert_eq!(base("Re [2]: hello"), ("hello".into(), true));
        assert_eq!(base("[list] Re: hello"), ("hello".into(), true));
        assert_eq!(base("Re : hello"), ("hello".into(), true));
    }

    #[test]
    fn a_leading_blob_goes_only_when_text_remains() {
        assert_eq!(base("[list] hello"), ("hello".into(), false));
        assert_eq!(base("[list]"), ("[list]".into(), false));
        assert_eq!(base("[a][b] hello"), ("hello".into(), false));
        assert_eq!(base("[a] [b]"), ("[b]".into(), false));
    }

    #[test]
    fn trailers_and_forward_wrappers_are_removed() {
        assert_eq!(base("hello (fwd)"), ("hello".into(), true));
        assert_eq!(base("hello (FWD) (fwd)  "), ("hello".into(), true));
        assert_eq!(base("[Fwd: hello]"), ("hello".into(), true));
        assert_eq!(base("[fwd: Re: [fwd: hello (fwd)]]"), ("hello".into(), true));
    }

    #[test]
    fn words_that_only_start_like_leaders_stay() {
        assert_eq!(base("Reply needed"), ("Reply needed".into(), false));
        assert_eq!(base("Re hello"), ("Re hello".into(), false));
        assert_eq!(base("Fwdx: hello"), ("Fwdx: hello".into(), false));
        assert_eq!(base("[unclosed hello"), ("[unclosed hello".into(), false));
    }

    #[test]
    fn non_ascii_text_is_handled_by_characters() {
        assert_eq!(base("Re: Grüße  aus\tKöln"), ("Grüße aus Köln".into(), true));
        assert_eq!(base("[ü] Re: ß"), ("ß".into(), true));
    }
}
