//! IMAP AUTHENTICATE and LOGIN through the session with a stand-in shard (the test's `Host`
//! answers the session's requests from a real users file, master file and token verifier):
//! every mechanism, SASL-IR and `+` continuations, `*` cancellation, malformed base64, a
//! wrong channel binding, a downgrade, what each connection offers, and which failures go to
//! the shard's brake.

mod sasl_support;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{Ed25519KeyPair, KeyPair};
use sasl_support::{Binding, Hash, Host, ScramClient, context};
use serde_json::json;
use skua_core::disk::os::OsDisk;
use skua_core::users::jwt::{TokenPolicy, TokenVerifier};
use skua_core::users::master::Logins;
use skua_core::users::scram::{ScramAlgorithm, ScramKeys};
use skua_core::users::{Secret, UserDb};
use skua_protocols::imap::session::{AuthOutcome, AuthRequest, ImapConfig, ImapSession, Step};
use skua_protocols::sasl::{FailureReason, Step as SaslStep};
use std::sync::Arc;

const EXPORTER: &[u8; 32] = b"this connection's tls-exporter..";

fn scram_line(algorithm: ScramAlgorithm, password: &str) -> String {
    ScramKeys::derive(algorithm, password.as_bytes(), b"salt", 2).unwrap().to_passwd_field()
}

/// alice (SCRAM-SHA-256), sam (SCRAM-SHA-1), bob (PLAIN); master `support` (PLAIN).
fn users() -> (UserDb, UserDb) {
    let file = format!(
        "alice:{}\nsam:{}\nbob:{{PLAIN}}bob-pw\n",
        scram_line(ScramAlgorithm::Sha256, "pencil"),
        scram_line(ScramAlgorithm::Sha1, "pencil")
    );
    let masters = "support:{PLAIN}master-pw\n";
    (UserDb::parse(file.as_bytes(), "users"), UserDb::parse(masters.as_bytes(), "masters"))
}

/// An identity provider whose Ed25519 key signs tokens in the test.
struct Provider {
    key: Ed25519KeyPair,
    verifier: TokenVerifier,
}

impl Provider {
    fn new() -> Provider {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let x = URL_SAFE_NO_PAD.encode(key.public_key().as_ref());
        let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x}]});
        let policy = TokenPolicy::new("jwks".into(), "https://id.example".into(), "skua".into());
        let verifier = TokenVerifier::from_jwks(policy, jwks.to_string().as_bytes()).unwrap();
        Provider { key, verifier }
    }

    fn token(&self, user: &str) -> String {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let header = b64(json!({"alg": "EdDSA"}).to_string().as_bytes());
        let claims = json!({"iss": "https://id.example", "aud": "skua", "sub": user,
                            "exp": 4_000_000_000_u64});
        let input = format!("{header}.{}", b64(claims.to_string().as_bytes()));
        format!("{input}.{}", b64(self.key.sign(input.as_bytes()).as_ref()))
    }
}

/// A session and the stand-in shard around it.
struct Shard<'a> {
    session: ImapSession,
    host: Host<'a>,
    /// The `tls-exporter` value the shard puts in each context (TLS 1.3 connections).
    exporter: Option<Vec<u8>>,
    /// The user of the last `LogIn` request.
    logged_in: Option<String>,
    /// Every `Failed` request: the reason and whether a password check counted it already.
    failed: Vec<(FailureReason, bool)>,
    /// `LogIn` requests whose success the brake still had to count.
    uncounted_logins: usize,
    closed: bool,
    /// Users the operator denied (`skua deny`), with their message.
    denied: Option<(&'static str, &'static str)>,
}

