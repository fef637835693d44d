//! The IMAP client: tagged commands, synchronizing literals for APPEND, IDLE, and the
//! mailbox size kept up to date from `EXISTS`/`EXPUNGE` responses.

use std::time::Duration;

use super::tls::{Endpoint, Stream, TlsClient};
use super::{ClientError, IDLE_READ_CHUNK, READ_CHUNK, excerpt, read_some, send};
use crate::wire::imap::{Framer, Response, Status};

/// What a completed command produced, besides its OK.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Untagged responses received before the tagged one.
    pub untagged: usize,
    /// Literal bytes among them (message data, for FETCH).
    pub literal_bytes: usize,
    /// Bytes of all those untagged responses (FETCH data whether in literals or not).
    pub response_bytes: usize,
    /// Hits of a `* SEARCH` response, if one came.
    pub search_hits: Option<usize>,
    /// `* n FETCH` responses among them.
    pub fetches: usize,
    /// The last `[UIDVALIDITY n]` among them (SELECT, EXAMINE).
    pub uid_validity: Option<u64>,
    /// The last `[HIGHESTMODSEQ n]` among them (SELECT, EXAMINE with CONDSTORE/QRESYNC).
    pub highest_modseq: Option<u64>,
}

/// One IMAP connection.
#[derive(Debug)]
pub struct ImapClient {
    stream: Stream,
    framer: Framer,
    chunk: Vec<u8>,
    next_tag: u32,
    timeout: Duration,
    out: Vec<u8>,
    /// Bytes asked of each `read`: large while commands run, small once in IDLE.
    read_size: usize,
    /// Messages in the selected mailbox, as the server last told (`EXISTS`, less `EXPUNGE`s).
    pub exists: u32,
}

/// `s` as an IMAP quoted string (RFC 9051 `quoted`): backslash and quote escaped.
pub fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

impl ImapClient {
    /// Connects (with the TLS handshake first for implicit TLS) and reads the greeting, which
    /// must be `* OK` or `* PREAUTH`; with STARTTLS, then starts TLS (RFC 9051 §6.2.1).
    pub async fn connect(to: &Endpoint, timeout: Duration) -> Result<Self, ClientError> {
        let stream = to.connect(timeout).await?;
        let mut c = Self {
            stream,
            framer: Framer::new(),
            chunk: Vec::new(),
            next_tag: 1,
            timeout,
            out: Vec::new(),
            read_size: READ_CHUNK,
            exists: 0,
        };
        let greeting = c.read_response(timeout).await?;
        match greeting.untagged_status() {
            Some(Status::Ok) => {}
            _ if greeting.bytes.starts_with(b"* PREAUTH") => {}
            _ => return Err(ClientError::Unexpected(excerpt(&greeting.bytes))),
        }
        match to.starttls() {
            Some(tls) => c.start_tls(tls).await,
            None => Ok(c),
        }
    }

    /// Sends STARTTLS and, on its OK, runs the TLS handshake. Anything the server sent after
    /// the OK in clear text is an error (it would be read as if it came over TLS).
    async fn start_tls(mut self, tls: &TlsClient) -> Result<Self, ClientError> {
        self.command("STARTTLS").await?;
        if !self.framer.is_empty() {
            return Err(ClientError::Unexpected(
                "clear-text data after the STARTTLS OK, before the handshake".into(),
            ));
        }
        self.stream = self.stream.upgrade(tls, self.timeout).await?;
        Ok(self)
    }

    /// The transport (for its TLS details).
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// Closes the connection without LOGOUT: TLS close_notify (if TLS) and TCP FIN, bounded by
    /// the timeout; errors are ignored (the server may already be gone).
    pub async fn close(mut self) {
        use tokio::io::AsyncWriteExt;
        let _ = tokio::time::timeout(self.timeout, self.stream.shutdown()).await;
    }

    /// The next response from the server, waiting at most `timeout`.
    pub async fn read_response(&mut self, timeout: Duration) -> Result<Response, ClientError> {
        loop {
            if let Some(r) = self.framer.next()? {
                return Ok(r);
            }
            let data =
                read_some(&mut self.stream, &mut self.chunk, self.read_size, timeout).await?;
            self.framer.feed(data);
        }
    }

    fn tag(&mut self) -> String {
        let t = format!("b{}", self.next_tag);
        self.next_tag = self.next_tag.wrapping_add(1);
        t
    }

