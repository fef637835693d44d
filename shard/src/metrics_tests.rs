//! The exposition text: what each counter adds up to, its labels, and the 0.0.4 format.

use super::*;

/// The value of the sample line `series` (name and labels, exactly as exposed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn render(metrics: &Arc<Metrics>) -> String {
    let process = ProcessFigures { resident_bytes: Some(4096), open_fds: Some(7), fds_max: None };
    Exposition::new(metrics.clone()).render(process)
}

#[test]
fn counters_are_summed_over_shards_and_labelled() {
    let metrics = Arc::new(Metrics::new(2));
    let (zero, one) = (metrics.shard(0), metrics.shard(1));
    zero.login(LoginResult::Ok, LoginMechanism(None));
    one.login(LoginResult::Ok, LoginMechanism(None));
    one.login(LoginResult::Failed, LoginMechanism(Some(Mechanism::Plain)));
    zero.delivery(DeliveryOutcome::Delivered);
    one.delivery(DeliveryOutcome::OverQuota);
    zero.bytes_in(Protocol::Imap, 10);
    one.bytes_in(Protocol::Imap, 5);
    one.bytes_out(Protocol::Lmtp, 3);
    one.pagein_ring_reads(2);
    one.pagein_ring_reads(0);
    let stats = |checkpoints, blocking_checkpoints, bytes_written| skua_core::disk::JournalStats {
        checkpoints,
        background_checkpoints: checkpoints - blocking_checkpoints,
        blocking_checkpoints,
        barriers: checkpoints * 2,
        bytes_written,
    };
    zero.journal(stats(1, 0, 512));
    zero.journal(stats(3, 1, 4096));
    let text = render(&metrics);
    let value = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series}\n{text}"));
    assert_eq!(value(r#"skua_logins_total{result="ok",mechanism="LOGIN-COMMAND"}"#), 2.0);
    assert_eq!(value(r#"skua_logins_total{result="failed",mechanism="PLAIN"}"#), 1.0);
    assert_eq!(value(r#"skua_logins_total{result="refused",mechanism="PLAIN"}"#), 0.0);
    assert_eq!(value(r#"skua_lmtp_deliveries_total{outcome="delivered"}"#), 1.0);
    assert_eq!(value(r#"skua_lmtp_deliveries_total{outcome="over-quota"}"#), 1.0);
    assert_eq!(value(r#"skua_received_bytes_total{protocol="imap"}"#), 15.0);
    assert_eq!(value(r#"skua_sent_bytes_total{protocol="lmtp"}"#), 3.0);
    assert_eq!(value(r#"skua_pagein_ring_reads_total{shard="0"}"#), 0.0);
    assert_eq!(value(r#"skua_pagein_ring_reads_total{shard="1"}"#), 2.0);
    assert_eq!(value(r#"skua_journal_checkpoints_total{shard="0"}"#), 3.0);
    assert_eq!(value(r#"skua_journal_blocking_checkpoints_total{shard="0"}"#), 1.0);
    assert_eq!(value(r#"skua_journal_bytes_total{shard="0"}"#), 4096.0);
    assert_eq!(value(r#"skua_journal_barriers_total{shard="0"}"#), 6.0);
    assert_eq!(value(r#"skua_journal_background_checkpoints_total{shard="0"}"#), 2.0);
    assert_eq!(value(r#"skua_journal_bytes_total{shard="1"}"#), 0.0);
    assert_eq!(value("skua_resident_memory_bytes"), 4096.0);
    assert_eq!(value("skua_open_fds"), 7.0);
    assert!(!text.contains("skua_max_fds"), "an unknown figure is left out:\n{text}");
    assert!(text.contains("# TYPE skua_logins_total counter\n"), "{text}");
}

#[test]
fn open_connections_follow_their_shard_and_close() {
    let metrics = Arc::new(Metrics::new(2));
    let open = metrics.shard(0).connection_opened(Protocol::Imaps);
    let lmtp = metrics.shard(1).connection_opened(Protocol::Lmtp);
    let text = render(&metrics);
    let value = |text: &str, series: &str| sample(text, series).expect(series);
    let imaps_on =
        |shard: u32| format!(r#"skua_connections_open{{protocol="imaps",shard="{shard}"}}"#);
    assert_eq!(value(&text, &imaps_on(0)), 1.0);
    let accepted = r#"skua_connections_accepted_total{protocol="imaps",shard="0"}"#;
    assert_eq!(value(&text, accepted), 1.0);
    // A hand-off: open on the new shard, no longer on the old; accepted stays where it was.
    let moved = open.moved_to(metrics.shard(1));
    let text = render(&metrics);
    assert_eq!(value(&text, &imaps_on(0)), 0.0);
    assert_eq!(value(&text, &imaps_on(1)), 1.0);
    assert_eq!(value(&text, accepted), 1.0);
    drop((moved, lmtp));
    let text = render(&metrics);
    assert_eq!(value(&text, &imaps_on(1)), 0.0);
    assert_eq!(value(&text, r#"skua_connections_open{protocol="lmtp",shard="1"}"#), 0.0);
}

#[test]
fn histograms_are_cumulative_with_sum_count_and_only_used_commands() {
    let metrics = Arc::new(Metrics::new(2));
    let fetch = COMMAND_NAMES.iter().position(|name| *name == "UID FETCH").expect("listed");
    metrics.shard(0).command(fetch, Duration::from_micros(40)); // first bucket
    metrics.shard(1).command(fetch, Duration::from_millis(3)); // le 0.005
    metrics.shard(1).command(fetch, Duration::from_secs(60)); // +Inf only
    metrics.shard(1).command(usize::MAX, Duration::from_millis(1)); // clamped: "other"
    let text = render(&metrics);
    let bucket = |le: &str| {
        let series =
            format!(r#"skua_imap_command_seconds_bucket{{command="UID FETCH",le="{le}"}}"#);
        sample(&text, &series).unwrap_or_else(|| panic!("{series}\n{text}"))
    };
    assert_eq!(bucket("5e-05"), 1.0);
    assert_eq!(bucket("0.0025"), 1.0);
    assert_eq!(bucket("0.005"), 2.0);
    assert_eq!(bucket("10"), 2.0);
    assert_eq!(bucket("+Inf"), 3.0);
    let count = r#"skua_imap_command_seconds_count{command="UID FETCH"}"#;
    assert_eq!(sample(&text, count), Some(3.0));
    let sum = sample(&text, r#"skua_imap_command_seconds_sum{command="UID FETCH"}"#).expect("sum");
    assert!((sum - 60.003_04).abs() < 1e-9, "{sum}");
    assert_eq!(sample(&text, r#"skua_imap_command_seconds_count{command="other"}"#), Some(1.0));
    assert!(!text.contains(r#"command="FETCH""#), "unused names are left out:\n{text}");
    assert_eq!(metrics.command_snapshot(fetch).count(), 3);
    assert!(text.contains("# TYPE skua_imap_command_seconds histogram\n"), "{text}");
}

#[test]
fn gauges_of_the_runtime_are_per_shard() {
    let metrics = Arc::new(Metrics::new(2));
    metrics.shard(1).set_open_stores(5);
    metrics.shard(0).set_calls(3, 1);
    metrics.shard(0).call_refused();
    metrics.shard(1).stall();
    metrics.shard(1).flush_round(Duration::from_millis(2));
    observe_fdatasync(Duration::from_millis(1));
    let text = render(&metrics);
    let value = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series}\n{text}"));
    assert_eq!(value(r#"skua_open_stores{shard="1"}"#), 5.0);
    assert_eq!(value(r#"skua_calls_waiting{shard="0"}"#), 3.0);
    assert_eq!(value(r#"skua_calls_serving{shard="0"}"#), 1.0);
    assert_eq!(value(r#"skua_calls_refused_total{shard="0"}"#), 1.0);
    assert_eq!(value(r#"skua_stalls_total{shard="1"}"#), 1.0);
    assert_eq!(value("skua_flush_round_seconds_count"), 1.0);
    // Process-wide and shared by every test of this binary: at least this one.
    assert!(value("skua_fdatasync_seconds_count") >= 1.0);
}

#[test]
fn the_text_is_exposition_format_0_0_4() {
    let metrics = Arc::new(Metrics::new(1));
    metrics.shard(0).delivery(DeliveryOutcome::Duplicate);
    let text = render(&metrics);
    assert!(!text.contains("# EOF"), "OpenMetrics' terminator is not 0.0.4:\n{text}");
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            assert!(
                comment.starts_with("HELP skua_") || comment.starts_with("TYPE skua_"),
                "{line}"
            );
            continue;
        }
        // name{labels} value: a name of [a-z_], then labels or a space, then a number.
        let name_end = line.find(['{', ' ']).expect(line);
        assert!(line[..name_end].bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{line}");
        let value = line.rsplit(' ').next().expect(line);
        assert!(value.parse::<f64>().is_ok() || value == "+Inf", "{line}");
    }
    // Every family is introduced once by HELP and TYPE.
    let types = text.lines().filter(|line| line.starts_with("# TYPE ")).count();
    let helps = text.lines().filter(|line| line.starts_with("# HELP ")).count();
    assert_eq!(types, helps);
}

#[test]
fn statm_gives_resident_pages() {
    assert_eq!(resident_pages_of_statm("1000 250 30 5 0 400 0\n"), Some(250));
    assert_eq!(resident_pages_of_statm("1000"), None);
    let figures = ProcessFigures::read();
    assert!(figures.resident_bytes.is_some_and(|bytes| bytes > 0), "{figures:?}");
    assert!(figures.open_fds.is_some_and(|fds| fds >= 3), "{figures:?}");
}
