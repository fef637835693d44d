//! Checks that each action did to the live store what it says, before any crash: the crash
//! check trusts the live snapshots as the truth, so they had better be right.

use std::collections::BTreeSet;

use skua_core::types::FlagsOp;

use crate::model::{INBOX, MailboxState, MessageState, Snapshot, Violations};
use crate::workload::{Action, pick_uids};

/// Compares the live store before and after one action (never a flush).
pub fn check_action(
    action: &Action,
    appended: &[Vec<u8>],
    before: &Snapshot,
    after: &Snapshot,
    out: &mut Violations,
) {
    let mut problems = Vec::new();
    match action {
        Action::Append { mailbox, system, keywords, .. } => {
            let [body] = appended else { panic!("an append wrote one body") };
            let bodies = std::slice::from_ref(body);
            check_append(
                &before[mailbox],
                &after[mailbox],
                bodies,
                *system,
                keywords,
                &mut problems,
            );
        }
        Action::AppendAll { mailbox, system, keywords, .. } => {
            check_append(
                &before[mailbox],
                &after[mailbox],
                appended,
                *system,
                keywords,
                &mut problems,
            );
        }
        Action::Flags { mailbox, pick, op, system, keywords } => {
            let uids = pick_uids(before, mailbox, *pick);
            let names: BTreeSet<String> = keywords.iter().map(|k| (*k).to_owned()).collect();
            let expected = |old: &MessageState| apply_flags(old, *op, *system, &names);
            check_changed(&before[mailbox], &after[mailbox], &uids, expected, &mut problems);
        }
        Action::Expunge { mailbox, pick } => {
            let uids = pick_uids(before, mailbox, *pick);
            let mut expected = before[mailbox].messages.clone();
            expected.retain(|(uid, _)| !uids.contains(uid));
            if !same_messages(&expected, &after[mailbox].messages) {
                problems.push(format!("expunge of {uids:?} left {:?}", uid_list(&after[mailbox])));
            }
        }
        Action::Copy { source, pick, target } => {
            let uids = pick_uids(before, source, *pick);
            check_copy(&before[source], &uids, &before[target], &after[target], &mut problems);
        }
        Action::Create(name) => {
            if after.get(name).is_none_or(|m| !m.messages.is_empty()) {
                problems.push(format!("{name} not created empty"));
            }
        }
        Action::Rename(old, new) => check_rename(old, new, before, after, &mut problems),
        Action::Subscribe(name, on) => {
            if after.get(name).is_some_and(|m| m.subscribed != *on) {
                problems.push(format!("{name}: subscribed is not {on}"));
            }
        }
        Action::SetAcl(name, identifier, change) => {
            check_set_acl(name, identifier, change, before, after, &mut problems);
        }
        Action::Delete(name) => {
            if after.contains_key(name) {
                problems.push(format!("{name} not deleted"));
            }
        }
        Action::Flush | Action::FlushBegin | Action::FlushEnd => {
            unreachable!("flushes change nothing live")
        }
    }
    for problem in problems {
        out.0.push(format!("live store, after {action:?}: {problem}"));
    }
}

/// RENAME moves a mailbox and its children (RFC 9051 §6.3.6); renaming INBOX moves its
/// messages to the new name and leaves INBOX empty, its children in place.
fn check_rename(
    old: &str,
    new: &str,
    before: &Snapshot,
    after: &Snapshot,
    problems: &mut Vec<String>,
) {
    if old == INBOX {
        check_rename_inbox(new, before, after, problems);
        return;
    }
    let moved = |name: &str| -> Option<String> {
        if name == old {
            Some(new.to_owned())
        } else if old != INBOX && name.strip_prefix(old).is_some_and(|rest| rest.starts_with('/')) {
            Some(format!("{new}{}", &name[old.len()..]))
        } else {
            None
        }
    };
    for (name, mailbox) in before {
        let target = moved(name).unwrap_or_else(|| name.clone());
        let arrived = after.get(&target).is_some_and(|m| {
            m.uid_validity == mailbox.uid_validity && same_messages(&m.messages, &mailbox.messages)
        });
        if !arrived {
            problems.push(format!("{name} did not end up as {target}"));
        }
        if target != *name
            && after.get(name).is_some_and(|m| name != INBOX || !m.messages.is_empty())
        {
            problems.push(format!("{name} still there after its rename"));
        }
    }
    let expected = before.len() + usize::from(old == INBOX);
    if after.len() != expected {
        problems.push(format!("{} mailboxes after the rename, expected {expected}", after.len()));
    }
}

