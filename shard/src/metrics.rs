//! What the server counts for Prometheus (`[metrics] listen`, README "Metrics"), and the text a
//! scrape gets.
//!
//! ```text
//!  shard i's thread (hot paths)           shard 0, on a scrape (metrics_http.rs)
//!  ────────────────────────────           ──────────────────────────────────────
//!  metrics.shard(i).logins[..].add(1) ──► Shared::metrics: one ShardMetrics per shard,
//!  Histogram::observe(latency)             each its own cache lines (align 128)
//!  (Relaxed atomic adds, no lock)     ──► read every shard's atomics (Relaxed) + /proc
//!                                          ─► prometheus-client's 0.0.4 text encoder
//! ```
//!
//! *Why atomics and not a cross-shard call per scrape.* Each shard counts into its own
//! [`ShardMetrics`] (a block of atomics that only that shard writes, except a connection's
//! open gauge, which the shard it closes on gives back); the scrape, on shard 0, reads them
//! all with `Relaxed` loads. A scrape through `call.rs` would need one request per shard and
//! wait for each shard's reactor: a stalled or saturated shard, the one an operator most wants
//! to see, would answer last or not at all. An uncontended `Relaxed` add costs a few
//! nanoseconds, next to microseconds for the commands it counts; no lock is taken anywhere on
//! a command path, and the numbers of different counters may be read a few nanoseconds apart
//! (a scrape is not a snapshot of one instant, as Prometheus never assumes it is).
//!
//! Label sets are fixed and bounded: protocols, login results and mechanisms, delivery
//! outcomes and IMAP command names are closed enumerations ([`Protocol`], [`LoginResult`],
//! [`LoginMechanism`], [`DeliveryOutcome`], `skua_protocols::imap::session::COMMAND_NAMES`,
//! where a name outside the list counts as `other`), so no client can grow the scrape.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use skua_protocols::imap::session::COMMAND_NAMES;
use skua_protocols::sasl::Mechanism;

/// A connection's protocol, as the metrics name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// IMAP on a plain listener (STARTTLS or not).
    Imap,
    /// IMAP on an implicit-TLS listener.
    Imaps,
    /// LMTP (TCP or unix socket).
    Lmtp,
    /// Postfix's socketmap look-ups.
    Socketmap,
}

impl Protocol {
    const ALL: [Protocol; 4] =
        [Protocol::Imap, Protocol::Imaps, Protocol::Lmtp, Protocol::Socketmap];

    fn label(self) -> &'static str {
        match self {
            Protocol::Imap => "imap",
            Protocol::Imaps => "imaps",
            Protocol::Lmtp => "lmtp",
            Protocol::Socketmap => "socketmap",
        }
    }

    /// The protocol of a driver session (`driver::Session::NAME`).
    pub(crate) fn of_session(name: &str) -> Protocol {
        if name == "lmtp" { Protocol::Lmtp } else { Protocol::Imap }
    }
}

/// How a login ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LoginResult {
    /// The credentials were right.
    Ok,
    /// Wrong credentials, unknown user, not authorized.
    Failed,
    /// Not checked: the failed-login brake turned it away, or no check could run.
    Refused,
}

impl LoginResult {
    const ALL: [LoginResult; 3] = [LoginResult::Ok, LoginResult::Failed, LoginResult::Refused];

    fn label(self) -> &'static str {
        match self {
            LoginResult::Ok => "ok",
            LoginResult::Failed => "failed",
            LoginResult::Refused => "refused",
        }
    }
}

/// A login's mechanism: a SASL mechanism, or IMAP's LOGIN command (`None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LoginMechanism(pub Option<Mechanism>);

impl LoginMechanism {
    /// The LOGIN command, then every SASL mechanism.
    const COUNT: usize = 1 + Mechanism::ALL.len();

    fn index(self) -> usize {
        match self.0 {
            None => 0,
            Some(mechanism) => {
                1 + Mechanism::ALL.iter().position(|m| *m == mechanism).expect("listed in ALL")
            }
        }
    }

