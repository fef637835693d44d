//! The MIME tree of a message (RFC 2045/2046), found in one forward pass over its lines.
//!
//! Every entity (the message, each body part, each message encapsulated in a message/rfc822
//! part) becomes a [`Node`] with byte offsets into the message, in pre-order. The scanner
//! keeps a stack of open multipart boundaries and checks each line that starts with `--`
//! against them, innermost first, so a missing close delimiter of an inner multipart is healed
//! by the outer one, and each byte is looked at a bounded number of times: the work is linear
//! in the message size. Nothing recurses; depth and part count are capped by [`limits`].
//!
//! Part extents follow RFC 2046 §5.1.1: the line ending before a delimiter line belongs to the
//! delimiter, so a part's body ends before it. Body line counts (`body-fld-lines`) count LFs in
//! the body plus one for a last line without a line ending.
//!
//! [`limits`]: super::limits

use std::ops::Range;

use super::content::{EntityFields, MediaType};
use super::date::SentDate;
use super::envelope::Envelope;
use super::header::{Line, is_wsp, line_at, line_ending_before};
use super::limits::{DEPTH_MAX, MESSAGE_BYTES_MAX, PARTS_MAX};

/// What an entity holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A leaf: its body is content.
    Leaf,
    /// A multipart: its children are the body parts.
    Multipart,
    /// A message/rfc822 (or message/global) part: its single child is the encapsulated message.
    Message,
}

/// One MIME entity.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    /// The header block, blank line included; `header.end` is where the body starts.
    pub header: Range<usize>,
    /// End of the body (exclusive).
    pub body_end: usize,
    /// Lines in the body.
    pub lines: u32,
    /// Leaf, multipart or encapsulating message.
    pub kind: Kind,
    /// True for the message itself and for encapsulated messages: part number 1 of such an
    /// entity, when it is not a multipart, is the entity's own body.
    pub message_root: bool,
    /// The media type as reported (defaults and downgrades applied).
    pub media: MediaType,
    /// The entity's MIME header fields.
    pub fields: EntityFields,
    /// Children in order (body parts, or the encapsulated message).
    pub children: Vec<usize>,
    /// ENVELOPE bytes, for message roots.
    pub envelope: Option<Vec<u8>>,
    /// The parsed Date: header, for message roots.
    pub sent_date: Option<SentDate>,
    /// Nesting depth: the message is 1.
    depth: usize,
    /// LFs before the body start: line counting without a second pass.
    body_start_newlines: u64,
}

impl Node {
    /// The body's byte range.
    pub fn body(&self) -> Range<usize> {
        self.header.end..self.body_end
    }
}

/// A message's MIME tree: `nodes[0]` is the message; nodes are in pre-order.
#[derive(Clone, Debug)]
pub(crate) struct Tree {
    /// The entities.
    pub nodes: Vec<Node>,
    /// True when a limit was hit and the structure was simplified.
    pub truncated: bool,
    /// True when the message has a blank line between header and body.
    pub separator: bool,
}

/// `text/plain; charset=us-ascii`, the RFC 2045 §5.2 default.
pub(crate) fn default_media() -> MediaType {
    MediaType {
        main: b"text".to_vec(),
        sub: b"plain".to_vec(),
        parameters: vec![(b"charset".to_vec(), b"US-ASCII".to_vec())],
    }
}

/// Finds the MIME tree of `message` (only its first [`MESSAGE_BYTES_MAX`] bytes).
pub(crate) fn scan(message: &[u8]) -> Tree {
    scan_with(message, true)
}

