//! `skua deliver`: a local delivery agent for `mailbox_command` setups. Reads one message on
//! stdin and hands it to the running server over LMTP (its unix socket when the config names
//! one, else its first TCP address), as a small blocking client; the exit code says what
//! happened, in sysexits.h terms, so the MTA knows whether to retry or bounce.
//!
//! ```text
//!  stdin ─ read (bounded) ─ drop an mbox "From " line ─ LF → CRLF, dot-stuff
//!  connect ─ 220 ─ LHLO ─ MAIL FROM ─ RCPT TO (each) ─ DATA ─ one reply per accepted RCPT ─ QUIT
//! ```
//!
//! The server answers `250` only once the message is durable, so exit 0 means stored. A
//! retry after 75 may find some recipients already delivered: the server's duplicate
//! suppression (same Message-ID, same mailbox) keeps that from storing a second copy.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::{self, FileConfig, ListenAddress};

/// What `skua deliver --help` prints after the options.
pub const AFTER_HELP: &str = "\
Reads one message on stdin and delivers it through the running skua's LMTP listener: the
first unix socket in [lmtp] listen, else its first TCP address, else 127.0.0.1:2424.
A leading mbox \"From \" line is dropped and bare LF line ends become CRLF.

Exit codes (sysexits.h):
   0  EX_OK         delivered to every recipient (stored durably)
  64  EX_USAGE      bad command line
  65  EX_DATAERR    the server refused the message or the sender (5xx on MAIL or DATA),
                    or the message is larger than the server accepts
  67  EX_NOUSER     a recipient is not a user (550 5.1.1)
  73  EX_CANTCREAT  a recipient's mailbox refused it permanently (another 5xx, e.g. quota)
  74  EX_IOERR      stdin could not be read
  75  EX_TEMPFAIL   the server is not running or answered 4xx: try again later
  76  EX_PROTOCOL   the server's replies made no sense
  78  EX_CONFIG     the config file could not be read
When recipients fare differently, the first of 75, 67, 73, 65 that applies wins.";

/// sysexits.h.
const EX_USAGE: u8 = 64;
const EX_DATAERR: u8 = 65;
const EX_NOUSER: u8 = 67;
const EX_CANTCREAT: u8 = 73;
const EX_IOERR: u8 = 74;
const EX_TEMPFAIL: u8 = 75;
const EX_PROTOCOL: u8 = 76;
const EX_CONFIG: u8 = 78;

/// The exit code of a usage error of `skua deliver` (clap's own would be 2).
pub const USAGE_EXIT: u8 = EX_USAGE;

/// Connect timeout: a local server answers at once or not at all.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Read timeout per reply: a delivery's `250` waits for a flush round; RFC 5321 §4.5.3.2.6
/// gives the end of DATA ten minutes.
const REPLY_TIMEOUT: Duration = Duration::from_secs(600);
/// Longest reply line, and most lines in one reply: a server past them is broken.
const REPLY_LINE_BYTES_MAX: usize = 4096;
const REPLY_LINES_MAX: usize = 64;

/// `skua deliver`'s arguments.
#[derive(clap::Args, Debug)]
pub struct DeliverArgs {
    /// The TOML config file of the running server (default: built-in settings).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The envelope sender (default: the null sender `<>`).
    #[arg(short = 'f', value_name = "SENDER")]
    pub sender: Option<String>,
    /// A recipient (repeatable; default: $USER).
    #[arg(short = 'a', value_name = "RECIPIENT")]
    pub recipients: Vec<String>,
    /// The LMTP address to use instead of the config's: `IP:port` or `unix:/path`.
    #[arg(long, value_name = "ADDRESS")]
    pub lmtp: Option<String>,
}

/// A failure and the exit code it maps to.
struct Failure {
    code: u8,
    detail: String,
}

fn fail(code: u8, detail: impl Into<String>) -> Failure {
    Failure { code, detail: detail.into() }
}

/// Runs `skua deliver`; prints what failed on stderr.
pub fn run(args: &DeliverArgs) -> ExitCode {
    match deliver(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("skua deliver: {}", failure.detail);
            ExitCode::from(failure.code)
        }
    }
}

