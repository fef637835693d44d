//! Password checks, off the reactor, and the brake on guessing.
//!
//! Every login goes through the brake, whatever its mechanism: [`check`] for passwords
//! (PLAIN, LOGIN and the LOGIN command, master users included), and for the cheap checks
//! that run on the shard (SCRAM keys, tokens, EXTERNAL) [`gate`] before the check (the
//! source's turn: a throttled source is refused without a check) and [`settle`] once the
//! exchange ended (a failure is counted and answered after the delay; a success clears what
//! it disproves), so a guesser gains nothing by switching to SCRAM.
//!
//! Password hashes are slow on purpose (an Argon2id check takes ~0.4 s), so a check runs on
//! the shard's blocking pool, at most `blocking_threads - 1` at a time per shard, so one
//! thread is always free for the shard's flush round (durability never waits for a login).
//!
//! ## The brake ([`AuthBrake`], one per process)
//!
//! Failed logins are counted per source (an address, an IPv6 /64: see
//! [`source_key`]), per target user (whatever the source), and per pair of both, in one
//! table shared by every shard (a connection may land on any shard, so per-shard counts let
//! a guesser multiply its budget by the shard count). The table is a mutex over three hash
//! maps, touched twice per login: logins are rare next to everything else a shard does.
//!
//! - **The delay applies to the source, not to a connection.** Each check takes a *turn*
//!   from its source. A source without recent failures may run a few checks at once
//!   ([`AUTH_CHECKS_PER_SOURCE_MAX`], for NATs); more wait for one of those to end
//!   ([`Reservation::Busy`], polled every [`AUTH_SLOT_POLL_US`]), so a burst of honest logins
//!   behind one address costs milliseconds. Once the source has failed, its checks run one
//!   after the other, each turn at least the failure delay after the previous one. So 150 parallel
//!   connections get no more guesses per second than one. A check whose turn is more than
//!   [`AUTH_QUEUE_DELAYS_MAX`] maximal delays away is answered `NO [UNAVAILABLE]` at once,
//!   without checking: the queue of a flooding source stays short.
//! - **The delay** doubles with each recent failure of the source, from `auth_failure_delay`
//!   up to [`AUTH_FAILURE_DELAY_DOUBLINGS_MAX`] doublings. A failure is answered only after
//!   the delay of the source's *or* the target user's failures, whichever are more: guesses
//!   at one user spread over many sources slow down too (each connection waits for its
//!   answer), while the user's own logins from elsewhere are not held up (turns depend on
//!   the source alone). Waits are timers: they hold no thread and no permit.
//! - **A success clears only what it disproves**: the failures of that source against that
//!   user. Logging in to one's own account does not reset the guesses against another.
//!
//! ## Timing
//!
//! An unknown user must cost what a known one does, whatever scheme the known ones use. A
//! check of an unknown user verifies against a dummy hash (`UserDb::check_login`), and every
//! failed check is padded on the timer to the cost of the slowest check of the current
//! passwd-file ([`crate::users::Users::slowest_check`], measured when the file is loaded and
//! raised by a slower check seen since, up to a bound). Successes are not padded: their
//! timing tells nothing the success does not. The password travels as a [`Secret`], whose
//! `Debug` redacts it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use skua_core::users::Secret;
use skua_core::users::master::{LoginIdentity, Logins};

use crate::admission::source_key;
use crate::guard::guarded;
use crate::limits::{
    AUTH_CHECKS_PER_SOURCE_MAX, AUTH_FAILURE_DELAY_DOUBLINGS_MAX, AUTH_FAILURE_NAME_BYTES_MAX,
    AUTH_FAILURE_SOURCES_MAX, AUTH_FAILURE_USERS_MAX, AUTH_FAILURE_WINDOW_SECONDS,
    AUTH_QUEUE_DELAYS_MAX, AUTH_SLOT_POLL_US,
};
use crate::shard::Shard;

/// The verdict on a pair of credentials.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Right password: whose session it opens (canonical name) and who proved it (a master
    /// user, maybe).
    Accepted(LoginIdentity),
    /// Unknown user or wrong password.
    Rejected,
    /// The check could not be made.
    Unavailable,
    /// Not checked: the source's queue of checks is full (it has failed too often lately).
    /// Answered after the base failure delay, so that a refused client cannot spin on it.
    Throttled,
}

