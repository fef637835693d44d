//! Cold message bodies are read in before they are sent, never by a page fault inside the send.
//!
//! A FETCH answers with slices of the mapped spool ([`OutChunk::Spool`]). The send copies them
//! into the socket; if a page is not in memory, that copy waits for the disk inside the system
//! call, on the shard's thread, and every other session of the shard waits too. So just before
//! the write each spool chunk is checked with `mincore` (cheap). The cold ones are read ahead
//! (madvise `WILLNEED`: the kernel starts all their disk reads at once, in large requests, with
//! no buffer of ours), and their file ranges are *read* through the runtime's I/O (the shard's
//! io_uring: [`crate::driver::page_in`]). A buffered read completes once its pages are in the
//! page cache, and its completion wakes the write at once (no timer): the send then copies from
//! the map with every page in memory. The bytes read are dropped (the map already has them,
//! and keeping them would hold a buffer per cold body); reads are bounded in size and number in
//! flight, so a write holds at most [`PAGE_IN_READS_IN_FLIGHT_MAX`] x
//! [`crate::limits::PAGE_IN_READ_BYTES_MAX`] of buffers.
//!
//! ```text
//!  chunks ─ mincore ─┬─ all resident ─────────────────────────────────────────────► send
//!                    └─ cold: WILLNEED; their ranges (merged) read through the ring
//!                         ├─ read ─ mincore ─┬─ resident ─────────────────────────► send
//!                         │                  └─ cold again ─┐
//!                         └─ failed (renamed over, removed, │
//!                            no file) or hung ──────────────┴─ WILLNEED, poll until
//!                                                              resident or 2 s ───► send
//! ```
//!
//! A view does not hold a descriptor (`skua_core::disk::os`, "Descriptors are a budget"): it
//! carries its file's name and (device, inode) ([`skua_core::disk::FileRange`]); the read
//! opens the name, refuses a file that is not the same inode (renamed over since), reads and
//! closes. So a descriptor is held only while a read is in flight, at most
//! [`PAGE_IN_READS_IN_FLIGHT_MAX`] per writing session.
//!
//! What the ring cannot read (a read that fails, a file renamed over, bytes that are not a
//! view of the real disk, pages evicted again at once) falls back to the read-ahead alone and a
//! timer that looks again every [`PAGE_IN_POLL_US`] until the pages are in.
//! The whole page-in, ring reads included, is bounded by [`PAGE_IN_WAIT_MAX_MS`]: a chunk
//! still cold after that is sent anyway (the disk is failing or far too slow; the wait is
//! logged).

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use skua_core::disk::{Bytes, FileRange};
use skua_protocols::imap::session::OutChunk;

use crate::limits::{PAGE_IN_POLL_US, PAGE_IN_READS_IN_FLIGHT_MAX, PAGE_IN_WAIT_MAX_MS};
use crate::placement::ShardId;

/// What a page-in did, for the metrics.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct PageIn {
    /// File ranges read in through the runtime's reads (the ring) that completed.
    pub ring_reads: u64,
    /// Some chunk was still cold when the wait ran out: it was sent anyway.
    pub waited_out: bool,
}

/// How long a page-in may wait, and how often it looks again on the fallback path.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    /// The whole page-in's bound.
    pub wait_max: Duration,
    /// The fallback path's look-again period.
    pub poll: Duration,
}

impl Bounds {
    /// The server's bounds (`limits.rs`).
    pub(crate) const SERVER: Bounds = Bounds {
        wait_max: Duration::from_millis(PAGE_IN_WAIT_MAX_MS),
        poll: Duration::from_micros(PAGE_IN_POLL_US),
    };
}

