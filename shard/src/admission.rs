//! Admission: which connections and logins a shard takes on, and how refusals are logged.
//!
//! Three budgets guard a new connection, checked in this order right after accept:
//!
//! 1. The shard's budget for its protocol (`Shard::admits` in `shard.rs`):
//!    LMTP has its own (`lmtp_connections_per_shard_max`), carved out of the shard's total,
//!    so an IMAP flood cannot keep the MTA out, nor an LMTP flood the users. The open-files
//!    budget is split the same way (see [`crate::listen::fds_to_spare`]).
//! 2. The source's budget ([`SourceTable`]): connections from one address, IMAP and LMTP
//!    together, across every shard (the kernel spreads one source's connections over all
//!    shards, so a per-shard count would let it hold `shards` times the cap).
//! 3. After login, the user's budget ([`UserSessions`]): all of a user's sessions live on
//!    the user's home shard, so that count needs no sharing.
//!
//! The source table is the one piece of connection state shared between shards: a
//! `Mutex<HashMap<IpAddr, u32>>`, touched once on accept and once on close. A lock held for
//! one hash-map update costs well under a microsecond even when both shards contend, next
//! to tens of microseconds for the accept itself, so nothing finer (per-shard tables summed
//! on demand, atomics in a fixed-size array) is worth its complexity. The table holds only
//! sources with a live connection, so it is bounded by the connection caps.
//!
//! Refusals are logged through a [`RefusalLog`]: at most one line per source and reason per
//! interval, carrying the count refused since the previous line, so a flood costs the log a
//! line a minute instead of a line per connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::limits::REFUSAL_LOG_SOURCES_MAX;

/// The address a budget is kept for: IPv4 (also IPv4-mapped IPv6) as is, IPv6 by its /64,
/// since one host (one subscriber line) usually owns a whole /64 and could otherwise pick a
/// fresh address for every connection.
#[must_use]
pub fn source_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
    }
}

/// Live connections per source, across every shard.
#[derive(Debug)]
pub struct SourceTable {
    max: u32,
    live: Mutex<HashMap<IpAddr, u32>>,
}

/// One admitted connection's place in its source's budget; given back on drop (on whichever
/// shard the connection ends: a handed-over connection carries it along).
#[derive(Debug)]
pub struct SourceSlot {
    table: Arc<SourceTable>,
    key: IpAddr,
}

impl SourceTable {
    /// A table allowing `max` connections per source.
    #[must_use]
    pub fn new(max: u32) -> Arc<SourceTable> {
        Arc::new(SourceTable { max, live: Mutex::new(HashMap::new()) })
    }

    /// A slot for one more connection from `peer`, or `None` when its source is at the cap.
    #[must_use]
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<SourceSlot> {
        let key = source_key(peer);
        let mut live = self.live.lock().expect("source table lock");
        let count = live.entry(key).or_insert(0);
        if *count >= self.max {
            if *count == 0 {
                live.remove(&key);
            }
            return None;
        }
        *count += 1;
        Some(SourceSlot { table: self.clone(), key })
    }

    /// Live connections from `peer`'s source.
    #[must_use]
    pub fn live(&self, peer: IpAddr) -> u32 {
        let live = self.live.lock().expect("source table lock");
        live.get(&source_key(peer)).copied().unwrap_or(0)
    }

    /// Sources with at least one live connection.
    #[must_use]
    pub fn sources(&self) -> usize {
        self.live.lock().expect("source table lock").len()
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut live = self.table.live.lock().expect("source table lock");
        let count = live.get_mut(&self.key).expect("a slot's source is in the table");
        assert!(*count > 0, "source count underflow");
        *count -= 1;
        if *count == 0 {
            live.remove(&self.key);
        }
    }
}

/// Logged-in IMAP sessions per user on this (their home) shard.
#[derive(Debug, Default)]
pub struct UserSessions {
    live: std::cell::RefCell<HashMap<String, u32>>,
}

/// One logged-in session's place in its user's budget; given back on drop.
#[derive(Debug)]
pub struct UserSlot {
    sessions: std::rc::Rc<UserSessions>,
    user: String,
}

