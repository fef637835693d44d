//! What the workload knows about the store: snapshots of its live state, and the check that a
//! recovered store is one of the states a crash may legally leave.
//!
//! The workload snapshots the live store after every operation. The *acknowledged* snapshot is
//! the one taken before the last successful flush round; the snapshots taken after it are
//! *in flight*. After a crash, every item (a mailbox, a message, a message's flags) must look
//! like it did in one of the candidate snapshots (acknowledged or in flight), and whatever all
//! candidates agree on must be there.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::rc::Rc;

use skua_core::types::SystemFlags;

/// One message as the store showed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageState {
    /// The message bytes.
    pub body: Rc<[u8]>,
    /// The cache blob given at append.
    pub cache: Rc<[u8]>,
    /// System flag bits.
    pub system: u16,
    /// Keyword names (not bits: bits only mean something with the keyword table).
    pub keywords: BTreeSet<String>,
    /// The message's MODSEQ.
    pub modseq: u64,
    /// Its EMAILID (RFC 8474): kept by every copy, never changed by a crash.
    pub email_id: u64,
    /// Its THREADID (RFC 8474): decided at append, kept by every copy, never changed by a crash.
    pub thread_id: u64,
    /// Its save date (RFC 8514); recovery may forget it (rebuilt from the spool), never change it.
    pub save_date: Option<i64>,
}

impl MessageState {
    /// The flags, for comparing states whose MODSEQs may differ.
    pub fn flags(&self) -> (u16, &BTreeSet<String>) {
        (self.system, &self.keywords)
    }
}

/// One mailbox as the store showed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxState {
    /// UIDVALIDITY.
    pub uid_validity: u32,
    /// UIDNEXT.
    pub uid_next: u32,
    /// HIGHESTMODSEQ.
    pub highest_modseq: u64,
    /// The message count `mailbox_info` gave.
    pub count: u32,
    /// The `\Seen`-less and `\Deleted` counts `mailbox_info` gave.
    pub unseen_deleted: (u32, u32),
    /// Whether the name is subscribed.
    pub subscribed: bool,
    /// The ACL (RFC 4314) as `identifier rights` lines, in order: it belongs to the mailbox
    /// (its UIDVALIDITY), so a crash leaves one a candidate of the same mailbox had.
    pub acl: Vec<String>,
    /// Live messages by UID, in the order `messages()` gave them.
    pub messages: Vec<(u32, MessageState)>,
}

impl MailboxState {
    /// The message with this UID.
    pub fn message(&self, uid: u32) -> Option<&MessageState> {
        self.messages.iter().find(|(u, _)| *u == uid).map(|(_, m)| m)
    }
}

/// The whole store, by mailbox name.
pub type Snapshot = BTreeMap<String, MailboxState>;

/// The name recovery always creates.
pub const INBOX: &str = "INBOX";

/// Violations found in one recovered store, one line each.
#[derive(Debug, Default)]
pub struct Violations(pub Vec<String>);

impl Violations {
    fn add(&mut self, line: String) {
        self.0.push(line);
    }

