//! URLAUTH mailbox access keys (RFC 4467 §2.2): the secrets behind the `INTERNAL`
//! authorization tokens of IMAP URLs, kept per user in `urlauth.keys` (byte layout:
//! `core/FORMAT.md`, "urlauth.keys").
//!
//! The file is a small append-only log of *reset* records, each carrying 32 fresh random
//! bytes: a reset of all mailboxes (the first record is always one) or of one mailbox. A
//! mailbox's access key is its own reset's bytes when it had one since the last reset of all,
//! otherwise `HMAC-SHA256(all-key, "skua urlauth mailbox" ‖ id)`; a token is
//! `HMAC-SHA256(mailbox key, rump URL)`. Keys are random rather than counted, so a reset a
//! crash lost is never given again: a URL minted under it stays invalid for good.
//!
//! Every record's checksum chains the one before it (the first chains the header's), so
//! replay is a prefix: the first record that is torn, fails its checksum, or breaks a rule
//! ends the log, and a stale record left behind a new one (written over a lost one) cannot
//! chain to it. Keys are never logged, printed (`Debug` shows none) or handed out: the store
//! computes and checks tokens itself, the check in constant time (`ring::hmac::verify`).
//!
//! The file is read on first use, not on open (most users never use URLAUTH), and created,
//! mode 0600, by the first GENURLAUTH or RESETKEY.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ring::hmac;

use super::UserStore;
use super::codec::{
    Preamble, all_zero, file_len, get_u32, get_u64, new_nonce, nonce_seed, now_unix_seconds,
    put_i64, put_u32, put_u64, read_at, write_at,
};
use crate::disk::{Disk, OpenMode};
use crate::error::StorageError;
use crate::types::MailboxId;

/// File name inside the user directory.
pub(crate) const KEYS_FILE: &str = "urlauth.keys";
const PREAMBLE: Preamble = Preamble { magic: *b"\x89SKA\r\n\x1a\n", major: 1, minor: 0 };
/// Header bytes.
const HEADER_BYTES: usize = 64;
/// Every record's size: eight records fill a 512-byte sector, so none straddles two.
const RECORD_BYTES: usize = 64;
/// Random bytes per reset.
const KEY_BYTES: usize = 32;
/// The most records the log holds; RESETKEY is refused past it (compaction is not done).
pub const URLAUTH_RECORDS_MAX: u32 = 16_384;
/// The token's leading version byte (RFC 4467 §2.4.1 asks that the algorithm be identified).
const TOKEN_VERSION: u8 = 1;
/// Hex digits of a token: the version byte and a whole HMAC-SHA256 tag.
pub const URLAUTH_TOKEN_HEX_LEN: usize = 2 * (1 + 32);
const KIND_RESET_ALL: u8 = 1;
const KIND_RESET_MAILBOX: u8 = 2;
const MAILBOX_KEY_LABEL: &[u8] = b"skua urlauth mailbox";
// Pinned by core/FORMAT.md ("urlauth.keys").
const _: () = assert!(HEADER_BYTES == 64 && RECORD_BYTES == 64);
const _: () =
    assert!(512_usize.is_multiple_of(RECORD_BYTES) && HEADER_BYTES.is_multiple_of(RECORD_BYTES));
const _: () = assert!(16 + KEY_BYTES <= RECORD_BYTES);
const _: () = assert!((URLAUTH_RECORDS_MAX as usize) * RECORD_BYTES <= 1 << 20);

/// Why RESETKEY could not change a key.
#[derive(Debug, thiserror::Error)]
pub enum UrlKeyError {
    /// The key log holds [`URLAUTH_RECORDS_MAX`] records.
    #[error("too many URLAUTH key resets")]
    Full,
    /// The disk failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The key log as read, or what is known of it.
#[derive(Default)]
pub(crate) enum UrlKeys<F> {
    /// Not read yet.
    #[default]
    Unread,
    /// No file: no key was ever made, so no token is valid.
    Missing,
    /// Read (or created).
    Loaded(Box<KeyLog<F>>),
}

impl<F> std::fmt::Debug for UrlKeys<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys.
        match self {
            UrlKeys::Unread => f.write_str("Unread"),
            UrlKeys::Missing => f.write_str("Missing"),
            UrlKeys::Loaded(log) => write!(f, "Loaded({} records)", log.records),
        }
    }
}

