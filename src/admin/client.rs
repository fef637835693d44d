//! The admin socket's client side: one request, progress lines, one answer
//! (`skua_shard::admin_proto`).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use skua_shard::admin_proto::{AdminRequest, ErrorReply, Progress, Reply};

/// Longest wait to connect and send the request.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait for any one line from the server (a progress line comes per user, so this
/// bounds the work on one user, not on all of them).
const LINE_TIMEOUT: Duration = Duration::from_secs(3600);

/// Longest line the client reads (an examine of a large mailbox is one long line).
const LINE_BYTES_MAX: u64 = 1 << 30;

/// Sends `request` and reads the answer, passing each progress line to `progress`.
///
/// # Errors
/// The socket cannot be reached, or the server broke the protocol or went away; the inner
/// error is the server's own refusal.
pub fn ask(
    socket: &Path,
    request: &AdminRequest,
    progress: &mut dyn FnMut(&Progress),
) -> anyhow::Result<Result<serde_json::Value, ErrorReply>> {
    let stream = super::stream::connect(socket, request, SEND_TIMEOUT, LINE_TIMEOUT)?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = Vec::new();
        let read = (&mut reader)
            .take(LINE_BYTES_MAX)
            .read_until(b'\n', &mut line)
            .context("reading the server's answer")?;
        if read == 0 {
            bail!("the server closed the connection without an answer");
        }
        let reply: Reply = serde_json::from_slice(&line).with_context(|| {
            format!("the server's line is not a reply: {:?}", String::from_utf8_lossy(&line))
        })?;
        match reply {
            Reply::Progress(step) => progress(&step),
            Reply::Ok(value) => return Ok(Ok(value)),
            Reply::Error(error) => return Ok(Err(error)),
        }
    }
}
