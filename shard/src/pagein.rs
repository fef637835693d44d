//! Cold message bodies are read in before they are sent, never by a page fault inside the send.
//!
//! A FETCH answers with slices of the mapped spool ([`OutChunk::Spool`]). The send copies them
//! into the socket; if a page is not in memory, that copy waits for the disk inside the system
//! call, on the shard's thread, and every other session of the shard waits too. The session
//! already asks for read-ahead (madvise `WILLNEED`) of the messages it is about to answer; here,
//! just before the write, each spool chunk is checked with `mincore`, and a write whose bodies
//! are not all resident waits on a timer (the shard serves others meanwhile) until they are, up
//! to [`PAGE_IN_WAIT_MAX_MS`]. A chunk still cold after that is sent anyway (the disk is
//! failing or far too slow; the wait is logged).

use std::future::Future;
use std::time::{Duration, Instant};

use skua_protocols::imap::session::OutChunk;

use crate::limits::{PAGE_IN_POLL_US, PAGE_IN_WAIT_MAX_MS};
use crate::shard::Shard;

/// Waits until every spool chunk of `chunks` is in memory (see the module docs), sleeping
/// with `sleep` (the runtime's timer) between looks.
pub(crate) async fn page_in<F: Future<Output = ()>>(
    shard: &Shard,
    chunks: &[OutChunk],
    sleep: impl Fn(Duration) -> F,
) {
    let cold = |chunk: &&OutChunk| chunk.spool().is_some_and(|bytes| !bytes.is_resident());
    if !chunks.iter().any(|chunk| cold(&chunk)) {
        return;
    }
    for chunk in chunks.iter().filter(cold) {
        if let Some(bytes) = chunk.spool() {
            bytes.will_need();
        }
    }
    let started = Instant::now();
    let wait_max = Duration::from_millis(PAGE_IN_WAIT_MAX_MS);
    while chunks.iter().any(|chunk| cold(&chunk)) {
        if started.elapsed() >= wait_max {
            tracing::warn!(
                shard = shard.id.0,
                waited_ms = started.elapsed().as_millis(),
                "message body still not in memory after read-ahead; sending it anyway"
            );
            return;
        }
        sleep(Duration::from_micros(PAGE_IN_POLL_US)).await;
    }
    tracing::trace!(shard = shard.id.0, waited_us = started.elapsed().as_micros(), "paged in");
}
