//! PLAIN, LOGIN, EXTERNAL, OAUTHBEARER and XOAUTH2 (`skua_protocols::sasl`), each driven the
//! way a protocol and the shard drive it: client messages in, requests answered by a host on
//! a real users file, master file and token verifier (tokens signed in the test).

mod sasl_support;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{Ed25519KeyPair, KeyPair};
use sasl_support::{Host, context};
use serde_json::json;
use skua_core::users::UserDb;
use skua_core::users::jwt::{TokenPolicy, TokenVerifier};
use skua_core::users::master::Logins;
use skua_protocols::sasl::limits::CLIENT_MESSAGE_BYTES_MAX;
use skua_protocols::sasl::{Exchange, FailureReason, HostAnswer, Mechanism, Step, Success};

const USERS: &[u8] = b"alice:{PLAIN}alice-pw\nbob:{PLAIN}bob-pw\n";
const MASTERS: &[u8] = b"support:{PLAIN}master-pw\n";
const NOW: u64 = 1_800_000_000;

/// Runs an exchange: `client` answers each challenge (`None`: the client has nothing more
/// and the test fails), `host` each request.
fn run(
    mechanism: Mechanism,
    initial: Option<&[u8]>,
    client: &[&[u8]],
    host: &mut Host<'_>,
) -> (Result<Success, FailureReason>, Vec<Vec<u8>>) {
    let mut exchange = Exchange::start(mechanism, context());
    let mut challenges = Vec::new();
    let mut answers = client.iter();
    let mut step = exchange.begin(initial);
    loop {
        step = match step {
            Step::Challenge(data) => {
                challenges.push(data);
                let answer = answers.next().expect("the client has an answer");
                exchange.respond(answer)
            }
            Step::Success(success) => return (Ok(success), challenges),
            Step::Failure(failure) => return (Err(failure.reason), challenges),
            request => {
                let answer = host.answer(&request).expect("a request");
                exchange.answer(answer)
            }
        };
    }
}

fn success(user: &str, authcid: &str, authzid: Option<&str>) -> Result<Success, FailureReason> {
    Ok(Success {
        user: user.into(),
        authcid: authcid.into(),
        authzid: authzid.map(Into::into),
        final_data: None,
    })
}

#[test]
fn plain_with_and_without_initial_response_and_authzid() {
    let users = UserDb::parse(USERS, "users");
    let masters = UserDb::parse(MASTERS, "masters");
    let mut host = Host::new(Logins { users: &users, masters: Some(&masters) });
    let plain = |initial: Option<&[u8]>, client: &[&[u8]], host: &mut Host<'_>| {
        run(Mechanism::Plain, initial, client, host).0
    };
    assert_eq!(plain(Some(b"\0alice\0alice-pw"), &[], &mut host), success("alice", "alice", None));
    let (result, challenges) = run(Mechanism::Plain, None, &[b"\0alice\0alice-pw"], &mut host);
    assert_eq!((result, challenges), (success("alice", "alice", None), vec![Vec::new()]));
    assert_eq!(
        plain(Some(b"alice\0alice\0alice-pw"), &[], &mut host),
        success("alice", "alice", Some("alice"))
    );
    // A master user logs in as alice: by authzid, or by `alice*support`.
    assert_eq!(
        plain(Some(b"alice\0support\0master-pw"), &[], &mut host),
        success("alice", "support", Some("alice"))
    );
    assert_eq!(
        plain(Some(b"\0alice*support\0master-pw"), &[], &mut host),
        success("alice", "alice*support", None)
    );
    let refused = |reason: &str| Err(FailureReason::Refused(reason.into()));
    assert_eq!(plain(Some(b"\0alice\0wrong"), &[], &mut host), refused("bad credentials"));
    assert_eq!(plain(Some(b"bob\0alice\0alice-pw"), &[], &mut host), refused("bad credentials"));
    assert_eq!(host.requests, 7);
}