    /// True when the store was fine.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Checks that nothing the store reports breaks its own invariants: UIDs strictly increase,
/// each is below UIDNEXT, each MODSEQ is at most HIGHESTMODSEQ, the count matches, and every
/// body is one the workload wrote.
pub fn check_invariants(store: &Snapshot, written: &BTreeSet<Vec<u8>>, out: &mut Violations) {
    check_uid_validities(store, out);
    for (name, mailbox) in store {
        let uids: Vec<u32> = mailbox.messages.iter().map(|(uid, _)| *uid).collect();
        if uids.windows(2).any(|pair| pair[0] >= pair[1]) {
            out.add(format!("{name}: UIDs not strictly increasing: {uids:?}"));
        }
        if let Some(&last) = uids.last()
            && last >= mailbox.uid_next
        {
            out.add(format!("{name}: UID {last} not below UIDNEXT {}", mailbox.uid_next));
        }
        if mailbox.count as usize != uids.len() {
            out.add(format!(
                "{name}: info says {} messages, list has {}",
                mailbox.count,
                uids.len()
            ));
        }
        let count = |bit: u16, set: bool| {
            let matching = mailbox.messages.iter().filter(|(_, m)| (m.system & bit != 0) == set);
            u32::try_from(matching.count()).expect("bounded")
        };
        let counted = (count(SystemFlags::SEEN, false), count(SystemFlags::DELETED, true));
        if mailbox.unseen_deleted != counted {
            let said = mailbox.unseen_deleted;
            out.add(format!(
                "{name}: info says (unseen, deleted) {said:?}, messages have {counted:?}"
            ));
        }
        for (uid, message) in &mailbox.messages {
            if message.modseq > mailbox.highest_modseq {
                let highest = mailbox.highest_modseq;
                out.add(format!(
                    "{name}: UID {uid} MODSEQ {} > HIGHESTMODSEQ {highest}",
                    message.modseq
                ));
            }
            if !written.contains(&message.body[..]) {
                out.add(format!("{name}: UID {uid} has a body the workload never wrote"));
            }
        }
    }
}

/// Checks that no two mailboxes share a UIDVALIDITY: the store never gives one twice, and the
/// crash checks tell incarnations of a name apart by it.
fn check_uid_validities(store: &Snapshot, out: &mut Violations) {
    let mut seen = BTreeMap::new();
    for (name, mailbox) in store {
        if let Some(other) = seen.insert(mailbox.uid_validity, name) {
            out.add(format!("{name} and {other} share UIDVALIDITY {}", mailbox.uid_validity));
        }
    }
}

/// Checks a recovered store against the acknowledged snapshot and the in-flight ones.
pub fn check_recovered(
    recovered: &Snapshot,
    acked: &Snapshot,
    in_flight: &[Snapshot],
    out: &mut Violations,
) {
    let candidates: Vec<&Snapshot> = std::iter::once(acked).chain(in_flight).collect();
    check_names(recovered, &candidates, out);
    let names: BTreeSet<&String> = candidates.iter().flat_map(|c| c.keys()).collect();
    for name in names {
        let present: Vec<&MailboxState> = candidates.iter().filter_map(|c| c.get(name)).collect();
        match recovered.get(name) {
            None if present.len() == candidates.len() => {
                out.add(format!("{name}: mailbox lost (every candidate state has it)"));
            }
            None => {}
            Some(mailbox) => {
                let fresh_inbox_allowed = name == INBOX && inbox_moved_or_new(recovered, acked);
                let known =
                    Known { acked: acked.get(name), present: &present, fresh_inbox_allowed };
                check_mailbox(name, mailbox, &known, out);
            }
        }
    }
}

/// The set of mailbox names must be one a candidate had (so a rename is all or nothing),
/// give or take INBOX, which recovery recreates.
fn check_names(recovered: &Snapshot, candidates: &[&Snapshot], out: &mut Violations) {
    let with_inbox = |names: BTreeSet<&String>| -> BTreeSet<String> {
        names.into_iter().cloned().chain([INBOX.to_owned()]).collect()
    };
    let got = with_inbox(recovered.keys().collect());
    if !candidates.iter().any(|c| with_inbox(c.keys().collect()) == got) {
        let mut line = format!("mailbox names {got:?} match no candidate:");
        for candidate in candidates {
            let _ = write!(line, " {:?}", with_inbox(candidate.keys().collect()));
        }
        out.add(line);
    }
}

/// What the candidate states say about one mailbox name.
struct Known<'a> {
    /// The acknowledged state of the name.
    acked: Option<&'a MailboxState>,
    /// Every candidate state of the name (acknowledged or in flight) that has it.
    present: &'a [&'a MailboxState],
    /// True when a new, empty INBOX is fine (recovery creates INBOX when the log has none).
    fresh_inbox_allowed: bool,
}

/// Whether recovery may have made a new INBOX: none was acknowledged, or the acknowledged one
/// now lives under another name (a RENAME of INBOX moves its messages to the new name).
fn inbox_moved_or_new(recovered: &Snapshot, acked: &Snapshot) -> bool {
    let Some(inbox) = acked.get(INBOX) else {
        return true;
    };
    recovered.iter().any(|(name, m)| name != INBOX && m.uid_validity == inbox.uid_validity)
}

