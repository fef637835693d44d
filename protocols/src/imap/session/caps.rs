//! The capability list: what this server announces, before and after login.
//!
//! Only what is implemented is announced. IMAP4rev2 brings ESEARCH, NAMESPACE, UNSELECT,
//! UIDPLUS, MOVE, IDLE, LITERAL-, SASL-IR, ENABLE, ID-like behaviour with it; rev1 clients need
//! them named, so they are listed explicitly.

use super::{Conn, ImapConfig};
use crate::sasl::Offer;

/// Capabilities every state announces.
const COMMON: &str = "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE";

/// Capabilities announced once authenticated, one extension (or family) per line, in the
/// order they are announced. BINARY (RFC 3516): FETCH BINARY[], BINARY.PEEK[] and
/// BINARY.SIZE[] (`command/fetch_binary.rs`); PREVIEW (RFC 8970): `mime/preview.rs`;
/// OBJECTID (RFC 8474) and SAVEDATE (RFC 8514): `command/objectid.rs`.
const AUTHENTICATED: &[&str] = &[
    "UIDPLUS MOVE UNSELECT NAMESPACE CHILDREN",
    "LIST-EXTENDED LIST-STATUS",
    "ESEARCH SEARCHRES",
    "UNAUTHENTICATE",
    "WITHIN STATUS=SIZE",
    "BINARY",
    "PREVIEW",
    "SPECIAL-USE CREATE-SPECIAL-USE",
    "UIDONLY",
    // SORT (RFC 5256), SORT=DISPLAY (RFC 5957), ESORT (RFC 5267 §3) and the THREAD algorithms
    // (RFC 5256, REFS of draft-ietf-morg-inthread): `command/sort.rs`, `command/thread.rs`.
    "SORT SORT=DISPLAY ESORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES THREAD=REFS",
    // RFC 4978; the runtime's transport compresses (shard/src/conn_deflate.rs).
    "COMPRESS=DEFLATE",
    "OBJECTID",
    "SAVEDATE",
    // RFC 6855: `command/utf8.rs`.
    "UTF8=ACCEPT",
    // RFC 4467: GENURLAUTH, URLFETCH, RESETKEY (command/urlauth.rs).
    "URLAUTH",
    // RFC 5465, within the user's shard: `command/notify.rs`, `session/notify.rs`.
    "NOTIFY",
    // RFC 5267 §4: RETURN (UPDATE / CONTEXT / PARTIAL) for SEARCH and SORT, CANCELUPDATE
    // (`command/context.rs`); RFC 9394: PARTIAL pages of SEARCH and SORT results and the
    // FETCH / UID FETCH PARTIAL modifier (`command/fetch_partial.rs`).
    "CONTEXT=SEARCH CONTEXT=SORT PARTIAL",
    "METADATA METADATA-SERVER LIST-METADATA",
    // RFC 4314 (RIGHTS=texk: the t e x k rights, c and d obsolete) and RFC 8440:
    // `command/acl.rs`.
    "ACL RIGHTS=texk LIST-MYRIGHTS",
    // RFC 9208: GETQUOTA, GETQUOTAROOT, SETQUOTA (administrators), STATUS DELETED and
    // DELETED-STORAGE (`command/quota.rs`; the store enforces, `core/src/store/quota.rs`).
    "QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE QUOTA=RES-MAILBOX QUOTASET",
];

/// The capability list for the current state (without the `CAPABILITY` keyword).
#[must_use]
pub(crate) fn capabilities(conn: &Conn, authenticated: bool) -> String {
    let config = &conn.config;
    let tls = conn.tls;
    let mut caps = String::from(COMMON);
    if authenticated {
        for extension in AUTHENTICATED {
            caps.push(' ');
            caps.push_str(extension);
        }
        if config.condstore {
            caps.push_str(" CONDSTORE QRESYNC");
        }
        crate::imap::command::append::capabilities(conn, &mut caps);
        return caps;
    }
    if config.starttls && !tls {
        caps.push_str(" STARTTLS");
    }
    for mechanism in offer(conn).mechanisms() {
        caps.push_str(" AUTH=");
        caps.push_str(mechanism.name());
    }
    if !login_allowed(config, tls) {
        caps.push_str(" LOGINDISABLED");
    }
    caps
}

