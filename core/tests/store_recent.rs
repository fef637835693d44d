//! `\Recent` claims (issue 9: `\Recent` did not exist): each message is claimed by one session
//! only, an unclaimed count is kept for STATUS and EXAMINE, and a claim survives a reopen once
//! a later mutation's flush round wrote it.

mod store_support;

use store_support::{World, append_many};

#[test]
fn a_claim_takes_what_no_session_was_told_of_and_survives_the_next_mutation() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    append_many(&mut store, inbox, 0, 3);
    assert_eq!(store.unclaimed_recent(inbox).map(|(uid, n)| (uid.get(), n)), Some((1, 3)));
    assert_eq!(store.claim_recent(inbox).unwrap().get(), 1, "the first claim takes 1..4");
    assert_eq!(store.claim_recent(inbox).unwrap().get(), 4, "a second claim gets nothing");
    assert_eq!(store.unclaimed_recent(inbox).map(|(uid, n)| (uid.get(), n)), Some((4, 0)));
    assert_eq!(store.first_unclaimed_recent(inbox).map(|uid| uid.get()), Some(4));
    // The next mutation writes the claim; its flush makes it durable.
    append_many(&mut store, inbox, 3, 1);
    world.flush();
    assert_eq!(store.unclaimed_recent(inbox).map(|(uid, n)| (uid.get(), n)), Some((4, 1)));
    drop(store);
    let mut store = world.open();
    assert_eq!(
        store.unclaimed_recent(inbox).map(|(uid, n)| (uid.get(), n)),
        Some((4, 1)),
        "after a reopen only the message that came after the claim is recent"
    );
    assert_eq!(store.claim_recent(inbox).unwrap().get(), 4);
}
