//! Other users' mailboxes (RFC 2342 namespaces, `command/route.rs`): a session runs each command
//! on the store it belongs to (the test plays the shard, giving the session bob's store when it
//! asks with `Step::Elsewhere`), and no spelling of a name reaches a mailbox the rights do not
//! open.

mod imap_support;

use imap_support::{Client, World, tagged};
use skua_core::acl::{Identifier, RightsChange};
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

/// Bob gives alice rights on his INBOX (as his SETACL would).
fn grant(world: &mut World, rights: &str) {
    let bob = world.other("bob").expect("bob").1;
    let inbox = bob.mailbox_id("INBOX").expect("INBOX");
    let alice = Identifier::user("alice").expect("identifier");
    bob.set_acl(inbox, &alice, RightsChange::parse(rights).expect("rights")).expect("setacl");
}

#[test]
fn bobs_acl_decides_what_alice_may_do_in_his_inbox() {
    let mut world = World::new();
    let mut client = alice(&mut world);
    let bobs = "\"Other Users/bob/INBOX\"";

    // `l r i`: she sees it, reads it, adds to it; everything else is NOPERM.
    grant(&mut world, "lri");
    let reply = client.command(&mut world, &format!("a APPEND {bobs} {{10+}}\r\nSubject: x"));
    tagged(&reply, "a OK");
    let reply = client.command(&mut world, &format!("b STATUS {bobs} (MESSAGES)"));
    assert_eq!(reply[0], format!("* STATUS {bobs} (MESSAGES 1)"));
    let reply = client.command(&mut world, &format!("c MYRIGHTS {bobs}"));
    assert_eq!(reply[0], format!("* MYRIGHTS {bobs} lri"));
    tagged(&client.command(&mut world, &format!("d GETACL {bobs}")), "d NO [NOPERM]");
    let reply = client.command(&mut world, &format!("e SELECT {bobs}"));
    assert!(reply.contains(&"* 1 EXISTS".to_owned()), "{reply:?}");
    tagged(&reply, "e OK [READ-WRITE]");
    let reply = client.command(&mut world, "f FETCH 1 (FLAGS BODY[])");
    assert!(reply[0].starts_with("* 1 FETCH (FLAGS (\\Recent) BODY[] {10}"), "{reply:?}");
    tagged(&reply, "f OK");
    tagged(&client.command(&mut world, "g STORE 1 +FLAGS (\\Flagged)"), "g NO [NOPERM]");
    tagged(&client.command(&mut world, "h EXPUNGE"), "h NO [NOPERM]");
    // `\Seen` stays the owner's: a reader does not change it (per-reader sets come later).
    let bob = world.other("bob").expect("bob").1;
    let inbox = bob.mailbox_id("INBOX").expect("INBOX");
    assert_eq!(bob.mailbox_info(inbox).expect("info").unseen, 1);

    // `w t e` too: flags and expunge; the selection sees bob's changes.
    grant(&mut world, "+wte");
    let reply = client.command(&mut world, &format!("i SELECT {bobs}"));
    tagged(&reply, "i OK [READ-WRITE]");
    let reply = client.command(&mut world, "j STORE 1 +FLAGS (\\Flagged \\Deleted)");
    assert!(reply[0].starts_with("* 1 FETCH (FLAGS (\\Flagged \\Deleted)"), "{reply:?}");
    tagged(&client.command(&mut world, "k STORE 1 +FLAGS (\\Seen)"), "k NO [NOPERM]");
    let reply = client.command(&mut world, "l EXPUNGE");
    assert_eq!(reply[0], "* 1 EXPUNGE");
    tagged(&reply, "l OK");

    // Her own INBOX is still hers, between commands on bob's.
    let reply = client.command(&mut world, "m STATUS INBOX (MESSAGES)");
    assert_eq!(reply[0], "* STATUS INBOX (MESSAGES 0)");
    tagged(&client.command(&mut world, "n NOOP"), "n OK");
    let reply = client.command(&mut world, "o SELECT INBOX");
    assert!(reply.contains(&"* OK [CLOSED] Previous mailbox closed".to_owned()), "{reply:?}");
    tagged(&reply, "o OK [READ-WRITE]");

    // Read only without write rights: `l r` gives EXAMINE-like access.
    grant(&mut world, "lr");
    tagged(&client.command(&mut world, &format!("p SELECT {bobs}")), "p OK [READ-ONLY]");
    grant(&mut world, "l");
    tagged(&client.command(&mut world, &format!("q SELECT {bobs}")), "q NO [NOPERM]");
}

