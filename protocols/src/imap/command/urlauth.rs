//! URLAUTH (RFC 4467): GENURLAUTH, URLFETCH and RESETKEY, and the authorization check CATENATE
//! shares for absolute `imap://` URLs (RFC 4469 §3).
//!
//! Only the `INTERNAL` mechanism exists. Its token is made and checked by the store
//! (`core/src/store/urlauth.rs`, `core/FORMAT.md` "urlauth.keys"): version byte 1 and
//! HMAC-SHA256 of the rump URL (everything up to and including the access identifier) under
//! the mailbox's access key, compared in constant time. HMAC-SHA256 because it is a standard
//! PRF with a 256-bit tag, well above RFC 4467's 128-bit floor, and `ring` (already skua's
//! SCRAM dependency) has it with a constant-time verify.
//!
//! A URL names its owner (`imap://owner@host/...`). Every user's store lives on its own shard
//! and a session holds only its own user's store; reaching another user's store is the
//! cross-shard request of issue 10. Until then a URL is served only when its owner is the
//! session's own user: GENURLAUTH refuses others' URLs (BAD, as for any URL it cannot
//! authorize), URLFETCH answers NIL for them. `submit+user` is honoured for a session logged
//! in as that user (a submission server logs in for the user, e.g. SASL PLAIN with the user as
//! authorization id): since only the owner's own sessions can fetch here, this shows nothing
//! the session could not read anyway.
//!
//! URLFETCH answers NIL for any URL it does not serve, whatever the reason (bad token,
//! expired, access not held, another user, no such message), so a client learns nothing
//! about which part was wrong (RFC 4467 §6). `;EXPIRE=` is compared with the wall clock (as
//! SEARCH's WITHIN does).

use skua_core::disk::Disk;
use skua_core::store::{URLAUTH_TOKEN_HEX_LEN, UrlKeyError, UserStore};
use skua_core::types::MailboxId;

use super::catenate::url_bytes;
use super::durable;
use super::search::unix_now;
use crate::imap::encode;
use crate::imap::reply::{self, Code, Completion};
use crate::imap::session::Conn;
use crate::imap::session::out::Out;
use crate::imap::url::{self, Access, MessageUrl, URL_BYTES_MAX, UrlAuth, UrlServer};

/// The one mechanism (RFC 4467 §2.4.1), as `[URLMECH ...]` lists it.
const INTERNAL: &str = "INTERNAL";
/// What GENURLAUTH adds to a rump: `:internal:` and the token.
const VERIFIER_BYTES: usize = ":internal:".len() + URLAUTH_TOKEN_HEX_LEN;

/// The session's user: the last component of its store's directory, which the shard names
/// after the canonical user name (`core/src/paths.rs`).
fn session_user<D: Disk>(store: &UserStore<D>) -> Option<&str> {
    store.dir().file_name()?.to_str()
}

