//! Postfix's socketmap lookup protocol (socketmap_table(5)), server side, sans-IO: the role
//! Cyrus's smmapd plays, so Postfix can ask skua at `RCPT` time whether a recipient exists
//! and whether it has room.
//!
//! Each request and each reply is one netstring (`len ":" bytes ","`, length in decimal ASCII
//! without leading zeros). A request is `name SP key`; a reply is `OK SP data`,
//! `NOTFOUND SP`, `TEMP SP reason`, `TIMEOUT SP reason` or `PERM SP reason`. The client sends
//! one request and waits for its reply; it may keep the connection for more.
//!
//! ```text
//!  feed(bytes) ─► next():
//!    no whole netstring yet ─────────────────────► NeedInput
//!    a netstring, "name key" with a known map ───► Lookup{map, key} ─ answer(reply) ─► Write
//!    a netstring with bad content (no space,     ─► Write(PERM ...)   (framing intact: the
//!      unknown map, empty key, not UTF-8)                              connection goes on)
//!    broken framing (not a digit, leading zero,  ─► Write(PERM ...), then Close
//!      too long, no comma): cannot resynchronise
//! ```
//!
//! Bounded: a request longer than [`REQUEST_BYTES_MAX`] is refused as soon as its length
//! prefix says so, before its bytes arrive; the buffer never holds more than one request plus
//! what one read brought. Replies are shorter than Postfix's 100000-byte ceiling by
//! construction ([`REPLY_TEXT_BYTES_MAX`]).

/// The longest request (`name SP key`) taken: an address is at most a few hundred bytes
/// (RFC 5321 §4.5.3.1: 64 for the local part, 255 for the domain); this leaves room for
/// UTF-8 addresses and the map name without letting a client make us buffer much.
pub const REQUEST_BYTES_MAX: usize = 4096;
/// The longest reply data or reason this server writes. Postfix's client accepts at most
/// 100000 characters (socketmap_table(5), "REPLY FORMAT").
pub const REPLY_TEXT_BYTES_MAX: usize = 1024;
/// Digits of the longest length prefix taken (`4096` has four).
const LENGTH_DIGITS_MAX: usize = 4;
const _: () = assert!(REQUEST_BYTES_MAX < 10_000 && REQUEST_BYTES_MAX >= 1000);
const _: () = assert!(REPLY_TEXT_BYTES_MAX + 16 < 100_000);

/// The maps skua serves, by the name Postfix sends (the last field of
/// `socketmap:inet:host:port:NAME` in main.cf).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapName {
    /// `user`: does this address reach a user, as LMTP `RCPT` would resolve it? `OK user`.
    User,
    /// `quota`: is the user this address reaches over quota? `OK 552 5.2.2 ...` (an access(5)
    /// action: reject) when it is, `NOTFOUND` otherwise.
    Quota,
}

impl MapName {
    /// The map called `name`, if skua serves one by that name.
    #[must_use]
    pub fn from_name(name: &[u8]) -> Option<MapName> {
        match name {
            b"user" => Some(MapName::User),
            b"quota" => Some(MapName::Quota),
            _ => None,
        }
    }

    /// The name Postfix uses for it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            MapName::User => "user",
            MapName::Quota => "quota",
        }
    }
}

/// One look-up to answer: which map, which key (non-empty UTF-8, at most
/// [`REQUEST_BYTES_MAX`] bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// The map asked.
    pub map: MapName,
    /// The key, as sent (Postfix has already folded its case where the table asks for it).
    pub key: String,
}

/// A reply, as socketmap_table(5) lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `OK data`: found.
    Ok(String),
    /// `NOTFOUND `: not found.
    NotFound,
    /// `TEMP reason`: failed, try again later.
    Temp(String),
    /// `TIMEOUT reason`: failed for lack of time.
    Timeout(String),
    /// `PERM reason`: failed, asking again will not help.
    Perm(String),
}

