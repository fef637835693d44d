//! The PREVIEW text of a message (RFC 8970): at most [`PREVIEW_CHARS_MAX`] characters of its
//! first text part, as plain UTF-8 on one line.
//!
//! How it is made, in order:
//!
//! 1. The part: the first `text/plain` or `text/html` leaf in the message's part order that is
//!    not an attachment (`Content-Disposition: attachment`), outside encapsulated messages
//!    (a forwarded message's text is not this message's). None: the preview is empty, as
//!    RFC 8970 asks when nothing meaningful can be shown.
//! 2. Its first 4 KiB, or at most [`PREVIEW_SOURCE_BYTES_MAX`] bytes when those do not fill
//!    a preview, transfer encoding undone
//!    ([`super::decode`]), converted from its charset to UTF-8 (a character cut at the end is
//!    dropped); a preview never reads a whole large part.
//! 3. HTML is reduced to its text: tags and comments are removed, `script`, `style` and
//!    `head` content is skipped, character references are resolved.
//! 4. Whitespace and control characters are folded into single spaces and trimmed; the result
//!    is cut to [`PREVIEW_CHARS_MAX`] characters.
//!
//! The result is computed on demand from the stored message and its part table, so `LAZY`
//! never needs to answer NIL: reading one part's header and a few KiB of its body costs about
//! what a `BODY[1]<0.16384>` does.

use super::cache::{CacheView, KIND_LEAF, KIND_MESSAGE};
use super::content::EntityFields;
use super::decode::{Decoder, TransferEncoding};
use mail_parser::decoders::charsets::map::charset_decoder;

/// The most characters a preview holds (RFC 8970 sets 256 as the limit).
pub const PREVIEW_CHARS_MAX: usize = 256;

/// The most decoded bytes of the text part read to make a preview: enough for 256 characters
/// behind a good deal of HTML markup, small enough to read on every FETCH.
pub const PREVIEW_SOURCE_BYTES_MAX: usize = 16 * 1024;

/// Decoded bytes read first; [`PREVIEW_SOURCE_BYTES_MAX`] only when these give less than a
/// full preview.
const PREVIEW_SOURCE_BYTES_FIRST: usize = 4 * 1024;

const _: () = assert!(PREVIEW_SOURCE_BYTES_FIRST < PREVIEW_SOURCE_BYTES_MAX);

/// The most parts looked at to find the text part (the part table holds at most 1000).
const PREVIEW_PARTS_MAX: usize = 64;

/// The preview of `message`, whose cache blob is `cache`. Empty when the message has no text
/// part to show.
#[must_use]
pub fn preview(message: &[u8], cache: &CacheView<'_>) -> String {
    let Some((body, fields)) = text_part(message, cache) else {
        return String::new();
    };
    let media = fields.media.as_ref();
    let html = media.is_some_and(|m| m.is(b"text", b"html"));
    let encoding = TransferEncoding::from_field(fields.encoding.as_deref())
        .unwrap_or(TransferEncoding::Identity);
    let charset = media.and_then(|m| m.parameter(b"charset"));
    // Most parts give a full preview from their first few KiB; only then is more read.
    let mut preview = String::new();
    for limit in [PREVIEW_SOURCE_BYTES_FIRST, PREVIEW_SOURCE_BYTES_MAX] {
        let mut decoded = Vec::new();
        let mut decoder = Decoder::new(encoding);
        decoder.read_into(body, &mut decoded, limit);
        let cut = decoder.read(body, &mut [0u8; 1]) > 0;
        let mut text = to_utf8(&decoded, charset);
        if cut && text.ends_with('\u{fffd}') {
            // A character split by the cut, not a bad byte of the message.
            text.pop();
        }
        preview = fold(&if html { html_text(&text) } else { text });
        if !cut || preview.chars().count() >= PREVIEW_CHARS_MAX {
            break;
        }
    }
    preview
}

