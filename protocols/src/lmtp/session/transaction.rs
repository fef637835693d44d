//! The commands of an LMTP session and the mail transaction they build: `LHLO`, `MAIL`,
//! `RCPT`, `DATA`, `BDAT` and the end of a message (RFC 2033 §4, RFC 5321 §3.3, RFC 3030,
//! RFC 6531, RFC 3461).

use std::sync::Arc;

use super::{LmtpSession, LmtpStep, Mode, PendingRecipient, Transaction};
use crate::lmtp::BareLineEndings;
use crate::lmtp::command::Command;
use crate::lmtp::data::{DotReader, LineEndings, MessageBuffer, Unacceptable};
use crate::lmtp::delivery::{Target, UserCopy};
use crate::lmtp::envelope::{Body, MailParameters, RcptParameters};
use crate::lmtp::reply::{self, DeliveryFailure};

impl Transaction {
    /// Adds an accepted recipient to its user's copy (made on the user's first `RCPT`);
    /// returns the copy's index.
    pub(super) fn join_copy(
        &mut self,
        user: String,
        address: String,
        detail: Option<String>,
        parameters: RcptParameters,
    ) -> usize {
        let target = Target { address, detail, parameters };
        if let Some(index) = self.copies.iter().position(|copy| copy.user == user) {
            self.copies[index].targets.push(target);
            return index;
        }
        self.copies.push(UserCopy { user, targets: vec![target] });
        self.copies.len() - 1
    }
}

impl LmtpSession {
    /// Runs one parsed command; returns a step when the shard must answer something first.
    pub(super) fn execute(&mut self, command: Command) -> Option<LmtpStep> {
        match command {
            Command::Lhlo(name) => self.lhlo(name),
            Command::SmtpHello => self.command_failed(reply::USE_LHLO),
            Command::StartTls => self.start_tls(),
            Command::Mail { reverse_path, parameters } => self.mail(reverse_path, parameters),
            Command::Rcpt { forward_path, parameters } => {
                return self.rcpt(forward_path, parameters);
            }
            Command::Data => self.data(),
            Command::Bdat { size, last } => self.bdat(size, last),
            Command::Rset => {
                self.transaction = None;
                self.command_succeeded(reply::OK);
            }
            Command::Noop => self.command_succeeded(reply::OK),
            Command::Vrfy => self.command_succeeded(reply::VRFY),
            Command::Quit => {
                let text = format!("2.0.0 {} closing connection", self.config.hostname);
                reply::line(&mut self.out, "221", &text);
                self.mode = Mode::Closing;
            }
        }
        None
    }

    /// `LHLO`: the capabilities; like `EHLO`, it also ends any transaction.
    fn lhlo(&mut self, name: String) {
        self.greeted = true;
        self.lhlo = name;
        self.transaction = None;
        self.errors = 0;
        let starttls = if self.config.starttls && !self.tls { "250-STARTTLS\r\n" } else { "" };
        let capabilities = format!(
            "250-{}\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n\
             {starttls}250-SIZE {}\r\n250-DSN\r\n250-SMTPUTF8\r\n250-BINARYMIME\r\n\
             250 CHUNKING\r\n",
            self.config.hostname, self.config.max_message_bytes
        );
        self.out.extend_from_slice(capabilities.as_bytes());
    }

    fn mail(&mut self, return_path: String, mail: MailParameters) {
        if !self.greeted {
            return self.command_failed(reply::NEED_LHLO);
        }
        if self.transaction.is_some() {
            return self.command_failed(reply::NESTED_MAIL);
        }
        if mail.size.is_some_and(|size| size > self.config.max_message_bytes) {
            // Not the client's mistake: a limit, so it does not count as an error.
            return reply::fixed(&mut self.out, reply::TOO_BIG);
        }
        self.transactions += 1;
        self.transaction = Some(Transaction {
            return_path,
            mail,
            recipients: Vec::new(),
            copies: Vec::new(),
            message: None,
            failed: false,
        });
        self.command_succeeded(reply::SENDER_OK);
    }

    fn rcpt(&mut self, address: String, parameters: RcptParameters) -> Option<LmtpStep> {
        if !self.greeted {
            self.command_failed(reply::NEED_LHLO);
            return None;
        }
        let Some(transaction) = &self.transaction else {
            self.command_failed(reply::NEED_MAIL);
            return None;
        };
        if transaction.failed {
            self.command_failed(reply::TRANSACTION_FAILED);
            return None;
        }
        if transaction.message.is_some() {
            self.command_failed(reply::MIXED_DATA);
            return None;
        }
        if !transaction.mail.smtputf8 && !address.is_ascii() {
            self.command_failed(reply::NEEDS_SMTPUTF8);
            return None;
        }
        if transaction.recipients.len() >= self.config.max_recipients {
            // A limit, not an error: the client sends the rest in another transaction.
            reply::fixed(&mut self.out, reply::TOO_MANY_RECIPIENTS);
            return None;
        }
        self.errors = 0;
        self.mode =
            Mode::AwaitResolve(Box::new(PendingRecipient { address: address.clone(), parameters }));
        Some(LmtpStep::ResolveRecipient { address })
    }

