//! Reading another IMAP server (`skua import imap URL`): the account's folder tree (`LIST`),
//! then each selectable folder's messages with their UIDs, flags, keywords and internal dates
//! (`UID FETCH (UID FLAGS INTERNALDATE BODY.PEEK[])`, in batches), handed to the importer
//! batch by batch so a big account never sits in memory whole.
//!
//! A small blocking client: `imap://user:password@host[:port]` in plain text, or `imaps://`
//! with implicit TLS against the certificates of `--ca-file`. Responses are framed by
//! literals (RFC 9051 §4.3) and bounded (`RESPONSE_BYTES_MAX`); only the shapes used here are
//! parsed (`* LIST`, `* SEARCH`, `* n FETCH`, tagged status).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use skua_core::types::{InternalDate, SystemFlags};

use super::Message;

/// The longest response read (a message literal at most the store's largest message, plus
/// the rest of its FETCH line).
const RESPONSE_BYTES_MAX: usize = skua_core::limits::MESSAGE_BYTES_MAX as usize + 64 * 1024;
/// UIDs fetched per command.
const FETCH_BATCH: usize = 100;

/// Where `skua import imap` reads from.
#[derive(clap::Args, Debug)]
pub(crate) struct Remote {
    /// `imap://USER[:PASSWORD]@HOST[:PORT]` or `imaps://...` (the password may instead come
    /// from --password-file).
    url: String,
    /// A file whose first line is the password.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// PEM certificates an `imaps://` server's certificate must chain to.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// A logged-in connection.
pub(crate) struct Client {
    stream: BufReader<Box<dyn Stream>>,
    tag: u32,
}

/// One parsed piece of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Atom(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Nil,
}

impl Client {
    /// Connects and logs in as the URL says.
    pub(crate) fn connect(remote: &Remote) -> anyhow::Result<Client> {
        let (tls, rest) = if let Some(rest) = remote.url.strip_prefix("imaps://") {
            (true, rest)
        } else if let Some(rest) = remote.url.strip_prefix("imap://") {
            (false, rest)
        } else {
            bail!("{}: not an imap:// or imaps:// URL", remote.url);
        };
        let (userinfo, host) =
            rest.trim_end_matches('/').rsplit_once('@').context("no user@ in the URL")?;
        let (user, password) = match userinfo.split_once(':') {
            Some((user, password)) => (decode(user), Some(decode(password))),
            None => (decode(userinfo), None),
        };
        let password = match (password, &remote.password_file) {
            (_, Some(file)) => std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?
                .lines()
                .next()
                .unwrap_or("")
                .to_owned(),
            (Some(password), None) => password,
            (None, None) => bail!("no password: put it in the URL or use --password-file"),
        };
        let address = if host.contains(':') && !host.ends_with(']') {
            host.to_owned()
        } else {
            format!("{host}:{}", if tls { 993 } else { 143 })
        };
        let tcp =
            TcpStream::connect(&address).with_context(|| format!("connecting to {address}"))?;
        tcp.set_read_timeout(Some(Duration::from_secs(120)))?;
        let stream: Box<dyn Stream> = if tls {
            let server = host.rsplit_once(':').map_or(host, |(name, _)| name);
            Box::new(tls_stream(tcp, server, remote.ca_file.as_ref())?)
        } else {
            Box::new(tcp)
        };
        let mut client = Client { stream: BufReader::new(stream), tag: 0 };
        let greeting = client.read_response()?;
        if !greeting.starts_with(b"* OK") && !greeting.starts_with(b"* PREAUTH") {
            bail!("the server's greeting: {}", String::from_utf8_lossy(&greeting));
        }
        let login = format!("LOGIN {} {}", quoted(&user), quoted(&password));
        client.command(&login).context("logging in")?;
        Ok(client)
    }