/// Checks `password` for `authcid` (maybe `target*master`) acting as `authzid`, connecting
/// from `source`, on the blocking pool, in the source's turn (see the module docs).
pub async fn check(
    shard: &Shard,
    source: IpAddr,
    authcid: String,
    authzid: Option<String>,
    password: impl Into<Secret<String>>,
) -> Verdict {
    let password = password.into();
    let mut turn = match take_turn(shard, source, &authcid).await {
        Ok(turn) => turn,
        Err(verdict) => return verdict,
    };
    glommio::timer::sleep(turn.at.saturating_duration_since(Instant::now())).await;
    let outcome = {
        let Ok(_permit) = shard.auth_slots.acquire_permit(1).await else {
            return Verdict::Unavailable;
        };
        let users = shard.shared.users.get();
        let masters = shard.config().sasl.masters();
        glommio::executor()
            .spawn_blocking(move || {
                guarded(|| {
                    let started = Instant::now();
                    let logins = Logins { users: &users, masters: masters.as_deref() };
                    let verdict = verify(&logins, &authcid, authzid.as_deref(), &password);
                    (verdict, started.elapsed())
                })
            })
            .await
    };
    match outcome {
        Ok((Some(identity), took)) => {
            shard.shared.users.note_check(took);
            turn.finish(Outcome::Success, Instant::now());
            Verdict::Accepted(identity)
        }
        Ok((None, took)) => {
            shard.shared.users.note_check(took);
            let delay = turn.finish(Outcome::Failure, Instant::now());
            let pad = timing_pad(took, shard.shared.users.slowest_check());
            glommio::timer::sleep(pad + delay).await;
            Verdict::Rejected
        }
        Err(detail) => {
            tracing::error!(detail, "password check panicked");
            Verdict::Unavailable
        }
    }
}

/// The source's turn for a check of `user` (see the module docs), or the verdict to give
/// without a check.
async fn take_turn<'a>(shard: &'a Shard, source: IpAddr, user: &str) -> Result<Turn<'a>, Verdict> {
    let brake = &shard.shared.auth_brake;
    let started = Instant::now();
    let turn = loop {
        match brake.reserve(source, user, Instant::now()) {
            Reservation::Turn(turn) => break turn,
            // A burst of logins from a source with no failures: wait for one of its checks in
            // flight to end (they take milliseconds), not for a failure delay.
            Reservation::Busy if started.elapsed() < brake.queue_max() => {
                glommio::timer::sleep(Duration::from_micros(AUTH_SLOT_POLL_US)).await;
            }
            Reservation::Busy | Reservation::Refused => {
                tracing::debug!(%source, "login refused: the source's queue of checks is full");
                glommio::timer::sleep(shard.config().auth_failure_delay).await;
                return Err(Verdict::Throttled);
            }
        }
    };
    glommio::timer::sleep(turn.at.saturating_duration_since(Instant::now())).await;
    Ok(turn)
}

/// Waits for the source's turn before a cheap check (SCRAM keys, a token, a certificate);
/// `Err(Verdict::Throttled)` when the source's queue is full. The turn is given back at once:
/// the exchange may wait for its client for a long time, and must not hold a check slot
/// meanwhile; its outcome is counted by [`settle`].
///
/// # Errors
/// The verdict to answer without checking.
pub async fn gate(shard: &Shard, source: IpAddr, user: &str) -> Result<(), Verdict> {
    take_turn(shard, source, user).await.map(drop)
}

/// Counts how an exchange checked on the shard ended (see [`gate`]); a failure is answered
/// only after the brake's delay, as a failed password check is.
pub async fn settle(shard: &Shard, source: IpAddr, user: &str, outcome: Outcome) {
    let delay = shard.shared.auth_brake.record(source, user, outcome, Instant::now());
    if !delay.is_zero() {
        glommio::timer::sleep(delay).await;
    }
}

/// The identity when `password` proves `authcid` acting as `authzid`. One password
/// verification whether or not the user exists, master users included (see the module docs).
/// CPU-heavy: on the blocking pool only.
fn verify(
    logins: &Logins<'_>,
    authcid: &str,
    authzid: Option<&str>,
    password: &Secret<String>,
) -> Option<LoginIdentity> {
    logins.check_password(authcid, authzid, password).ok()
}