/// Brings every spool chunk of `chunks` into memory (see the module docs): the cold ones'
/// file ranges through `read` (the runtime's read of a file range into the page cache), the
/// rest by read-ahead, waiting on `sleep` (the runtime's timer), all within `bounds`.
pub(crate) async fn page_in<S, R>(
    shard: ShardId,
    chunks: &[OutChunk],
    sleep: impl Fn(Duration) -> S,
    read: impl Fn(FileRange) -> R,
    bounds: Bounds,
) -> PageIn
where
    S: Future<Output = ()>,
    R: Future<Output = io::Result<()>>,
{
    let cold: Vec<&Bytes> =
        chunks.iter().filter_map(OutChunk::spool).filter(|bytes| !bytes.is_resident()).collect();
    if cold.is_empty() {
        return PageIn::default();
    }
    let started = Instant::now();
    // Read-ahead first: the kernel starts every cold range's disk reads at once, in large
    // requests and with no buffer of ours, where the ring's reads go one bounded piece after
    // another; those reads then find the pages arriving and complete as soon as they are in,
    // which is what wakes the write (no timer).
    for bytes in &cold {
        bytes.will_need();
    }
    let ring_reads = Cell::new(0);
    let ranges = merged(cold.iter().filter_map(|bytes| bytes.file_range()).collect());
    let reads = async {
        for batch in ranges.chunks(PAGE_IN_READS_IN_FLIGHT_MAX) {
            for result in all(batch.iter().cloned().map(&read).collect()).await {
                match result {
                    Ok(()) => ring_reads.set(ring_reads.get() + 1),
                    Err(error) => tracing::debug!(
                        shard = shard.0,
                        %error,
                        "cold message body not read through the ring; reading ahead instead"
                    ),
                }
            }
        }
    };
    futures_lite::future::or(reads, sleep(bounds.wait_max)).await;
    let still_cold = |bytes: &&&Bytes| !bytes.is_resident();
    for bytes in cold.iter().filter(still_cold) {
        bytes.will_need(); // again: pages dropped once more while the reads ran
    }
    while cold.iter().any(|bytes| still_cold(&bytes)) {
        if started.elapsed() >= bounds.wait_max {
            tracing::warn!(
                shard = shard.0,
                waited_ms = started.elapsed().as_millis(),
                "message body still not in memory after read-ahead; sending it anyway"
            );
            return PageIn { ring_reads: ring_reads.get(), waited_out: true };
        }
        sleep(bounds.poll).await;
    }
    tracing::trace!(shard = shard.0, waited_us = started.elapsed().as_micros(), "paged in");
    PageIn { ring_reads: ring_reads.get(), waited_out: false }
}

/// `ranges` sorted by file and offset, with ranges of one file that overlap or touch made one
/// (a header and a body of one message, or messages side by side in a segment): one open and
/// one sequential read instead of several.
fn merged(mut ranges: Vec<FileRange>) -> Vec<FileRange> {
    ranges.sort_by(|a, b| (&a.file.path, a.offset).cmp(&(&b.file.path, b.offset)));
    let mut out: Vec<FileRange> = Vec::with_capacity(ranges.len());
    for range in ranges {
        if let Some(last) = out.last_mut()
            && Rc::ptr_eq(&last.file, &range.file)
            && range.offset <= last.offset + last.len
        {
            last.len = last.len.max(range.offset + range.len - last.offset);
            continue;
        }
        out.push(range);
    }
    out
}

/// Runs `reads` concurrently and returns their results in order.
async fn all<R: Future<Output = io::Result<()>>>(reads: Vec<R>) -> Vec<io::Result<()>> {
    let mut reads: Vec<Pin<Box<R>>> = reads.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<io::Result<()>>> = reads.iter().map(|_| None).collect();
    poll_fn(|context| {
        let mut pending = false;
        for (read, result) in reads.iter_mut().zip(results.iter_mut()) {
            if result.is_none() {
                match read.as_mut().poll(context) {
                    Poll::Ready(done) => *result = Some(done),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    results.into_iter().map(|result| result.expect("every read finished")).collect()
}

#[cfg(test)]
#[path = "pagein_tests.rs"]
mod tests;