impl Reply {
    /// The reply as a netstring. Data and reasons are cut to [`REPLY_TEXT_BYTES_MAX`] bytes
    /// (at a character boundary); control characters become spaces, so a reason never breaks
    /// the line Postfix logs it on.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let (word, text) = match self {
            Reply::Ok(data) => ("OK", data.as_str()),
            Reply::NotFound => ("NOTFOUND", ""),
            Reply::Temp(reason) => ("TEMP", reason.as_str()),
            Reply::Timeout(reason) => ("TIMEOUT", reason.as_str()),
            Reply::Perm(reason) => ("PERM", reason.as_str()),
        };
        let mut end = text.len().min(REPLY_TEXT_BYTES_MAX);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let text: String =
            text[..end].chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        let body = format!("{word} {text}");
        let mut out = format!("{}:", body.len()).into_bytes();
        out.extend_from_slice(body.as_bytes());
        out.push(b',');
        out
    }
}

/// What the connection does next.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub enum SocketmapStep {
    /// Read more bytes and [`SocketmapSession::feed`] them.
    NeedInput,
    /// Answer this with [`SocketmapSession::answer`], then call `next` again.
    Lookup(Lookup),
    /// Write these bytes (one reply), then call `next` again.
    Write(Vec<u8>),
    /// Close the connection (after a framing error's reply was written).
    Close,
}

/// Why a netstring could not be framed: the stream cannot be resynchronised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// The length prefix has something other than a digit before the colon.
    #[error("netstring length is not a decimal number")]
    NotADigit,
    /// The length prefix starts with 0 and is not the empty string's `0:`.
    #[error("netstring length has a leading zero")]
    LeadingZero,
    /// The length is over [`REQUEST_BYTES_MAX`].
    #[error("request longer than {REQUEST_BYTES_MAX} bytes")]
    TooLong,
    /// The byte after the string is not a comma.
    #[error("netstring does not end with a comma")]
    NoComma,
}

/// Where the session is.
#[derive(Debug, PartialEq, Eq)]
enum State {
    /// Reading requests.
    Reading,
    /// A [`SocketmapStep::Lookup`] was handed out; its answer is due.
    Answering,
    /// The reply to a framing error is written; close next.
    Closing,
}

/// One socketmap connection. Calling order: [`feed`](Self::feed) what was read, then
/// [`next`](Self::next) until it says [`SocketmapStep::NeedInput`] (read again) or
/// [`SocketmapStep::Close`]; after a [`SocketmapStep::Lookup`], call
/// [`answer`](Self::answer) before the next `next`.
#[derive(Debug)]
pub struct SocketmapSession {
    buffer: Vec<u8>,
    state: State,
    /// The reply to write at the next `next`.
    pending: Option<Vec<u8>>,
}

impl Default for SocketmapSession {
    fn default() -> Self {
        Self::new()
    }
}

impl SocketmapSession {
    /// A session with nothing read yet.
    #[must_use]
    pub fn new() -> SocketmapSession {
        SocketmapSession { buffer: Vec::new(), state: State::Reading, pending: None }
    }

