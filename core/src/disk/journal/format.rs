//! The journal file's bytes: header, batches, records (FORMAT.md, "The shard journal").

use std::io;

use crate::disk::DiskFile;

const MAGIC: [u8; 8] = *b"\x89SKJ\r\n\x1a\n";
const FORMAT_MAJOR: u16 = 1;
const FORMAT_MINOR: u16 = 0;
/// The header is sector 0; batches start after it, each on a sector boundary.
pub(super) const HEADER_BYTES: u64 = 512;
pub(super) const SECTOR: u64 = 512;
pub(super) const BATCH_HEADER_BYTES: usize = 32;
const RECORD_HEADER_BYTES: usize = 16;
pub(super) const KIND_WRITE: u8 = 1;
pub(super) const KIND_SET_LEN: u8 = 2;
/// Voids the records of its path before it (a rename or removal of that name follows).
pub(super) const KIND_FORGET: u8 = 3;
/// Batch flag: no records; the chain goes on at the journal's first batch offset.
const FLAG_WRAP: u32 = 1;

/// A place in the chain: a batch's seq and offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Mark {
    pub seq: u64,
    pub offset: u64,
}

/// `len` rounded up to whole sectors.
pub(super) fn pad(len: u64) -> u64 {
    len.div_ceil(SECTOR) * SECTOR
}

fn crc_seed(nonce: u64) -> u32 {
    crc32c::crc32c(&nonce.to_le_bytes())
}

/// Fills in the batch header of `batch` (its first 32 bytes).
pub(super) fn seal_batch(batch: &mut [u8], seq: u64, epoch: u64, records: u32, nonce: u64) {
    seal(batch, seq, epoch, records, 0, nonce);
}

/// A wrap batch, padded to a sector.
pub(super) fn wrap_batch(seq: u64, epoch: u64, nonce: u64) -> Vec<u8> {
    let mut batch = vec![0u8; BATCH_HEADER_BYTES];
    seal(&mut batch, seq, epoch, 0, FLAG_WRAP, nonce);
    batch.resize(SECTOR as usize, 0);
    batch
}

fn seal(batch: &mut [u8], seq: u64, epoch: u64, records: u32, flags: u32, nonce: u64) {
    let payload = u32::try_from(batch.len() - BATCH_HEADER_BYTES).expect("batch below 4 GiB");
    batch[4..8].copy_from_slice(&payload.to_le_bytes());
    batch[8..16].copy_from_slice(&seq.to_le_bytes());
    batch[16..24].copy_from_slice(&epoch.to_le_bytes());
    batch[24..28].copy_from_slice(&records.to_le_bytes());
    batch[28..32].copy_from_slice(&flags.to_le_bytes());
    let crc = crc32c::crc32c_append(crc_seed(nonce), &batch[4..]);
    batch[0..4].copy_from_slice(&crc.to_le_bytes());
}

/// True for a wrap batch (as [`read_batch`] returns it).
pub(super) fn is_wrap(batch: &[u8]) -> bool {
    u32::from_le_bytes(batch[28..32].try_into().expect("4 bytes")) & FLAG_WRAP != 0
}

/// Writes a header with `nonce` whose chain starts at `start`.
pub(super) fn write_header<F: DiskFile>(journal: &F, nonce: u64, start: Mark) -> io::Result<()> {
    let mut header = [0u8; HEADER_BYTES as usize];
    header[0..8].copy_from_slice(&MAGIC);
    header[8..10].copy_from_slice(&FORMAT_MAJOR.to_le_bytes());
    header[10..12].copy_from_slice(&FORMAT_MINOR.to_le_bytes());
    header[12..16].copy_from_slice(&(HEADER_BYTES as u32).to_le_bytes());
    header[16..24].copy_from_slice(&nonce.to_le_bytes());
    header[24..32].copy_from_slice(&start.seq.to_le_bytes());
    header[32..40].copy_from_slice(&start.offset.to_le_bytes());
    let crc = crc32c::crc32c(&header[..508]);
    header[508..512].copy_from_slice(&crc.to_le_bytes());
    journal.write_all_at(&header, 0)
}