    /// Sends `tag SP command CRLF` and reads to the tagged response.
    pub async fn command(&mut self, command: &str) -> Result<Outcome, ClientError> {
        let tag = self.tag();
        self.out.clear();
        self.out.extend_from_slice(format!("{tag} {command}\r\n").as_bytes());
        send(&mut self.stream, &self.out).await?;
        self.finish(&tag).await
    }

    /// `LOGIN user password`.
    pub async fn login(&mut self, user: &str, password: &str) -> Result<Outcome, ClientError> {
        self.command(&format!("LOGIN {} {}", quote(user), quote(password))).await
    }

    /// `APPEND mailbox (flags) {n}` with a synchronizing literal: waits for the continuation
    /// request before sending the message, as any server requires.
    pub async fn append(
        &mut self,
        mailbox: &str,
        flags: &str,
        message: &[u8],
    ) -> Result<Outcome, ClientError> {
        let tag = self.tag();
        let head = format!("{tag} APPEND {} ({flags}) {{{}}}\r\n", quote(mailbox), message.len());
        send(&mut self.stream, head.as_bytes()).await?;
        loop {
            let r = self.read_response(self.timeout).await?;
            if r.is_continuation() {
                break;
            }
            if r.tagged_status(tag.as_bytes()).is_some() {
                return Err(ClientError::Refused(excerpt(&r.bytes)));
            }
            self.note_untagged(&r, &mut Outcome::default());
        }
        self.out.clear();
        self.out.extend_from_slice(message);
        self.out.extend_from_slice(b"\r\n");
        send(&mut self.stream, &self.out).await?;
        self.finish(&tag).await
    }

    /// Sends `IDLE` and waits for the continuation request; returns the tag for [`Self::done`].
    /// From then on the connection reads with a small buffer (see [`IDLE_READ_CHUNK`]) and
    /// gives back its large one and its output buffer.
    pub async fn idle(&mut self) -> Result<String, ClientError> {
        let tag = self.tag();
        send(&mut self.stream, format!("{tag} IDLE\r\n").as_bytes()).await?;
        loop {
            let r = self.read_response(self.timeout).await?;
            if r.is_continuation() {
                self.read_size = IDLE_READ_CHUNK;
                self.chunk = Vec::new();
                self.out = Vec::new();
                return Ok(tag);
            }
            if r.tagged_status(tag.as_bytes()).is_some() {
                return Err(ClientError::Refused(excerpt(&r.bytes)));
            }
            self.note_untagged(&r, &mut Outcome::default());
        }
    }

    /// Ends an IDLE with `DONE` and reads its tagged response.
    pub async fn done(&mut self, tag: &str) -> Result<Outcome, ClientError> {
        send(&mut self.stream, b"DONE\r\n").await?;
        self.finish(tag).await
    }

    /// Tracks the mailbox size from an untagged response; used while idling too.
    pub fn note_untagged(&mut self, r: &Response, outcome: &mut Outcome) {
        outcome.untagged += 1;
        outcome.literal_bytes += r.literal_bytes;
        outcome.response_bytes += r.bytes.len();
        if let Some(n) = r.numbered(b"EXISTS") {
            self.exists = n;
        } else if r.numbered(b"EXPUNGE").is_some() {
            self.exists = self.exists.saturating_sub(1);
        } else if let Some(hits) = r.search_hits() {
            outcome.search_hits = Some(outcome.search_hits.unwrap_or(0) + hits);
        } else if r.numbered(b"FETCH").is_some() {
            outcome.fetches += 1;
        } else if let Some(n) = r.code_number(b"UIDVALIDITY") {
            outcome.uid_validity = Some(n);
        } else if let Some(n) = r.code_number(b"HIGHESTMODSEQ") {
            outcome.highest_modseq = Some(n);
        }
    }

    async fn finish(&mut self, tag: &str) -> Result<Outcome, ClientError> {
        let mut outcome = Outcome::default();
        loop {
            let r = self.read_response(self.timeout).await?;
            match r.tagged_status(tag.as_bytes()) {
                Some(Status::Ok) => return Ok(outcome),
                Some(_) => return Err(ClientError::Refused(excerpt(&r.bytes))),
                None if r.is_untagged() => self.note_untagged(&r, &mut outcome),
                None => return Err(ClientError::Unexpected(excerpt(&r.bytes))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("user1"), "\"user1\"");
        assert_eq!(quote("p\"w\\x"), "\"p\\\"w\\\\x\"");
    }
}
