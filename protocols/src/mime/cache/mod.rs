//! The MIME cache blob: computed once per message at delivery/append by [`build`], stored by
//! the core store beside the message (opaque to it), read on every FETCH by [`CacheView`].
//!
//! The byte layout is documented in `protocols/src/mime/CACHE-FORMAT.md`; the constants below
//! are its single implementation. The blob has no checksum of its own: it lives inside a spool
//! record whose checksum covers it.
//!
//! ```
//! use skua_protocols::imap::types::SectionText;
//! use skua_protocols::mime::cache::{CacheView, build};
//!
//! let message = b"Subject: hi\r\n\r\nbody\r\n";
//! let blob = build(message);
//! let view = CacheView::parse(&blob).expect("a blob from build parses");
//! assert_eq!(view.envelope(), b"(NIL \"hi\" NIL NIL NIL NIL NIL NIL NIL NIL)");
//! let text = view.section(message, &[], Some(&SectionText::Text)).expect("exists");
//! assert_eq!(text.bytes(message), b"body\r\n");
//! ```

mod keys;
mod section;
mod text_leaves;
mod view;

pub use keys::{KEY_BYTES_MAX, KeyField, REFERENCES_MAX, SortKeys};
pub use section::SectionBytes;
pub use view::{CacheError, CacheView, OrderFields};

pub(crate) use text_leaves::{TextLeaf, for_each_text_leaf};

use super::structure::write_body_structure;
use super::tree::{Kind, Tree, default_media, scan};

/// First three bytes of every blob.
pub(crate) const MAGIC: [u8; 3] = *b"SMC";
/// The format version written by this code: the key section right after the fixed header, so
/// that SORT reads one or two cache lines of a blob. [`CacheView::parse`] also reads
/// [`VERSION_KEYS_LAST`] and [`VERSION_NO_KEYS`] blobs, and refuses any other.
pub const VERSION: u8 = 3;
/// Format version 2: the key section after the part table.
pub const VERSION_KEYS_LAST: u8 = 2;
/// The first format version, which has no key section (SORT and THREAD keys).
pub const VERSION_NO_KEYS: u8 = 1;

/// Flag bit: the Date: header parsed; the sent date fields are meaningful.
pub(crate) const FLAG_SENT_DATE: u8 = 1 << 0;
/// Flag bit: a limit was hit and the structure was simplified.
pub(crate) const FLAG_TRUNCATED: u8 = 1 << 1;
/// Flag bit: the message has no blank line between header and body.
pub(crate) const FLAG_NO_SEPARATOR: u8 = 1 << 2;
/// Every defined flag bit; the others must be zero.
pub(crate) const FLAGS_ALL: u8 = FLAG_SENT_DATE | FLAG_TRUNCATED | FLAG_NO_SEPARATOR;

/// Size of the fixed header: magic 3, version 1, flags 1, reserved 1, zone 2, date 8,
/// header length 4.
pub(crate) const FIXED_SIZE: usize = 3 + 1 + 1 + 1 + 2 + 8 + 4;
/// Size of one part table entry: header offset 4, header length 4, body length 4,
/// subtree size 2, kind 1, part flags 1.
pub(crate) const PART_SIZE: usize = 4 + 4 + 4 + 2 + 1 + 1;

/// Part kind: a leaf.
pub(crate) const KIND_LEAF: u8 = 0;
/// Part kind: a multipart.
pub(crate) const KIND_MULTIPART: u8 = 1;
/// Part kind: a message/rfc822 part whose one child is the encapsulated message.
pub(crate) const KIND_MESSAGE: u8 = 2;
/// Part flag bit: the entity is a message (the message itself or an encapsulated one).
pub(crate) const PART_MESSAGE_ROOT: u8 = 1 << 0;

const _: () = assert!(FIXED_SIZE == 20);
const _: () = assert!(PART_SIZE == 16);

/// Analyses `message` and returns its cache blob. Never fails: malformed MIME is described as
/// well as possible, and a message beyond the limits gets a simplified structure (see
/// `CACHE-FORMAT.md`, "Truncation").
#[must_use]
pub fn build(message: &[u8]) -> Vec<u8> {
    build_with_keys(message).0
}

/// [`build`], also giving the keys it put in the key section: delivery and APPEND pass the
/// Message-IDs on to the store, which threads the message (THREADID), without parsing the
/// header twice.
#[must_use]
pub fn build_with_keys(message: &[u8]) -> (Vec<u8>, SortKeys) {
    let tree = scan(message);
    let keys = SortKeys::extract(message);
    let blob = build_blob(&tree, &keys);
    (blob, keys)
}