#[test]
fn seen_on_another_users_mailbox_is_the_readers_own() {
    let mut world = World::new();
    let mut client = alice(&mut world);
    let bobs = "\"Other Users/bob/INBOX\"";
    grant(&mut world, "lrsi");
    for subject in ["one", "two"] {
        let line = format!("Subject: {subject}");
        let reply =
            client.command(&mut world, &format!("a APPEND {bobs} {{{}+}}\r\n{line}", line.len()));
        tagged(&reply, "a OK");
    }
    let reply = client.command(&mut world, &format!("b SELECT {bobs}"));
    tagged(&reply, "b OK [READ-WRITE]");
    // Reading marks it seen for alice only.
    let reply = client.command(&mut world, "c FETCH 1 BODY[]");
    assert!(reply.concat().contains("FLAGS (\\Seen"), "{reply:?}");
    let reply = client.command(&mut world, "d STORE 2 +FLAGS (\\Seen)");
    assert!(reply[0].starts_with("* 2 FETCH (FLAGS (\\Seen"), "{reply:?}");
    let reply = client.command(&mut world, &format!("e STATUS {bobs} (UNSEEN)"));
    assert_eq!(reply[0], format!("* STATUS {bobs} (UNSEEN 0)"));
    let reply = client.command(&mut world, "f SEARCH UNSEEN");
    assert_eq!(reply[0], "* SEARCH");
    // Bob's own \Seen is untouched: as he sees it, both are unseen.
    let bob = world.other("bob").expect("bob").1;
    let inbox = bob.mailbox_id("INBOX").expect("INBOX");
    assert_eq!(bob.mailbox_info(inbox).expect("info").unseen, 2);
    assert!(bob.messages(inbox).expect("messages").iter().all(|m| m.flags.system.0 & 1 == 0));
    // And alice can take it back.
    let reply = client.command(&mut world, "g STORE 1 -FLAGS (\\Seen)");
    tagged(&reply, "g OK");
    let reply = client.command(&mut world, "h SEARCH UNSEEN");
    assert_eq!(reply[0], "* SEARCH 1");
    // Flags other than \Seen are shared: with `w` her \Flagged is bob's too.
    grant(&mut world, "+w");
    tagged(&client.command(&mut world, &format!("i SELECT {bobs}")), "i OK");
    tagged(&client.command(&mut world, "j STORE 1 FLAGS (\\Flagged)"), "j NO [NOPERM]");
    tagged(&client.command(&mut world, "k STORE 1 +FLAGS (\\Flagged)"), "k OK");
    let bob = world.other("bob").expect("bob").1;
    let first = bob.messages(inbox).expect("messages")[0];
    assert_eq!(first.flags.system.0, skua_core::types::SystemFlags::FLAGGED);
}

