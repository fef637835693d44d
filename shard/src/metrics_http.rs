//! The Prometheus endpoint (`[metrics] listen`): plain HTTP/1.1, `GET /metrics` (and HEAD), one
//! request per connection, served by shard 0 alone (`shard.rs` binds it there).
//!
//! ```text
//!  accept (shard 0) ─ over METRICS_CONNECTIONS_MAX? close
//!      read until the head ends (CRLF CRLF), at most REQUEST_BYTES_MAX, within the timeout
//!      ─ parse_request ─► GET /metrics: 200, the exposition (metrics.rs); HEAD: its head
//!                         other path:   404      other method on /metrics: 405 + Allow
//!                         malformed or too long: 400
//!      ─ write, close
//! ```
//!
//! Why so little HTTP: the only client is a scraper asking every few seconds, so there is no
//! keep-alive, no chunking and no request body; every response says `Connection: close`
//! and has a `Content-Length`. The parsing is a pure function ([`parse_request`]) tested
//! without a socket. What bounds a scraper (or anyone who can reach the port: bind it to a
//! private address, README "Metrics"): the request head's size, the connections open at once,
//! and one read timeout for the whole request. A scrape reads every shard's atomics and
//! `/proc/self` on shard 0's thread (tens of microseconds for a few shards).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_lite::future;

use crate::conn::{Connection, ReadOutcome};
use crate::metrics::{Exposition, ProcessFigures};
use crate::shard::Shard;

/// Bytes of a request head (request line and header fields) at most; more is a 400. A
/// scraper's head is a few hundred bytes.
pub(crate) const REQUEST_BYTES_MAX: usize = 8 * 1024;

/// Metrics connections open at once at most; more are closed at once, unanswered.
pub(crate) const METRICS_CONNECTIONS_MAX: usize = 8;

/// The whole request must arrive within this.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What a request head asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// The head has not ended yet: read more.
    NeedMore,
    /// `GET /metrics` (a query string is ignored).
    Metrics,
    /// `HEAD /metrics`: the same header fields, no body (RFC 9110 §9.3.2).
    MetricsHead,
    /// Another path: 404.
    NotFound,
    /// `/metrics` with a method other than GET: 405.
    MethodNotAllowed,
    /// Not an HTTP/1.x request head, or longer than [`REQUEST_BYTES_MAX`]: 400.
    Bad,
}

/// Reads the request head at the start of `received` (RFC 9112 §2.1, §3: `request-line
/// *( field-line CRLF ) CRLF`, `request-line = method SP request-target SP HTTP-version`).
/// Bare LF line ends are accepted (RFC 9112 §2.2 allows a recipient to).
pub(crate) fn parse_request(received: &[u8]) -> Request {
    let Some(head_len) = head_end(received) else {
        return if received.len() >= REQUEST_BYTES_MAX { Request::Bad } else { Request::NeedMore };
    };
    if head_len > REQUEST_BYTES_MAX {
        return Request::Bad;
    }
    let Ok(head) = std::str::from_utf8(&received[..head_len]) else {
        return Request::Bad;
    };
    let mut lines = head.lines();
    let Some(request_line) = lines.next() else { return Request::Bad };
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Request::Bad;
    };
    let token = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic());
    let fields_ok = lines.filter(|line| !line.is_empty()).all(|line| {
        line.split_once(':').is_some_and(|(name, _)| token(name) && !name.contains(':'))
    });
    if !token(method) || !target.starts_with('/') || !token(target) || !fields_ok {
        return Request::Bad;
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Request::Bad;
    }
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    match (path, method) {
        ("/metrics", "GET") => Request::Metrics,
        ("/metrics", "HEAD") => Request::MetricsHead,
        ("/metrics", _) => Request::MethodNotAllowed,
        _ => Request::NotFound,
    }
}

/// Where the head ends (just past its empty line), if it has.
fn head_end(received: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(offset) = received[at..].iter().position(|&b| b == b'\n') {
        let line_end = at + offset + 1;
        let line = &received[at..line_end];
        if line == b"\n" || line == b"\r\n" {
            return Some(line_end);
        }
        at = line_end;
    }
    None
}