    fn label(index: usize) -> &'static str {
        match index.checked_sub(1) {
            None => "LOGIN-COMMAND",
            Some(at) => Mechanism::ALL[at].name(),
        }
    }
}

/// What became of one LMTP recipient (one copy per user).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeliveryOutcome {
    /// Stored and durable.
    Delivered,
    /// Acknowledged without a new copy: the same message is already there (duplicate window).
    Duplicate,
    /// Refused for the user's quota (at `RCPT` with `SIZE=`, or at `DATA`).
    OverQuota,
    /// Refused for good: unknown recipient, message too large for the user's store.
    Refused,
    /// A temporary failure (store, disk, busy or stopped shard): the MTA retries.
    Failed,
}

impl DeliveryOutcome {
    const ALL: [DeliveryOutcome; 5] = [
        DeliveryOutcome::Delivered,
        DeliveryOutcome::Duplicate,
        DeliveryOutcome::OverQuota,
        DeliveryOutcome::Refused,
        DeliveryOutcome::Failed,
    ];

    fn label(self) -> &'static str {
        match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Duplicate => "duplicate",
            DeliveryOutcome::OverQuota => "over-quota",
            DeliveryOutcome::Refused => "refused",
            DeliveryOutcome::Failed => "failed",
        }
    }
}

/// Upper bounds of every latency histogram's buckets, in seconds (the last bucket, `+Inf`,
/// is implicit): 50 µs (a cached FETCH) to 10 s (a flush round on a failing disk).
pub(crate) const LATENCY_BOUNDS_SECONDS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

const BUCKETS: usize = LATENCY_BOUNDS_SECONDS.len() + 1;

const _: () = assert!(BUCKETS <= 32, "a histogram stays a few cache lines");

