//! Opening a store in bounded steps on the real disk, with flush rounds between the steps.
//!
//! Between two steps of an open on a shard, other users' group commits run flush rounds on
//! the same disk, and a round closes the descriptors that went unused since the round before
//! (`disk/os.rs`): the open then goes on with files whose handles were closed under it (an
//! index half loaded, a segment half scanned, an index half rebuilt), which must be reopened
//! by name. Invariant: the store opened in steps this way is the store `UserStore::open`
//! gives, byte for byte in its index files (the simulated disk never closes handles, so
//! `store_opening.rs` cannot show this).

mod store_support;

use std::path::Path;
use std::rc::Rc;

use skua_core::disk::os::OsDisk;
use skua_core::store::{OpenProgress, UserStore};
use skua_core::types::{Flags, FlagsOp, Keywords, SystemFlags, Uid};
use store_support::{USER, World, flush, message, settle};

/// What a client sees of a store, its recovery report and its index files' bytes.
fn state(store: &UserStore<OsDisk>, user_dir: &Path) -> String {
    let mut out = format!("{:?}\n", store.recovery());
    for info in store.mailboxes() {
        out += &format!("{info:?}\n");
        for meta in store.messages(info.id).expect("listed") {
            let body = store.body(info.id, meta.uid).expect("body");
            let cache = store.cache(info.id, meta.uid).expect("cache");
            out += &format!("  {meta:?} {} {:?}\n", crc(&body), &cache[..]);
        }
    }
    let mut names: Vec<_> = std::fs::read_dir(user_dir.join("mbox"))
        .expect("the index directory")
        .map(|entry| entry.expect("an entry").path())
        .collect();
    names.sort();
    for path in names {
        let name = path.file_name().expect("a name").to_string_lossy().into_owned();
        out += &format!("{name} {}\n", crc(&std::fs::read(&path).expect("read")));
    }
    out
}

/// A checksum standing for a body or a file in the comparison.
fn crc(bytes: &[u8]) -> String {
    format!(
        "{} bytes, fnv {:016x}",
        bytes.len(),
        bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
    )
}

/// Copies a directory tree.
fn copy_tree(source: &Path, target: &Path) {
    std::fs::create_dir_all(target).expect("mkdir");
    for entry in std::fs::read_dir(source).expect("read_dir") {
        let entry = entry.expect("an entry");
        let to = target.join(entry.file_name());
        if entry.file_type().expect("a type").is_dir() {
            copy_tree(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).expect("copy");
        }
    }
}

#[test]
fn a_stepped_open_with_flush_rounds_between_steps_matches_one_piece() {
    let mut world = World::new();
    let mut store = world.open();
    store.create_mailbox("Archive").expect("create");
    let archive = store.mailbox_id("Archive").expect("created");
    let inbox = store.mailbox_id("INBOX").expect("INBOX");
    for n in 1..=400u32 {
        let mailbox = if n % 3 == 0 { archive } else { inbox };
        let len = if n % 97 == 0 { 200_000 } else { 200 + (n as usize * 211) % 3000 };
        let flags = Flags { system: SystemFlags(0), keywords: Keywords(0) };
        store.append(mailbox, &message(n, len), b"cache", flags, None).expect("append");
    }
    let seen = Flags { system: SystemFlags(SystemFlags::SEEN), keywords: Keywords(0) };
    let some: Vec<Uid> = (1..=100).step_by(7).map(|u| Uid::new(u).expect("non-zero")).collect();
    store.store_flags(archive, &some, FlagsOp::Add, seen, None).expect("store");
    let disk = world.disk.clone();
    settle(&mut store, &disk);
    drop(store);
    // The INBOX index is rebuilt from the whole spool; Archive's loads as it is.
    std::fs::remove_file(world.index_path(inbox)).expect("remove");
    let copy = tempfile::tempdir().expect("tempdir");
    copy_tree(world.dir.path(), copy.path());

    let whole_disk = Rc::new(OsDisk::new(copy.path()).expect("disk"));
    let whole = UserStore::open(whole_disk, Path::new(USER)).expect("open");
    let expected = state(&whole, &copy.path().join(USER));

    let disk = Rc::new(OsDisk::new(world.dir.path()).expect("disk"));
    let mut opening = UserStore::opening(disk.clone(), Path::new(USER));
    let (store, work) = loop {
        match opening.step(3).expect("a step") {
            OpenProgress::Pending(more) => opening = more,
            OpenProgress::Open { store, work } => break (store, work),
        }
        // Two rounds: the second closes every handle the open did not use since the first.
        flush(&*disk);
        flush(&*disk);
    };
    // About a unit per record scanned and per entry rebuilt: hundreds of steps of three.
    assert!(work.steps > 100, "{work:?}");
    let stepped = state(&store, &world.dir.path().join(USER));
    let differ: Vec<(&str, &str)> =
        expected.lines().zip(stepped.lines()).filter(|(a, b)| a != b).take(5).collect();
    assert!(expected == stepped, "one piece, then in steps, where they differ: {differ:#?}");
}
