//! SASL on the shard: what the server knows for authentication besides the users file, and
//! the answers to the IMAP session's login requests (`AuthRequest`).
//!
//! - [`SaslSettings`] (in [`ServerConfig`](crate::ServerConfig)): the master users file
//!   (`[auth] master_passwd_file`), the token verifier with the JWKS file's keys
//!   (`[auth.oauth]`), the server secret unknown SCRAM users' fake keys derive from
//!   (`DATA_DIR/sasl-secret`, made on first start) and the iteration count those fakes claim.
//!   The master users and JWKS files are [`WatchedFile`]s: the passwd-file's watcher
//!   (`users.rs`) reloads them when they change and on SIGHUP, each request takes the
//!   contents in use then, and a version that cannot be loaded keeps the previous one.
//! - [`context`]: a fresh exchange context: 18 random bytes from the OS for SCRAM's nonce,
//!   the connection's RFC 9266 `tls-exporter` value when it is TLS 1.3.
//! - [`scram_keys`], [`token`], [`external`]: the cheap checks, run on the shard (a lookup, a
//!   signature check of ~50 µs, a certificate field). The caller takes the source's turn in
//!   the failed-login brake before each (`auth::gate`) and counts the exchange's outcome
//!   (`auth::settle`), so guessing with these mechanisms costs what guessing passwords does.
//!
//! Password checks (PLAIN, LOGIN) stay in `auth::check`, off the reactor.
//!
//! `answer` carries out one login request of an IMAP session: the checks above, and at the
//! end of an exchange the brake's count and the log line (one per login and per failed
//! login; a master user's at `warn`, naming who logged in as whom).

use std::fmt;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use std::net::IpAddr;

use ring::rand::SecureRandom as _;
use skua_core::deny::Service;
use skua_core::users::jwt::{JwksError, TokenPolicy, TokenVerifier};
use skua_core::users::limits::JWKS_FILE_BYTES_MAX;
use skua_core::users::master::{LoginRefusal, Logins, MASTER_SEPARATOR};
use skua_core::users::scram::{SCRAM_ITERATIONS_DEFAULT, ScramAlgorithm};
use skua_core::users::{Secret, UserDb, UsersError, load_or_create_server_secret};
use skua_protocols::imap::session::{AuthOutcome, AuthRequest, ImapSession};
use skua_protocols::sasl::limits::SERVER_NONCE_BYTES;
use skua_protocols::sasl::{Context, FailureReason, HostAnswer, Mechanism};

use crate::auth::{self, Outcome, Verdict};
use crate::conn::Connection;
use crate::metrics::{LoginMechanism, LoginResult};
use crate::shard::Shard;
use crate::tls::TlsConfigs;
use crate::users::{FileKind, MASTERS_FILE, Reloadable, WatchedFile, passwd_parser};

/// The file, in the data dir, holding the server secret.
pub const SERVER_SECRET_FILE: &str = "sasl-secret";

/// The JWKS file of `[auth.oauth]`.
const JWKS_FILE: FileKind =
    FileKind { what: "JWKS file", holds: "keys", bytes_max: JWKS_FILE_BYTES_MAX };

/// Authentication settings beyond the users file.
#[derive(Clone)]
pub struct SaslSettings {
    /// Master users (may log in as anyone), from `[auth] master_passwd_file`.
    pub(crate) masters: Option<WatchedFile<UserDb, UsersError>>,
    /// Checks OAUTHBEARER and XOAUTH2 tokens, from `[auth.oauth]`; `None`: not offered.
    pub(crate) tokens: Option<WatchedFile<TokenVerifier, SaslSettingsError>>,
    /// The secret unknown SCRAM users' fake salts derive from (stable across restarts).
    pub server_secret: Secret<Vec<u8>>,
    /// The iteration count unknown SCRAM users claim; `None`: the users file's most common
    /// count, else [`SCRAM_ITERATIONS_DEFAULT`].
    pub scram_fake_iterations: Option<NonZeroU32>,
    /// When the SCRAM mechanisms are offered (`[auth] scram`).
    pub scram: ScramOffer,
}

/// `[auth] scram`: when SCRAM-SHA-1 and SCRAM-SHA-256 (and their -PLUS forms) are offered.
///
/// A client picks its mechanism before it names the user, and many pick SCRAM when offered
/// (mbsync does), so offering it to a user stored as a crypt hash, who can never pass it,
/// turns a working login into a refusal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ScramOffer {
    /// Each algorithm when every user of the passwd-file has keys for it (the default).
    #[default]
    Auto,
    /// Always (the operator knows their clients fall back, or every user has keys).
    Always,
    /// Never.
    Never,
}