/// A latency histogram of plain atomics: one `Relaxed` add to a bucket, the sum and the count
/// per observation.
#[derive(Debug)]
pub(crate) struct Histogram {
    /// Non-cumulative counts; the last one is `+Inf`.
    buckets: [AtomicU64; BUCKETS],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// All zero (usable in a `static`).
    const fn new() -> Histogram {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BUCKETS],
            sum_nanos: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Counts one observation.
    pub(crate) fn observe(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let seconds = took.as_secs_f64();
        let bucket = LATENCY_BOUNDS_SECONDS.iter().position(|&bound| seconds <= bound);
        self.buckets[bucket.unwrap_or(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds this histogram's counts to `total`.
    fn add_to(&self, total: &mut HistogramSnapshot) {
        for (sum, bucket) in total.buckets.iter_mut().zip(&self.buckets) {
            *sum += bucket.load(Ordering::Relaxed);
        }
        total.sum_nanos += self.sum_nanos.load(Ordering::Relaxed);
        total.count += self.count.load(Ordering::Relaxed);
    }
}

/// Histogram counts read at a scrape (summed over shards).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct HistogramSnapshot {
    buckets: [u64; BUCKETS],
    sum_nanos: u64,
    count: u64,
}

impl HistogramSnapshot {
    /// The observations counted.
    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    fn encode(&self, encoder: &mut prometheus_client::encoding::MetricEncoder<'_>) -> Fmt {
        // The `+Inf` bucket is the encoder's own, from `count`.
        let buckets: Vec<(f64, u64)> =
            LATENCY_BOUNDS_SECONDS.iter().copied().zip(self.buckets).collect();
        #[allow(clippy::cast_precision_loss)] // seconds as a float: what the format carries
        let sum = self.sum_nanos as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, self.count, &buckets, None)
    }
}

type Fmt = Result<(), std::fmt::Error>;

/// Picks one per-protocol counter array of a shard (for a loop over families).
type PerProtocol = fn(&ShardMetrics) -> &[AtomicU64; 4];
/// Reads one gauge of a shard.
type GaugeRead = fn(&ShardMetrics) -> i64;
/// Picks one counter of a shard.
type CounterPick = fn(&ShardMetrics) -> &AtomicU64;

/// Adds one to a counter.
fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// One shard's counters. Written by that shard's thread; read by the scrape.
#[derive(Debug)]
#[repr(align(128))] // no two shards' counters on one cache line (or adjacent-line prefetch pair)
pub(crate) struct ShardMetrics {
    accepted: [AtomicU64; 4],
    open: [AtomicI64; 4],
    bytes_in: [AtomicU64; 4],
    bytes_out: [AtomicU64; 4],
    logins: [[AtomicU64; LoginMechanism::COUNT]; 3],
    deliveries: [AtomicU64; 5],
    /// One per `COMMAND_NAMES` entry.
    commands: Box<[Histogram]>,
    flush_rounds: Histogram,
    open_stores: AtomicU64,
    calls_waiting: AtomicI64,
    calls_serving: AtomicI64,
    calls_refused: AtomicU64,
    stalls: AtomicU64,
    panics: AtomicU64,
    pagein_ring_reads: AtomicU64,
    journal_checkpoints: AtomicU64,
    journal_blocking_checkpoints: AtomicU64,
    journal_barriers: AtomicU64,
    journal_background_checkpoints: AtomicU64,
    journal_bytes: AtomicU64,
}

impl Default for ShardMetrics {
    fn default() -> ShardMetrics {
        ShardMetrics {
            accepted: Default::default(),
            open: Default::default(),
            bytes_in: Default::default(),
            bytes_out: Default::default(),
            logins: Default::default(),
            deliveries: Default::default(),
            commands: COMMAND_NAMES.iter().map(|_| Histogram::new()).collect(),
            flush_rounds: Histogram::new(),
            open_stores: AtomicU64::new(0),
            calls_waiting: AtomicI64::new(0),
            calls_serving: AtomicI64::new(0),
            calls_refused: AtomicU64::new(0),
            stalls: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            pagein_ring_reads: AtomicU64::new(0),
            journal_checkpoints: AtomicU64::new(0),
            journal_blocking_checkpoints: AtomicU64::new(0),
            journal_barriers: AtomicU64::new(0),
            journal_background_checkpoints: AtomicU64::new(0),
            journal_bytes: AtomicU64::new(0),
        }
    }
}

impl ShardMetrics {
    /// A connection of `protocol` was accepted here; it counts as open until the returned
    /// guard drops (on whichever shard the connection ends).
    pub(crate) fn connection_opened(self: &Arc<Self>, protocol: Protocol) -> OpenConnection {
        bump(&self.accepted[protocol as usize]);
        self.open[protocol as usize].fetch_add(1, Ordering::Relaxed);
        OpenConnection { metrics: self.clone(), protocol }
    }

    /// Bytes read from a client of `protocol` (plaintext, after TLS and DEFLATE).
    pub(crate) fn bytes_in(&self, protocol: Protocol, bytes: usize) {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        self.bytes_in[protocol as usize].fetch_add(bytes, Ordering::Relaxed);
    }

    /// Bytes written to a client of `protocol` (plaintext, before TLS and DEFLATE).
    pub(crate) fn bytes_out(&self, protocol: Protocol, bytes: usize) {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        self.bytes_out[protocol as usize].fetch_add(bytes, Ordering::Relaxed);
    }

    /// A login ended.
    pub(crate) fn login(&self, result: LoginResult, mechanism: LoginMechanism) {
        bump(&self.logins[result as usize][mechanism.index()]);
    }

    /// An LMTP recipient's copy ended.
    pub(crate) fn delivery(&self, outcome: DeliveryOutcome) {
        bump(&self.deliveries[outcome as usize]);
    }

    /// An IMAP command (its index in `COMMAND_NAMES`) took `took` from parse to tagged reply.
    pub(crate) fn command(&self, name: usize, took: Duration) {
        let last = self.commands.len() - 1; // "other"
        self.commands[name.min(last)].observe(took);
    }

