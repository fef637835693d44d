//! Password checks, off the reactor, and the brake on guessing.
//!
//! Password hashes are slow on purpose (an Argon2id check takes ~0.4 s), so a check runs on
//! the shard's blocking pool, at most `blocking_threads - 1` at a time per shard, so one
//! thread is always free for the shard's flush round (durability never waits for a login).
//!
//! Failed logins are counted per source address (per shard: no state is shared between
//! shards) and answered only after a delay that doubles with each recent failure from that
//! source, from [`AUTH_FAILURE_DELAY_MS`] up to [`AUTH_FAILURE_DELAY_MAX_MS`]. The delay is a
//! timer, not a held thread or permit, so a guesser slows only itself.
//!
//! An unknown user costs what a known one does: [`UserDb::check_login`] verifies the password
//! against a dummy hash then, so neither the check's time nor the failure delay (the same for
//! every failure) tells a guesser which names exist. The password travels as a [`Secret`],
//! whose `Debug` redacts it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use skua_core::users::{Secret, UserDb};

use crate::guard::guarded;
use crate::limits::{
    AUTH_FAILURE_DELAY_MAX_MS, AUTH_FAILURE_DELAY_MS, AUTH_FAILURE_SOURCES_MAX,
    AUTH_FAILURE_WINDOW_SECONDS,
};
use crate::shard::Shard;

/// The verdict on a pair of credentials.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Right password; the canonical user name (as the passwd-file spells it).
    Accepted(String),
    /// Unknown user or wrong password.
    Rejected,
    /// The check could not be made.
    Unavailable,
}

/// Checks `password` for `user` (connecting from `source`) on the blocking pool.
pub async fn check(
    shard: &Shard,
    source: IpAddr,
    user: String,
    password: impl Into<Secret<String>>,
) -> Verdict {
    let password = password.into();
    let outcome = {
        let Ok(_permit) = shard.auth_slots.acquire_permit(1).await else {
            return Verdict::Unavailable;
        };
        let users = shard.shared.users.get();
        glommio::executor()
            .spawn_blocking(move || guarded(|| verify(&users, &user, &password)))
            .await
    };
    match outcome {
        Ok(Some(name)) => {
            shard.login_failures.forget(source);
            Verdict::Accepted(name)
        }
        Ok(None) => {
            let delay = shard.login_failures.record(source, Instant::now());
            glommio::timer::sleep(delay).await;
            Verdict::Rejected
        }
        Err(detail) => {
            tracing::error!(detail, "password check panicked");
            Verdict::Unavailable
        }
    }
}

/// The canonical name when `password` is `user`'s. One password verification whether or not
/// the user exists (see the module docs). CPU-heavy: on the blocking pool only.
fn verify(users: &UserDb, user: &str, password: &Secret<String>) -> Option<String> {
    users.check_login(user, password).map(|entry| entry.name.clone())
}

/// Recent failures of one source.
#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last: Instant,
}

/// Failed logins per source address on one shard, bounded in size.
#[derive(Default)]
pub struct LoginFailures {
    by_source: RefCell<HashMap<IpAddr, Failures>>,
}

impl LoginFailures {
    /// Counts a failure at `now`; returns how long to wait before answering it.
    pub fn record(&self, source: IpAddr, now: Instant) -> Duration {
        let window = Duration::from_secs(AUTH_FAILURE_WINDOW_SECONDS);
        let mut by_source = self.by_source.borrow_mut();
        if by_source.len() >= AUTH_FAILURE_SOURCES_MAX && !by_source.contains_key(&source) {
            by_source.retain(|_, f| now.duration_since(f.last) < window);
            if by_source.len() >= AUTH_FAILURE_SOURCES_MAX {
                // Under attack from very many sources: counting them all would cost unbounded
                // memory; start over (each source still gets the base delay).
                by_source.clear();
            }
        }
        let entry = by_source.entry(source).or_insert(Failures { count: 0, last: now });
        if now.duration_since(entry.last) >= window {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        if entry.count.is_multiple_of(10) {
            tracing::warn!(%source, failures = entry.count, "repeated failed logins from one source");
        }
        failure_delay(entry.count)
    }

    /// Forgets a source after a successful login.
    pub fn forget(&self, source: IpAddr) {
        self.by_source.borrow_mut().remove(&source);
    }

    /// Sources with recent failures.
    #[must_use]
    pub fn sources(&self) -> usize {
        self.by_source.borrow().len()
    }
}

/// The delay before answering the `count`-th recent failure: doubling, capped.
fn failure_delay(count: u32) -> Duration {
    let doublings = count.saturating_sub(1).min(16);
    let millis = AUTH_FAILURE_DELAY_MS.saturating_mul(1 << doublings);
    Duration::from_millis(millis.min(AUTH_FAILURE_DELAY_MAX_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn an_unknown_user_costs_one_verification_like_a_wrong_password() {
        let users = UserDb::parse(b"alice:{PLAIN}right\n", "test");
        let secret = |p: &str| Secret::from(p);
        assert_eq!(verify(&users, "ALICE", &secret("right")), Some("alice".to_owned()));
        assert_eq!(users.verifications(), 1);
        assert_eq!(verify(&users, "alice", &secret("wrong")), None);
        assert_eq!(users.verifications(), 2);
        assert_eq!(verify(&users, "mallory", &secret("right")), None);
        assert_eq!(users.verifications(), 3, "the unknown user's password was verified too");
        assert_eq!(format!("{:?}", secret("right")), "<redacted>");
    }

    #[test]
    fn delays_double_per_source_and_are_capped() {
        let failures = LoginFailures::default();
        let now = Instant::now();
        let base = Duration::from_millis(AUTH_FAILURE_DELAY_MS);
        assert_eq!(failures.record(ip(1), now), base);
        assert_eq!(failures.record(ip(1), now), base * 2);
        assert_eq!(failures.record(ip(1), now), base * 4);
        assert_eq!(failures.record(ip(2), now), base, "another source starts afresh");
        for _ in 0..40 {
            failures.record(ip(1), now);
        }
        assert_eq!(failures.record(ip(1), now), Duration::from_millis(AUTH_FAILURE_DELAY_MAX_MS));
    }

    #[test]
    fn success_and_time_forgive() {
        let failures = LoginFailures::default();
        let now = Instant::now();
        let base = Duration::from_millis(AUTH_FAILURE_DELAY_MS);
        failures.record(ip(1), now);
        failures.record(ip(1), now);
        failures.forget(ip(1));
        assert_eq!(failures.record(ip(1), now), base);
        let later = now + Duration::from_secs(AUTH_FAILURE_WINDOW_SECONDS);
        assert_eq!(failures.record(ip(1), later), base, "old failures expire");
    }

    #[test]
    fn the_table_stays_bounded() {
        let failures = LoginFailures::default();
        let now = Instant::now();
        for i in 0..=AUTH_FAILURE_SOURCES_MAX {
            let source = IpAddr::from(std::net::Ipv6Addr::from(u128::try_from(i).expect("small")));
            failures.record(source, now);
        }
        assert!(failures.sources() <= AUTH_FAILURE_SOURCES_MAX);
    }
}