/// The replayed log and where the next record goes.
pub(crate) struct KeyLog<F> {
    file: F,
    path: PathBuf,
    seed: u32,
    /// Where the valid prefix ends (the next record's offset).
    end: u64,
    /// The checksum the next record chains to.
    last_crc: u32,
    records: u32,
    all_key: [u8; KEY_BYTES],
    mailbox_keys: BTreeMap<MailboxId, [u8; KEY_BYTES]>,
}

impl<F: crate::disk::DiskFile> KeyLog<F> {
    /// Reads the log; `None` when its header is damaged or incomplete (start anew).
    fn read(file: F, path: PathBuf) -> Result<Option<KeyLog<F>>, StorageError> {
        let len = file_len(&file, &path)?;
        if len < (HEADER_BYTES + RECORD_BYTES) as u64 {
            return Ok(None);
        }
        let mut header = [0u8; HEADER_BYTES];
        read_at(&file, &path, &mut header, 0)?;
        let Some(header_size) = PREAMBLE.check(&header, 60, &path)? else { return Ok(None) };
        if header_size as usize != HEADER_BYTES || !all_zero(&header[32..60]) {
            return Ok(None);
        }
        let seed = nonce_seed(get_u64(&header, 16));
        let mut log = KeyLog {
            file,
            path,
            seed,
            end: HEADER_BYTES as u64,
            last_crc: get_u32(&header, 60),
            records: 0,
            all_key: [0; KEY_BYTES],
            mailbox_keys: BTreeMap::new(),
        };
        let limit = len.min((HEADER_BYTES + RECORD_BYTES * URLAUTH_RECORDS_MAX as usize) as u64);
        let mut record = [0u8; RECORD_BYTES];
        while log.end + RECORD_BYTES as u64 <= limit {
            read_at(&log.file, &log.path, &mut record, log.end)?;
            if !log.apply(&record) {
                break;
            }
        }
        Ok((log.records > 0).then_some(log))
    }

    /// Applies one record if it is valid and chains to the last; false ends the log.
    fn apply(&mut self, record: &[u8; RECORD_BYTES]) -> bool {
        if get_u32(record, 0) != chain_crc(self.seed, self.last_crc, record) {
            return false;
        }
        let kind = record[4];
        let id = get_u32(record, 8);
        let reserved_clear =
            all_zero(&record[5..8]) && all_zero(&record[12..16]) && all_zero(&record[48..]);
        let first = self.records == 0;
        let key: [u8; KEY_BYTES] = record[16..16 + KEY_BYTES].try_into().expect("key bytes");
        match kind {
            KIND_RESET_ALL if reserved_clear && id == 0 => {
                self.all_key = key;
                self.mailbox_keys.clear();
            }
            KIND_RESET_MAILBOX if reserved_clear && !first => {
                self.mailbox_keys.insert(MailboxId(id), key);
            }
            _ => return false,
        }
        self.last_crc = get_u32(record, 0);
        self.records += 1;
        self.end += RECORD_BYTES as u64;
        true
    }

    /// Appends a reset record with fresh random bytes and applies it.
    fn append(&mut self, id: Option<MailboxId>) -> Result<(), UrlKeyError> {
        if self.records >= URLAUTH_RECORDS_MAX {
            return Err(UrlKeyError::Full);
        }
        let record = encode_record(self.seed, self.last_crc, id);
        write_at(&self.file, &self.path, &record, self.end)?;
        let applied = self.apply(&record);
        assert!(applied, "a record just encoded chains");
        Ok(())
    }

    /// Mailbox `id`'s access key.
    fn mailbox_key(&self, id: MailboxId) -> hmac::Key {
        let bytes = match self.mailbox_keys.get(&id) {
            Some(own) => *own,
            None => {
                let all = hmac::Key::new(hmac::HMAC_SHA256, &self.all_key);
                let mut context = hmac::Context::with_key(&all);
                context.update(MAILBOX_KEY_LABEL);
                context.update(&id.0.to_le_bytes());
                context.sign().as_ref().try_into().expect("a SHA-256 tag")
            }
        };
        hmac::Key::new(hmac::HMAC_SHA256, &bytes)
    }
}