#[test]
fn plain_refuses_malformed_messages_without_asking_the_host() {
    let users = UserDb::parse(USERS, "users");
    let mut host = Host::new(Logins::new(&users));
    for message in [
        &b""[..],
        b"alice",
        b"\0alice",
        b"\0\0pw",
        b"\0alice\0",
        b"\0alice\0pw\0",
        b"\xff\0alice\0pw",
        b"\0al\xffice\0pw",
        b"\0alice\0p\xffw",
    ] {
        let (result, _) = run(Mechanism::Plain, Some(message), &[], &mut host);
        assert!(
            matches!(result, Err(FailureReason::Malformed(_))),
            "{:?}: {result:?}",
            String::from_utf8_lossy(message)
        );
    }
    let long_name = [&b"\0"[..], &vec![b'a'; 2000], b"\0pw"].concat();
    let (result, _) = run(Mechanism::Plain, Some(&long_name), &[], &mut host);
    assert!(matches!(result, Err(FailureReason::Malformed(_))));
    assert_eq!(host.requests, 0);
}

#[test]
fn login_prompts_for_user_and_password() {
    let users = UserDb::parse(USERS, "users");
    let masters = UserDb::parse(MASTERS, "masters");
    let mut host = Host::new(Logins { users: &users, masters: Some(&masters) });
    let (result, challenges) = run(Mechanism::Login, None, &[b"alice", b"alice-pw"], &mut host);
    assert_eq!(result, success("alice", "alice", None));
    assert_eq!(challenges, [&b"Username:"[..], b"Password:"]);
    // An initial response is the user name.
    let (result, challenges) = run(Mechanism::Login, Some(b"bob"), &[b"bob-pw"], &mut host);
    assert_eq!((result, challenges.len()), (success("bob", "bob", None), 1));
    let (result, _) = run(Mechanism::Login, None, &[b"bob*support", b"master-pw"], &mut host);
    assert_eq!(result, success("bob", "bob*support", None));
    let (result, _) = run(Mechanism::Login, None, &[b"alice", b"nope"], &mut host);
    assert_eq!(result, Err(FailureReason::Refused("bad credentials".into())));
    for client in [&[&b""[..]][..], &[b"alice", b""], &[b"al\0ice"], &[b"alice", b"p\xff"]] {
        let (result, _) = run(Mechanism::Login, None, client, &mut host);
        assert!(matches!(result, Err(FailureReason::Malformed(_))), "{client:?}: {result:?}");
    }
    assert_eq!(host.requests, 4);
}

#[test]
fn external_uses_the_certificate_user_and_checks_the_authzid() {
    let users = UserDb::parse(USERS, "users");
    let mut host = Host::new(Logins::new(&users));
    host.certificate_user = Some("Alice");
    let (result, challenges) = run(Mechanism::External, None, &[b""], &mut host);
    assert_eq!((result, challenges), (success("alice", "alice", None), vec![Vec::new()]));
    let (result, _) = run(Mechanism::External, Some(b"alice"), &[], &mut host);
    assert_eq!(result, success("alice", "alice", Some("alice")));
    let (result, _) = run(Mechanism::External, Some(b"bob"), &[], &mut host);
    let not_authorized = "not authorized to act as the requested user";
    assert_eq!(result, Err(FailureReason::NotAuthorized(not_authorized.into())));
    let (result, _) = run(Mechanism::External, Some(b"a\0b"), &[], &mut host);
    assert!(matches!(result, Err(FailureReason::Malformed(_))));
    host.certificate_user = None;
    let (result, _) = run(Mechanism::External, Some(b""), &[], &mut host);
    assert_eq!(result, Err(FailureReason::Refused("no client certificate".into())));
}

/// An identity provider with one Ed25519 key, and a verifier trusting it.
struct Provider {
    key: Ed25519KeyPair,
    verifier: TokenVerifier,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Provider {
    fn new() -> Provider {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1",
                                    "x": b64(key.public_key().as_ref())}]});
        let mut policy =
            TokenPolicy::new("jwks.json".into(), "https://id.example".into(), "skua".into());
        policy.user_claim = "email".into();
        let verifier = TokenVerifier::from_jwks(policy, jwks.to_string().as_bytes()).unwrap();
        Provider { key, verifier }
    }

    fn token(&self, user: &str, expires: u64) -> String {
        let header = b64(json!({"alg": "EdDSA", "kid": "k1"}).to_string().as_bytes());
        let claims = json!({"iss": "https://id.example", "aud": "skua", "email": user,
                            "exp": expires});
        let input = format!("{header}.{}", b64(claims.to_string().as_bytes()));
        let signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", b64(signature.as_ref()))
    }
}