    /// The selectable folders: (name with `/` as separator, UTF-8; name as the server spells it).
    pub(crate) fn folders(&mut self) -> anyhow::Result<Vec<(String, String)>> {
        let mut folders = Vec::new();
        for response in self.command("LIST \"\" \"*\"")? {
            let Some(rest) = response.strip_prefix(b"* LIST ") else { continue };
            let values = parse(rest)?;
            let [Value::List(attributes), delimiter, name] = &values[..] else { continue };
            let unselectable = attributes.iter().any(|a| {
                matches!(a, Value::Atom(a) if a.eq_ignore_ascii_case("\\Noselect") || a.eq_ignore_ascii_case("\\NonExistent"))
            });
            let Some(wire) = text(name) else { continue };
            if unselectable {
                continue;
            }
            let mut local = skua_protocols::imap::utf7::decode(wire.as_bytes())
                .unwrap_or_else(|_| wire.clone());
            if let Some(delimiter) = text(delimiter).filter(|d| d != "/") {
                local = local.replace(&delimiter, "/");
            }
            if local.eq_ignore_ascii_case("INBOX") {
                local = "INBOX".to_owned();
            }
            folders.push((local, wire));
        }
        Ok(folders)
    }

    /// Selects `wire` (read-only) and gives its messages to `each`, a batch at a time.
    pub(crate) fn messages(
        &mut self,
        wire: &str,
        mut each: impl FnMut(Vec<Message>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.command(&format!("EXAMINE {}", quoted(wire)))?;
        let mut uids = Vec::new();
        for response in self.command("UID SEARCH ALL")? {
            if let Some(rest) = response.strip_prefix(b"* SEARCH") {
                let text = String::from_utf8_lossy(rest);
                uids.extend(text.split_whitespace().filter_map(|n| n.parse::<u32>().ok()));
            }
        }
        uids.sort_unstable();
        for batch in uids.chunks(FETCH_BATCH) {
            let set: Vec<String> = batch.iter().map(u32::to_string).collect();
            let command =
                format!("UID FETCH {} (UID FLAGS INTERNALDATE BODY.PEEK[])", set.join(","));
            let mut messages = Vec::with_capacity(batch.len());
            for response in self.command(&command)? {
                if let Some(message) = fetched(&response)? {
                    messages.push(message);
                }
            }
            each(messages)?;
        }
        Ok(())
    }

    /// Sends `text` with a new tag; the untagged responses, once the tagged OK came.
    fn command(&mut self, text: &str) -> anyhow::Result<Vec<Vec<u8>>> {
        self.tag += 1;
        let tag = format!("i{}", self.tag);
        self.stream.get_mut().write_all(format!("{tag} {text}\r\n").as_bytes())?;
        self.stream.get_mut().flush()?;
        let mut untagged = Vec::new();
        loop {
            let response = self.read_response()?;
            if let Some(status) = response.strip_prefix(format!("{tag} ").as_bytes()) {
                if status.starts_with(b"OK") {
                    return Ok(untagged);
                }
                let verb = text.split(' ').next().unwrap_or(text);
                bail!("{verb}: {}", String::from_utf8_lossy(status));
            }
            untagged.push(response);
        }
    }

    /// One response, literals included, without its final CRLF.
    fn read_response(&mut self) -> anyhow::Result<Vec<u8>> {
        let mut response = Vec::new();
        loop {
            let mut line = Vec::new();
            let read = self.stream.by_ref().take(64 * 1024 + 2).read_until(b'\n', &mut line)?;
            if read == 0 {
                bail!("the server closed the connection");
            }
            if !line.ends_with(b"\n") {
                bail!("a response line longer than 64 KiB");
            }
            line.truncate(line.len() - if line.ends_with(b"\r\n") { 2 } else { 1 });
            let literal = literal_length(&line);
            response.extend_from_slice(&line);
            let Some(length) = literal else { return Ok(response) };
            if response.len() + length > RESPONSE_BYTES_MAX {
                bail!("a response larger than {RESPONSE_BYTES_MAX} bytes");
            }
            response.extend_from_slice(b"\r\n");
            let start = response.len();
            response.resize(start + length, 0);
            self.stream.read_exact(&mut response[start..])?;
        }
    }
}

/// `{n}` or `{n+}` at the end of a line: the literal's length.
fn literal_length(line: &[u8]) -> Option<usize> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = inner[open + 1..].strip_suffix(b"+").unwrap_or(&inner[open + 1..]);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The message of a `* n FETCH (...)` response, if it is one with a body.
fn fetched(response: &[u8]) -> anyhow::Result<Option<Message>> {
    let Some(rest) = response.strip_prefix(b"* ") else { return Ok(None) };
    let values = parse(rest)?;
    let [_, Value::Atom(fetch), Value::List(items)] = &values[..] else { return Ok(None) };
    if !fetch.eq_ignore_ascii_case("FETCH") {
        return Ok(None);
    }
    let (mut uid, mut flags, mut date, mut body) = (None, Vec::new(), None, None);
    for pair in items.chunks(2) {
        let [Value::Atom(name), value] = pair else { continue };
        match (name.to_ascii_uppercase().as_str(), value) {
            ("UID", Value::Atom(n)) => uid = n.parse().ok(),
            ("FLAGS", Value::List(list)) => flags = list.iter().filter_map(text).collect(),
            ("INTERNALDATE", value) => date = text(value).and_then(|d| internal_date(&d)),
            ("BODY[]", Value::Bytes(bytes)) => body = Some(bytes.clone()),
            _ => {}
        }
    }
    let Some(bytes) = body.filter(|b| !b.is_empty()) else { return Ok(None) };
    let mut system = 0u16;
    let mut keywords = Vec::new();
    for flag in flags {
        match flag.to_ascii_lowercase().as_str() {
            "\\seen" => system |= SystemFlags::SEEN,
            "\\answered" => system |= SystemFlags::ANSWERED,
            "\\flagged" => system |= SystemFlags::FLAGGED,
            "\\deleted" => system |= SystemFlags::DELETED,
            "\\draft" => system |= SystemFlags::DRAFT,
            other if other.starts_with('\\') => {}
            _ => keywords.push(flag),
        }
    }
    Ok(Some(Message { bytes, system: SystemFlags(system), keywords, date, uid }))
}

/// `07-Dec-2026 10:00:00 +0100`.
fn internal_date(text: &str) -> Option<InternalDate> {
    let (date, rest) = text.trim().split_once(' ')?;
    let (time, zone) = rest.split_once(' ')?;
    let mut parts = date.split('-');
    let day: u32 = parts.next()?.trim().parse().ok()?;
    let month = super::mbox::month(parts.next()?)?;
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = time.split(':').map(str::parse::<i64>);
    let (h, m, s) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next()?.ok()?);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let zone_digits: i64 = zone.get(1..5)?.parse().ok()?;
    let zone_minutes = sign * (zone_digits / 100 * 60 + zone_digits % 100);
    let local = super::mbox::days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s;
    Some(InternalDate {
        unix_seconds: local - zone_minutes * 60,
        zone_minutes: i16::try_from(zone_minutes).ok()?,
    })
}