    /// A group-commit round took `took` (begin to durable).
    pub(crate) fn flush_round(&self, took: Duration) {
        self.flush_rounds.observe(took);
    }

    /// The registry now holds `open` stores.
    pub(crate) fn set_open_stores(&self, open: usize) {
        self.open_stores.store(u64::try_from(open).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Calls of this shard now waiting on other shards, and being served here.
    pub(crate) fn set_calls(&self, waiting: usize, serving: usize) {
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.calls_waiting.store(count(waiting), Ordering::Relaxed);
        self.calls_serving.store(count(serving), Ordering::Relaxed);
    }

    /// A call was refused over a bound.
    pub(crate) fn call_refused(&self) {
        bump(&self.calls_refused);
    }

    /// A session step (or a write) held the shard's thread `SLOW_STEP_MS` or more: the
    /// driver's own stall detector (`driver::note_slow`). glommio's detector only logs: its
    /// handler's argument type is not public in glommio 0.9.0, so no handler can count.
    pub(crate) fn stall(&self) {
        bump(&self.stalls);
    }

    /// A session step panicked (caught).
    pub(crate) fn panic(&self) {
        bump(&self.panics);
    }

    /// The shard journal's counters after a round (they only grow).
    pub(crate) fn journal(&self, stats: skua_core::disk::JournalStats) {
        self.journal_checkpoints.store(stats.checkpoints, Ordering::Relaxed);
        self.journal_blocking_checkpoints.store(stats.blocking_checkpoints, Ordering::Relaxed);
        self.journal_barriers.store(stats.barriers, Ordering::Relaxed);
        self.journal_background_checkpoints.store(stats.background_checkpoints, Ordering::Relaxed);
        self.journal_bytes.store(stats.bytes_written, Ordering::Relaxed);
    }

    /// `reads` cold file ranges were read in through the ring before a write (`pagein.rs`).
    pub(crate) fn pagein_ring_reads(&self, reads: u64) {
        if reads > 0 {
            self.pagein_ring_reads.fetch_add(reads, Ordering::Relaxed);
        }
    }
}

/// Every sync of every flush round, process-wide: syncs run on the disks' sync threads,
/// which belong to no shard (`skua_core::disk::os::observe_syncs`).
static FDATASYNC: Histogram = Histogram::new();

/// Counts one sync of a flush round (called on a sync thread).
pub(crate) fn observe_fdatasync(took: Duration) {
    FDATASYNC.observe(took);
}

/// Counts a connection as open while it lives.
pub(crate) struct OpenConnection {
    metrics: Arc<ShardMetrics>,
    protocol: Protocol,
}

impl OpenConnection {
    /// The connection moved to the shard of `metrics` (hand-off): it counts as open there now.
    pub(crate) fn moved_to(self, metrics: &Arc<ShardMetrics>) -> OpenConnection {
        metrics.open[self.protocol as usize].fetch_add(1, Ordering::Relaxed);
        OpenConnection { metrics: metrics.clone(), protocol: self.protocol }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.metrics.open[self.protocol as usize].fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every shard's counters; in `Shared`, read by the scrape.
#[derive(Debug)]
pub(crate) struct Metrics {
    shards: Box<[Arc<ShardMetrics>]>,
}

impl Metrics {
    /// Counters for `shards` shards, all zero.
    pub(crate) fn new(shards: usize) -> Metrics {
        Metrics { shards: (0..shards).map(|_| Arc::new(ShardMetrics::default())).collect() }
    }

    /// Shard `index`'s counters.
    pub(crate) fn shard(&self, index: usize) -> &Arc<ShardMetrics> {
        &self.shards[index]
    }

    /// The sum over shards of one histogram.
    fn histogram(&self, pick: impl Fn(&ShardMetrics) -> &Histogram) -> HistogramSnapshot {
        let mut total = HistogramSnapshot::default();
        for shard in &self.shards {
            pick(shard).add_to(&mut total);
        }
        total
    }

    /// The sum over shards of one counter.
    fn sum(&self, pick: impl Fn(&ShardMetrics) -> &AtomicU64) -> u64 {
        self.shards.iter().map(|shard| pick(shard).load(Ordering::Relaxed)).sum()
    }

    /// The command histogram of `name` summed over shards (tests).
    #[cfg(test)]
    pub(crate) fn command_snapshot(&self, name: usize) -> HistogramSnapshot {
        self.histogram(|shard| &shard.commands[name])
    }
}

/// What the process itself holds, read at each scrape from `/proc/self`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcessFigures {
    /// Resident memory, bytes.
    pub resident_bytes: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The soft open-files limit (`None`: unlimited or unknown).
    pub fds_max: Option<u64>,
}

impl ProcessFigures {
    /// Reads `/proc/self/statm` (resident pages), `/proc/self/fd` and the open-files limit.
    pub(crate) fn read() -> ProcessFigures {
        let statm = std::fs::read_to_string("/proc/self/statm").ok();
        let resident_pages = statm.as_deref().and_then(resident_pages_of_statm);
        ProcessFigures {
            resident_bytes: resident_pages.and_then(|pages| pages.checked_mul(page_bytes())),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|entries| u64::try_from(entries.count()).unwrap_or(u64::MAX)),
            fds_max: crate::listen::proc_limit("Max open files")
                .and_then(|text| text.split(' ').next()?.parse().ok()),
        }
    }
}

/// The second field of `/proc/self/statm`: resident pages.
fn resident_pages_of_statm(statm: &str) -> Option<u64> {
    statm.split_whitespace().nth(1)?.parse().ok()
}

/// The page size: `/proc/self/statm` counts pages. Read from the kernel's auxiliary vector
/// through rustix (no `unsafe` here); 4 KiB where that is not available.
fn page_bytes() -> u64 {
    u64::try_from(rustix::param::page_size()).unwrap_or(4096)
}

/// The scrape's view of the server: every shard's counters, gauges the scrape itself reads
/// (`/proc/self`, the store files open), encoded by prometheus-client.
#[derive(Debug)]
pub(crate) struct Exposition {
    metrics: Arc<Metrics>,
}

impl Exposition {
    /// Over `metrics`.
    pub(crate) fn new(metrics: Arc<Metrics>) -> Exposition {
        Exposition { metrics }
    }

    /// The whole exposition text (format 0.0.4), with `process` read by the caller.
    pub(crate) fn render(&self, process: ProcessFigures) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(Scrape { metrics: self.metrics.clone(), process }));
        let mut text = String::new();
        // Writing into a String cannot fail.
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
            .expect("encoding into a String");
        text
    }
}

/// One scrape's collector.
#[derive(Debug)]
struct Scrape {
    metrics: Arc<Metrics>,
    process: ProcessFigures,
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Fmt {
        self.encode_connections(&mut encoder)?;
        self.encode_traffic(&mut encoder)?;
        self.encode_logins(&mut encoder)?;
        self.encode_deliveries(&mut encoder)?;
        self.encode_commands(&mut encoder)?;
        self.encode_storage(&mut encoder)?;
        self.encode_runtime(&mut encoder)?;
        self.encode_process(&mut encoder)
    }
}

impl Scrape {
    fn encode_connections(&self, encoder: &mut DescriptorEncoder) -> Fmt {
        let shards = &self.metrics.shards;
        let help = "Client connections accepted, by protocol and accepting shard.";
        let mut family = encoder.encode_descriptor(
            "skua_connections_accepted",
            help,
            None,
            MetricType::Counter,
        )?;
        for (index, shard) in shards.iter().enumerate() {
            let index = index.to_string();
            for protocol in Protocol::ALL {
                let labels = [("protocol", protocol.label()), ("shard", index.as_str())];
                let value = shard.accepted[protocol as usize].load(Ordering::Relaxed);
                family
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
            }
        }
        let help = "Client connections open now, by protocol and the shard serving them.";
        let mut family =
            encoder.encode_descriptor("skua_connections_open", help, None, MetricType::Gauge)?;
        for (index, shard) in shards.iter().enumerate() {
            let index = index.to_string();
            for protocol in Protocol::ALL {
                let labels = [("protocol", protocol.label()), ("shard", index.as_str())];
                let value = shard.open[protocol as usize].load(Ordering::Relaxed).max(0);
                family.encode_family(&labels)?.encode_gauge(&value)?;
            }
        }
        Ok(())
    }

