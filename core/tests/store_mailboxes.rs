//! Mailboxes on the real disk: create, rename (with children, and INBOX), delete, subscribe,
//! name validation, and all of it surviving a reopen.

mod store_support;

use skua_core::error::{MailboxError, NameError};
use skua_core::store::Renamed;
use store_support::{World, append_many, check};

fn names(store: &skua_core::store::UserStore<skua_core::disk::os::OsDisk>) -> Vec<String> {
    store.mailboxes().into_iter().map(|m| m.name).collect()
}

#[test]
fn create_list_delete() {
    let mut world = World::new();
    let mut store = world.open();
    let work = store.create_mailbox("Work").unwrap();
    store.create_mailbox("Work/Projects").unwrap();
    store.create_mailbox("inbox/Sub").unwrap();
    assert_eq!(names(&store), vec!["INBOX", "INBOX/Sub", "Work", "Work/Projects"]);
    assert!(matches!(store.create_mailbox("Work"), Err(MailboxError::AlreadyExists)));
    assert!(matches!(store.create_mailbox("iNbOx"), Err(MailboxError::AlreadyExists)));
    assert!(matches!(
        store.create_mailbox("a//b"),
        Err(MailboxError::InvalidName(NameError::EmptyLevel))
    ));
    assert!(matches!(
        store.create_mailbox("a\r\nb"),
        Err(MailboxError::InvalidName(NameError::ControlCharacter))
    ));
    assert!(matches!(store.delete_mailbox("inbox"), Err(MailboxError::CannotDeleteInbox)));
    assert!(matches!(store.delete_mailbox("Nope"), Err(MailboxError::NotFound)));
    let validity = store.mailbox_info(work).unwrap().uid_validity;
    append_many(&mut store, work, 0, 3);
    store.delete_mailbox("Work").unwrap();
    assert_eq!(names(&store), vec!["INBOX", "INBOX/Sub", "Work/Projects"], "children stay");
    assert!(store.mailbox_info(work).is_none());
    let again = store.create_mailbox("Work").unwrap();
    assert_ne!(again, work, "ids are never reused");
    let info = store.mailbox_info(again).unwrap();
    assert!(info.uid_validity > validity, "UIDVALIDITY is never reused for a name");
    assert_eq!(info.messages, 0);
    check(&store);
    world.flush();
    drop(store);
    let mut store = world.open();
    assert_eq!(names(&store), vec!["INBOX", "INBOX/Sub", "Work", "Work/Projects"]);
    assert_eq!(store.mailbox_info(again).unwrap().uid_validity, info.uid_validity);
    // The file goes once the delete is durable: after a flush, at the next mutation.
    assert!(world.index_path(work).exists());
    world.flush();
    store.subscribe("Work").unwrap();
    assert!(!world.index_path(work).exists(), "a deleted mailbox's index is removed");
}

#[test]
fn rename_moves_children() {
    let mut world = World::new();
    let mut store = world.open();
    let a = store.create_mailbox("a").unwrap();
    let child = store.create_mailbox("a/b").unwrap();
    let grandchild = store.create_mailbox("a/b/c").unwrap();
    store.create_mailbox("ab").unwrap();
    append_many(&mut store, child, 0, 2);
    let before = store.mailbox_info(child).unwrap();
    assert!(matches!(store.rename_mailbox("a", "a/x"), Err(MailboxError::RenameUnderItself)));
    assert!(matches!(store.rename_mailbox("a", "ab"), Err(MailboxError::AlreadyExists)));
    assert!(matches!(store.rename_mailbox("zz", "yy"), Err(MailboxError::NotFound)));
    assert!(matches!(store.rename_mailbox("a", "z/y").unwrap(), Renamed::Done));
    // The superior `z` the new name needs is created with the rename (RFC 9051 §6.3.6).
    assert_eq!(names(&store), vec!["INBOX", "ab", "z", "z/y", "z/y/b", "z/y/b/c"]);
    assert_eq!(store.mailbox_id("z/y"), Some(a));
    assert_eq!(store.mailbox_id("z/y/b/c"), Some(grandchild));
    let after = store.mailbox_info(child).unwrap();
    assert_eq!(after.uid_validity, before.uid_validity, "a rename keeps UIDVALIDITY");
    assert_eq!(after.messages, 2);
    world.flush();
    drop(store);
    let store = world.open();
    assert_eq!(names(&store), vec!["INBOX", "ab", "z", "z/y", "z/y/b", "z/y/b/c"]);
}