/// Parses a response's values: atoms, quoted strings, literals, NIL and lists.
fn parse(bytes: &[u8]) -> anyhow::Result<Vec<Value>> {
    let mut at = 0;
    let values = parse_list(bytes, &mut at, 0)?;
    Ok(values)
}

fn parse_list(bytes: &[u8], at: &mut usize, depth: usize) -> anyhow::Result<Vec<Value>> {
    if depth > 32 {
        bail!("a response nested too deep");
    }
    let mut values = Vec::new();
    while *at < bytes.len() {
        match bytes[*at] {
            b' ' => *at += 1,
            b')' => {
                *at += 1;
                return Ok(values);
            }
            b'(' => {
                *at += 1;
                values.push(Value::List(parse_list(bytes, at, depth + 1)?));
            }
            b'"' => {
                *at += 1;
                let mut text = Vec::new();
                while *at < bytes.len() && bytes[*at] != b'"' {
                    if bytes[*at] == b'\\' {
                        *at += 1;
                    }
                    text.extend(bytes.get(*at));
                    *at += 1;
                }
                *at += 1;
                values.push(Value::Bytes(text));
            }
            b'{' => {
                let close =
                    bytes[*at..].iter().position(|&b| b == b'}').context("a bad literal")?;
                let length =
                    literal_length(&bytes[*at..*at + close + 1]).context("a bad literal")?;
                let start = *at + close + 3; // `}` CR LF
                let end = start.checked_add(length).filter(|&e| e <= bytes.len());
                let end = end.context("a literal past the response")?;
                values.push(Value::Bytes(bytes[start..end].to_vec()));
                *at = end;
            }
            _ => {
                let start = *at;
                let mut brackets = 0i32;
                while *at < bytes.len() {
                    match bytes[*at] {
                        b'[' => brackets += 1,
                        b']' => brackets -= 1,
                        b' ' | b'(' | b')' if brackets <= 0 => break,
                        _ => {}
                    }
                    *at += 1;
                }
                let atom = String::from_utf8_lossy(&bytes[start..*at]).into_owned();
                values.push(if atom.eq_ignore_ascii_case("NIL") {
                    Value::Nil
                } else {
                    Value::Atom(atom)
                });
            }
        }
    }
    Ok(values)
}

