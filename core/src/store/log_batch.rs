//! Batch records of `mailboxes.log`: several records that replay all together or not at all
//! (byte layout: `core/FORMAT.md`, "mailboxes.log", batch records).
//!
//! A change made of several records (a subtree rename, a CREATE with its superiors and its
//! special-use attributes, the default folders, several new keywords at once) is one write, but a write is atomic only per 512-byte sector: torn at
//! a sector boundary, a plain sequence of records would keep its first records and lose the
//! rest (a parent renamed without its children). A batch wraps the records in one outer record
//! whose checksum covers all of them, so replay sees the whole change or none of it.

use super::codec::{all_zero, get_u16, get_u32, nonce_seed, put_u32};
use super::log::{LogRecord, RECORD_FIXED_BYTES};
use crate::limits::{LOG_BATCH_BYTES_MAX, LOG_BATCH_RECORDS_MAX};

/// The `kind` byte of a batch record.
pub(crate) const KIND_BATCH: u8 = 9;

/// The bytes of one replay unit: a single record as itself, several as one batch record.
///
/// # Panics
/// If `records` is empty or larger than the batch limits (callers bound what they write).
pub(crate) fn encode_unit(records: &[LogRecord], nonce: u64) -> Vec<u8> {
    assert!(!records.is_empty(), "a log write holds at least one record");
    if let [record] = records {
        return record.encode(nonce);
    }
    assert!(records.len() <= LOG_BATCH_RECORDS_MAX);
    let mut buf = vec![0u8; RECORD_FIXED_BYTES];
    for record in records {
        buf.extend_from_slice(&record.encode(nonce));
    }
    let inner = buf.len() - RECORD_FIXED_BYTES;
    assert!(inner <= LOG_BATCH_BYTES_MAX);
    let size = u32::try_from(buf.len()).expect("bounded");
    put_u32(&mut buf, 0, size);
    buf[8] = KIND_BATCH;
    put_u32(&mut buf, 12, u32::try_from(records.len()).expect("bounded"));
    put_u32(&mut buf, 16, u32::try_from(inner).expect("bounded"));
    let crc = crc32c::crc32c_append(nonce_seed(nonce), &buf[8..]);
    put_u32(&mut buf, 4, crc);
    // Pair assertion: what we write replays as written.
    debug_assert!(
        decode_unit(&buf, nonce).is_some_and(|(r, len)| r == records && len == buf.len())
    );
    buf
}

/// Decodes the replay unit at the start of `buf`: its records (one, or a whole batch) and its
/// length on disk. `None` if it is torn, corrupt or unknown.
pub(crate) fn decode_unit(buf: &[u8], nonce: u64) -> Option<(Vec<LogRecord>, usize)> {
    if buf.len() >= RECORD_FIXED_BYTES && buf[8] == KIND_BATCH {
        return decode_batch(buf, nonce);
    }
    LogRecord::decode(buf, nonce).map(|(record, len)| (vec![record], len))
}

fn decode_batch(buf: &[u8], nonce: u64) -> Option<(Vec<LogRecord>, usize)> {
    let size = usize::try_from(get_u32(buf, 0)).ok()?;
    let count = usize::try_from(get_u32(buf, 12)).ok()?;
    let inner = usize::try_from(get_u32(buf, 16)).ok()?;
    let fields_ok = (2..=LOG_BATCH_RECORDS_MAX).contains(&count)
        && inner <= LOG_BATCH_BYTES_MAX
        && inner.is_multiple_of(8)
        && size == RECORD_FIXED_BYTES + inner
        && get_u16(buf, 20) == 0
        && all_zero(&buf[9..12])
        && all_zero(&buf[22..24]);
    if !fields_ok || buf.len() < size {
        return None;
    }
    if crc32c::crc32c_append(nonce_seed(nonce), &buf[8..size]) != get_u32(buf, 4) {
        return None;
    }
    let mut records = Vec::with_capacity(count);
    let mut at = RECORD_FIXED_BYTES;
    while at < size && records.len() < count {
        // A batch never nests: `LogRecord::decode` knows no batch kind.
        let (record, len) = LogRecord::decode(&buf[at..size], nonce)?;
        records.push(record);
        at += len;
    }
    (at == size && records.len() == count).then_some((records, size))
}

/// Disk sector: a write is atomic per sector only (the crash model of `core/FORMAT.md`).
const SECTOR_BYTES: u64 = 512;