#[test]
fn list_under_a_users_prefix_shows_what_they_may_see() {
    let mut world = World::new();
    let mut client = alice(&mut world);
    {
        let bob = world.other("bob").expect("bob").1;
        let alice = Identifier::user("alice").expect("identifier");
        for (name, rights) in [("Projects", "lr"), ("Projects/2026", "l"), ("Private", "")] {
            let id = bob.create_mailbox(name).expect("create");
            if !rights.is_empty() {
                bob.set_acl(id, &alice, RightsChange::parse(rights).unwrap()).expect("setacl");
            }
        }
    }
    let reply = client.command(&mut world, "a LIST \"\" \"Other Users/bob/*\"");
    assert_eq!(
        reply,
        [
            "* LIST (\\HasChildren) \"/\" \"Other Users/bob/Projects\"",
            "* LIST (\\HasNoChildren) \"/\" \"Other Users/bob/Projects/2026\"",
            "a OK LIST completed",
        ]
    );
    let reply = client.command(&mut world, "b LIST \"Other Users/bob/\" \"%\"");
    assert_eq!(reply[0], "* LIST (\\HasChildren) \"/\" \"Other Users/bob/Projects\"");
    tagged(&reply, "b OK");
    let reply = client.command(&mut world, "c LIST \"\" \"Other Users/bob/Private\"");
    assert_eq!(reply, ["c OK LIST completed"], "nothing without `l`");
    // STATUS can come back for what may be read.
    let reply = client
        .command(&mut world, "d LIST \"\" \"Other Users/bob/Projects\" RETURN (STATUS (MESSAGES))");
    assert_eq!(reply[1], "* STATUS \"Other Users/bob/Projects\" (MESSAGES 0)");
    // Every user at once: nothing yet, since alice's grant index does not name bob (his
    // grants above were made behind SETACL's back).
    let reply = client.command(&mut world, "e LIST \"\" \"Other Users/*\"");
    assert_eq!(reply, ["e OK LIST completed"]);
    // As bob's SETACL would have: alice's store notes him.
    world.store.note_grant("bob").expect("note");
    let listed = [
        "* LIST (\\Noselect \\HasChildren) \"/\" \"Other Users\"",
        "* LIST (\\Noselect \\HasChildren) \"/\" \"Other Users/bob\"",
        "* LIST (\\HasChildren) \"/\" \"Other Users/bob/Projects\"",
        "* LIST (\\HasNoChildren) \"/\" \"Other Users/bob/Projects/2026\"",
    ];
    let reply = client.command(&mut world, "f LIST \"\" \"Other Users/*\"");
    assert_eq!(reply[..3], listed[1..], "{reply:?}");
    tagged(&reply, "f OK LIST completed");
    let reply = client.command(&mut world, "g LIST \"\" \"*\"");
    assert_eq!(reply[0], "* LIST (\\HasNoChildren) \"/\" INBOX");
    assert_eq!(reply[1..5], listed, "{reply:?}");
    tagged(&reply, "g OK LIST completed");
    let reply = client.command(&mut world, "h LIST \"\" \"Other Users/%\"");
    assert_eq!(reply[..1], listed[1..2], "{reply:?}");
    tagged(&reply, "h OK");
    // Own names only: nobody is visited.
    let reply = client.command(&mut world, "i LIST \"\" \"%\"");
    assert_eq!(reply, ["* LIST (\\HasNoChildren) \"/\" INBOX", "i OK LIST completed"]);
    // A user in the index who is gone, or who took the grant back, shows nothing.
    world.store.note_grant("nobody").expect("note");
    {
        let bob = world.other("bob").expect("bob").1;
        let alice = Identifier::user("alice").expect("identifier");
        let projects = bob.mailbox_id("Projects").expect("Projects");
        bob.delete_acl(projects, &alice).expect("deleteacl");
        let child = bob.mailbox_id("Projects/2026").expect("child");
        bob.delete_acl(child, &alice).expect("deleteacl");
    }
    let reply = client.command(&mut world, "j LIST \"\" \"*\"");
    assert_eq!(reply, ["* LIST (\\HasNoChildren) \"/\" INBOX", "j OK LIST completed"]);
}

#[test]
fn setacl_notes_the_grant_in_the_grantees_store_first() {
    let mut world = World::new();
    let mut client = alice(&mut world);
    tagged(&client.command(&mut world, "a SETACL INBOX bob lr"), "a OK SETACL completed");
    assert_eq!(world.other("bob").expect("bob").1.granted_by(), ["alice"]);
    // No user of that name: nothing to note, the entry is set all the same.
    tagged(&client.command(&mut world, "b SETACL INBOX carol lr"), "b OK SETACL completed");
    // Nothing is noted for anyone, a negative entry, a removal, or the owner.
    for line in ["SETACL INBOX anyone lr", "SETACL INBOX -bob w", "DELETEACL INBOX bob"] {
        tagged(&client.command(&mut world, &format!("c {line}")), "c OK");
    }
    let reply = client.command(&mut world, "d GETACL INBOX");
    assert_eq!(reply[0], "* ACL INBOX alice lrswipkxteacd carol lr anyone lr -bob w", "{reply:?}");
    assert_eq!(world.other("bob").expect("bob").1.granted_by(), ["alice"]);
    assert!(world.store.granted_by().is_empty());
    // The note survives a restart of bob's store (it was flushed before the ACL changed).
    world.flush();
    let bob = world.other("bob").expect("bob").1;
    assert_eq!(bob.granted_by(), ["alice"]);
}