    fn encode_traffic(&self, encoder: &mut DescriptorEncoder) -> Fmt {
        let kinds: [(&str, &str, PerProtocol); 2] = [
            ("skua_received_bytes", "Bytes read from clients (after TLS and DEFLATE).", |s| {
                &s.bytes_in
            }),
            ("skua_sent_bytes", "Bytes written to clients (before TLS and DEFLATE).", |s| {
                &s.bytes_out
            }),
        ];
        for (name, help, pick) in kinds {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for protocol in [Protocol::Imap, Protocol::Lmtp, Protocol::Socketmap] {
                let value = self.metrics.sum(|shard| &pick(shard)[protocol as usize]);
                let labels = [("protocol", protocol.label())];
                family
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
            }
        }
        Ok(())
    }

    fn encode_logins(&self, encoder: &mut DescriptorEncoder) -> Fmt {
        let help = "Logins (IMAP LOGIN and AUTHENTICATE) by result and mechanism.";
        let mut family =
            encoder.encode_descriptor("skua_logins", help, None, MetricType::Counter)?;
        for result in LoginResult::ALL {
            for mechanism in 0..LoginMechanism::COUNT {
                let value = self.metrics.sum(|shard| &shard.logins[result as usize][mechanism]);
                let labels =
                    [("result", result.label()), ("mechanism", LoginMechanism::label(mechanism))];
                family
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
            }
        }
        Ok(())
    }

