//! URLAUTH access keys (`urlauth.keys`, core/FORMAT.md) across restarts and crashes.
//!
//! Invariants: a token the store handed out and whose key change was acknowledged never
//! checks again, whatever a crash keeps (a reset a crash lost is never given again, and a
//! stale record behind a new one never chains); a token handed out after its keys were
//! durable checks after any crash until its mailbox's keys are reset; a token checks only
//! for the mailbox and the exact URL it was made for; the file is the owner's alone.

use std::path::Path;
use std::rc::Rc;

use skua_core::disk::sim::{CrashMode, SimDisk};
use skua_core::disk::{Disk, Flush};
use skua_core::store::{URLAUTH_RECORDS_MAX, URLAUTH_TOKEN_HEX_LEN, UrlKeyError, UserStore};
use skua_core::types::MailboxId;

const DIR: &str = "u";

fn flush(disk: &SimDisk) {
    if let Some(flush) = disk.flush_begin() {
        let epoch = flush.epoch();
        flush.run().unwrap();
        disk.flush_end(epoch);
    }
}

fn open(disk: &SimDisk) -> UserStore<SimDisk> {
    UserStore::open(Rc::new(disk.clone()), Path::new(DIR)).unwrap()
}

#[test]
fn tokens_check_for_their_mailbox_and_url_only_and_survive_a_restart() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    let drafts = store.create_mailbox("Drafts").unwrap();
    let rump = b"imap://u@host/INBOX/;UID=1;URLAUTH=anonymous";
    assert!(!store.urlauth_check(inbox, rump, &format!("01{}", "0".repeat(64))), "no keys yet");
    assert_eq!(store.urlauth_records(), None, "checking makes no keys");
    let token = store.urlauth_token(inbox, rump).unwrap();
    assert_eq!(token.len(), URLAUTH_TOKEN_HEX_LEN);
    assert!(token.starts_with("01") && token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(store.urlauth_token(inbox, rump).unwrap(), token, "deterministic");
    assert!(store.urlauth_check(inbox, rump, &token));
    assert!(store.urlauth_check(inbox, rump, &token.to_uppercase()), "hex in either case");
    assert!(!store.urlauth_check(drafts, rump, &token), "another mailbox's key");
    assert!(!store.urlauth_check(inbox, b"imap://u@host/INBOX/;UID=2;URLAUTH=anonymous", &token));
    let mut flipped = token.clone().into_bytes();
    flipped[40] = if flipped[40] == b'0' { b'1' } else { b'0' };
    assert!(!store.urlauth_check(inbox, rump, std::str::from_utf8(&flipped).unwrap()));
    let drafts_token = store.urlauth_token(drafts, rump).unwrap();
    assert_ne!(drafts_token, token);
    flush(&disk);
    drop(store);

    let mut store = open(&disk);
    assert!(store.urlauth_check(inbox, rump, &token), "survives a restart");
    store.urlauth_reset(Some(inbox)).unwrap();
    assert!(!store.urlauth_check(inbox, rump, &token), "RESETKEY INBOX");
    assert!(store.urlauth_check(drafts, rump, &drafts_token), "other mailboxes keep theirs");
    let second = store.urlauth_token(inbox, rump).unwrap();
    assert_ne!(second, token);
    store.urlauth_reset(None).unwrap();
    assert!(!store.urlauth_check(inbox, rump, &second), "RESETKEY");
    assert!(!store.urlauth_check(drafts, rump, &drafts_token), "RESETKEY");
    let third = store.urlauth_token(inbox, rump).unwrap();
    flush(&disk);
    drop(store);

    let mut store = open(&disk);
    assert!(store.urlauth_check(inbox, rump, &third));
    assert!(!store.urlauth_check(inbox, rump, &token));
    assert!(!store.urlauth_check(inbox, rump, &second));
    assert_eq!(store.urlauth_records(), Some(3), "create, reset INBOX, reset all");
}

/// A token the model knows about and what must hold for it after a crash.
#[derive(Clone, Debug)]
struct Minted {
    mailbox: MailboxId,
    rump: Vec<u8>,
    token: String,
    /// Its key was durable when it was handed out, and no reset of it was started since:
    /// it must check.
    must_check: bool,
    /// A reset of its mailbox (or of all) was acknowledged: it must never check again.
    revoked: bool,
    /// A reset of its mailbox was started but not yet acknowledged.
    reset_pending: bool,
}

fn check_after_crash(crashed: &SimDisk, minted: &[Minted], context: &str) -> UserStore<SimDisk> {
    let mut store = open(crashed);
    for m in minted {
        let checks = store.urlauth_check(m.mailbox, &m.rump, &m.token);
        if m.revoked {
            assert!(!checks, "{context}: a revoked token checks again: {m:?}");
        }
        if m.must_check {
            assert!(checks, "{context}: a durable token was lost: {m:?}");
        }
    }
    store
}

