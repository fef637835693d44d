//! The real disk: files under a root directory, positioned I/O, memory-mapped views, and
//! group commit by tracking what each epoch dirtied.
//!
//! Every write marks its file dirty in the open epoch; creating, renaming or removing an entry
//! marks its directory dirty. [`Disk::flush_begin`] takes those sets and hands them to an
//! [`OsFlush`] that holds its own `Arc<File>` handles (so it is `Send` and can run on a blocking
//! thread): it `fdatasync`s every file, then `fsync`s every directory. Files are synced before
//! directories so a new name never becomes durable pointing at data that is not. The syncs of
//! one kind run concurrently on the disk's sync threads (`os_sync.rs`: the file system folds
//! concurrent syncs into few journal commits, so a round costs about one flush, not one per
//! file).
//!
//! Views are served from read-only shared memory maps (see `core/src/mmap.rs` for what makes them
//! sound). A file's map is created on the first view and replaced by a larger one when a view
//! needs bytes past it; the map is made with room to grow, so the active spool segment is not
//! remapped on every append.
//!
//! One disk per shard thread: the state is `Rc<RefCell<..>>`, not shared between threads.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use super::os_sync::{SyncPool, SyncTarget};
use super::{Bytes, Disk, DiskFile, Flush, OpenMode};
use crate::mmap::{Map, MapWindow};
use crate::types::Epoch;

/// The smallest mapping made for a view; later maps double, so a growing file is remapped
/// O(log size) times.
const MAP_BYTES_MIN: u64 = 1 << 20;

/// What the open epoch has dirtied, and the epoch counters.
#[derive(Debug)]
struct State {
    epoch_open: u64,
    epoch_durable: u64,
    next_file_id: u64,
    /// Files written in the open epoch, by file id.
    files: BTreeMap<u64, Arc<File>>,
    /// Directories (absolute) whose entries changed in the open epoch.
    dirs: BTreeSet<PathBuf>,
}

/// A [`Disk`] over a directory of the real file system.
#[derive(Debug)]
pub struct OsDisk {
    root: PathBuf,
    state: Rc<RefCell<State>>,
    /// Threads that run a flush round's syncs concurrently; shared with the flushes.
    sync: Arc<SyncPool>,
}

impl OsDisk {
    /// A disk rooted at `root`, which is created if missing.
    ///
    /// # Errors
    /// The OS error creating the root.
    pub fn new(root: &Path) -> io::Result<OsDisk> {
        fs::create_dir_all(root)?;
        let state = State {
            epoch_open: 1,
            epoch_durable: 0,
            next_file_id: 1,
            files: BTreeMap::new(),
            dirs: BTreeSet::new(),
        };
        Ok(OsDisk {
            root: root.to_path_buf(),
            state: Rc::new(RefCell::new(state)),
            sync: Arc::new(SyncPool::new()),
        })
    }

    /// The root directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `root/path`, refusing anything but plain relative components: the store builds paths
    /// from ids and fixed names, so `..` or an absolute path here is a bug or an attack.
    fn resolve(&self, path: &Path) -> io::Result<PathBuf> {
        let plain = path.components().all(|c| matches!(c, Component::Normal(_)));
        if !plain || path.as_os_str().is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "disk path not plain relative",
            ));
        }
        Ok(self.root.join(path))
    }

    fn mark_parent_dirty(&self, absolute: &Path) {
        if let Some(parent) = absolute.parent() {
            self.state.borrow_mut().dirs.insert(parent.to_path_buf());
        }
    }
}

