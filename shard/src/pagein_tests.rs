//! The page-in's logic without a runtime: a cold chunk's file range goes to the read, a
//! resident one does not; a read that fails or hangs falls back to read-ahead within the bound.
//!
//! Bodies are really cold: a file on the real disk (the target directory, not a tmpfs) is
//! synced and dropped from the page cache (`posix_fadvise(DONTNEED)`). The read given to the
//! page-in is a plain `pread` of the range, standing in for the ring's read (`driver.rs`),
//! which the Python test `tests/test_abuse_pagein.py` runs in the real server.

use std::cell::{Cell, RefCell};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future;
use skua_core::disk::os::{OsDisk, OsFile};
use skua_core::disk::{Disk, DiskFile, FileIdentity, FileRange, OpenMode};

use super::*;

const COLD_BYTES: u64 = 1 << 20;

/// A disk with `cold.seg` (1 MiB, dropped from the page cache) and `warm.seg` (just read).
/// `None` where the page cache keeps dropped pages (then nothing can be learnt).
fn disk() -> Option<(tempfile::TempDir, OsFile, OsFile)> {
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).expect("temporary directory");
    let write = |name: &str, len: u64| -> PathBuf {
        let path = dir.path().join(name);
        let data: Vec<u8> = (0..len).map(|at| (at % 251) as u8).collect();
        std::fs::write(&path, data).expect("write");
        std::fs::File::open(&path).expect("open").sync_all().expect("sync");
        path
    };
    let cold = write("cold.seg", COLD_BYTES);
    write("warm.seg", 8192);
    let file = std::fs::File::open(&cold).expect("open");
    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).expect("fadvise");
    let disk = OsDisk::new(dir.path()).expect("disk");
    let cold = disk.open(Path::new("cold.seg"), OpenMode::Existing).expect("cold");
    let warm = disk.open(Path::new("warm.seg"), OpenMode::Existing).expect("warm");
    let mut buf = vec![0u8; 8192];
    warm.read_exact_at(&mut buf, 0).expect("warm read");
    if cold.view(0, COLD_BYTES).expect("view").is_resident() {
        eprintln!("the page cache kept the file: residency not observable here");
        return None;
    }
    Some((dir, cold, warm))
}

fn spool(file: &OsFile, offset: u64, len: u64) -> OutChunk {
    OutChunk::Spool(file.view(offset, len).expect("view"))
}

/// A read of `range` into the page cache with `pread`, recording the range.
fn reading(seen: &RefCell<Vec<FileRange>>) -> impl Fn(FileRange) -> future::Ready<io::Result<()>> {
    move |range: FileRange| {
        seen.borrow_mut().push(range.clone());
        let file = std::fs::File::open(&range.file.path).expect("open");
        let mut buf = vec![0u8; usize::try_from(range.len).expect("small")];
        future::ready(file.read_exact_at(&mut buf, range.offset))
    }
}

/// The test's timer: blocks the thread when awaited (a single-threaded `block_on` has nothing
/// else to run), counting the waits awaited.
fn sleeping<'a>(calls: &'a Cell<u32>) -> impl Fn(Duration) -> Nap<'a> {
    move |period| Nap { period, calls }
}

/// [`sleeping`]'s wait.
struct Nap<'a> {
    period: Duration,
    calls: &'a Cell<u32>,
}

impl Future for Nap<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut std::task::Context<'_>) -> Poll<()> {
        self.calls.set(self.calls.get() + 1);
        std::thread::sleep(self.period);
        Poll::Ready(())
    }
}

const WIDE: Bounds = Bounds { wait_max: Duration::from_secs(10), poll: Duration::from_millis(1) };