/// The record's checksum: CRC-32C seeded by the nonce, over the previous record's checksum
/// (the header's for the first) and bytes 4..64.
fn chain_crc(seed: u32, previous: u32, record: &[u8]) -> u32 {
    let crc = crc32c::crc32c_append(seed, &previous.to_le_bytes());
    crc32c::crc32c_append(crc, &record[4..RECORD_BYTES])
}

fn encode_record(seed: u32, previous: u32, id: Option<MailboxId>) -> [u8; RECORD_BYTES] {
    let mut record = [0u8; RECORD_BYTES];
    record[4] = if id.is_some() { KIND_RESET_MAILBOX } else { KIND_RESET_ALL };
    put_u32(&mut record, 8, id.map_or(0, |id| id.0));
    record[16..16 + KEY_BYTES].copy_from_slice(&rand::random::<[u8; KEY_BYTES]>());
    let crc = chain_crc(seed, previous, &record);
    put_u32(&mut record, 0, crc);
    record
}

/// A new log: the header and a first reset of all mailboxes, in one write at offset 0 (one
/// sector: never torn). A longer damaged file's old records cannot chain to the new header.
fn create_log<F: crate::disk::DiskFile>(file: F, path: PathBuf) -> Result<KeyLog<F>, StorageError> {
    let nonce = new_nonce();
    let mut bytes = [0u8; HEADER_BYTES + RECORD_BYTES];
    PREAMBLE.write(&mut bytes, HEADER_BYTES as u32);
    put_u64(&mut bytes, 16, nonce);
    put_i64(&mut bytes, 24, now_unix_seconds());
    let header_crc = crc32c::crc32c(&bytes[..60]);
    put_u32(&mut bytes, 60, header_crc);
    let seed = nonce_seed(nonce);
    let record = encode_record(seed, header_crc, None);
    bytes[HEADER_BYTES..].copy_from_slice(&record);
    write_at(&file, &path, &bytes, 0)?;
    let mut log = KeyLog {
        file,
        path,
        seed,
        end: HEADER_BYTES as u64,
        last_crc: header_crc,
        records: 0,
        all_key: [0; KEY_BYTES],
        mailbox_keys: BTreeMap::new(),
    };
    let applied = log.apply(&record);
    assert!(applied, "a new log's first record chains to its header");
    Ok(log)
}

/// Splits a token into its version and tag; `None` unless it is [`URLAUTH_TOKEN_HEX_LEN`] hex
/// digits (either case) of version [`TOKEN_VERSION`].
fn decode_token(token: &str) -> Option<Vec<u8>> {
    if token.len() != URLAUTH_TOKEN_HEX_LEN {
        return None;
    }
    let bytes: Option<Vec<u8>> = token
        .as_bytes()
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            u8::from_str_radix(text, 16).ok()
        })
        .collect();
    let bytes = bytes?;
    (bytes[0] == TOKEN_VERSION).then(|| bytes[1..].to_vec())
}

impl<D: Disk> UserStore<D> {
    fn urlauth_path(&self) -> PathBuf {
        self.dir.join(KEYS_FILE)
    }

    /// Reads the key log once; `create` makes it when it is missing or damaged.
    fn urlauth_keys(&mut self, create: bool) -> Result<Option<&mut KeyLog<D::File>>, StorageError> {
        if matches!(self.url_keys, UrlKeys::Unread)
            || (create && matches!(self.url_keys, UrlKeys::Missing))
        {
            let path = self.urlauth_path();
            self.url_keys = if self.disk.exists(&path) || create {
                let file = self
                    .disk
                    .open(&path, OpenMode::CreateIfMissing)
                    .map_err(|e| StorageError::io(&path, e))?;
                match KeyLog::read(file.clone(), path.clone())? {
                    Some(log) => UrlKeys::Loaded(Box::new(log)),
                    None if create => {
                        if file_len(&file, &path)? > 0 {
                            tracing::warn!(
                                file = %path.display(),
                                "URLAUTH key log damaged: new keys made, earlier URLs invalid"
                            );
                        }
                        UrlKeys::Loaded(Box::new(create_log(file, path)?))
                    }
                    None => UrlKeys::Missing,
                }
            } else {
                UrlKeys::Missing
            };
        }
        Ok(match &mut self.url_keys {
            UrlKeys::Loaded(log) => Some(log),
            UrlKeys::Unread | UrlKeys::Missing => None,
        })
    }