impl ScramOffer {
    /// Whether SCRAM-SHA-1 and SCRAM-SHA-256 are offered now, with `users` current.
    #[must_use]
    pub fn offered(self, users: &UserDb) -> (bool, bool) {
        match self {
            ScramOffer::Auto => (
                users.scram_for_everyone(ScramAlgorithm::Sha1),
                users.scram_for_everyone(ScramAlgorithm::Sha256),
            ),
            ScramOffer::Always => (true, true),
            ScramOffer::Never => (false, false),
        }
    }
}

/// Why [`SaslSettings::load`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SaslSettingsError {
    /// The master users file or the server secret could not be read.
    #[error(transparent)]
    Users(#[from] UsersError),
    /// The JWKS file could not be used.
    #[error("[auth.oauth] jwks_file: {0}")]
    Jwks(#[from] JwksError),
}

impl SaslSettings {
    /// Reads the master users file and the JWKS file when named, and the server secret from
    /// `DATA_DIR/sasl-secret` (made on first start). Once the server runs, a master users file
    /// that goes away means no master users (as a missing passwd-file means no users), while
    /// a JWKS file that goes away or has no usable key keeps the keys loaded before.
    ///
    /// # Errors
    /// A file named in the config cannot be used: the server should not start without what
    /// the operator asked for.
    pub fn load(
        data_dir: &Path,
        master_passwd_file: Option<&Path>,
        token_policy: Option<TokenPolicy>,
        scram_fake_iterations: Option<NonZeroU32>,
    ) -> Result<SaslSettings, SaslSettingsError> {
        // Named in the config, the master file must exist (`UserDb::load` takes a missing
        // file for an empty one, right for the users file of a fresh install only).
        if let Some(path) = master_passwd_file {
            std::fs::metadata(path)
                .map_err(|source| UsersError::Io { path: path.to_owned(), source })?;
        }
        let masters = master_passwd_file
            .map(|path| WatchedFile::load(path, MASTERS_FILE, passwd_parser(path, MASTERS_FILE)))
            .transpose()?;
        let tokens = token_policy.map(jwks_file).transpose()?;
        std::fs::create_dir_all(data_dir)
            .map_err(|source| UsersError::Io { path: data_dir.to_owned(), source })?;
        let server_secret = load_or_create_server_secret(&data_dir.join(SERVER_SECRET_FILE))?;
        Ok(SaslSettings {
            masters,
            tokens,
            server_secret,
            scram_fake_iterations,
            scram: ScramOffer::default(),
        })
    }

    /// The master users now, when configured.
    #[must_use]
    pub fn masters(&self) -> Option<Arc<UserDb>> {
        self.masters.as_ref().map(WatchedFile::get)
    }

    /// The token verifier with the keys now, when configured.
    #[must_use]
    pub fn tokens(&self) -> Option<Arc<TokenVerifier>> {
        self.tokens.as_ref().map(WatchedFile::get)
    }

    /// The files to reload when they change: the master users and JWKS files, when named.
    #[must_use]
    pub(crate) fn watched_files(&self) -> Vec<Arc<dyn Reloadable>> {
        let masters = self.masters.clone().map(|file| Arc::new(file) as Arc<dyn Reloadable>);
        let tokens = self.tokens.clone().map(|file| Arc::new(file) as Arc<dyn Reloadable>);
        masters.into_iter().chain(tokens).collect()
    }
}

/// The JWKS file of `policy`, loaded, and parsed with it on each reload.
fn jwks_file(
    policy: TokenPolicy,
) -> Result<WatchedFile<TokenVerifier, SaslSettingsError>, SaslSettingsError> {
    let path = policy.jwks_path.clone();
    let parse = move |contents: Option<&[u8]>| {
        let Some(contents) = contents else {
            let source = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
            return Err(JwksError::Io { path: policy.jwks_path.clone(), source }.into());
        };
        let verifier = TokenVerifier::from_jwks(policy.clone(), contents)?;
        let keys = verifier.key_count();
        tracing::info!(path = %policy.jwks_path.display(), keys, "loaded JWKS file");
        Ok(verifier)
    };
    WatchedFile::load(&path, JWKS_FILE, parse)
}

impl Default for SaslSettings {
    /// No master users, no tokens, and a secret drawn now (fakes stable for this process
    /// only: servers started from the CLI load a persistent one).
    fn default() -> SaslSettings {
        let mut secret = vec![0; skua_core::users::SERVER_SECRET_BYTES];
        ring::rand::SystemRandom::new().fill(&mut secret).expect("the OS random source");
        SaslSettings {
            masters: None,
            tokens: None,
            server_secret: Secret::new(secret),
            scram_fake_iterations: None,
            scram: ScramOffer::default(),
        }
    }
}

impl fmt::Debug for SaslSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslSettings")
            .field("masters", &self.masters().map(|m| m.len()))
            .field("tokens", &self.tokens().map(|t| t.policy().clone()))
            .field("server_secret", &self.server_secret)
            .field("scram_fake_iterations", &self.scram_fake_iterations)
            .finish()
    }
}

