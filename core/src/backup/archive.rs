//! An archive file as a whole: [`Scan`] reads it once (every checksum) and says which
//! snapshots are usable and where each body is; [`replay`] gives one snapshot back as a
//! stream with every body inline; [`Appender`] adds a snapshot, writing only bodies the
//! archive does not hold yet.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom, Write};

use super::codec::{Writer, decode_payload, frame_len, record_crc_ok};
use super::decoder::Decoder;
use super::{
    ArchiveError, Digest, MailboxState, MessageState, RECORD_HEADER_BYTES,
    RECORD_PAYLOAD_BYTES_MAX, Record, SnapshotEnd, SnapshotStart, sha256,
};

/// Bytes read from the file at a time while scanning.
const SCAN_CHUNK_BYTES: usize = 1 << 20;

/// One complete snapshot of an archive.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotInfo {
    /// Its place in the archive, from 1.
    pub number: u32,
    /// When it was taken, unix milliseconds.
    pub time_unix_millis: i64,
    /// Whose store.
    pub user: String,
    /// Mailboxes.
    pub mailboxes: u32,
    /// Messages.
    pub messages: u32,
    /// Bodies this snapshot added to the archive.
    pub bodies_added: u32,
    /// Their bytes.
    pub body_bytes_added: u64,
    /// Offset of its start record.
    pub offset: u64,
}

/// What [`Scan::read`] found.
#[derive(Debug)]
pub struct Scan {
    /// The complete snapshots, in order.
    pub snapshots: Vec<SnapshotInfo>,
    /// Where each body of a complete snapshot is: offset of its record.
    pub bodies: HashMap<Digest, u64>,
    /// Offset just past the last complete snapshot (the header's end when there is none):
    /// where the next snapshot goes.
    pub usable_bytes: u64,
    /// Why the scan stopped before the end of the file, if it did.
    pub damage: Option<ArchiveError>,
}

impl Scan {
    /// Reads the whole archive from its first byte, checking every record.
    ///
    /// # Errors
    /// Reading failed, or the file is not an archive (a bad or newer header). Damage after
    /// the header is not an error: the scan stops there and says so in [`Scan::damage`].
    pub fn read<R: Read>(mut source: R) -> Result<Scan, ArchiveError> {
        let mut decoder = Decoder::archive();
        let mut scan =
            Scan { snapshots: Vec::new(), bodies: HashMap::new(), usable_bytes: 0, damage: None };
        let mut pending: HashMap<Digest, u64> = HashMap::new();
        let mut current: Option<SnapshotInfo> = None;
        let mut chunk = vec![0u8; SCAN_CHUNK_BYTES];
        loop {
            let read = source.read(&mut chunk)?;
            if read == 0 {
                match decoder.finish() {
                    Err(ArchiveError::Truncated("header")) if decoder.position() == 0 => {
                        return Err(ArchiveError::NotArchive("shorter than its header"));
                    }
                    Err(error) => scan.damage = Some(error),
                    Ok(()) => {}
                }
                return Ok(scan);
            }
            decoder.feed(&chunk[..read]);
            loop {
                let record = match decoder.next_record() {
                    Ok(Some(record)) => record,
                    Ok(None) => break,
                    Err(error @ ArchiveError::NotArchive(_)) => return Err(error),
                    Err(error) => {
                        scan.damage = Some(error);
                        return Ok(scan);
                    }
                };
                if scan.usable_bytes == 0 {
                    scan.usable_bytes = decoder.last_offset();
                }
                let at = decoder.last_offset();
                match record {
                    Record::Start(start) => {
                        pending.clear();
                        current = Some(SnapshotInfo {
                            number: scan.snapshots.len() as u32 + 1,
                            time_unix_millis: start.time_unix_millis,
                            user: start.user,
                            mailboxes: start.mailboxes,
                            messages: start.messages,
                            bodies_added: 0,
                            body_bytes_added: 0,
                            offset: at,
                        });
                    }
                    Record::Body { digest, bytes } => {
                        if sha256(&bytes) != digest {
                            scan.damage = Some(ArchiveError::DigestMismatch);
                            return Ok(scan);
                        }
                        pending.entry(digest).or_insert(at);
                    }
                    Record::Ref(digest) => {
                        if !scan.bodies.contains_key(&digest) && !pending.contains_key(&digest) {
                            scan.damage = Some(ArchiveError::Damaged {
                                offset: at,
                                what: "a reference to a body the archive does not hold".to_owned(),
                            });
                            return Ok(scan);
                        }
                    }
                    Record::End(end) => {
                        let mut info = current.take().expect("the decoder checked the order");
                        info.bodies_added = end.bodies;
                        info.body_bytes_added = end.body_bytes;
                        scan.snapshots.push(info);
                        scan.bodies.extend(pending.drain());
                        scan.usable_bytes = decoder.position();
                    }
                    Record::Mailbox(_) | Record::Subscriptions(_) | Record::Messages(_) => {}
                }
            }
            if scan.usable_bytes == 0 && decoder.between_snapshots() {
                scan.usable_bytes = decoder.position();
            }
        }
    }

