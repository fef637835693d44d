//! Issue 7, defect 9 (store part): "One damaged spool record makes `FETCH 1:* BODY[]` answer
//! `NO [SERVERBUG]` with no data for the healthy messages." The store side of the fix: a
//! damaged record fails only reads of its own message.
//!
//! Invariant: with one message's spool record damaged at rest (in durable spool before the
//! index checkpoint, so recovery on open does not rescan it), `body` and `cache` of that UID
//! return `ReadError::Storage(StorageError::Corrupt { .. })` (`ReadError::is_damaged_message`),
//! every other message's body and cache read back exactly, and `messages`, `live_messages`,
//! `message` and `mailbox_info` do not fail.

mod store_support;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use skua_core::error::{ReadError, StorageError};
use skua_core::limits::CHECKPOINT_INTERVAL_BYTES;
use skua_core::types::{Flags, Uid};
use store_support::{World, message};

#[test]
fn a_damaged_record_fails_only_its_own_message() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    // Enough bytes to carry the index checkpoint past every record, so the next open does not
    // rescan (and expunge) the damaged one: it is found only when read.
    let size = 1 << 20;
    let count = u32::try_from(CHECKPOINT_INTERVAL_BYTES / size as u64).unwrap() + 2;
    let mut bodies = Vec::new();
    for n in 0..count {
        let body = message(n, size);
        let cache = format!("cache {n}").into_bytes();
        let (uid, _) = store.append(inbox, &body, &cache, Flags::default(), None).unwrap();
        bodies.push((uid, body, cache));
        world.flush();
    }
    // The next mutations write the checkpoint into the headers (first lowered to the index
    // records not yet known durable, then, once they are, the full one); flush each.
    for _ in 0..3 {
        store.subscribe("INBOX").unwrap();
        world.flush();
    }
    drop(store);
    // Damage one payload byte of the third message's record, in the middle of its body.
    let victim: Uid = bodies[2].0;
    let segment = world.path("spool/00000001.seg");
    let file = OpenOptions::new().read(true).write(true).open(&segment).unwrap();
    let offset = 64 + 2 * (48 + size as u64 + 16) + 48 + 1000;
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, offset).unwrap();
    file.write_all_at(&[byte[0] ^ 0x10], offset).unwrap();
    drop(file);

    let store = world.open();
    assert_eq!(store.recovery().spool_damaged_bytes, 0, "the open did not rescan the record");
    let metas = store.messages(inbox).expect("the mailbox lists");
    assert_eq!(metas.len(), bodies.len(), "every message is listed, the damaged one too");
    assert_eq!(store.live_messages(inbox).unwrap().count(), bodies.len());
    assert!(store.message(inbox, victim).unwrap().is_some());
    assert_eq!(store.mailbox_info(inbox).unwrap().messages as usize, bodies.len());
    for (uid, body, cache) in &bodies {
        if *uid == victim {
            for error in
                [store.body(inbox, *uid).unwrap_err(), store.cache(inbox, *uid).unwrap_err()]
            {
                assert!(error.is_damaged_message(), "{error:?}");
                assert!(matches!(error, ReadError::Storage(StorageError::Corrupt { .. })));
            }
            continue;
        }
        assert_eq!(&*store.body(inbox, *uid).unwrap(), &body[..], "UID {}", uid.get());
        assert_eq!(&*store.cache(inbox, *uid).unwrap(), &cache[..], "UID {}", uid.get());
    }
    // Still refused on a second read (the check is not skipped once it failed).
    assert!(store.body(inbox, victim).unwrap_err().is_damaged_message());
}