impl UserSessions {
    /// A slot for one more session of `user` (the store's lowercased name), or `None` when
    /// the user already has `max`.
    #[must_use]
    pub fn admit(self: &std::rc::Rc<Self>, user: &str, max: u32) -> Option<UserSlot> {
        let mut live = self.live.borrow_mut();
        let count = live.get(user).copied().unwrap_or(0);
        if count >= max {
            return None;
        }
        live.insert(user.to_owned(), count + 1);
        Some(UserSlot { sessions: self.clone(), user: user.to_owned() })
    }

    /// Logged-in sessions of `user` now.
    #[must_use]
    pub fn live(&self, user: &str) -> u32 {
        self.live.borrow().get(user).copied().unwrap_or(0)
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut live = self.sessions.live.borrow_mut();
        let count = live.get_mut(&self.user).expect("a slot's user is in the table");
        assert!(*count > 0, "user session count underflow");
        *count -= 1;
        if *count == 0 {
            live.remove(&self.user);
        }
    }
}

/// Why a connection or a login was turned away (or a connection dropped), for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The shard's IMAP budget (connections or open files) is spent.
    ImapShardFull,
    /// The shard's LMTP budget is spent.
    LmtpShardFull,
    /// The source has `connections_per_source_max` connections already.
    SourceCap,
    /// The user has `connections_per_user_max` sessions already.
    UserCap,
    /// No login within `login_deadline`.
    LoginDeadline,
    /// A command unfinished after `command_deadline`.
    CommandDeadline,
}

impl Refusal {
    /// What the log line says.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Refusal::ImapShardFull => {
                "IMAP connections refused: shard's IMAP budget spent (connections or open files)"
            }
            Refusal::LmtpShardFull => {
                "LMTP connections refused: shard's LMTP budget spent (connections or open files)"
            }
            Refusal::SourceCap => "connections refused: too many from this source",
            Refusal::UserCap => "logins refused: too many sessions of this user",
            Refusal::LoginDeadline => "connections dropped: no login before the login deadline",
            Refusal::CommandDeadline => "connections dropped: command unfinished at its deadline",
        }
    }
}

/// Refusals counted since the last log line of one source and reason.
#[derive(Clone, Copy, Debug)]
struct Tally {
    unlogged: u64,
    logged_at: Instant,
}

/// Decides which refusals get a log line: the first of a source and reason, then one per
/// interval carrying the count since the previous line. Shared by every shard, bounded: past
/// [`REFUSAL_LOG_SOURCES_MAX`] sources, the ones quiet for an interval are forgotten, and if
/// that is not enough, further sources are tallied together (logged without an address).
#[derive(Debug)]
pub struct RefusalLog {
    interval: Duration,
    tallies: Mutex<HashMap<(Option<IpAddr>, Refusal), Tally>>,
}

impl RefusalLog {
    /// A log allowing one line per source and reason per `interval`.
    #[must_use]
    pub fn new(interval: Duration) -> RefusalLog {
        RefusalLog { interval, tallies: Mutex::new(HashMap::new()) }
    }

    /// Counts one refusal at `now`. `Some((source, count))` when a line is due: `count`
    /// refusals (this one included) since the previous line, `source` `None` for the tally
    /// of sources beyond the table's bound.
    #[must_use]
    pub fn count(
        &self,
        peer: IpAddr,
        reason: Refusal,
        now: Instant,
    ) -> Option<(Option<IpAddr>, u64)> {
        let mut tallies = self.tallies.lock().expect("refusal log lock");
        let mut key = (Some(source_key(peer)), reason);
        if !tallies.contains_key(&key) && tallies.len() >= REFUSAL_LOG_SOURCES_MAX {
            let interval = self.interval;
            tallies.retain(|_, tally| now.duration_since(tally.logged_at) < interval);
            if tallies.len() >= REFUSAL_LOG_SOURCES_MAX {
                key = (None, reason);
            }
        }
        match tallies.get_mut(&key) {
            None => {
                tallies.insert(key, Tally { unlogged: 0, logged_at: now });
                Some((key.0, 1))
            }
            Some(tally) if now.duration_since(tally.logged_at) >= self.interval => {
                let count = tally.unlogged + 1;
                *tally = Tally { unlogged: 0, logged_at: now };
                Some((key.0, count))
            }
            Some(tally) => {
                tally.unlogged += 1;
                None
            }
        }
    }