fn deliver(args: &DeliverArgs) -> Result<(), Failure> {
    let target = target(args)?;
    let recipients = if args.recipients.is_empty() {
        let user = std::env::var("USER").map_err(|_| fail(EX_USAGE, "no -a and no $USER"))?;
        vec![user]
    } else {
        args.recipients.clone()
    };
    for address in std::iter::once(args.sender.as_deref().unwrap_or(""))
        .chain(recipients.iter().map(String::as_str))
    {
        if address.bytes().any(|b| b.is_ascii_control() || b == b'<' || b == b'>') {
            return Err(fail(EX_USAGE, format!("{address:?} is not an address")));
        }
    }
    let limit = skua_protocols::lmtp::limits::MESSAGE_BYTES_MAX;
    let mut message = Vec::new();
    std::io::stdin()
        .lock()
        .take(limit + 1)
        .read_to_end(&mut message)
        .map_err(|e| fail(EX_IOERR, format!("reading stdin: {e}")))?;
    if message.len() as u64 > limit {
        return Err(fail(EX_DATAERR, format!("the message is larger than {limit} bytes")));
    }
    let data = wire_data(&message);
    let stream = connect(&target)?;
    let sender = args.sender.as_deref().unwrap_or("");
    transaction(stream, sender, &recipients, &data)
}

/// Where the server listens for LMTP.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

fn target(args: &DeliverArgs) -> Result<Target, Failure> {
    if let Some(text) = &args.lmtp {
        return match ListenAddress::try_from(text.clone()) {
            Ok(ListenAddress::Tcp(address)) => Ok(Target::Tcp(address)),
            Ok(ListenAddress::Unix(path)) => Ok(Target::Unix(path)),
            Err(error) => Err(fail(EX_USAGE, format!("--lmtp {error}"))),
        };
    }
    let file =
        FileConfig::load(args.config.as_deref()).map_err(|e| fail(EX_CONFIG, format!("{e:#}")))?;
    Ok(pick_target(&file))
}

/// The config's first unix socket, else its first TCP address, else the default.
fn pick_target(file: &FileConfig) -> Target {
    let listen = file.lmtp.listen.as_deref().unwrap_or_default();
    let unix = listen.iter().find_map(|address| match address {
        ListenAddress::Unix(path) => Some(Target::Unix(path.clone())),
        ListenAddress::Tcp(_) => None,
    });
    let tcp = listen.iter().find_map(|address| match address {
        ListenAddress::Tcp(address) => Some(Target::Tcp(*address)),
        ListenAddress::Unix(_) => None,
    });
    unix.or(tcp).unwrap_or_else(|| {
        Target::Tcp(config::LMTP_LISTEN_DEFAULT.parse().expect("the default address is valid"))
    })
}

/// A connected stream, either kind.
trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

fn connect(target: &Target) -> Result<Box<dyn Stream>, Failure> {
    let down =
        |e: io::Error| fail(EX_TEMPFAIL, format!("cannot reach the server at {target:?}: {e}"));
    Ok(match target {
        Target::Tcp(address) => {
            let stream = TcpStream::connect_timeout(address, CONNECT_TIMEOUT).map_err(down)?;
            stream.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(down)?;
            stream.set_write_timeout(Some(REPLY_TIMEOUT)).map_err(down)?;
            Box::new(stream)
        }
        Target::Unix(path) => {
            let stream = UnixStream::connect(path).map_err(down)?;
            stream.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(down)?;
            stream.set_write_timeout(Some(REPLY_TIMEOUT)).map_err(down)?;
            Box::new(stream)
        }
    })
}

/// The DATA payload: without a leading mbox `From ` line, every line ending in CRLF (bare LF
/// and bare CR become CRLF), lines starting with `.` doubled (RFC 5321 §4.5.2), then the
/// `.` line.
fn wire_data(message: &[u8]) -> Vec<u8> {
    let body = if message.starts_with(b"From ") {
        message
            .iter()
            .position(|&b| b == b'\n')
            .map_or(&message[message.len()..], |at| &message[at + 1..])
    } else {
        message
    };
    let mut out = Vec::with_capacity(body.len() + body.len() / 32 + 8);
    let mut line_start = true;
    let mut bytes = body.iter().copied().peekable();
    while let Some(byte) = bytes.next() {
        if line_start && byte == b'.' {
            out.push(b'.');
        }
        line_start = false;
        match byte {
            b'\r' => {
                if bytes.peek() == Some(&b'\n') {
                    bytes.next();
                }
                out.extend_from_slice(b"\r\n");
                line_start = true;
            }
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                line_start = true;
            }
            other => out.push(other),
        }
    }
    if !line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// One reply: its code and its last line's text.
#[derive(Debug)]
struct Reply {
    code: u16,
    text: String,
}