impl Disk for OsDisk {
    type File = OsFile;
    type Flush = OsFlush;

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<OsFile> {
        let absolute = self.resolve(path)?;
        let existing = OpenOptions::new().read(true).write(true).open(&absolute);
        let file = match (existing, mode) {
            (Ok(file), _) => file,
            (Err(error), OpenMode::CreateIfMissing) if error.kind() == io::ErrorKind::NotFound => {
                let file =
                    OpenOptions::new().read(true).write(true).create_new(true).open(&absolute)?;
                self.mark_parent_dirty(&absolute);
                file
            }
            (Err(error), _) => return Err(error),
        };
        if file.metadata()?.is_dir() {
            return Err(io::Error::new(io::ErrorKind::IsADirectory, "a directory"));
        }
        let len = file.metadata()?.len();
        let id = {
            let mut state = self.state.borrow_mut();
            state.next_file_id += 1;
            state.next_file_id
        };
        let inner = FileInner {
            id,
            file: Arc::new(file),
            state: self.state.clone(),
            len: Cell::new(len),
            viewed_len: Cell::new(0),
            map: RefCell::new(None),
        };
        Ok(OsFile { inner: Rc::new(inner) })
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let absolute = self.resolve(path)?;
        // Walk down from the root so every directory we create marks its parent dirty.
        let mut current = self.root.clone();
        for component in path.components() {
            current.push(component);
            match fs::create_dir(&current) {
                Ok(()) => self.mark_parent_dirty(&current),
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
                Err(error) => return Err(error),
            }
        }
        debug_assert_eq!(current, absolute);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let absolute = self.resolve(path)?;
        fs::remove_file(&absolute)?;
        self.mark_parent_dirty(&absolute);
        Ok(())
    }

    fn rename(&self, source: &Path, target: &Path) -> io::Result<()> {
        let (source, target) = (self.resolve(source)?, self.resolve(target)?);
        fs::rename(&source, &target)?;
        self.mark_parent_dirty(&source);
        self.mark_parent_dirty(&target);
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let absolute = self.resolve(path)?;
        let mut names = Vec::new();
        for entry in fs::read_dir(absolute)? {
            // Names that are not UTF-8 were not made by the store; skip them.
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn exists(&self, path: &Path) -> bool {
        self.resolve(path).is_ok_and(|absolute| absolute.exists())
    }

    fn epoch_open(&self) -> Epoch {
        Epoch(self.state.borrow().epoch_open)
    }

    fn epoch_durable(&self) -> Epoch {
        Epoch(self.state.borrow().epoch_durable)
    }

    fn flush_begin(&self) -> Option<OsFlush> {
        let mut state = self.state.borrow_mut();
        if state.files.is_empty() && state.dirs.is_empty() {
            return None;
        }
        let epoch = state.epoch_open;
        state.epoch_open += 1;
        let files = std::mem::take(&mut state.files).into_values().collect();
        let dirs = std::mem::take(&mut state.dirs).into_iter().collect();
        Some(OsFlush { epoch, files, dirs, sync: self.sync.clone() })
    }

    fn flush_end(&self, epoch: Epoch) {
        let mut state = self.state.borrow_mut();
        assert!(epoch.0 < state.epoch_open, "flush_end of an epoch never closed");
        state.epoch_durable = state.epoch_durable.max(epoch.0);
    }
}

/// One flush round of the real disk: `fdatasync` each file, then `fsync` each directory, each
/// kind concurrently.
#[derive(Debug)]
pub struct OsFlush {
    epoch: u64,
    files: Vec<Arc<File>>,
    dirs: Vec<PathBuf>,
    sync: Arc<SyncPool>,
}

impl Flush for OsFlush {
    fn epoch(&self) -> Epoch {
        Epoch(self.epoch)
    }

    fn run(self) -> io::Result<()> {
        let files = self.files.into_iter().map(SyncTarget::Data).collect();
        self.sync.sync_all(files)?;
        let dirs = self.dirs.into_iter().map(SyncTarget::Dir).collect();
        self.sync.sync_all(dirs)
    }
}

/// The shared part of an [`OsFile`].
#[derive(Debug)]
struct FileInner {
    id: u64,
    file: Arc<File>,
    state: Rc<RefCell<State>>,
    /// The file's length as this process wrote it (the only writer; see `crate::mmap`).
    len: Cell<u64>,
    /// The largest end of any view handed out: the file may never shrink below it.
    viewed_len: Cell<u64>,
    map: RefCell<Option<Rc<Map>>>,
}

impl FileInner {
    fn mark_dirty(&self) {
        let mut state = self.state.borrow_mut();
        state.files.entry(self.id).or_insert_with(|| self.file.clone());
    }

    /// A map covering `[0, end)`, reusing the current one when it is large enough.
    fn map_covering(&self, end: u64) -> io::Result<Rc<Map>> {
        if let Some(map) = self.map.borrow().as_ref()
            && map.len() as u64 >= end
        {
            return Ok(map.clone());
        }
        let previous = self.map.borrow().as_ref().map_or(0, |map| map.len() as u64);
        let want = end.max(previous * 2).max(MAP_BYTES_MIN);
        let want = usize::try_from(want)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "map too large"))?;
        let map = Rc::new(Map::new(&self.file, want)?);
        *self.map.borrow_mut() = Some(map.clone());
        Ok(map)
    }
}