fn oauthbearer(authzid: &str, token: &str) -> Vec<u8> {
    format!("n,a={authzid},\x01host=imap.example.com\x01port=993\x01auth=Bearer {token}\x01\x01")
        .into_bytes()
}

fn xoauth2(user: &str, token: &str) -> Vec<u8> {
    format!("user={user}\x01auth=Bearer {token}\x01\x01").into_bytes()
}

#[test]
fn oauthbearer_and_xoauth2_accept_a_signed_token() {
    let users = UserDb::parse(USERS, "users");
    let provider = Provider::new();
    let mut host = Host::new(Logins::new(&users));
    host.tokens = Some(&provider.verifier);
    host.now_unix_seconds = NOW;
    let token = provider.token("alice", NOW + 60);
    let (result, _) =
        run(Mechanism::OAuthBearer, Some(&oauthbearer("alice", &token)), &[], &mut host);
    assert_eq!(result, success("alice", "alice", Some("alice")));
    let (result, challenges) =
        run(Mechanism::OAuthBearer, None, &[&oauthbearer("alice", &token)], &mut host);
    assert_eq!((result.is_ok(), challenges), (true, vec![Vec::new()]));
    let (result, _) = run(Mechanism::XOAuth2, Some(&xoauth2("alice", &token)), &[], &mut host);
    assert_eq!(result, success("alice", "alice", Some("alice")));
}

#[test]
fn a_refused_token_gets_the_error_challenge_then_fails() {
    let users = UserDb::parse(USERS, "users");
    let provider = Provider::new();
    let mut host = Host::new(Logins::new(&users));
    host.tokens = Some(&provider.verifier);
    host.now_unix_seconds = NOW;
    let expired = provider.token("alice", NOW - 3600);
    let (result, challenges) =
        run(Mechanism::OAuthBearer, Some(&oauthbearer("alice", &expired)), &[b"\x01"], &mut host);
    assert_eq!(result, Err(FailureReason::Refused("token expired".into())));
    let error: serde_json::Value = serde_json::from_slice(&challenges[0]).unwrap();
    assert_eq!(error, json!({"status": "invalid_token", "schemes": "bearer"}));
    // Another user's token, for alice (authzid mismatch): the same error challenge, and a
    // failure that says authorization (the token itself was good).
    let bobs = provider.token("bob", NOW + 60);
    let (result, _) =
        run(Mechanism::OAuthBearer, Some(&oauthbearer("alice", &bobs)), &[b"\x01"], &mut host);
    let not_authorized = "not authorized to act as the requested user";
    assert_eq!(result, Err(FailureReason::NotAuthorized(not_authorized.into())));
    // A tampered token: a bad signature.
    let (signed, signature) = bobs.rsplit_once('.').unwrap();
    let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    signature[10] ^= 1;
    let tampered = format!("{signed}.{}", b64(&signature));
    let (result, challenges) =
        run(Mechanism::XOAuth2, Some(&xoauth2("bob", &tampered)), &[b""], &mut host);
    assert_eq!(result, Err(FailureReason::Refused("bad token signature".into())));
    let error: serde_json::Value = serde_json::from_slice(&challenges[0]).unwrap();
    assert_eq!(error, json!({"status": "401", "schemes": "bearer"}));
    // The discovery URL goes into OAUTHBEARER's error when the host set one.
    let mut context = context();
    context.openid_configuration =
        Some("https://id.example/.well-known/openid-configuration".into());
    let mut exchange = Exchange::start(Mechanism::OAuthBearer, context);
    let _ = exchange.begin(Some(&oauthbearer("alice", &expired)));
    let Step::Challenge(error) = exchange.answer(HostAnswer::Refused("token expired".into()))
    else {
        panic!("an error challenge");
    };
    let error: serde_json::Value = serde_json::from_slice(&error).unwrap();
    assert_eq!(
        error["openid-configuration"],
        "https://id.example/.well-known/openid-configuration"
    );
}