/// [`scan`], optionally without the bulk skip of plain body lines (the tests compare both).
fn scan_with(message: &[u8], skip_plain: bool) -> Tree {
    let data = &message[..message.len().min(MESSAGE_BYTES_MAX)];
    let mut scanner = Scanner {
        data,
        nodes: Vec::new(),
        frames: Vec::new(),
        open: Vec::new(),
        position: 0,
        newlines: 0,
        truncated: false,
        separator: false,
    };
    scanner.start_entity(None);
    while scanner.position < data.len() && !scanner.truncated {
        if skip_plain {
            scanner.skip_plain_lines();
        }
        if scanner.position >= data.len() {
            break;
        }
        let line = line_at(data, scanner.position);
        match scanner.delimiter(&line) {
            Some((frame, closing)) => scanner.on_delimiter(frame, closing, &line),
            None => scanner.advance(&line),
        }
    }
    if scanner.truncated {
        return truncated_tree(data, scanner.nodes.swap_remove(0), scanner.separator);
    }
    scanner.close_open(0, data.len(), scanner.newlines);
    Tree { nodes: scanner.nodes, truncated: false, separator: scanner.separator }
}

/// The tree reported when the part limit is hit: the message as one `text/plain` leaf.
fn truncated_tree(data: &[u8], mut root: Node, separator: bool) -> Tree {
    root.kind = Kind::Leaf;
    root.media = default_media();
    root.children.clear();
    root.body_end = data.len();
    let body = &data[root.header.end..];
    let newlines = body.iter().filter(|&&b| b == b'\n').count();
    let partial = usize::from(body.last().is_some_and(|&b| b != b'\n'));
    root.lines = u32::try_from(newlines + partial).unwrap_or(u32::MAX);
    Tree { nodes: vec![root], truncated: true, separator }
}

/// LF bytes in `bytes`, eight at a time (a byte loop cost ~4.5 instructions a byte; this
/// under one). Word-at-a-time in safe code: XOR makes each LF a zero byte; per byte, the high
/// bit of `((x & 0x7f..) + 0x7f..) | x` is clear exactly when the byte is zero (no carry
/// crosses bytes). The per-byte flags of up to 255 words add up in one word without
/// overflowing a byte, and are summed across bytes once per such block.
fn count_newlines(bytes: &[u8]) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const EVEN_BYTES: u64 = 0x00ff_00ff_00ff_00ff;
    let pattern = ONES * u64::from(b'\n');
    let mut count = 0;
    let mut blocks = bytes.chunks_exact(8 * 255);
    let mut count_words = |words: &[u8]| {
        let mut flags = 0u64;
        for chunk in words.chunks_exact(8) {
            let x = u64::from_le_bytes(chunk.try_into().expect("eight bytes")) ^ pattern;
            flags += (!(((x & LOW7) + LOW7) | x) & HIGH) >> 7;
        }
        // Bytes to 16-bit lanes, then the four lanes summed into the top one.
        let pairs = (flags & EVEN_BYTES) + ((flags >> 8) & EVEN_BYTES);
        count += pairs.wrapping_mul(0x0001_0001_0001_0001) >> 48;
    };
    for block in &mut blocks {
        count_words(block);
    }
    let rest = blocks.remainder();
    let whole = rest.len() - rest.len() % 8;
    count_words(&rest[..whole]);
    count + rest[whole..].iter().map(|&b| u64::from(b == b'\n')).sum::<u64>()
}

/// An open multipart whose close delimiter has not been seen.
struct Frame {
    /// The multipart's node.
    node: usize,
    /// Its boundary.
    boundary: Vec<u8>,
    /// Length of the open-node stack with the multipart on it.
    open_len: usize,
}

struct Scanner<'a> {
    data: &'a [u8],
    nodes: Vec<Node>,
    frames: Vec<Frame>,
    /// Nodes whose body end is not known yet, outermost first.
    open: Vec<usize>,
    position: usize,
    /// LFs in `data[..position]`.
    newlines: u64,
    truncated: bool,
    separator: bool,
}

