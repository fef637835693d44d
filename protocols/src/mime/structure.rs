//! BODYSTRUCTURE and BODY response text (RFC 9051 §7.5.2) from a MIME [`Tree`]:
//!
//! ```text
//! body            = "(" (body-type-1part / body-type-mpart) ")"
//! body-type-1part = (body-type-basic / body-type-msg / body-type-text) [SP body-ext-1part]
//! body-type-basic = media-basic SP body-fields
//! body-type-msg   = media-message SP body-fields SP envelope SP body SP body-fld-lines
//! body-type-text  = media-text SP body-fields SP body-fld-lines
//! body-fields     = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP
//!                   body-fld-octets
//! body-ext-1part  = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc ...]]]
//! body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
//! body-ext-mpart  = body-fld-param [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc ...]]]
//! ```
//!
//! The extensible form (BODYSTRUCTURE) always carries all four extension fields, NIL when
//! absent; the non-extensible form (BODY) none. Media types, encodings and parameter names
//! are upper-cased; values are kept as sent. The recursion follows the tree, whose depth the
//! scanner caps at [`DEPTH_MAX`], and is asserted here.

use super::content::Parameters;
use super::imap_text::{decimal, nstring, string, upper_string};
use super::limits::DEPTH_MAX;
use super::tree::{Kind, Node, Tree};

/// Writes the structure of the whole message: BODYSTRUCTURE when `extensible`, else BODY.
#[cfg(test)]
pub(crate) fn body_structure(tree: &Tree, extensible: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 * tree.nodes.len());
    write_body_structure(&mut out, tree, extensible);
    out
}

/// Appends the structure of the whole message to `out`: BODYSTRUCTURE when `extensible`,
/// else BODY.
pub(crate) fn write_body_structure(out: &mut Vec<u8>, tree: &Tree, extensible: bool) {
    write_node(out, tree, 0, extensible, 1);
}

fn write_node(out: &mut Vec<u8>, tree: &Tree, index: usize, extensible: bool, depth: usize) {
    assert!(depth <= DEPTH_MAX, "the scanner caps MIME depth");
    let node = &tree.nodes[index];
    out.push(b'(');
    match node.kind {
        Kind::Multipart => {
            for &child in &node.children {
                write_node(out, tree, child, extensible, depth + 1);
            }
            out.push(b' ');
            upper_string(out, &node.media.sub);
            if extensible {
                out.push(b' ');
                parameters(out, &node.media.parameters);
                extension_tail(out, node);
            }
        }
        Kind::Message => {
            body_fields(out, node);
            let child = &tree.nodes[node.children[0]];
            out.push(b' ');
            out.extend_from_slice(child.envelope.as_deref().unwrap_or(b"NIL"));
            out.push(b' ');
            write_node(out, tree, node.children[0], extensible, depth + 1);
            out.push(b' ');
            decimal(out, u64::from(node.lines));
            if extensible {
                single_part_extension(out, node);
            }
        }
        Kind::Leaf => {
            body_fields(out, node);
            if node.media.main == b"text" {
                out.push(b' ');
                decimal(out, u64::from(node.lines));
            }
            if extensible {
                single_part_extension(out, node);
            }
        }
    }
    out.push(b')');
}

/// `media SP body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP body-fld-octets`
fn body_fields(out: &mut Vec<u8>, node: &Node) {
    upper_string(out, &node.media.main);
    out.push(b' ');
    upper_string(out, &node.media.sub);
    out.push(b' ');
    parameters(out, &node.media.parameters);
    out.push(b' ');
    nstring(out, node.fields.id.as_deref());
    out.push(b' ');
    nstring(out, node.fields.description.as_deref());
    out.push(b' ');
    upper_string(out, node.fields.encoding.as_deref().unwrap_or(b"7bit"));
    out.push(b' ');
    decimal(out, (node.body_end - node.header.end) as u64);
}

/// `SP body-fld-md5 SP body-fld-dsp SP body-fld-lang SP body-fld-loc`
fn single_part_extension(out: &mut Vec<u8>, node: &Node) {
    out.push(b' ');
    nstring(out, node.fields.md5.as_deref());
    extension_tail(out, node);
}

/// `SP body-fld-dsp SP body-fld-lang SP body-fld-loc`
fn extension_tail(out: &mut Vec<u8>, node: &Node) {
    out.push(b' ');
    match &node.fields.disposition {
        Some((kind, disposition_parameters)) => {
            out.push(b'(');
            upper_string(out, kind);
            out.push(b' ');
            parameters(out, disposition_parameters);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    match node.fields.languages.as_slice() {
        [] => out.extend_from_slice(b"NIL"),
        [one] => string(out, one),
        many => {
            out.push(b'(');
            for (index, language) in many.iter().enumerate() {
                if index > 0 {
                    out.push(b' ');
                }
                string(out, language);
            }
            out.push(b')');
        }
    }
    out.push(b' ');
    nstring(out, node.fields.location.as_deref());
}

/// `body-fld-param = "(" string SP string *(SP string SP string) ")" / nil`
fn parameters(out: &mut Vec<u8>, parameters: &Parameters) {
    if parameters.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (index, (name, value)) in parameters.iter().enumerate() {
        if index > 0 {
            out.push(b' ');
        }
        upper_string(out, name);
        out.push(b' ');
        string(out, value);
    }
    out.push(b')');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::tree::scan;

    #[test]
    fn rfc9051_text_plain_example_shape() {
        let message = b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\nline 1\r\nline 2\r\n";
        let tree = scan(message);
        assert_eq!(
            String::from_utf8(body_structure(&tree, false)).expect("ascii"),
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 16 2)"
        );
        assert_eq!(
            String::from_utf8(body_structure(&tree, true)).expect("ascii"),
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 16 2 NIL NIL NIL NIL)"
        );
    }

    #[test]
    fn digest_parts_default_to_message_rfc822() {
        let message = b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: a\r\n\r\nA\r\n--d--\r\n";
        let tree = scan(message);
        let text = String::from_utf8(body_structure(&tree, false)).expect("ascii");
        assert_eq!(
            text,
            "((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 15 (NIL \"a\" NIL NIL NIL NIL NIL NIL NIL NIL) \
(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1 1) 3) \"DIGEST\")"
        );
    }
}