impl<'a> Shard<'a> {
    fn new(logins: Logins<'a>, config: ImapConfig) -> Shard<'a> {
        Shard {
            session: ImapSession::new(Arc::new(config)),
            host: Host::new(logins),
            exporter: None,
            logged_in: None,
            failed: Vec::new(),
            uncounted_logins: 0,
            closed: false,
            denied: None,
        }
    }

    /// A connection over TLS 1.3 (channel binding), with a client certificate for `cert_user`.
    fn tls(&mut self, cert_user: Option<&'a str>) {
        self.session.tls_started();
        self.session.set_tls_identity(true, cert_user.is_some());
        self.host.certificate_user = cert_user;
        self.exporter = Some(EXPORTER.to_vec());
    }

    fn greeting(&self) -> String {
        String::from_utf8(self.session.greeting()).unwrap()
    }

    /// Sends `line` (CRLF added); everything the session wrote until it needs input.
    fn send(&mut self, line: &str) -> String {
        self.session.feed(format!("{line}\r\n").as_bytes());
        self.run()
    }

    /// Everything the session writes until it needs input.
    fn run(&mut self) -> String {
        let mut output = Vec::new();
        for _ in 0..100 {
            match self.session.next::<OsDisk>(None) {
                Step::NeedInput | Step::Idle => return String::from_utf8(output).unwrap(),
                Step::Close => {
                    self.closed = true;
                    return String::from_utf8(output).unwrap();
                }
                Step::Write { chunks, .. } => {
                    chunks.iter().for_each(|c| output.extend_from_slice(c.as_bytes()));
                }
                Step::Yield | Step::StartTls | Step::Compress | Step::Elsewhere { .. } => {}
                Step::Authenticate(request) => self.answer(request),
            }
        }
        panic!("the session did not settle");
    }

    /// What the shard does for each request.
    fn answer(&mut self, request: AuthRequest) {
        let host_step = match request {
            AuthRequest::Context { .. } => {
                let mut context = context();
                if let Some(exporter) = &self.exporter {
                    context = context.with_tls_exporter(Secret::new(exporter.clone()));
                }
                return self.session.auth_context(context);
            }
            AuthRequest::Password { authcid, authzid, password, .. } => {
                SaslStep::VerifyPassword { authcid, authzid, password }
            }
            AuthRequest::ScramCredentials { authcid, authzid, algorithm } => {
                SaslStep::ScramCredentials { authcid, authzid, algorithm }
            }
            AuthRequest::Token { token, authzid, .. } => SaslStep::VerifyToken { token, authzid },
            AuthRequest::External { authzid } => SaslStep::External { authzid },
            AuthRequest::LogIn { user, counted, .. } => {
                if let Some((denied, message)) = self.denied
                    && denied == user
                {
                    return self.session.auth_disabled(message);
                }
                self.logged_in = Some(user);
                self.uncounted_logins += usize::from(!counted);
                return self.session.auth_done(AuthOutcome::Success);
            }
            AuthRequest::Failed { reason, counted, .. } => {
                // What the shard answers (shard/src/sasl.rs).
                let outcome = match reason {
                    FailureReason::NotAuthorized(_) => AuthOutcome::NotAuthorized,
                    _ => AuthOutcome::Failure,
                };
                self.failed.push((reason, counted));
                return self.session.auth_done(outcome);
            }
        };
        let answer = self.host.answer(&host_step).expect("a request");
        self.session.auth_answer(answer);
    }
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The decoded data of a `+ base64` continuation.
fn challenge(output: &str) -> Vec<u8> {
    let line = output.strip_prefix("+ ").unwrap_or_else(|| panic!("a challenge: {output:?}"));
    STANDARD.decode(line.trim_end()).unwrap()
}

fn plaintext_config() -> ImapConfig {
    ImapConfig::new("test.example")
}

fn strict_config() -> ImapConfig {
    let mut config = ImapConfig::new("test.example");
    config.plaintext_login_allowed = false;
    config
}

#[test]
fn plain_with_initial_response_and_with_a_continuation() {
    let (users, masters) = users();
    let logins = Logins { users: &users, masters: Some(&masters) };
    let mut shard = Shard::new(logins, plaintext_config());
    let reply = shard.send(&format!("a AUTHENTICATE PLAIN {}", b64(b"\0BOB\0bob-pw")));
    assert!(reply.starts_with("a OK [CAPABILITY "), "{reply}");
    assert_eq!(shard.logged_in.as_deref(), Some("bob"));
    assert_eq!(shard.uncounted_logins, 0, "a password check counted the success itself");

    let mut shard = Shard::new(logins, plaintext_config());
    assert_eq!(shard.send("b AUTHENTICATE plain"), "+ \r\n");
    assert!(shard.send(&b64(b"\0bob\0bob-pw")).starts_with("b OK "));
    // A wrong password: NO, counted once (by the password check), no BYE yet.
    let mut shard = Shard::new(logins, plaintext_config());
    let reply = shard.send(&format!("c AUTHENTICATE PLAIN {}", b64(b"\0bob\0guess")));
    assert_eq!(reply, "c NO [AUTHENTICATIONFAILED] Invalid credentials\r\n");
    assert!(matches!(&shard.failed[..], [(FailureReason::Refused(_), true)]), "{:?}", shard.failed);
}

#[test]
fn plain_authzid_lets_a_master_user_in_as_another() {
    let (users, masters) = users();
    let logins = Logins { users: &users, masters: Some(&masters) };
    let mut shard = Shard::new(logins, plaintext_config());
    let reply = shard.send(&format!("a AUTHENTICATE PLAIN {}", b64(b"alice\0support\0master-pw")));
    assert!(reply.starts_with("a OK "), "{reply}");
    assert_eq!(shard.logged_in.as_deref(), Some("alice"));
    // And `target*master` with the LOGIN command.
    let mut shard = Shard::new(logins, plaintext_config());
    assert!(shard.send("b LOGIN \"bob*support\" master-pw").starts_with("b OK "));
    assert_eq!(shard.logged_in.as_deref(), Some("bob"));
    // Without a master file, an authorization id for another user is refused.
    let mut shard = Shard::new(Logins::new(&users), plaintext_config());
    let reply = shard.send(&format!("c AUTHENTICATE PLAIN {}", b64(b"alice\0bob\0bob-pw")));
    assert!(reply.starts_with("c NO [AUTHENTICATIONFAILED]"), "{reply}");
}

#[test]
fn login_mechanism_prompts_for_user_and_password() {
    let (users, _) = users();
    let mut shard = Shard::new(Logins::new(&users), plaintext_config());
    assert_eq!(challenge(&shard.send("a AUTHENTICATE LOGIN")), b"Username:");
    assert_eq!(challenge(&shard.send(&b64(b"bob"))), b"Password:");
    assert!(shard.send(&b64(b"bob-pw")).starts_with("a OK "));
    assert_eq!(shard.logged_in.as_deref(), Some("bob"));
}

/// Runs a SCRAM exchange through the session; the tagged reply.
fn scram(
    shard: &mut Shard<'_>,
    mechanism: &str,
    client: &mut ScramClient,
    sasl_ir: bool,
) -> String {
    let server_first = if sasl_ir {
        shard.send(&format!("s AUTHENTICATE {mechanism} {}", b64(&client.first())))
    } else {
        assert_eq!(shard.send(&format!("s AUTHENTICATE {mechanism}")), "+ \r\n");
        shard.send(&b64(&client.first()))
    };
    if !server_first.starts_with("+ ") {
        return server_first;
    }
    let server_final = shard.send(&b64(&client.final_message(&challenge(&server_first))));
    if !server_final.starts_with("+ ") {
        return server_final;
    }
    assert!(client.server_final_ok(&challenge(&server_final)), "the server proved its key");
    shard.send("")
}

#[test]
fn scram_sha256_and_sha1_without_tls() {
    let (users, masters) = users();
    let logins = Logins { users: &users, masters: Some(&masters) };
    for (mechanism, hash, user, ir) in
        [("SCRAM-SHA-256", Hash::Sha256, "alice", true), ("SCRAM-SHA-1", Hash::Sha1, "sam", false)]
    {
        let mut shard = Shard::new(logins, strict_config());
        let greeting = shard.greeting();
        assert!(greeting.contains(&format!("AUTH={mechanism} ")), "{greeting}");
        assert!(greeting.contains("LOGINDISABLED") && !greeting.contains("AUTH=PLAIN"));
        let mut client = ScramClient::new(hash, user, "pencil", Binding::None);
        let reply = scram(&mut shard, mechanism, &mut client, ir);
        assert!(reply.starts_with("s OK [CAPABILITY "), "{mechanism}: {reply}");
        assert_eq!(shard.logged_in.as_deref(), Some(user));
        assert_eq!(shard.uncounted_logins, 1, "the shard counts a SCRAM success in the brake");
    }
}

#[test]
fn scram_failures_go_to_the_brake() {
    let (users, _) = users();
    let mut shard = Shard::new(Logins::new(&users), strict_config());
    for (round, user) in ["alice", "nobody", "alice"].into_iter().enumerate() {
        let mut client = ScramClient::new(Hash::Sha256, user, "wrong", Binding::None);
        let reply = scram(&mut shard, "SCRAM-SHA-256", &mut client, true);
        assert!(reply.starts_with("s NO [AUTHENTICATIONFAILED]"), "{reply}");
        assert_eq!(shard.failed.len(), round + 1);
    }
    assert!(
        shard.failed.iter().all(|f| *f == (FailureReason::BadProof, false)),
        "{:?}",
        shard.failed
    );
    assert!(shard.closed || shard.send("x NOOP").contains("BYE"), "BYE after three failures");
}

#[test]
fn scram_plus_binds_to_this_tls_connection() {
    let (users, _) = users();
    let logins = Logins::new(&users);
    let mut shard = Shard::new(logins, strict_config());
    shard.tls(None);
    let greeting = shard.greeting();
    assert!(greeting.contains("AUTH=SCRAM-SHA-256-PLUS AUTH=SCRAM-SHA-256 "), "{greeting}");
    let binding = Binding::Bound("tls-exporter", EXPORTER.to_vec());
    let mut client = ScramClient::new(Hash::Sha256, "alice", "pencil", binding.clone());
    assert!(scram(&mut shard, "SCRAM-SHA-256-PLUS", &mut client, true).starts_with("s OK "));
    let mut shard = Shard::new(logins, strict_config());
    shard.tls(None);
    let mut client = ScramClient::new(Hash::Sha1, "sam", "pencil", binding);
    assert!(scram(&mut shard, "SCRAM-SHA-1-PLUS", &mut client, false).starts_with("s OK "));
    assert_eq!(shard.logged_in.as_deref(), Some("sam"));

    // Another connection's exporter value (a relayed exchange): refused.
    let mut shard = Shard::new(logins, strict_config());
    shard.tls(None);
    let binding = Binding::Bound("tls-exporter", b"another connection's exporter...".to_vec());
    let mut client = ScramClient::new(Hash::Sha256, "alice", "pencil", binding);
    let reply = scram(&mut shard, "SCRAM-SHA-256-PLUS", &mut client, true);
    assert!(reply.starts_with("s NO [AUTHENTICATIONFAILED]"), "{reply}");
    assert!(matches!(shard.failed[..], [(FailureReason::ChannelBinding(_), false)]));
}

#[test]
fn plus_is_not_offered_without_tls_and_a_downgrade_is_caught() {
    let (users, _) = users();
    let logins = Logins::new(&users);
    let mut shard = Shard::new(logins, plaintext_config());
    assert!(!shard.greeting().contains("-PLUS"));
    let reply = shard.send("a AUTHENTICATE SCRAM-SHA-256-PLUS");
    assert_eq!(reply, "a NO [CANNOT] Mechanism not available on this connection\r\n");

    // On TLS the -PLUS variants were offered; a client that says "y" (I could bind, but you
    // cannot) saw a list someone stripped of them.
    let mut shard = Shard::new(logins, plaintext_config());
    shard.tls(None);
    let mut client = ScramClient::new(Hash::Sha256, "alice", "pencil", Binding::ClientOnly);
    let reply = scram(&mut shard, "SCRAM-SHA-256", &mut client, true);
    assert!(reply.starts_with("s NO [AUTHENTICATIONFAILED]"), "{reply}");
    assert_eq!(shard.failed, [(FailureReason::Downgrade, false)]);
}

#[test]
fn external_needs_a_client_certificate() {
    let (users, _) = users();
    let logins = Logins::new(&users);
    let mut shard = Shard::new(logins, strict_config());
    shard.tls(None);
    assert!(!shard.greeting().contains("EXTERNAL"));
    assert!(shard.send("a AUTHENTICATE EXTERNAL =").starts_with("a NO [CANNOT]"));

    let mut shard = Shard::new(logins, strict_config());
    shard.tls(Some("bob"));
    assert!(shard.greeting().contains("AUTH=EXTERNAL"));
    assert!(shard.send("b AUTHENTICATE EXTERNAL =").starts_with("b OK "));
    assert_eq!(shard.logged_in.as_deref(), Some("bob"));
    // Asking to be someone else than the certificate says: the certificate proved bob, who
    // may not act as alice (RFC 5530 AUTHORIZATIONFAILED; it was AUTHENTICATIONFAILED).
    let mut shard = Shard::new(logins, strict_config());
    shard.tls(Some("bob"));
    let reply = shard.send(&format!("c AUTHENTICATE EXTERNAL {}", b64(b"alice")));
    assert!(reply.starts_with("c NO [AUTHORIZATIONFAILED]"), "{reply}");
}

#[test]
fn oauthbearer_and_xoauth2_with_a_signed_token() {
    let (users, _) = users();
    let provider = Provider::new();
    let mut config = strict_config();
    config.tokens = true;
    let mut shard = Shard::new(Logins::new(&users), config.clone());
    assert!(!shard.greeting().contains("OAUTH"), "a bearer token needs TLS like a password");
    shard.tls(None);
    shard.host.tokens = Some(&provider.verifier);
    let caps = shard.send("a CAPABILITY");
    assert!(caps.contains("AUTH=OAUTHBEARER AUTH=XOAUTH2"), "{caps}");
    let token = provider.token("alice");
    let message = format!("n,a=alice,\x01auth=Bearer {token}\x01\x01");
    assert!(
        shard
            .send(&format!("b AUTHENTICATE OAUTHBEARER {}", b64(message.as_bytes())))
            .starts_with("b OK ")
    );
    assert_eq!(shard.logged_in.as_deref(), Some("alice"));

    let mut shard = Shard::new(Logins::new(&users), config.clone());
    shard.tls(None);
    shard.host.tokens = Some(&provider.verifier);
    let message = format!("user=bob\x01auth=Bearer {}\x01\x01", provider.token("bob"));
    assert!(
        shard
            .send(&format!("c AUTHENTICATE XOAUTH2 {}", b64(message.as_bytes())))
            .starts_with("c OK ")
    );

    // A token for someone else than `user=`: the JSON error challenge, then NO.
    let mut shard = Shard::new(Logins::new(&users), config);
    shard.tls(None);
    shard.host.tokens = Some(&provider.verifier);
    let message = format!("n,a=bob,\x01auth=Bearer {token}\x01\x01");
    let error = shard.send(&format!("d AUTHENTICATE OAUTHBEARER {}", b64(message.as_bytes())));
    let error: serde_json::Value = serde_json::from_slice(&challenge(&error)).unwrap();
    assert_eq!(error["status"], "invalid_token");
    // The token proved alice; she may not act as bob: AUTHORIZATIONFAILED (RFC 5530), not
    // AUTHENTICATIONFAILED (it was, before).
    let reply = shard.send(&b64(b"\x01"));
    assert!(reply.starts_with("d NO [AUTHORIZATIONFAILED]"), "{reply}");
}

#[test]
fn cancel_at_each_step_is_bad_and_not_a_failed_login() {
    let (users, _) = users();
    let logins = Logins::new(&users);
    let mut shard = Shard::new(logins, plaintext_config());
    shard.send("a AUTHENTICATE PLAIN");
    assert_eq!(shard.send("*"), "a BAD Authentication cancelled\r\n");
    shard.send("b AUTHENTICATE LOGIN");
    shard.send(&b64(b"bob"));
    assert_eq!(shard.send("*"), "b BAD Authentication cancelled\r\n");
    let mut client = ScramClient::new(Hash::Sha256, "alice", "pencil", Binding::None);
    shard.send(&format!("c AUTHENTICATE SCRAM-SHA-256 {}", b64(&client.first())));
    assert_eq!(shard.send("*"), "c BAD Authentication cancelled\r\n");
    // After the server's final data (SCRAM's v=), a cancel still cancels: no login.
    let first = shard.send(&format!("d AUTHENTICATE SCRAM-SHA-256 {}", b64(&client.first())));
    let server_final = shard.send(&b64(&client.final_message(&challenge(&first))));
    assert!(server_final.starts_with("+ "), "{server_final}");
    assert_eq!(shard.send("*"), "d BAD Authentication cancelled\r\n");
    assert!(shard.failed.is_empty() && shard.logged_in.is_none());
    // The session is still usable.
    assert!(shard.send("e LOGIN bob bob-pw").starts_with("e OK "));
}

#[test]
fn malformed_base64_is_bad() {
    let (users, _) = users();
    let mut shard = Shard::new(Logins::new(&users), plaintext_config());
    let reply = shard.send("a AUTHENTICATE PLAIN !!notbase64");
    assert_eq!(reply, "a BAD initial response is not base64\r\n");
    shard.send("b AUTHENTICATE PLAIN");
    assert_eq!(shard.send("AGJvYgBib2ItcH=="), "b BAD Invalid base64 in SASL response\r\n");
    assert!(shard.failed.is_empty() && shard.logged_in.is_none());
    // Valid base64 that is no PLAIN message: a failed login, counted by the brake.
    let reply = shard.send(&format!("c AUTHENTICATE PLAIN {}", b64(b"no nul bytes")));
    assert!(reply.starts_with("c NO [AUTHENTICATIONFAILED]"), "{reply}");
    assert!(matches!(shard.failed[..], [(FailureReason::Malformed(_), false)]));
}

#[test]
fn mechanisms_not_offered_are_refused_before_an_exchange() {
    let (users, _) = users();
    let mut shard = Shard::new(Logins::new(&users), strict_config());
    let reply = shard.send(&format!("a AUTHENTICATE PLAIN {}", b64(b"\0bob\0bob-pw")));
    assert!(reply.starts_with("a NO [PRIVACYREQUIRED]"), "{reply}");
    assert!(shard.send("b AUTHENTICATE GSSAPI").starts_with("b NO [CANNOT]"));
    assert!(shard.send("c AUTHENTICATE XOAUTH2").starts_with("c NO [PRIVACYREQUIRED]"));
    assert_eq!(shard.host.requests, 0, "nothing reached the shard");
}

#[test]
fn the_shard_may_end_a_login_at_any_request() {
    // A throttled source is answered at the SCRAM credentials request, before any check: the
    // exchange ends there, and the refusal counts towards the BYE like a failure.
    let (users, _) = users();
    let mut shard = Shard::new(Logins::new(&users), strict_config());
    for round in 1..=3 {
        let mut client = ScramClient::new(Hash::Sha256, "alice", "pencil", Binding::None);
        shard.session.feed(
            format!("t{round} AUTHENTICATE SCRAM-SHA-256 {}\r\n", b64(&client.first())).as_bytes(),
        );
        let step = shard.session.next::<OsDisk>(None);
        assert!(matches!(step, Step::Authenticate(AuthRequest::Context { .. })), "{step:?}");
        shard.session.auth_context(context());
        let step = shard.session.next::<OsDisk>(None);
        assert!(
            matches!(step, Step::Authenticate(AuthRequest::ScramCredentials { .. })),
            "{step:?}"
        );
        shard.session.auth_done(AuthOutcome::Throttled);
        let reply = shard.send("");
        assert!(
            reply.starts_with(&format!("t{round} NO [UNAVAILABLE] Too many failed")),
            "{reply}"
        );
    }
    assert!(shard.closed, "three refused logins end the connection");
    assert!(shard.logged_in.is_none());
}

/// `skua deny`: right credentials of a denied user get `NO [CONTACTADMIN]` with the operator's
/// message (only printable ASCII of it), whatever the mechanism; the session stays logged out
/// and the refusal is not a failed attempt (no BYE after several).
#[test]
fn a_denied_user_is_refused_with_contactadmin_and_stays_logged_out() {
    let (users, masters) = users();
    let logins = Logins { users: &users, masters: Some(&masters) };
    let mut shard = Shard::new(logins, plaintext_config());
    shard.denied = Some(("bob", "Suspended\r\n: call 555"));
    for round in 0..5 {
        let reply = shard.send(&format!("a{round} LOGIN bob bob-pw"));
        assert_eq!(reply, format!("a{round} NO [CONTACTADMIN] Suspended: call 555\r\n"));
    }
    let reply = shard.send(&format!("b AUTHENTICATE PLAIN {}", b64(b"\0bob\0bob-pw")));
    assert_eq!(reply, "b NO [CONTACTADMIN] Suspended: call 555\r\n");
    assert!(!shard.session.is_authenticated());
    assert!(!shard.closed);
    assert!(shard.send("c SELECT INBOX").starts_with("c BAD"), "still not logged in");
    shard.denied = None;
    assert!(shard.send("d LOGIN bob bob-pw").starts_with("d OK "), "lifted");
}
