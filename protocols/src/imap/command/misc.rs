//! NOOP, ID (RFC 2971), ENABLE (RFC 5161) and NAMESPACE (RFC 2342): commands with no store
//! work of their own.

use crate::imap::reply::Completion;
use crate::imap::session::Conn;
use crate::imap::session::out::Out;
use crate::imap::types::CommandBody;

/// NOOP and ID, valid in every state. (NOOP's real work — reporting changes — is the sync
/// that follows every command.)
pub(crate) fn stateless(body: &CommandBody, out: &mut Out) -> Completion {
    match body {
        CommandBody::Id => {
            out.put(b"* ID (\"name\" \"skua\" \"version\" \"");
            out.put(env!("CARGO_PKG_VERSION").as_bytes());
            out.put(b"\")\r\n");
            Completion::ok("ID completed")
        }
        _ => Completion::ok("NOOP completed"),
    }
}

/// ENABLE: turns on IMAP4rev2, UIDONLY (RFC 9586), UTF8=ACCEPT (RFC 6855) and (when
/// configured) CONDSTORE and QRESYNC (which implies CONDSTORE, RFC 7162 §3.2.3); anything else
/// is ignored, as RFC 5161 requires, and only what was newly enabled is listed.
pub(crate) fn enable(conn: &mut Conn, names: &[String], out: &mut Out) -> Completion {
    let mut enabled = Vec::new();
    for name in names {
        if name.eq_ignore_ascii_case("IMAP4rev2") && !conn.enabled.rev2 {
            conn.enabled.rev2 = true;
            enabled.push("IMAP4rev2");
        } else if name.eq_ignore_ascii_case("CONDSTORE")
            && conn.config.condstore
            && !conn.enabled.condstore
        {
            enabled.push("CONDSTORE");
        } else if name.eq_ignore_ascii_case("QRESYNC")
            && conn.config.condstore
            && !conn.enabled.qresync
        {
            super::qresync::enable(conn);
            enabled.push("QRESYNC");
        } else if name.eq_ignore_ascii_case("UIDONLY") && !conn.enabled.uidonly {
            super::uidonly::enable(conn);
            enabled.push("UIDONLY");
        } else if name.eq_ignore_ascii_case("UTF8=ACCEPT") && !conn.enabled.utf8_accept {
            conn.enabled.utf8_accept = true;
            enabled.push("UTF8=ACCEPT");
        }
    }
    out.put(b"* ENABLED");
    for name in &enabled {
        out.put(b" ");
        out.put(name.as_bytes());
    }
    out.put(b"\r\n");
    if enabled.contains(&"CONDSTORE") || enabled.contains(&"QRESYNC") {
        super::enable_condstore(conn, out);
    }
    Completion::ok("ENABLE completed")
}

/// NAMESPACE: one personal namespace with `/` as separator, no others.
pub(crate) fn namespace(conn: &Conn, out: &mut Out) -> Completion {
    out.put(conn.config.namespaces.response().as_bytes());
    Completion::ok("NAMESPACE completed")
}
