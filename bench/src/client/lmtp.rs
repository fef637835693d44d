//! The LMTP client (RFC 2033): LHLO, then transactions of MAIL, RCPT..., DATA with one reply per
//! accepted recipient. With PIPELINING advertised, MAIL, the RCPTs and DATA go in one write.

use std::time::{Duration, Instant};

use super::tls::{Endpoint, Stream};
use super::{ClientError, READ_CHUNK, read_some, send};
use crate::wire::lmtp::{Reply, ReplyReader};

/// The result of one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Recipients accepted at RCPT and then delivered (2xx after DATA).
    pub delivered: usize,
    /// Recipients refused, at RCPT or after DATA.
    pub failed: usize,
    /// When the DATA command was written (with PIPELINING: the write that carried it).
    pub data_sent: Instant,
    /// When the last per-recipient reply arrived.
    pub done: Instant,
}

/// One LMTP connection.
#[derive(Debug)]
pub struct LmtpClient {
    stream: Stream,
    reader: ReplyReader,
    chunk: Vec<u8>,
    out: Vec<u8>,
    timeout: Duration,
    pipelining: bool,
}

/// Appends `message` to `out` dot-stuffed (RFC 5321 §4.5.2), CRLF-terminated and followed by
/// the end-of-data line `.CRLF`.
pub fn stuff_message(message: &[u8], out: &mut Vec<u8>) {
    let mut at_line_start = true;
    for &b in message {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !message.is_empty() && !message.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

impl LmtpClient {
    /// Connects, reads the 220 greeting and says LHLO; with STARTTLS, then starts TLS
    /// (RFC 3207) and says LHLO again.
    pub async fn connect(to: &Endpoint, timeout: Duration) -> Result<Self, ClientError> {
        let stream = to.connect(timeout).await?;
        let mut c = Self {
            stream,
            reader: ReplyReader::new(),
            chunk: Vec::new(),
            out: Vec::new(),
            timeout,
            pipelining: false,
        };
        c.expect(220).await?;
        send(&mut c.stream, b"LHLO skua-bench.localhost\r\n").await?;
        let mut lhlo = c.expect(250).await?;
        if let Some(tls) = to.starttls() {
            if !lhlo.has_extension("STARTTLS") {
                return Err(ClientError::Unexpected("the LMTP server offers no STARTTLS".into()));
            }
            send(&mut c.stream, b"STARTTLS\r\n").await?;
            c.expect(220).await?;
            if !c.reader.is_empty() {
                return Err(ClientError::Unexpected(
                    "clear-text data after the STARTTLS 220, before the handshake".into(),
                ));
            }
            c.stream = c.stream.upgrade(tls, timeout).await?;
            send(&mut c.stream, b"LHLO skua-bench.localhost\r\n").await?;
            lhlo = c.expect(250).await?;
        }
        c.pipelining = lhlo.has_extension("PIPELINING");
        Ok(c)
    }

    /// Sends each envelope command on its own and waits for its reply, even when the server
    /// offers PIPELINING (to measure what pipelining saves).
    pub fn without_pipelining(mut self) -> Self {
        self.pipelining = false;
        self
    }

    async fn reply(&mut self) -> Result<Reply, ClientError> {
        loop {
            if let Some(r) = self.reader.next()? {
                return Ok(r);
            }
            let data =
                read_some(&mut self.stream, &mut self.chunk, READ_CHUNK, self.timeout).await?;
            self.reader.feed(data);
        }
    }

    async fn expect(&mut self, code: u16) -> Result<Reply, ClientError> {
        let r = self.reply().await?;
        if r.code == code { Ok(r) } else { Err(ClientError::Unexpected(r.to_string())) }
    }

    /// Delivers `message` (raw, not yet stuffed) from `sender` to `recipients`.
    /// A transaction the server refused as a whole is reset with RSET and reported as
    /// [`ClientError::Refused`]; single refused recipients are counted in `failed`.
    pub async fn deliver(
        &mut self,
        sender: &str,
        recipients: &[String],
        message: &[u8],
    ) -> Result<Delivery, ClientError> {
        self.out.clear();
        self.out.extend_from_slice(format!("MAIL FROM:<{sender}>\r\n").as_bytes());
        let mut envelope = Vec::new();
        for r in recipients {
            envelope.extend_from_slice(format!("RCPT TO:<{r}>\r\n").as_bytes());
        }
        let (accepted, data_sent) = if self.pipelining {
            self.out.extend_from_slice(&envelope);
            self.out.extend_from_slice(b"DATA\r\n");
            let sent = Instant::now();
            send(&mut self.stream, &self.out).await?;
            (self.envelope_replies(recipients.len()).await?, sent)
        } else {
            send(&mut self.stream, &self.out).await?;
            self.step(250).await?;
            let mut accepted = 0;
            for line in envelope.split_inclusive(|&b| b == b'\n') {
                send(&mut self.stream, line).await?;
                accepted += usize::from(self.reply().await?.is_positive());
            }
            if accepted == 0 {
                return self.reset("no recipient accepted").await;
            }
            let sent = Instant::now();
            send(&mut self.stream, b"DATA\r\n").await?;
            self.step(354).await?;
            (accepted, sent)
        };
        self.out.clear();
        stuff_message(message, &mut self.out);
        send(&mut self.stream, &self.out).await?;
        let mut delivered = 0;
        for _ in 0..accepted {
            delivered += usize::from(self.reply().await?.is_positive());
        }
        Ok(Delivery {
            delivered,
            failed: recipients.len() - delivered,
            data_sent,
            done: Instant::now(),
        })
    }

    /// Reads the replies to a pipelined MAIL, RCPT... and DATA: the number of accepted RCPTs.
    async fn envelope_replies(&mut self, rcpts: usize) -> Result<usize, ClientError> {
        let mail = self.reply().await?;
        let mut accepted = 0;
        for _ in 0..rcpts {
            accepted += usize::from(self.reply().await?.is_positive());
        }
        let data = self.reply().await?;
        if data.code == 354 {
            // The server may start DATA even though MAIL failed or no RCPT was accepted (RFC 2920
            // §3.1 says it must not); end the data at once.
            if !mail.is_positive() || accepted == 0 {
                send(&mut self.stream, b".\r\n").await?;
                let _ = self.reply().await?;
                return self.reset("transaction refused").await;
            }
            return Ok(accepted);
        }
        self.reset(&format!("MAIL {} / DATA {}", mail, data)).await
    }

    /// A refused step: checks the reply code, resetting on anything else.
    async fn step(&mut self, code: u16) -> Result<(), ClientError> {
        let r = self.reply().await?;
        if r.code == code {
            return Ok(());
        }
        self.reset(&r.to_string()).await
    }

    async fn reset<T>(&mut self, why: &str) -> Result<T, ClientError> {
        send(&mut self.stream, b"RSET\r\n").await?;
        self.expect(250).await?;
        Err(ClientError::Refused(why.to_owned()))
    }

    /// Says QUIT and waits for the 221.
    pub async fn quit(mut self) -> Result<(), ClientError> {
        send(&mut self.stream, b"QUIT\r\n").await?;
        self.expect(221).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuffed(m: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        stuff_message(m, &mut out);
        out
    }

    #[test]
    fn dot_stuffing_and_termination() {
        assert_eq!(stuffed(b"a\r\n.b\r\n..\r\n"), b"a\r\n..b\r\n...\r\n.\r\n");
        assert_eq!(stuffed(b".x"), b"..x\r\n.\r\n");
        assert_eq!(stuffed(b"a.b\r\n"), b"a.b\r\n.\r\n");
        assert_eq!(stuffed(b""), b".\r\n");
    }
}