/// How long a failed check that took `took` waits (besides the failure delay) so that it is
/// answered as late as the slowest check would be: every failure then costs the same,
/// whichever user (or none) it named.
fn timing_pad(took: Duration, slowest: Duration) -> Duration {
    slowest.saturating_sub(took)
}

/// How a check ended, for the brake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Right password.
    Success,
    /// Wrong password or unknown user.
    Failure,
}

/// Recent failures (of a source, of a user).
#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last: Instant,
}

impl Failures {
    /// The count, or zero once the window has passed since the last failure.
    fn recent(self, now: Instant) -> u32 {
        let window = Duration::from_secs(AUTH_FAILURE_WINDOW_SECONDS);
        if now.duration_since(self.last) < window { self.count } else { 0 }
    }
}

/// One source's record.
#[derive(Clone, Copy, Debug)]
struct SourceRecord {
    failures: Failures,
    /// Checks holding a turn (waiting or running).
    in_flight: u32,
    /// Of those, the ones that waited for their turn (spacing grows with them).
    queued: u32,
    /// The earliest time the next queued check of this source may run.
    next_turn: Instant,
}

/// The brake's tables.
#[derive(Debug, Default)]
struct Tables {
    sources: HashMap<IpAddr, SourceRecord>,
    users: HashMap<String, Failures>,
    pairs: HashMap<(IpAddr, String), Failures>,
}

/// Failed logins per source, per user and per pair, across every shard; bounded in size.
#[derive(Debug)]
pub struct AuthBrake {
    base: Duration,
    tables: Mutex<Tables>,
}

/// What [`AuthBrake::reserve`] gives a check.
#[derive(Debug)]
pub enum Reservation<'a> {
    /// The check's turn.
    Turn(Turn<'a>),
    /// The source has no recent failure but as many checks running as it may: try again when
    /// one of them ended (a NAT's users logging in together, or the first guesses of a
    /// guesser, which are then at most [`AUTH_CHECKS_PER_SOURCE_MAX`] before its first failure
    /// turns the source to one check per failure delay).
    Busy,
    /// The source's turn would be too far away: answer without a check.
    Refused,
}

#[cfg(test)]
impl<'a> Reservation<'a> {
    /// The turn, if this is one.
    #[must_use]
    pub fn turn(self) -> Option<Turn<'a>> {
        match self {
            Reservation::Turn(turn) => Some(turn),
            Reservation::Busy | Reservation::Refused => None,
        }
    }
}

/// A check's place in its source's order. Finish it with [`Turn::finish`]; dropped unfinished
/// (the connection went away), it gives its place back without counting anything.
#[derive(Debug)]
pub struct Turn<'a> {
    brake: &'a AuthBrake,
    source: IpAddr,
    user: String,
    queued: bool,
    /// When the check may run.
    pub at: Instant,
    finished: bool,
}

impl AuthBrake {
    /// A brake whose first failure delay is `base`.
    #[must_use]
    pub fn new(base: Duration) -> AuthBrake {
        AuthBrake { base, tables: Mutex::new(Tables::default()) }
    }

    /// The delay after `count` recent failures: `base`, doubling, capped.
    fn delay(&self, count: u32) -> Duration {
        if count == 0 {
            return Duration::ZERO;
        }
        let doublings = (count - 1).min(AUTH_FAILURE_DELAY_DOUBLINGS_MAX);
        self.base * (1u32 << doublings)
    }

    /// The longest wait for a turn.
    pub fn queue_max(&self) -> Duration {
        self.delay(AUTH_FAILURE_DELAY_DOUBLINGS_MAX + 1) * AUTH_QUEUE_DELAYS_MAX
    }

