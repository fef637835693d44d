//! One image of the simulated disk: a namespace (directories, file names → inodes) and the
//! contents of every inode, plus the operations that change it.
//!
//! The simulated disk keeps two images, *live* (what reads see) and *durable* (what survives a
//! crash), and a list of pending [`Op`]s that turned the durable image into the live one. Every
//! mutation is first checked and applied to the live image by [`Image::apply`]; the same call
//! replays pending operations onto the durable image at a flush or a crash, where an operation
//! that no longer fits (its parent directory was lost, its source was never created) is skipped,
//! as the real disk would leave it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// The largest file the simulated disk holds: a runaway writer gets `StorageFull`, not an
/// out-of-memory abort of the whole test binary.
pub const SIM_FILE_BYTES_MAX: u64 = 1 << 30;

/// The simulated sector: writes are atomic per sector and torn only at its boundaries.
pub const SECTOR_BYTES: usize = 512;

/// An inode number. Open files refer to inodes, so a renamed or removed file stays writable
/// through a handle opened before, as on a real file system.
pub type InodeId = u64;

/// One mutation of an image, in the order it was made.
#[derive(Clone, Debug)]
pub enum Op {
    /// Bytes written at an offset of an inode.
    Write {
        /// The inode written.
        inode: InodeId,
        /// Where the bytes start.
        offset: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// An inode truncated or extended with zeros.
    SetLen {
        /// The inode resized.
        inode: InodeId,
        /// Its new length.
        len: u64,
    },
    /// A new directory entry naming a new, empty inode.
    Create {
        /// The entry.
        path: PathBuf,
        /// The inode it names.
        inode: InodeId,
    },
    /// A new, empty directory.
    Mkdir {
        /// The directory.
        path: PathBuf,
    },
    /// A file's directory entry removed.
    Remove {
        /// The entry.
        path: PathBuf,
    },
    /// A file or a directory moved, replacing a file of the target name.
    Rename {
        /// The old name.
        source: PathBuf,
        /// The new name.
        target: PathBuf,
    },
}

impl Op {
    /// The op with only the first `kept` bytes of a write, for a write torn at a sector
    /// boundary. Other ops are returned unchanged.
    #[must_use]
    pub fn truncated_write(&self, kept: usize) -> Op {
        match self {
            Op::Write { inode, offset, data } => {
                Op::Write { inode: *inode, offset: *offset, data: data[..kept].to_vec() }
            }
            other => other.clone(),
        }
    }

    /// The absolute sector boundaries strictly inside a write, as byte counts from its start:
    /// the places where a crash may tear it. Empty for a write within one sector and for other
    /// ops.
    #[must_use]
    pub fn tear_points(&self) -> Vec<usize> {
        let Op::Write { offset, data, .. } = self else {
            return Vec::new();
        };
        let end = offset + data.len() as u64;
        let sector = SECTOR_BYTES as u64;
        let first = (offset / sector + 1) * sector;
        (first..end)
            .step_by(SECTOR_BYTES)
            .map(|boundary| usize::try_from(boundary - offset).expect("bounded by data.len()"))
            .collect()
    }
}

/// A namespace and the contents of the inodes it may name.
#[derive(Clone, Debug)]
pub struct Image {
    /// Every directory, the root (the empty path) included.
    dirs: BTreeSet<PathBuf>,
    /// Every file's name and inode.
    files: BTreeMap<PathBuf, InodeId>,
    /// The contents of every inode ever written in this image (named or not).
    /// Shared between images until one of them writes (copy on write): a crash copies the
    /// durable image many times, and most of its files are never written again.
    data: HashMap<InodeId, Arc<Vec<u8>>>,
}

impl Default for Image {
    fn default() -> Image {
        Image {
            dirs: BTreeSet::from([PathBuf::new()]),
            files: BTreeMap::new(),
            data: HashMap::new(),
        }
    }
}

/// Checks that a path stays under the root and returns it in normal form: relative, no `.`,
/// no `..`. The store builds paths from ids; anything else is a bug the sim reports.
///
/// # Errors
/// `InvalidInput` for an absolute path or one with `..`.
pub fn normalize(path: &Path) -> io::Result<PathBuf> {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => normal.push(name),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("sim disk: path {} leaves the root", path.display()),
                ));
            }
        }
    }
    Ok(normal)
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("sim disk: {} not found", path.display()))
}

