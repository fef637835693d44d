//! RFC 5322 address lists (§3.4) read into the IMAP ENVELOPE address form
//! (RFC 9051 §7.5.2: name, source route, mailbox, host), leniently.
//!
//! Display names keep encoded words as sent (servers report raw header text; clients decode).
//! Group syntax becomes the IMAP group markers: `(NIL NIL "group" NIL)` ... `(NIL NIL NIL NIL)`.
//! An address without a domain gets the host `.MISSING-HOST-NAME.` and one without a local part
//! the mailbox `MISSING_MAILBOX` (the c-client convention), so neither reads as a group marker.
//! Parsing is a flat loop over tokens: nothing recurses, and the list is capped at
//! [`ENVELOPE_ADDRESSES_MAX`].

use std::borrow::Cow;

use super::header::is_wsp;
use super::limits::ENVELOPE_ADDRESSES_MAX;

/// Host reported for an address that has no domain.
pub(crate) const MISSING_HOST: &[u8] = b".MISSING-HOST-NAME.";
/// Mailbox reported for an address that has a domain but no local part.
pub(crate) const MISSING_MAILBOX: &[u8] = b"MISSING_MAILBOX";

/// One ENVELOPE address structure.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Address {
    /// `addr-name`: the display name (phrase), or a trailing comment when there is none.
    pub name: Option<Vec<u8>>,
    /// `addr-adl`: the obsolete source route, e.g. `@a,@b`.
    pub adl: Option<Vec<u8>>,
    /// `addr-mailbox`: the local part, or the group name in a group start marker.
    pub mailbox: Option<Vec<u8>>,
    /// `addr-host`: the domain; `None` only in group markers.
    pub host: Option<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// A run of atext (8-bit bytes included, RFC 6532).
    Atom,
    /// A quoted string; `text` holds its unescaped content.
    Quoted,
    /// A domain literal `[...]`, raw.
    Literal,
    /// One of `< > @ , ; : .`
    Special(u8),
}

/// A token of a header value. Only a quoted string's content is copied (it is unescaped);
/// everything else borrows the value, as most tokens of common headers are atoms and
/// specials (two allocations per token were half the cost of an ENVELOPE).
#[derive(Clone, Debug)]
struct Token<'v> {
    kind: Kind,
    /// Content: unescaped for quoted strings, raw otherwise.
    text: Cow<'v, [u8]>,
    /// Raw bytes as sent (quotes included).
    raw: &'v [u8],
    /// White space or a comment came before this token.
    spaced: bool,
    /// The comment right before this token, if any.
    comment: Option<Vec<u8>>,
}

fn is_special(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b':' | b';' | b'@' | b'\\' | b',' | b'.' | b'"'
    )
}

/// Splits a header value into tokens; comments attach to the token that follows them (a
/// final comment attaches to an end marker that is not returned but kept in `trailing`).
fn tokenize(value: &[u8]) -> (Vec<Token<'_>>, Option<Vec<u8>>) {
    let mut tokens = Vec::new();
    let mut position = 0;
    let mut spaced = false;
    let mut comment: Option<Vec<u8>> = None;
    while position < value.len() {
        let b = value[position];
        let start = position;
        let (kind, text) = match b {
            _ if is_wsp(b) || b == b'\r' || b == b'\n' => {
                spaced = true;
                position += 1;
                continue;
            }
            b'(' => {
                let (content, end) = delimited(value, position, b'(', b')');
                comment = Some(content);
                spaced = true;
                position = end;
                continue;
            }
            b'"' => {
                let (content, end) = delimited(value, position, b'"', b'"');
                position = end;
                (Kind::Quoted, Cow::Owned(content))
            }
            b'[' => {
                let end = value[position..]
                    .iter()
                    .position(|&c| c == b']')
                    .map_or(value.len(), |i| position + i + 1);
                position = end;
                (Kind::Literal, Cow::Borrowed(&value[start..end]))
            }
            b')' | b']' | b'\\' => {
                position += 1;
                continue;
            }
            _ if is_special(b) => {
                position += 1;
                (Kind::Special(b), Cow::Borrowed(&value[start..position]))
            }
            _ => {
                while position < value.len()
                    && !is_special(value[position])
                    && value[position] > b' '
                    && value[position] != 0x7f
                {
                    position += 1;
                }
                if position == start {
                    position += 1;
                    continue;
                }
                (Kind::Atom, Cow::Borrowed(&value[start..position]))
            }
        };
        let raw = &value[start..position];
        tokens.push(Token { kind, text, raw, spaced, comment: comment.take() });
        spaced = false;
    }
    (tokens, comment)
}

