//! Read-only memory maps of spool files: the only room in `skua-core` with `unsafe` code.
//!
//! Message bodies are served straight from the page cache through a shared, read-only mapping,
//! so a FETCH costs no copy and no read syscall. Turning a mapping into a `&[u8]` is `unsafe`
//! because Rust cannot know what other writers do to the file. Soundness rests on these facts
//! about the store, each enforced where noted:
//!
//! - **Append-only.** Spool segments are only ever written past their current end (the store
//!   never rewrites a spool byte it has handed out; see `core/FORMAT.md`). A byte below the
//!   written length therefore never changes while a view of it is alive, so a `&[u8]` over it
//!   really is immutable.
//! - **One writer.** Only this process writes the files (the data directory is private to the
//!   server, and `serve` and `reconstruct` hold its lock, `core/src/lock.rs`, so no second skua
//!   writes it), and within the process every file is reached through `disk::os::OsFile`,
//!   which tracks its length.
//! - **Never truncated while mapped.** `OsFile::set_len` refuses to shrink a file below the
//!   largest length ever handed out as a view; recovery truncates torn tails *before* anything
//!   maps the file. Reading a mapped page that lies wholly past the end of file raises SIGBUS,
//!   so this is what keeps a view from ever faulting.
//! - **Map large, read below the written length.** A mapping may be longer than the file (the
//!   active segment is mapped with room to grow, so it is not remapped on every append); a
//!   [`MapWindow`] is only ever made for a range below the file length at the time it is made,
//!   checked by the caller and asserted here against the length the caller passes.
//!
//! Older, shorter mappings stay alive for as long as a [`MapWindow`] refers to them (each window
//! holds an `Rc` of its map), so remapping never invalidates a view.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::rc::Rc;

use memmap2::{Advice, MmapOptions, MmapRaw};

/// A read-only shared mapping of the first `len` bytes of a file (possibly past its end).
#[derive(Debug)]
pub struct Map {
    raw: MmapRaw,
}

impl Map {
    /// Maps `len` bytes of `file` read-only. `len` may exceed the file's length; bytes past the
    /// end of file must never be read (see the module docs).
    ///
    /// # Errors
    /// The OS error from `mmap`.
    ///
    /// # Panics
    /// If `len` is zero (an empty mapping is refused by the OS; callers serve empty views
    /// without a map).
    pub fn new(file: &File, len: usize) -> io::Result<Map> {
        assert!(len > 0);
        let raw = MmapOptions::new().len(len).map_raw_read_only(file)?;
        assert_eq!(raw.len(), len);
        Ok(Map { raw })
    }

    /// Length of the mapping (not of the file).
    #[must_use]
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Asks the kernel to read `[start, start + len)` ahead (madvise `WILLNEED`), so serving it
    /// later does not stall on a major page fault. Advisory: errors are returned but harmless.
    ///
    /// # Errors
    /// The OS error from `madvise`.
    pub fn will_need(&self, start: usize, len: usize) -> io::Result<()> {
        assert!(start.checked_add(len).is_some_and(|end| end <= self.raw.len()));
        self.raw.advise_range(Advice::WillNeed, start, len)
    }
}

/// A window `[start, start + len)` of a [`Map`] that lies below the file's written length.
/// Keeps its map alive; dereferences to the bytes with no copy.
#[derive(Debug)]
pub struct MapWindow {
    map: Rc<Map>,
    start: usize,
    len: usize,
}

impl MapWindow {
    /// A window of `map`. `file_len` is the file's written length now, as tracked by the only
    /// writer: the window must end at or below it (the module docs say why that is enough).
    ///
    /// # Panics
    /// If the window passes the end of the map or of the file.
    #[must_use]
    pub fn new(map: Rc<Map>, start: usize, len: usize, file_len: u64) -> MapWindow {
        let end = start.checked_add(len).expect("window end overflows");
        assert!(end <= map.len(), "window past the end of the map");
        assert!(end as u64 <= file_len, "window past the end of the file");
        MapWindow { map, start, len }
    }
}

impl AsRef<[u8]> for MapWindow {
    fn as_ref(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `MapWindow::new` checked that `[start, start + len)` lies inside the mapping
        // (so the pointer arithmetic stays in one allocation) and below the file's written
        // length, so every page is backed by the file and reading it cannot fault. The module
        // docs explain why those bytes never change or vanish while this window (which holds
        // the mapping alive through its `Rc`) exists: the file is append-only, written by this
        // process alone, and never truncated below a length handed out as a view.
        unsafe { std::slice::from_raw_parts(self.map.raw.as_ptr().add(self.start), self.len) }
    }
}