#[test]
fn no_crash_revives_a_revoked_token_or_loses_a_durable_one() {
    let mut crashes = 0;
    for workload in 0..6u64 {
        let disk = SimDisk::new();
        let mut store = open(&disk);
        let ids = [store.mailbox_id("INBOX").unwrap(), store.create_mailbox("A").unwrap()];
        flush(&disk);
        let mut minted: Vec<Minted> = Vec::new();
        for step in 0..14u64 {
            let choice = (workload * 7 + step * 3) % 5;
            let mailbox = ids[usize::try_from((step + workload) % 2).unwrap()];
            match choice {
                0..=2 => {
                    let rump = format!("imap://u@h/m/;UID={step};URLAUTH=anonymous").into_bytes();
                    let token = store.urlauth_token(mailbox, &rump).unwrap();
                    // Handed out only after the flush below: before that it promises nothing.
                    minted.push(Minted {
                        mailbox,
                        rump,
                        token,
                        must_check: false,
                        revoked: false,
                        reset_pending: false,
                    });
                }
                3 => {
                    store.urlauth_reset(Some(mailbox)).unwrap();
                    for m in minted.iter_mut().filter(|m| m.mailbox == mailbox) {
                        m.must_check = false;
                        m.reset_pending = true;
                    }
                }
                _ => {
                    store.urlauth_reset(None).unwrap();
                    for m in &mut minted {
                        m.must_check = false;
                        m.reset_pending = true;
                    }
                }
            }
            // Crash before the acknowledgement, keeping any part of the pending writes.
            for mode in CrashMode::ALL {
                for seed in 0..4 {
                    let context = format!("workload {workload} step {step} {mode:?} seed {seed}");
                    let crashed = disk.crash(seed, mode);
                    let mut after = check_after_crash(&crashed, &minted, &context);
                    crashes += 1;
                    // Write over whatever the crash left and acknowledge it: a stale record
                    // the crash left behind the new one must not replay after it.
                    after.urlauth_reset(Some(mailbox)).unwrap();
                    let fresh = after.urlauth_token(mailbox, b"fresh").unwrap();
                    flush(&crashed);
                    drop(after);
                    let again = crashed.crash(seed + 1, CrashMode::TornSubset);
                    let revoked: Vec<Minted> =
                        minted.iter().filter(|m| m.revoked).cloned().collect();
                    let mut reopened = check_after_crash(&again, &revoked, &context);
                    assert!(
                        reopened.urlauth_check(mailbox, b"fresh", &fresh),
                        "{context}: a stale record replayed behind a new one"
                    );
                }
            }
            if step % 3 != 2 {
                continue; // several records in one flush round
            }
            flush(&disk);
            // Acknowledged: tokens made so far were handed out, resets took effect.
            for m in &mut minted {
                if m.reset_pending {
                    m.revoked = true;
                    m.reset_pending = false;
                } else if !m.revoked {
                    m.must_check = true;
                }
            }
        }
    }
    assert!(crashes >= 6 * 14 * 5 * 4);
}

#[test]
fn a_damaged_key_log_is_started_anew_and_old_tokens_stay_invalid() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    let token = store.urlauth_token(inbox, b"r").unwrap();
    flush(&disk);
    drop(store);
    // Flip a header byte at rest: the checksum no longer holds.
    let path = Path::new(DIR).join("urlauth.keys");
    let file = disk.open(&path, skua_core::disk::OpenMode::Existing).unwrap();
    let mut byte = [0u8; 1];
    skua_core::disk::DiskFile::read_exact_at(&file, &mut byte, 30).unwrap();
    skua_core::disk::DiskFile::write_all_at(&file, &[byte[0] ^ 1], 30).unwrap();
    flush(&disk);
    let mut store = open(&disk);
    assert!(!store.urlauth_check(inbox, b"r", &token), "a damaged log has no keys");
    let fresh = store.urlauth_token(inbox, b"r").unwrap();
    assert_ne!(fresh, token, "new random keys");
    flush(&disk);
    let mut store = open(&disk);
    assert!(store.urlauth_check(inbox, b"r", &fresh));
    assert!(!store.urlauth_check(inbox, b"r", &token));
}

#[test]
fn resets_are_bounded() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    store.urlauth_reset(None).unwrap();
    for _ in 1..URLAUTH_RECORDS_MAX {
        store.urlauth_reset(Some(inbox)).unwrap();
    }
    assert!(matches!(store.urlauth_reset(Some(inbox)), Err(UrlKeyError::Full)));
    assert!(matches!(store.urlauth_reset(None), Err(UrlKeyError::Full)));
    let token = store.urlauth_token(inbox, b"r").unwrap();
    flush(&disk);
    let mut store = open(&disk);
    assert!(store.urlauth_check(inbox, b"r", &token), "the full log still replays whole");
    assert_eq!(store.urlauth_records(), Some(URLAUTH_RECORDS_MAX));
}

#[test]
fn the_key_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let disk = Rc::new(skua_core::disk::os::OsDisk::new(root.path()).unwrap());
    let mut store = UserStore::open(disk, Path::new(DIR)).unwrap();
    let inbox = store.mailbox_id("INBOX").unwrap();
    store.urlauth_token(inbox, b"r").unwrap();
    let mode =
        std::fs::metadata(root.path().join(DIR).join("urlauth.keys")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
}