    /// Adds bytes read from the client. The caller reads only after
    /// [`SocketmapStep::NeedInput`], at most one read buffer at a time, which keeps the buffer
    /// under one request plus one read.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.state != State::Closing {
            self.buffer.extend_from_slice(bytes);
        }
    }

    /// True while part of a request is buffered (for a read timeout's message, and to tell a
    /// clean close from a cut one).
    #[must_use]
    pub fn has_partial_request(&self) -> bool {
        !self.buffer.is_empty()
    }

    /// Bytes buffered now: at most one request plus what the last read brought.
    #[must_use]
    pub fn buffered_len(&self) -> usize {
        self.buffer.len()
    }

    /// The next step. (Named like the other sessions' `next`; not an iterator: a step may
    /// need an answer before the following one.)
    ///
    /// # Panics
    /// A [`SocketmapStep::Lookup`] handed out earlier has no [`answer`](Self::answer) yet
    /// (a bug in the caller).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> SocketmapStep {
        assert!(self.state != State::Answering, "a lookup is waiting for its answer");
        if let Some(reply) = self.pending.take() {
            return SocketmapStep::Write(reply);
        }
        if self.state == State::Closing {
            return SocketmapStep::Close;
        }
        match frame(&self.buffer) {
            Ok(None) => SocketmapStep::NeedInput,
            Err(error) => {
                self.state = State::Closing;
                self.buffer = Vec::new();
                SocketmapStep::Write(Reply::Perm(error.to_string()).encode())
            }
            Ok(Some((start, end))) => {
                let request = parse_request(&self.buffer[start..end]);
                self.buffer.drain(..=end); // the string and its comma
                match request {
                    Ok(lookup) => {
                        self.state = State::Answering;
                        SocketmapStep::Lookup(lookup)
                    }
                    Err(reason) => SocketmapStep::Write(Reply::Perm(reason.to_owned()).encode()),
                }
            }
        }
    }

    /// The answer to the last [`SocketmapStep::Lookup`]; the next `next` writes it.
    ///
    /// # Panics
    /// No lookup is waiting for an answer (a bug in the caller).
    pub fn answer(&mut self, reply: &Reply) {
        assert!(self.state == State::Answering, "no lookup is waiting for an answer");
        self.state = State::Reading;
        self.pending = Some(reply.encode());
    }
}

/// The string of the first netstring in `buffer`, as `(start, end)` (its bytes are
/// `buffer[start..end]`, the comma at `end`); `None` while it is incomplete.
///
/// ```text
/// netstring = length ":" *OCTET ","  ; exactly `length` octets
/// length    = "0" / (%x31-39 *DIGIT) ; no leading zeros
/// ```
///
/// # Errors
/// See [`FramingError`]; a length over [`REQUEST_BYTES_MAX`] is refused as soon as its digits
/// say so.
pub fn frame(buffer: &[u8]) -> Result<Option<(usize, usize)>, FramingError> {
    // A leading zero is known from the first two bytes, a length too long only from the
    // fifth digit: checked in that order, the error does not depend on how the bytes came
    // in (the fuzz target's finding `a_leading_zero_is_named_however_the_bytes_arrive`).
    if let [b'0', second, ..] = buffer
        && second.is_ascii_digit()
    {
        return Err(FramingError::LeadingZero);
    }
    let digits = buffer.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > LENGTH_DIGITS_MAX {
        return Err(FramingError::TooLong);
    }
    let Some(&after) = buffer.get(digits) else {
        return Ok(None);
    };
    if after != b':' || digits == 0 {
        return Err(FramingError::NotADigit);
    }
    let length = buffer[..digits].iter().fold(0, |n, d| n * 10 + usize::from(d - b'0'));
    if length > REQUEST_BYTES_MAX {
        return Err(FramingError::TooLong);
    }
    let start = digits + 1;
    let end = start + length;
    match buffer.get(end) {
        None => Ok(None),
        Some(b',') => Ok(Some((start, end))),
        Some(_) => Err(FramingError::NoComma),
    }
}