#[test]
fn an_administrator_sets_another_users_quota_on_that_users_store() {
    let mut world = World::new();
    let mut config = ImapConfig::new("test.example");
    config.admins = vec!["alice".to_owned()];
    let mut admin = Client::with_config(config);
    admin.login(&mut world);
    let reply = admin.command(&mut world, "a SETQUOTA bob (STORAGE 10 MESSAGE 5)");
    assert_eq!(reply[0], "* QUOTA bob (STORAGE 0 10 MESSAGE 0 5)");
    tagged(&reply, "a OK");
    let reply = admin.command(&mut world, "b GETQUOTA BOB");
    assert_eq!(reply[0], "* QUOTA bob (STORAGE 0 10 MESSAGE 0 5)", "the canonical name");
    let bob = world.other("bob").expect("bob").1;
    let (limits, _) = bob.quota_limits().expect("limits");
    assert_eq!((limits.storage_kib, limits.messages), (Some(10), Some(5)), "kept in bob's store");
    tagged(&admin.command(&mut world, "c SETQUOTA nobody (STORAGE 1)"), "c NO [NONEXISTENT]");
    // Her own root is still "".
    tagged(&admin.command(&mut world, "d SETQUOTA \"\" (STORAGE 100)"), "d OK");

    // Not an administrator: another user's root does not exist, and nothing can be set.
    let mut user = alice(&mut world);
    tagged(&user.command(&mut world, "e GETQUOTA bob"), "e NO [NONEXISTENT]");
    tagged(&user.command(&mut world, "f SETQUOTA bob (STORAGE 1)"), "f NO [NOPERM]");
}

/// Appends `count` messages to alice's own INBOX, with `flags`.
fn fill_own_inbox(world: &mut World, client: &mut Client, count: usize, flags: &str) {
    for n in 0..count {
        let line = format!("Subject: message {n}");
        let command = format!("x APPEND INBOX ({flags}) {{{}+}}\r\n{line}", line.len());
        tagged(&client.command(world, &command), "x OK");
    }
}

/// Bob's INBOX: its messages as bob sees them.
fn bobs_inbox(world: &mut World) -> Vec<skua_core::store::MessageMeta> {
    let bob = world.other("bob").expect("bob").1;
    let inbox = bob.mailbox_id("INBOX").expect("INBOX");
    bob.messages(inbox).expect("messages")
}

#[test]
fn copy_and_move_go_between_two_users_stores() {
    use skua_core::types::SystemFlags;
    let mut world = World::new();
    let mut client = alice(&mut world);
    let bobs = "\"Other Users/bob/INBOX\"";
    fill_own_inbox(&mut world, &mut client, 3, "\\Seen \\Flagged");
    tagged(&client.command(&mut world, "a SELECT INBOX"), "a OK");

    // No rights on bob's INBOX: it does not exist for her, and nothing moved.
    tagged(&client.command(&mut world, &format!("b COPY 1 {bobs}")), "b NO [NONEXISTENT]");
    // `l r` only: visible, but nothing may be inserted.
    grant(&mut world, "lr");
    tagged(&client.command(&mut world, &format!("c COPY 1 {bobs}")), "c NO [NOPERM]");
    assert!(bobs_inbox(&mut world).is_empty());

    // `i`: the copy goes in, with only the flags her rights cover (none of these).
    grant(&mut world, "+i");
    let reply = client.command(&mut world, &format!("d COPY 1 {bobs}"));
    tagged(&reply, "d OK [COPYUID ");
    assert!(reply.last().unwrap().contains(" 1 1] COPY completed"), "{reply:?}");
    let copied = bobs_inbox(&mut world);
    assert_eq!(copied.len(), 1);
    assert_eq!(copied[0].flags.system.0, 0, "no `s` or `w`: no flags");

    // `s w` too: \Flagged is shared, \Seen is hers alone.
    grant(&mut world, "+sw");
    let reply = client.command(&mut world, &format!("e UID COPY 2:3 {bobs}"));
    assert!(reply.last().unwrap().contains(" 2:3 2:3] COPY completed"), "{reply:?}");
    let copied = bobs_inbox(&mut world);
    assert_eq!(copied.len(), 3);
    assert_eq!(copied[2].flags.system.0, SystemFlags::FLAGGED, "bob's \\Seen is not set");
    let reply = client.command(&mut world, &format!("f STATUS {bobs} (UNSEEN)"));
    assert_eq!(reply[0], format!("* STATUS {bobs} (UNSEEN 1)"), "alice saw the two she copied");

    // MOVE from her INBOX: copied into bob's, then gone from hers.
    let reply = client.command(&mut world, &format!("g MOVE 1 {bobs}"));
    assert!(reply[0].starts_with("* OK [COPYUID ") && reply[0].contains(" 1 4]"), "{reply:?}");
    assert_eq!(reply[1], "* 1 EXPUNGE");
    tagged(&reply, "g OK MOVE completed");
    assert_eq!(bobs_inbox(&mut world).len(), 4);
    let reply = client.command(&mut world, "h STATUS INBOX (MESSAGES)");
    assert_eq!(reply[0], "* STATUS INBOX (MESSAGES 2)");
    // A name in nobody's namespace, or a mailbox bob does not have: nothing happens.
    let reply = client.command(&mut world, "i COPY 1 \"Other Users/bob/Missing\"");
    tagged(&reply, "i NO [TRYCREATE]");
    tagged(&client.command(&mut world, "j COPY 1 \"Other Users/\""), "j NO [NONEXISTENT]");
    tagged(&client.command(&mut world, "k NOOP"), "k OK");
}