/// The body and MIME fields of the part the preview is made from.
fn text_part<'m>(message: &'m [u8], cache: &CacheView<'_>) -> Option<(&'m [u8], EntityFields)> {
    let mut index = 0;
    let mut looked = 0;
    while index < cache.part_count() && looked < PREVIEW_PARTS_MAX {
        let entry = cache.entry(index)?;
        looked += 1;
        if entry.kind == KIND_MESSAGE {
            index += usize::from(entry.subtree);
            continue;
        }
        index += 1;
        if entry.kind != KIND_LEAF {
            continue;
        }
        let start = entry.header_offset as usize;
        let header = start..start.checked_add(entry.header_len as usize)?;
        let body = header.end..header.end.checked_add(entry.body_len as usize)?;
        if body.end > message.len() {
            return None;
        }
        let fields = EntityFields::parse_with(message, header, |_| {});
        // No Content-Type: text/plain (the digest default only applies to message parts).
        let text =
            fields.media.as_ref().is_none_or(|m| m.is(b"text", b"plain") || m.is(b"text", b"html"));
        let attachment =
            fields.disposition.as_ref().is_some_and(|(kind, _)| kind.as_slice() == b"attachment");
        if text && !attachment {
            return Some((&message[body], fields));
        }
    }
    None
}