/// The whole response to `request` (never [`Request::NeedMore`]); `body` is the exposition
/// for [`Request::Metrics`] (and its length for [`Request::MetricsHead`]), `now` the `Date` (RFC 9110 §6.6.1: an origin server with a clock
/// sends it in every 2xx and 4xx response).
pub(crate) fn response(request: Request, body: &str, now: SystemTime) -> Vec<u8> {
    let (status, content_type, body, allow) = match request {
        Request::Metrics | Request::MetricsHead => {
            ("200 OK", prometheus_client::encoding::prometheus_text::CONTENT_TYPE, body, "")
        }
        Request::NotFound => ("404 Not Found", TEXT, "not found: try /metrics\n", ""),
        Request::MethodNotAllowed => {
            ("405 Method Not Allowed", TEXT, "method not allowed\n", "Allow: GET, HEAD\r\n")
        }
        Request::Bad | Request::NeedMore => ("400 Bad Request", TEXT, "bad request\n", ""),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nDate: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         {allow}Connection: close\r\n\r\n",
        imf_fixdate(now),
        body.len()
    )
    .into_bytes();
    if request != Request::MetricsHead {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

const TEXT: &str = "text/plain; charset=utf-8";

/// `now` as an IMF-fixdate (RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
fn imf_fixdate(now: SystemTime) -> String {
    let seconds = now.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
    let days = seconds / 86_400;
    let of_day = seconds % 86_400;
    let (year, month, day) = skua_protocols::imap::parser::date::civil_from_days(
        i64::try_from(days).expect("days since 1970 fit i64"),
    );
    // 1970-01-01 was a Thursday.
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let month_name =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            [month as usize - 1];
    format!(
        "{weekday}, {day:02} {month_name} {year} {:02}:{:02}:{:02} GMT",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// The endpoint on shard 0: the exposition and the count of its open connections.
pub(crate) struct Endpoint {
    exposition: Exposition,
    open: Cell<usize>,
}

impl Endpoint {
    /// Over every shard's counters.
    pub(crate) fn new(shard: &Shard) -> Rc<Endpoint> {
        let metrics: Arc<crate::metrics::Metrics> = shard.shared.metrics.clone();
        Rc::new(Endpoint { exposition: Exposition::new(metrics), open: Cell::new(0) })
    }

    /// Serves one accepted connection (made with [`REQUEST_TIMEOUT`]): one request, one
    /// response, close.
    pub(crate) async fn serve(
        self: Rc<Self>,
        shard: Rc<Shard>,
        connection: std::io::Result<Connection>,
    ) {
        let Ok(connection) = connection else {
            return;
        };
        if self.open.get() >= METRICS_CONNECTIONS_MAX {
            tracing::debug!(peer = %connection.peer(), "metrics connection refused: too many");
            connection.close().await;
            return;
        }
        self.open.set(self.open.get() + 1);
        let _open = OpenGuard(&self.open);
        let mut connection = connection;
        let request = future::or(read_request(&mut connection), async {
            shard.stop.wait_past(0).await;
            None
        })
        .await;
        if let Some(request) = request {
            let body = if matches!(request, Request::Metrics | Request::MetricsHead) {
                self.exposition.render(ProcessFigures::read())
            } else {
                tracing::debug!(peer = %connection.peer(), ?request, "metrics request refused");
                String::new()
            };
            let _ = connection.write_all(&response(request, &body, SystemTime::now())).await;
        }
        connection.close().await;
    }
}

/// Gives a connection's place back.
struct OpenGuard<'a>(&'a Cell<usize>);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// Reads until the request head is whole; `None` when the peer closed or went quiet first.
async fn read_request(connection: &mut Connection) -> Option<Request> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut received = Vec::new();
    loop {
        let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
        match connection.read(left).await {
            Ok(ReadOutcome::Data(len)) => {
                let room = REQUEST_BYTES_MAX + 1 - received.len().min(REQUEST_BYTES_MAX + 1);
                let input = connection.input(len);
                received.extend_from_slice(&input[..len.min(room)]);
            }
            Ok(ReadOutcome::Closed | ReadOutcome::TimedOut) | Err(_) => return None,
        }
        match parse_request(&received) {
            Request::NeedMore => {}
            request => return Some(request),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrapers_request_is_served_and_the_rest_refused() {
        let scrape = b"GET /metrics HTTP/1.1\r\nHost: mail:9100\r\nAccept: text/plain\r\n\r\n";
        assert_eq!(parse_request(scrape), Request::Metrics);
        assert_eq!(parse_request(b"GET /metrics?x=1 HTTP/1.0\n\n"), Request::Metrics);
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\n\r\n"), Request::NotFound);
        assert_eq!(parse_request(b"GET /metricsx HTTP/1.1\r\n\r\n"), Request::NotFound);
        assert_eq!(parse_request(b"POST /metrics HTTP/1.1\r\n\r\n"), Request::MethodNotAllowed);
        assert_eq!(parse_request(b"HEAD /metrics HTTP/1.1\r\n\r\n"), Request::MetricsHead);
        assert_eq!(parse_request(b"PUT /metrics HTTP/1.1\r\n\r\n"), Request::MethodNotAllowed);
    }

    #[test]
    fn a_head_is_read_whole_before_it_is_judged() {
        let whole = b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
        for cut in 0..whole.len() {
            assert_eq!(parse_request(&whole[..cut]), Request::NeedMore, "cut at {cut}");
        }
        assert_eq!(parse_request(whole), Request::Metrics);
    }

    #[test]
    fn malformed_and_oversized_heads_are_bad_requests() {
        for bad in [
            &b"GET /metrics\r\n\r\n"[..],
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/2\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\n: empty name\r\n\r\n",
            b"\r\n\r\n",
            b"GET /m\xff HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(parse_request(bad), Request::Bad, "{}", String::from_utf8_lossy(bad));
        }
        let mut long = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        long.resize(REQUEST_BYTES_MAX, b'a');
        assert_eq!(parse_request(&long), Request::Bad, "no end within the bound");
        long.truncate(REQUEST_BYTES_MAX - 1);
        assert_eq!(parse_request(&long), Request::NeedMore, "one byte below the bound");
        long.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_request(&long), Request::Bad, "the head ends past the bound");
    }

    #[test]
    fn responses_carry_length_date_and_close() {
        let date = UNIX_EPOCH + Duration::from_secs(784_111_777); // RFC 9110's example
        let ok = String::from_utf8(response(Request::Metrics, "a 1\n", date)).expect("text");
        assert_eq!(
            ok,
            "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: 4\r\n\
             Connection: close\r\n\r\na 1\n"
        );
        let refused = String::from_utf8(response(Request::MethodNotAllowed, "", date)).expect("");
        assert!(refused.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{refused}");
        assert!(refused.contains("\r\nAllow: GET, HEAD\r\n"), "RFC 9110 §15.5.6: {refused}");
        let head = String::from_utf8(response(Request::MetricsHead, "a 1\n", date)).expect("");
        assert!(head.ends_with("Content-Length: 4\r\nConnection: close\r\n\r\n"), "{head}");
        let missing = String::from_utf8(response(Request::NotFound, "", date)).expect("");
        assert!(missing.starts_with("HTTP/1.1 404 Not Found\r\n"), "{missing}");
        let bad = String::from_utf8(response(Request::Bad, "", date)).expect("");
        assert!(bad.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{bad}");
        assert!(bad.ends_with("Content-Length: 12\r\nConnection: close\r\n\r\nbad request\n"));
    }

    #[test]
    fn dates_follow_the_calendar() {
        let at = |seconds| imf_fixdate(UNIX_EPOCH + Duration::from_secs(seconds));
        assert_eq!(at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(at(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT"); // a 400-year leap day
        assert_eq!(at(4_107_542_399), "Sun, 28 Feb 2100 23:59:59 GMT"); // 2100: no leap day
        assert_eq!(at(4_107_542_400), "Mon, 01 Mar 2100 00:00:00 GMT");
        assert_eq!(at(1_796_601_600), "Mon, 07 Dec 2026 00:00:00 GMT");
    }
}