/// A request's string: `name SP key`, the name one of [`MapName`], the key non-empty UTF-8.
///
/// # Errors
/// The reason for a `PERM` reply.
pub fn parse_request(request: &[u8]) -> Result<Lookup, &'static str> {
    let Some(space) = request.iter().position(|&b| b == b' ') else {
        return Err("expected \"name key\"");
    };
    let map = MapName::from_name(&request[..space]).ok_or("unknown map name")?;
    let key = &request[space + 1..];
    if key.is_empty() {
        return Err("empty key");
    }
    let key = std::str::from_utf8(key).map_err(|_| "key is not UTF-8")?;
    Ok(Lookup { map, key: key.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn netstring(text: &[u8]) -> Vec<u8> {
        let mut out = format!("{}:", text.len()).into_bytes();
        out.extend_from_slice(text);
        out.push(b',');
        out
    }

    #[test]
    fn replies_are_netstrings_with_the_documented_words() {
        assert_eq!(Reply::Ok("alice".into()).encode(), b"8:OK alice,");
        assert_eq!(Reply::NotFound.encode(), b"9:NOTFOUND ,");
        assert_eq!(Reply::Temp("busy".into()).encode(), b"9:TEMP busy,");
        assert_eq!(Reply::Timeout("slow".into()).encode(), b"12:TIMEOUT slow,");
        assert_eq!(Reply::Perm("".into()).encode(), b"5:PERM ,");
        assert_eq!(Reply::Perm("a\r\nb".into()).encode(), b"9:PERM a  b,");
        let long = Reply::Ok("é".repeat(REPLY_TEXT_BYTES_MAX)).encode();
        let (start, end) = frame(&long).expect("framed").expect("whole");
        assert!(end - start <= REPLY_TEXT_BYTES_MAX + 3);
        assert!(std::str::from_utf8(&long[start..end]).is_ok(), "cut at a character boundary");
    }

    #[test]
    fn a_lookup_is_answered_and_the_connection_takes_the_next_one() {
        let mut session = SocketmapSession::new();
        assert_eq!(session.next(), SocketmapStep::NeedInput);
        let mut both = netstring(b"user alice@example.org");
        both.extend(netstring(b"quota bob+x@example.org"));
        // Byte by byte: nothing is decided before the comma arrives.
        for &byte in &both[..both.len() - 1] {
            session.feed(&[byte]);
            if let SocketmapStep::Lookup(lookup) = session.next() {
                assert_eq!(lookup, Lookup { map: MapName::User, key: "alice@example.org".into() });
                session.answer(&Reply::Ok("alice".into()));
                assert_eq!(session.next(), SocketmapStep::Write(b"8:OK alice,".to_vec()));
                assert_eq!(session.next(), SocketmapStep::NeedInput);
            }
        }
        assert!(session.has_partial_request());
        session.feed(b",");
        let SocketmapStep::Lookup(lookup) = session.next() else { panic!("a lookup") };
        assert_eq!(lookup, Lookup { map: MapName::Quota, key: "bob+x@example.org".into() });
        session.answer(&Reply::NotFound);
        assert_eq!(session.next(), SocketmapStep::Write(b"9:NOTFOUND ,".to_vec()));
        assert_eq!(session.next(), SocketmapStep::NeedInput);
        assert!(!session.has_partial_request());
    }

    #[test]
    fn bad_content_in_a_good_frame_gets_perm_and_the_connection_goes_on() {
        for (request, reason) in [
            (&b"user"[..], "expected \"name key\""),
            (b"virtual alice@example.org", "unknown map name"),
            (b"user ", "empty key"),
            (b"user \xff@x", "key is not UTF-8"),
            (b"", "expected \"name key\""),
        ] {
            let mut session = SocketmapSession::new();
            let mut input = netstring(request);
            input.extend(netstring(b"user carol"));
            session.feed(&input);
            assert_eq!(
                session.next(),
                SocketmapStep::Write(Reply::Perm(reason.into()).encode()),
                "{request:?}"
            );
            let SocketmapStep::Lookup(lookup) = session.next() else { panic!("still served") };
            assert_eq!(lookup.key, "carol");
        }
    }

    #[test]
    fn broken_framing_gets_perm_then_close() {
        for (input, error) in [
            (&b"x:user a,"[..], FramingError::NotADigit),
            (b":user a,", FramingError::NotADigit),
            (b"06:user a,", FramingError::LeadingZero),
            (b"00:", FramingError::LeadingZero),
            (b"6:user aX", FramingError::NoComma),
            (b"4097:", FramingError::TooLong),
            (b"99999", FramingError::TooLong),
            (b"GET / HTTP/1.0\r\n", FramingError::NotADigit),
        ] {
            let mut session = SocketmapSession::new();
            session.feed(input);
            let perm = Reply::Perm(error.to_string()).encode();
            assert_eq!(session.next(), SocketmapStep::Write(perm), "{input:?}");
            assert_eq!(session.next(), SocketmapStep::Close);
            session.feed(b"6:user a,");
            assert_eq!(session.next(), SocketmapStep::Close, "nothing after a framing error");
        }
    }

    #[test]
    fn the_longest_request_is_taken_and_one_more_byte_is_not() {
        let key = "k".repeat(REQUEST_BYTES_MAX - "user ".len());
        let mut session = SocketmapSession::new();
        session.feed(&netstring(format!("user {key}").as_bytes()));
        assert!(matches!(session.next(), SocketmapStep::Lookup(_)));
        let mut session = SocketmapSession::new();
        session.feed(format!("{}:", REQUEST_BYTES_MAX + 1).as_bytes());
        assert!(matches!(session.next(), SocketmapStep::Write(_)));
        assert_eq!(session.next(), SocketmapStep::Close);
        assert_eq!(frame(b"0:,"), Ok(Some((2, 2))), "the empty string");
    }

    /// Fuzz finding (`socketmap` target, input `04096:,`): fed whole, the five digits were
    /// refused as too long; fed three bytes at a time, `040` was refused for its leading
    /// zero. The reply must not depend on how the client's bytes were cut.
    #[test]
    fn a_leading_zero_is_named_however_the_bytes_arrive() {
        let perm = Reply::Perm(FramingError::LeadingZero.to_string()).encode();
        for read in 1..=7 {
            let mut session = SocketmapSession::new();
            let mut first = None;
            for chunk in b"04096:,".chunks(read) {
                session.feed(chunk);
                match session.next() {
                    SocketmapStep::NeedInput => continue,
                    step => {
                        first = Some(step);
                        break;
                    }
                }
            }
            assert_eq!(first, Some(SocketmapStep::Write(perm.clone())), "reads of {read}");
        }
    }

    #[test]
    #[should_panic(expected = "no lookup is waiting")]
    fn an_answer_without_a_lookup_is_a_bug() {
        SocketmapSession::new().answer(&Reply::NotFound);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any bytes, fed in any pieces: no panic, every step is a well-formed reply or a
            /// lookup within the bounds, and the buffer never outgrows one request plus the
            /// last piece.
            #[test]
            fn any_input_in_any_pieces_is_bounded_and_answered(
                input in proptest::collection::vec(any::<u8>(), 0..600),
                cuts in proptest::collection::vec(1usize..64, 1..20),
            ) {
                let mut session = SocketmapSession::new();
                let mut at = 0;
                let mut cut = cuts.iter().cycle();
                'read: while at < input.len() {
                    let take = (*cut.next().expect("cycle")).min(input.len() - at);
                    session.feed(&input[at..at + take]);
                    at += take;
                    loop {
                        match session.next() {
                            SocketmapStep::NeedInput => break,
                            SocketmapStep::Close => break 'read,
                            SocketmapStep::Write(reply) => {
                                let framed = frame(&reply).expect("our reply frames");
                                let (start, end) = framed.expect("whole");
                                prop_assert_eq!(end + 1, reply.len());
                                let body = &reply[start..end];
                                prop_assert!(
                                    body.starts_with(b"OK ") || body.starts_with(b"PERM ")
                                        || body == b"NOTFOUND "
                                );
                            }
                            SocketmapStep::Lookup(lookup) => {
                                prop_assert!(!lookup.key.is_empty());
                                prop_assert!(lookup.key.len() < REQUEST_BYTES_MAX);
                                session.answer(&Reply::Ok(lookup.key));
                            }
                        }
                    }
                    prop_assert!(session.buffer.len() <= REQUEST_BYTES_MAX + 8 + 64);
                }
            }

            /// Any request we can frame parses back to what was framed.
            #[test]
            fn framed_requests_round_trip(key in "[^\\x00]{1,200}", quota in any::<bool>()) {
                let map = if quota { MapName::Quota } else { MapName::User };
                let mut session = SocketmapSession::new();
                session.feed(&netstring(format!("{} {key}", map.name()).as_bytes()));
                prop_assert_eq!(session.next(), SocketmapStep::Lookup(Lookup { map, key }));
            }
        }
    }
}