fn to_index(value: u64) -> io::Result<usize> {
    if value > SIM_FILE_BYTES_MAX {
        return Err(io::Error::new(io::ErrorKind::StorageFull, "sim disk: file too large"));
    }
    Ok(usize::try_from(value).expect("SIM_FILE_BYTES_MAX fits usize"))
}

impl Image {
    /// The inode a file name refers to.
    #[must_use]
    pub fn inode(&self, path: &Path) -> Option<InodeId> {
        self.files.get(path).copied()
    }

    /// True when `path` names a directory.
    #[must_use]
    pub fn is_dir(&self, path: &Path) -> bool {
        self.dirs.contains(path)
    }

    /// The contents of an inode (empty if it was never written).
    #[must_use]
    pub fn contents(&self, inode: InodeId) -> &[u8] {
        self.data.get(&inode).map_or(&[], |bytes| bytes.as_slice())
    }

    /// The sorted names of the entries directly under a directory.
    ///
    /// # Errors
    /// `NotFound` when `path` is not a directory.
    pub fn list(&self, path: &Path) -> io::Result<Vec<String>> {
        if !self.is_dir(path) {
            return Err(not_found(path));
        }
        let children = self.dirs.iter().chain(self.files.keys());
        let mut names: Vec<String> = children
            .filter(|child| child.as_os_str() != "" && child.parent() == Some(path))
            .filter_map(|child| child.file_name().map(|name| name.to_string_lossy().into_owned()))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Applies one operation, or explains why it does not fit this image (then nothing
    /// changed).
    ///
    /// # Errors
    /// `NotFound` for a missing parent or source, `AlreadyExists` for a name taken by the
    /// other kind of entry, `StorageFull` past [`SIM_FILE_BYTES_MAX`].
    pub fn apply(&mut self, op: &Op) -> io::Result<()> {
        match op {
            Op::Write { inode, offset, data } => self.write(*inode, *offset, data),
            Op::SetLen { inode, len } => {
                let len = to_index(*len)?;
                Arc::make_mut(self.data.entry(*inode).or_default()).resize(len, 0);
                Ok(())
            }
            Op::Create { path, inode } => {
                self.check_new_name(path)?;
                self.files.insert(path.clone(), *inode);
                self.data.entry(*inode).or_default();
                Ok(())
            }
            Op::Mkdir { path } => {
                self.check_new_name(path)?;
                if self.files.contains_key(path) {
                    return Err(io::Error::new(io::ErrorKind::AlreadyExists, "sim disk: a file"));
                }
                self.dirs.insert(path.clone());
                Ok(())
            }
            Op::Remove { path } => self.files.remove(path).map(drop).ok_or_else(|| not_found(path)),
            Op::Rename { source, target } => self.rename(source, target),
        }
    }

    fn write(&mut self, inode: InodeId, offset: u64, data: &[u8]) -> io::Result<()> {
        let end = to_index(offset + data.len() as u64)?;
        let start = to_index(offset)?;
        let contents = Arc::make_mut(self.data.entry(inode).or_default());
        if contents.len() < end {
            contents.resize(end, 0);
        }
        contents[start..end].copy_from_slice(data);
        Ok(())
    }

    /// A new entry needs an existing parent directory and must not hide a directory.
    fn check_new_name(&self, path: &Path) -> io::Result<()> {
        let parent = path.parent().ok_or_else(|| not_found(path))?;
        if !self.is_dir(parent) {
            return Err(not_found(parent));
        }
        if self.is_dir(path) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "sim disk: a directory"));
        }
        Ok(())
    }

    fn rename(&mut self, source: &Path, target: &Path) -> io::Result<()> {
        if source == target {
            return if self.files.contains_key(source) || self.is_dir(source) {
                Ok(())
            } else {
                Err(not_found(source))
            };
        }
        if let Some(inode) = self.files.get(source).copied() {
            self.check_new_name(target)?;
            self.files.remove(source);
            self.files.insert(target.to_path_buf(), inode);
            return Ok(());
        }
        if !self.is_dir(source) || source.as_os_str().is_empty() {
            return Err(not_found(source));
        }
        self.rename_dir(source, target)
    }

    /// Moves a directory and everything under it. POSIX: the target may be missing or an
    /// empty directory, never a file, never inside the source.
    fn rename_dir(&mut self, source: &Path, target: &Path) -> io::Result<()> {
        let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, why.to_owned());
        if target.starts_with(source) {
            return Err(invalid("sim disk: directory moved into itself"));
        }
        if self.files.contains_key(target) {
            return Err(invalid("sim disk: directory renamed over a file"));
        }
        let parent = target.parent().ok_or_else(|| not_found(target))?;
        if !self.is_dir(parent) {
            return Err(not_found(parent));
        }
        if self.is_dir(target) && !self.list(target)?.is_empty() {
            return Err(io::Error::new(io::ErrorKind::DirectoryNotEmpty, "sim disk: target"));
        }
        let moved = |path: &Path| target.join(path.strip_prefix(source).expect("under source"));
        let dirs: Vec<PathBuf> =
            self.dirs.iter().filter(|d| d.starts_with(source)).cloned().collect();
        for dir in dirs {
            self.dirs.remove(&dir);
            self.dirs.insert(moved(&dir));
        }
        let files: Vec<(PathBuf, InodeId)> = self
            .files
            .iter()
            .filter(|(path, _)| path.starts_with(source))
            .map(|(path, inode)| (path.clone(), *inode))
            .collect();
        for (path, inode) in files {
            self.files.remove(&path);
            self.files.insert(moved(&path), inode);
        }
        Ok(())
    }

    /// A file name of an inode, for diagnostics.
    #[must_use]
    pub fn name_of(&self, inode: InodeId) -> Option<&Path> {
        self.files.iter().find(|(_, i)| **i == inode).map(|(path, _)| path.as_path())
    }

    /// The file an op changes (its name in this image, or `inode N` if it has none), or the
    /// entry it creates, removes or renames (the source, for a rename).
    #[must_use]
    pub fn path_of(&self, op: &Op) -> PathBuf {
        let named = |inode: InodeId| {
            self.name_of(inode)
                .map_or_else(|| PathBuf::from(format!("inode {inode}")), Path::to_path_buf)
        };
        match op {
            Op::Write { inode, .. } | Op::SetLen { inode, .. } => named(*inode),
            Op::Create { path, .. } | Op::Mkdir { path } | Op::Remove { path } => path.clone(),
            Op::Rename { source, .. } => source.clone(),
        }
    }

    /// One line describing an op, naming inodes by their file name in this image.
    #[must_use]
    pub fn describe(&self, op: &Op) -> String {
        let name = |inode: &InodeId| {
            self.name_of(*inode)
                .map_or_else(|| format!("inode {inode}"), |p| p.display().to_string())
        };
        match op {
            Op::Write { inode, offset, data } => {
                format!("write {} [{offset}, {})", name(inode), offset + data.len() as u64)
            }
            Op::SetLen { inode, len } => format!("set_len {} {len}", name(inode)),
            Op::Create { path, .. } => format!("create {}", path.display()),
            Op::Mkdir { path } => format!("mkdir {}", path.display()),
            Op::Remove { path } => format!("remove {}", path.display()),
            Op::Rename { source, target } => {
                format!("rename {} -> {}", source.display(), target.display())
            }
        }
    }

    /// Every file name with its inode, sorted by name.
    pub fn files(&self) -> impl Iterator<Item = (&Path, InodeId)> {
        self.files.iter().map(|(path, inode)| (path.as_path(), *inode))
    }

    /// The contents of an inode, to damage in place (media corruption, not a write).
    pub fn contents_mut(&mut self, inode: InodeId) -> &mut Vec<u8> {
        Arc::make_mut(self.data.entry(inode).or_default())
    }

    /// Forgets the contents of inodes no name refers to: after a crash nothing can reach them.
    pub fn collect_garbage(&mut self) {
        let named: BTreeSet<InodeId> = self.files.values().copied().collect();
        self.data.retain(|inode, _| named.contains(inode));
    }
}