impl Reply {
    fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    fn describe(&self) -> String {
        format!("{} {}", self.code, self.text)
    }
}

fn read_reply(reader: &mut impl BufRead) -> Result<Reply, Failure> {
    let mut line = Vec::new();
    for _ in 0..REPLY_LINES_MAX {
        line.clear();
        let read = reader
            .take(REPLY_LINE_BYTES_MAX as u64)
            .read_until(b'\n', &mut line)
            .map_err(|e| fail(EX_TEMPFAIL, format!("reading the server's reply: {e}")))?;
        if read == 0 {
            return Err(fail(EX_TEMPFAIL, "the server closed the connection"));
        }
        if !line.ends_with(b"\n") || line.len() < 4 || !line[..3].iter().all(u8::is_ascii_digit) {
            return Err(fail(
                EX_PROTOCOL,
                format!("bad reply line {:?}", String::from_utf8_lossy(&line)),
            ));
        }
        let code = std::str::from_utf8(&line[..3]).expect("digits").parse().expect("digits");
        let text = String::from_utf8_lossy(&line[4..]).trim_end().to_owned();
        match line[3] {
            b' ' | b'\r' | b'\n' => return Ok(Reply { code, text }),
            b'-' => {}
            _ => return Err(fail(EX_PROTOCOL, format!("bad reply line {code} {text:?}"))),
        }
    }
    Err(fail(EX_PROTOCOL, "a reply of too many lines"))
}

fn send(stream: &mut dyn Stream, bytes: &[u8]) -> Result<(), Failure> {
    stream
        .write_all(bytes)
        .and_then(|()| stream.flush())
        .map_err(|e| fail(EX_TEMPFAIL, format!("writing to the server: {e}")))
}

/// The exit code of a negative reply to a recipient or to DATA.
fn refusal_code(reply: &Reply) -> u8 {
    match reply.code {
        400..=499 => EX_TEMPFAIL,
        550 if reply.text.starts_with("5.1.1") => EX_NOUSER,
        _ => EX_CANTCREAT,
    }
}

/// The worst outcome of several, in the order `--help` gives.
fn worst(codes: &[u8]) -> Option<u8> {
    [EX_TEMPFAIL, EX_NOUSER, EX_CANTCREAT, EX_DATAERR].into_iter().find(|code| codes.contains(code))
}

/// The client's side of the conversation: replies are read through a buffer, commands are
/// written to the same stream (one command at a time: no PIPELINING, so nothing is buffered
/// when writing).
struct Conversation {
    reader: BufReader<Box<dyn Stream>>,
}

impl Conversation {
    fn command(&mut self, line: &str) -> Result<Reply, Failure> {
        send(self.reader.get_mut().as_mut(), line.as_bytes())?;
        read_reply(&mut self.reader)
    }
}

/// The MTA's view of a refused sender, `LHLO` or `DATA`: retry on 4xx, else bad data.
fn command_code(reply: &Reply) -> u8 {
    if reply.code < 500 { EX_TEMPFAIL } else { EX_DATAERR }
}

/// The exit code of a negative reply after the message was sent (one per recipient).
fn data_refusal_code(reply: &Reply) -> u8 {
    match reply.code {
        400..=499 => EX_TEMPFAIL,
        // 5.3.4 message too big, 5.6.x bad content: the message itself is at fault.
        _ if reply.text.starts_with("5.3.4") || reply.text.starts_with("5.6.") => EX_DATAERR,
        _ => EX_CANTCREAT,
    }
}

