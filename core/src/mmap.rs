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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

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