/// Runs a RENAME INBOX to its end, flushing when it waits for durability; returns the
/// number of waits.
fn finish_inbox_rename(
    world: &World,
    store: &mut skua_core::store::UserStore<skua_core::disk::os::OsDisk>,
    renamed: skua_core::store::Renamed,
) -> usize {
    use skua_core::store::{InboxStep, Renamed};
    let Renamed::Inbox(mut job) = renamed else { panic!("INBOX is moved, not renamed") };
    let mut waits = 0;
    loop {
        match store.rename_inbox_step(&mut job, 3).unwrap() {
            InboxStep::More => {}
            InboxStep::WaitDurable(_) => {
                waits += 1;
                world.flush();
            }
            InboxStep::Done => return waits,
        }
    }
}

#[test]
fn rename_inbox_moves_its_messages() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    store.create_mailbox("INBOX/Kept").unwrap();
    append_many(&mut store, inbox, 0, 7);
    let old = store.mailbox_info(inbox).unwrap();
    let renamed = store.rename_mailbox("inbox", "Old Mail").unwrap();
    assert_eq!(finish_inbox_rename(&world, &mut store, renamed), 1, "one wait, before expunging");
    // INBOX keeps its id and UIDVALIDITY: sessions on it see expunges and stay.
    assert_eq!(store.mailbox_id("INBOX"), Some(inbox));
    let info = store.mailbox_info(inbox).unwrap();
    assert_eq!((info.messages, info.uid_validity), (0, old.uid_validity));
    assert_eq!(info.uid_next, old.uid_next, "UIDs are never given again");
    let moved = store.mailbox_id("Old Mail").unwrap();
    assert_ne!(moved, inbox);
    assert_eq!(store.mailbox_info(moved).unwrap().messages, 7);
    assert!(store.mailbox_id("INBOX/Kept").is_some(), "INBOX's children stay");
    let renamed = store.rename_mailbox("INBOX", "INBOX/Older").unwrap();
    assert_eq!(finish_inbox_rename(&world, &mut store, renamed), 0, "nothing to move");
    assert_eq!(store.mailbox_info(store.mailbox_id("INBOX/Older").unwrap()).unwrap().messages, 0);
    check(&store);
    world.flush();
    drop(store);
    let store = world.open();
    assert_eq!(store.mailbox_id("INBOX"), Some(inbox));
    assert_eq!(store.mailbox_info(inbox).unwrap().messages, 0);
    assert_eq!(store.mailbox_info(moved).unwrap().messages, 7);
}

#[test]
fn subscriptions() {
    let mut world = World::new();
    let mut store = world.open();
    store.subscribe("inbox").unwrap();
    store.subscribe("Does/Not/Exist").unwrap();
    store.subscribe("Does/Not/Exist").unwrap();
    store.create_mailbox("Lists").unwrap();
    store.subscribe("Lists").unwrap();
    store.unsubscribe("Lists").unwrap();
    store.unsubscribe("never").unwrap();
    assert!(matches!(store.subscribe(""), Err(MailboxError::InvalidName(NameError::Empty))));
    assert_eq!(store.subscriptions(), vec!["Does/Not/Exist", "INBOX"]);
    let inbox = store.mailbox_id("INBOX").unwrap();
    assert!(store.mailbox_info(inbox).unwrap().subscribed);
    world.flush();
    drop(store);
    let store = world.open();
    assert_eq!(store.subscriptions(), vec!["Does/Not/Exist", "INBOX"]);
}

/// Issue 9: `CREATE Top/Mid/Leaf` made only the leaf (RENAME of `Top` then failed), and `.` and
/// `..` were accepted as names or levels.
#[test]
fn create_makes_superiors_in_one_batch_and_refuses_dot_levels() {
    let mut world = World::new();
    let mut store = world.open();
    store.create_mailbox("Top/Mid/Leaf").unwrap();
    store.create_mailbox("Top/Other").unwrap();
    assert_eq!(names(&store), vec!["INBOX", "Top", "Top/Mid", "Top/Mid/Leaf", "Top/Other"]);
    for bad in [".", "..", "Top/../Evil", "./x", "a/."] {
        assert!(
            matches!(
                store.create_mailbox(bad),
                Err(MailboxError::InvalidName(skua_core::error::NameError::DotLevel))
            ),
            "{bad}"
        );
        assert!(store.rename_mailbox("Top/Other", bad).is_err(), "rename to {bad}");
    }
    assert!(matches!(store.rename_mailbox("Top", "Top2").unwrap(), Renamed::Done));
    world.flush();
    drop(store);
    let store = world.open();
    let expected = vec!["INBOX", "Top2", "Top2/Mid", "Top2/Mid/Leaf", "Top2/Other"];
    assert_eq!(names(&store), expected, "the batch replays after a reopen");
}
