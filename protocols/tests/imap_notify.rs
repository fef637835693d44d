//! NOTIFY (RFC 5465) beyond what a transcript shows: a session with NOTIFY set waits like
//! IDLE (`Step::Idle`) and stops (`NOTIFICATIONOVERFLOW`, then plain waits) when more changed
//! than it may report at once or than the store's journal kept; a change to one mailbox among
//! thousands is reported with one line.

mod imap_support;

use imap_support::{Client, World, tagged};
use skua_core::store::LIST_CHANGES_MAX;
use skua_core::types::Flags;

const OVERFLOW: &str = "* OK [NOTIFICATIONOVERFLOW] Too many changes: NOTIFY is off";

/// A logged-in session that sent `NOTIFY SET <groups>` (answered OK).
fn notifying(world: &mut World, groups: &str) -> Client {
    let mut client = Client::new();
    client.login(world);
    let reply = client.command(world, &format!("n1 NOTIFY SET {groups}"));
    tagged(&reply, "n1 OK");
    client
}

fn append(world: &mut World, name: &str) {
    let id = world.store.mailbox_id(name).expect("mailbox");
    world
        .store
        .append(id, b"Subject: x\r\n\r\nx\r\n", b"", Flags::default(), None)
        .expect("append");
}

#[test]
fn a_notifying_session_waits_for_changes_and_stops_after_notify_none() {
    let mut world = World::new();
    let mut client = Client::new();
    client.login(&mut world);
    assert!(!client.idle, "without NOTIFY a session waits for input only");
    let reply = client.command(&mut world, "n1 NOTIFY SET (personal (MessageNew MessageExpunge))");
    tagged(&reply, "n1 OK");
    assert!(client.idle, "with NOTIFY set it also waits for store changes");
    append(&mut world, "INBOX");
    client.run(&mut world);
    let lines = client.drain();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("* STATUS INBOX (MESSAGES 1 UIDNEXT 2 UIDVALIDITY "), "{lines:?}");
    let reply = client.command(&mut world, "n2 NOTIFY NONE");
    tagged(&reply, "n2 OK");
    assert!(!client.idle);
}

#[test]
fn one_change_among_thousands_of_mailboxes_is_one_line() {
    let mut world = World::new();
    for i in 0..2000 {
        world.store.create_mailbox(&format!("box{i}")).expect("create");
    }
    let mut client = notifying(&mut world, "(personal (MessageNew MessageExpunge))");
    append(&mut world, "box1234");
    client.run(&mut world);
    let lines = client.drain();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("* STATUS box1234 (MESSAGES 1 "), "{lines:?}");
    // What the session reads is what changed: one mailbox, whatever the count.
    assert_eq!(world.store.mailboxes_changed_since(0).count(), 1);
}

#[test]
fn too_many_changed_mailboxes_overflow_and_notify_stops() {
    let mut world = World::new();
    let count = 1001;
    for i in 0..count {
        world.store.create_mailbox(&format!("box{i}")).expect("create");
    }
    let mut client = notifying(&mut world, "(personal (MessageNew MessageExpunge))");
    for i in 0..count {
        append(&mut world, &format!("box{i}"));
    }
    client.run(&mut world);
    let lines = client.drain();
    assert_eq!(lines.len(), 1001, "1000 STATUS lines, then the overflow");
    assert!(lines[..1000].iter().all(|l| l.starts_with("* STATUS box")));
    assert_eq!(lines[1000], OVERFLOW);
    assert!(!client.idle, "NOTIFY is off: the session waits for input only");
    append(&mut world, "box0");
    client.run(&mut world);
    assert!(client.drain().is_empty());
}

#[test]
fn a_session_behind_the_list_journal_overflows() {
    let mut world = World::new();
    let mut client = notifying(&mut world, "(personal (MailboxName))");
    for i in 0..=LIST_CHANGES_MAX {
        world.store.create_mailbox(&format!("box{i}")).expect("create");
    }
    client.run(&mut world);
    assert_eq!(client.drain(), vec![OVERFLOW.to_owned()]);
    assert!(!client.idle);
}

#[test]
fn list_changes_do_not_overflow_a_session_that_did_not_ask_for_them() {
    let mut world = World::new();
    let mut client = notifying(&mut world, "(personal (MessageNew MessageExpunge))");
    for i in 0..=LIST_CHANGES_MAX {
        world.store.create_mailbox(&format!("box{i}")).expect("create");
    }
    client.run(&mut world);
    assert!(client.drain().is_empty());
    assert!(client.idle, "still notifying");
}

#[test]
fn notify_set_status_writes_many_mailboxes_in_slices() {
    let mut world = World::new();
    let count = 3000;
    for i in 0..count {
        world.store.create_mailbox(&format!("box{i:04}")).expect("create");
    }
    let mut client = Client::new();
    client.login(&mut world);
    let writes = client.writes;
    let reply =
        client.command(&mut world, "n1 NOTIFY SET STATUS (personal (MessageNew MessageExpunge))");
    tagged(&reply, "n1 OK");
    let statuses = reply.iter().filter(|l| l.starts_with("* STATUS ")).count();
    assert_eq!(statuses, count + 1, "every mailbox, INBOX too (none is selected)");
    assert!(client.yields + (client.writes - writes) > 1, "more than one slice");
    let bytes: usize = reply.iter().map(|l| l.len() + 2).sum();
    assert!(client.largest_write < bytes / 2, "{} of {bytes} in one write", client.largest_write);
}

#[test]
fn selected_none_says_nothing_between_commands() {
    let mut world = World::new();
    let mut client = Client::new();
    client.login(&mut world);
    tagged(&client.command(&mut world, "s1 SELECT INBOX"), "s1 OK");
    let reply = client.command(
        &mut world,
        "n1 NOTIFY SET (selected NONE) (personal (MessageNew MessageExpunge))",
    );
    tagged(&reply, "n1 OK");
    append(&mut world, "INBOX");
    client.run(&mut world);
    assert!(client.drain().is_empty(), "no EXISTS between commands");
    assert!(client.idle);
    // The next command's sync still tells of it, as without NOTIFY.
    let reply = client.command(&mut world, "n2 NOOP");
    assert_eq!(reply[0], "* 1 EXISTS", "{reply:?}");
}
