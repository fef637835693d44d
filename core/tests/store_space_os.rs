//! Space on the real disk (issue 10, item 5): `UserStore::disk_usage` agrees with the files'
//! sizes as the file system reports them; spool compaction gives blocks back (holes) while
//! keeping every file's length; and a view of a message taken before the rewrite (a session
//! sending a body) still reads the old bytes after the rename, since its map keeps the old
//! file alive.

mod store_support;

use std::path::Path;

use skua_core::disk::os::OsDisk;
use skua_core::store::{CompactProgress, CompactionPolicy, UserStore};
use skua_core::types::{Flags, Uid};
use store_support::{World, message, settle};

fn sizes(dir: &Path, ext: &str) -> (u64, u64) {
    let mut length = 0;
    let mut blocks = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == ext) {
            let metadata = std::fs::metadata(&path).unwrap();
            length += metadata.len();
            blocks += std::os::unix::fs::MetadataExt::blocks(&metadata) * 512;
        }
    }
    (length, blocks)
}

fn all_file_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        total += if path.is_dir() { all_file_bytes(&path) } else { path.metadata().unwrap().len() };
    }
    total
}

fn compact(store: &mut UserStore<OsDisk>, world: &World, policy: &CompactionPolicy) {
    for _ in 0..100_000 {
        match store.compact_step(policy, 1024).unwrap() {
            CompactProgress::Idle => return,
            CompactProgress::Working => {}
            CompactProgress::Waiting(_) => world.flush(),
        }
    }
    panic!("compaction does not end");
}

#[test]
fn disk_usage_matches_the_files_and_compaction_gives_blocks_back() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let mut uids = Vec::new();
    for n in 1..=70 {
        let body = message(n, 1 << 20);
        uids.push(store.append(inbox, &body, b"cache", Flags::default(), None).unwrap().0);
        world.flush();
    }
    let doomed: Vec<Uid> = uids.iter().copied().filter(|u| u.get() % 2 == 1).collect();
    store.expunge(inbox, &doomed).unwrap();
    settle(&mut store, &*world.disk);
    let policy =
        CompactionPolicy { retention_seconds: 0, free_bytes_min: 1, now_unix_seconds: i64::MAX };
    let spool = world.path("spool");
    let (length, blocks_before) = sizes(&spool, "seg");
    let usage = store.disk_usage(&policy).unwrap();
    assert_eq!(usage.spool_bytes, length);
    assert_eq!(usage.index_bytes, sizes(&world.path("mbox"), "idx").0);
    let total = all_file_bytes(&world.dir.path().join(store_support::USER));
    assert_eq!(usage.spool_bytes + usage.index_bytes + usage.other_bytes, total);
    assert_eq!(usage.retained_bytes, 0, "retention 0: nothing is kept");
    let live: u64 = store.messages(inbox).unwrap().iter().map(|m| u64::from(m.size)).sum();
    assert!(usage.live_bytes > live && usage.live_bytes < live + 35 * 4096, "{usage:?}");
    // A session holds the body of a message that goes and of one that stays.
    let (gone, kept) = (Uid::new(1).unwrap(), Uid::new(2).unwrap());
    let gone_view = store.body(inbox, gone).unwrap();
    let kept_view = store.body(inbox, kept).unwrap();
    compact(&mut store, &world, &policy);
    assert_eq!(store.compaction_stats().segments_rewritten, 1);
    let (length_after, blocks_after) = sizes(&spool, "seg");
    assert_eq!(length_after, length, "offsets kept");
    assert!(blocks_after + (25 << 20) < blocks_before, "{blocks_before} -> {blocks_after}");
    assert_eq!(&gone_view[..], &message(1, 1 << 20)[..], "the old map stays readable");
    assert_eq!(&kept_view[..], &message(2, 1 << 20)[..]);
    assert!(store.body(inbox, gone).is_err(), "gone for new reads");
    assert_eq!(&store.body(inbox, kept).unwrap()[..], &message(2, 1 << 20)[..]);
    assert_eq!(store.disk_usage(&policy).unwrap().live_bytes, usage.live_bytes);
    drop(store);
    let store = world.open();
    assert!(store.recovery().is_clean(), "{:?}", store.recovery());
    for uid in uids.iter().filter(|u| u.get() % 2 == 0) {
        assert_eq!(&store.body(inbox, *uid).unwrap()[..], &message(uid.get(), 1 << 20)[..]);
    }
}