#[test]
fn copy_and_move_out_of_another_users_mailbox() {
    let mut world = World::new();
    let mut client = alice(&mut world);
    let bobs = "\"Other Users/bob/INBOX\"";
    grant(&mut world, "lrsi");
    for subject in ["one", "two"] {
        let line = format!("Subject: {subject}");
        let command = format!("a APPEND {bobs} (\\Seen) {{{}+}}\r\n{line}", line.len());
        tagged(&client.command(&mut world, &command), "a OK");
    }
    tagged(&client.command(&mut world, &format!("b SELECT {bobs}")), "b OK [READ-WRITE]");
    // Into her own INBOX, with \Seen as she sees it.
    let reply = client.command(&mut world, "c COPY 1:2 INBOX");
    tagged(&reply, "c OK [COPYUID ");
    let own = world.store.mailbox_id("INBOX").expect("INBOX");
    let mine = world.store.messages(own).expect("messages");
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|m| m.flags.system.0 & 1 == 1), "her \\Seen came along");
    assert_eq!(bobs_inbox(&mut world).len(), 2, "COPY leaves bob's");
    // MOVE needs `t` and `e` on the source, into her store or within bob's.
    tagged(&client.command(&mut world, "d MOVE 1 INBOX"), "d NO [NOPERM]");
    {
        let bob = world.other("bob").expect("bob").1;
        let archive = bob.create_mailbox("Archive").expect("create");
        let alice = Identifier::user("alice").expect("identifier");
        bob.set_acl(archive, &alice, RightsChange::parse("lri").unwrap()).expect("setacl");
    }
    let reply = client.command(&mut world, "d MOVE 1 \"Other Users/bob/Archive\"");
    tagged(&reply, "d NO [NOPERM]");
    assert_eq!(bobs_inbox(&mut world).len(), 2, "nothing expunged without `e`");
    grant(&mut world, "+te");
    tagged(&client.command(&mut world, &format!("e SELECT {bobs}")), "e OK [READ-WRITE]");
    let reply = client.command(&mut world, "f MOVE 1 INBOX");
    assert!(reply[0].starts_with("* OK [COPYUID "), "{reply:?}");
    assert_eq!(reply[1], "* 1 EXPUNGE");
    tagged(&reply, "f OK MOVE completed");
    assert_eq!(bobs_inbox(&mut world).len(), 1);
    assert_eq!(world.store.messages(own).expect("messages").len(), 3);
    // Still on bob's mailbox, which is still selected.
    let reply = client.command(&mut world, "g FETCH 1 (FLAGS)");
    assert!(reply[0].starts_with("* 1 FETCH (FLAGS (\\Seen"), "{reply:?}");
    // Read-only: no MOVE.
    grant(&mut world, "lr");
    tagged(&client.command(&mut world, &format!("h EXAMINE {bobs}")), "h OK [READ-ONLY]");
    tagged(&client.command(&mut world, "i MOVE 1 INBOX"), "i NO [READ-ONLY]");
}