#[test]
fn cold_chunks_are_read_by_their_file_range_and_resident_ones_are_not() {
    let Some((_dir, cold, warm)) = disk() else { return };
    let seen = RefCell::new(Vec::new());
    let sleeps = Cell::new(0);
    let chunks = [
        OutChunk::Owned(b"* 1 FETCH (BODY[] {500000}\r\n".to_vec()),
        spool(&cold, 0, 300_000),
        spool(&warm, 0, 8192),
        spool(&cold, 300_000, 200_000),
        spool(&cold, 700_000, 100_000),
    ];
    let done =
        future::block_on(page_in(ShardId(0), &chunks, sleeping(&sleeps), reading(&seen), WIDE));
    assert_eq!(done, PageIn { ring_reads: 2, waited_out: false });
    let seen = seen.into_inner();
    let ranges: Vec<(u64, u64)> = seen.iter().map(|range| (range.offset, range.len)).collect();
    assert_eq!(ranges, [(0, 500_000), (700_000, 100_000)], "adjacent chunks read as one");
    let metadata = std::fs::metadata(&seen[0].file.path).expect("the cold file");
    assert_eq!(seen[0].file.path.file_name().and_then(|name| name.to_str()), Some("cold.seg"));
    assert_eq!((seen[0].file.device, seen[0].file.inode), (metadata.dev(), metadata.ino()));
    assert!(chunks.iter().filter_map(OutChunk::spool).all(Bytes::is_resident));
    assert_eq!(sleeps.get(), 0, "the reads woke the write: no timer ran out");
}

#[test]
fn resident_chunks_are_not_read() {
    let Some((_dir, _cold, warm)) = disk() else { return };
    let seen = RefCell::new(Vec::new());
    let sleeps = Cell::new(0);
    let chunks = [OutChunk::Owned(b"* 1 FETCH".to_vec()), spool(&warm, 100, 5000)];
    let done =
        future::block_on(page_in(ShardId(0), &chunks, sleeping(&sleeps), reading(&seen), WIDE));
    assert_eq!(done, PageIn::default());
    assert!(seen.borrow().is_empty());
    assert_eq!(sleeps.get(), 0);
}

#[test]
fn a_failed_read_falls_back_to_read_ahead() {
    let Some((_dir, cold, _warm)) = disk() else { return };
    let chunks = [spool(&cold, 4096, 600_000)];
    let reads = Cell::new(0);
    let failing = |_: FileRange| {
        reads.set(reads.get() + 1);
        future::ready(Err(io::Error::other("another file under the name now")))
    };
    let sleeps = Cell::new(0);
    let done = future::block_on(page_in(ShardId(0), &chunks, sleeping(&sleeps), failing, WIDE));
    assert_eq!(done, PageIn { ring_reads: 0, waited_out: false });
    assert_eq!(reads.get(), 1);
    assert!(chunks[0].spool().expect("spool").is_resident(), "read ahead instead");
}

#[test]
fn a_hanging_read_is_bounded() {
    let Some((_dir, cold, _warm)) = disk() else { return };
    let chunks = [spool(&cold, 0, COLD_BYTES)];
    let bounds = Bounds { wait_max: Duration::from_millis(50), poll: Duration::from_millis(1) };
    let sleeps = Cell::new(0);
    let hanging = |_: FileRange| future::pending::<io::Result<()>>();
    let started = Instant::now();
    let done = future::block_on(page_in(ShardId(0), &chunks, sleeping(&sleeps), hanging, bounds));
    let took = started.elapsed();
    assert_eq!(done.ring_reads, 0);
    assert!(took >= bounds.wait_max, "{took:?}");
    assert!(took < bounds.wait_max * 20, "the read's hang is bounded: {took:?}");
}

#[test]
fn ranges_of_one_file_that_touch_are_merged() {
    let file = |name: &str| {
        Rc::new(FileIdentity { path: PathBuf::from(name), device: 1, inode: name.len() as u64 })
    };
    let (a, b) = (file("/a"), file("/bb"));
    let range =
        |file: &Rc<FileIdentity>, offset, len| FileRange { file: file.clone(), offset, len };
    let merged = merged(vec![
        range(&b, 0, 10),
        range(&a, 50, 10),
        range(&a, 0, 10),
        range(&a, 10, 5),
        range(&a, 12, 1),
        range(&b, 10, 10),
    ]);
    let got: Vec<(&Path, u64, u64)> =
        merged.iter().map(|r| (r.file.path.as_path(), r.offset, r.len)).collect();
    let (pa, pb) = (Path::new("/a"), Path::new("/bb"));
    assert_eq!(got, [(pa, 0, 15), (pa, 50, 10), (pb, 0, 20)]);
    // The same name but another file (renamed over) is not merged.
    let other = Rc::new(FileIdentity { path: PathBuf::from("/a"), device: 1, inode: 99 });
    assert_eq!(merged_len(vec![range(&a, 0, 10), range(&other, 10, 10)]), 2);
}

fn merged_len(ranges: Vec<FileRange>) -> usize {
    merged(ranges).len()
}
