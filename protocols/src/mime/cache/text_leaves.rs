//! The `text/*` leaves of a message, found from its cache blob's part table instead of by
//! scanning the message again: what `SEARCH BODY` and `TEXT` decode and match.
//!
//! The part table gives every entity's header and body range (`CACHE-FORMAT.md`, "Part table
//! entry"). A leaf's media type is not stored, so each leaf's own header (a few hundred bytes)
//! is parsed with the same code the scanner uses ([`EntityFields`], [`classify`]); the bodies
//! are never read here, so a 30 KB base64 attachment costs its header and nothing else, where
//! the scanner looked for a delimiter in every one of its lines.
//!
//! The answer is the scanner's ([`super::super::tree::scan`]) for every blob `build` wrote for
//! the message, because the walk rebuilds each leaf's media type the way the scanner reports
//! it: a leaf whose header names a container (a multipart, or an unencoded message/rfc822 or
//! message/global) became a leaf only because the scanner reported it as `text/plain;
//! charset=US-ASCII` (no boundary, no delimiter found, or the depth limit); a part without
//! Content-Type is `message/rfc822` inside a multipart/digest (RFC 2046 §5.1.5) and
//! `text/plain` elsewhere. Nested messages need nothing special: their leaves are entries of
//! the table like any other, and their headers are not leaves, as in the scanned tree.
//!
//! A blob this walk cannot vouch for is not used ([`for_each_text_leaf`] answers `None` and the
//! caller scans): one that does not parse, one whose structure was truncated at a limit (the
//! scanner's one-leaf form keeps the root's transfer encoding, which a blob whose header
//! overflowed does not), and one whose root does not span exactly the message or whose ranges
//! leave it. The store keeps blob and message in one checksummed spool record, so a blob of
//! another message of the very same length is not looked for.

use std::ops::Range;

use super::view::{CacheView, PartEntry};
use super::{KIND_LEAF, KIND_MULTIPART};
use crate::mime::content::EntityFields;
use crate::mime::limits::MESSAGE_BYTES_MAX;
use crate::mime::tree::{Kind, classify, default_media};

/// A `text/*` leaf: where its body is and how to decode it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TextLeaf<'a> {
    /// The body's bytes in the message.
    pub body: Range<usize>,
    /// The Content-Transfer-Encoding token, lower-cased.
    pub encoding: Option<&'a [u8]>,
    /// The charset parameter as sent.
    pub charset: Option<&'a [u8]>,
}

/// An open container of the walk: a multipart or message/rfc822 entry.
struct Container {
    /// Its header, parsed only when a child without Content-Type asks whether it is a digest.
    header: Range<usize>,
    /// Table index just past its subtree.
    end: usize,
    /// Its kind byte.
    kind: u8,
    /// Whether it is a multipart/digest, once asked.
    digest: Option<bool>,
}

