//! Target `socketmap`: bytes as a socketmap connection (Postfix's socketmap_table(5) protocol,
//! `skua_protocols::socketmap`), fed in reads sized by the first byte, every look-up answered.
//!
//! Expectations: never panics; every reply written is one netstring whose string starts with
//! a reply word (`OK `, `NOTFOUND `, `PERM `); every look-up has a non-empty UTF-8 key within
//! `REQUEST_BYTES_MAX`; the bytes held never exceed one request plus one read; after `Close`
//! nothing more happens; and the reads do not change the outcome (the same steps as when the
//! bytes come whole).

use skua_protocols::socketmap::{REQUEST_BYTES_MAX, Reply, SocketmapSession, SocketmapStep, frame};

/// The target.
pub fn target(data: &[u8]) {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let read = usize::from(first % 64) + 1;
    let in_reads = run(input, read);
    let whole = run(input, input.len().max(1));
    assert_eq!(in_reads, whole, "reads of {read} bytes changed the outcome");
}

/// The steps a session takes on `input` fed `read` bytes at a time (lookups answered with
/// their key, or NOTFOUND for an odd-length key).
fn run(input: &[u8], read: usize) -> Vec<Vec<u8>> {
    let mut session = SocketmapSession::new();
    let mut written = Vec::new();
    for chunk in input.chunks(read) {
        session.feed(chunk);
        loop {
            match session.next() {
                SocketmapStep::NeedInput => break,
                SocketmapStep::Close => {
                    written.push(b"close".to_vec());
                    session.feed(b"6:user a,");
                    assert_eq!(session.next(), SocketmapStep::Close);
                    return written;
                }
                SocketmapStep::Write(bytes) => {
                    let (start, end) = frame(&bytes).expect("framed").expect("whole");
                    assert_eq!(end + 1, bytes.len());
                    let body = &bytes[start..end];
                    assert!(
                        body.starts_with(b"OK ")
                            || body.starts_with(b"PERM ")
                            || body == b"NOTFOUND ",
                        "{body:?}"
                    );
                    written.push(bytes);
                }
                SocketmapStep::Lookup(lookup) => {
                    assert!(!lookup.key.is_empty() && lookup.key.len() < REQUEST_BYTES_MAX);
                    let reply = if lookup.key.len() % 2 == 0 {
                        Reply::Ok(lookup.key)
                    } else {
                        Reply::NotFound
                    };
                    session.answer(&reply);
                }
            }
        }
        // One request (4 length digits, the colon, the string, the comma) plus one read.
        assert!(session.buffered_len() <= REQUEST_BYTES_MAX + 6 + read);
    }
    written
}