    fn data(&mut self) {
        if !self.greeted {
            return self.command_failed(reply::NEED_LHLO);
        }
        let Some(transaction) = &self.transaction else {
            return self.command_failed(reply::NEED_MAIL);
        };
        if transaction.failed {
            return self.command_failed(reply::TRANSACTION_FAILED);
        }
        if transaction.message.is_some() {
            return self.command_failed(reply::MIXED_DATA);
        }
        if transaction.mail.body == Body::BinaryMime {
            return self.command_failed(reply::BINARYMIME_NEEDS_BDAT);
        }
        if transaction.recipients.is_empty() {
            return self.command_failed(reply::NO_RECIPIENTS);
        }
        let line_endings = line_endings(self.config.bare_line_endings, transaction.mail.body);
        let message =
            MessageBuffer::new(self.config.max_message_bytes, transaction.mail.size, line_endings);
        self.command_succeeded(reply::START_DATA);
        self.mode = Mode::Data(DotReader::new(), message);
    }

    /// `BDAT`: the chunk is read whatever happens (the client sends it without waiting);
    /// whether it is accepted is decided when it has been read ([`Self::chunk_complete`]).
    fn bdat(&mut self, size: u64, last: bool) {
        let limit = self.config.max_message_bytes;
        let policy = self.config.bare_line_endings;
        let accepting = self.transaction.as_mut().filter(|t| !t.failed && !t.recipients.is_empty());
        if let Some(transaction) = accepting.filter(|_| self.greeted) {
            let line_endings = line_endings(policy, transaction.mail.body);
            transaction.message.get_or_insert_with(|| {
                MessageBuffer::new(limit, transaction.mail.size, line_endings)
            });
        }
        self.mode = Mode::Chunk { remaining: size, last, size };
    }

    /// A `BDAT` chunk has been read.
    pub(super) fn chunk_complete(&mut self, last: bool, size: u64) {
        if !self.greeted {
            return self.command_failed(reply::NEED_LHLO);
        }
        let Some(transaction) = self.transaction.as_mut() else {
            return self.command_failed(reply::NEED_MAIL);
        };
        if transaction.failed {
            return self.command_failed(reply::TRANSACTION_FAILED);
        }
        if transaction.recipients.is_empty() {
            transaction.failed = true;
            return self.command_failed(reply::NO_RECIPIENTS);
        }
        let message = transaction.message.as_ref().expect("created by bdat()");
        if message.overflowed() && !last {
            transaction.failed = true;
            transaction.message = None;
            return reply::fixed(&mut self.out, reply::TOO_BIG);
        }
        if last {
            let message = transaction.message.take().expect("created by bdat()");
            return self.message_complete(message);
        }
        let text = format!("2.0.0 {size} octets received");
        self.command_succeeded(("250", &text));
    }

    /// The message is complete (`.` after `DATA`, or `BDAT LAST`): deliver it, or refuse it
    /// per recipient when it was too large or (by config) had bare line endings.
    pub(super) fn message_complete(&mut self, message: MessageBuffer) {
        let data_bytes = message.data_bytes();
        let bare = message.had_bare_line_endings();
        let unacceptable = match message.finish() {
            Ok(bytes) => {
                if bare {
                    tracing::debug!(data_bytes, "bare line endings in an LMTP message normalized");
                }
                self.mode = Mode::DeliverReady(Arc::from(bytes));
                return;
            }
            Err(unacceptable) => unacceptable,
        };
        let transaction = self.transaction.take().expect("a message has a transaction");
        match unacceptable {
            Unacceptable::TooLarge => {
                tracing::info!(data_bytes, "LMTP message over the size limit refused");
                let too_large = Err(DeliveryFailure::TooLarge);
                for recipient in &transaction.recipients {
                    reply::delivery(&mut self.out, &recipient.address, &too_large, false);
                }
            }
            Unacceptable::BareLineEnding => {
                tracing::info!(data_bytes, "LMTP message with bare CR or LF refused");
                for recipient in &transaction.recipients {
                    reply::recipient_line(
                        &mut self.out,
                        reply::BARE_LINE_ENDING,
                        &recipient.address,
                    );
                }
            }
        }
    }
}

/// The line-ending policy of a message: BINARYMIME is stored exactly as sent (it only ever
/// comes by `BDAT`); anything else follows the config.
fn line_endings(policy: BareLineEndings, body: Body) -> LineEndings {
    match (body, policy) {
        (Body::BinaryMime, _) => LineEndings::Keep,
        (_, BareLineEndings::Normalize) => LineEndings::Normalize,
        (_, BareLineEndings::Refuse) => LineEndings::Refuse,
    }
}