/// User names compare ASCII case-insensitively (`UserDb`).
fn same_user(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// True when `server` is this server (its configured host name) and names the session's user.
pub(crate) fn owned_here<D: Disk>(conn: &Conn, store: &UserStore<D>, server: &UrlServer) -> bool {
    let ours = server.host.eq_ignore_ascii_case(&conn.config.hostname);
    let me = session_user(store);
    ours && matches!((server.user.as_deref(), me), (Some(owner), Some(me)) if same_user(owner, me))
}

/// True when `auth` lets this session fetch `text` from mailbox `id` now: an `INTERNAL`
/// verifier whose token checks, not expired, and an access identifier the session holds.
pub(crate) fn authorized<D: Disk>(
    store: &mut UserStore<D>,
    id: MailboxId,
    text: &str,
    auth: &UrlAuth,
    now: i64,
) -> bool {
    let Some((mechanism, token)) = &auth.verifier else { return false };
    if mechanism != INTERNAL || auth.expire.is_some_and(|expire| expire <= now) {
        return false;
    }
    let allowed = match &auth.access {
        Access::Anonymous | Access::AuthUser => true,
        Access::User(name) | Access::Submit(name) => {
            session_user(store).is_some_and(|me| same_user(name, me))
        }
    };
    // The token is checked whatever the rest said, so each refusal costs the same.
    let checks = store.urlauth_check(id, &text.as_bytes()[..auth.rump_len], token);
    allowed && checks
}

/// GENURLAUTH (RFC 4467 §7): `* GENURLAUTH` with each URL and its token, or BAD (and nothing
/// made) when any URL cannot be authorized: not an absolute URL of a message in the session's
/// own existing mailbox on this server with `;URLAUTH=access` and no verifier, or a mechanism
/// other than `INTERNAL`.
pub(crate) fn gen_url_auth<D: Disk>(
    conn: &Conn,
    store: &mut UserStore<D>,
    urls: &[(String, String)],
    out: &mut Out,
) -> Completion {
    let mut authorized_urls = Vec::with_capacity(urls.len());
    for (text, mechanism) in urls {
        let Some((id, rump_len)) = rump_target(conn, store, text) else {
            return Completion::bad("GENURLAUTH: the URL cannot be authorized here");
        };
        if mechanism != INTERNAL {
            return Completion::bad("GENURLAUTH: only the INTERNAL mechanism is offered");
        }
        let token = match store.urlauth_token(id, &text.as_bytes()[..rump_len]) {
            Ok(token) => token,
            Err(error) => return reply::storage(&error),
        };
        authorized_urls.push(format!("{text}:internal:{token}"));
    }
    // The user's keys may have just been made: the URLs hold only once they are durable.
    durable(store, out);
    let b = out.buf();
    b.extend_from_slice(b"* GENURLAUTH");
    for full in &authorized_urls {
        b.push(b' ');
        encode::string(b, full.as_bytes());
    }
    b.extend_from_slice(b"\r\n");
    Completion::ok("GENURLAUTH completed")
}

/// The mailbox and rump length of a GENURLAUTH URL, if it can be authorized here.
fn rump_target<D: Disk>(
    conn: &Conn,
    store: &UserStore<D>,
    text: &str,
) -> Option<(MailboxId, usize)> {
    // The authorized URL must itself be one URLFETCH and CATENATE accept.
    if text.len() + VERIFIER_BYTES > URL_BYTES_MAX {
        return None;
    }
    let parsed = url::parse(text).ok()?;
    let auth = parsed.auth.as_ref()?;
    if auth.verifier.is_some() || !owned_here(conn, store, parsed.server.as_ref()?) {
        return None;
    }
    let id = store.mailbox_id(parsed.mailbox.as_deref()?)?;
    Some((id, auth.rump_len))
}

/// URLFETCH (RFC 4467 §7): one `* URLFETCH` response with each URL and its data, or NIL for
/// every URL that is not served (see the module doc).
pub(crate) fn url_fetch<D: Disk>(
    conn: &Conn,
    store: &mut UserStore<D>,
    urls: &[String],
    out: &mut Out,
) -> Completion {
    let now = unix_now();
    let mut fetched = Vec::with_capacity(urls.len());
    for text in urls {
        fetched.push(fetch_one(conn, store, text, now));
    }
    let b = out.buf();
    b.extend_from_slice(b"* URLFETCH");
    for (text, data) in urls.iter().zip(&fetched) {
        b.push(b' ');
        encode::string(b, text.as_bytes());
        b.push(b' ');
        match data {
            Some(bytes) => encode::literal(b, bytes),
            None => b.extend_from_slice(b"NIL"),
        }
    }
    b.extend_from_slice(b"\r\n");
    Completion::ok("URLFETCH completed")
}

/// The bytes a URLAUTH URL points at, if this session may have them.
fn fetch_one<D: Disk>(
    conn: &Conn,
    store: &mut UserStore<D>,
    text: &str,
    now: i64,
) -> Option<Vec<u8>> {
    let parsed: MessageUrl = url::parse(text).ok()?;
    let auth = parsed.auth.as_ref()?;
    if !owned_here(conn, store, parsed.server.as_ref()?) {
        return None;
    }
    let id = store.mailbox_id(parsed.mailbox.as_deref()?)?;
    if !authorized(store, id, text, auth, now) {
        return None;
    }
    url_bytes(store, id, &parsed)
}

/// RESETKEY (RFC 4467 §7): new access keys for one mailbox or for all; URLs authorized
/// before no longer fetch. With a mailbox, the tagged OK carries `[URLMECH INTERNAL]`.
pub(crate) fn reset_key<D: Disk>(
    store: &mut UserStore<D>,
    mailbox: Option<&str>,
    mechanisms: &[String],
    out: &mut Out,
) -> Completion {
    if mechanisms.iter().any(|mechanism| mechanism != INTERNAL) {
        return Completion::bad("RESETKEY: only the INTERNAL mechanism is offered");
    }
    let id = match mailbox {
        None => None,
        Some(name) => match store.mailbox_id(name) {
            Some(id) => Some(id),
            None => return Completion::no("No such mailbox").with(Code::Nonexistent),
        },
    };
    match store.urlauth_reset(id) {
        Ok(()) => {}
        Err(UrlKeyError::Full) => {
            return Completion::no("Too many key resets for this user").with(Code::Limit);
        }
        Err(UrlKeyError::Storage(error)) => return reply::storage(&error),
    }
    durable(store, out);
    match id {
        None => Completion::ok("All keys removed"),
        Some(_) => Completion::ok("mechs").with(Code::UrlMech(INTERNAL.to_owned())),
    }
}
