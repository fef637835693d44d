//! RENAME INBOX of a large INBOX (issue 9): the move runs in bounded slices (the command
//! pauses between them, so other sessions on the shard run), waits once for the copies to be
//! durable, and ends with every message in the new mailbox, none in INBOX, and a session that
//! had INBOX selected told of each expunge.

mod imap_support;

use imap_support::{Client, World, tagged};

#[test]
fn a_large_inbox_moves_in_slices_and_a_watching_session_sees_it_emptied() {
    let mut world = World::new();
    let mut mover = Client::new();
    mover.login(&mut world);
    for i in 0..300 {
        let raw = format!("Subject: m{i}\r\n\r\nbody {i}\r\n");
        let mut command = format!("ap APPEND INBOX {{{}+}}\r\n", raw.len()).into_bytes();
        command.extend_from_slice(raw.as_bytes());
        command.extend_from_slice(b"\r\n");
        mover.send(&mut world, &command);
        tagged(&mover.drain(), "ap OK");
    }
    let mut watcher = Client::new();
    watcher.login(&mut world);
    tagged(&watcher.command(&mut world, "w1 SELECT INBOX"), "w1 OK");
    let yields = mover.yields;
    let writes = mover.writes;
    let reply = mover.command(&mut world, "r RENAME INBOX Archive/2026");
    tagged(&reply, "r OK RENAME completed");
    assert_eq!(reply, ["* OK Messages copied, emptying INBOX", "r OK RENAME completed"]);
    // 300 copies and 300 expunges, 16 a slice: dozens of pauses, one of them a write.
    assert!(mover.yields - yields >= 30, "{} pauses", mover.yields - yields);
    assert_eq!(mover.writes - writes, 2, "the wait for durable copies, then the reply");
    let status = mover.command(&mut world, "s1 STATUS Archive/2026 (MESSAGES)");
    assert_eq!(status[0], "* STATUS Archive/2026 (MESSAGES 300)");
    let status = mover.command(&mut world, "s2 STATUS INBOX (MESSAGES UIDNEXT)");
    assert_eq!(status[0], "* STATUS INBOX (MESSAGES 0 UIDNEXT 301)");
    let reply = watcher.command(&mut world, "w2 NOOP");
    tagged(&reply, "w2 OK");
    let expunges = reply.iter().filter(|l| l.ends_with(" EXPUNGE")).count();
    assert_eq!(expunges, 300);
    let search = watcher.command(&mut world, "w3 SEARCH ALL");
    assert_eq!(search[0], "* SEARCH");
}