impl Scanner<'_> {
    /// Moves over body lines that cannot be delimiters, all at once: with no multipart open,
    /// to the end of the data; otherwise to the next line that starts with `--`. The same as
    /// [`Scanner::advance`] over each of those lines, without looking at them one by one (the
    /// body of a 4 KiB text message was most of the cost of a delivery's cache blob).
    fn skip_plain_lines(&mut self) {
        let rest = &self.data[self.position..];
        let skip = if self.frames.is_empty() {
            rest.len()
        } else if rest.starts_with(b"--") {
            0
        } else {
            // The start of the first line after this one that begins with "--".
            rest.windows(3).position(|w| w == b"\n--").map_or(rest.len(), |lf| lf + 1)
        };
        self.newlines += count_newlines(&rest[..skip]);
        self.position += skip;
    }

    fn advance(&mut self, line: &Line) {
        self.newlines += u64::from(line.has_newline());
        self.position = line.next;
    }

    /// If `line` is a delimiter of an open multipart: its frame index and whether it closes.
    fn delimiter(&self, line: &Line) -> Option<(usize, bool)> {
        if self.frames.is_empty() {
            return None;
        }
        let rest = line.content(self.data).strip_prefix(b"--")?;
        self.frames.iter().enumerate().rev().find_map(|(index, frame)| {
            let tail = rest.strip_prefix(frame.boundary.as_slice())?;
            let (closing, tail) = match tail.strip_prefix(b"--") {
                Some(after) => (true, after),
                None => (false, tail),
            };
            tail.iter().all(|&b| is_wsp(b)).then_some((index, closing))
        })
    }

    /// A delimiter of frame `frame` at `line`: ends everything open inside that multipart.
    fn on_delimiter(&mut self, frame: usize, closing: bool, line: &Line) {
        let ending = line_ending_before(self.data, line.start);
        let end_newlines = self.newlines - u64::from(ending > 0);
        self.close_open(self.frames[frame].open_len, line.start - ending, end_newlines);
        self.frames.truncate(frame + 1);
        self.advance(line);
        if closing {
            self.frames.pop();
        } else {
            let parent = self.frames[frame].node;
            self.start_entity(Some(parent));
        }
    }

    /// Closes the open nodes above `keep` with their body ending at `end`.
    fn close_open(&mut self, keep: usize, end: usize, end_newlines: u64) {
        while self.open.len() > keep {
            let Some(index) = self.open.pop() else { break };
            let node = &mut self.nodes[index];
            let start = node.header.end;
            node.body_end = end.max(start);
            node.lines = if end <= start {
                0
            } else {
                let newlines = end_newlines.saturating_sub(node.body_start_newlines);
                let partial = u64::from(self.data[end - 1] != b'\n');
                u32::try_from(newlines + partial).unwrap_or(u32::MAX)
            };
            if node.kind == Kind::Multipart && node.children.is_empty() {
                node.kind = Kind::Leaf;
                node.media = default_media();
            }
        }
    }

    /// Reads the header of an entity starting at the current position, adds its node, and
    /// for a message/rfc822 part goes on with the encapsulated message (a loop, not recursion).
    fn start_entity(&mut self, mut parent: Option<usize>) {
        loop {
            if self.nodes.len() >= PARTS_MAX {
                self.truncated = true;
                return;
            }
            let header = self.read_header(parent.is_none());
            let index = self.add_node(parent, header);
            match self.nodes[index].kind {
                Kind::Message => parent = Some(index),
                Kind::Multipart => {
                    let boundary =
                        self.nodes[index].media.parameter(b"boundary").unwrap_or_default().to_vec();
                    self.frames.push(Frame { node: index, boundary, open_len: self.open.len() });
                    return;
                }
                Kind::Leaf => return,
            }
        }
    }

    /// Moves past a header block: to after its blank line, or to a delimiter line, or to the end.
    fn read_header(&mut self, is_root: bool) -> Range<usize> {
        let start = self.position;
        while self.position < self.data.len() {
            let line = line_at(self.data, self.position);
            if self.delimiter(&line).is_some() {
                break;
            }
            self.advance(&line);
            if line.start == line.end && line.has_newline() {
                self.separator |= is_root;
                break;
            }
        }
        start..self.position
    }

    fn add_node(&mut self, parent: Option<usize>, header: Range<usize>) -> usize {
        let parent_node = parent.map(|p| &self.nodes[p]);
        let depth = parent_node.map_or(1, |p| p.depth + 1);
        let message_root = parent_node.is_none_or(|p| p.kind == Kind::Message);
        let in_digest = parent_node.is_some_and(|p| p.media.is(b"multipart", b"digest"));
        // A message root's ENVELOPE fields are collected in the same pass as its MIME fields.
        let mut collector = message_root.then(|| Envelope::new(self.data));
        let fields = EntityFields::parse_with(self.data, header.clone(), |field| {
            if let Some(collector) = collector.as_mut() {
                collector.add(field);
            }
        });
        let mut fields = fields;
        let (kind, media) = classify(&mut fields, depth < DEPTH_MAX, in_digest);
        let (envelope, sent_date) = match collector {
            Some(collector) => {
                let (bytes, date) = collector.finish();
                (Some(bytes), date)
            }
            None => (None, None),
        };
        let index = self.nodes.len();
        let body_start = header.end;
        self.nodes.push(Node {
            header,
            body_end: body_start,
            lines: 0,
            kind,
            message_root,
            media,
            fields,
            children: Vec::new(),
            envelope,
            sent_date,
            depth,
            body_start_newlines: self.newlines,
        });
        if let Some(parent) = parent {
            self.nodes[parent].children.push(index);
        }
        self.open.push(index);
        index
    }
}

