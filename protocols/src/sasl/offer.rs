//! Which mechanisms a connection advertises, from what it can do.

use super::types::Mechanism;

/// What a connection and the server's config allow; [`Offer::mechanisms`] turns it into the
/// list for `AUTH=` capabilities (IMAP) or the `AUTH` EHLO keyword (LMTP).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offer {
    /// The connection is TLS and has a `tls-exporter` value: offer the `-PLUS` variants (and
    /// set [`Context::plus_advertised`](super::Context::plus_advertised)).
    pub channel_binding: bool,
    /// PLAIN and LOGIN may be used here (TLS, loopback, or the config allows plain text).
    pub passwords: bool,
    /// SCRAM-SHA-256 is offered (users with SCRAM-SHA-256 keys can use it; others fail like a
    /// wrong password, so offering it reveals nothing; whether to offer it is the host's call,
    /// see the shard's `ScramOffer`).
    pub scram: bool,
    /// SCRAM-SHA-1 is offered (as `scram`, for SHA-1 keys).
    pub scram_sha1: bool,
    /// The TLS client presented a certificate the server accepts: offer EXTERNAL.
    pub external: bool,
    /// A token policy is configured: offer OAUTHBEARER and XOAUTH2.
    pub tokens: bool,
}

impl Offer {
    /// The mechanisms to advertise, strongest first (the order of [`Mechanism::ALL`]).
    #[must_use]
    pub fn mechanisms(&self) -> Vec<Mechanism> {
        Mechanism::ALL.into_iter().filter(|&mechanism| self.allows(mechanism)).collect()
    }

    /// True when `mechanism` may be used on this connection: a client that names one not
    /// offered is refused before an exchange starts.
    #[must_use]
    pub fn allows(&self, mechanism: Mechanism) -> bool {
        match mechanism {
            Mechanism::Plain | Mechanism::Login => self.passwords,
            Mechanism::ScramSha256 => self.scram,
            Mechanism::ScramSha1 => self.scram_sha1,
            Mechanism::ScramSha256Plus => self.scram && self.channel_binding,
            Mechanism::ScramSha1Plus => self.scram_sha1 && self.channel_binding,
            Mechanism::External => self.external,
            Mechanism::OAuthBearer | Mechanism::XOAuth2 => self.tokens,
        }
    }

    /// The value for [`Context::plus_advertised`](super::Context::plus_advertised).
    #[must_use]
    pub fn plus_advertised(&self) -> bool {
        (self.scram || self.scram_sha1) && self.channel_binding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers() {
        assert!(Offer::default().mechanisms().is_empty());
        let plain_text = Offer { scram: true, scram_sha1: true, ..Offer::default() };
        assert_eq!(plain_text.mechanisms(), [Mechanism::ScramSha256, Mechanism::ScramSha1]);
        assert!(!plain_text.plus_advertised());
        let tls = Offer {
            channel_binding: true,
            passwords: true,
            scram: true,
            scram_sha1: true,
            ..Offer::default()
        };
        assert_eq!(
            tls.mechanisms(),
            [
                Mechanism::ScramSha256Plus,
                Mechanism::ScramSha256,
                Mechanism::ScramSha1Plus,
                Mechanism::ScramSha1,
                Mechanism::Plain,
                Mechanism::Login,
            ]
        );
        assert!(tls.plus_advertised());
        let everything = Offer { external: true, tokens: true, ..tls };
        assert_eq!(everything.mechanisms(), Mechanism::ALL);
        assert!(
            !Offer { channel_binding: true, ..Offer::default() }.allows(Mechanism::ScramSha1Plus)
        );
    }
}
