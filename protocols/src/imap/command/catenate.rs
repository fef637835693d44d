//! CATENATE (RFC 4469): an APPEND message built from `TEXT` literals and `URL`s that point at
//! messages or parts in the user's own mailboxes (IMAP URLs, RFC 5092, parsed in `url.rs`).
//!
//! A URL is resolved against the store as FETCH would read it: the mailbox by name (or the
//! selected one for a relative `;UID=` URL), `;UIDVALIDITY=` checked, the message by UID (an
//! expunged one is gone), `;SECTION=` through the cache blob's part table, `;PARTIAL=` cut
//! last. Any failure answers `NO [BADURL url]` with the URL as sent (RFC 4469 §5), and the
//! whole APPEND stores nothing. The message grows part by part and is refused with
//! `NO [TOOBIG]` as soon as it passes APPENDLIMIT, so a few URLs to large messages cannot
//! make the server build more than the limit.
//!
//! Without URLAUTH (RFC 4467, not offered) only the user's own mailboxes can be named, and only
//! in the relative forms; shared folders and other users' URLs come later.

use skua_core::disk::Disk;
use skua_core::store::UserStore;

use crate::imap::reply::{Code, Completion};
use crate::imap::session::Conn;
use crate::imap::types::CatenatePart;
use crate::imap::url::{self, MessageUrl};
use crate::mime::cache::CacheView;

/// Builds the message `parts` describe, at most `limit` bytes.
///
/// # Errors
/// The tagged `NO` to send: `[BADURL url]` for a URL that cannot be used, `[TOOBIG]` when
/// the message would pass `limit`.
pub(crate) fn assemble<D: Disk>(
    conn: &Conn,
    store: &UserStore<D>,
    parts: &[CatenatePart],
    limit: u64,
) -> Result<Vec<u8>, Completion> {
    let mut message = Vec::new();
    for part in parts {
        match part {
            CatenatePart::Text(text) => push_bounded(&mut message, text, limit)?,
            CatenatePart::Url(text) => {
                let bytes = resolve(conn, store, text).ok_or_else(|| bad_url(text))?;
                push_bounded(&mut message, &bytes, limit)?;
            }
        }
    }
    Ok(message)
}

fn push_bounded(message: &mut Vec<u8>, bytes: &[u8], limit: u64) -> Result<(), Completion> {
    if (message.len() + bytes.len()) as u64 > limit {
        return Err(Completion::no("CATENATE message too large").with(Code::TooBig));
    }
    message.extend_from_slice(bytes);
    Ok(())
}

/// The bytes a URL points at, or `None` when it cannot be used.
fn resolve<D: Disk>(conn: &Conn, store: &UserStore<D>, text: &str) -> Option<Vec<u8>> {
    let MessageUrl { mailbox, uid_validity, uid, section, partial } = url::parse(text).ok()?;
    let id = match &mailbox {
        Some(name) => store.mailbox_id(name)?,
        None => conn.selected.as_ref()?.mailbox,
    };
    let info = store.mailbox_info(id)?;
    if uid_validity.is_some_and(|validity| validity != info.uid_validity.get()) {
        return None;
    }
    store.message(id, uid).ok()??;
    let body = store.body(id, uid).ok()?;
    let whole: &[u8] = &body;
    let cache;
    let section_bytes;
    let bytes: &[u8] = match &section {
        None => whole,
        Some(section) => {
            cache = store.cache(id, uid).ok()?;
            let view = CacheView::parse(&cache).ok()?;
            section_bytes = view.section(whole, &section.part, section.text.as_ref())?;
            section_bytes.bytes(whole)
        }
    };
    Some(match partial {
        None => bytes.to_vec(),
        Some((offset, length)) => {
            let start = (offset as usize).min(bytes.len());
            let end = length.map_or(bytes.len(), |n| start.saturating_add(n as usize));
            bytes[start..end.min(bytes.len())].to_vec()
        }
    })
}

/// `NO [BADURL url]`. The code carries the URL as sent where it can (`url-resp-text`: any
/// TEXT-CHAR but `]`, RFC 4469 errata 2002); a byte it cannot carry is %-encoded.
fn bad_url(text: &str) -> Completion {
    let mut shown = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_graphic() && byte != b']' || byte == b' ' {
            shown.push(char::from(byte));
        } else {
            shown.push_str(&format!("%{byte:02X}"));
        }
    }
    if shown.is_empty() {
        shown.push_str("%20");
    }
    Completion::no("CATENATE URL cannot be used").with(Code::BadUrl(shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_refused_as_soon_as_it_passes_the_limit() {
        let mut message = Vec::new();
        push_bounded(&mut message, b"12345", 8).unwrap();
        push_bounded(&mut message, b"678", 8).unwrap();
        let refused = push_bounded(&mut message, b"9", 8).unwrap_err();
        assert_eq!(refused.code, Some(Code::TooBig));
        assert_eq!(message, b"12345678", "nothing past the limit was kept");
    }

    #[test]
    fn bad_url_code_keeps_the_url_and_escapes_what_it_cannot_carry() {
        let code = bad_url("/INBOX/;UID=9").code;
        assert_eq!(code, Some(Code::BadUrl("/INBOX/;UID=9".into())));
        let code = bad_url("/a]b/;UID=1\u{e9}").code;
        assert_eq!(code, Some(Code::BadUrl("/a%5Db/;UID=1%C3%A9".into())));
    }
}