/// The bytes written over a cut log tail of `len` bytes at offset `start`: no-op floor records
/// (`Floor` with zeros raises nothing) in batch records covering at least `len` bytes.
///
/// Why: the tail recovery cuts may hold records of the crashed process's last epoch whose
/// checksums hold (written after a record the crash lost). Were new records appended where the
/// tail was cut, a crash that lost the cut (a `set_len`, unflushed) but kept some of them
/// would replay a stale record right after the last new one that landed: a keyword bit or a
/// mailbox taking a meaning nobody gave it now. New records go after the filler instead. The
/// filler is valid only if every byte of a batch landed, and no batch but the last ends on a
/// sector boundary, so a torn write never leaves a valid batch followed by stale bytes: either
/// the whole stale tail is overwritten, or replay ends where it ended before.
pub(crate) fn encode_filler(start: u64, len: u64, nonce: u64) -> Vec<u8> {
    let floor = LogRecord::Floor { next_id: 0, last_uid_validity: 0 };
    let record = RECORD_FIXED_BYTES as u64;
    let size = |count: u64| record * (count + 1);
    let goal = start + len;
    let mut out = Vec::new();
    let mut at = start;
    while at < goal {
        let mut count = (goal - at).saturating_sub(record).div_ceil(record);
        count = count.clamp(2, LOG_BATCH_RECORDS_MAX as u64);
        // Not the last batch (so more than three records): one record fewer moves its end off
        // the sector boundary, sectors being 512 bytes apart and records 24.
        if at + size(count) < goal && (at + size(count)).is_multiple_of(SECTOR_BYTES) {
            count -= 1;
        }
        let records = vec![floor.clone(); usize::try_from(count).expect("bounded")];
        out.extend_from_slice(&encode_unit(&records, nonce));
        at += size(count);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::MailboxId;

    #[test]
    fn a_filler_covers_the_tail_replays_as_no_ops_and_ends_batches_off_sectors() {
        let nonce = 0x1234_5678;
        // Every start modulo a sector, for a tail of two full batches and a bit: some batch
        // would end on a sector boundary unless shortened.
        let long = (64..64 + 512).step_by(8).map(|start| (start, 24 * 10_002 + 100));
        for (start, len) in [(64, 8), (64, 40), (200, 1000)].into_iter().chain(long) {
            let filler = encode_filler(start, len, nonce);
            assert!(filler.len() as u64 >= len);
            let (mut at, goal) = (0usize, start as usize + filler.len());
            while at < filler.len() {
                let (records, used) = decode_unit(&filler[at..], nonce).expect("a whole batch");
                assert!(
                    records
                        .iter()
                        .all(|r| *r == LogRecord::Floor { next_id: 0, last_uid_validity: 0 })
                );
                at += used;
                let end = start as usize + at;
                assert!(end == goal || !end.is_multiple_of(512), "a batch ends on a sector: {end}");
            }
            assert_eq!(at, filler.len());
        }
    }

    fn renames(n: u32) -> Vec<LogRecord> {
        (0..n)
            .map(|i| LogRecord::Rename {
                id: MailboxId(i),
                name: format!("Projects/{}", "x".repeat(i as usize * 7)),
            })
            .collect()
    }

    #[test]
    fn one_record_is_written_plain() {
        let records = renames(1);
        assert_eq!(encode_unit(&records, 5), records[0].encode(5));
        assert_eq!(decode_unit(&records[0].encode(5), 5).unwrap().0, records);
    }

    #[test]
    fn a_batch_round_trips() {
        let records = renames(40);
        let bytes = encode_unit(&records, 5);
        assert_eq!(bytes.len() % 8, 0);
        assert_eq!(bytes[8], KIND_BATCH);
        let (decoded, len) = decode_unit(&bytes, 5).unwrap();
        assert_eq!(decoded, records);
        assert_eq!(len, bytes.len());
        assert!(decode_unit(&bytes, 6).is_none(), "wrong nonce");
    }

    #[test]
    fn a_torn_batch_is_nothing() {
        let records = renames(40);
        let mut bytes = encode_unit(&records, 5);
        assert!(bytes.len() > 1024);
        for cut in (8..bytes.len()).step_by(8) {
            assert!(decode_unit(&bytes[..cut], 5).is_none(), "cut at {cut}");
        }
        // Torn at a sector: the rest of the batch reads back as zeros.
        bytes[512..].fill(0);
        assert!(decode_unit(&bytes, 5).is_none());
    }

    #[test]
    fn any_flipped_bit_is_caught() {
        let bytes = encode_unit(&renames(3), 5);
        for byte in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[byte] ^= 0x04;
            assert!(decode_unit(&bad, 5).is_none(), "flip at {byte}");
        }
    }

    #[test]
    fn a_batch_inside_a_batch_is_refused() {
        let inner = encode_unit(&renames(2), 5);
        let mut outer = vec![0u8; RECORD_FIXED_BYTES];
        outer.extend_from_slice(&inner);
        outer.extend_from_slice(&renames(1)[0].encode(5));
        let len = outer.len();
        put_u32(&mut outer, 0, u32::try_from(len).unwrap());
        outer[8] = KIND_BATCH;
        put_u32(&mut outer, 12, 2);
        put_u32(&mut outer, 16, u32::try_from(len - RECORD_FIXED_BYTES).unwrap());
        let crc = crc32c::crc32c_append(nonce_seed(5), &outer[8..]);
        put_u32(&mut outer, 4, crc);
        assert!(decode_unit(&outer, 5).is_none());
    }
}
