//! How long `UserStore::open` takes on a large store on the real disk (warm page cache), with
//! its indexes intact and with the INBOX index deleted (a rebuild from the whole spool).
//!
//! Ignored by default (it writes about 400 MB); run in release:
//! `cargo test -p skua-core --release --test store_open_perf -- --ignored --nocapture`.
//! Prints milliseconds; it asserts no timing (machines are noisy), only that every message
//! comes back.

mod store_support;

use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use skua_core::disk::os::OsDisk;
use skua_core::store::UserStore;
use skua_core::types::MailboxId;
use store_support::{USER, World, append_many, flush};

/// Messages in INBOX (the other two mailboxes get a tenth each).
const INBOX_MESSAGES: u32 = 200_000;

/// Builds the store: appends in batches, flushing between them as the shard would.
fn build(world: &mut World) -> Vec<(MailboxId, usize)> {
    let mut store = world.open();
    let other = ["Archive", "Sent"].map(|name| {
        store.create_mailbox(name).expect("create");
        store.mailbox_id(name).expect("created")
    });
    let inbox = store.mailbox_id("INBOX").expect("INBOX");
    let mut next = 1;
    for (mailbox, count) in [(inbox, INBOX_MESSAGES), (other[0], INBOX_MESSAGES / 10)]
        .into_iter()
        .chain([(other[1], INBOX_MESSAGES / 10)])
    {
        let mut left = count;
        while left > 0 {
            let batch = left.min(1000);
            append_many(&mut store, mailbox, next, batch);
            next += batch;
            left -= batch;
            world.flush();
            store.subscribe("INBOX").expect("housekeeping");
            world.flush();
        }
    }
    let counts = [inbox, other[0], other[1]]
        .map(|id| (id, store.messages(id).expect("listed").len()))
        .to_vec();
    drop(store);
    counts
}

/// Opens the store on a fresh disk object; the time it took, in ms, and the store's disk.
fn timed_open(world: &World) -> (f64, UserStore<OsDisk>) {
    let disk = Rc::new(OsDisk::new(world.dir.path()).expect("disk"));
    let started = Instant::now();
    let store = UserStore::open(disk, Path::new(USER)).expect("open");
    (started.elapsed().as_secs_f64() * 1000.0, store)
}

fn check_counts(store: &UserStore<OsDisk>, counts: &[(MailboxId, usize)]) {
    for &(id, count) in counts {
        assert_eq!(store.messages(id).expect("listed").len(), count, "mailbox {id:?}");
    }
}

#[test]
#[ignore = "writes ~400 MB; a measurement, run by hand in release"]
fn open_a_large_store() {
    let mut world = World::new();
    let counts = build(&mut world);
    let mut intact = Vec::new();
    for _ in 0..5 {
        let (ms, store) = timed_open(&world);
        check_counts(&store, &counts);
        flush(store.disk());
        intact.push(ms);
    }
    let mut rebuilt = Vec::new();
    for _ in 0..3 {
        std::fs::remove_file(world.index_path(counts[0].0)).expect("remove the INBOX index");
        let (ms, store) = timed_open(&world);
        check_counts(&store, &counts);
        assert_eq!(store.recovery().indexes_rebuilt, 1);
        flush(store.disk());
        rebuilt.push(ms);
    }
    intact.sort_by(f64::total_cmp);
    rebuilt.sort_by(f64::total_cmp);
    let messages: usize = counts.iter().map(|c| c.1).sum();
    println!("store of {messages} messages in 3 mailboxes");
    println!("open, indexes intact: ms {intact:.1?} (median {:.1})", intact[intact.len() / 2]);
    println!("open, INBOX index deleted: ms {rebuilt:.1?} (median {:.1})", rebuilt[1]);
}
