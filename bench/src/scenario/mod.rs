//! The scenarios, and what they share: command mixes, seeded randomness, message sources,
//! opening an IMAP session with each step measured.

pub mod churn;
pub mod handshake;
pub mod idle;
pub mod imap_mixed;
pub mod imap_read;
pub mod lmtp;
pub mod ordering;
pub mod prefill;
pub mod qresync;
pub mod search_context;
pub mod sessions;

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::distributions::WeightedIndex;
use rand_chacha::ChaCha8Rng;

use crate::cli::{InvalidArgs, MessageArgs};
use crate::client::ClientError;
use crate::client::imap::ImapClient;
use crate::client::tls::Endpoint;
use crate::corpus::{CorpusError, Source};
use crate::stats::Recorder;

/// Why a scenario could not run (as opposed to errors it measured).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Bad options.
    #[error(transparent)]
    Args(#[from] InvalidArgs),
    /// The corpus could not be loaded.
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    /// The server could not be reached or set up for the run.
    #[error("{0}")]
    Setup(String),
}

/// The random generator of worker `w`: its own ChaCha8 stream of the run's seed.
pub fn worker_rng(seed: u64, w: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(w as u64);
    rng
}

/// A number unique to this run (wall clock, ns), so Message-IDs differ between runs.
pub fn run_nonce() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The message source the options ask for.
pub fn message_source(m: &MessageArgs) -> Result<Source, BenchError> {
    m.validate()?;
    Ok(match &m.corpus {
        Some(dir) => Source::load(dir)?,
        None => Source::fixed(m.size),
    })
}

/// Parses `name=weight,...` against the operation names allowed; names left out weigh 0.
/// Returns one weight per allowed name.
pub fn parse_mix(spec: &str, allowed: &[&str]) -> Result<Vec<u32>, InvalidArgs> {
    let mut weights = vec![0; allowed.len()];
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, w) = part
            .split_once('=')
            .ok_or_else(|| InvalidArgs(format!("--mix entry {part:?} is not name=weight")))?;
        let i = allowed.iter().position(|a| *a == name.trim()).ok_or_else(|| {
            InvalidArgs(format!("--mix: unknown command {name:?}; known: {}", allowed.join(", ")))
        })?;
        weights[i] = w
            .trim()
            .parse()
            .map_err(|_| InvalidArgs(format!("--mix: weight of {name} is not a number")))?;
    }
    if weights.iter().all(|&w| w == 0) {
        return Err(InvalidArgs("--mix: at least one weight must be positive".into()));
    }
    Ok(weights)
}

/// A sampler over operation indexes by weight.
pub fn sampler(weights: &[u32]) -> WeightedIndex<u32> {
    WeightedIndex::new(weights).expect("parse_mix guarantees a positive weight")
}

/// Indexes of a scenario's session steps in its operation list.
#[derive(Debug, Clone, Copy)]
pub struct SessionOps {
    /// TCP connect and greeting.
    pub connect: usize,
    /// LOGIN.
    pub login: usize,
    /// SELECT or EXAMINE.
    pub select: usize,
}

/// Who opens a session, where, and on which mailbox.
#[derive(Debug, Clone, Copy)]
pub struct SessionSpec<'a> {
    /// The IMAP server.
    pub to: &'a Endpoint,
    /// Longest wait for one response.
    pub timeout: Duration,
    /// User name.
    pub user: &'a str,
    /// Password.
    pub password: &'a str,
    /// Mailbox to open.
    pub mailbox: &'a str,
    /// EXAMINE instead of SELECT.
    pub read_only: bool,
}

/// Connects, logs in and selects (`EXAMINE` when read-only), recording each step's latency
/// (the first one from `start`, which is the intended start in open loop).
pub async fn open_session(
    s: SessionSpec<'_>,
    start: Instant,
    ops: SessionOps,
    rec: &mut Recorder,
) -> Result<ImapClient, ClientError> {
    let mut c = step(rec, ops.connect, start, ImapClient::connect(s.to, s.timeout)).await?;
    let t = Instant::now();
    step(rec, ops.login, t, c.login(s.user, s.password)).await?;
    let verb = if s.read_only { "EXAMINE" } else { "SELECT" };
    let t = Instant::now();
    step(
        rec,
        ops.select,
        t,
        c.command(&format!("{verb} {}", crate::client::imap::quote(s.mailbox))),
    )
    .await?;
    Ok(c)
}

/// Awaits `f`, recording its latency from `start` as `op`, or an error.
pub async fn step<T>(
    rec: &mut Recorder,
    op: usize,
    start: Instant,
    f: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    match f.await {
        Ok(v) => {
            rec.record(op, start.elapsed());
            Ok(v)
        }
        Err(e) => {
            rec.error(op);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes() {
        let names = ["fetch", "store", "append"];
        assert_eq!(parse_mix("fetch=3, append=1", &names).unwrap(), [3, 0, 1]);
        assert!(
            parse_mix("fetch=3,bogus=1", &names)
                .unwrap_err()
                .0
                .contains("known: fetch, store, append")
        );
        assert!(parse_mix("fetch", &names).is_err());
        assert!(parse_mix("fetch=x", &names).is_err());
        assert!(parse_mix("fetch=0", &names).is_err());
    }

    #[test]
    fn worker_streams_are_deterministic_and_distinct() {
        use rand::Rng;
        let a: u64 = worker_rng(1, 0).r#gen();
        assert_eq!(a, worker_rng(1, 0).r#gen::<u64>());
        assert_ne!(a, worker_rng(1, 1).r#gen::<u64>());
    }
}