/// The header's nonce and chain start, if it is whole.
pub(super) fn read_header<F: DiskFile>(journal: &F) -> io::Result<Option<(u64, Mark)>> {
    if journal.len()? < HEADER_BYTES {
        return Ok(None);
    }
    let mut header = [0u8; HEADER_BYTES as usize];
    journal.read_exact_at(&mut header, 0)?;
    let word = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(header[508..512].try_into().expect("4 bytes"));
    let whole = header[0..8] == MAGIC
        && u16::from_le_bytes([header[8], header[9]]) == FORMAT_MAJOR
        && crc32c::crc32c(&header[..508]) == crc;
    let start = Mark { seq: word(24), offset: word(32) };
    let placed = start.offset >= HEADER_BYTES && start.offset.is_multiple_of(SECTOR);
    Ok((whole && placed).then_some((word(16), start)))
}

/// The batch at `at` if it is whole, carries `seq` and checks out with `nonce`.
pub(super) fn read_batch<F: DiskFile>(
    journal: &F,
    nonce: u64,
    at: u64,
    seq: u64,
) -> io::Result<Option<Vec<u8>>> {
    let len = journal.len()?;
    if at + BATCH_HEADER_BYTES as u64 > len {
        return Ok(None);
    }
    let mut head = [0u8; BATCH_HEADER_BYTES];
    journal.read_exact_at(&mut head, at)?;
    let payload = u64::from(u32::from_le_bytes(head[4..8].try_into().expect("4 bytes")));
    let end = at + BATCH_HEADER_BYTES as u64 + payload;
    if end > len || u64::from_le_bytes(head[8..16].try_into().expect("8 bytes")) != seq {
        return Ok(None);
    }
    let mut batch = vec![0u8; (end - at) as usize];
    journal.read_exact_at(&mut batch, at)?;
    let crc = u32::from_le_bytes(batch[0..4].try_into().expect("4 bytes"));
    Ok((crc32c::crc32c_append(crc_seed(nonce), &batch[4..]) == crc).then_some(batch))
}

/// Appends a record to a batch being gathered.
///
/// # Errors
/// `InvalidInput` for a path that is not UTF-8 or too long, or data of 4 GiB or more.
pub(super) fn push_record(
    batch: &mut Vec<u8>,
    kind: u8,
    path: &std::path::Path,
    offset: u64,
    data: &[u8],
) -> io::Result<()> {
    let invalid = |what| io::Error::new(io::ErrorKind::InvalidInput, what);
    let name = path.to_str().ok_or_else(|| invalid("journal: a path that is not UTF-8"))?;
    let path_len = u16::try_from(name.len()).map_err(|_| invalid("journal: path too long"))?;
    let data_len = u32::try_from(data.len()).map_err(|_| invalid("journal: write too large"))?;
    batch.extend_from_slice(&[kind, 0]);
    batch.extend_from_slice(&path_len.to_le_bytes());
    batch.extend_from_slice(&data_len.to_le_bytes());
    batch.extend_from_slice(&offset.to_le_bytes());
    batch.extend_from_slice(name.as_bytes());
    batch.extend_from_slice(data);
    Ok(())
}

/// One record of a batch.
pub(super) struct Record<'b> {
    pub kind: u8,
    pub path: &'b str,
    pub offset: u64,
    pub data: &'b [u8],
}

/// The records of a whole batch (header included), in order.
pub(super) fn records(batch: &[u8]) -> io::Result<Vec<Record<'_>>> {
    let damaged = || io::Error::new(io::ErrorKind::InvalidData, "journal: damaged record");
    let mut payload = &batch[BATCH_HEADER_BYTES..];
    let mut out = Vec::new();
    while !payload.is_empty() {
        if payload.len() < RECORD_HEADER_BYTES {
            return Err(damaged());
        }
        let kind = payload[0];
        let path_len = usize::from(u16::from_le_bytes([payload[2], payload[3]]));
        let data_len = u32::from_le_bytes(payload[4..8].try_into().expect("4 bytes")) as usize;
        let offset = u64::from_le_bytes(payload[8..16].try_into().expect("8 bytes"));
        let total = RECORD_HEADER_BYTES + path_len + data_len;
        if payload.len() < total || !matches!(kind, KIND_WRITE | KIND_SET_LEN | KIND_FORGET) {
            return Err(damaged());
        }
        let path = std::str::from_utf8(&payload[RECORD_HEADER_BYTES..][..path_len])
            .map_err(|_| damaged())?;
        let data = &payload[RECORD_HEADER_BYTES + path_len..total];
        out.push(Record { kind, path, offset, data });
        payload = &payload[total..];
    }
    Ok(out)
}