fn check_mailbox(name: &str, mailbox: &MailboxState, known: &Known<'_>, out: &mut Violations) {
    let (acked, present) = (known.acked, known.present);
    // Only candidates of the same incarnation (UIDVALIDITY) say anything about its messages.
    let same: Vec<&MailboxState> =
        present.iter().copied().filter(|c| c.uid_validity == mailbox.uid_validity).collect();
    if same.is_empty() {
        let fresh = known.fresh_inbox_allowed && mailbox.messages.is_empty();
        if !fresh {
            let known: Vec<u32> = present.iter().map(|c| c.uid_validity).collect();
            out.add(format!("{name}: UIDVALIDITY {} is none of {known:?}", mailbox.uid_validity));
        }
        return;
    }
    if !present.iter().any(|c| c.subscribed == mailbox.subscribed) {
        let state = if mailbox.subscribed { "subscribed" } else { "not subscribed" };
        out.add(format!("{name}: {state}, unlike every candidate state"));
    }
    if !same.iter().any(|c| c.acl == mailbox.acl) {
        out.add(format!("{name}: ACL {:?}, unlike every candidate state", mailbox.acl));
    }
    let acked = acked.filter(|a| a.uid_validity == mailbox.uid_validity);
    if let Some(acked) = acked {
        check_counters(name, mailbox, acked, out);
    }
    for (uid, message) in &mailbox.messages {
        let in_flight = acked.is_none_or(|a| a.message(*uid).is_none());
        check_message(name, *uid, message, &same, in_flight, out);
    }
    if let Some(acked) = acked {
        for (uid, _) in &acked.messages {
            let everywhere = same.iter().all(|c| c.message(*uid).is_some());
            if everywhere && mailbox.message(*uid).is_none() {
                out.add(format!("{name}: acknowledged UID {uid} lost"));
            }
        }
    }
}

fn check_counters(name: &str, mailbox: &MailboxState, acked: &MailboxState, out: &mut Violations) {
    if mailbox.uid_next < acked.uid_next {
        out.add(format!("{name}: UIDNEXT went back {} -> {}", acked.uid_next, mailbox.uid_next));
    }
    if mailbox.highest_modseq < acked.highest_modseq {
        let (was, now) = (acked.highest_modseq, mailbox.highest_modseq);
        out.add(format!("{name}: HIGHESTMODSEQ went back {was} -> {now}"));
    }
}

fn check_message(
    name: &str,
    uid: u32,
    message: &MessageState,
    same: &[&MailboxState],
    in_flight: bool,
    out: &mut Violations,
) {
    let shown: Vec<&MessageState> = same.iter().filter_map(|c| c.message(uid)).collect();
    if shown.is_empty() {
        out.add(format!("{name}: UID {uid} present but never live (expunged or never appended)"));
        return;
    }
    // A UID shown only in flight may be given again after a crash lost its message (UIDNEXT
    // need only stay above what was acknowledged), so match the message by its bytes.
    let known: Vec<&MessageState> =
        shown.iter().copied().filter(|k| k.body == message.body).collect();
    if known.is_empty() {
        let sizes: Vec<usize> = shown.iter().map(|k| k.body.len()).collect();
        let size = message.body.len();
        out.add(format!(
            "{name}: UID {uid} body differs ({size} bytes, expected one of {sizes:?})"
        ));
        return;
    }
    if known.iter().all(|k| k.cache != message.cache) {
        out.add(format!("{name}: UID {uid} cache blob differs"));
    }
    if known.iter().all(|k| k.email_id != message.email_id) {
        out.add(format!("{name}: UID {uid} EMAILID {:x} changed", message.email_id));
    }
    if known.iter().all(|k| k.thread_id != message.thread_id) {
        out.add(format!("{name}: UID {uid} THREADID {:x} changed", message.thread_id));
    }
    if message.save_date.is_some() && known.iter().all(|k| k.save_date != message.save_date) {
        out.add(format!("{name}: UID {uid} save date {:?} changed", message.save_date));
    }
    if !flags_possible(message, &known, in_flight) {
        let expected: Vec<_> = known.iter().map(|k| k.flags()).collect();
        out.add(format!("{name}: UID {uid} flags {:?} are none of {expected:?}", message.flags()));
    }
}

