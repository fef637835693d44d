//! Where mapped bytes live on disk, so a runtime can read them in without a descriptor held.
//!
//! A view of the real disk ([`super::DiskFile::view`]) is a window of a memory map, and a map
//! outlives the descriptor it was made from (descriptors are a budget: `os.rs`). When the
//! runtime finds a view's pages cold, it reads the same file range through its own I/O (the
//! shard's io_uring), which brings the pages into the page cache before the send copies them.
//! For that it needs the file's name and, since the name may have been renamed over since the
//! map was made, the file's identity: a file opened under the name that is not this
//! (device, inode) is another file and must not be read for this view.

use std::path::PathBuf;
use std::rc::Rc;

/// A file of the real disk: its absolute name when the view was made, and what it is.
#[derive(Debug, PartialEq, Eq)]
pub struct FileIdentity {
    /// The file's absolute name (current when the view was made).
    pub path: PathBuf,
    /// The device the file lives on (`st_dev`).
    pub device: u64,
    /// The file's inode number (`st_ino`).
    pub inode: u64,
}

/// The file range under a view: `[offset, offset + len)` of `file`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRange {
    /// The file.
    pub file: Rc<FileIdentity>,
    /// The first byte's offset in the file.
    pub offset: u64,
    /// The number of bytes.
    pub len: u64,
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    use crate::disk::os::OsDisk;
    use crate::disk::{Bytes, Disk, DiskFile, OpenMode};

    #[test]
    fn views_record_their_file_range_and_follow_renames() {
        let dir = tempfile::tempdir().unwrap();
        let disk = OsDisk::new(dir.path()).unwrap();
        let file = disk.open(Path::new("seg"), OpenMode::CreateIfMissing).unwrap();
        file.write_all_at(b"0123456789", 0).unwrap();
        let metadata = std::fs::metadata(dir.path().join("seg")).unwrap();
        let view = file.view(3, 5).unwrap();
        let range = view.file_range().expect("a view of the real disk has its file");
        assert_eq!(range.file.path, disk.root().join("seg"));
        assert_eq!((range.file.device, range.file.inode), (metadata.dev(), metadata.ino()));
        assert_eq!((range.offset, range.len), (3, 5));
        let part = view.slice(1, 3).file_range().unwrap();
        assert_eq!((part.offset, part.len), (4, 2), "a slice is its own part of the file");
        assert!(Bytes::from_vec(vec![1, 2]).file_range().is_none(), "heap bytes have no file");
        // Renamed: later views name the new path, the same file.
        disk.rename(Path::new("seg"), Path::new("moved")).unwrap();
        let moved = file.view(0, 1).unwrap().file_range().unwrap();
        assert_eq!(moved.file.path, disk.root().join("moved"));
        assert_eq!(moved.file.inode, range.file.inode);
        assert_eq!(range.file.path, disk.root().join("seg"), "a view made before keeps its name");
        // Renamed over: the name is another file's now, so views record none.
        let other = disk.open(Path::new("other"), OpenMode::CreateIfMissing).unwrap();
        other.write_all_at(b"x", 0).unwrap();
        disk.rename(Path::new("other"), Path::new("moved")).unwrap();
        assert!(file.view(0, 1).unwrap().file_range().is_none());
        assert_eq!(other.view(0, 1).unwrap().file_range().unwrap().file.path, moved.file.path);
    }
}