/// The SASL mechanisms this connection offers (RFC 9051 §11.1, RFC 5802 §9, RFC 7628 §5):
///
/// - PLAIN and LOGIN send the password itself: only where LOGIN is allowed (TLS, or the
///   plain-text allowance), exactly like the LOGIN command and `LOGINDISABLED`;
/// - OAUTHBEARER and XOAUTH2 send a bearer token, which replays like a password: the same
///   rule, and only when a token policy is configured;
/// - SCRAM never sends the password or anything that replays, so it is offered on every
///   connection (unless `require_tls` holds it back until TLS); its `-PLUS` variants need a
///   `tls-exporter` channel binding (TLS 1.3);
/// - EXTERNAL only when the TLS client presented a verified certificate.
pub(crate) fn offer(conn: &Conn) -> Offer {
    let config = &conn.config;
    let passwords = login_allowed(config, conn.tls);
    Offer {
        channel_binding: conn.tls && conn.channel_binding,
        passwords,
        scram: config.scram && conn.scram_sha256 && (conn.tls || !config.require_tls),
        scram_sha1: config.scram && conn.scram_sha1 && (conn.tls || !config.require_tls),
        external: conn.tls && conn.external,
        tokens: config.tokens && passwords,
    }
}

/// True when a password may be sent on this connection: it is encrypted, or the shard allows
/// plain text here (loopback, or the config says so) and TLS is not required.
pub(crate) fn login_allowed(config: &ImapConfig, tls: bool) -> bool {
    tls || (config.plaintext_login_allowed && !config.require_tls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn conn(config: &ImapConfig, tls: bool) -> Conn {
        Conn {
            config: Arc::new(config.clone()),
            selected: None,
            enabled: super::super::Enabled::default(),
            closing: false,
            tls,
            channel_binding: tls,
            external: false,
            scram_sha1: true,
            scram_sha256: true,
            interrupt: None,
            notify: None,
            user: None,
            store_owner: None,
            parked: None,
            admin: false,
        }
    }

    fn capabilities(config: &ImapConfig, authenticated: bool, tls: bool) -> String {
        super::capabilities(&conn(config, tls), authenticated)
    }

    #[test]
    fn login_disabled_without_plaintext() {
        let mut config = ImapConfig::new("mx.example.org");
        config.plaintext_login_allowed = false;
        let caps = capabilities(&config, false, false);
        assert!(caps.contains("LOGINDISABLED"));
        assert!(!caps.contains("AUTH=PLAIN"));
        config.plaintext_login_allowed = true;
        let caps = capabilities(&config, false, false);
        assert!(caps.contains("AUTH=PLAIN"));
        assert!(caps.contains("AUTH=SCRAM-SHA-256 "), "{caps}");
        assert!(!caps.contains("-PLUS"), "no channel binding without TLS: {caps}");
        assert!(!caps.contains("UIDPLUS"));
        assert!(capabilities(&config, true, false).contains("UIDPLUS MOVE"));
    }

    #[test]
    fn starttls_is_announced_until_tls_runs_and_tls_allows_login() {
        let mut config = ImapConfig::new("mx.example.org");
        config.plaintext_login_allowed = false;
        config.starttls = true;
        let before = capabilities(&config, false, false);
        assert!(before.contains("STARTTLS") && before.contains("LOGINDISABLED"), "{before}");
        let after = capabilities(&config, false, true);
        assert!(!after.contains("STARTTLS") && after.contains("AUTH=PLAIN"), "{after}");
        // require_tls overrides a loopback's plain-text allowance.
        config.plaintext_login_allowed = true;
        config.require_tls = true;
        let strict = capabilities(&config, false, false);
        assert!(strict.contains("LOGINDISABLED") && !strict.contains("AUTH="), "{strict}");
    }

    #[test]
    fn scram_is_offered_without_tls_but_passwords_and_tokens_are_not() {
        let mut config = ImapConfig::new("mx.example.org");
        config.plaintext_login_allowed = false;
        config.tokens = true;
        let plain = capabilities(&config, false, false);
        assert!(plain.contains("AUTH=SCRAM-SHA-256 AUTH=SCRAM-SHA-1 LOGINDISABLED"), "{plain}");
        assert!(!plain.contains("AUTH=PLAIN") && !plain.contains("OAUTHBEARER"), "{plain}");
        let tls = capabilities(&config, false, true);
        assert!(tls.contains("AUTH=SCRAM-SHA-256-PLUS AUTH=SCRAM-SHA-256 "), "{tls}");
        assert!(tls.contains("AUTH=OAUTHBEARER AUTH=XOAUTH2 AUTH=PLAIN AUTH=LOGIN"), "{tls}");
        assert!(!tls.contains("EXTERNAL") && !tls.contains("LOGINDISABLED"), "{tls}");
        let mut with_cert = conn(&config, true);
        with_cert.external = true;
        assert!(super::capabilities(&with_cert, false).contains("AUTH=EXTERNAL"));
    }
}