/// A value as text (atoms and strings).
fn text(value: &Value) -> Option<String> {
    match value {
        Value::Atom(text) => Some(text.clone()),
        Value::Bytes(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        _ => None,
    }
}

/// A quoted string (a literal would need the server's continuation: names and passwords here
/// are short and on one line).
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Percent-decoding of the URL's user and password.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Implicit TLS to `server`, trusting the certificates of `ca_file`.
fn tls_stream(
    tcp: TcpStream,
    server: &str,
    ca_file: Option<&PathBuf>,
) -> anyhow::Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    use rustls::pki_types::pem::PemObject;
    let Some(ca_file) = ca_file else {
        bail!("imaps:// needs --ca-file with the certificates the server's must chain to");
    };
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls::pki_types::CertificateDer::pem_file_iter(ca_file)
        .with_context(|| format!("reading {}", ca_file.display()))?
    {
        roots.add(certificate?)?;
    }
    // The same provider as the shards' TLS (`skua_shard::tls::provider`).
    let provider = Arc::new(skua_shard::tls::provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(server.trim_matches(['[', ']']).to_owned())?;
    let connection = rustls::ClientConnection::new(Arc::new(config), name)?;
    Ok(rustls::StreamOwned::new(connection, tcp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_responses_parse() {
        let response = b"* 2 FETCH (UID 7 FLAGS (\\Seen $Work \\Recent) INTERNALDATE \"07-Dec-2026 11:00:00 +0100\" BODY[] {5}\r\nhello)";
        let message = fetched(response).unwrap().unwrap();
        assert_eq!(message.uid, Some(7));
        assert_eq!(message.bytes, b"hello");
        assert_eq!(message.system.0, SystemFlags::SEEN);
        assert_eq!(message.keywords, ["$Work"]);
        let date = message.date.unwrap();
        assert_eq!((date.unix_seconds, date.zone_minutes), (1_796_637_600, 60));
        assert!(fetched(b"* 3 EXISTS").unwrap().is_none());
    }

    #[test]
    fn list_and_literals() {
        let values = parse(b"(\\HasNoChildren) \"/\" {5}\r\nA \"b\"").unwrap();
        assert_eq!(values[2], Value::Bytes(b"A \"b\"".to_vec()));
        assert_eq!(literal_length(b"* 1 FETCH (BODY[] {123}"), Some(123));
        assert_eq!(literal_length(b"{12+}"), Some(12));
        assert_eq!(decode("al%40ice"), "al@ice");
        assert!(parse(&[b'('; 100]).is_err(), "nesting is bounded");
    }
}
