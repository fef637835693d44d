//! The output of one turn of the session: owned response bytes interleaved with slices of the
//! mapped spool, plus the durability ticket the tagged reply waits for.
//!
//! Response text accumulates in one growing buffer; a spool slice closes the buffer into an
//! [`OutChunk::Owned`] chunk and follows it as an [`OutChunk::Spool`] chunk, so message bodies
//! are never copied into the response buffer (the shard writes the chunks vectored).
//!
//! An `Out` never outlives one call of `ImapSession::next`: spool views are `Rc`-backed and
//! must not stay inside the (`Send`) session.

use skua_core::disk::Bytes;
use skua_core::types::Epoch;

use super::OutChunk;

/// Spool slices shorter than this are copied into the owned buffer: a separate iovec costs more
/// than copying a few hundred bytes.
const SPOOL_COPY_BELOW: usize = 256;

/// The owned buffer starts at this size when first written: a tagged reply and a few untagged
/// lines fit without growing it step by step (8, 16, 32, ... bytes: one `realloc` each). A
/// turn that writes nothing allocates nothing.
const BUF_FIRST_CAPACITY: usize = 512;

/// Output under construction.
#[derive(Default)]
pub(crate) struct Out {
    chunks: Vec<OutChunk>,
    buf: Vec<u8>,
    /// Bytes in `chunks` (owned and spool).
    chunk_bytes: usize,
    /// The epoch the tagged reply must wait for; `None` for read-only commands.
    pub durable: Option<Epoch>,
}

impl Out {
    /// Output that starts with `pending` bytes (taken over, not copied).
    pub(crate) fn starting_with(pending: Vec<u8>) -> Out {
        Out { chunks: Vec::new(), buf: pending, chunk_bytes: 0, durable: None }
    }

    /// The owned buffer to append response bytes to.
    pub(crate) fn buf(&mut self) -> &mut Vec<u8> {
        if self.buf.capacity() == 0 {
            self.buf.reserve(BUF_FIRST_CAPACITY);
        }
        &mut self.buf
    }

    /// Bytes in the owned buffer (without allocating it).
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Every byte of output so far, owned and spool: what a slice's output budget counts.
    pub(crate) fn total_bytes(&self) -> usize {
        self.chunk_bytes + self.buf.len()
    }

    /// Appends raw bytes.
    pub(crate) fn put(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.buf().extend_from_slice(bytes);
        }
    }

    /// Appends a slice of the spool that goes inside a plain `{n}` literal (no NUL allowed):
    /// copied with NUL replaced when small, else an [`OutChunk::Spool`] chunk whose NUL
    /// check the host makes after the page-in.
    pub(crate) fn spool_text(&mut self, bytes: Bytes) {
        if bytes.len() < SPOOL_COPY_BELOW {
            crate::imap::encode::extend_without_nul(self.buf(), &bytes);
            return;
        }
        if !self.buf.is_empty() {
            self.chunk_bytes += self.buf.len();
            self.chunks.push(OutChunk::Owned(std::mem::take(&mut self.buf)));
        }
        self.chunk_bytes += bytes.len();
        self.chunks.push(OutChunk::Spool(bytes));
    }

    /// Raises the durability ticket to at least `epoch`.
    pub(crate) fn durable_at(&mut self, epoch: Epoch) {
        self.durable = Some(self.durable.map_or(epoch, |e| e.max(epoch)));
    }

    /// True when nothing was written.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.chunks.is_empty()
    }

    /// The chunks, in order.
    pub(crate) fn finish(mut self) -> (Vec<OutChunk>, Option<Epoch>) {
        if !self.buf.is_empty() {
            self.chunks.push(OutChunk::Owned(self.buf));
        }
        (self.chunks, self.durable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_is_allocated_once_and_only_when_written() {
        let mut out = Out::starting_with(Vec::new());
        out.put(b"");
        assert!(out.is_empty());
        assert_eq!(out.buf.capacity(), 0);
        out.put(b"* OK\r\n");
        assert!(out.buf.capacity() >= BUF_FIRST_CAPACITY);
        assert_eq!(out.buffered(), 6);
        let out = Out::starting_with(b"a OK\r\n".to_vec());
        let (chunks, durable) = out.finish();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].as_bytes(), b"a OK\r\n");
        assert_eq!(durable, None);
    }

    #[test]
    fn spool_slices_become_their_own_chunks() {
        let mut out = Out::default();
        out.put(b"* 1 FETCH (BODY[] {300}\r\n");
        out.spool_text(Bytes::from_vec(vec![b'x'; 300]));
        out.put(b")\r\n");
        out.spool_text(Bytes::from_vec(b"tiny".to_vec()));
        let (chunks, durable) = out.finish();
        assert_eq!(durable, None);
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks.iter().map(|c| c.as_bytes().len()).sum::<usize>(), 25 + 300 + 7);
        assert!(matches!(&chunks[1], OutChunk::Spool(b) if b.len() == 300));
        assert!(matches!(&chunks[2], OutChunk::Owned(b) if b == b")\r\ntiny"));
    }

    /// A plain literal may not hold NUL: small spool slices are copied with NUL replaced at
    /// once, large ones are checked by the host after the page-in (`OutChunk::without_nul`).
    #[test]
    fn nul_in_a_plain_literal_is_replaced_small_or_large() {
        let mut out = Out::default();
        out.spool_text(Bytes::from_vec(b"a\0b".to_vec()));
        let mut large = vec![b'x'; 300];
        large[150] = 0;
        out.spool_text(Bytes::from_vec(large));
        out.spool_text(Bytes::from_vec(vec![b'y'; 300]));
        let (chunks, _) = out.finish();
        assert_eq!(chunks[0].as_bytes(), b"a\x80b");
        assert!(matches!(&chunks[1], OutChunk::Spool(_)), "checked by the host, not here");
        let sent: Vec<OutChunk> = chunks.into_iter().map(OutChunk::without_nul).collect();
        assert!(matches!(&sent[1], OutChunk::Owned(b) if b.len() == 300 && b[150] == 0x80));
        assert!(matches!(&sent[2], OutChunk::Spool(_)), "no NUL: still sent without a copy");
    }

    #[test]
    fn durability_only_rises() {
        let mut out = Out::default();
        out.durable_at(Epoch(5));
        out.durable_at(Epoch(3));
        assert_eq!(out.durable, Some(Epoch(5)));
        assert!(out.is_empty());
    }
}