/// Whether recovered flags could come from the candidate states: each flag (system bit or
/// keyword) must be set or clear as in at least one candidate. Where all candidates agree
/// (an acknowledged state with no change in flight) that means equal; a change in flight may
/// land flag by flag (it was never acknowledged), but no flag may appear that no state had.
///
/// For a message that is itself in flight (`in_flight`), every flag may also be clear: the
/// message may have landed before its flags did, as the state before it existed had none.
fn flags_possible(message: &MessageState, known: &[&MessageState], in_flight: bool) -> bool {
    let system_ok = (0..16).all(|bit| {
        let set = message.system & (1 << bit) != 0;
        (in_flight && !set) || known.iter().any(|k| (k.system & (1 << bit) != 0) == set)
    });
    let mut names: BTreeSet<&String> = message.keywords.iter().collect();
    names.extend(known.iter().flat_map(|k| &k.keywords));
    let keywords_ok = names.into_iter().all(|name| {
        let set = message.keywords.contains(name);
        (in_flight && !set) || known.iter().any(|k| k.keywords.contains(name) == set)
    });
    system_ok && keywords_ok
}

/// The checker must be able to fail: each test breaks one rule on purpose.
#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str, system: u16) -> MessageState {
        MessageState {
            body: body.as_bytes().into(),
            cache: Rc::from(&b""[..]),
            system,
            keywords: BTreeSet::new(),
            modseq: 1,
            email_id: body.len() as u64 + 64,
            thread_id: 64,
            save_date: Some(1_700_000_000),
        }
    }

    fn mailbox(uid_validity: u32, messages: &[(u32, MessageState)]) -> MailboxState {
        let uid_next = messages.last().map_or(1, |(uid, _)| uid + 1);
        let count = u32::try_from(messages.len()).unwrap();
        MailboxState {
            unseen_deleted: (
                u32::try_from(messages.iter().filter(|(_, m)| m.system & 1 == 0).count()).unwrap(),
                u32::try_from(messages.iter().filter(|(_, m)| m.system & 8 != 0).count()).unwrap(),
            ),
            subscribed: false,
            acl: Vec::new(),
            uid_validity,
            uid_next,
            highest_modseq: 5,
            count,
            messages: messages.to_vec(),
        }
    }

    fn store(mailboxes: &[(&str, MailboxState)]) -> Snapshot {
        mailboxes.iter().map(|(name, m)| ((*name).to_owned(), m.clone())).collect()
    }

    fn violations(recovered: &Snapshot, acked: &Snapshot, in_flight: &[Snapshot]) -> Vec<String> {
        let mut out = Violations::default();
        check_recovered(recovered, acked, in_flight, &mut out);
        out.0
    }

    #[test]
    fn the_acknowledged_state_itself_passes() {
        let acked = store(&[(INBOX, mailbox(7, &[(1, message("a", 0))]))]);
        assert!(violations(&acked, &acked, &[]).is_empty());
    }

    #[test]
    fn a_lost_acknowledged_message_fails() {
        let acked = store(&[(INBOX, mailbox(7, &[(1, message("a", 0)), (2, message("b", 0))]))]);
        let mut lost = store(&[(INBOX, mailbox(7, &[(1, message("a", 0))]))]);
        lost.get_mut(INBOX).unwrap().uid_next = 3;
        let found = violations(&lost, &acked, &[]);
        assert!(found.iter().any(|v| v.contains("acknowledged UID 2 lost")), "{found:?}");
        let expunging = lost.clone();
        assert!(
            violations(&lost, &acked, &[expunging]).is_empty(),
            "an expunge in flight may land"
        );
    }

    #[test]
    fn wrong_bytes_flags_and_uidvalidity_fail() {
        let acked = store(&[("Work", mailbox(7, &[(1, message("a", 1))]))]);
        let bytes = store(&[("Work", mailbox(7, &[(1, message("x", 1))]))]);
        assert!(violations(&bytes, &acked, &[]).iter().any(|v| v.contains("body differs")));
        let flags = store(&[("Work", mailbox(7, &[(1, message("a", 2))]))]);
        assert!(violations(&flags, &acked, &[]).iter().any(|v| v.contains("flags")));
        let validity = store(&[("Work", mailbox(8, &[(1, message("a", 1))]))]);
        assert!(violations(&validity, &acked, &[]).iter().any(|v| v.contains("UIDVALIDITY")));
    }

    #[test]
    fn a_half_done_rename_fails() {
        let before = store(&[(INBOX, mailbox(1, &[])), ("Old", mailbox(7, &[]))]);
        let after = store(&[(INBOX, mailbox(1, &[])), ("New", mailbox(7, &[]))]);
        let both =
            store(&[(INBOX, mailbox(1, &[])), ("Old", mailbox(7, &[])), ("New", mailbox(7, &[]))]);
        assert!(violations(&after, &before, std::slice::from_ref(&after)).is_empty());
        assert!(violations(&before, &before, std::slice::from_ref(&after)).is_empty());
        assert!(!violations(&both, &before, std::slice::from_ref(&after)).is_empty());
        let neither = store(&[(INBOX, mailbox(1, &[]))]);
        assert!(!violations(&neither, &before, &[after]).is_empty());
    }

    #[test]
    fn flags_in_flight_may_land_flag_by_flag_but_never_invent_one() {
        let mut with = message("a", 1);
        with.keywords.insert("k".to_owned());
        let before = store(&[(INBOX, mailbox(7, &[(1, message("a", 0))]))]);
        let after = store(&[(INBOX, mailbox(7, &[(1, with.clone())]))]);
        let mut half = with.clone();
        half.system = 0;
        let half = store(&[(INBOX, mailbox(7, &[(1, half)]))]);
        assert!(violations(&half, &before, std::slice::from_ref(&after)).is_empty());
        assert!(!violations(&half, &before, &[]).is_empty(), "acknowledged flags are exact");
        let mut invented = with;
        invented.system = 2;
        let invented = store(&[(INBOX, mailbox(7, &[(1, invented)]))]);
        assert!(!violations(&invented, &before, &[after]).is_empty());
    }

    #[test]
    fn counters_may_not_go_back() {
        let acked = store(&[(INBOX, mailbox(7, &[(4, message("a", 0))]))]);
        let mut back = acked.clone();
        back.get_mut(INBOX).unwrap().highest_modseq = 4;
        back.get_mut(INBOX).unwrap().uid_next = 3;
        let found = violations(&back, &acked, &[]);
        assert!(found.iter().any(|v| v.contains("HIGHESTMODSEQ")), "{found:?}");
        assert!(found.iter().any(|v| v.contains("UIDNEXT")), "{found:?}");
    }

    #[test]
    fn invariants_catch_unknown_bodies_and_disorder() {
        let written: BTreeSet<Vec<u8>> = [b"a".to_vec()].into();
        let mut bad = mailbox(7, &[(2, message("a", 0)), (1, message("zzz", 0))]);
        bad.uid_next = 1;
        let mut out = Violations::default();
        check_invariants(&store(&[(INBOX, bad)]), &written, &mut out);
        assert!(out.0.iter().any(|v| v.contains("strictly increasing")), "{:?}", out.0);
        assert!(out.0.iter().any(|v| v.contains("never wrote")), "{:?}", out.0);
        assert!(out.0.iter().any(|v| v.contains("UIDNEXT")), "{:?}", out.0);
    }

    #[test]
    fn invariants_catch_stale_counters_and_shared_uid_validities() {
        let written: BTreeSet<Vec<u8>> = [b"a".to_vec()].into();
        let mut stale = mailbox(7, &[(1, message("a", 0))]);
        stale.unseen_deleted = (0, 0);
        let mut out = Violations::default();
        check_invariants(&store(&[(INBOX, stale), ("Other", mailbox(7, &[]))]), &written, &mut out);
        assert!(out.0.iter().any(|v| v.contains("(unseen, deleted)")), "{:?}", out.0);
        assert!(out.0.iter().any(|v| v.contains("share UIDVALIDITY")), "{:?}", out.0);
    }

    #[test]
    fn a_fresh_inbox_may_replace_an_unacknowledged_one() {
        let in_flight = store(&[(INBOX, mailbox(7, &[]))]);
        let fresh = store(&[(INBOX, mailbox(9, &[]))]);
        assert!(violations(&fresh, &Snapshot::new(), &[in_flight]).is_empty());
    }
}
