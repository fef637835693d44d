//! Replay: the chain of batches from the header's start, applied onto the files by name.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use super::format::{
    HEADER_BYTES, KIND_FORGET, KIND_WRITE, Mark, Record, SECTOR, is_wrap, pad, read_batch,
    read_header, records, write_header,
};
use super::sync_now;
use crate::disk::{Disk, DiskFile, OpenMode};

/// What replay found in a journal (for tests and the server's log).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Batches read (wrap batches included).
    pub batches: u64,
    /// Records applied (records of files that no longer exist are skipped, not counted).
    pub records: u64,
}

/// Replays the chain onto the files and syncs them; the next seq. A journal without a whole
/// header replays nothing. Two passes: the first finds the chain and where each path was last
/// forgotten, the second applies every write and length change not voided by a later forget
/// record of its path.
pub(super) fn replay<D: Disk>(inner: &D, journal: &D::File) -> io::Result<(u64, Replayed)> {
    let Some((nonce, start)) = read_header(journal)? else {
        return Ok((1, Replayed::default()));
    };
    // A chain never holds more batches than the file has sectors: a loop bound.
    let most = journal.len()? / SECTOR + 1;
    let mut chain: Vec<u64> = Vec::new();
    let mut forgotten: HashMap<String, (usize, usize)> = HashMap::new();
    let mut at = start.offset;
    while (chain.len() as u64) < most {
        let seq = start.seq + chain.len() as u64;
        let Some(batch) = read_batch(journal, nonce, at, seq)? else { break };
        for (index, record) in records(&batch)?.iter().enumerate() {
            if record.kind == KIND_FORGET {
                forgotten.insert(record.path.to_owned(), (chain.len(), index));
            }
        }
        chain.push(at);
        at = if is_wrap(&batch) { HEADER_BYTES } else { pad(at + batch.len() as u64) };
    }
    let mut replayed = Replayed { batches: chain.len() as u64, records: 0 };
    let mut touched: HashMap<PathBuf, D::File> = HashMap::new();
    for (number, &at) in chain.iter().enumerate() {
        let seq = start.seq + number as u64;
        let batch = read_batch(journal, nonce, at, seq)?.ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "journal: a batch changed during replay")
        })?;
        for (index, record) in records(&batch)?.into_iter().enumerate() {
            let voided = forgotten.get(record.path).is_some_and(|&last| (number, index) <= last);
            if !voided && apply(inner, &record, &mut touched)? {
                replayed.records += 1;
            }
        }
    }
    for file in touched.values() {
        file.mark_dirty()?;
    }
    sync_now(inner)?;
    Ok((start.seq + chain.len() as u64, replayed))
}

/// Applies a write or length change to its file; false when there is nothing to apply (a
/// forget record, or a file that does not exist: its creation never became durable, so
/// neither did the round that wrote it).
fn apply<D: Disk>(
    inner: &D,
    record: &Record<'_>,
    touched: &mut HashMap<PathBuf, D::File>,
) -> io::Result<bool> {
    if record.kind == KIND_FORGET {
        return Ok(false);
    }
    let path = PathBuf::from(record.path);
    let file = match touched.get(&path) {
        Some(file) => file.clone(),
        None => match inner.open(&path, OpenMode::Existing) {
            Ok(file) => touched.entry(path).or_insert(file).clone(),
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(error) => return Err(error),
        },
    };
    match record.kind {
        KIND_WRITE => file.write_all_at_unsynced(record.data, record.offset)?,
        _ => file.set_len(record.offset)?,
    }
    Ok(true)
}

/// Replays every `journal/*.wal` under `inner`'s root onto the files and empties each: what
/// must run before any store opens, whatever shard count wrote them.
///
/// # Errors
/// The first journal that cannot be replayed.
pub fn replay_all<D: Disk>(inner: &D) -> io::Result<Replayed> {
    let mut total = Replayed::default();
    let names = match inner.list_dir(Path::new("journal")) {
        Ok(names) => names,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(total),
        Err(error) => return Err(error),
    };
    for name in names.iter().filter(|name| name.ends_with(".wal")) {
        let journal = inner.open(&Path::new("journal").join(name), OpenMode::Existing)?;
        let (next_seq, replayed) = replay(inner, &journal)?;
        total.batches += replayed.batches;
        total.records += replayed.records;
        if replayed.batches > 0 {
            // A new nonce, as in `Journaled::open`.
            write_header(&journal, rand::random(), Mark { seq: next_seq, offset: HEADER_BYTES })?;
            sync_now(inner)?;
        }
    }
    Ok(total)
}

/// [`replay_all`] on the real disk rooted at `data_dir`; logs what it replayed.
///
/// # Errors
/// As [`replay_all`].
pub fn replay_data_dir(data_dir: &Path) -> io::Result<Replayed> {
    let replayed = replay_all(&crate::disk::os::OsDisk::new(data_dir)?)?;
    if replayed.batches > 0 {
        tracing::info!(batches = replayed.batches, records = replayed.records, "journals replayed");
    }
    Ok(replayed)
}