    /// Counts one refusal now and writes the log line if one is due.
    pub fn note(&self, peer: IpAddr, reason: Refusal, shard: u32) {
        if let Some((source, refused)) = self.count(peer, reason, Instant::now()) {
            let source = source.map_or_else(|| "many sources".to_owned(), |s| s.to_string());
            // A full shard may mean the open-files limit is too low for the load.
            let open_files_limit = match reason {
                Refusal::ImapShardFull | Refusal::LmtpShardFull => {
                    crate::listen::open_files_limit()
                }
                _ => String::new(),
            };
            tracing::warn!(
                shard,
                source,
                refused,
                interval_seconds = self.interval.as_secs(),
                open_files_limit,
                "{}",
                reason.describe()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn sources_are_capped_and_slots_give_their_place_back() {
        let table = SourceTable::new(2);
        let first = table.admit(ip("192.0.2.1")).expect("first");
        let second = table.admit(ip("192.0.2.1")).expect("second");
        assert!(table.admit(ip("192.0.2.1")).is_none(), "third from one source");
        let other = table.admit(ip("192.0.2.2")).expect("another source has its own budget");
        drop(first);
        let again = table.admit(ip("192.0.2.1")).expect("a closed connection frees its place");
        drop((second, again, other));
        assert_eq!(table.sources(), 0, "sources without connections are forgotten");
    }

    #[test]
    fn a_source_is_its_address_or_its_ipv6_slash_64() {
        assert_eq!(source_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(source_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        let table = SourceTable::new(1);
        let _held = table.admit(ip("2001:db8:1:2::1")).expect("first");
        assert!(table.admit(ip("2001:db8:1:2::2")).is_none(), "same /64");
        assert!(table.admit(ip("2001:db8:1:3::1")).is_some(), "another /64");
    }

    #[test]
    fn a_zero_cap_refuses_without_keeping_an_entry() {
        let table = SourceTable::new(0);
        assert!(table.admit(ip("192.0.2.1")).is_none());
        assert_eq!(table.sources(), 0);
    }

    #[test]
    fn users_are_capped_per_name() {
        let sessions = std::rc::Rc::new(UserSessions::default());
        let first = sessions.admit("alice", 1).expect("first");
        assert!(sessions.admit("alice", 1).is_none());
        assert!(sessions.admit("bob", 1).is_some());
        drop(first);
        assert_eq!(sessions.live("alice"), 0);
        assert!(sessions.admit("alice", 1).is_some());
    }

    #[test]
    fn refusals_are_logged_once_per_source_and_interval_with_a_count() {
        let log = RefusalLog::new(Duration::from_secs(60));
        let now = Instant::now();
        let flood = ip("192.0.2.1");
        assert_eq!(log.count(flood, Refusal::SourceCap, now), Some((Some(flood), 1)));
        let mut lines = 0;
        for second in 1..60 {
            let at = now + Duration::from_secs(second);
            lines += usize::from(log.count(flood, Refusal::SourceCap, at).is_some());
        }
        assert_eq!(lines, 0, "59 more refusals within the interval: no line");
        let other = log.count(flood, Refusal::LoginDeadline, now);
        assert_eq!(other, Some((Some(flood), 1)), "another reason has its own line");
        let due = log.count(flood, Refusal::SourceCap, now + Duration::from_secs(60));
        assert_eq!(due, Some((Some(flood), 60)), "the line counts every refusal since");
    }

    #[test]
    fn the_refusal_log_stays_bounded() {
        let log = RefusalLog::new(Duration::from_secs(60));
        let now = Instant::now();
        for i in 0..REFUSAL_LOG_SOURCES_MAX + 10 {
            let source = IpAddr::from(std::net::Ipv4Addr::from(u32::try_from(i).expect("small")));
            let _ = log.count(source, Refusal::SourceCap, now);
        }
        let tallies = log.tallies.lock().expect("lock").len();
        assert!(tallies <= REFUSAL_LOG_SOURCES_MAX + 1, "{tallies}");
        let late = IpAddr::from(std::net::Ipv4Addr::new(203, 0, 113, 9));
        assert_eq!(log.count(late, Refusal::SourceCap, now), None, "tallied with the overflow");
    }
}