/// The kind and reported media type of an entity. A multipart without a boundary, and any
/// container at the depth limit, is reported as `text/plain`; an encoded message/rfc822 (not
/// parseable in place) as `application/octet-stream`. Moves the parsed Content-Type out of
/// `fields` (it lives on in the node's `media`) rather than copying it.
pub(crate) fn classify(
    fields: &mut EntityFields,
    container_allowed: bool,
    in_digest: bool,
) -> (Kind, MediaType) {
    let media = match fields.media.take() {
        Some(media) => media,
        None if in_digest => {
            MediaType { main: b"message".to_vec(), sub: b"rfc822".to_vec(), parameters: Vec::new() }
        }
        None => default_media(),
    };
    if media.main == b"multipart" {
        let has_boundary = media.parameter(b"boundary").is_some_and(|b| !b.is_empty());
        return if container_allowed && has_boundary {
            (Kind::Multipart, media)
        } else {
            (Kind::Leaf, default_media())
        };
    }
    if media.is(b"message", b"rfc822") || media.is(b"message", b"global") {
        if !fields.is_identity_encoding() {
            let octets = MediaType {
                main: b"application".to_vec(),
                sub: b"octet-stream".to_vec(),
                parameters: media.parameters,
            };
            return (Kind::Leaf, octets);
        }
        return if container_allowed {
            (Kind::Message, media)
        } else {
            (Kind::Leaf, default_media())
        };
    }
    (Kind::Leaf, media)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn newlines_are_counted_exactly(bytes in proptest::collection::vec(prop_oneof![any::<u8>(), Just(b'\n')], 0..5000)) {
            let expected = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
            prop_assert_eq!(count_newlines(&bytes), expected);
            let lines = vec![b'\n'; bytes.len()];
            prop_assert_eq!(count_newlines(&lines), bytes.len() as u64);
        }

        /// Skipping plain body lines in bulk finds exactly what looking at every line finds.
        #[test]
        fn bulk_skip_changes_nothing(lines in proptest::collection::vec(prop_oneof![
            Just("Content-Type: multipart/mixed; boundary=b".to_owned()),
            Just("Content-Type: multipart/alternative; boundary=c".to_owned()),
            Just("Content-Type: message/rfc822".to_owned()),
            Just(String::new()),
            Just("--b".to_owned()),
            Just("--b--".to_owned()),
            Just("--c".to_owned()),
            Just("--c--  ".to_owned()),
            Just("-".to_owned()),
            Just("--".to_owned()),
            "[a-z .-]{0,12}",
        ], 0..40), ends in proptest::collection::vec(0u8..3, 40)) {
            let mut message = Vec::new();
            for (line, end) in lines.iter().zip(&ends) {
                message.extend_from_slice(line.as_bytes());
                message.extend_from_slice(match end { 0 => b"\r\n".as_slice(), 1 => b"\n", _ => b"\r" });
            }
            let fast = format!("{:?}", scan_with(&message, true));
            let slow = format!("{:?}", scan_with(&message, false));
            prop_assert_eq!(fast, slow);
        }
    }

    #[test]
    fn multipart_extents_follow_rfc2046() {
        let message = b"Content-Type: multipart/mixed; boundary=b\r\n\r\npreamble\r\n--b\r\n\r\none\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>\r\ntwo\r\n\r\n--b--\r\nepilogue\r\n";
        let tree = scan(message);
        assert!(!tree.truncated && tree.separator);
        assert_eq!(tree.nodes.len(), 3);
        assert_eq!(tree.nodes[0].kind, Kind::Multipart);
        assert_eq!(tree.nodes[0].children, vec![1, 2]);
        assert_eq!(&message[tree.nodes[1].body()], b"one");
        assert_eq!(tree.nodes[1].lines, 1);
        assert_eq!(&message[tree.nodes[2].body()], b"<p>\r\ntwo\r\n");
        assert_eq!(tree.nodes[2].lines, 2);
        assert_eq!(&message[tree.nodes[2].header.clone()], b"Content-Type: text/html\r\n\r\n");
        assert_eq!(tree.nodes[0].body_end, message.len());
    }

    #[test]
    fn missing_inner_close_is_healed_by_outer_delimiter() {
        let message = b"Content-Type: multipart/mixed; boundary=out\r\n\r\n--out\r\nContent-Type: multipart/alternative; boundary=in\r\n\r\n--in\r\n\r\na\r\n--out\r\n\r\nb\r\n--out--\r\n";
        let tree = scan(message);
        assert_eq!(tree.nodes.len(), 4);
        assert_eq!(tree.nodes[0].children, vec![1, 3]);
        assert_eq!(&message[tree.nodes[2].body()], b"a");
        assert_eq!(&message[tree.nodes[1].body()], b"--in\r\n\r\na");
        assert_eq!(&message[tree.nodes[3].body()], b"b");
    }

    #[test]
    fn encapsulated_message_and_defaults() {
        let message = b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nbody\r\n";
        let tree = scan(message);
        assert_eq!(tree.nodes.len(), 2);
        assert_eq!(tree.nodes[0].kind, Kind::Message);
        assert!(tree.nodes[1].message_root);
        assert_eq!(tree.nodes[0].lines, 3);
        assert!(tree.nodes[1].media.is(b"text", b"plain"));
        assert_eq!(&message[tree.nodes[1].body()], b"body\r\n");
    }

    #[test]
    fn multipart_without_parts_or_boundary_is_text() {
        for message in [
            &b"Content-Type: multipart/mixed; boundary=x\r\n\r\nno parts\r\n"[..],
            b"Content-Type: multipart/mixed\r\n\r\nx",
        ] {
            let tree = scan(message);
            assert_eq!(tree.nodes.len(), 1);
            assert_eq!(tree.nodes[0].kind, Kind::Leaf);
            assert!(tree.nodes[0].media.is(b"text", b"plain"));
        }
    }

    #[test]
    fn limits_truncate() {
        let mut deep = Vec::new();
        for _ in 0..DEPTH_MAX + 5 {
            deep.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        deep.extend_from_slice(b"body");
        let tree = scan(&deep);
        assert_eq!(tree.nodes.len(), DEPTH_MAX);
        assert_eq!(tree.nodes[DEPTH_MAX - 1].kind, Kind::Leaf);
        let mut wide = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
        for _ in 0..PARTS_MAX {
            wide.extend_from_slice(b"--b\r\n\r\nx\r\n");
        }
        let tree = scan(&wide);
        assert!(tree.truncated);
        assert_eq!(tree.nodes.len(), 1);
        assert_eq!(tree.nodes[0].body_end, wide.len());
        assert_eq!(tree.nodes[0].lines, u32::try_from(PARTS_MAX * 3).expect("small"));
    }
}
