//! `--server-metrics URL`: what the server's storage did during the measured phase, read from
//! its Prometheus endpoint (skua's `[metrics] listen`).
//!
//! The bench scrapes the endpoint right before and right after the measured phase (one plain
//! HTTP/1.1 GET each, over a std `TcpStream`, to a loopback address only) and reports the
//! differences: fdatasync calls and group-commit flush rounds, per operation of the scenario's
//! unit, and flush-round latency percentiles. The server exports histograms, not samples, so
//! the percentiles are estimates: the rank is located in the bucket whose cumulative count
//! first reaches it (over the bucket counts' deltas), and the value is interpolated linearly
//! between that bucket's bounds, as Prometheus' `histogram_quantile` does.
//!
//! A failed scrape does not fail the run: the report says `server_metrics: unavailable
//! (reason)` instead of the figures.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::stats::report::Report;

/// Longest a scrape may take (connect, send, read).
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest response read; skua's page is a few KiB.
const MAX_RESPONSE_BYTES: u64 = 8 << 20;

const FLUSH_ROUNDS: &str = "skua_flush_round_seconds";
const FDATASYNCS: &str = "skua_fdatasync_seconds";
const DELIVERIES: &str = "skua_lmtp_deliveries_total";
const IMAP_COMMANDS: &str = "skua_imap_command_seconds_count";

/// An endpoint to scrape: an `http://` URL whose host is loopback.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    addr: SocketAddr,
    host: String,
    path: String,
}

/// Parses `http://HOST[:PORT][/PATH]` and resolves HOST, which must be loopback.
pub fn parse_url(url: &str) -> Result<Endpoint, String> {
    let rest = url
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("http://"))
        .map(|_| &url[7..])
        .ok_or_else(|| format!("--server-metrics {url:?}: only http:// URLs are supported"))?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.starts_with('[') || h.ends_with(']') => {
            (h, p.parse::<u16>().map_err(|_| format!("--server-metrics: bad port {p:?}"))?)
        }
        _ => (authority, 80),
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.is_empty() {
        return Err(format!("--server-metrics {url:?}: no host"));
    }
    let addr = crate::target::resolve_loopback(bare, port)
        .map_err(|e| format!("--server-metrics: {e}"))?;
    Ok(Endpoint { addr, host: authority.to_owned(), path: path.to_owned() })
}

/// GETs the endpoint and returns the body of a `200` answer.
pub fn fetch(to: &Endpoint) -> Result<String, String> {
    let mut stream = TcpStream::connect_timeout(&to.addr, SCRAPE_TIMEOUT)
        .map_err(|e| format!("connecting to {}: {e}", to.addr))?;
    let io = |e: std::io::Error| format!("talking to {}: {e}", to.addr);
    stream.set_read_timeout(Some(SCRAPE_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(SCRAPE_TIMEOUT)).map_err(io)?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n",
        to.path, to.host
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut raw = Vec::new();
    stream.take(MAX_RESPONSE_BYTES + 1).read_to_end(&mut raw).map_err(io)?;
    if raw.len() as u64 > MAX_RESPONSE_BYTES {
        return Err(format!("the answer is over {MAX_RESPONSE_BYTES} bytes"));
    }
    parse_response(&raw)
}

/// The body of an HTTP/1.x response read to the end of the connection; an error unless `200`.
pub fn parse_response(raw: &[u8]) -> Result<String, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the answer has no complete HTTP head")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "the HTTP head is not UTF-8")?;
    let body = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let mut parts = status.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x answer: {status:?}"));
    }
    if code != "200" {
        return Err(format!("HTTP status {:?}", status.get(version.len() + 1..).unwrap_or("")));
    }
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| "bad Content-Length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let body = if chunked {
        dechunk(body)?
    } else if let Some(n) = length {
        body.get(..n).ok_or("the body is shorter than its Content-Length")?.to_vec()
    } else {
        body.to_vec()
    };
    String::from_utf8(body).map_err(|_| "the body is not UTF-8".into())
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n").ok_or("truncated chunk size")?;
        let size = std::str::from_utf8(&rest[..eol]).map_err(|_| "bad chunk size")?;
        let size = size.split(';').next().unwrap_or_default().trim();
        let n = usize::from_str_radix(size, 16).map_err(|_| format!("bad chunk size {size:?}"))?;
        rest = &rest[eol + 2..];
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(rest.get(..n).ok_or("truncated chunk")?);
        rest = rest.get(n + 2..).ok_or("truncated chunk")?;
    }
}

/// One sample line of the text format: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name, with its `_bucket`/`_count`/`_sum`/`_total` suffix.
    pub name: String,
    /// Label pairs in the order written.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