    /// The last snapshot of `user` taken at or before `at_unix_millis` (any time: `None`).
    #[must_use]
    pub fn pick(&self, user: &str, at_unix_millis: Option<i64>) -> Option<&SnapshotInfo> {
        self.snapshots.iter().rfind(|s| {
            s.user.eq_ignore_ascii_case(user)
                && at_unix_millis.is_none_or(|at| s.time_unix_millis <= at)
        })
    }
}

/// Reads one record at `offset` (checksum and payload checked; its order was checked by the
/// scan).
fn record_at<R: Read + Seek>(source: &mut R, offset: u64) -> Result<(Record, u64), ArchiveError> {
    let damaged = |what: &str| ArchiveError::Damaged { offset, what: what.to_owned() };
    source.seek(SeekFrom::Start(offset))?;
    let mut header = [0u8; RECORD_HEADER_BYTES];
    source.read_exact(&mut header)?;
    let len = frame_len(&header).ok_or_else(|| damaged("record frame checksum fails"))?;
    if len > RECORD_PAYLOAD_BYTES_MAX {
        return Err(damaged("record length past the bound"));
    }
    let mut payload = vec![0u8; len];
    source.read_exact(&mut payload)?;
    if !record_crc_ok(&header, &payload) {
        return Err(damaged("record checksum fails (the file changed since it was scanned)"));
    }
    let record =
        decode_payload(header[4], &payload).ok_or_else(|| damaged("record does not decode"))?;
    Ok((record, offset + (RECORD_HEADER_BYTES + len) as u64))
}

/// True when `name` is the mailbox `wanted` (INBOX in any case).
fn same_mailbox(name: &str, wanted: &str) -> bool {
    name == wanted || (name.eq_ignore_ascii_case("INBOX") && wanted.eq_ignore_ascii_case("INBOX"))
}