/// The ids of a message's header the store threads it by (THREADID, `core/FORMAT.md`), from
/// the keys [`build_with_keys`] gave.
#[must_use]
pub fn thread_keys(keys: &SortKeys) -> skua_core::store::ThreadKeys<'_> {
    skua_core::store::ThreadKeys {
        message_id: &keys.message_id,
        in_reply_to: &keys.in_reply_to,
        references: &keys.references,
    }
}

fn build_blob(tree: &Tree, keys: &SortKeys) -> Vec<u8> {
    encode(tree, keys).unwrap_or_else(|| {
        // Only a multi-gigabyte header can make a field overflow its u32 length: describe the
        // message as one leaf with an all-NIL envelope, which always fits.
        let mut root = tree.nodes[0].clone();
        root.kind = Kind::Leaf;
        root.children.clear();
        root.media = default_media();
        root.fields = Default::default();
        root.envelope = Some(b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)".to_vec());
        let simple = Tree { nodes: vec![root], truncated: true, separator: tree.separator };
        encode(&simple, keys).expect("a one-leaf description with NIL fields is small")
    })
}

/// Writes the blob; `None` when a length does not fit its u32 field.
fn encode(tree: &Tree, keys: &SortKeys) -> Option<Vec<u8>> {
    let root = &tree.nodes[0];
    let envelope = root.envelope.as_deref().unwrap_or_default();
    // One allocation in the common case: the two structures take about 128 bytes a part.
    let estimate =
        FIXED_SIZE + 16 + 256 + envelope.len() + (2 * 128 + PART_SIZE) * tree.nodes.len();
    let mut out = Vec::with_capacity(estimate);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    let mut flags = 0;
    if root.sent_date.is_some() {
        flags |= FLAG_SENT_DATE;
    }
    if tree.truncated {
        flags |= FLAG_TRUNCATED;
    }
    if !tree.separator {
        flags |= FLAG_NO_SEPARATOR;
    }
    out.push(flags);
    out.push(0);
    let (zone, date) = root.sent_date.map_or((0, 0), |d| (d.zone_minutes, d.unix_seconds));
    out.extend_from_slice(&zone.to_le_bytes());
    out.extend_from_slice(&date.to_le_bytes());
    out.extend_from_slice(&u32::try_from(root.header.len()).ok()?.to_le_bytes());
    // The key section (version 3: next to the fixed header), length first.
    let length_at = out.len();
    out.extend_from_slice(&[0; 4]);
    keys.encode(&mut out);
    let length = u32::try_from(out.len() - length_at - 4).ok()?;
    out[length_at..length_at + 4].copy_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&u32::try_from(envelope.len()).ok()?.to_le_bytes());
    out.extend_from_slice(envelope);
    for extensible in [true, false] {
        // The structures are written in place; their length fields are filled in after.
        let length_at = out.len();
        out.extend_from_slice(&[0; 4]);
        write_body_structure(&mut out, tree, extensible);
        let length = u32::try_from(out.len() - length_at - 4).ok()?;
        out[length_at..length_at + 4].copy_from_slice(&length.to_le_bytes());
    }
    out.extend_from_slice(&u32::try_from(tree.nodes.len()).ok()?.to_le_bytes());
    let subtree = subtree_sizes(tree);
    for (node, size) in tree.nodes.iter().zip(subtree) {
        out.extend_from_slice(&u32::try_from(node.header.start).ok()?.to_le_bytes());
        out.extend_from_slice(&u32::try_from(node.header.len()).ok()?.to_le_bytes());
        out.extend_from_slice(&u32::try_from(node.body().len()).ok()?.to_le_bytes());
        out.extend_from_slice(&u16::try_from(size).ok()?.to_le_bytes());
        out.push(match node.kind {
            Kind::Leaf => KIND_LEAF,
            Kind::Multipart => KIND_MULTIPART,
            Kind::Message => KIND_MESSAGE,
        });
        out.push(if node.message_root { PART_MESSAGE_ROOT } else { 0 });
    }
    Some(out)
}

/// Entries in each node's subtree (itself included); nodes are in pre-order, so children come
/// after their parent and one backward pass adds each size into the parent's.
fn subtree_sizes(tree: &Tree) -> Vec<usize> {
    let mut sizes = vec![1usize; tree.nodes.len()];
    for index in (0..tree.nodes.len()).rev() {
        for &child in &tree.nodes[index].children {
            assert!(child > index, "nodes are in pre-order");
            sizes[index] += sizes[child];
        }
    }
    sizes
}
