//! Other users' mailboxes (RFC 2342 namespaces, `command/route.rs`): a session runs each command
//! on the store it belongs to (the test plays the shard, giving the session bob's store when it
//! asks with `Step::Elsewhere`), and no spelling of a name reaches a mailbox the rights do not
//! open.

mod imap_support;

use imap_support::{Client, World, tagged};
use skua_protocols::imap::session::ImapConfig;

fn alice(world: &mut World) -> Client {
    let mut config = ImapConfig::new("test.example");
    config.namespaces.public_owner = Some("public".to_owned());
    let mut client = Client::with_config(config);
    client.login(world);
    client
}

#[test]
fn namespace_lists_other_users_and_the_public_folders() {
    let mut world = World::new();
    let mut client = alice(&mut world);
    let reply = client.command(&mut world, "a NAMESPACE");
    assert_eq!(
        reply[0],
        "* NAMESPACE ((\"\" \"/\")) ((\"Other Users/\" \"/\")) ((\"Shared/\" \"/\"))"
    );
    tagged(&reply, "a OK");
}

#[test]
fn no_spelling_reaches_a_mailbox_without_rights() {
    let mut world = World::new();
    let mut client = alice(&mut world);
    for (line, expected) in [
        // bob exists, but his ACL gives alice nothing: the mailbox does not exist for her.
        ("SELECT \"Other Users/bob/INBOX\"", "NO [NONEXISTENT]"),
        ("EXAMINE \"Other Users/BOB/INBOX\"", "NO [NONEXISTENT]"),
        ("STATUS \"Other Users/bob/INBOX\" (MESSAGES)", "NO [NONEXISTENT]"),
        ("APPEND \"Other Users/bob/INBOX\" {1+}\r\nx", "NO [NONEXISTENT]"),
        ("SELECT \"Shared/News\"", "NO [NONEXISTENT]"),
        // Nobody of that name: the same answer, so names of users are not revealed.
        ("SELECT \"Other Users/nobody/INBOX\"", "NO [NONEXISTENT]"),
        ("SELECT \"Other Users/../bob/INBOX\"", "NO [NONEXISTENT]"),
        ("SELECT \"Other Users/bob/../alice/INBOX\"", "NO [NONEXISTENT]"),
        ("SELECT \"Other Users/bob\"", "NO [NONEXISTENT]"),
        ("SELECT \"Other Users\"", "NO [NONEXISTENT]"),
        ("SELECT \"Other Users/\"", "NO [NONEXISTENT]"),
        // Modified UTF-7 of "Other Users" is that name: still bob's store, still nothing.
        ("SELECT \"&AE8-ther Users/bob/INBOX\"", "NO [NONEXISTENT]"),
        // A case other than the prefix's is a name in the personal namespace.
        ("SELECT \"other users/bob/INBOX\"", "NO [NONEXISTENT]"),
        // Nothing is made in another namespace, not even in one's own spelling of it.
        ("CREATE \"Other Users/bob/x\"", "NO [NOPERM]"),
        ("CREATE \"Other Users/alice/x\"", "NO [NOPERM]"),
        ("CREATE \"Shared/x\"", "NO [NOPERM]"),
        ("DELETE \"Other Users/bob/INBOX\"", "NO [NOPERM]"),
        ("RENAME INBOX \"Other Users/bob/Stolen\"", "NO [NOPERM]"),
    ] {
        let reply = client.command(&mut world, &format!("t {line}"));
        let last = reply.last().expect("a tagged reply");
        assert!(last.starts_with(&format!("t {expected}")), "{line}: {reply:?}");
    }
    // The session is still alive and its own mailboxes are untouched.
    let reply = client.command(&mut world, "u LIST \"\" \"*\"");
    assert_eq!(reply.len(), 2, "only INBOX: {reply:?}");
    tagged(&reply, "u OK");
    assert!(world.others.iter().all(|(name, _)| name == "bob" || name == "public"));
    let bob = world.other("bob").expect("bob").1;
    assert_eq!(bob.mailboxes().len(), 1, "bob's store unchanged");
}
