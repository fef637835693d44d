use std::io::{BufRead, BufReader};
use std::net::TcpListener;

use super::*;
use crate::stats::{Live, Recorder};

/// Two scrapes of a real skua around an LMTP run (see their first lines).
const BEFORE: &str = include_str!("server_metrics_before.txt");
const AFTER: &str = include_str!("server_metrics_after.txt");

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-3
}

fn value(figures: &[(String, serde_json::Value)], key: &str) -> serde_json::Value {
    figures.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default()
}

#[test]
fn parses_the_text_format() {
    let samples = parse_text(AFTER).unwrap();
    assert!(samples.iter().all(|s| s.name.starts_with("skua_")), "comments skipped");
    let open = &samples[0];
    assert_eq!(open.name, "skua_connections_open");
    assert_eq!(
        open.labels,
        [("protocol".to_owned(), "imap".to_owned()), ("shard".to_owned(), "0".to_owned())]
    );
    assert_eq!(total(&samples, DELIVERIES, &[("outcome", "delivered")]), Some(12947.0));
    assert_eq!(total(&samples, "skua_fdatasync_seconds_sum", &[]), Some(13.225459541));
    assert_eq!(total(&samples, "skua_no_such_metric", &[]), None);
    // Escapes in label values, a timestamp, exponents, and the special values.
    let s =
        parse_text("m{a=\"x\\\"y\\\\z\\n\",b=\"}\"} 1.5e3 1700000000000\nn +Inf\no NaN").unwrap();
    assert_eq!(s[0].labels[0].1, "x\"y\\z\n");
    assert_eq!(s[0].labels[1].1, "}");
    assert_eq!(s[0].value, 1500.0);
    assert_eq!(s[1].value, f64::INFINITY);
    assert!(s[2].value.is_nan());
    assert!(parse_text("m{a=\"x} 1").is_err(), "unterminated label value");
    assert!(parse_text("m 1\nm{a=b} 2").unwrap_err().starts_with("line 2:"));
    assert!(parse_text("m notanumber").is_err());
}

#[test]
fn histogram_deltas_and_interpolated_percentiles() {
    let before = Histogram::find(&parse_text(BEFORE).unwrap(), FLUSH_ROUNDS).unwrap();
    let after = Histogram::find(&parse_text(AFTER).unwrap(), FLUSH_ROUNDS).unwrap();
    assert_eq!(after.buckets.len(), 17);
    assert_eq!(after.buckets[0], (0.000_05, 0.0));
    let d = after.since(&before).unwrap();
    assert_eq!(d.count, 2776.0);
    assert_eq!(d.buckets[3], (0.0005, 1207.0));
    assert_eq!(d.buckets[4], (0.001, 2575.0));
    // p50: rank 1388 lies in (0.5 ms, 1 ms], holding 1207..2575: 0.5 + 0.5 * 181 / 1368 ms.
    let (p50, past) = d.quantile(0.5).unwrap();
    assert!(close(p50 * 1e6, 566.155) && !past, "{p50}");
    // p99: rank 2748.24 in (2.5 ms, 5 ms], holding 2698..2765.
    let (p99, _) = d.quantile(0.99).unwrap();
    assert!(close(p99 * 1e6, 2500.0 + 2500.0 * 50.24 / 67.0), "{p99}");
    assert!(before.since(&after).is_err(), "counters going backwards are refused");
    assert_eq!(d.since(&d).unwrap().quantile(0.5), None, "no observations, no percentile");
}

#[test]
fn quantile_edges() {
    let h = |buckets: &[(f64, f64)]| Histogram {
        buckets: buckets.to_vec(),
        count: buckets.last().unwrap().1,
        sum: 0.0,
    };
    // The first bucket interpolates from 0.
    let (q, _) = h(&[(1.0, 4.0), (f64::INFINITY, 4.0)]).quantile(0.25).unwrap();
    assert!(close(q, 0.25));
    // Empty buckets before the rank's own are skipped, not interpolated into.
    let (q, _) =
        h(&[(1.0, 0.0), (2.0, 0.0), (4.0, 2.0), (f64::INFINITY, 2.0)]).quantile(0.5).unwrap();
    assert!(close(q, 3.0), "{q}");
    // A rank past the last finite bound: that bound, flagged.
    assert_eq!(h(&[(1.0, 1.0), (f64::INFINITY, 10.0)]).quantile(0.9), Some((1.0, true)));
    let missing_inf = parse_text("skua_flush_round_seconds_bucket{le=\"1\"} 1\n").unwrap();
    assert!(Histogram::find(&missing_inf, FLUSH_ROUNDS).is_err());
}