    fn encode_deliveries(&self, encoder: &mut DescriptorEncoder) -> Fmt {
        let help = "LMTP recipients (one per user copy) by outcome.";
        let mut family =
            encoder.encode_descriptor("skua_lmtp_deliveries", help, None, MetricType::Counter)?;
        for outcome in DeliveryOutcome::ALL {
            let value = self.metrics.sum(|shard| &shard.deliveries[outcome as usize]);
            let labels = [("outcome", outcome.label())];
            family.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(&value, None)?;
        }
        Ok(())
    }

    fn encode_commands(&self, encoder: &mut DescriptorEncoder) -> Fmt {
        let help = "IMAP command latency, from the command's parse to its tagged reply written.";
        let mut family = encoder.encode_descriptor(
            "skua_imap_command_seconds",
            help,
            None,
            MetricType::Histogram,
        )?;
        for (index, name) in COMMAND_NAMES.iter().enumerate() {
            let snapshot = self.metrics.histogram(|shard| &shard.commands[index]);
            if snapshot.count == 0 {
                continue; // ~70 names: only the ones used appear
            }
            let labels = [("command", *name)];
            snapshot.encode(&mut family.encode_family(&labels)?)?;
        }
        Ok(())
    }

    fn encode_storage(&self, encoder: &mut DescriptorEncoder) -> Fmt {
        let rounds = self.metrics.histogram(|shard| &shard.flush_rounds);
        let help = "Group-commit flush rounds, from begin to durable.";
        let mut family = encoder.encode_descriptor(
            "skua_flush_round_seconds",
            help,
            None,
            MetricType::Histogram,
        )?;
        rounds.encode(&mut family)?;
        let mut syncs = HistogramSnapshot::default();
        FDATASYNC.add_to(&mut syncs);
        let help = "fdatasync calls of flush rounds (one per dirty file or directory).";
        let mut family = encoder.encode_descriptor(
            "skua_fdatasync_seconds",
            help,
            None,
            MetricType::Histogram,
        )?;
        syncs.encode(&mut family)?;
        let help = "User stores open, per shard.";
        let mut family =
            encoder.encode_descriptor("skua_open_stores", help, None, MetricType::Gauge)?;
        for (index, shard) in self.metrics.shards.iter().enumerate() {
            let index = index.to_string();
            let value = shard.open_stores.load(Ordering::Relaxed);
            family.encode_family(&[("shard", index.as_str())])?.encode_gauge(&value)?;
        }
        let help = "Store files holding an open descriptor, process-wide.";
        let mut family =
            encoder.encode_descriptor("skua_store_open_files", help, None, MetricType::Gauge)?;
        let handles = u64::try_from(skua_core::disk::os::open_handles()).unwrap_or(u64::MAX);
        family.encode_gauge(&handles)
    }