/// An open file of the real disk. Clones share the handle, the length and the map.
#[derive(Clone, Debug)]
pub struct OsFile {
    inner: Rc<FileInner>,
}

impl DiskFile for OsFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.inner.len.get())
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.file.read_exact_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        // Mark first: a write that fails half-way may still have changed the file.
        self.inner.mark_dirty();
        self.inner.file.write_all_at(buf, offset)?;
        let end = offset + buf.len() as u64;
        self.inner.len.set(self.inner.len.get().max(end));
        Ok(())
    }

    fn write_all_at_unsynced(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        // Not in the epoch's dirty set: the fdatasync of a later round that the file is dirty
        // in syncs these bytes too (it syncs every page of the file written before it).
        self.inner.file.write_all_at(buf, offset)?;
        let end = offset + buf.len() as u64;
        self.inner.len.set(self.inner.len.get().max(end));
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        if len < self.inner.viewed_len.get() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "refusing to truncate a file below a byte handed out as a view",
            ));
        }
        self.inner.mark_dirty();
        self.inner.file.set_len(len)?;
        self.inner.len.set(len);
        Ok(())
    }

    fn view(&self, offset: u64, len: u64) -> io::Result<Bytes> {
        let end = offset.checked_add(len).filter(|&end| end <= self.inner.len.get());
        let Some(end) = end else {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "view past the end"));
        };
        if len == 0 {
            return Ok(Bytes::from_vec(Vec::new()));
        }
        let map = self.inner.map_covering(end)?;
        let start = usize::try_from(offset).expect("below a mapped length");
        let size = usize::try_from(len).expect("below a mapped length");
        let window = MapWindow::new(map, start, size, self.inner.len.get());
        self.inner.viewed_len.set(self.inner.viewed_len.get().max(end));
        Ok(Bytes::new(Rc::new(window), 0, size))
    }

    /// madvise `WILLNEED` on the mapped range.
    fn will_need(&self, offset: u64, len: u64) -> io::Result<()> {
        let end = offset.checked_add(len).filter(|&end| end <= self.inner.len.get());
        let Some(end) = end else {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "range past the end"));
        };
        if len == 0 {
            return Ok(());
        }
        let map = self.inner.map_covering(end)?;
        let start = usize::try_from(offset).expect("below a mapped length");
        map.will_need(start, usize::try_from(len).expect("below a mapped length"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk() -> (tempfile::TempDir, OsDisk) {
        let dir = tempfile::tempdir().unwrap();
        let disk = OsDisk::new(dir.path()).unwrap();
        (dir, disk)
    }

    #[test]
    fn write_read_view_round_trip() {
        let (_dir, disk) = disk();
        disk.create_dir_all(Path::new("a/b")).unwrap();
        let file = disk.open(Path::new("a/b/f"), OpenMode::CreateIfMissing).unwrap();
        file.write_all_at(b"hello", 0).unwrap();
        file.write_all_at(b" world", 5).unwrap();
        assert_eq!(file.len().unwrap(), 11);
        let mut buf = [0u8; 5];
        file.read_exact_at(&mut buf, 6).unwrap();
        assert_eq!(&buf, b"world");
        assert_eq!(&*file.view(0, 11).unwrap(), b"hello world");
        // The file grows past the first map's view; new views see the new bytes.
        let big = vec![9u8; 3 << 20];
        file.write_all_at(&big, 11).unwrap();
        assert_eq!(&*file.view(11 + (3 << 20) - 2, 2).unwrap(), &[9, 9]);
        assert!(file.view(0, 12 + (3 << 20)).is_err());
    }

    #[test]
    fn shrinking_below_a_view_is_refused() {
        let (_dir, disk) = disk();
        let file = disk.open(Path::new("f"), OpenMode::CreateIfMissing).unwrap();
        file.write_all_at(b"0123456789", 0).unwrap();
        let view = file.view(2, 6).unwrap();
        assert!(file.set_len(7).is_err());
        file.set_len(8).unwrap();
        assert_eq!(&*view, b"234567");
    }

    #[test]
    fn epochs_track_dirty_files_and_dirs() {
        let (_dir, disk) = disk();
        assert!(disk.flush_begin().is_none());
        assert_eq!(disk.epoch_open(), Epoch(1));
        let file = disk.open(Path::new("f"), OpenMode::CreateIfMissing).unwrap();
        let flush = disk.flush_begin().expect("the new entry dirtied the root");
        assert_eq!(flush.files.len(), 0);
        assert_eq!(flush.dirs.len(), 1);
        assert_eq!(disk.epoch_open(), Epoch(2));
        file.write_all_at(b"x", 0).unwrap();
        let second = disk.flush_begin().unwrap();
        assert_eq!(second.files.len(), 1);
        let epoch = second.epoch();
        std::thread::spawn(move || second.run()).join().unwrap().unwrap();
        disk.flush_end(epoch);
        assert_eq!(disk.epoch_durable(), Epoch(2));
        flush.run().unwrap();
        disk.flush_end(Epoch(1));
        assert_eq!(disk.epoch_durable(), Epoch(2));
    }

    #[test]
    fn unsynced_writes_leave_the_file_clean() {
        let (_dir, disk) = disk();
        let file = disk.open(Path::new("f"), OpenMode::CreateIfMissing).unwrap();
        let _ = disk.flush_begin().expect("the new entry dirtied the root");
        file.write_all_at_unsynced(b"abc", 0).unwrap();
        assert_eq!(file.len().unwrap(), 3);
        assert_eq!(&*file.view(0, 3).unwrap(), b"abc");
        assert!(disk.flush_begin().is_none(), "an unsynced write dirties nothing");
        file.write_all_at(b"d", 3).unwrap();
        assert_eq!(disk.flush_begin().unwrap().files.len(), 1);
    }

    #[test]
    fn paths_must_be_plain_relative() {
        let (_dir, disk) = disk();
        assert!(disk.open(Path::new("../x"), OpenMode::CreateIfMissing).is_err());
        assert!(disk.open(Path::new("/etc/passwd"), OpenMode::Existing).is_err());
        assert!(disk.create_dir_all(Path::new("a/../../b")).is_err());
        assert!(!disk.exists(Path::new("..")));
    }

    #[test]
    fn list_rename_remove() {
        let (_dir, disk) = disk();
        disk.create_dir_all(Path::new("d")).unwrap();
        disk.open(Path::new("d/b"), OpenMode::CreateIfMissing).unwrap();
        disk.open(Path::new("d/a"), OpenMode::CreateIfMissing).unwrap();
        assert_eq!(disk.list_dir(Path::new("d")).unwrap(), vec!["a", "b"]);
        disk.rename(Path::new("d/a"), Path::new("d/c")).unwrap();
        disk.remove_file(Path::new("d/b")).unwrap();
        assert_eq!(disk.list_dir(Path::new("d")).unwrap(), vec!["c"]);
        assert!(disk.open(Path::new("d/a"), OpenMode::Existing).is_err());
    }
}