/// One append or a batch: exactly `bodies.len()` new messages, in order, with consecutive UIDs
/// from at least the old UIDNEXT, each with the given flags.
fn check_append(
    before: &MailboxState,
    after: &MailboxState,
    bodies: &[Vec<u8>],
    system: u16,
    keywords: &[&str],
    problems: &mut Vec<String>,
) {
    let new: Vec<&(u32, MessageState)> =
        after.messages.iter().filter(|(uid, _)| before.message(*uid).is_none()).collect();
    if new.len() != bodies.len() {
        problems.push(format!("{} new messages instead of {}", new.len(), bodies.len()));
        return;
    }
    let names: BTreeSet<String> = keywords.iter().map(|k| (*k).to_owned()).collect();
    let mut expected_uid = None;
    for ((uid, message), body) in new.iter().map(|pair| (&pair.0, &pair.1)).zip(bodies) {
        if *uid < before.uid_next {
            problems.push(format!("new UID {uid} below the old UIDNEXT {}", before.uid_next));
        }
        if expected_uid.is_some_and(|expected| expected != *uid) {
            problems.push(format!("batch UIDs not consecutive at {uid}"));
        }
        expected_uid = Some(uid + 1);
        if *message.body != **body || message.system != system || message.keywords != names {
            problems.push(format!("UID {uid} is not what was appended: {:?}", message.flags()));
        }
        if message.save_date.is_none() {
            problems.push(format!("UID {uid} was appended without a save date"));
        }
        let mut others =
            before.messages.iter().chain(after.messages.iter().filter(|(u, _)| u != uid));
        if others.any(|(_, m)| m.email_id == message.email_id) {
            problems.push(format!("UID {uid} got the EMAILID of another message"));
        }
    }
}

fn apply_flags(
    old: &MessageState,
    op: FlagsOp,
    system: u16,
    names: &BTreeSet<String>,
) -> MessageState {
    let mut new = old.clone();
    match op {
        FlagsOp::Replace => {
            new.system = system;
            new.keywords.clone_from(names);
        }
        FlagsOp::Add => {
            new.system |= system;
            new.keywords.extend(names.iter().cloned());
        }
        FlagsOp::Remove => {
            new.system &= !system;
            new.keywords.retain(|k| !names.contains(k));
        }
    }
    new
}

fn check_changed(
    before: &MailboxState,
    after: &MailboxState,
    uids: &[u32],
    expected: impl Fn(&MessageState) -> MessageState,
    problems: &mut Vec<String>,
) {
    if uid_list(before) != uid_list(after) {
        problems.push("the set of messages changed".to_owned());
        return;
    }
    for ((uid, old), (_, new)) in before.messages.iter().zip(&after.messages) {
        let want = if uids.contains(uid) { expected(old) } else { old.clone() };
        if want.email_id != new.email_id
            || want.thread_id != new.thread_id
            || want.save_date != new.save_date
        {
            problems.push(format!("UID {uid} changed its EMAILID or save date"));
        }
        if want.flags() != new.flags() || want.body != new.body {
            problems.push(format!(
                "UID {uid} has flags {:?}, expected {:?}",
                new.flags(),
                want.flags()
            ));
        }
        if want.flags() != old.flags() && new.modseq <= before.highest_modseq {
            problems.push(format!("UID {uid} changed but its MODSEQ {} did not grow", new.modseq));
        }
    }
}

