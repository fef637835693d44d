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
use super::imap_text::nstring;
use super::limits::ENVELOPE_ADDRESSES_MAX;

/// Host reported for an address that has no domain.
pub(crate) const MISSING_HOST: &[u8] = b".MISSING-HOST-NAME.";
/// Mailbox reported for an address that has a domain but no local part.
pub(crate) const MISSING_MAILBOX: &[u8] = b"MISSING_MAILBOX";

/// One ENVELOPE address structure, owned (the unit tests compare these).
#[cfg(test)]
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

/// One address as the parser finds it, borrowing the header value wherever the output bytes
/// are a slice of it (the common case: one-token names, mailboxes and domains).
#[derive(Default)]
struct Found<'v> {
    name: Option<Cow<'v, [u8]>>,
    adl: Option<Cow<'v, [u8]>>,
    mailbox: Option<Cow<'v, [u8]>>,
    host: Option<Cow<'v, [u8]>>,
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
    /// Offset of `raw` in the value.
    start: usize,
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
    // Common values (a name and an address) have about ten tokens: one allocation, no growth.
    let mut tokens = Vec::with_capacity(16);
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
                let stop = value[start + 1..].iter().position(|&c| c == b'"' || c == b'\\');
                match stop {
                    // No escapes: the content is a slice of the value.
                    Some(i) if value[start + 1 + i] == b'"' => {
                        position = start + 2 + i;
                        (Kind::Quoted, Cow::Borrowed(&value[start + 1..start + 1 + i]))
                    }
                    _ => {
                        let (content, end) = delimited(value, position, b'"', b'"');
                        position = end;
                        (Kind::Quoted, Cow::Owned(content))
                    }
                }
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
        tokens.push(Token { kind, text, raw, start, spaced, comment: comment.take() });
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

/// Calls `each` with every address of an address-list header value (unfolded) in its plain
/// form, `local@domain` (the local part unquoted, no comments or spaces), or the local part
/// alone when there is no domain. Group markers are skipped.
pub(crate) fn for_each_plain_address(value: &[u8], mut each: impl FnMut(&[u8])) {
    let mut plain = Vec::new();
    parse(value, |found| {
        let (Some(mailbox), Some(host)) = (found.mailbox, found.host) else { return };
        if mailbox.as_ref() == MISSING_MAILBOX {
            return;
        }
        plain.clear();
        match mailbox.strip_prefix(b"\"").and_then(|rest| rest.strip_suffix(b"\"")) {
            // A quoted local part, unquoted: `"user"@x` is `user@x`.
            Some(quoted) => {
                let mut escaped = false;
                for &byte in quoted {
                    if byte == b'\\' && !escaped {
                        escaped = true;
                        continue;
                    }
                    escaped = false;
                    plain.push(byte);
                }
            }
            None => plain.extend_from_slice(&mailbox),
        }
        if host.as_ref() != MISSING_HOST {
            plain.push(b'@');
            plain.extend_from_slice(&host);
        }
        each(&plain);
    });
}

/// Parses an address-list header value (unfolded). Returns no addresses for an empty or
/// unusable value; the caller reports that as NIL.
#[cfg(test)]
pub(crate) fn parse_address_list(value: &[u8]) -> Vec<Address> {
    let mut out = Vec::new();
    parse(value, |found| {
        out.push(Address {
            name: found.name.map(Cow::into_owned),
            adl: found.adl.map(Cow::into_owned),
            mailbox: found.mailbox.map(Cow::into_owned),
            host: found.host.map(Cow::into_owned),
        });
    });
    out
}

/// Writes the address list in `value` as the ENVELOPE form `"(" 1*address ")"` straight into
/// `out`, and returns true; writes nothing and returns false when it holds no address (the
/// caller writes NIL or, for Sender and Reply-To, From's list).
pub(crate) fn write_address_list(out: &mut Vec<u8>, value: &[u8]) -> bool {
    let start = out.len();
    out.push(b'(');
    let mut any = false;
    parse(value, |found| {
        any = true;
        out.push(b'(');
        nstring(out, found.name.as_deref());
        out.push(b' ');
        nstring(out, found.adl.as_deref());
        out.push(b' ');
        nstring(out, found.mailbox.as_deref());
        out.push(b' ');
        nstring(out, found.host.as_deref());
        out.push(b')');
    });
    if any {
        out.push(b')');
    } else {
        out.truncate(start);
    }
    any
}

/// Parses `value`, handing each address to `sink` in order (at most
/// [`ENVELOPE_ADDRESSES_MAX`] of them).
fn parse<'v>(value: &'v [u8], sink: impl FnMut(Found<'v>)) {
    let (tokens, trailing) = tokenize(value);
    let mut parser = Parser { value, tokens: &tokens, position: 0, count: 0, sink, trailing };
    parser.run();
}

struct Parser<'a, 'v, F> {
    value: &'v [u8],
    tokens: &'a [Token<'v>],
    position: usize,
    /// Addresses handed to `sink` so far.
    count: usize,
    sink: F,
    trailing: Option<Vec<u8>>,
}