/// What the TLS layer of `connection` gives SASL: an RFC 9266 channel binding (TLS 1.3 only),
/// and whether a verified client certificate maps to a user (EXTERNAL). Pass both to
/// `ImapSession::set_tls_identity` after the handshake.
#[must_use]
pub fn tls_identity(tls: Option<&TlsConfigs>, connection: &Connection) -> (bool, bool) {
    let Some(layer) = connection.tls() else { return (false, false) };
    let binding = layer.channel_binding().is_some();
    let external =
        tls.is_some_and(|configs| configs.client_user(layer.client_certificates()).is_ok());
    (binding, external)
}

/// A fresh context for one exchange on `connection`; `None` when the OS random source fails.
#[must_use]
pub fn context(
    settings: &SaslSettings,
    users: &UserDb,
    connection: &Connection,
) -> Option<Context> {
    let mut random = [0; SERVER_NONCE_BYTES];
    ring::rand::SystemRandom::new().fill(&mut random).ok()?;
    let mut context = Context::new(random, settings.server_secret.clone());
    context.scram_fake_iterations = settings
        .scram_fake_iterations
        .or_else(|| users.scram_iterations_common())
        .unwrap_or(NonZeroU32::new(SCRAM_ITERATIONS_DEFAULT).expect("a non-zero constant"));
    if let Some(binding) = connection.tls().and_then(crate::conn_tls::TlsLayer::channel_binding) {
        context = context.with_tls_exporter(Secret::new(binding.to_vec()));
    }
    Some(context)
}

/// The answer to a SCRAM credentials request: the keys and the user they log in as, or
/// `None` (the exchange then runs on fake keys and fails at the proof).
#[must_use]
pub fn scram_keys(
    settings: &SaslSettings,
    users: &UserDb,
    authcid: &str,
    authzid: Option<&str>,
    algorithm: ScramAlgorithm,
) -> HostAnswer {
    let masters = settings.masters();
    let logins = Logins { users, masters: masters.as_deref() };
    let found = logins.scram_credentials(authcid, authzid, algorithm);
    HostAnswer::ScramKeys(found.map(|(keys, identity)| (keys, identity.user)))
}