/// Calls `visit` on each `text/*` leaf the part table of `blob` lists for `message`, in order,
/// until it answers true; answers whether one did. `None` when the blob cannot stand for the
/// message (see the module doc): the caller then scans the message.
pub(crate) fn for_each_text_leaf(
    message: &[u8],
    blob: &[u8],
    mut visit: impl FnMut(&TextLeaf<'_>) -> bool,
) -> Option<bool> {
    let view = CacheView::parse(blob).ok()?;
    let data = &message[..message.len().min(MESSAGE_BYTES_MAX)];
    if view.truncated() || !fits(&view, data) {
        return None;
    }
    let mut open: Vec<Container> = Vec::new();
    for index in 0..view.part_count() {
        let entry = view.entry(index)?;
        while open.last().is_some_and(|container| container.end <= index) {
            open.pop();
        }
        let (header, body) = ranges(&entry)?;
        if entry.kind != KIND_LEAF {
            let end = index + usize::from(entry.subtree);
            open.push(Container { header, end, kind: entry.kind, digest: None });
            continue;
        }
        let mut fields = EntityFields::parse_with(data, header, |_| {});
        let in_digest = match open.last_mut() {
            Some(parent) if parent.kind == KIND_MULTIPART && fields.media.is_none() => {
                *parent.digest.get_or_insert_with(|| is_digest(data, parent.header.clone()))
            }
            _ => false,
        };
        let (kind, media) = classify(&mut fields, true, in_digest);
        // A container type on a leaf: the scanner reported it as plain text (see the module doc).
        let media = if kind == Kind::Leaf { media } else { default_media() };
        if media.main != b"text" {
            continue;
        }
        let leaf = TextLeaf {
            body,
            encoding: fields.encoding.as_deref(),
            charset: media.parameter(b"charset"),
        };
        if visit(&leaf) {
            return Some(true);
        }
    }
    Some(false)
}

/// True when the header at `header` declares a multipart/digest.
fn is_digest(data: &[u8], header: Range<usize>) -> bool {
    let fields = EntityFields::parse_with(data, header, |_| {});
    fields.media.is_some_and(|media| media.is(b"multipart", b"digest"))
}

/// An entry's header and body ranges; `None` if they overflow.
fn ranges(entry: &PartEntry) -> Option<(Range<usize>, Range<usize>)> {
    let start = usize::try_from(entry.header_offset).ok()?;
    let body_start = start.checked_add(usize::try_from(entry.header_len).ok()?)?;
    let body_end = body_start.checked_add(usize::try_from(entry.body_len).ok()?)?;
    Some((start..body_start, body_start..body_end))
}

/// True when the blob describes a message of `data`'s length: the root spans exactly `data`,
/// its header length is the fixed header's, and every entry lies inside `data`. Checked for
/// every entry before any leaf is visited, so a blob that fails falls back to the scan before
/// any answer was given from it.
fn fits(view: &CacheView<'_>, data: &[u8]) -> bool {
    let Some(root) = view.entry(0) else { return false };
    let root_fits = root.header_offset == 0
        && root.header_len == view.header_len()
        && ranges(&root).is_some_and(|(_, body)| body.end == data.len());
    root_fits
        && (0..view.part_count()).all(|index| {
            view.entry(index)
                .as_ref()
                .and_then(ranges)
                .is_some_and(|(_, body)| body.end <= data.len())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::cache::build;
    use crate::mime::limits::DEPTH_MAX;
    use crate::mime::tree::scan;

    /// A text leaf, owned: body range, encoding, charset.
    type Owned = (Range<usize>, Option<Vec<u8>>, Option<Vec<u8>>);

    /// The scanner's text leaves, in the walk's form.
    fn scanned(message: &[u8]) -> Vec<Owned> {
        scan(message)
            .nodes
            .iter()
            .filter(|node| node.kind == Kind::Leaf && node.media.main == b"text")
            .map(|node| {
                let charset = node.media.parameter(b"charset").map(<[u8]>::to_vec);
                (node.body(), node.fields.encoding.clone(), charset)
            })
            .collect()
    }

    /// The walk's text leaves, all of them.
    fn walked(message: &[u8], blob: &[u8]) -> Option<Vec<Owned>> {
        let mut leaves = Vec::new();
        let found = for_each_text_leaf(message, blob, |leaf| {
            let owned = |bytes: Option<&[u8]>| bytes.map(<[u8]>::to_vec);
            leaves.push((leaf.body.clone(), owned(leaf.encoding), owned(leaf.charset)));
            false
        })?;
        assert!(!found);
        Some(leaves)
    }

    fn assert_same_leaves(message: &[u8]) {
        let blob = build(message);
        let walked = walked(message, &blob);
        if scan(message).truncated {
            assert_eq!(walked, None);
        } else {
            assert_eq!(walked, Some(scanned(message)), "{}", String::from_utf8_lossy(message));
        }
    }

    proptest::proptest! {
        /// The walk finds the scanner's text leaves, with the same encodings and charsets, in
        /// every generated message (the generator is SEARCH's, `search_cache_tests.rs`).
        #[test]
        fn the_walk_finds_the_scanned_text_leaves(
            entity in crate::mime::search::cache_tests::entity(),
            lf in proptest::bool::weighted(0.2),
        ) {
            assert_same_leaves(&crate::mime::search::cache_tests::message(&entity, lf));
        }
    }

    #[test]
    fn digest_parts_without_content_type_are_messages() {
        let message = b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\n\
Subject: inner\r\n\r\ninner body\r\n--d\r\nContent-Type: text/plain\r\n\r\nplain\r\n--d--\r\n";
        assert_same_leaves(message);
        let leaves = walked(message, &build(message)).expect("fits");
        let bodies: Vec<&[u8]> = leaves.iter().map(|(body, ..)| &message[body.clone()]).collect();
        assert_eq!(bodies, vec![&b"inner body"[..], b"plain"]);
    }

    #[test]
    fn containers_reported_as_text_are_text() {
        let mut deep = Vec::new();
        for _ in 0..DEPTH_MAX + 2 {
            deep.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        deep.extend_from_slice(b"deep body\r\n");
        for message in [
            &b"Content-Type: multipart/mixed; boundary=x\r\n\r\nno delimiter\r\n"[..],
            b"Content-Type: multipart/mixed\r\n\r\nno boundary",
            b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdA==",
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n--b\r\nContent-Type: \
message/rfc822\r\n\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: \
quoted-printable\r\n\r\n=C3=A9\r\n--b--\r\n",
            &deep,
        ] {
            assert_same_leaves(message);
        }
    }

    #[test]
    fn a_blob_of_another_message_or_damaged_is_not_used() {
        let message =
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b--\r\n";
        let blob = build(message);
        assert!(walked(message, &blob).is_some());
        assert_eq!(for_each_text_leaf(&message[..message.len() - 1], &blob, |_| true), None);
        assert_eq!(for_each_text_leaf(b"Subject: x\r\n\r\nother", &blob, |_| true), None);
        assert_eq!(for_each_text_leaf(message, &blob[..blob.len() - 1], |_| true), None);
        assert_eq!(for_each_text_leaf(message, b"", |_| true), None);
        // Wider than the message: an entry reaching past its end.
        let mut wide = blob.clone();
        let last = wide.len() - 16;
        wide[last + 8] = 0xff;
        assert_eq!(for_each_text_leaf(message, &wide, |_| true), None);
        let mut many = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
        for _ in 0..crate::mime::limits::PARTS_MAX {
            many.extend_from_slice(b"--b\r\n\r\nx\r\n");
        }
        assert_eq!(for_each_text_leaf(&many, &build(&many), |_| true), None, "truncated");
    }
}