impl<'a, 'v, F: FnMut(Found<'v>)> Parser<'a, 'v, F> {
    fn peek(&self) -> Option<&Kind> {
        self.tokens.get(self.position).map(|t| &t.kind)
    }

    fn push(&mut self, address: Found<'v>) {
        if self.count < ENVELOPE_ADDRESSES_MAX {
            self.count += 1;
            (self.sink)(address);
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
                    let mailbox = Some(display(self.value, phrase));
                    self.push(Found { mailbox, ..Found::default() });
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
                    self.push(Found::default());
                }
                Some(_) => {
                    // `,`, a stray `;` or `:`: ends an item.
                    self.position += 1;
                    self.bare(phrase, comment);
                }
                None => {
                    self.bare(phrase, comment);
                    if in_group {
                        self.push(Found::default());
                    }
                    return;
                }
            }
        }
    }

    /// A phrase that was not followed by an address: a local part without a domain.
    fn bare(&mut self, phrase: &[Token<'v>], name: Option<Vec<u8>>) {
        if phrase.is_empty() {
            return;
        }
        self.push(Found {
            name: name.map(Cow::Owned),
            adl: None,
            mailbox: Some(concatenated(self.value, phrase)),
            host: Some(Cow::Borrowed(MISSING_HOST)),
        });
    }

    /// `local "@" domain` with the local part already read as `phrase` and `@` consumed.
    fn addr_spec(&mut self, local: &[Token<'v>]) {
        let domain = self.domain();
        let name = self.comment_here().map(Cow::Owned);
        let (mailbox, host) = self.mailbox_host(local, domain);
        self.push(Found { name, adl: None, mailbox: Some(mailbox), host: Some(host) });
    }

    /// Mailbox and host from the tokens of a local part and a domain, either possibly empty.
    fn mailbox_host(
        &self,
        local: &[Token<'v>],
        domain: &[Token<'v>],
    ) -> (Cow<'v, [u8]>, Cow<'v, [u8]>) {
        let mailbox = if local.is_empty() {
            Cow::Borrowed(MISSING_MAILBOX)
        } else {
            concatenated(self.value, local)
        };
        let host = if domain.is_empty() {
            Cow::Borrowed(MISSING_HOST)
        } else {
            concatenated(self.value, domain)
        };
        (mailbox, host)
    }

    /// The comment right after the last token read: on the next token, or at the very end.
    fn comment_here(&self) -> Option<Vec<u8>> {
        match self.tokens.get(self.position) {
            Some(next) => next.comment.clone(),
            None => self.trailing.clone(),
        }
    }

    /// Tokens of a domain: atoms, dots and literals.
    fn domain(&mut self) -> &'a [Token<'v>] {
        let tokens = self.tokens;
        let start = self.position;
        while matches!(self.peek(), Some(Kind::Atom | Kind::Literal | Kind::Special(b'.'))) {
            self.position += 1;
        }
        &tokens[start..self.position]
    }

    /// `"<" [route ":"] local "@" domain ">"` after `<`.
    fn angle_address(&mut self, phrase: &[Token<'v>]) {
        let name = if phrase.is_empty() { None } else { Some(display(self.value, phrase)) };
        let mut adl = None;
        if self.peek() == Some(&Kind::Special(b'@')) {
            let start = self.position;
            while !matches!(self.peek(), None | Some(Kind::Special(b':' | b'>'))) {
                self.position += 1;
            }
            adl = Some(concatenated(self.value, &self.tokens[start..self.position]));
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
        let (mailbox, host) = self.mailbox_host(local, domain);
        self.push(Found { name, adl, mailbox: Some(mailbox), host: Some(host) });
    }
}

/// A display phrase: quoted strings unquoted, one space where the source had white space.
/// Borrowed from `value` when that is already what the source holds (one token, or unquoted
/// tokens separated by single spaces).
fn display<'v>(value: &'v [u8], tokens: &[Token<'v>]) -> Cow<'v, [u8]> {
    if let [one] = tokens {
        return one.text.clone();
    }
    let as_sent = tokens.windows(2).all(|pair| {
        let gap = &value[pair[0].start + pair[0].raw.len()..pair[1].start];
        pair[1].kind != Kind::Quoted && gap == if pair[1].spaced { &b" "[..] } else { b"" }
    });
    if as_sent && tokens.first().is_some_and(|t| t.kind != Kind::Quoted) {
        return Cow::Borrowed(span(value, tokens));
    }
    let mut out = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        if index > 0 && token.spaced {
            out.push(b' ');
        }
        out.extend_from_slice(&token.text);
    }
    Cow::Owned(out)
}

/// The bytes of `value` from the first token to the end of the last (empty for no tokens).
fn span<'v>(value: &'v [u8], tokens: &[Token<'v>]) -> &'v [u8] {
    match (tokens.first(), tokens.last()) {
        (Some(first), Some(last)) => &value[first.start..last.start + last.raw.len()],
        _ => &[],
    }
}

/// Tokens as sent, without the white space or comments between them; borrowed from `value`
/// when nothing came between them.
fn concatenated<'v>(value: &'v [u8], tokens: &[Token<'v>]) -> Cow<'v, [u8]> {
    let adjacent = tokens.windows(2).all(|pair| pair[0].start + pair[0].raw.len() == pair[1].start);
    if adjacent {
        return Cow::Borrowed(span(value, tokens));
    }
    let mut out = Vec::with_capacity(tokens.iter().map(|t| t.raw.len()).sum());
    for token in tokens {
        out.extend_from_slice(token.raw);
    }
    Cow::Owned(out)
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
