//! The admin socket's byte streams, client side (`skua_shard::admin_proto`, frames): what
//! `skua backup` reads from a running server and `skua restore` sends to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use skua_core::backup::{ArchiveError, Decoder, Record, Writer};
use skua_shard::admin_proto::{AdminRequest, ErrorReply, Frame, Reply, StreamEnd, frame_line};

/// Longest wait for the server to send or take the next piece of a stream.
const IO_TIMEOUT: Duration = Duration::from_secs(600);

/// Longest line read from the server (a final report is small).
const LINE_BYTES_MAX: u64 = 1 << 20;

/// Bytes the client buffers before sending a data frame.
const FRAME_BYTES: usize = skua_shard::limits::ADMIN_DATA_BYTES_MAX;

/// Connects to the admin socket and sends `request`; writes wait at most `write_timeout`,
/// reads `read_timeout`.
pub(super) fn connect(
    socket: &Path,
    request: &AdminRequest,
    write_timeout: Duration,
    read_timeout: Duration,
) -> anyhow::Result<UnixStream> {
    let stream = UnixStream::connect(socket)
        .with_context(|| format!("connecting to {}", socket.display()))?;
    stream.set_write_timeout(Some(write_timeout))?;
    stream.set_read_timeout(Some(read_timeout))?;
    let mut line = serde_json::to_vec(request).expect("a request serializes");
    line.push(b'\n');
    (&stream).write_all(&line).context("sending the request")?;
    Ok(stream)
}

/// A line from the server: a frame, or a reply.
enum Line {
    Frame(Frame),
    Reply(Reply),
}

fn read_line(reader: &mut impl BufRead) -> anyhow::Result<Line> {
    let mut line = Vec::new();
    let read = reader
        .take(LINE_BYTES_MAX)
        .read_until(b'\n', &mut line)
        .context("reading the server's answer")?;
    if read == 0 {
        bail!("the server closed the connection without an answer");
    }
    if let Ok(frame) = serde_json::from_slice::<Frame>(&line) {
        return Ok(Line::Frame(frame));
    }
    let reply = serde_json::from_slice(&line).with_context(|| {
        format!("the server's line is not a reply: {:?}", String::from_utf8_lossy(&line))
    })?;
    Ok(Line::Reply(reply))
}

/// Asks for a stream (a backup) and hands each record to `sink` as it is decoded (checksums
/// and order checked); gives the server's final answer.
///
/// # Errors
/// The socket failed, the stream is damaged, or `sink` failed; the inner error is the
/// server's own refusal.
pub fn receive(
    socket: &Path,
    request: &AdminRequest,
    sink: &mut dyn FnMut(&Record) -> anyhow::Result<()>,
) -> anyhow::Result<Result<serde_json::Value, ErrorReply>> {
    let mut reader = BufReader::new(connect(socket, request, IO_TIMEOUT, IO_TIMEOUT)?);
    let mut decoder = Decoder::stream();
    let mut total = 0u64;
    let mut piece = Vec::new();
    loop {
        match read_line(&mut reader)? {
            Line::Frame(Frame::Data(len)) => {
                if len == 0 || len > FRAME_BYTES as u64 {
                    bail!("the server sent a data frame of {len} bytes");
                }
                piece.resize(len as usize, 0);
                reader.read_exact(&mut piece).context("reading a data frame")?;
                total += len;
                decoder.feed(&piece);
                while let Some(record) = decoder.next_record()? {
                    sink(&record)?;
                }
            }
            Line::Frame(Frame::End(StreamEnd { bytes })) => {
                if bytes != total {
                    bail!("the stream said {bytes} bytes, {total} came");
                }
                decoder.finish()?;
            }
            Line::Reply(Reply::Progress(_)) => {}
            Line::Reply(Reply::Ok(value)) => return Ok(Ok(value)),
            Line::Reply(Reply::Error(error)) => return Ok(Err(error)),
        }
    }
}

/// Where a restore's records go, one at a time.
pub type RecordSink<'a> = dyn FnMut(Record) -> Result<(), ArchiveError> + 'a;

/// Sends a stream (a restore): `produce` gives records to the writer it is handed (a header
/// is written first); then reads the server's answer.
///
/// # Errors
/// As [`receive`]; a server that refused while the stream was being sent is reported with
/// its own error when it said one.
pub fn send(
    socket: &Path,
    request: &AdminRequest,
    now_unix_millis: i64,
    produce: &mut dyn FnMut(&mut RecordSink<'_>) -> Result<(), ArchiveError>,
) -> anyhow::Result<Result<serde_json::Value, ErrorReply>> {
    let stream = connect(socket, request, IO_TIMEOUT, IO_TIMEOUT)?;
    let mut frames = Frames { stream: &stream, buffered: Vec::new(), total: 0 };
    let sent = (|| -> Result<(), ArchiveError> {
        let mut writer = Writer::new(Vec::new(), 0);
        writer.header(now_unix_millis)?;
        produce(&mut |record| {
            writer.record(&record)?;
            frames.buffered.append(writer.get_mut());
            frames.send_full()?;
            Ok(())
        })?;
        frames.finish()?;
        Ok(())
    })();
    // Not an error of the socket (the archive, a mailbox the snapshot lacks): say it now,
    // rather than wait for a server that waits for the rest of the stream.
    if let Err(error) = &sent
        && !matches!(error, ArchiveError::Io(_))
    {
        let _ = stream.shutdown(std::net::Shutdown::Both);
        return Err(sent.expect_err("checked above").into());
    }
    let mut reader = BufReader::new(&stream);
    let answer = loop {
        match read_line(&mut reader) {
            Ok(Line::Reply(Reply::Ok(value))) => break Ok(value),
            Ok(Line::Reply(Reply::Error(error))) => break Err(error),
            Ok(_) => {}
            Err(error) => {
                sent.context("sending the archive stream")?;
                return Err(error);
            }
        }
    };
    if answer.is_ok() {
        sent.context("sending the archive stream")?;
    }
    Ok(answer)
}

/// Data frames of at most [`FRAME_BYTES`] on the socket.
struct Frames<'a> {
    stream: &'a UnixStream,
    buffered: Vec<u8>,
    total: u64,
}

impl Frames<'_> {
    fn send(&mut self, len: usize) -> std::io::Result<()> {
        let mut stream = self.stream;
        stream.write_all(&frame_line(&Frame::Data(len as u64)))?;
        stream.write_all(&self.buffered[..len])?;
        self.buffered.drain(..len);
        self.total += len as u64;
        Ok(())
    }

    fn send_full(&mut self) -> std::io::Result<()> {
        while self.buffered.len() >= FRAME_BYTES {
            self.send(FRAME_BYTES)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.send_full()?;
        if !self.buffered.is_empty() {
            self.send(self.buffered.len())?;
        }
        let mut stream = self.stream;
        stream.write_all(&frame_line(&Frame::End(StreamEnd { bytes: self.total })))
    }
}