impl Sample {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Parses the Prometheus text exposition format (0.0.4, and the OpenMetrics text skua's
/// encoder writes): comment lines and `# EOF` are skipped, a timestamp after the value ignored.
pub fn parse_text(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        samples.push(parse_line(line).map_err(|e| format!("line {}: {e}: {line:?}", n + 1))?);
    }
    Ok(samples)
}

fn parse_line(line: &str) -> Result<Sample, &'static str> {
    let name_end = line.find(['{', ' ', '\t']).ok_or("no value")?;
    let name = &line[..name_end];
    if name.is_empty() {
        return Err("no metric name");
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        rest = inner;
        loop {
            rest = rest.trim_start_matches([' ', ',']);
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = rest.split_once('=').ok_or("label without '='")?;
            let after = after.strip_prefix('"').ok_or("label value not quoted")?;
            let (value, after) = unquote(after)?;
            labels.push((key.trim().to_owned(), value));
            rest = after;
        }
    }
    let value = rest.split_whitespace().next().ok_or("no value")?;
    let value = value.parse::<f64>().map_err(|_| "value is not a number")?;
    Ok(Sample { name: name.to_owned(), labels, value })
}

/// A label value up to its closing quote (escapes `\\`, `\"`, `\n`), and what follows.
fn unquote(s: &str) -> Result<(String, &str), &'static str> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, c)) => out.push(c),
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("unterminated label value")
}

/// Sum of the samples named `name` whose labels include every pair of `with`.
fn total(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> Option<f64> {
    let mut found = false;
    let sum = samples
        .iter()
        .filter(|s| s.name == name && with.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .inspect(|_| found = true)
        .map(|s| s.value)
        .sum();
    found.then_some(sum)
}

/// A histogram of one scrape (every label set added up): cumulative bucket counts by upper
/// bound, ascending, `+Inf` last; the count and the sum of observations.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// `(le, cumulative count)`.
    pub buckets: Vec<(f64, f64)>,
    /// Observations.
    pub count: f64,
    /// Sum of observations, seconds.
    pub sum: f64,
}

impl Histogram {
    /// The histogram `name` (`<name>_bucket`, `_count`, `_sum`) in `samples`.
    pub fn find(samples: &[Sample], name: &str) -> Result<Self, String> {
        let bucket = format!("{name}_bucket");
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        for s in samples.iter().filter(|s| s.name == bucket) {
            let le = s.label("le").ok_or_else(|| format!("{bucket} without le"))?;
            let le: f64 = le.parse().map_err(|_| format!("{bucket}: bad le {le:?}"))?;
            match buckets.iter_mut().find(|(b, _)| *b == le) {
                Some((_, c)) => *c += s.value,
                None => buckets.push((le, s.value)),
            }
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        if buckets.last().is_none_or(|(le, _)| *le != f64::INFINITY) {
            return Err(format!("no {bucket}{{le=\"+Inf\"}} in the server's metrics"));
        }
        let count = total(samples, &format!("{name}_count"), &[])
            .ok_or_else(|| format!("no {name}_count in the server's metrics"))?;
        let sum = total(samples, &format!("{name}_sum"), &[]).unwrap_or(0.0);
        Ok(Self { buckets, count, sum })
    }

    /// What was observed between `before` and `self` (same bucket bounds).
    pub fn since(&self, before: &Self) -> Result<Self, String> {
        let same = self.buckets.len() == before.buckets.len()
            && self.buckets.iter().zip(&before.buckets).all(|(a, b)| a.0 == b.0);
        if !same {
            return Err("the histogram's buckets changed between the scrapes".into());
        }
        let buckets: Vec<(f64, f64)> =
            self.buckets.iter().zip(&before.buckets).map(|(a, b)| (a.0, a.1 - b.1)).collect();
        let count = self.count - before.count;
        if count < 0.0 || buckets.iter().any(|(_, c)| *c < 0.0) {
            return Err("counters went backwards between the scrapes (server restarted?)".into());
        }
        Ok(Self { buckets, count, sum: self.sum - before.sum })
    }

    /// The `q` quantile in seconds, interpolated linearly inside the bucket holding its rank;
    /// `true` with it when the rank falls in the `+Inf` bucket (the value is then the largest
    /// finite bound, a lower bound of the true quantile). None without observations.
    pub fn quantile(&self, q: f64) -> Option<(f64, bool)> {
        let total = self.buckets.last()?.1;
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(le, cumulative) in &self.buckets {
            if cumulative >= rank && cumulative > lower.1 {
                if le == f64::INFINITY {
                    return Some((lower.0, true));
                }
                let share = (rank - lower.1) / (cumulative - lower.1);
                return Some((lower.0 + (le - lower.0) * share, false));
            }
            lower = (le, cumulative);
        }
        None
    }
}

/// One scrape's readings the report needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    rounds: Histogram,
    syncs: Histogram,
    delivered: Option<f64>,
    imap_commands: Option<f64>,
}

impl Reading {
    /// Picks the readings out of a scrape's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let samples = parse_text(text)?;
        Ok(Self {
            rounds: Histogram::find(&samples, FLUSH_ROUNDS)?,
            syncs: Histogram::find(&samples, FDATASYNCS)?,
            delivered: total(&samples, DELIVERIES, &[("outcome", "delivered")]),
            imap_commands: total(&samples, IMAP_COMMANDS, &[]),
        })
    }
}

