//! Random workloads, drawn from a seed: the same seed gives the same actions, so a failing
//! `SEED=` replays exactly.

use skua_core::disk::sim::SimRng;
use skua_core::types::{FlagsOp, SystemFlags};

use crate::model::{INBOX, Snapshot};
use crate::workload::{Action, Pick};

/// Keyword names the random workload uses.
const KEYWORDS: [&str; 5] = ["$Important", "project-x", "urgent", "$Junk", "later"];

/// Body sizes: inside one sector, a few sectors, many sectors.
const SIZES: [usize; 4] = [120, 600, 1700, 5000];

/// The actions of one random workload. `live` is asked for the current state before each
/// action, so picks and targets always exist.
pub struct RandomWorkload {
    rng: SimRng,
    left: u64,
    mailboxes_made: u32,
    queued: Vec<Action>,
    /// Actions left before the flush round in progress ends (`None`: no round in progress).
    round_left: Option<u64>,
}

impl RandomWorkload {
    /// A workload of 15 to 45 actions (flushes not counted) drawn from `seed`.
    pub fn new(seed: u64) -> RandomWorkload {
        let mut rng = SimRng::new(seed ^ 0x5eed_0fc4_a5a5);
        let left = 15 + rng.below(31);
        RandomWorkload {
            rng,
            left,
            mailboxes_made: 0,
            queued: vec![Action::Flush],
            round_left: None,
        }
    }

    /// The next action, or `None` at the end. Mailbox-list changes come flushed alone.
    pub fn next(&mut self, live: &Snapshot) -> Option<Action> {
        if let Some(action) = self.queued.pop() {
            return Some(action);
        }
        if self.round_left == Some(0) {
            self.round_left = None;
            return Some(Action::FlushEnd);
        }
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let action = self.draw(live);
        match action {
            // A flush ends the round in progress first.
            Action::Flush => self.round_left = None,
            Action::FlushBegin => self.round_left = Some(1 + self.rng.below(3)),
            _ if action.changes_names() => {
                // Popped from the end: flush, the action, flush.
                self.round_left = None;
                self.queued = vec![Action::Flush, action, Action::Flush];
                return self.queued.pop();
            }
            _ => self.round_left = self.round_left.map(|n| n - 1),
        }
        Some(action)
    }

    fn draw(&mut self, live: &Snapshot) -> Action {
        let names: Vec<&String> = live.keys().collect();
        let full: Vec<&String> =
            live.iter().filter(|(_, m)| !m.messages.is_empty()).map(|(n, _)| n).collect();
        let others: Vec<&String> = names.iter().copied().filter(|n| *n != INBOX).collect();
        let roll = self.rng.below(100);
        // 0..=34, and any roll whose action does not fit the store now: an append.
        match roll {
            35..=44 => Action::Flush,
            45..=49 if self.round_left.is_none() => Action::FlushBegin,
            50..=64 if !full.is_empty() => self.flags(&full),
            65..=74 if !full.is_empty() => {
                let mailbox = self.pick_name(&full);
                Action::Expunge { mailbox, pick: self.pick() }
            }
            75..=84 if !full.is_empty() && names.len() > 1 => {
                let source = self.pick_name(&full);
                let targets: Vec<&String> =
                    names.iter().copied().filter(|n| **n != source).collect();
                Action::Copy { source, pick: self.pick(), target: self.pick_name(&targets) }
            }
            85..=91 if names.len() < 6 => {
                let made = self.fresh_number(live);
                // Some children, one level deep, so renames move subtrees.
                let parents: Vec<&String> =
                    others.iter().copied().filter(|n| !n.contains('/')).collect();
                if !parents.is_empty() && self.rng.chance(1, 3) {
                    Action::Create(format!("{}/Sub{made}", self.pick_name(&parents)))
                } else {
                    Action::Create(format!("Folder{made}"))
                }
            }
            92..=96 => {
                let made = self.fresh_number(live);
                // INBOX now and then: its messages move to a new mailbox, INBOX stays.
                let old = if others.is_empty() || self.rng.chance(1, 5) {
                    INBOX.to_owned()
                } else {
                    self.pick_name(&others)
                };
                Action::Rename(old, format!("Renamed{made}"))
            }
            97 if !others.is_empty() => Action::Delete(self.pick_name(&others)),
            98 => {
                let name = self.pick_name(&names);
                Action::Subscribe(name, self.rng.chance(2, 3))
            }
            99 => {
                const WHO: [&str; 4] = ["bob", "-bob", "anyone", "authenticated"];
                const CHANGES: [&str; 6] = ["lrs", "+w", "-r", "", "d", "+c"];
                let name = self.pick_name(&names);
                let who = WHO[self.rng.index(WHO.len())];
                let change = CHANGES[self.rng.index(CHANGES.len())];
                Action::SetAcl(name, who, change)
            }
            _ => self.append(&names),
        }
    }

    /// A number for a new name (`Folder<n>`, `Sub<n>`, `Renamed<n>`) that no live name uses,
    /// even one made by an earlier workload on the same store.
    fn fresh_number(&mut self, live: &Snapshot) -> u32 {
        loop {
            self.mailboxes_made += 1;
            let n = self.mailboxes_made;
            let made = [format!("Folder{n}"), format!("Sub{n}"), format!("Renamed{n}")];
            let taken =
                live.keys().any(|name| name.split('/').any(|part| made.iter().any(|m| m == part)));
            if !taken {
                return n;
            }
        }
    }

    fn append(&mut self, names: &[&String]) -> Action {
        // One append in six is a MULTIAPPEND of two to four messages.
        if self.rng.chance(1, 6) {
            let count = 2 + self.rng.index(3);
            return Action::AppendAll {
                mailbox: self.pick_name(names),
                sizes: (0..count).map(|_| SIZES[self.rng.index(SIZES.len())]).collect(),
                system: self.system_flags(),
                keywords: self.keywords(),
            };
        }
        Action::Append {
            mailbox: self.pick_name(names),
            size: SIZES[self.rng.index(SIZES.len())],
            system: self.system_flags(),
            keywords: self.keywords(),
        }
    }

    fn flags(&mut self, full: &[&String]) -> Action {
        let ops = [FlagsOp::Add, FlagsOp::Remove, FlagsOp::Replace];
        Action::Flags {
            mailbox: self.pick_name(full),
            pick: self.pick(),
            op: ops[self.rng.index(ops.len())],
            system: self.system_flags(),
            keywords: self.keywords(),
        }
    }

    fn pick_name(&mut self, names: &[&String]) -> String {
        names[self.rng.index(names.len())].clone()
    }

    fn pick(&mut self) -> Pick {
        match self.rng.below(4) {
            0 => Pick::First,
            1 => Pick::Last,
            2 => Pick::EveryOther,
            _ => Pick::Random(self.rng.next_u64()),
        }
    }

    fn system_flags(&mut self) -> u16 {
        u16::try_from(self.rng.below(u64::from(SystemFlags::ALL) + 1)).expect("below 0x20")
    }

    fn keywords(&mut self) -> Vec<&'static str> {
        (0..self.rng.below(3))
            .map(|_| KEYWORDS[self.rng.index(KEYWORDS.len())])
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }
}