fn check_copy(
    source: &MailboxState,
    uids: &[u32],
    target_before: &MailboxState,
    target_after: &MailboxState,
    problems: &mut Vec<String>,
) {
    let copies: Vec<&MessageState> = target_after
        .messages
        .iter()
        .filter(|(uid, _)| target_before.message(*uid).is_none())
        .map(|(_, m)| m)
        .collect();
    let originals: Vec<&MessageState> =
        uids.iter().filter_map(|uid| source.message(*uid)).collect();
    let same = copies.len() == originals.len()
        && copies.iter().zip(&originals).all(|(c, o)| {
            c.body == o.body
                && c.flags() == o.flags()
                && c.email_id == o.email_id
                && c.thread_id == o.thread_id
        });
    if !same {
        problems
            .push(format!("copy of {uids:?} made {} messages unlike the sources", copies.len()));
    }
}

fn uid_list(mailbox: &MailboxState) -> Vec<u32> {
    mailbox.messages.iter().map(|(uid, _)| *uid).collect()
}

/// RENAME INBOX keeps INBOX (its UIDVALIDITY, empty now) and moves its messages, bodies and
/// flags, to a new mailbox (new UIDs); every other mailbox stays as it was.
fn check_rename_inbox(new: &str, before: &Snapshot, after: &Snapshot, problems: &mut Vec<String>) {
    let (Some(old), Some(inbox)) = (before.get(INBOX), after.get(INBOX)) else {
        problems.push("INBOX missing".to_owned());
        return;
    };
    if inbox.uid_validity != old.uid_validity || !inbox.messages.is_empty() {
        problems.push("INBOX is not the same INBOX, emptied".to_owned());
    }
    let moved = |m: &MailboxState| -> Vec<(Vec<u8>, u16, BTreeSet<String>)> {
        let flags = |s: &MessageState| (s.flags().0, s.flags().1.clone());
        m.messages.iter().map(|(_, s)| (s.body.to_vec(), flags(s).0, flags(s).1)).collect()
    };
    match after.get(new) {
        Some(target) if moved(target) == moved(old) => {}
        _ => problems.push(format!("{new} does not hold INBOX's messages")),
    }
    for (name, mailbox) in before {
        let same = after.get(name).is_some_and(|m| {
            m.uid_validity == mailbox.uid_validity && same_messages(&m.messages, &mailbox.messages)
        });
        if name != INBOX && !same {
            problems.push(format!("{name} changed"));
        }
    }
    if after.len() != before.len() + 1 {
        problems.push(format!("{} mailboxes after the rename, expected one more", after.len()));
    }
}

fn same_messages(left: &[(u32, MessageState)], right: &[(u32, MessageState)]) -> bool {
    left.len() == right.len()
        && left.iter().zip(right).all(|((lu, l), (ru, r))| {
            lu == ru
                && l.body == r.body
                && l.flags() == r.flags()
                && l.email_id == r.email_id
                && l.thread_id == r.thread_id
        })
}

/// After a SETACL, the identifier's entry holds what the change gives from what it held (no
/// entry when that is nothing), and no other entry changed (the first change of a mailbox
/// makes the owner's default entry explicit, which shows the same).
fn check_set_acl(
    name: &str,
    identifier: &str,
    change: &str,
    before: &Snapshot,
    after: &Snapshot,
    problems: &mut Vec<String>,
) {
    use skua_core::acl::{Rights, RightsChange};
    let (Some(before), Some(after)) = (before.get(name), after.get(name)) else {
        problems.push(format!("{name}: SETACL on a mailbox that is not there"));
        return;
    };
    let entry = |acl: &[String]| -> Rights {
        acl.iter()
            .find_map(|line| line.strip_prefix(&format!("{identifier} ")))
            .map_or(Rights::NONE, |letters| Rights::parse(letters).expect("stored rights"))
    };
    let want = RightsChange::parse(change).expect("workload rights").apply(entry(&before.acl));
    if entry(&after.acl) != want {
        problems.push(format!("{name}: SETACL {identifier} {change} left {:?}", after.acl));
    }
    let others = |acl: &[String]| -> Vec<String> {
        acl.iter().filter(|l| !l.starts_with(&format!("{identifier} "))).cloned().collect()
    };
    if others(&before.acl) != others(&after.acl) {
        problems.push(format!("{name}: SETACL {identifier} changed other entries"));
    }
}
