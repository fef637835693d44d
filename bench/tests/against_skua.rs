//! Runs every scenario for 2 seconds against the real skua binary: `$SKUA_BIN`, or
//! `target/release/skua` of the workspace, in plain text and over TLS (IMAPS on its own port,
//! STARTTLS on IMAP and LMTP, verified against the self-signed certificate skua makes in its
//! data dir). Ignored by default (it needs the release build):
//!
//!     cargo build --release --bin skua && cargo test -p skua-bench -- --ignored

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const USERS: u32 = 20;

struct Server {
    child: Child,
    imap: u16,
    lmtp: u16,
    /// The implicit-TLS port, if the server serves one.
    imaps: Option<u16>,
    dir: PathBuf,
    /// The Prometheus endpoint's port, if `[metrics] listen` was configured.
    metrics: Option<u16>,
}

impl Server {
    /// The certificate skua made for itself (what the bench verifies against).
    fn ca(&self) -> String {
        self.dir.join("data/tls/selfsigned.crt").to_str().unwrap().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn skua_bin() -> PathBuf {
    std::env::var_os("SKUA_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/skua"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(name: &str) -> Server {
    start_with(name, false)
}

fn start_with(name: &str, imaps: bool) -> Server {
    start_opts(name, imaps, false)
}

/// A server; with `metrics`, its Prometheus endpoint on a port of its own.
fn start_opts(name: &str, imaps: bool, metrics: bool) -> Server {
    let bin = skua_bin();
    assert!(bin.exists(), "no skua binary at {} (set SKUA_BIN or build it)", bin.display());
    let dir = std::env::temp_dir().join(format!("skua-bench-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let passwd: String = (0..USERS).map(|i| format!("user{i}:{{PLAIN}}pw::::::\n")).collect();
    std::fs::write(dir.join("data/passwd"), passwd).unwrap();
    let (imap, lmtp) = (free_port(), free_port());
    let imaps = imaps.then(free_port);
    let tls_listener = match imaps {
        Some(port) => vec!["--imaps-listen".to_owned(), format!("127.0.0.1:{port}")],
        None => vec!["--no-imaps".to_owned()],
    };
    let metrics = metrics.then(free_port);
    let config = dir.join("skua.toml");
    let listen =
        metrics.map_or(String::new(), |p| format!("[metrics]\nlisten = [\"127.0.0.1:{p}\"]\n"));
    std::fs::write(&config, listen).unwrap();
    let child = Command::new(bin)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args([
            "--imap-listen",
            &format!("127.0.0.1:{imap}"),
            "--lmtp-listen",
            &format!("127.0.0.1:{lmtp}"),
        ])
        .args(&tls_listener)
        .args(["--shards", "2"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("skua.log")).unwrap())
        .spawn()
        .unwrap();
    let mut server = Server { child, imap, lmtp, imaps, dir, metrics };
    let deadline = Instant::now() + Duration::from_secs(30);
    for port in [imap, lmtp].into_iter().chain(imaps).chain(metrics) {
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(server.child.try_wait().unwrap().is_none(), "skua exited early");
            assert!(Instant::now() < deadline, "skua did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    server
}

fn bench(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_skua-bench"))
        .args(args)
        .args([
            "--duration",
            "2",
            "--json",
            "--quiet",
            "--users",
            &USERS.to_string(),
            "--password",
            "pw",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "skua-bench {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn op<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["ops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report}"))
}

/// How many times operation `name` succeeded (a report leaves out operations that never ran).
fn count(report: &Value, name: &str) -> u64 {
    report["ops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .map_or(0, |o| o["count"].as_u64().unwrap())
}

fn assert_clean(report: &Value, name: &str) {
    let o = op(report, name);
    assert!(o["count"].as_u64().unwrap() > 0, "{name}: {report}");
    assert_eq!(o["errors"], 0, "{name}: {report}");
}

#[test]
#[ignore = "needs the release skua binary"]
fn lmtp_fixed_and_corpus() {
    let s = start("lmtp");
    let port = s.lmtp.to_string();
    let r = bench(&["lmtp", "--port", &port, "--connections", "4", "--size", "4096"]);
    assert_clean(&r, "deliver");
    let corpus = s.dir.join("corpus");
    let status = Command::new(env!("CARGO_BIN_EXE_skua-bench"))
        .args(["corpus", "--count", "50", "--max-size", "262144", "--out"])
        .arg(&corpus)
        .status()
        .unwrap();
    assert!(status.success());
    let r = bench(&[
        "lmtp",
        "--port",
        &port,
        "--connections",
        "2",
        "--recipients",
        "3",
        "--corpus",
        corpus.to_str().unwrap(),
    ]);
    assert_clean(&r, "deliver");
    assert_eq!(op(&r, "deliver")["count"].as_u64().unwrap() % 3, 0, "3 deliveries per transaction");
    let r = bench(&["lmtp", "--port", &port, "--recipients", "2", "--no-pipelining"]);
    assert_clean(&r, "deliver");
    let r = bench(&["lmtp", "--port", &port, "--connections", "2", "--rate", "200"]);
    assert_eq!(r["mode"], "open");
    let n = op(&r, "deliver")["count"].as_u64().unwrap();
    assert!((300..=420).contains(&n), "about 400 deliveries at 200/s for 2 s, got {n}");
}

/// Figure `key` of a report's extras as a number.
fn extra(report: &Value, key: &str) -> f64 {
    report["extra"][key].as_f64().unwrap_or_else(|| panic!("no {key} in {report}"))
}

#[test]
#[ignore = "needs the release skua binary"]
fn server_metrics_around_the_phase() {
    let s = start_opts("metrics", false, true);
    let url = format!("http://127.0.0.1:{}/metrics", s.metrics.unwrap());
    let port = s.lmtp.to_string();
    let r = bench(&["lmtp", "--port", &port, "--connections", "2", "--server-metrics", &url]);
    let delivered = op(&r, "deliver")["count"].as_f64().unwrap();
    // The server counts a delivery as it answers it: the last ones may race the scrape.
    let seen = extra(&r, "server_lmtp_delivered");
    assert!(seen <= delivered && seen >= delivered - 2.0, "{r}");
    let syncs = extra(&r, "server_fdatasyncs");
    assert!(syncs >= 1.0 && extra(&r, "server_flush_rounds") >= 1.0, "{r}");
    assert!((extra(&r, "server_fdatasyncs_per_delivery") - syncs / delivered).abs() < 1e-3);
    let (p50, p90, p99) = (
        extra(&r, "server_flush_round_p50_us"),
        extra(&r, "server_flush_round_p90_us"),
        extra(&r, "server_flush_round_p99_us"),
    );
    assert!(0.0 < p50 && p50 <= p90 && p90 <= p99, "{r}");
    let imap = s.imap.to_string();
    let r = bench(&["imap-mixed", "--port", &imap, "--connections", "2", "--server-metrics", &url]);
    let writes = ["append", "store", "expunge"].iter().map(|n| count(&r, n)).sum::<u64>();
    let per_write = extra(&r, "server_fdatasyncs_per_write_command");
    assert!((per_write - extra(&r, "server_fdatasyncs") / writes as f64).abs() < 1e-3, "{r}");
    assert!(per_write > extra(&r, "server_fdatasyncs_per_imap_command"), "{r}");
    drop(s);
    // The same URL with no server behind it: the run succeeds and says why there are no figures.
    let r = bench(&["lmtp", "--port", &port, "--max-ops", "1", "--server-metrics", &url]);
    assert!(r["extra"]["server_metrics"].as_str().unwrap().starts_with("unavailable ("), "{r}");
}

#[test]
#[ignore = "needs the release skua binary"]
fn imap_scenarios() {
    let s = start("imap");
    let (imap, lmtp) = (s.imap.to_string(), s.lmtp.to_string());
    let r = bench(&[
        "imap-read",
        "--port",
        &imap,
        "--lmtp-port",
        &lmtp,
        "--prefill",
        "5",
        "--connections",
        "4",
    ]);
    for name in
        ["login", "examine", "fetch-range", "fetch-body", "search", "status", "list", "noop"]
    {
        assert_clean(&r, name);
    }
    let r = bench(&["imap-mixed", "--port", &imap, "--connections", "4"]);
    for name in ["login", "select", "fetch-headers", "fetch-body", "store", "append", "logout"] {
        assert_clean(&r, name);
    }
    let r = bench(&["churn", "--port", &imap, "--connections", "4"]);
    assert_clean(&r, "session");
}

#[test]
#[ignore = "needs the release skua binary"]
fn idle_memory_and_notify() {
    let s = start("idle");
    let pid = s.child.id().to_string();
    let r = bench(&[
        "idle",
        "--port",
        &s.imap.to_string(),
        "--lmtp-port",
        &s.lmtp.to_string(),
        "--connections",
        "40",
        "--server-pid",
        &pid,
        "--settle",
        "1",
    ]);
    assert_eq!(r["extra"]["idle_connections"], 40, "{r}");
    assert!(r["extra"]["rss_per_connection_kib"].is_number(), "{r}");
    assert_clean(&r, "notify");
    assert_clean(&r, "deliver");
}

#[test]
#[ignore = "needs the release skua binary"]
fn tls_scenarios() {
    let s = start_with("tls", true);
    let (imap, lmtp) = (s.imap.to_string(), s.lmtp.to_string());
    let imaps = s.imaps.unwrap().to_string();
    let ca = s.ca();
    let tls = ["--tls", "--tls-ca", &ca];
    let starttls = ["--starttls", "--tls-ca", &ca];

    let pid = s.child.id().to_string();
    let r = bench(
        &[&["handshake", "--port", &imaps, "--connections", "4", "--server-pid", &pid][..], &tls]
            .concat(),
    );
    assert_clean(&r, "full");
    assert!(r["extra"]["server_cpu_ms_per_connection"].as_f64().unwrap() > 0.0, "{r}");
    assert_eq!(count(&r, "resumed"), 0, "no session cache without --tls-resume: {r}");
    assert!(r["extra"]["negotiated"].as_str().unwrap().starts_with("TLSv1_3"), "{r}");
    let r = bench(
        &[&["handshake", "--port", &imaps, "--connections", "4", "--tls-resume"][..], &tls]
            .concat(),
    );
    assert_clean(&r, "resumed");
    let (full, resumed) = (count(&r, "full"), count(&r, "resumed"));
    assert!(resumed > full, "most handshakes resume with --tls-resume: {full} full, {resumed}");

    // Over IMAPS (the prefill's LMTP stays plain), then over STARTTLS on both protocols.
    let read = ["imap-read", "--lmtp-port", &lmtp, "--prefill", "3", "--connections", "4"];
    for (port, how) in [(&imaps, &tls), (&imap, &starttls)] {
        let r = bench(&[&read[..], &["--port", port], &how[..]].concat());
        for name in ["login", "examine", "fetch-range", "fetch-body", "search", "noop"] {
            assert_clean(&r, name);
        }
    }
    let r = bench(&[&["imap-mixed", "--port", &imaps, "--connections", "4"][..], &tls].concat());
    for name in ["login", "select", "fetch-body", "store", "append", "logout"] {
        assert_clean(&r, name);
    }
    let r = bench(&[&["churn", "--port", &imap, "--connections", "4"][..], &starttls].concat());
    assert_clean(&r, "session");
    let r = bench(&[&["lmtp", "--port", &lmtp, "--connections", "4"][..], &starttls].concat());
    assert_clean(&r, "deliver");
    assert_clean(&r, "connect");

    let r = bench(
        &[
            &["idle", "--port", &imaps, "--lmtp-port", &lmtp, "--connections", "40"][..],
            &["--server-pid", &pid, "--settle", "1"],
            &tls,
        ]
        .concat(),
    );
    assert_eq!(r["extra"]["idle_connections"], 40, "{r}");
    assert!(r["extra"]["rss_per_connection_kib"].is_number(), "{r}");
    assert_clean(&r, "notify");
}

#[test]
#[ignore = "needs the release skua binary"]
fn tls_refuses_a_certificate_it_cannot_verify() {
    let s = start_with("tls-verify", true);
    let imaps = s.imaps.unwrap().to_string();
    let ca = s.ca();
    let r = bench(&[
        "handshake",
        "--port",
        &imaps,
        "--tls",
        "--tls-ca",
        &ca,
        "--tls-server-name",
        "mail.example.org",
    ]);
    assert_eq!(count(&r, "full"), 0, "{r}");
    assert!(op(&r, "full")["errors"].as_u64().unwrap() > 0, "{r}");
    let note = r["notes"][0].as_str().unwrap();
    assert!(note.starts_with("first failed connection: TLS handshake:"), "{r}");
}