    /// Takes a turn for a check of `user` from `source` at `now`; `None` when the turn would
    /// be too far away (answer `NO [UNAVAILABLE]` without checking).
    pub fn reserve(&self, source: IpAddr, user: &str, now: Instant) -> Reservation<'_> {
        let source = source_key(source);
        let user = user_key(user);
        let mut tables = self.tables.lock().expect("auth brake lock");
        let record = source_record(&mut tables, source, now);
        // The turn depends on the source alone: failures against a user slow the answers to
        // failed guesses (see `finish`), never a check, or guessing at a user would delay
        // that user's own logins.
        let failures = record.failures.recent(now);
        let (at, queued) = if failures == 0 && record.in_flight < AUTH_CHECKS_PER_SOURCE_MAX {
            (now, false)
        } else if failures == 0 {
            return Reservation::Busy;
        } else {
            // One at a time: each turn a delay after the previous turn or failure, the delay
            // growing with the failures and with the turns already waiting.
            let spacing = self.delay(failures.max(record.queued + 1));
            let at = record.next_turn.max(now) + spacing;
            if at.duration_since(now) > self.queue_max() {
                return Reservation::Refused;
            }
            record.next_turn = at;
            record.queued += 1;
            (at, true)
        };
        record.in_flight += 1;
        Reservation::Turn(Turn { brake: self, source, user, queued, at, finished: false })
    }

    /// Counts how `turn`'s check ended; the delay before answering a failure.
    fn finish(&self, turn: &Turn<'_>, outcome: Option<Outcome>, now: Instant) -> Duration {
        let mut guard = self.tables.lock().expect("auth brake lock");
        let tables = &mut *guard;
        let Some(record) = tables.sources.get_mut(&turn.source) else {
            return Duration::ZERO; // forgotten under a flood of sources: nothing to count
        };
        record.in_flight = record.in_flight.saturating_sub(1);
        if turn.queued {
            record.queued = record.queued.saturating_sub(1);
        }
        let pair_key = (turn.source, turn.user.clone());
        let delay = match outcome {
            None => Duration::ZERO,
            Some(Outcome::Success) => {
                // Only this source's failures against this user are disproved.
                if let Some(pair) = tables.pairs.remove(&pair_key) {
                    let cleared = pair.recent(now);
                    record.failures.count = record.failures.recent(now).saturating_sub(cleared);
                    if let Some(user) = tables.users.get_mut(&turn.user) {
                        user.count = user.recent(now).saturating_sub(cleared);
                    }
                }
                Duration::ZERO
            }
            Some(Outcome::Failure) => {
                let source_count = bump(&mut record.failures, now);
                let delay_record = record;
                let recent = |f: &Failures| f.recent(now) > 0;
                let none = Failures { count: 0, last: now };
                let users = &mut tables.users;
                make_room(users, &turn.user, AUTH_FAILURE_USERS_MAX, recent);
                let user_count = bump(users.entry(turn.user.clone()).or_insert(none), now);
                let pairs = &mut tables.pairs;
                make_room(pairs, &pair_key, AUTH_FAILURE_USERS_MAX, recent);
                bump(pairs.entry(pair_key).or_insert(none), now);
                let count = source_count.max(user_count);
                if count.is_multiple_of(10) {
                    tracing::warn!(
                        source = %turn.source,
                        source_failures = source_count,
                        user_failures = user_count,
                        "repeated failed logins"
                    );
                }
                delay_record.next_turn = delay_record.next_turn.max(now);
                self.delay(count)
            }
        };
        let forget = tables
            .sources
            .get(&turn.source)
            .is_some_and(|r| r.in_flight == 0 && r.failures.recent(now) == 0);
        if forget {
            tables.sources.remove(&turn.source);
        }
        delay
    }

    /// Counts the outcome of a check that held no turn while it ran (the cheap checks on the
    /// shard: see [`gate`]) exactly as a finished turn would; the delay before answering.
    pub fn record(&self, source: IpAddr, user: &str, outcome: Outcome, now: Instant) -> Duration {
        let source = source_key(source);
        {
            let mut tables = self.tables.lock().expect("auth brake lock");
            // Counted as one check in flight, ended at once by `finish` below.
            source_record(&mut tables, source, now).in_flight += 1;
        }
        let turn = Turn {
            brake: self,
            source,
            user: user_key(user),
            queued: false,
            at: now,
            finished: true,
        };
        self.finish(&turn, Some(outcome), now)
    }

    /// Sources with recent failures or checks in flight.
    #[must_use]
    pub fn sources(&self) -> usize {
        self.tables.lock().expect("auth brake lock").sources.len()
    }
}