#[test]
fn a_copy_that_fails_part_way_leaves_the_target_as_it_was() {
    let mut world = World::new();
    let mut client = alice(&mut world);
    let bobs = "\"Other Users/bob/INBOX\"";
    // More than one batch of messages; bob's quota takes the first batch but not the second.
    fill_own_inbox(&mut world, &mut client, 70, "");
    grant(&mut world, "lri");
    {
        let bob = world.other("bob").expect("bob").1;
        let limits = skua_core::store::QuotaLimits { messages: Some(66), ..Default::default() };
        bob.set_quota(limits).expect("quota");
    }
    tagged(&client.command(&mut world, "a SELECT INBOX"), "a OK");
    tagged(&client.command(&mut world, &format!("b COPY 1:* {bobs}")), "b NO [OVERQUOTA]");
    assert!(bobs_inbox(&mut world).is_empty(), "the first batch was taken back");
    // What fits goes in.
    let reply = client.command(&mut world, &format!("c COPY 1:66 {bobs}"));
    tagged(&reply, "c OK [COPYUID ");
    assert_eq!(bobs_inbox(&mut world).len(), 66);
    // A MOVE that fails part way keeps what it moved (reported), and the rest stays.
    grant(&mut world, "+te");
    {
        let bob = world.other("bob").expect("bob").1;
        let limits = skua_core::store::QuotaLimits { messages: Some(130), ..Default::default() };
        bob.set_quota(limits).expect("quota");
    }
    let reply = client.command(&mut world, &format!("d MOVE 1:* {bobs}"));
    tagged(&reply, "d NO [OVERQUOTA]");
    assert_eq!(reply.iter().filter(|l| l.ends_with(" EXPUNGE")).count(), 64, "{reply:?}");
    assert_eq!(bobs_inbox(&mut world).len(), 130);
    let reply = client.command(&mut world, "e STATUS INBOX (MESSAGES)");
    assert_eq!(reply[0], "* STATUS INBOX (MESSAGES 6)");
}

#[test]
fn create_delete_and_rename_in_another_users_namespace_follow_k_and_x() {
    let mut world = World::new();
    let mut client = alice(&mut world);
    {
        let bob = world.other("bob").expect("bob").1;
        let projects = bob.create_mailbox("Projects").expect("create");
        let alice = Identifier::user("alice").expect("identifier");
        bob.set_acl(projects, &alice, RightsChange::parse("lr").unwrap()).expect("setacl");
    }
    // `l r` only: nothing made below it, nothing deleted.
    let new = "\"Other Users/bob/Projects/2027\"";
    tagged(&client.command(&mut world, &format!("a CREATE {new}")), "a NO [NOPERM]");
    let reply = client.command(&mut world, "b DELETE \"Other Users/bob/Projects\"");
    tagged(&reply, "b NO [NOPERM]");
    // `k`: she makes a child, which takes the parent's ACL (hers included).
    {
        let bob = world.other("bob").expect("bob").1;
        let projects = bob.mailbox_id("Projects").unwrap();
        let alice = Identifier::user("alice").expect("identifier");
        bob.set_acl(projects, &alice, RightsChange::parse("+k").unwrap()).expect("setacl");
    }
    tagged(&client.command(&mut world, &format!("c CREATE {new}")), "c OK [MAILBOXID (");
    let reply = client.command(&mut world, &format!("d MYRIGHTS {new}"));
    assert_eq!(reply[0], format!("* MYRIGHTS {new} lrkc"), "c: the obsolete name of k");
    let bob = world.other("bob").expect("bob").1;
    assert!(bob.mailbox_id("Projects/2027").is_some(), "in bob's store");
    // Without `x` on it she cannot delete or rename it; with `x` she can.
    let renamed = "\"Other Users/bob/Projects/2028\"";
    let reply = client.command(&mut world, &format!("e RENAME {new} {renamed}"));
    tagged(&reply, "e NO [NOPERM]");
    {
        let bob = world.other("bob").expect("bob").1;
        let child = bob.mailbox_id("Projects/2027").unwrap();
        let alice = Identifier::user("alice").expect("identifier");
        bob.set_acl(child, &alice, RightsChange::parse("+x").unwrap()).expect("setacl");
    }
    let reply = client.command(&mut world, &format!("f RENAME {new} {renamed}"));
    tagged(&reply, "f OK RENAME completed");
    // Not between two users' namespaces, nor the owner's top level or INBOX.
    let reply = client.command(&mut world, &format!("g RENAME {renamed} Mine"));
    tagged(&reply, "g NO [NOPERM]");
    let reply = client.command(&mut world, &format!("h RENAME {renamed} \"Other Users/bob/Top\""));
    tagged(&reply, "h NO [NOPERM]");
    tagged(&client.command(&mut world, "i DELETE \"Other Users/bob/INBOX\""), "i NO [NOPERM]");
    tagged(&client.command(&mut world, &format!("j DELETE {renamed}")), "j OK DELETE completed");
    let bob = world.other("bob").expect("bob").1;
    assert!(bob.mailbox_id("Projects/2028").is_none());
    assert!(bob.mailbox_id("Projects").is_some(), "the parent stays");
}
