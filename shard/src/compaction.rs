//! Background spool compaction, one task per shard (`UserStore::compact_step`,
//! `core/src/store/spool_compact.rs`).
//!
//! Policy: every `interval`, the task walks the stores this shard has *open* (in use by a
//! session or a delivery, or idle but not yet closed by the registry's sweep) and compacts
//! each until it has nothing worth doing. A store that is closed is not opened for this: it
//! is compacted the next time a login or a delivery opens it (so an abandoned mailbox keeps
//! its space until then; `skua user del` frees it). The task never holds the store across an
//! await: each step is one synchronous borrow of at most `step_units` units of work (a unit
//! is 4 KiB copied or a record header read), then the task sleeps long enough to keep the
//! copy rate under `bytes_per_second` (sessions run meanwhile), and waits for the group
//! commit where the rewrite needs a durable epoch. A step that panics poisons the store, as a
//! session's would.

use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use skua_core::store::{CompactProgress, CompactionPolicy};

use crate::guard::guarded;
use crate::registry::UserHandle;
use crate::shard::Shard;

/// Bytes one unit of compaction work copies at most.
const UNIT_BYTES: u64 = 4096;

/// `[compaction]`: how spool compaction runs and what delayed expunge keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactionSettings {
    /// False: no background compaction (expunged mail stays on disk).
    pub enabled: bool,
    /// Expunged messages stay restorable this long (0: space comes back at the next pass).
    pub retention: Duration,
    /// How often each shard looks at its open stores.
    pub interval: Duration,
    /// Work units per step (one synchronous borrow of a store).
    pub step_units: u64,
    /// Copy rate ceiling per shard.
    pub bytes_per_second: u64,
    /// A segment is rewritten once this many of its bytes became free.
    pub free_bytes_min: u64,
}

impl Default for CompactionSettings {
    fn default() -> Self {
        CompactionSettings {
            enabled: true,
            retention: Duration::from_secs(7 * 24 * 3600),
            interval: Duration::from_secs(60),
            step_units: 64,
            bytes_per_second: 32 * 1024 * 1024,
            free_bytes_min: 16 * 1024 * 1024,
        }
    }
}

impl CompactionSettings {
    /// The pause after a step of `units` units that keeps the rate under `bytes_per_second`.
    #[must_use]
    pub fn pause_after(&self, units: u64) -> Duration {
        let bytes = units.saturating_mul(UNIT_BYTES);
        let rate = self.bytes_per_second.max(1);
        Duration::from_micros(bytes.saturating_mul(1_000_000) / rate)
    }

    /// The policy for a pass starting at `now_unix_seconds`.
    #[must_use]
    pub fn policy(&self, now_unix_seconds: i64) -> CompactionPolicy {
        CompactionPolicy {
            retention_seconds: self.retention.as_secs(),
            free_bytes_min: self.free_bytes_min,
            now_unix_seconds,
        }
    }
}

/// The shard's compaction task (see the module docs), sleeping with `sleep` (the runtime's
/// timer); returns at shutdown.
pub(crate) async fn run<F: Future<Output = ()>>(shard: Rc<Shard>, sleep: impl Fn(Duration) -> F) {
    let settings = shard.config().compaction.clone();
    if !settings.enabled {
        return;
    }
    while !shard.is_stopping() {
        sleep(settings.interval).await;
        for handle in shard.registry.open_stores() {
            if shard.is_stopping() {
                return;
            }
            compact_store(&shard, &handle, &settings, &sleep).await;
        }
    }
}

/// Compacts one store until it has nothing worth doing, stops, or fails.
async fn compact_store<F: Future<Output = ()>>(
    shard: &Rc<Shard>,
    handle: &Rc<UserHandle>,
    settings: &CompactionSettings,
    sleep: &impl Fn(Duration) -> F,
) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let policy = settings.policy(i64::try_from(now).unwrap_or(i64::MAX));
    while !shard.is_stopping() && !handle.is_poisoned() {
        // Sessions borrow the store only inside a synchronous step, so it is free here; were
        // it not, this turn is skipped rather than the store poisoned.
        let step = match handle.store.try_borrow_mut() {
            Ok(mut store) => Some(guarded(|| store.compact_step(&policy, settings.step_units))),
            Err(_) => None,
        };
        let Some(step) = step else {
            sleep(settings.pause_after(settings.step_units)).await;
            continue;
        };
        match step {
            Ok(Ok(CompactProgress::Idle)) => return,
            Ok(Ok(CompactProgress::Working)) => {
                sleep(settings.pause_after(settings.step_units)).await;
            }
            Ok(Ok(CompactProgress::Waiting(epoch))) => {
                if shard.commit.wait_durable(epoch).await.is_err() {
                    return;
                }
            }
            Ok(Err(error)) => {
                tracing::warn!(user = handle.name, %error, "spool compaction stopped");
                return;
            }
            Err(detail) => {
                tracing::error!(user = handle.name, detail, "spool compaction panicked");
                shard.registry.poison(handle);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_keeps_the_rate() {
        let settings = CompactionSettings { bytes_per_second: 4096 * 1000, ..Default::default() };
        assert_eq!(settings.pause_after(1), Duration::from_millis(1));
        assert_eq!(settings.pause_after(64), Duration::from_millis(64));
        let policy = CompactionSettings::default().policy(100);
        assert_eq!(policy.retention_seconds, 7 * 24 * 3600);
        assert_eq!(policy.now_unix_seconds, 100);
    }
}