impl Turn<'_> {
    /// Counts how the check ended; returns the delay before answering (zero for a success).
    pub fn finish(&mut self, outcome: Outcome, now: Instant) -> Duration {
        self.finished = true;
        self.brake.finish(self, Some(outcome), now)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.brake.finish(self, None, Instant::now());
        }
    }
}

/// Counts one failure at `now`; the recent count.
fn bump(failures: &mut Failures, now: Instant) -> u32 {
    failures.count = failures.recent(now).saturating_add(1);
    failures.last = now;
    failures.count
}

/// The key of a target user: ASCII-lowercased (logins are case-insensitive), cut to
/// [`AUTH_FAILURE_NAME_BYTES_MAX`] bytes.
fn user_key(user: &str) -> String {
    let mut end = user.len().min(AUTH_FAILURE_NAME_BYTES_MAX);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    user[..end].to_ascii_lowercase()
}

/// Before inserting `key` into a full map: drops the entries `keep` does not keep; if that
/// frees nothing, drops everything but `key` (under a flood of sources or names, counting
/// them all would cost unbounded memory; each then starts over at the base delay).
/// The record of `source`, made (fresh, after room is made in the bounded table) if it has
/// none.
fn source_record(tables: &mut Tables, source: IpAddr, now: Instant) -> &mut SourceRecord {
    let busy = |r: &SourceRecord| r.in_flight > 0 || r.failures.recent(now) > 0;
    make_room(&mut tables.sources, &source, AUTH_FAILURE_SOURCES_MAX, busy);
    let fresh = SourceRecord {
        failures: Failures { count: 0, last: now },
        in_flight: 0,
        queued: 0,
        next_turn: now,
    };
    tables.sources.entry(source).or_insert(fresh)
}

