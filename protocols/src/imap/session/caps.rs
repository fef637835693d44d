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

/// The capability list for the current state (without the `CAPABILITY` keyword).
#[must_use]
pub(crate) fn capabilities(config: &ImapConfig, authenticated: bool) -> String {
    let mut caps = String::from(COMMON);
    if authenticated {
        caps.push(' ');
        caps.push_str(AUTHENTICATED);
        if config.condstore {
            caps.push_str(" CONDSTORE");
        }
    } else if config.plaintext_login_allowed {
        caps.push_str(" AUTH=PLAIN");
    } else {
        caps.push_str(" LOGINDISABLED");
    }
    caps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_disabled_without_plaintext() {
        let mut config = ImapConfig::new("mx.example.org");
        config.plaintext_login_allowed = false;
        let caps = capabilities(&config, false);
        assert!(caps.contains("LOGINDISABLED"));
        assert!(!caps.contains("AUTH=PLAIN"));
        config.plaintext_login_allowed = true;
        let caps = capabilities(&config, false);
        assert!(caps.contains("AUTH=PLAIN"));
        assert!(!caps.contains("UIDPLUS"));
        assert!(capabilities(&config, true).contains("UIDPLUS MOVE"));
    }
}
