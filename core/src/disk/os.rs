//! The real disk: files under a root directory, positioned I/O, memory-mapped views, and
//! group commit by tracking what each epoch dirtied.
//!
//! Every write marks its file dirty in the open epoch; creating, renaming or removing an entry
//! marks its directory dirty. [`Disk::flush_begin`] takes those sets and hands them to an
//! [`OsFlush`] that holds its own `Arc<Handle>` handles (so it is `Send` and can run on a blocking
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
//! Descriptors are a budget (issue 7): an idle open store must not hold one per file. A file's
//! OS handle is opened when an operation needs it and closed again by a later
//! [`Disk::flush_begin`] once the rounds of [`HANDLE_IDLE_MS`] passed without using it (so a
//! store used every few rounds keeps its few handles instead of opening and closing them for
//! every delivery, and an idle one holds none: the periodic round runs even with nothing to
//! sync), or at once by [`OsDisk::release_handles`]. A map outlives its descriptor, so a view
//! needs a handle only while a map is made, and a round's sync holds handles of its own.
//! A released file is reopened by name, so the disk keeps each open file's name current across
//! renames; a file whose name was removed or renamed over keeps its handle for good (it cannot
//! be found again), and a reopen that finds another file under the name is refused.
//! A view records its file's current name and (device, inode) (`origin.rs`), so the runtime can
//! read a cold view's range in without a descriptor held for it.
//!
//! One disk per shard thread: the state is `Rc<RefCell<..>>`, not shared between threads.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::os_sync::{SyncPool, SyncTarget};
pub use super::os_sync::{observe_syncs, observed_sync};
use super::{Bytes, Disk, DiskFile, FileIdentity, Flush, FlushTargets, OpenMode};
use crate::limits::HANDLE_IDLE_MS;
use crate::mmap::{Map, MapWindow};
use crate::types::Epoch;