fn make_room<K: Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    key: &K,
    max: usize,
    keep: impl Fn(&V) -> bool,
) {
    if map.len() < max || map.contains_key(key) {
        return;
    }
    map.retain(|_, value| keep(value));
    if map.len() >= max {
        map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skua_core::users::UserDb;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    const BASE: Duration = Duration::from_secs(1);

    /// A failed check of `user` from `source` at `now`: its answer delay.
    fn fail(brake: &AuthBrake, source: IpAddr, user: &str, now: Instant) -> Duration {
        let mut turn = brake.reserve(source, user, now).turn().expect("a turn");
        turn.finish(Outcome::Failure, now)
    }

    #[test]
    fn an_unknown_user_costs_one_verification_like_a_wrong_password() {
        let users = UserDb::parse(b"alice:{PLAIN}right\n", "test");
        let logins = Logins::new(&users);
        let secret = |p: &str| Secret::from(p);
        let user = |identity: Option<LoginIdentity>| identity.map(|i| i.user);
        assert_eq!(user(verify(&logins, "ALICE", None, &secret("right"))), Some("alice".into()));
        assert_eq!(users.verifications(), 1);
        assert_eq!(verify(&logins, "alice", None, &secret("wrong")), None);
        assert_eq!(users.verifications(), 2);
        assert_eq!(verify(&logins, "mallory", None, &secret("right")), None);
        assert_eq!(users.verifications(), 3, "the unknown user's password was verified too");
        assert_eq!(verify(&logins, "alice", Some("bob"), &secret("right")), None);
        assert_eq!(users.verifications(), 4, "a refused authorization id costs the same");
        assert_eq!(format!("{:?}", secret("right")), "<redacted>");
    }

    #[test]
    fn a_master_user_logs_in_as_another_with_one_verification() {
        let users = UserDb::parse(b"alice:{PLAIN}alice-pw\n", "users");
        let masters = UserDb::parse(b"support:{PLAIN}master-pw\n", "masters");
        let logins = Logins { users: &users, masters: Some(&masters) };
        let pw = Secret::from("master-pw");
        let by_separator = verify(&logins, "alice*support", None, &pw).expect("master login");
        assert_eq!((by_separator.user.as_str(), by_separator.master), ("alice", true));
        let by_authzid = verify(&logins, "support", Some("alice"), &pw).expect("master login");
        assert_eq!(by_authzid, by_separator);
        assert_eq!(masters.verifications() + users.verifications(), 2);
        assert_eq!(verify(&logins, "nobody*support", None, &pw), None, "no such target");
        assert_eq!(verify(&logins, "alice*support", None, &Secret::from("alice-pw")), None);
    }

    #[test]
    fn recorded_outcomes_count_like_finished_turns() {
        // SCRAM, token and EXTERNAL failures are counted without a turn held while the
        // client answered; they must slow the source exactly as password failures do.
        let brake = AuthBrake::new(BASE);
        let now = Instant::now();
        assert_eq!(brake.record(ip(1), "victim", Outcome::Failure, now), BASE);
        assert_eq!(brake.record(ip(1), "victim", Outcome::Failure, now), BASE * 2);
        let next = brake.reserve(ip(1), "victim", now).turn().expect("turn");
        assert!(next.at >= now + BASE * 2, "the source's next check waits for the delay");
        drop(next);
        assert_eq!(brake.record(ip(1), "victim", Outcome::Success, now), Duration::ZERO);
        assert_eq!(brake.sources(), 0, "the success cleared this source's failures");
    }

    #[test]
    fn every_failure_is_answered_at_the_slowest_checks_cost() {
        let slowest = Duration::from_millis(400);
        for took in [Duration::from_micros(3), Duration::from_millis(5), slowest] {
            assert_eq!(took + timing_pad(took, slowest), slowest, "{took:?}");
        }
        let slower = Duration::from_millis(450);
        assert_eq!(timing_pad(slower, slowest), Duration::ZERO, "never negative");
    }

    #[test]
    fn delays_double_per_source_and_are_capped() {
        let brake = AuthBrake::new(BASE);
        let now = Instant::now();
        assert_eq!(fail(&brake, ip(1), "a", now), BASE);
        assert_eq!(fail(&brake, ip(1), "b", now), BASE * 2);
        assert_eq!(fail(&brake, ip(1), "c", now), BASE * 4);
        assert_eq!(fail(&brake, ip(2), "z", now), BASE, "another source, another user: afresh");
        // Guesses one turn apart (each waits its delay), still within the window.
        let mut clock = now;
        for _ in 0..6 {
            clock += BASE * 17;
            fail(&brake, ip(1), "d", clock);
        }
        assert_eq!(fail(&brake, ip(1), "d", clock + BASE * 17), BASE * 16);
    }

    #[test]
    fn failures_against_one_user_slow_every_source() {
        let brake = AuthBrake::new(BASE);
        let now = Instant::now();
        for last in 1..=3 {
            fail(&brake, ip(last), "alice", now);
        }
        assert_eq!(fail(&brake, ip(4), "alice", now), BASE * 8, "the 4th failure against alice");
        assert_eq!(fail(&brake, ip(5), "bob", now), BASE, "bob is not under attack");
    }

    #[test]
    fn a_success_for_one_user_does_not_clear_failures_against_another() {
        let brake = AuthBrake::new(BASE);
        let now = Instant::now();
        for _ in 0..3 {
            fail(&brake, ip(1), "victim", now);
        }
        // The guesser logs in to its own account from the same address.
        let mut own = brake.reserve(ip(1), "guesser", now).turn().expect("turn");
        assert_eq!(own.finish(Outcome::Success, now), Duration::ZERO);
        drop(own);
        assert_eq!(fail(&brake, ip(1), "victim", now), BASE * 8, "still the 4th failure");
    }

    #[test]
    fn a_success_clears_that_users_failures_from_that_source() {
        let brake = AuthBrake::new(BASE);
        let now = Instant::now();
        fail(&brake, ip(1), "alice", now);
        fail(&brake, ip(1), "alice", now);
        let mut typo_fixed = brake.reserve(ip(1), "ALICE", now + BASE * 4).turn().expect("turn");
        typo_fixed.finish(Outcome::Success, now + BASE * 4);
        drop(typo_fixed);
        assert_eq!(brake.sources(), 0, "nothing left to remember about the source");
        assert_eq!(fail(&brake, ip(1), "alice", now + BASE * 4), BASE);
    }

    #[test]
    fn parallel_guesses_from_one_source_take_turns() {
        let brake = AuthBrake::new(BASE);
        let now = Instant::now();
        // 150 connections from one address send a guess at the same instant.
        let turns: Vec<_> =
            (0..150).filter_map(|_| brake.reserve(ip(1), "victim", now).turn()).collect();
        let at_once = turns.iter().filter(|turn| turn.at == now).count();
        assert_eq!(at_once, usize::try_from(AUTH_CHECKS_PER_SOURCE_MAX).expect("small"));
        let last = turns.iter().map(|turn| turn.at).max().expect("turns");
        assert!(last.duration_since(now) <= brake.queue_max());
        // Checks in the first minute: the parallel few, then one per (doubling) delay.
        let first_minute = turns.iter().filter(|t| t.at < now + Duration::from_secs(60)).count();
        assert!(first_minute <= 12, "{first_minute} checks in the first minute");
        assert!(turns.len() < 20, "the rest are refused without a check: {}", turns.len());
        let mut order: Vec<Instant> = turns.iter().map(|turn| turn.at).collect();
        order.sort();
        for pair in order[at_once..].windows(2) {
            assert!(pair[1] >= pair[0] + BASE, "queued checks are at least a delay apart");
        }
        // Another source is not held up by this one.
        assert_eq!(brake.reserve(ip(2), "other", now).turn().map(|t| t.at), Some(now));
    }

    #[test]
    fn a_burst_of_honest_logins_waits_for_slots_not_for_delays() {
        let brake = AuthBrake::new(BASE);
        let now = Instant::now();
        // 40 users behind one address log in at once: a few checks run, the rest are told to
        // try again shortly (not given turns a failure delay apart).
        let mut running: Vec<_> =
            (0..4).filter_map(|_| brake.reserve(ip(1), "alice", now).turn()).collect();
        assert!(running.iter().all(|turn| turn.at == now));
        assert!(matches!(brake.reserve(ip(1), "bob", now), Reservation::Busy));
        // One ends well: the next check runs at once.
        running.pop().expect("a turn").finish(Outcome::Success, now);
        let next = brake.reserve(ip(1), "bob", now).turn().expect("a free slot");
        assert_eq!(next.at, now);
        // One ends badly: from now on the source's checks are spaced by the failure delay.
        let delay = running.pop().expect("a turn").finish(Outcome::Failure, now);
        assert!(delay >= BASE);
        let spaced = brake.reserve(ip(1), "carol", now).turn().expect("a turn");
        assert!(spaced.at >= now + BASE, "after a failure, turns are a delay apart");
    }

    #[test]
    fn after_a_failure_a_sources_checks_are_spaced_by_the_delay() {
        let brake = AuthBrake::new(BASE);
        let now = Instant::now();
        let delay = fail(&brake, ip(1), "victim", now);
        let next = brake.reserve(ip(1), "victim", now).turn().expect("turn");
        assert!(next.at >= now + delay, "the next check waits for the delay");
    }

    #[test]
    fn an_abandoned_turn_gives_its_place_back() {
        let brake = AuthBrake::new(BASE);
        let now = Instant::now();
        let turns: Vec<_> = (0..4).filter_map(|_| brake.reserve(ip(1), "u", now).turn()).collect();
        drop(turns);
        assert_eq!(brake.sources(), 0);
        assert_eq!(brake.reserve(ip(1), "u", now).turn().map(|t| t.at), Some(now));
    }

    #[test]
    fn old_failures_expire() {
        let brake = AuthBrake::new(BASE);
        let now = Instant::now();
        fail(&brake, ip(1), "a", now);
        fail(&brake, ip(1), "a", now);
        let later = now + Duration::from_secs(AUTH_FAILURE_WINDOW_SECONDS);
        assert_eq!(fail(&brake, ip(1), "a", later), BASE);
    }

    #[test]
    fn the_tables_stay_bounded() {
        let brake = AuthBrake::new(BASE);
        let now = Instant::now();
        for i in 0..=AUTH_FAILURE_SOURCES_MAX {
            let v4 = std::net::Ipv4Addr::from(u32::try_from(i).expect("small"));
            fail(&brake, IpAddr::from(v4), &format!("user{i}"), now);
        }
        let tables = brake.tables.lock().expect("lock");
        assert!(tables.sources.len() <= AUTH_FAILURE_SOURCES_MAX);
        assert!(tables.users.len() <= AUTH_FAILURE_USERS_MAX);
        assert!(tables.pairs.len() <= AUTH_FAILURE_USERS_MAX);
        assert_eq!(user_key(&"É".repeat(100)).len(), AUTH_FAILURE_NAME_BYTES_MAX);
    }
}
