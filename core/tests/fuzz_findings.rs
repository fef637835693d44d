//! Inputs the store fuzz targets found that break an expectation in the store. Each test pins
//! one finding with the exact input the target shrank it to; it is ignored until the store code
//! it names is fixed, and `store_support::known_finding` skips exactly that input class in the
//! targets until then (see `protocols/fuzz/README.md`, "Findings"). Un-ignore the test and
//! remove the clause with the fix.
#![cfg(feature = "sim")]

#[path = "../../protocols/fuzz/targets/store_support.rs"]
#[allow(dead_code)]
mod store_support;

use store_support::{Kind, check_unfiltered};

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

/// Bug (target `store_log`): a `mailboxes.log` header whose checksum holds but whose
/// header_size is larger than the file makes `MailboxLog::open` (core/src/store/log.rs,
/// `read_len - header_size`) subtract with overflow: a panic in a debug build, and in release a
/// wrapped length handed to `vec!` (an allocation of about 2^64 bytes: abort). Opening a store
/// runs outside the session's panic guard, so one such file stops the server. Invariant: a
/// damaged store is refused or repaired with a typed result, never a panic.
#[test]
fn log_header_size_past_the_end() {
    check_unfiltered(Kind::Log, &hex("ff576f726bffffff83000001"));
}

/// Bug (target `store_index`): an index record whose checksum holds but whose spool offset
/// plus record length passes `u32::MAX` makes `SpoolRef::end` (core/src/store/spool.rs,
/// `self.offset + self.len`) add with overflow while the store opens: a panic in a debug build,
/// a wrapped position in release. Invariant as above.
#[test]
fn index_record_spool_reference_overflows() {
    check_unfiltered(Kind::Index, &hex("83ffffffff000001"));
}

/// Bug (target `store_spool`): a spool segment header whose checksum holds but whose
/// header_size (3072) lies inside the segment's records. The first open drops every index
/// record (they point below header_size) and keeps the segment as the active one; a message
/// appended then, and flushed (acknowledged), is cut away by the next open as a torn tail
/// (`spool_truncated_bytes: 3456`, `index_records_dropped: 1`). Invariant: recovery settles
/// (a second open repairs nothing) and never loses an acknowledged append.
#[test]
fn segment_header_size_inside_the_records() {
    check_unfiltered(Kind::Spool, &hex("830c00400c"));
}

/// Bug (target `store_index`): an index header whose checksum holds but whose spool checkpoint
/// (offset 40) is not a multiple of 8 (here 0x4a) makes recovery start its spool scan there;
/// the first record does not check out, and `scan_repair::resync`
/// (core/src/store/scan_repair.rs) asserts `from.is_multiple_of(8)`: an `assert!`, so opening
/// the store panics in release too. A position read from disk is input, not an invariant: an
/// unaligned checkpoint should make the header bad (index rebuilt), like any other bad field.
/// An index record with an unaligned spool offset is skipped by the targets for the same
/// reason. Invariant as above.
#[test]
fn index_header_unaligned_checkpoint() {
    check_unfiltered(Kind::Index, &hex("8320008089534b530d0a1a0a"));
}

/// Bug (target `store_spool`): the first spool record (INBOX, UID 1) rewritten, with a
/// checksum that holds, as a record of `Work` with UID 96. Recovery drops INBOX's reference
/// (its checksum copy no longer matches) and its catch-up appends UID 96 to Work's index
/// although the record lies in the spool before Work's other messages: the index breaks its
/// own invariant ("spool order follows UID order", `Index::check_invariants`,
/// core/src/store/index.rs), asserted only in debug builds; a release build keeps the
/// disordered index. Invariant: recovery never builds an index that fails its invariants.
#[test]
fn spool_record_renamed_to_another_mailbox() {
    check_unfiltered(Kind::Spool, &hex("cd4c000100000060"));
}

/// Bug (target `store_index`): an index record rewritten with a checksum that holds but a
/// spool position before the previous record's. `Index::load` (core/src/store/index.rs) ends
/// the index at a record whose UID does not increase, but not at one whose spool position does
/// not, and recovery trusts records before the checkpoint: the loaded index breaks "spool order
/// follows UID order" (asserted only in debug builds). Index records carry no nonce or mailbox
/// seed, so a record misdirected from another index checks out the same way. Invariant:
/// recovery never builds an index that fails its invariants.
#[test]
fn index_record_out_of_spool_order() {
    check_unfiltered(Kind::Index, &hex("8389534b530d0a1a0a000000000000600001"));
}

/// Bug (target `store_index`): the first INBOX index record rewritten, with a checksum that
/// holds, to point 64 bytes further into the spool with a much longer length, past the
/// segment's end. The record lies before the index's checkpoint, so recovery trusts it
/// (core/src/store/open.rs checks the spool end only from the scan start): the store opens
/// with an entry past the spool end, which `UserStore::check_invariants` asserts against
/// (debug builds; core/src/store/mod.rs) and a release build refuses only when the message is
/// read. A bound check costs no read: recovery could drop such an entry. Invariant: no index
/// entry past the spool end (core/FORMAT.md, "Invariants asserted").
#[test]
fn index_record_past_the_spool_end() {
    check_unfiltered(Kind::Index, &hex("83ac004000000083ac08"));
}

/// Bug (target `store_index`, found by libFuzzer): an index record of the `Archive/Old`
/// mailbox's index rewritten, with a checksum that holds, to carry modseq `u64::MAX`.
/// `reconstruct` (core/src/store/reconstruct.rs) keeps old entries' modseqs, takes the highest,
/// and gives each change it makes `highest += 1`: an overflow (a panic in debug builds; in
/// release the modseq wraps to 0 and HIGHESTMODSEQ goes backwards, which CONDSTORE clients
/// rely on never happening). Invariant: modseqs never go backwards; a value read from disk that
/// leaves no room is refused.
#[test]
fn reconstruct_modseq_overflow() {
    check_unfiltered(
        Kind::Index,
        &hex("f1f9024f6c640000f8000000feffffff00000000ffffffffffffffffffff032e00000000"),
    );
}

/// Bug (target `store_index`), the same root cause at its other site: the INBOX index header
/// rewritten, with a checksum that holds, to claim HIGHESTMODSEQ `u64::MAX`. The store opens,
/// and the next change (an append) takes `Index::next_modseq` (core/src/store/index.rs,
/// `highest_modseq += 1`): an overflow, a panic in debug builds, a modseq of 0 in release.
#[test]
fn header_modseq_overflow() {
    check_unfiltered(Kind::Index, &hex("812000ffffffffffffffff"));
}

/// Bug (target `store_index`, in the first fix of the findings above, commit 81e937d, which
/// cut an index at an entry across its checkpoint): the INBOX index header rewritten, with a
/// checksum that holds, so that its (aligned) spool checkpoint lies 16 bytes inside a record.
/// The entry was cut and caught up again on every open (the header keeps its checkpoint), and
/// a scan started there would start inside a record. Invariant: recovery settles (a second
/// open repairs nothing); the scan starts at a record boundary (`open.rs`, `record_boundary`).
#[test]
fn index_checkpoint_inside_a_record() {
    check_unfiltered(Kind::Index, &hex("8328000010"));
}