/// Content of a quoted string or comment starting at `start` (the opening byte), unescaped,
/// and the position after it. Comments nest; an unterminated one runs to the end.
fn delimited(value: &[u8], start: usize, open: u8, close: u8) -> (Vec<u8>, usize) {
    let mut content = Vec::new();
    let mut depth = 1usize;
    let mut position = start + 1;
    while position < value.len() {
        let b = value[position];
        position += 1;
        if b == b'\\' && position < value.len() {
            content.push(value[position]);
            position += 1;
        } else if b == close {
            depth -= 1;
            if depth == 0 {
                break;
            }
            content.push(b);
        } else {
            if b == open && open != close {
                depth += 1;
            }
            content.push(b);
        }
    }
    (content, position)
}

/// Parses an address-list header value (unfolded). Returns no addresses for an empty or
/// unusable value; the caller reports that as NIL.
pub(crate) fn parse_address_list(value: &[u8]) -> Vec<Address> {
    let (tokens, trailing) = tokenize(value);
    let mut parser = Parser { tokens: &tokens, position: 0, out: Vec::new(), trailing };
    parser.run();
    parser.out
}

struct Parser<'a> {
    tokens: &'a [Token<'a>],
    position: usize,
    out: Vec<Address>,
    trailing: Option<Vec<u8>>,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&Kind> {
        self.tokens.get(self.position).map(|t| &t.kind)
    }

    fn push(&mut self, address: Address) {
        if self.out.len() < ENVELOPE_ADDRESSES_MAX {
            self.out.push(address);
        }
    }

    fn run(&mut self) {
        let mut in_group = false;
        loop {
            let phrase_start = self.position;
            while matches!(
                self.peek(),
                Some(Kind::Atom | Kind::Quoted | Kind::Literal | Kind::Special(b'.' | b'>'))
            ) {
                self.position += 1;
            }
            let tokens = self.tokens;
            let phrase = &tokens[phrase_start..self.position];
            let comment = self.comment_here();
            match self.peek() {
                Some(Kind::Special(b':')) if !in_group => {
                    self.position += 1;
                    in_group = true;
                    self.push(Address { mailbox: Some(display(phrase)), ..Address::default() });
                }
                Some(Kind::Special(b'<')) => {
                    self.position += 1;
                    self.angle_address(phrase);
                }
                Some(Kind::Special(b'@')) => {
                    self.position += 1;
                    self.addr_spec(phrase);
                }
                Some(Kind::Special(b';')) if in_group => {
                    self.position += 1;
                    self.bare(phrase, comment);
                    in_group = false;
                    self.push(Address::default());
                }
                Some(_) => {
                    // `,`, a stray `;` or `:`: ends an item.
                    self.position += 1;
                    self.bare(phrase, comment);
                }
                None => {
                    self.bare(phrase, comment);
                    if in_group {
                        self.push(Address::default());
                    }
                    return;
                }
            }
        }
    }

    /// A phrase that was not followed by an address: a local part without a domain.
    fn bare(&mut self, phrase: &[Token], name: Option<Vec<u8>>) {
        if phrase.is_empty() {
            return;
        }
        self.push(Address {
            name,
            adl: None,
            mailbox: Some(concatenated(phrase)),
            host: Some(MISSING_HOST.to_vec()),
        });
    }

    /// `local "@" domain` with the local part already read as `phrase` and `@` consumed.
    fn addr_spec(&mut self, local: &[Token]) {
        let domain = self.domain();
        let name = self.comment_here();
        let mailbox = if local.is_empty() { MISSING_MAILBOX.to_vec() } else { concatenated(local) };
        let host = if domain.is_empty() { MISSING_HOST.to_vec() } else { concatenated(domain) };
        self.push(Address { name, adl: None, mailbox: Some(mailbox), host: Some(host) });
    }

    /// The comment right after the last token read: on the next token, or at the very end.
    fn comment_here(&self) -> Option<Vec<u8>> {
        match self.tokens.get(self.position) {
            Some(next) => next.comment.clone(),
            None => self.trailing.clone(),
        }
    }

    /// Tokens of a domain: atoms, dots and literals.
    fn domain(&mut self) -> &'a [Token<'a>] {
        let tokens = self.tokens;
        let start = self.position;
        while matches!(self.peek(), Some(Kind::Atom | Kind::Literal | Kind::Special(b'.'))) {
            self.position += 1;
        }
        &tokens[start..self.position]
    }

    /// `"<" [route ":"] local "@" domain ">"` after `<`.
    fn angle_address(&mut self, phrase: &[Token]) {
        let name = if phrase.is_empty() { None } else { Some(display(phrase)) };
        let mut adl = None;
        if self.peek() == Some(&Kind::Special(b'@')) {
            let start = self.position;
            while !matches!(self.peek(), None | Some(Kind::Special(b':' | b'>'))) {
                self.position += 1;
            }
            adl = Some(concatenated(&self.tokens[start..self.position]));
            if self.peek() == Some(&Kind::Special(b':')) {
                self.position += 1;
            }
        }
        let tokens = self.tokens;
        let local_start = self.position;
        while matches!(self.peek(), Some(Kind::Atom | Kind::Quoted | Kind::Special(b'.'))) {
            self.position += 1;
        }
        let local = &tokens[local_start..self.position];
        let mut domain: &[Token] = &[];
        if self.peek() == Some(&Kind::Special(b'@')) {
            self.position += 1;
            domain = self.domain();
        }
        // Skip anything else up to the closing `>`.
        while !matches!(self.peek(), None | Some(Kind::Special(b'>'))) {
            self.position += 1;
        }
        if self.peek().is_some() {
            self.position += 1;
        }
        if local.is_empty() && domain.is_empty() {
            return; // `<>`: no address at all.
        }
        let mailbox = if local.is_empty() { MISSING_MAILBOX.to_vec() } else { concatenated(local) };
        let host = if domain.is_empty() { MISSING_HOST.to_vec() } else { concatenated(domain) };
        self.push(Address { name, adl, mailbox: Some(mailbox), host: Some(host) });
    }
}