fn transaction(
    stream: Box<dyn Stream>,
    sender: &str,
    recipients: &[String],
    data: &[u8],
) -> Result<(), Failure> {
    let mut conversation = Conversation { reader: BufReader::new(stream) };
    let greeting = read_reply(&mut conversation.reader)?;
    if greeting.code != 220 {
        return Err(fail(command_code(&greeting), format!("greeting: {}", greeting.describe())));
    }
    let lhlo = conversation.command(&format!("LHLO {}\r\n", hostname()))?;
    if lhlo.code != 250 {
        return Err(fail(command_code(&lhlo), format!("LHLO refused: {}", lhlo.describe())));
    }
    let mail = conversation.command(&format!("MAIL FROM:<{sender}>\r\n"))?;
    if !mail.is_positive() {
        return Err(fail(command_code(&mail), format!("sender refused: {}", mail.describe())));
    }
    let mut codes = Vec::new();
    let mut details = Vec::new();
    let mut accepted = 0;
    for recipient in recipients {
        let reply = conversation.command(&format!("RCPT TO:<{recipient}>\r\n"))?;
        if reply.is_positive() {
            accepted += 1;
        } else {
            codes.push(refusal_code(&reply));
            details.push(format!("{recipient}: {}", reply.describe()));
        }
    }
    if accepted > 0 {
        let go = conversation.command("DATA\r\n")?;
        if go.code != 354 {
            return Err(fail(command_code(&go), format!("DATA refused: {}", go.describe())));
        }
        send(conversation.reader.get_mut().as_mut(), data)?;
        // RFC 2033 §4.2: one reply per accepted recipient, in RCPT order.
        for _ in 0..accepted {
            let reply = read_reply(&mut conversation.reader)?;
            if !reply.is_positive() {
                codes.push(data_refusal_code(&reply));
                details.push(format!("after DATA: {}", reply.describe()));
            }
        }
    }
    let _ = conversation.command("QUIT\r\n");
    match worst(&codes) {
        None => Ok(()),
        Some(code) => Err(fail(code, details.join("; "))),
    }
}

/// This host's name for `LHLO` (from /proc; `localhost` when unknown).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_crlf_dot_stuffed_and_terminated() {
        assert_eq!(wire_data(b"A: b\n\n.x\n..\nend"), b"A: b\r\n\r\n..x\r\n...\r\nend\r\n.\r\n");
        assert_eq!(wire_data(b"A: b\r\n\r\nbody\r\n"), b"A: b\r\n\r\nbody\r\n.\r\n");
        assert_eq!(wire_data(b"lone\rcr\r\n"), b"lone\r\ncr\r\n.\r\n");
        assert_eq!(wire_data(b"From a@b Mon Dec  7 07:00:00 2026\nA: b\n"), b"A: b\r\n.\r\n");
        assert_eq!(wire_data(b""), b".\r\n");
    }

    #[test]
    fn replies_parse_multi_line_and_refuse_garbage() {
        let mut input: &[u8] = b"250-skua\r\n250-PIPELINING\r\n250 SIZE 10\r\n220 x\r\n";
        let reply = read_reply(&mut input).ok().unwrap();
        assert_eq!((reply.code, reply.text.as_str()), (250, "SIZE 10"));
        assert_eq!(read_reply(&mut input).ok().unwrap().code, 220);
        let mut closed: &[u8] = b"";
        assert_eq!(read_reply(&mut closed).err().unwrap().code, EX_TEMPFAIL);
        let mut garbage: &[u8] = b"hello\r\n";
        assert_eq!(read_reply(&mut garbage).err().unwrap().code, EX_PROTOCOL);
    }

    #[test]
    fn refusals_map_to_sysexits() {
        let reply = |code, text: &str| Reply { code, text: text.to_owned() };
        assert_eq!(refusal_code(&reply(550, "5.1.1 no such user")), EX_NOUSER);
        assert_eq!(refusal_code(&reply(452, "4.2.2 over quota")), EX_TEMPFAIL);
        assert_eq!(refusal_code(&reply(552, "5.2.2 over quota")), EX_CANTCREAT);
        assert_eq!(data_refusal_code(&reply(552, "5.3.4 too big")), EX_DATAERR);
        assert_eq!(data_refusal_code(&reply(451, "4.3.0 later")), EX_TEMPFAIL);
        assert_eq!(worst(&[EX_CANTCREAT, EX_NOUSER]), Some(EX_NOUSER));
        assert_eq!(worst(&[EX_NOUSER, EX_TEMPFAIL]), Some(EX_TEMPFAIL));
        assert_eq!(worst(&[]), None);
    }

    #[test]
    fn the_unix_socket_is_preferred_over_tcp() {
        let file: FileConfig =
            toml::from_str("[lmtp]\nlisten = [\"127.0.0.1:24\", \"unix:/run/l.sock\"]\n").unwrap();
        assert_eq!(pick_target(&file), Target::Unix(PathBuf::from("/run/l.sock")));
        let file: FileConfig = toml::from_str("[lmtp]\nlisten = [\"127.0.0.1:24\"]\n").unwrap();
        assert_eq!(pick_target(&file), Target::Tcp("127.0.0.1:24".parse().unwrap()));
        assert_eq!(
            pick_target(&FileConfig::default()),
            Target::Tcp("127.0.0.1:2424".parse().unwrap())
        );
    }
}