/// Pages asked about per `mincore` call: the answer buffer lives on the stack.
const RESIDENCY_PAGES_PER_CALL: usize = 256;

/// The page size, from the OS once.
fn page_bytes() -> usize {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: `sysconf` with a valid name reads a constant; no memory is touched.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(page).ok().filter(|&p| p.is_power_of_two()).unwrap_or(4096)
    })
}

/// True when every page under `bytes` is in memory, so reading them (a `send` from a mapped
/// spool) cannot stall the thread on a major page fault. Bytes in ordinary heap memory are
/// resident. An error from the OS answers `true`: the caller then reads as it always did.
#[must_use]
pub fn resident(bytes: &[u8]) -> bool {
    if bytes.is_empty() {
        return true;
    }
    let page = page_bytes();
    let start = (bytes.as_ptr() as usize) & !(page - 1);
    let end = (bytes.as_ptr() as usize) + bytes.len();
    let mut answer = [0u8; RESIDENCY_PAGES_PER_CALL];
    let mut at = start;
    while at < end {
        let pages = (end - at).div_ceil(page).min(RESIDENCY_PAGES_PER_CALL);
        // SAFETY: `mincore` only reads the page tables for `[at, at + pages * page)`, which
        // lies within the pages that hold `bytes` (a live slice, so they are mapped), and
        // writes one byte per page into `answer`, which has room for `pages` bytes.
        let status =
            unsafe { libc::mincore(at as *mut libc::c_void, pages * page, answer.as_mut_ptr()) };
        if status != 0 {
            return true;
        }
        if answer[..pages].iter().any(|&flags| flags & 1 == 0) {
            return false;
        }
        at += pages * page;
    }
    true
}

/// Asks the kernel to read the pages under `bytes` ahead (madvise `WILLNEED`): the read runs in
/// the background, and [`resident`] turns true once it is done. Advisory; errors are ignored
/// (heap memory, for one, is not file-backed and needs no reading).
pub fn will_need(bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let page = page_bytes();
    let start = (bytes.as_ptr() as usize) & !(page - 1);
    let len = (bytes.as_ptr() as usize) + bytes.len() - start;
    // SAFETY: `madvise(WILLNEED)` changes no memory and no mapping; it only starts reads of
    // the pages under `bytes`, a live slice, so the range is mapped.
    let _ = unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_WILLNEED) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn residency_follows_the_page_cache() {
        // A file on a real disk (the target directory, not a tmpfs), written and synced, then
        // dropped from the page cache: its mapped pages are not resident until read ahead.
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let path = dir.path().join("cold");
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(&vec![7u8; 1 << 20]).unwrap();
        file.sync_all().unwrap();
        drop(file);
        let file = std::fs::File::open(&path).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        // SAFETY: fadvise on an open descriptor changes no memory.
        let dropped = unsafe { libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(dropped, 0);
        let map = Rc::new(Map::new(&file, 1 << 20).unwrap());
        let window = MapWindow::new(map, 0, 1 << 20, 1 << 20);
        let bytes = window.as_ref();
        if resident(bytes) {
            // Some filesystems keep clean pages anyway; nothing to learn here then.
            eprintln!("the page cache kept the file: residency not observable here");
            return;
        }
        will_need(bytes);
        let started = std::time::Instant::now();
        while !resident(bytes) {
            assert!(started.elapsed() < std::time::Duration::from_secs(10), "never read ahead");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(bytes[12345], 7);
        assert!(resident(&[1, 2, 3]), "heap bytes are resident");
        assert!(resident(&[]));
    }

    #[test]
    fn window_reads_mapped_bytes_and_sees_later_appends() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"hello world").unwrap();
        let map = Rc::new(Map::new(&file, 1 << 16).unwrap());
        let window = MapWindow::new(map.clone(), 6, 5, 11);
        assert_eq!(window.as_ref(), b"world");
        // A shared mapping larger than the file sees bytes appended later.
        file.write_all(b"!!").unwrap();
        let later = MapWindow::new(map, 11, 2, 13);
        assert_eq!(later.as_ref(), b"!!");
        assert_eq!(window.as_ref(), b"world");
    }

    #[test]
    #[should_panic(expected = "past the end of the file")]
    fn window_past_file_end_is_refused() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"abc").unwrap();
        let map = Rc::new(Map::new(&file, 4096).unwrap());
        let _ = MapWindow::new(map, 0, 4, 3);
    }

    #[test]
    fn will_need_accepts_a_range_inside_the_map() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&[7u8; 8192]).unwrap();
        let map = Map::new(&file, 8192).unwrap();
        map.will_need(0, 8192).unwrap();
        assert_eq!(map.len(), 8192);
    }
}