/// The answer to a token request: the token's user claim, authorized as `authzid`.
#[must_use]
pub fn token(
    settings: &SaslSettings,
    users: &UserDb,
    token: &Secret<String>,
    authzid: Option<&str>,
) -> HostAnswer {
    let Some(verifier) = settings.tokens() else {
        // Not offered without a policy; a client naming it anyway is refused earlier.
        return HostAnswer::Unavailable;
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    match verifier.verify(token.expose(), now) {
        Ok(claim) => authorized(settings, users, &claim, authzid),
        Err(rejection) => HostAnswer::Refused(rejection.to_string()),
    }
}

/// The answer to an EXTERNAL request: the verified client certificate's user, authorized as
/// `authzid`.
#[must_use]
pub fn external(
    tls: Option<&TlsConfigs>,
    settings: &SaslSettings,
    users: &UserDb,
    connection: &Connection,
    authzid: Option<&str>,
) -> HostAnswer {
    let certificates = connection.tls().and_then(crate::conn_tls::TlsLayer::client_certificates);
    let Some(configs) = tls else { return HostAnswer::Refused("no TLS".into()) };
    match configs.client_user(certificates) {
        Ok(user) => authorized(settings, users, &user, authzid),
        Err(error) => HostAnswer::Refused(error.to_string()),
    }
}

/// `authenticated` (proved by a certificate or a token) as `authzid`.
fn authorized(
    settings: &SaslSettings,
    users: &UserDb,
    authenticated: &str,
    authzid: Option<&str>,
) -> HostAnswer {
    let masters = settings.masters();
    match (Logins { users, masters: masters.as_deref() }).authorize(authenticated, authzid) {
        Ok(identity) => HostAnswer::Accepted { user: identity.user },
        Err(refusal @ LoginRefusal::NotAuthorized) => {
            HostAnswer::NotAuthorized(refusal.to_string())
        }
        Err(refusal) => HostAnswer::Refused(refusal.to_string()),
    }
}

/// Carries out `request` for `session` on `connection` and answers the session (see
/// `AuthRequest` for which call answers what), except for a successful login: then the user
/// to log in as is returned, for the caller to log in here or hand the connection over.
pub(crate) async fn answer(
    shard: &Shard,
    connection: &Connection,
    session: &mut ImapSession,
    request: AuthRequest,
) -> Option<String> {
    let source = connection.peer().ip();
    let settings = &shard.config().sasl;
    let users = shard.shared.users.get();
    let answer = match request {
        AuthRequest::Context { .. } => {
            match context(settings, &users, connection) {
                Some(context) => session.auth_context(context),
                None => session.auth_done(AuthOutcome::Unavailable),
            }
            return None;
        }
        AuthRequest::Password { authcid, authzid, password, mechanism } => {
            match auth::check(shard, source, authcid, authzid, password).await {
                Verdict::Accepted(identity) => HostAnswer::Accepted { user: identity.user },
                Verdict::Rejected => HostAnswer::Refused("bad credentials".into()),
                Verdict::Unavailable => {
                    shard.metrics().login(LoginResult::Refused, LoginMechanism(mechanism));
                    HostAnswer::Unavailable
                }
                Verdict::Throttled => {
                    shard.metrics().login(LoginResult::Refused, LoginMechanism(mechanism));
                    session.auth_done(AuthOutcome::Throttled);
                    return None;
                }
            }
        }
        AuthRequest::ScramCredentials { authcid, authzid, algorithm } => {
            // The `-PLUS` variants count as their base mechanism here (refusals only).
            let mechanism = match algorithm {
                ScramAlgorithm::Sha1 => Mechanism::ScramSha1,
                ScramAlgorithm::Sha256 => Mechanism::ScramSha256,
            };
            gated(shard, source, &authcid, session, mechanism).await?;
            scram_keys(settings, &users, &authcid, authzid.as_deref(), algorithm)
        }
        AuthRequest::Token { token: bearer, authzid, mechanism } => {
            gated(shard, source, authzid.as_deref().unwrap_or(""), session, mechanism).await?;
            token(settings, &users, &bearer, authzid.as_deref())
        }
        AuthRequest::External { authzid } => {
            let user = authzid.as_deref().unwrap_or("");
            gated(shard, source, user, session, Mechanism::External).await?;
            let tls = shard.config().tls.as_deref();
            external(tls, settings, &users, connection, authzid.as_deref())
        }
        AuthRequest::LogIn { mechanism, user, authcid, counted } => {
            if !counted {
                auth::settle(shard, source, &authcid, Outcome::Success).await;
            }
            // Right credentials, but the operator shut the user out (`deny.rs`).
            if let Some(message) = shard.shared.deny.refusal(&user, Service::Imap) {
                shard.metrics().login(LoginResult::Refused, LoginMechanism(mechanism));
                let mechanism = mechanism.map_or("LOGIN command", Mechanism::name);
                tracing::warn!(%source, mechanism, user, "login refused: user denied (skua deny)");
                session.auth_disabled(&message);
                return None;
            }
            shard.metrics().login(LoginResult::Ok, LoginMechanism(mechanism));
            log_login(shard, source, mechanism, &user, &authcid);
            return Some(user);
        }
        AuthRequest::Failed { mechanism, authcid, reason, counted } => {
            shard.metrics().login(LoginResult::Failed, LoginMechanism(mechanism));
            let mechanism = mechanism.map_or("LOGIN command", Mechanism::name);
            let authcid = authcid.unwrap_or_default();
            tracing::info!(%source, mechanism, user = authcid, %reason, "login failed");
            if !counted {
                auth::settle(shard, source, &authcid, Outcome::Failure).await;
            }
            session.auth_done(match reason {
                FailureReason::NotAuthorized(_) => AuthOutcome::NotAuthorized,
                _ => AuthOutcome::Failure,
            });
            return None;
        }
    };
    session.auth_answer(answer);
    None
}

/// Waits for the source's turn in the brake (`auth::gate`); `None` when the brake refused,
/// after ending the session's login with that.
async fn gated(
    shard: &Shard,
    source: IpAddr,
    user: &str,
    session: &mut ImapSession,
    mechanism: Mechanism,
) -> Option<()> {
    match auth::gate(shard, source, user).await {
        Ok(()) => Some(()),
        Err(verdict) => {
            shard.metrics().login(LoginResult::Refused, LoginMechanism(Some(mechanism)));
            session.auth_done(match verdict {
                Verdict::Throttled => AuthOutcome::Throttled,
                Verdict::Accepted(_) | Verdict::Rejected | Verdict::Unavailable => {
                    AuthOutcome::Unavailable
                }
            });
            None
        }
    }
}

/// One line per successful login. A password or SCRAM login whose name is not the session's
/// user (`target*master`, or a master user with an authorization id) is a master login: at
/// `warn`, naming who logged in as whom, so support and migration access stands out.
fn log_login(
    shard: &Shard,
    source: IpAddr,
    mechanism: Option<Mechanism>,
    user: &str,
    authcid: &str,
) {
    let proved_by_identity = matches!(
        mechanism,
        Some(Mechanism::External | Mechanism::OAuthBearer | Mechanism::XOAuth2)
    );
    let mechanism = mechanism.map_or("LOGIN command", Mechanism::name);
    if !proved_by_identity && !authcid.eq_ignore_ascii_case(user) {
        let master = authcid.rsplit_once(MASTER_SEPARATOR).map_or(authcid, |(_, master)| master);
        tracing::warn!(
            shard = shard.id.0, %source, mechanism, user, authenticated_as = master,
            "master login"
        );
    } else {
        tracing::info!(shard = shard.id.0, %source, mechanism, user, "login");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::Reload;

    #[test]
    fn the_server_secret_survives_a_restart_and_masters_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let masters = dir.path().join("masters");
        std::fs::write(&masters, "support:{PLAIN}pw\n").expect("write");
        let first = SaslSettings::load(dir.path(), Some(&masters), None, None).expect("load");
        let second = SaslSettings::load(dir.path(), None, None, None).expect("load");
        let typo = dir.path().join("masterz");
        assert!(SaslSettings::load(dir.path(), Some(&typo), None, None).is_err());
        assert_eq!(first.server_secret.expose(), second.server_secret.expose());
        assert_eq!(first.masters().map(|m| m.len()), Some(1));
        assert!(second.masters().is_none());
        let missing = dir.path().join("missing.jwks");
        let policy = TokenPolicy::new(missing, "issuer".into(), "audience".into());
        assert!(matches!(
            SaslSettings::load(dir.path(), None, Some(policy), None),
            Err(SaslSettingsError::Jwks(_))
        ));
    }

    /// A JWKS with the RFC 8037 (appendix A.2) Ed25519 public key, `count` times.
    fn jwks(count: usize) -> String {
        let key =
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        format!(r#"{{"keys":[{}]}}"#, vec![key; count].join(","))
    }

    #[test]
    fn a_jwks_file_that_breaks_or_goes_keeps_its_keys_and_a_good_one_replaces_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("provider.jwks");
        std::fs::write(&path, jwks(1)).expect("write");
        let policy = TokenPolicy::new(path.clone(), "issuer".into(), "audience".into());
        let settings = SaslSettings::load(dir.path(), None, Some(policy), None).expect("load");
        let file = settings.tokens.clone().expect("configured");
        let before = settings.tokens().expect("configured");
        assert_eq!(settings.watched_files().len(), 1);
        for broken in [&b"{not json"[..], br#"{"keys":[]}"#] {
            std::fs::write(&path, broken).expect("write");
            assert_eq!(file.reload(true), Reload::Refused);
            assert!(Arc::ptr_eq(&before, &settings.tokens().expect("kept")));
        }
        std::fs::remove_file(&path).expect("remove");
        assert_eq!(file.reload(true), Reload::Refused, "a JWKS file that goes keeps its keys");
        std::fs::write(&path, jwks(2)).expect("write");
        assert_eq!(file.reload(true), Reload::Loaded);
        assert_eq!(settings.tokens().expect("configured").key_count(), 2);
    }

    #[test]
    fn scram_keys_come_from_the_users_and_masters_files() {
        let users = UserDb::parse(b"alice:{PLAIN}alice-pw\n", "users");
        let settings = SaslSettings::default();
        let answer = scram_keys(&settings, &users, "alice", None, ScramAlgorithm::Sha256);
        // `{PLAIN}` entries derive no stored SCRAM keys: the exchange runs on fakes.
        assert!(matches!(answer, HostAnswer::ScramKeys(None)), "{answer:?}");
        let token_answer = token(&settings, &users, &Secret::from("x.y.z"), None);
        assert!(matches!(token_answer, HostAnswer::Unavailable));
    }
}
