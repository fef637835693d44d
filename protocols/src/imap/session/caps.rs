//! The capability list: what this server announces, before and after login.
//!
//! Only what is implemented is announced. IMAP4rev2 brings ESEARCH, NAMESPACE, UNSELECT,
//! UIDPLUS, MOVE, IDLE, LITERAL-, SASL-IR, ENABLE, ID-like behaviour with it; rev1 clients need
//! them named, so they are listed explicitly.

use super::ImapConfig;

/// Capabilities every state announces.
const COMMON: &str = "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE";

/// Capabilities announced once authenticated.
const AUTHENTICATED: &str = "UIDPLUS MOVE UNSELECT NAMESPACE CHILDREN ESEARCH";

/// The capability list for the current state (without the `CAPABILITY` keyword); `tls`: the
/// connection is encrypted.
#[must_use]
pub(crate) fn capabilities(config: &ImapConfig, authenticated: bool, tls: bool) -> String {
    let mut caps = String::from(COMMON);
    if authenticated {
        caps.push(' ');
        caps.push_str(AUTHENTICATED);
        if config.condstore {
            caps.push_str(" CONDSTORE");
        }
        return caps;
    }
    if config.starttls && !tls {
        caps.push_str(" STARTTLS");
    }
    if login_allowed(config, tls) {
        caps.push_str(" AUTH=PLAIN");
    } else {
        caps.push_str(" LOGINDISABLED");
    }
    caps
}

/// True when a password may be sent on this connection: it is encrypted, or the shard allows
/// plain text here (loopback, or the config says so) and TLS is not required.
pub(crate) fn login_allowed(config: &ImapConfig, tls: bool) -> bool {
    tls || (config.plaintext_login_allowed && !config.require_tls)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(capabilities(&config, false, false).contains("LOGINDISABLED"));
    }
}