/// Mode of every file the store creates: mail and its indexes are the owner's alone.
const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode of every directory the store creates.
const PRIVATE_DIR_MODE: u32 = 0o700;

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
    files: BTreeMap<u64, Arc<Handle>>,
    /// Directories (absolute) whose entries changed in the open epoch.
    dirs: BTreeSet<PathBuf>,
    /// Files whose handle was opened since the last release.
    handles_open: Vec<Weak<FileInner>>,
    /// Every open file by its current absolute name, to follow renames and removals.
    by_path: HashMap<PathBuf, Vec<Weak<FileInner>>>,
    /// Handles opened again after a release (for tests and diagnostics).
    reopens: u64,
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
    /// A disk rooted at `root`, which is created (owner-only) if missing.
    ///
    /// # Errors
    /// The OS error creating the root.
    pub fn new(root: &Path) -> io::Result<OsDisk> {
        fs::DirBuilder::new().recursive(true).mode(PRIVATE_DIR_MODE).create(root)?;
        let state = State {
            epoch_open: 1,
            epoch_durable: 0,
            next_file_id: 1,
            files: BTreeMap::new(),
            dirs: BTreeSet::new(),
            handles_open: Vec::new(),
            by_path: HashMap::new(),
            reopens: 0,
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

    /// Closes the OS handle of every file that has one (and can be found again by name): the
    /// next operation that needs it reopens it.
    pub fn release_handles(&self) {
        self.release(false);
    }

    /// Closes the handles that every call for [`HANDLE_IDLE_MS`] found unused since the call
    /// before (`keep_used`), or all of them.
    fn release(&self, keep_used: bool) {
        let opened = std::mem::take(&mut self.state.borrow_mut().handles_open);
        let mut kept = Vec::new();
        let now = std::time::Instant::now();
        let idle_max = std::time::Duration::from_millis(HANDLE_IDLE_MS);
        for inner in opened.iter().filter_map(Weak::upgrade) {
            if inner.orphaned.get() || inner.handle.borrow().is_none() {
                continue;
            }
            let keep = if !keep_used {
                false
            } else if inner.used.replace(false) {
                inner.idle_since.set(None);
                true
            } else {
                let since = inner.idle_since.get().unwrap_or(now);
                inner.idle_since.set(Some(since));
                now.duration_since(since) < idle_max
            };
            if keep {
                kept.push(Rc::downgrade(&inner));
            } else {
                inner.idle_since.set(None);
                inner.handle.borrow_mut().take();
            }
        }
        self.state.borrow_mut().handles_open.extend(kept);
    }

    /// How many times a released handle was opened again.
    #[must_use]
    pub fn reopens(&self) -> u64 {
        self.state.borrow().reopens
    }

    /// The open files now named `absolute`.
    fn files_named(&self, absolute: &Path) -> Vec<Rc<FileInner>> {
        let state = self.state.borrow();
        state
            .by_path
            .get(absolute)
            .map_or_else(Vec::new, |files| files.iter().filter_map(Weak::upgrade).collect())
    }

    /// The name `absolute` no longer leads to these files: they keep their handle for good (a
    /// removed or replaced file cannot be reopened), or, without one, refuse further I/O.
    fn orphan(&self, absolute: &Path) {
        for inner in self.files_named(absolute) {
            inner.orphaned.set(true);
        }
        self.state.borrow_mut().by_path.remove(absolute);
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
                // Mail is private: every file the store makes is owner-only, whatever the
                // umask (which can only remove bits).
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(PRIVATE_FILE_MODE)
                    .open(&absolute)?;
                self.mark_parent_dirty(&absolute);
                file
            }
            (Err(error), _) => return Err(error),
        };
        if file.metadata()?.is_dir() {
            return Err(io::Error::new(io::ErrorKind::IsADirectory, "a directory"));
        }
        let metadata = file.metadata()?;
        let id = {
            let mut state = self.state.borrow_mut();
            state.next_file_id += 1;
            state.next_file_id
        };
        let inner = Rc::new(FileInner {
            id,
            handle: RefCell::new(Some(Arc::new(Handle::new(file)))),
            path: RefCell::new(absolute.clone()),
            identity: (metadata.dev(), metadata.ino()),
            orphaned: Cell::new(false),
            used: Cell::new(true),
            idle_since: Cell::new(None),
            state: self.state.clone(),
            len: Cell::new(metadata.len()),
            viewed_len: Cell::new(0),
            map: RefCell::new(None),
            origin: RefCell::new(None),
        });
        {
            let mut state = self.state.borrow_mut();
            state.handles_open.push(Rc::downgrade(&inner));
            state.by_path.entry(absolute).or_default().push(Rc::downgrade(&inner));
        }
        Ok(OsFile { inner })
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let absolute = self.resolve(path)?;
        // Walk down from the root so every directory we create marks its parent dirty.
        let mut current = self.root.clone();
        for component in path.components() {
            current.push(component);
            match fs::DirBuilder::new().mode(PRIVATE_DIR_MODE).create(&current) {
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
        self.orphan(&absolute);
        self.mark_parent_dirty(&absolute);
        Ok(())
    }

    fn rename(&self, source: &Path, target: &Path) -> io::Result<()> {
        let (source, target) = (self.resolve(source)?, self.resolve(target)?);
        fs::rename(&source, &target)?;
        if source != target {
            self.orphan(&target);
            let moved = self.files_named(&source);
            for inner in &moved {
                *inner.path.borrow_mut() = target.clone();
                // Views made from now on record the new name.
                inner.origin.borrow_mut().take();
            }
            let mut state = self.state.borrow_mut();
            state.by_path.remove(&source);
            if !moved.is_empty() {
                state.by_path.insert(target.clone(), moved.iter().map(Rc::downgrade).collect());
            }
        }
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
        let flush = {
            let mut state = self.state.borrow_mut();
            if state.files.is_empty() && state.dirs.is_empty() {
                None
            } else {
                let epoch = state.epoch_open;
                state.epoch_open += 1;
                let files = std::mem::take(&mut state.files).into_values().collect();
                let dirs = std::mem::take(&mut state.dirs).into_iter().collect();
                Some(OsFlush { epoch, files, dirs, sync: self.sync.clone() })
            }
        };
        // Handles idle for a whole round interval go (the round holds its own for the files it
        // syncs): an idle store holds no descriptor, a busy one does not reopen every round.
        self.release(true);
        flush
    }

    fn sync_files(&self, files: &[OsFile]) -> io::Result<super::SyncJob> {
        let files = files.iter().map(|file| handle(&file.inner)).collect::<io::Result<_>>()?;
        let flush = OsFlush { epoch: 0, files, dirs: Vec::new(), sync: self.sync.clone() };
        Ok(Box::new(move || flush.run()))
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
    files: Vec<Arc<Handle>>,
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

    /// Duplicates of the files' handles (`F_DUPFD_CLOEXEC`) and each directory opened. Never
    /// waits: out of descriptors, it fails and the runtime runs the round with [`Flush::run`],
    /// whose syncs need no new descriptor for files and wait one out for directories.
    fn targets(&self) -> Option<io::Result<FlushTargets>> {
        let duplicated = |handle: &Arc<Handle>| handle.as_fd().try_clone_to_owned();
        let opened = |dir: &PathBuf| File::open(dir).map(OwnedFd::from);
        let targets = || {
            let files = self.files.iter().map(duplicated).collect::<io::Result<Vec<_>>>()?;
            let dirs = self.dirs.iter().map(opened).collect::<io::Result<Vec<_>>>()?;
            Ok(FlushTargets { files, dirs })
        };
        Some(targets())
    }
}

/// The shared part of an [`OsFile`].
#[derive(Debug)]
struct FileInner {
    id: u64,
    /// The OS handle; `None` once released (reopened by `path` when next needed).
    handle: RefCell<Option<Arc<Handle>>>,
    /// The file's current absolute name (renames move it).
    path: RefCell<PathBuf>,
    /// Device and inode: a reopen must find this same file.
    identity: (u64, u64),
    /// Its name was removed or renamed over: the handle is never released.
    orphaned: Cell<bool>,
    /// The handle was used since the last `flush_begin` (see `OsDisk::release`).
    used: Cell<bool>,
    /// When a `flush_begin` first found the handle unused (none while it is used).
    idle_since: Cell<Option<std::time::Instant>>,
    state: Rc<RefCell<State>>,
    /// The file's length as this process wrote it (the only writer; see `crate::mmap`).
    len: Cell<u64>,
    /// The largest end of any view handed out: the file may never shrink below it.
    viewed_len: Cell<u64>,
    map: RefCell<Option<Rc<Map>>>,
    /// What views record as their file (`origin.rs`), made again after a rename.
    origin: RefCell<Option<Rc<FileIdentity>>>,
}

impl Drop for FileInner {
    fn drop(&mut self) {
        let path = self.path.get_mut();
        if let Ok(mut state) = self.state.try_borrow_mut()
            && let Some(files) = state.by_path.get_mut(path.as_path())
        {
            files.retain(|file| file.strong_count() > 0);
            if files.is_empty() {
                state.by_path.remove(path.as_path());
            }
        }
    }
}

/// Store files held open by every [`OsDisk`] of the process: what the runtime's open-files
/// budget counts (an idle store holds none, a store written in the current round one per file
/// it touched), instead of an estimate per open store.
static OPEN_HANDLES: AtomicUsize = AtomicUsize::new(0);

/// The number of store files this process holds open now ([`OPEN_HANDLES`]).
#[must_use]
pub fn open_handles() -> usize {
    OPEN_HANDLES.load(Ordering::Relaxed)
}

/// An open store file, counted in [`OPEN_HANDLES`] from open to close.
#[derive(Debug)]
pub(crate) struct Handle(File);

impl Handle {
    pub(crate) fn new(file: File) -> Handle {
        OPEN_HANDLES.fetch_add(1, Ordering::Relaxed);
        Handle(file)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        OPEN_HANDLES.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::ops::Deref for Handle {
    type Target = File;
    fn deref(&self) -> &File {
        &self.0
    }
}

/// The OS handle of `inner`, reopened by name if it was released.
fn handle(inner: &Rc<FileInner>) -> io::Result<Arc<Handle>> {
    inner.used.set(true);
    if let Some(file) = inner.handle.borrow().as_ref() {
        return Ok(file.clone());
    }
    if inner.orphaned.get() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "file removed or replaced"));
    }
    let path = inner.path.borrow().clone();
    let file = OpenOptions::new().read(true).write(true).open(&path)?;
    let metadata = file.metadata()?;
    if (metadata.dev(), metadata.ino()) != inner.identity {
        return Err(io::Error::other(format!("{} is another file now", path.display())));
    }
    let file = Arc::new(Handle::new(file));
    *inner.handle.borrow_mut() = Some(file.clone());
    let mut state = inner.state.borrow_mut();
    state.reopens += 1;
    state.handles_open.push(Rc::downgrade(inner));
    Ok(file)
}

impl FileInner {
    /// The file's name and identity for its views; `None` once the name is gone (removed or
    /// renamed over), since nothing could be read under it.
    fn origin(&self) -> Option<Rc<FileIdentity>> {
        if self.orphaned.get() {
            return None;
        }
        // Made once per name: a rename clears it (`OsDisk::rename`), so a view costs a clone of
        // the `Rc`, not a comparison of paths.
        let mut origin = self.origin.borrow_mut();
        let (device, inode) = self.identity;
        let made = origin.get_or_insert_with(|| {
            Rc::new(FileIdentity { path: self.path.borrow().clone(), device, inode })
        });
        Some(made.clone())
    }

    fn mark_dirty(&self, file: &Arc<Handle>) {
        let mut state = self.state.borrow_mut();
        state.files.entry(self.id).or_insert_with(|| file.clone());
    }
}

/// A map covering `[0, end)`, reusing the current one when it is large enough. A handle
/// opened only to make the map is closed again at once: the map does not need it.
fn map_covering(inner: &Rc<FileInner>, end: u64) -> io::Result<Rc<Map>> {
    if let Some(map) = inner.map.borrow().as_ref()
        && map.len() as u64 >= end
    {
        return Ok(map.clone());
    }
    let previous = inner.map.borrow().as_ref().map_or(0, |map| map.len() as u64);
    let want = end.max(previous * 2).max(MAP_BYTES_MIN);
    let want = usize::try_from(want)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "map too large"))?;
    let was_open = inner.handle.borrow().is_some();
    let map = Rc::new(Map::new(&*handle(inner)?, want)?);
    if !was_open && !inner.orphaned.get() {
        inner.handle.borrow_mut().take();
    }
    *inner.map.borrow_mut() = Some(map.clone());
    Ok(map)
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
        handle(&self.inner)?.read_exact_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let file = handle(&self.inner)?;
        // Mark first: a write that fails half-way may still have changed the file.
        self.inner.mark_dirty(&file);
        file.write_all_at(buf, offset)?;
        let end = offset + buf.len() as u64;
        self.inner.len.set(self.inner.len.get().max(end));
        Ok(())
    }

    fn write_all_at_unsynced(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        // Not in the epoch's dirty set: the fdatasync of a later round that the file is dirty
        // in syncs these bytes too (it syncs every page of the file written before it, through
        // whichever handle: it syncs the inode).
        handle(&self.inner)?.write_all_at(buf, offset)?;
        let end = offset + buf.len() as u64;
        self.inner.len.set(self.inner.len.get().max(end));
        Ok(())
    }

    fn mark_dirty(&self) -> io::Result<()> {
        let file = handle(&self.inner)?;
        self.inner.mark_dirty(&file);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        if len < self.inner.viewed_len.get() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "refusing to truncate a file below a byte handed out as a view",
            ));
        }
        let file = handle(&self.inner)?;
        self.inner.mark_dirty(&file);
        file.set_len(len)?;
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
        let map = map_covering(&self.inner, end)?;
        let start = usize::try_from(offset).expect("below a mapped length");
        let size = usize::try_from(len).expect("below a mapped length");
        let window = MapWindow::new(map, start, size, self.inner.len.get());
        self.inner.viewed_len.set(self.inner.viewed_len.get().max(end));
        let bytes = Bytes::new(Rc::new(window), 0, size);
        // The window's first byte is the file's byte `offset`.
        Ok(match self.inner.origin() {
            Some(origin) => bytes.with_origin(origin, offset),
            None => bytes,
        })
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
        let map = map_covering(&self.inner, end)?;
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
    fn released_handles_reopen_by_their_current_name() {
        let (dir, disk) = disk();
        let file = disk.open(Path::new("a"), OpenMode::CreateIfMissing).unwrap();
        file.write_all_at(b"one", 0).unwrap();
        let view = file.view(0, 3).unwrap();
        let _ = disk.flush_begin();
        assert!(file.inner.handle.borrow().is_some(), "used in this round: kept");
        let _ = disk.flush_begin();
        assert!(file.inner.handle.borrow().is_some(), "unused since: kept for a while");
        std::thread::sleep(std::time::Duration::from_millis(HANDLE_IDLE_MS));
        let _ = disk.flush_begin();
        assert!(file.inner.handle.borrow().is_none(), "idle for HANDLE_IDLE_MS: released");
        assert_eq!(&*view, b"one", "a view outlives the handle");
        disk.rename(Path::new("a"), Path::new("b")).unwrap();
        file.write_all_at(b"two", 3).unwrap();
        assert_eq!(disk.reopens(), 1);
        assert_eq!(std::fs::read(dir.path().join("b")).unwrap(), b"onetwo");
        // A view past the map made without a handle keeps none.
        disk.release_handles();
        let big = vec![7u8; (MAP_BYTES_MIN as usize) + 10];
        file.write_all_at(&big, 6).unwrap();
        disk.release_handles();
        assert_eq!(&*file.view(6 + MAP_BYTES_MIN, 2).unwrap(), &[7, 7]);
        assert!(file.inner.handle.borrow().is_none(), "mapping needs no lasting handle");
        // A file renamed over while its handle is open keeps it for good.
        let old = disk.open(Path::new("c"), OpenMode::CreateIfMissing).unwrap();
        old.write_all_at(b"old", 0).unwrap();
        disk.rename(Path::new("b"), Path::new("c")).unwrap();
        disk.release_handles();
        let mut buf = [0u8; 3];
        old.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"old", "still the replaced file, never the new one named c");
        file.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"one", "the renamed file found under its new name");
        // A removed file whose handle was released cannot be reopened (it is gone).
        disk.release_handles();
        disk.remove_file(Path::new("c")).unwrap();
        assert!(file.read_exact_at(&mut buf, 0).is_err());
    }

    #[test]
    fn a_reopen_that_finds_another_file_is_refused() {
        let (dir, disk) = disk();
        let file = disk.open(Path::new("a"), OpenMode::CreateIfMissing).unwrap();
        disk.release_handles();
        // Replaced behind the disk's back (no process but the lock holder should do this).
        // (Made before the old one goes, so it cannot reuse the old inode number.)
        std::fs::write(dir.path().join("a.new"), b"impostor").unwrap();
        std::fs::rename(dir.path().join("a.new"), dir.path().join("a")).unwrap();
        assert!(file.write_all_at(b"x", 0).is_err());
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"impostor");
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
    fn files_and_directories_are_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        let disk = OsDisk::new(&root).unwrap();
        disk.create_dir_all(Path::new("users/ab/alice")).unwrap();
        disk.open(Path::new("users/ab/alice/spool.0"), OpenMode::CreateIfMissing).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        for d in ["users", "users/ab", "users/ab/alice"] {
            assert_eq!(mode(&root.join(d)), 0o700, "{d}");
        }
        assert_eq!(mode(&root.join("users/ab/alice/spool.0")), 0o600);
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