/// The scrape taken at the start of the measured phase.
#[derive(Debug)]
pub struct Before {
    to: Endpoint,
    reading: Result<Reading, String>,
}

fn scrape(to: &Endpoint) -> Result<Reading, String> {
    Reading::parse(&fetch(to)?)
}

impl Before {
    /// Scrapes `to` now; a failure is kept for the report.
    pub fn take(to: Endpoint) -> Self {
        let reading = scrape(&to).map_err(|e| format!("scrape at the start: {e}"));
        Self { to, reading }
    }

    /// Scrapes again: the phase's two readings, or why there are none.
    pub fn after(&self) -> Phase {
        let after = |before| match scrape(&self.to) {
            Ok(after) => Ok((before, after)),
            Err(e) => Err(format!("scrape at the end: {e}")),
        };
        Phase(self.reading.clone().and_then(after))
    }
}

/// The readings of the measured phase's start and end, or why they are missing.
#[derive(Debug)]
pub struct Phase(Result<(Reading, Reading), String>);

impl Phase {
    /// Adds the figures to `report`: totals, then per operation for each `(unit, count)`
    /// (e.g. `("delivery", 1200)`), or `server_metrics: unavailable (why)`.
    pub fn add_to(&self, report: &mut Report, units: &[(&str, u64)]) {
        let figures = self.0.as_ref().map_err(Clone::clone);
        match figures.and_then(|(before, after)| figures_of(before, after, units)) {
            Ok(figures) => {
                for (key, value) in figures {
                    report.extra(&key, value);
                }
            }
            Err(why) => report.extra("server_metrics", format!("unavailable ({why})")),
        }
    }
}

/// The report's figures from two readings, as `(key, value)` in report order.
pub fn figures_of(
    before: &Reading,
    after: &Reading,
    units: &[(&str, u64)],
) -> Result<Vec<(String, serde_json::Value)>, String> {
    let rounds = after.rounds.since(&before.rounds)?;
    let syncs = after.syncs.since(&before.syncs)?;
    let mut out: Vec<(String, serde_json::Value)> = Vec::new();
    let mut put = |k: String, v: serde_json::Value| out.push((k, v));
    put("server_fdatasyncs".into(), (syncs.count as u64).into());
    put("server_flush_rounds".into(), (rounds.count as u64).into());
    for &(unit, n) in units.iter().filter(|(_, n)| *n > 0) {
        let unit = unit.to_ascii_lowercase().replace([' ', '-'], "_");
        put(format!("server_fdatasyncs_per_{unit}"), round3(syncs.count / n as f64).into());
        put(format!("server_flush_rounds_per_{unit}"), round3(rounds.count / n as f64).into());
    }
    if rounds.count > 0.0 {
        put("server_flush_round_mean_us".into(), round3(rounds.sum / rounds.count * 1e6).into());
    }
    let mut above = Vec::new();
    for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)] {
        if let Some((seconds, past_top)) = rounds.quantile(q) {
            put(format!("server_flush_round_{name}_us"), round3(seconds * 1e6).into());
            if past_top {
                above.push(name);
            }
        }
    }
    if rounds.count > 0.0 {
        let mut how = "estimated from the server's histogram buckets (linear interpolation \
                       inside a bucket)"
            .to_owned();
        if !above.is_empty() {
            how += &format!(
                "; {} past the top finite bucket: shown as that bound, a lower bound",
                above.join(", ")
            );
        }
        put("server_flush_round_percentiles".into(), how.into());
    }
    if syncs.count > 0.0 {
        put("server_fdatasync_mean_us".into(), round3(syncs.sum / syncs.count * 1e6).into());
    }
    let delta = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| (a - b).max(0.0) as u64);
    if let Some(d) = delta(after.delivered, before.delivered) {
        put("server_lmtp_delivered".into(), d.into());
    }
    if let Some(c) = delta(after.imap_commands, before.imap_commands) {
        put("server_imap_commands".into(), c.into());
    }
    Ok(out)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
#[path = "server_metrics_tests.rs"]
mod tests;
