//! MOVE expunged its sources in the same group commit as the copies (found while building
//! RENAME INBOX, issue 9): a crash that kept part of that round's writes (a disk may write
//! back a file's later pages before its earlier ones) could keep the expunge and lose the
//! copies, and a message acknowledged long before was gone from both mailboxes. MOVE now
//! copies, lets the copies become durable, then expunges. This test watches the order at the
//! session's boundary: when the first write that waits for durability leaves the session, no
//! source may be expunged yet, and the copies must be in the target.

mod imap_support;

use imap_support::{Client, World, tagged};
use skua_protocols::imap::session::Step;

#[test]
fn move_expunges_only_after_the_copies_were_made_durable() {
    let mut world = World::new();
    let mut client = Client::new();
    client.login(&mut world);
    tagged(&client.command(&mut world, "c CREATE Archive"), "c OK");
    for i in 0..3 {
        let message = format!("Subject: m{i}\r\n\r\nbody {i}\r\n");
        let reply = client
            .command(&mut world, &format!("a{i} APPEND INBOX {{{}+}}\r\n{message}", message.len()));
        tagged(&reply, &format!("a{i} OK"));
    }
    tagged(&client.command(&mut world, "s SELECT INBOX"), "s OK");
    let inbox = world.store.mailbox_id("INBOX").expect("INBOX");
    let archive = world.store.mailbox_id("Archive").expect("Archive");

    client.session.feed(b"m UID MOVE 1:3 Archive\r\n");
    let mut output = Vec::new();
    let mut checked = false;
    for _ in 0..10_000 {
        match client.session.next(Some(&mut world.store)) {
            Step::Write { chunks, durable } => {
                if durable.is_some() && !checked {
                    // The reply that needs the copies durable is leaving: the sources are
                    // all still there (an expunge waits for the next turn).
                    let live = world.store.messages(inbox).expect("INBOX").len();
                    let copied = world.store.messages(archive).expect("Archive").len();
                    assert_eq!((live, copied), (3, 3), "expunged before the copies were durable");
                    checked = true;
                }
                assert!(world.flush(), "flush");
                chunks.iter().for_each(|c| output.extend_from_slice(c.as_bytes()));
            }
            Step::Yield => {}
            Step::NeedInput | Step::Idle => break,
            other => panic!("unexpected step {other:?}"),
        }
    }
    assert!(checked, "no write waited for durability");
    let output = String::from_utf8(output).unwrap();
    assert!(output.contains("* OK [COPYUID "), "{output}");
    assert!(output.ends_with("m OK MOVE completed\r\n"), "{output}");
    assert!(world.store.messages(inbox).unwrap().is_empty(), "the sources are expunged");
    assert_eq!(output.matches(" EXPUNGE\r\n").count(), 3, "{output}");
}