    fn encode_runtime(&self, encoder: &mut DescriptorEncoder) -> Fmt {
        let gauges: [(&str, &str, GaugeRead); 2] = [
            ("skua_calls_waiting", "Cross-shard calls of a shard waiting on other shards.", |s| {
                s.calls_waiting.load(Ordering::Relaxed).max(0)
            }),
            ("skua_calls_serving", "Cross-shard calls being served on a shard.", |s| {
                s.calls_serving.load(Ordering::Relaxed).max(0)
            }),
        ];
        for (name, help, read) in gauges {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (index, shard) in self.metrics.shards.iter().enumerate() {
                let index = index.to_string();
                family.encode_family(&[("shard", index.as_str())])?.encode_gauge(&read(shard))?;
            }
        }
        let counters: [(&str, &str, CounterPick); 9] = [
            ("skua_calls_refused", "Cross-shard calls refused over a bound.", |s| &s.calls_refused),
            ("skua_stalls", "Session steps that held a shard's thread 10 ms or more.", |s| {
                &s.stalls
            }),
            ("skua_session_panics", "Session panics caught (connection closed).", |s| &s.panics),
            ("skua_pagein_ring_reads", "Cold body ranges read in through the ring.", |s| {
                &s.pagein_ring_reads
            }),
            ("skua_journal_checkpoints", "Journal checkpoints (users' files synced).", |s| {
                &s.journal_checkpoints
            }),
            (
                "skua_journal_blocking_checkpoints",
                "Journal checkpoints run on the shard's thread (a full journal, a stop).",
                |s| &s.journal_blocking_checkpoints,
            ),
            (
                "skua_journal_background_checkpoints",
                "Journal checkpoints synced on other threads while rounds went on.",
                |s| &s.journal_background_checkpoints,
            ),
            (
                "skua_journal_barriers",
                "Syncs of a file and a forget batch before its rename or removal.",
                |s| &s.journal_barriers,
            ),
            ("skua_journal_bytes", "Bytes of batches written to the shard journal.", |s| {
                &s.journal_bytes
            }),
        ];
        for (name, help, pick) in counters {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (index, shard) in self.metrics.shards.iter().enumerate() {
                let index = index.to_string();
                let value = pick(shard).load(Ordering::Relaxed);
                family
                    .encode_family(&[("shard", index.as_str())])?
                    .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
            }
        }
        Ok(())
    }

    fn encode_process(&self, encoder: &mut DescriptorEncoder) -> Fmt {
        let figures = [
            ("skua_resident_memory_bytes", "Resident memory (/proc/self/statm).", {
                self.process.resident_bytes
            }),
            ("skua_open_fds", "Open file descriptors of the process.", self.process.open_fds),
            ("skua_max_fds", "The process's soft open-files limit.", self.process.fds_max),
        ];
        for (name, help, value) in figures {
            if let Some(value) = value {
                let family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
                let mut family = family;
                family.encode_gauge(&value)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