    /// The `INTERNAL` authorization token (RFC 4467 §2.4.1) of `rump` (the URL up to and
    /// including `;URLAUTH=<access>`) under mailbox `id`'s access key: version byte 1 and
    /// the HMAC-SHA256 tag, [`URLAUTH_TOKEN_HEX_LEN`] lowercase hex digits. Makes the user's
    /// keys on first use (wait for the epoch before handing the URL out).
    ///
    /// # Errors
    /// The key log could not be read or written.
    pub fn urlauth_token(&mut self, id: MailboxId, rump: &[u8]) -> Result<String, StorageError> {
        let log = self.urlauth_keys(true)?.expect("created when missing");
        let tag = hmac::sign(&log.mailbox_key(id), rump);
        let mut token = format!("{TOKEN_VERSION:02x}");
        for byte in tag.as_ref() {
            token.push_str(&format!("{byte:02x}"));
        }
        Ok(token)
    }

    /// True when `token` is the token of `rump` under mailbox `id`'s current key, compared in
    /// constant time. False for anything else, including a user with no keys and a key log
    /// that cannot be read (logged).
    pub fn urlauth_check(&mut self, id: MailboxId, rump: &[u8], token: &str) -> bool {
        let Some(tag) = decode_token(token) else { return false };
        match self.urlauth_keys(false) {
            Ok(Some(log)) => hmac::verify(&log.mailbox_key(id), rump, &tag).is_ok(),
            Ok(None) => false,
            Err(error) => {
                tracing::error!(%error, "URLAUTH key log unreadable");
                false
            }
        }
    }

    /// RESETKEY (RFC 4467 §7): new random access keys for mailbox `id`, or for every mailbox
    /// when `None`; URLs authorized before no longer check. Durable with the open epoch.
    ///
    /// # Errors
    /// [`UrlKeyError::Full`] past [`URLAUTH_RECORDS_MAX`] resets; the disk's error.
    pub fn urlauth_reset(&mut self, id: Option<MailboxId>) -> Result<(), UrlKeyError> {
        let created = matches!(self.url_keys, UrlKeys::Unread | UrlKeys::Missing)
            && !self.disk.exists(&self.urlauth_path());
        let log = self.urlauth_keys(true)?.expect("created when missing");
        if created && id.is_none() {
            // The new log's first record is already a fresh reset of all mailboxes.
            return Ok(());
        }
        log.append(id)
    }

    /// Records in the key log (tests and `check_invariants`); `None` before it is read.
    #[must_use]
    pub fn urlauth_records(&self) -> Option<u32> {
        match &self.url_keys {
            UrlKeys::Loaded(log) => Some(log.records),
            UrlKeys::Unread | UrlKeys::Missing => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_decode_only_in_their_one_form() {
        let good = format!("01{}", "aB".repeat(32));
        assert_eq!(decode_token(&good).map(|t| t.len()), Some(32));
        assert_eq!(decode_token(&format!("02{}", "ab".repeat(32))), None, "unknown version");
        assert_eq!(decode_token(&good[..good.len() - 2]), None, "short");
        assert_eq!(decode_token(&format!("01{}", "+b".repeat(32))), None, "not hex");
        assert_eq!(decode_token(&format!("01{}é", "ab".repeat(31))), None, "not ASCII");
    }

    #[test]
    fn records_chain_and_reserved_bytes_are_checked() {
        let seed = nonce_seed(7);
        let first = encode_record(seed, 99, None);
        assert_eq!(get_u32(&first, 0), chain_crc(seed, 99, &first));
        assert_ne!(get_u32(&first, 0), chain_crc(seed, 98, &first), "chains its predecessor");
        let second = encode_record(seed, get_u32(&first, 0), Some(MailboxId(3)));
        assert_eq!((second[4], get_u32(&second, 8)), (KIND_RESET_MAILBOX, 3));
        assert_ne!(first[16..48], second[16..48], "fresh random bytes");
    }
}
