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
//! Absolute URLs (`imap://user@host/...`) are accepted when they name the session's own user
//! on this server (its configured host name), with or without `;URLAUTH=` (RFC 4469 §3); with
//! it, the URL must be one URLFETCH would serve (`urlauth.rs`). Other users' URLs need their
//! store, on another shard (issue 10): BADURL until then.

use skua_core::disk::Disk;
use skua_core::store::UserStore;
use skua_core::types::MailboxId;

use super::search::unix_now;
use super::urlauth;

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
    store: &mut UserStore<D>,
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
fn resolve<D: Disk>(conn: &Conn, store: &mut UserStore<D>, text: &str) -> Option<Vec<u8>> {
    let parsed = url::parse(text).ok()?;
    let id = match (&parsed.server, &parsed.mailbox) {
        // An absolute URL: the session's own mailbox on this server; with URLAUTH, only if
        // it would fetch (RFC 4469 §3), without, by the session's own access.
        (Some(server), Some(name)) => {
            if !urlauth::owned_here(conn, store, server) {
                return None;
            }
            let id = store.mailbox_id(name)?;
            if let Some(auth) = &parsed.auth
                && !urlauth::authorized(store, id, text, auth, unix_now())
            {
                return None;
            }
            id
        }
        (Some(_), None) => return None,
        (None, Some(name)) => store.mailbox_id(name)?,
        (None, None) => conn.selected.as_ref()?.mailbox,
    };
    url_bytes(store, id, &parsed)
}

/// The bytes `url` points at in mailbox `id` (its mailbox already resolved): `;UIDVALIDITY=`
/// checked, the message by UID (an expunged one is gone), `;SECTION=` through the cache
/// blob's part table, `;PARTIAL=` cut last. `None` when any of it does not hold.
pub(crate) fn url_bytes<D: Disk>(
    store: &UserStore<D>,
    id: MailboxId,
    url: &MessageUrl,
) -> Option<Vec<u8>> {
    let info = store.mailbox_info(id)?;
    if url.uid_validity.is_some_and(|validity| validity != info.uid_validity.get()) {
        return None;
    }
    store.message(id, url.uid).ok()??;
    let body = store.body(id, url.uid).ok()?;
    let whole: &[u8] = &body;
    let cache;
    let section_bytes;
    let bytes: &[u8] = match &url.section {
        None => whole,
        Some(section) => {
            cache = store.cache(id, url.uid).ok()?;
            let view = CacheView::parse(&cache).ok()?;
            section_bytes = view.section(whole, &section.part, section.text.as_ref())?;
            section_bytes.bytes(whole)
        }
    };
    Some(match url.partial {
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