#[test]
fn figures_per_unit_from_the_captured_scrapes() {
    let before = Reading::parse(BEFORE).unwrap();
    let after = Reading::parse(AFTER).unwrap();
    let f = figures_of(&before, &after, &[("delivery", 5552), ("write command", 0)]).unwrap();
    assert_eq!(value(&f, "server_fdatasyncs"), 11106);
    assert_eq!(value(&f, "server_flush_rounds"), 2776);
    assert_eq!(value(&f, "server_fdatasyncs_per_delivery"), 2.0);
    assert_eq!(value(&f, "server_flush_rounds_per_delivery"), 0.5);
    assert!(value(&f, "server_fdatasyncs_per_write_command").is_null(), "no such operation");
    assert_eq!(value(&f, "server_lmtp_delivered"), 5552, "the bench's count, seen by the server");
    assert_eq!(value(&f, "server_imap_commands"), 0);
    assert_eq!(value(&f, "server_flush_round_p50_us"), 566.155);
    assert_eq!(value(&f, "server_flush_round_p90_us"), 972.003);
    let mean = (8.974411669 - 7.091173076) / 2776.0 * 1e6;
    assert!(close(value(&f, "server_flush_round_mean_us").as_f64().unwrap(), mean));
    assert!(
        value(&f, "server_flush_round_percentiles").as_str().unwrap().contains("interpolation")
    );
    let f = figures_of(&before, &after, &[("IMAP command", 100)]).unwrap();
    assert_eq!(value(&f, "server_fdatasyncs_per_imap_command"), 111.06);
}

#[test]
fn http_answers() {
    let ok = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nm 1\nXX";
    assert_eq!(parse_response(ok).unwrap(), "m 1\nX", "the body ends at its Content-Length");
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nm 1\r\n2;x=y\r\n\nn\r\n0\r\n\r\n";
    assert_eq!(parse_response(chunked).unwrap(), "m 1\nn");
    let err = parse_response(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").unwrap_err();
    assert!(err.contains("404 Not Found"), "{err}");
    assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err(), "no end of head");
    assert!(parse_response(b"SSH-2.0-x\r\n\r\n").is_err());
    assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
}

#[test]
fn urls() {
    let e = parse_url("http://127.0.0.1:9100/metrics").unwrap();
    assert_eq!((e.addr.to_string().as_str(), e.path.as_str()), ("127.0.0.1:9100", "/metrics"));
    assert_eq!(e.host, "127.0.0.1:9100");
    let e = parse_url("HTTP://[::1]:9100").unwrap();
    assert_eq!((e.addr.port(), e.path.as_str()), (9100, "/"));
    assert_eq!(parse_url("http://localhost/m").map(|e| e.addr.port()), Ok(80));
    assert!(parse_url("https://127.0.0.1/metrics").is_err());
    assert!(parse_url("http://127.0.0.1:x/metrics").is_err());
    assert!(parse_url("http://10.0.0.1:9100/metrics").unwrap_err().contains("not a loopback"));
    assert!(parse_url("http://:9100/").is_err());
}

/// Serves `pages` one connection each on a loopback port; returns the metrics URL and the
/// request lines received.
fn serve(pages: Vec<String>) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let thread = std::thread::spawn(move || {
        let mut requests = Vec::new();
        for page in pages {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            requests.push(line.trim_end().to_owned());
            while line != "\r\n" {
                line.clear();
                reader.read_line(&mut line).unwrap();
            }
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", page.len());
            stream.write_all((head + &page).as_bytes()).unwrap();
        }
        requests
    });
    (url, thread)
}

/// A phase scraped from a server serving `pages` (a single page: the server is gone by the
/// second scrape), over 5552 deliveries: the report, and the request lines the server saw.
fn phase(pages: &[&str]) -> (Report, Vec<String>) {
    let (url, server) = serve(pages.iter().map(|p| (*p).to_owned()).collect());
    let before = Before::take(parse_url(&url).unwrap());
    let (gone, server) =
        if pages.len() == 1 { (Some(server.join().unwrap()), None) } else { (None, Some(server)) };
    let stats = Recorder::new(Live::new(&["deliver"])).into_stats();
    let mut report = Report::new("lmtp", &stats, Duration::from_secs(1), false, 1);
    before.after().add_to(&mut report, &[("delivery", 5552)]);
    let requests = gone.or_else(|| server.map(|s| s.join().unwrap())).unwrap();
    (report, requests)
}

#[test]
fn scrapes_before_and_after_over_http() {
    let (report, requests) = phase(&[BEFORE, AFTER]);
    assert_eq!(requests, ["GET /metrics HTTP/1.1"; 2]);
    assert_eq!(report.extra["server_fdatasyncs"], 11106);
    assert_eq!(report.extra["server_flush_rounds_per_delivery"], 0.5);
    assert!(!report.extra.contains_key("server_metrics"));
}

#[test]
fn a_failed_scrape_is_reported_not_fatal() {
    // The endpoint answers, but without skua's histograms: no second scrape is tried.
    let (report, requests) = phase(&["other_metric 1\n"]);
    assert_eq!(requests.len(), 1);
    let why = report.extra["server_metrics"].as_str().unwrap();
    assert!(
        why.starts_with("unavailable (scrape at the start: no skua_flush_round_seconds_bucket"),
        "{why}"
    );
    assert!(report.to_table().contains("server_metrics: unavailable ("));
    assert!(!report.extra.contains_key("server_fdatasyncs"));
    // The first scrape works, but nothing listens any more for the second.
    let (report, _) = phase(&[BEFORE]);
    let why = report.extra["server_metrics"].as_str().unwrap();
    assert!(why.starts_with("unavailable (scrape at the end: connecting to 127.0.0.1:"), "{why}");
}