/// A display phrase: quoted strings unquoted, one space where the source had white space.
fn display(tokens: &[Token]) -> Vec<u8> {
    let mut out = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        if index > 0 && token.spaced {
            out.push(b' ');
        }
        out.extend_from_slice(&token.text);
    }
    out
}

/// Tokens as sent, without the white space or comments between them.
fn concatenated(tokens: &[Token]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tokens.iter().map(|t| t.raw.len()).sum());
    for token in tokens {
        out.extend_from_slice(token.raw);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(name: Option<&str>, mailbox: &str, host: &str) -> Address {
        Address {
            name: name.map(|n| n.as_bytes().to_vec()),
            adl: None,
            mailbox: Some(mailbox.as_bytes().to_vec()),
            host: Some(host.as_bytes().to_vec()),
        }
    }

    #[test]
    fn common_forms() {
        assert_eq!(
            parse_address_list(b"\"Doe, John\" <john.doe@example.com>, jane@example.org (Jane)"),
            vec![
                address(Some("Doe, John"), "john.doe", "example.com"),
                address(Some("Jane"), "jane", "example.org"),
            ]
        );
        assert_eq!(
            parse_address_list(b"John Q. Public <JQB@bar.com>"),
            vec![address(Some("John Q. Public"), "JQB", "bar.com")]
        );
        assert_eq!(
            parse_address_list(b"=?utf-8?q?J=C3=B6rg?= <j@x.de>"),
            vec![address(Some("=?utf-8?q?J=C3=B6rg?="), "j", "x.de")]
        );
        assert_eq!(parse_address_list(b""), vec![]);
        assert_eq!(parse_address_list(b"<>"), vec![]);
    }

    #[test]
    fn groups_routes_and_missing_parts() {
        let group = parse_address_list(b"A Group: a@b.c, <d@e.f>; undisclosed-recipients:;");
        assert_eq!(group.len(), 6);
        assert_eq!(group[0], Address { mailbox: Some(b"A Group".to_vec()), ..Address::default() });
        assert_eq!(group[1], address(None, "a", "b.c"));
        assert_eq!(group[2], address(None, "d", "e.f"));
        assert_eq!(group[3], Address::default());
        assert_eq!(group[5], Address::default());
        let routed = parse_address_list(b"<@r1,@r2:x@y>");
        assert_eq!(routed[0].adl.as_deref(), Some(&b"@r1,@r2"[..]));
        assert_eq!(parse_address_list(b"root"), vec![address(None, "root", ".MISSING-HOST-NAME.")]);
        assert_eq!(parse_address_list(b"@x"), vec![address(None, "MISSING_MAILBOX", "x")]);
        let unclosed = parse_address_list(b"g: a@b");
        assert_eq!(unclosed.last(), Some(&Address::default()));
    }

    #[test]
    fn rfc5322_appendix_a5_comments() {
        let list =
            parse_address_list(b"Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>");
        assert_eq!(list, vec![address(Some("Pete"), "pete", "silly.test")]);
        let group = parse_address_list(
            b"A Group(Some people):Chris Jones <c@(Chris's host.)public.example>, \
joe@example.org, John <jdoe@one.test> (my dear friend); (the end of the group)",
        );
        assert_eq!(group.len(), 5);
        assert_eq!(group[0].mailbox.as_deref(), Some(&b"A Group"[..]));
        assert_eq!(group[1], address(Some("Chris Jones"), "c", "public.example"));
        assert_eq!(group[2], address(None, "joe", "example.org"));
        assert_eq!(group[3], address(Some("John"), "jdoe", "one.test"));
        assert_eq!(group[4], Address::default());
    }

    #[test]
    fn junk_does_not_panic() {
        for value in
            [&b"<<<>>>,,;;::@@"[..], b"\"unterminated", b"(((", b"a@", b"<a@", b"\\", b"[x"]
        {
            let _ = parse_address_list(value);
        }
    }
}