/// Gives snapshot `snapshot` of a scanned archive to `sink` as a stream: its start, its
/// mailboxes, subscriptions and messages, every body inline (references resolved), an end
/// record (whose totals a [`Writer`] fills in). With `mailbox`, only that mailbox and its
/// messages (and its subscription) are given. Returns the counts given.
///
/// # Errors
/// Reading failed, the file changed since the scan, `mailbox` is not in the snapshot
/// ([`ArchiveError::NoSuchMailbox`]), or `sink` failed.
pub fn replay<R: Read + Seek, E: From<ArchiveError>>(
    source: &mut R,
    scan: &Scan,
    snapshot: &SnapshotInfo,
    mailbox: Option<&str>,
    sink: &mut dyn FnMut(Record) -> Result<(), E>,
) -> Result<(u32, u32), E> {
    let changed = || ArchiveError::Damaged {
        offset: snapshot.offset,
        what: "the snapshot's records are not where the scan found them".to_owned(),
    };
    let (record, mut at) = record_at(source, snapshot.offset)?;
    let Record::Start(start) = record else { return Err(E::from(changed())) };
    let mut mailboxes: Vec<MailboxState> = Vec::with_capacity(start.mailboxes as usize);
    for _ in 0..start.mailboxes {
        let (record, next) = record_at(source, at)?;
        at = next;
        let Record::Mailbox(state) = record else { return Err(E::from(changed())) };
        mailboxes.push(state);
    }
    let (record, next) = record_at(source, at)?;
    at = next;
    let Record::Subscriptions(names) = record else { return Err(E::from(changed())) };
    let mut messages: Vec<MessageState> = Vec::with_capacity(start.messages as usize);
    while messages.len() < start.messages as usize {
        let (record, next) = record_at(source, at)?;
        at = next;
        let Record::Messages(batch) = record else { return Err(E::from(changed())) };
        messages.extend(batch);
    }
    // Mailbox ordinals of the stream given: those kept, renumbered.
    let keep: Vec<Option<u32>> = {
        let mut next = 0u32;
        mailboxes
            .iter()
            .map(|m| {
                (mailbox.is_none_or(|wanted| same_mailbox(&m.name, wanted))).then(|| {
                    next += 1;
                    next - 1
                })
            })
            .collect()
    };
    let kept_mailboxes = keep.iter().flatten().count() as u32;
    if kept_mailboxes == 0 {
        return Err(E::from(ArchiveError::NoSuchMailbox(mailbox.unwrap_or_default().to_owned())));
    }
    let kept: Vec<MessageState> = messages
        .iter()
        .filter_map(|m| {
            keep[m.mailbox as usize].map(|ordinal| MessageState { mailbox: ordinal, ..*m })
        })
        .collect();
    sink(Record::Start(SnapshotStart {
        mailboxes: kept_mailboxes,
        messages: kept.len() as u32,
        ..start
    }))?;
    for (state, keep) in mailboxes.into_iter().zip(&keep) {
        if keep.is_some() {
            sink(Record::Mailbox(state))?;
        }
    }
    let names = names
        .into_iter()
        .filter(|n| mailbox.is_none_or(|wanted| same_mailbox(n, wanted)))
        .collect();
    sink(Record::Subscriptions(names))?;
    for chunk in kept.chunks(super::MESSAGES_PER_RECORD_MAX) {
        sink(Record::Messages(chunk.to_vec()))?;
    }
    for message in &messages {
        let (record, next) = record_at(source, at)?;
        at = next;
        if keep[message.mailbox as usize].is_none() {
            continue;
        }
        let body = match record {
            Record::Body { .. } => record,
            Record::Ref(digest) => {
                let &body_at = scan.bodies.get(&digest).ok_or(ArchiveError::MissingBody)?;
                record_at(source, body_at)?.0
            }
            _ => return Err(E::from(changed())),
        };
        sink(body)?;
    }
    sink(Record::End(SnapshotEnd::default()))?;
    Ok((kept_mailboxes, kept.len() as u32))
}

/// Adds a snapshot to an archive: takes a stream's records (from [`Decoder::stream`]) and
/// writes them, each body the archive (or this snapshot) already holds as a reference.
pub struct Appender<W: Write> {
    writer: Writer<W>,
    known: HashSet<Digest>,
}

impl<W: Write> Appender<W> {
    /// An appender writing at the end of `out`, which holds `written` bytes already, of an
    /// archive whose bodies `scan` found (`None`: a new archive; the header is written now).
    ///
    /// # Errors
    /// Writing the header failed.
    pub fn new(
        out: W,
        scan: Option<&Scan>,
        now_unix_millis: i64,
    ) -> Result<Appender<W>, ArchiveError> {
        let (writer, known) = match scan {
            Some(scan) => {
                (Writer::new(out, scan.usable_bytes), scan.bodies.keys().copied().collect())
            }
            None => {
                let mut writer = Writer::new(out, 0);
                writer.header(now_unix_millis)?;
                (writer, HashSet::new())
            }
        };
        Ok(Appender { writer, known })
    }

    /// Writes one record of the stream; gives the snapshot's totals after its end record.
    ///
    /// # Errors
    /// Writing failed, a body's bytes do not have its digest, or the stream holds a
    /// reference.
    pub fn push(&mut self, record: &Record) -> Result<Option<SnapshotEnd>, ArchiveError> {
        match record {
            Record::Body { digest, bytes } => {
                if sha256(bytes) != *digest {
                    return Err(ArchiveError::DigestMismatch);
                }
                if self.known.contains(digest) {
                    self.writer.record(&Record::Ref(*digest))?;
                } else {
                    self.writer.record(record)?;
                    self.known.insert(*digest);
                }
            }
            Record::Ref(_) => return Err(ArchiveError::MissingBody),
            Record::End(_) => return Ok(Some(self.writer.record(record)?)),
            other => {
                self.writer.record(other)?;
            }
        }
        Ok(None)
    }

    /// Bytes of the archive written so far.
    #[must_use]
    pub fn written(&self) -> u64 {
        self.writer.written()
    }

    /// Gives the output back (to flush and sync it).
    pub fn into_inner(self) -> W {
        self.writer.into_inner()
    }
}