/// `bytes` in `charset` as UTF-8 (invalid sequences replaced). Unknown charsets are read as
/// UTF-8, which keeps their ASCII.
fn to_utf8(bytes: &[u8], charset: Option<&[u8]>) -> String {
    let is_utf8 = |c: &[u8]| {
        [&b"utf-8"[..], b"utf8", b"us-ascii", b"ascii"].iter().any(|n| c.eq_ignore_ascii_case(n))
    };
    match charset.filter(|c| !is_utf8(c)).and_then(charset_decoder) {
        Some(decoder) if !bytes.is_ascii() => decoder(bytes),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Folds every run of whitespace and control characters into one space, trims both ends, and
/// keeps at most [`PREVIEW_CHARS_MAX`] characters.
fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(PREVIEW_CHARS_MAX * 4));
    let mut count = 0;
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() || c == '\u{feff}' {
            pending_space = count > 0;
            continue;
        }
        if pending_space {
            if count + 1 >= PREVIEW_CHARS_MAX {
                break;
            }
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        if count == PREVIEW_CHARS_MAX {
            break;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// The text of an HTML fragment: tags and comments removed (block elements and line breaks
/// become spaces, folded later), `script`/`style`/`head` content skipped, character
/// references resolved. A tag left open at the end (the source was cut) is dropped. Stops
/// once it has more visible text than a preview can hold.
fn html_text(html: &str) -> String {
    // Enough non-blank bytes for PREVIEW_CHARS_MAX characters of any width.
    const VISIBLE_BYTES_ENOUGH: usize = 4 * PREVIEW_CHARS_MAX;
    let mut out = String::with_capacity(html.len().min(2 * VISIBLE_BYTES_ENOUGH));
    let mut visible = 0;
    let mut rest = html;
    let mut skip_until: Option<&'static str> = None;
    let mut push = |out: &mut String, text: &str| {
        visible += text.bytes().filter(|b| !b.is_ascii_whitespace()).count();
        out.push_str(text);
        visible >= VISIBLE_BYTES_ENOUGH
    };
    while !rest.is_empty() {
        let Some(open) = rest.find(['<', '&']) else {
            if skip_until.is_none() {
                push(&mut out, rest);
            }
            break;
        };
        if skip_until.is_none() && push(&mut out, &rest[..open]) {
            break;
        }
        rest = &rest[open..];
        if rest.starts_with('&') {
            let (text, used) = character_reference(rest);
            if skip_until.is_none() && push(&mut out, &text) {
                break;
            }
            rest = &rest[used..];
            continue;
        }
        if rest.starts_with("<!--") {
            rest = rest.find("-->").map_or("", |end| &rest[end + 3..]);
            continue;
        }
        let Some(close) = rest.find('>') else { break };
        let tag = &rest[1..close];
        rest = &rest[close + 1..];
        let bare = tag.trim_start_matches('/');
        let name = &bare[..bare.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(bare.len())];
        match skip_until {
            Some(end) if tag.starts_with('/') && name.eq_ignore_ascii_case(end) => {
                skip_until = None;
            }
            Some(_) => {}
            None if !tag.starts_with('/') && !tag.ends_with('/') => {
                skip_until = ["script", "style", "head", "title"]
                    .into_iter()
                    .find(|skipped| name.eq_ignore_ascii_case(skipped));
                out.push(' ');
            }
            None => out.push(' '),
        }
    }
    out
}

/// A character reference at the start of `text` (`&amp;`, `&#233;`, `&#xE9;`, and the common
/// named ones): its text and the bytes it used. An `&` that starts none stands for itself.
fn character_reference(text: &str) -> (std::borrow::Cow<'static, str>, usize) {
    let literal = ("&".into(), 1);
    let Some(end) = text[1..].find(';').map(|n| n + 1).filter(|&n| n <= 10) else {
        return literal;
    };
    let name = &text[1..end];
    let character = if let Some(number) = name.strip_prefix('#') {
        let value = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => number.parse::<u32>().ok(),
        };
        value.and_then(char::from_u32)
    } else {
        match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            "copy" => Some('\u{a9}'),
            "reg" => Some('\u{ae}'),
            "hellip" => Some('\u{2026}'),
            "mdash" => Some('\u{2014}'),
            "ndash" => Some('\u{2013}'),
            "rsquo" => Some('\u{2019}'),
            "lsquo" => Some('\u{2018}'),
            "rdquo" => Some('\u{201d}'),
            "ldquo" => Some('\u{201c}'),
            "euro" => Some('\u{20ac}'),
            _ => None,
        }
    };
    match character {
        Some(c) => (c.to_string().into(), end + 1),
        None => literal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::cache::build;

    fn preview_of(message: &[u8]) -> String {
        let blob = build(message);
        let view = CacheView::parse(&blob).expect("blob");
        preview(message, &view)
    }

    #[test]
    fn plain_text_is_folded_and_cut() {
        assert_eq!(
            preview_of(b"Subject: s\r\n\r\n  Hello,\r\n\r\n\tworld!  \r\n"),
            "Hello, world!"
        );
        let long = format!("Subject: s\r\n\r\n{}\r\n", "word ".repeat(100));
        let text = preview_of(long.as_bytes());
        assert!(text.chars().count() <= PREVIEW_CHARS_MAX, "{text:?}");
        assert!(text.chars().count() >= PREVIEW_CHARS_MAX - 1, "{text:?}");
        assert!(text.starts_with("word word") && !text.ends_with(' '), "{text:?}");
        let wide = format!("Subject: s\r\n\r\n{}\r\n", "\u{e9}".repeat(300));
        assert_eq!(preview_of(wide.as_bytes()).chars().count(), PREVIEW_CHARS_MAX);
        assert_eq!(preview_of(b"Subject: empty\r\n\r\n"), "");
    }

    #[test]
    fn the_first_text_part_is_decoded_from_its_encoding_and_charset() {
        let message = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0K\r\n--b\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
Gr=FC=DFe aus K=F6ln=\r\n!\r\n--b--\r\n";
        assert_eq!(preview_of(message), "Gr\u{fc}\u{df}e aus K\u{f6}ln!");
        let b64 = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVsbG8g8J+Y\r\ngA==\r\n";
        assert_eq!(preview_of(b64), "Hello \u{1f600}");
    }

    #[test]
    fn attachments_and_forwarded_messages_are_not_the_preview() {
        let message = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nattached\r\n--b\r\n\
Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nforwarded text\r\n--b--\r\n";
        assert_eq!(preview_of(message), "");
    }

    #[test]
    fn html_is_reduced_to_text() {
        let message = b"Content-Type: text/html\r\n\r\n<html><head><title>T</title>\
<style>p{color:red}</style></head><body><!-- hidden --><p>Caf&eacute; &amp; <b>bar</b>\
&#233;&#xE9;</p><script>alert(1)</script><br/>end &unknown; & more</body></html>\r\n";
        assert_eq!(preview_of(message), "Caf&eacute; & bar \u{e9}\u{e9} end &unknown; & more");
    }

    #[test]
    fn text_after_a_long_blank_start_is_found_in_the_second_read() {
        let mut message = b"Subject: s\r\n\r\n".to_vec();
        message.extend(b" \r\n".repeat(2000));
        message.extend_from_slice(b"late words\r\n");
        assert_eq!(preview_of(&message), "late words");
        let mut html = b"Content-Type: text/html\r\n\r\n".to_vec();
        html.extend(b"<p>visible text</p>".repeat(5000));
        let text = preview_of(&html);
        assert!(text.starts_with("visible text visible text"), "{text:?}");
        assert!(text.chars().count() <= PREVIEW_CHARS_MAX);
    }

    #[test]
    fn a_large_part_is_read_only_in_part() {
        let mut message = b"Content-Type: text/plain; charset=utf-8\r\n\r\n".to_vec();
        // A multi-byte character straddles the read limit.
        message.extend(std::iter::repeat_n(b'a', PREVIEW_SOURCE_BYTES_MAX - 1));
        message.extend_from_slice("\u{e9}".as_bytes());
        let text = preview_of(&message);
        assert_eq!(text.chars().count(), PREVIEW_CHARS_MAX);
        assert!(text.chars().all(|c| c == 'a'));
    }
}