#[test]
fn malformed_token_messages_fail_without_asking_the_host() {
    let users = UserDb::parse(USERS, "users");
    let mut host = Host::new(Logins::new(&users));
    for message in [
        &b""[..],
        b"\x01",
        b"n,,auth=Bearer x\x01\x01",
        b"n,,\x01auth=Basic eA==\x01\x01",
        b"n,,\x01host=x\x01\x01",
        b"p=tls-exporter,,\x01auth=Bearer x\x01\x01",
    ] {
        let (result, _) = run(Mechanism::OAuthBearer, Some(message), &[], &mut host);
        assert!(
            matches!(result, Err(FailureReason::Malformed(_) | FailureReason::Unsupported(_))),
            "{:?}: {result:?}",
            String::from_utf8_lossy(message)
        );
    }
    for message in
        [&b""[..], b"user=a\x01auth=Bearer x\x01", b"user=a\x01\x01", b"auth=Bearer x\x01\x01"]
    {
        let (result, _) = run(Mechanism::XOAuth2, Some(message), &[], &mut host);
        assert!(matches!(result, Err(FailureReason::Malformed(_))), "{message:?}: {result:?}");
    }
    assert_eq!(host.requests, 0);
}

#[test]
fn oversize_messages_fail_for_every_mechanism() {
    let big = vec![b'a'; CLIENT_MESSAGE_BYTES_MAX + 1];
    for mechanism in Mechanism::ALL {
        let mut exchange = Exchange::start(mechanism, context());
        let step = exchange.begin(Some(&big));
        assert_eq!(
            step,
            Step::Failure(skua_protocols::sasl::Failure { reason: FailureReason::Oversize })
        );
        let mut exchange = Exchange::start(mechanism, context());
        assert!(matches!(exchange.begin(None), Step::Challenge(_)));
        assert!(matches!(exchange.respond(&big), Step::Failure(_)), "{mechanism}");
    }
}

#[test]
fn mechanism_names_round_trip_and_classify() {
    for mechanism in Mechanism::ALL {
        assert_eq!(Mechanism::from_name(mechanism.name().as_bytes()), Some(mechanism));
        let lower = mechanism.name().to_ascii_lowercase();
        assert_eq!(Mechanism::from_name(lower.as_bytes()), Some(mechanism));
    }
    assert_eq!(Mechanism::from_name(b"CRAM-MD5"), None);
    assert_eq!(Mechanism::from_name(b"SCRAM-SHA-256-PLUSX"), None);
    let password: Vec<_> = Mechanism::ALL.into_iter().filter(|m| m.sends_password()).collect();
    assert_eq!(password, [Mechanism::Plain, Mechanism::Login]);
    let plus: Vec<_> = Mechanism::ALL.into_iter().filter(|m| m.needs_channel_binding()).collect();
    assert_eq!(plus, [Mechanism::ScramSha256Plus, Mechanism::ScramSha1Plus]);
}

#[test]
fn unavailable_checks_end_in_unavailable() {
    for (mechanism, initial) in [
        (Mechanism::Plain, &b"\0alice\0pw"[..]),
        (Mechanism::External, b""),
        (Mechanism::OAuthBearer, b"n,,\x01auth=Bearer x\x01\x01"),
    ] {
        let mut exchange = Exchange::start(mechanism, context());
        let request = exchange.begin(Some(initial));
        assert!(!matches!(request, Step::Challenge(_) | Step::Failure(_)), "{request:?}");
        let step = exchange.answer(HostAnswer::Unavailable);
        assert_eq!(
            step,
            Step::Failure(skua_protocols::sasl::Failure { reason: FailureReason::Unavailable })
        );
    }
}

#[test]
fn passwords_and_tokens_never_show_in_debug_output() {
    let mut exchange = Exchange::start(Mechanism::Plain, context());
    let step = exchange.begin(Some(b"\0alice\0hunter2-secret"));
    assert!(!format!("{step:?}").contains("hunter2"), "{step:?}");
    assert!(!format!("{exchange:?}").contains("hunter2"));
    let mut exchange = Exchange::start(Mechanism::OAuthBearer, context());
    let step = exchange.begin(Some(b"n,,\x01auth=Bearer sekrit-token\x01\x01"));
    assert!(!format!("{step:?}").contains("sekrit"), "{step:?}");
}

#[test]
fn an_exchange_can_travel_with_its_session_between_shards() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<Exchange>();
    assert_send::<Step>();
    assert_send::<HostAnswer>();
}
