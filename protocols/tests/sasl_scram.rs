//! SCRAM-SHA-1/-256 and their -PLUS variants (`skua_protocols::sasl`): the RFC test vectors,
//! a client written from the RFC formulas against the server exchange, and every failure
//! path (bad proof, unknown user, nonce mismatch, channel binding, downgrade, malformed and
//! oversize messages).

mod sasl_support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sasl_support::{Binding, Hash, Host, ScramClient, context};
use skua_core::users::Secret;
use skua_core::users::UserDb;
use skua_core::users::master::Logins;
use skua_core::users::scram::{ScramAlgorithm, ScramKeys};
use skua_protocols::sasl::limits::CLIENT_MESSAGE_BYTES_MAX;
use skua_protocols::sasl::{
    Context, Exchange, Failure, FailureReason, HostAnswer, Mechanism, Step, Success, SuccessData,
};

const EXPORTER: &[u8; 32] = b"tls-exporter value, 32 bytes....";

fn scram_line(algorithm: ScramAlgorithm, password: &str, salt: &[u8], iterations: u32) -> String {
    ScramKeys::derive(algorithm, password.as_bytes(), salt, iterations).unwrap().to_passwd_field()
}

/// Users with SCRAM keys of both hashes (1 iteration: fast tests), and a master.
fn users() -> (UserDb, UserDb) {
    let mut file = String::new();
    for (name, algorithm) in [("alice", ScramAlgorithm::Sha256), ("sam", ScramAlgorithm::Sha1)] {
        file.push_str(&format!("{name}:{}\n", scram_line(algorithm, "pencil", b"salt-of-user", 1)));
    }
    file.push_str("bob:{PLAIN}bob-pw\n");
    let masters = format!("support:{}\n", scram_line(ScramAlgorithm::Sha256, "m-pw", b"m-salt", 2));
    (UserDb::parse(file.as_bytes(), "users"), UserDb::parse(masters.as_bytes(), "masters"))
}

fn tls_context() -> Context {
    context().with_tls_exporter(Secret::new(EXPORTER.to_vec()))
}

fn failure(step: Step) -> FailureReason {
    match step {
        Step::Failure(Failure { reason }) => reason,
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn challenge(step: Step) -> Vec<u8> {
    match step {
        Step::Challenge(data) => data,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

/// Runs a SCRAM exchange to its end with `client` and the host; the outcome and the exchange
/// (for the server-final check).
fn run(
    mechanism: Mechanism,
    context: Context,
    client: &mut ScramClient,
    host: &mut Host<'_>,
) -> Result<Success, FailureReason> {
    let mut exchange = Exchange::start(mechanism, context);
    let mut step = exchange.begin(Some(&client.first()));
    let mut server_final = None;
    loop {
        step = match step {
            Step::Challenge(data) if data.starts_with(b"r=") => {
                exchange.respond(&client.final_message(&data))
            }
            Step::Challenge(data) if data.starts_with(b"v=") => {
                server_final = Some(data);
                exchange.respond(b"")
            }
            Step::Challenge(data) => panic!("unexpected challenge {data:?}"),
            Step::Success(success) => {
                let server_final = server_final.expect("v= came before success");
                assert!(client.server_final_ok(&server_final), "the server proved its keys");
                assert!(exchange.is_finished());
                return Ok(success);
            }
            Step::Failure(failure) => {
                assert!(exchange.is_finished());
                return Err(failure.reason);
            }
            request => {
                let answer = host.answer(&request).expect("a request");
                exchange.answer(answer)
            }
        };
    }
}

/// Runs one RFC example: the server's messages must be the RFC's byte for byte.
fn rfc_vector(mechanism: Mechanism, algorithm: ScramAlgorithm, lines: [&str; 4], nonce: &str) {
    let [client_first, server_first, client_final, server_final] = lines;
    let salt_b64 = server_first.split(",s=").nth(1).unwrap().split(',').next().unwrap();
    let salt = STANDARD.decode(salt_b64).unwrap();
    let file = format!("user:{}\n", scram_line(algorithm, "pencil", &salt, 4096));
    let db = UserDb::parse(file.as_bytes(), "rfc");
    let mut host = Host::new(Logins::new(&db));
    let mut context = context();
    context.server_nonce = nonce.to_owned();
    let mut exchange = Exchange::start(mechanism, context);
    let request = exchange.begin(Some(client_first.as_bytes()));
    assert_eq!(
        request,
        Step::ScramCredentials { authcid: "user".into(), authzid: None, algorithm }
    );
    let step = exchange.answer(host.answer(&request).unwrap());
    assert_eq!(challenge(step), server_first.as_bytes());
    let step = exchange.respond(client_final.as_bytes());
    assert_eq!(challenge(step), server_final.as_bytes());
    let step = exchange.respond(b"");
    let expected =
        Success { user: "user".into(), authcid: "user".into(), authzid: None, final_data: None };
    assert_eq!(step, Step::Success(expected));
}

#[test]
fn rfc5802_section5_scram_sha1() {
    rfc_vector(
        Mechanism::ScramSha1,
        ScramAlgorithm::Sha1,
        [
            "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
        ],
        "3rfcNHYJY1ZVvWVs7j",
    );
}

#[test]
fn rfc7677_section3_scram_sha256() {
    rfc_vector(
        Mechanism::ScramSha256,
        ScramAlgorithm::Sha256,
        [
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,\
             i=4096",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        ],
        "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    );
}

#[test]
fn a_client_from_the_rfc_formulas_logs_in_with_every_scram_mechanism() {
    let (users, _) = users();
    let mut host = Host::new(Logins::new(&users));
    let cases = [
        (Mechanism::ScramSha256, Hash::Sha256, "alice", Binding::None, context()),
        (Mechanism::ScramSha256, Hash::Sha256, "alice", Binding::None, tls_context()),
        (Mechanism::ScramSha1, Hash::Sha1, "sam", Binding::None, context()),
        (Mechanism::ScramSha256, Hash::Sha256, "alice", Binding::ClientOnly, context()),
        (
            Mechanism::ScramSha256Plus,
            Hash::Sha256,
            "alice",
            Binding::Bound("tls-exporter", EXPORTER.to_vec()),
            tls_context(),
        ),
        (
            Mechanism::ScramSha1Plus,
            Hash::Sha1,
            "sam",
            Binding::Bound("tls-exporter", EXPORTER.to_vec()),
            tls_context(),
        ),
    ];
    for (mechanism, hash, user, binding, context) in cases {
        let mut client = ScramClient::new(hash, user, "pencil", binding.clone());
        let success = run(mechanism, context, &mut client, &mut host)
            .unwrap_or_else(|reason| panic!("{mechanism} {binding:?}: {reason}"));
        assert_eq!((success.user.as_str(), success.authcid.as_str()), (user, user));
    }
    assert_eq!(host.requests, 6, "one key lookup per exchange");
}

#[test]
fn without_an_initial_response_the_server_sends_an_empty_challenge_first() {
    let (users, _) = users();
    let mut host = Host::new(Logins::new(&users));
    let mut client = ScramClient::new(Hash::Sha256, "alice", "pencil", Binding::None);
    let mut exchange = Exchange::start(Mechanism::ScramSha256, context());
    assert_eq!(exchange.begin(None), Step::Challenge(Vec::new()));
    let request = exchange.respond(&client.first());
    let server_first = challenge(exchange.answer(host.answer(&request).unwrap()));
    let server_final = challenge(exchange.respond(&client.final_message(&server_first)));
    assert!(client.server_final_ok(&server_final));
    assert!(matches!(exchange.respond(b""), Step::Success(_)));
}

#[test]
fn success_data_can_travel_with_the_success() {
    let (users, _) = users();
    let mut host = Host::new(Logins::new(&users));
    let mut client = ScramClient::new(Hash::Sha256, "alice", "pencil", Binding::None);
    let mut context = context();
    context.success_data = SuccessData::WithSuccess;
    let mut exchange = Exchange::start(Mechanism::ScramSha256, context);
    let request = exchange.begin(Some(&client.first()));
    let server_first = challenge(exchange.answer(host.answer(&request).unwrap()));
    let Step::Success(success) = exchange.respond(&client.final_message(&server_first)) else {
        panic!("success expected");
    };
    assert!(client.server_final_ok(&success.final_data.unwrap()));
}

#[test]
fn a_non_empty_answer_to_the_server_final_message_fails() {
    let (users, _) = users();
    let mut host = Host::new(Logins::new(&users));
    let mut client = ScramClient::new(Hash::Sha256, "alice", "pencil", Binding::None);
    let mut exchange = Exchange::start(Mechanism::ScramSha256, context());
    let request = exchange.begin(Some(&client.first()));
    let server_first = challenge(exchange.answer(host.answer(&request).unwrap()));
    let _ = challenge(exchange.respond(&client.final_message(&server_first)));
    assert!(matches!(failure(exchange.respond(b"x")), FailureReason::Malformed(_)));
}

#[test]
fn a_wrong_password_fails_at_the_proof() {
    let (users, _) = users();
    let mut host = Host::new(Logins::new(&users));
    for (mechanism, hash, user) in
        [(Mechanism::ScramSha256, Hash::Sha256, "alice"), (Mechanism::ScramSha1, Hash::Sha1, "sam")]
    {
        let mut client = ScramClient::new(hash, user, "pencim", Binding::None);
        assert_eq!(run(mechanism, context(), &mut client, &mut host), Err(FailureReason::BadProof));
    }
    // Keys of the other hash are no keys at all: alice has SHA-256 keys only.
    let mut client = ScramClient::new(Hash::Sha1, "alice", "pencil", Binding::None);
    let result = run(Mechanism::ScramSha1, context(), &mut client, &mut host);
    assert_eq!(result, Err(FailureReason::BadProof));
}

/// The server-first message for `user`, with the client nonce taken out.
fn server_first_for(user: &str, users: &UserDb) -> String {
    let mut host = Host::new(Logins::new(users));
    let mut client = ScramClient::new(Hash::Sha256, user, "x", Binding::None);
    let mut exchange = Exchange::start(Mechanism::ScramSha256, context());
    let request = exchange.begin(Some(&client.first()));
    let server_first = challenge(exchange.answer(host.answer(&request).unwrap()));
    String::from_utf8(server_first).unwrap().replace(&client.nonce, "")
}

#[test]
fn an_unknown_user_gets_a_stable_fake_salt_and_fails_like_a_wrong_password() {
    let (users, _) = users();
    let nobody = server_first_for("nobody", &users);
    assert_eq!(nobody, server_first_for("nobody", &users), "same salt on every attempt");
    assert_ne!(nobody, server_first_for("someone-else", &users));
    // Shaped like a real user's: same nonce part, a 16-byte salt, 4096 iterations.
    let alice = server_first_for("alice", &users);
    let fields = |text: &str| text.split(',').map(|f| f[..2].to_owned()).collect::<Vec<_>>();
    assert_eq!(fields(&nobody), fields(&alice));
    assert!(nobody.ends_with(",i=4096"), "{nobody}");
    let salt = nobody.split(",s=").nth(1).unwrap().split(',').next().unwrap();
    assert_eq!(STANDARD.decode(salt).unwrap().len(), 16);
    // Any password fails at the proof, the same reason as a wrong one.
    let mut host = Host::new(Logins::new(&users));
    let mut client = ScramClient::new(Hash::Sha256, "nobody", "pencil", Binding::None);
    assert_eq!(
        run(Mechanism::ScramSha256, context(), &mut client, &mut host),
        Err(FailureReason::BadProof)
    );
    // A user without SCRAM keys looks the same from outside.
    let mut client = ScramClient::new(Hash::Sha256, "bob", "bob-pw", Binding::None);
    assert_eq!(
        run(Mechanism::ScramSha256, context(), &mut client, &mut host),
        Err(FailureReason::BadProof)
    );
}

#[test]
fn a_wrong_nonce_in_the_final_message_fails() {
    let (users, _) = users();
    let mut host = Host::new(Logins::new(&users));
    let mut client = ScramClient::new(Hash::Sha256, "alice", "pencil", Binding::None);
    let mut exchange = Exchange::start(Mechanism::ScramSha256, context());
    let request = exchange.begin(Some(&client.first()));
    let server_first = challenge(exchange.answer(host.answer(&request).unwrap()));
    let server_first = String::from_utf8(server_first).unwrap();
    let salt = STANDARD.decode(b"c2FsdC1vZi11c2Vy").unwrap();
    let forged = client.final_with(&server_first, &format!("{}other", client.nonce), &salt, 1);
    assert_eq!(failure(exchange.respond(&forged)), FailureReason::NonceMismatch);
}

#[test]
fn channel_binding_must_be_this_connections_exporter() {
    let (users, _) = users();
    let mut host = Host::new(Logins::new(&users));
    let bound = |data: &[u8]| Binding::Bound("tls-exporter", data.to_vec());
    let cases: [(Mechanism, Binding, Context, FailureReason); 8] = [
        // Bound to another connection's exporter (a man in the middle).
        (
            Mechanism::ScramSha256Plus,
            bound(b"another connection's exporter..."),
            tls_context(),
            FailureReason::ChannelBinding("c= does not match this connection"),
        ),
        (
            Mechanism::ScramSha256Plus,
            bound(b""),
            tls_context(),
            FailureReason::ChannelBinding("c= does not match this connection"),
        ),
        // -PLUS with no TLS under it.
        (
            Mechanism::ScramSha256Plus,
            bound(EXPORTER),
            context(),
            FailureReason::ChannelBinding("no TLS exporter on this connection"),
        ),
        // -PLUS without binding.
        (
            Mechanism::ScramSha256Plus,
            Binding::None,
            tls_context(),
            FailureReason::ChannelBinding("-PLUS mechanism without channel binding"),
        ),
        (
            Mechanism::ScramSha1Plus,
            Binding::ClientOnly,
            tls_context(),
            FailureReason::ChannelBinding("-PLUS mechanism without channel binding"),
        ),
        // Another binding type.
        (
            Mechanism::ScramSha256Plus,
            Binding::Bound("tls-unique", EXPORTER.to_vec()),
            tls_context(),
            FailureReason::Unsupported("channel binding type other than tls-exporter"),
        ),
        // Binding requested on the non-PLUS mechanism.
        (
            Mechanism::ScramSha256,
            bound(EXPORTER),
            tls_context(),
            FailureReason::ChannelBinding("binding requested on a non-PLUS mechanism"),
        ),
        // RFC 5802 §6: "y" while the server did offer -PLUS: someone stripped it.
        (Mechanism::ScramSha256, Binding::ClientOnly, tls_context(), FailureReason::Downgrade),
    ];
    for (mechanism, binding, context, expected) in cases {
        let mut client = ScramClient::new(Hash::Sha256, "alice", "pencil", binding.clone());
        if mechanism == Mechanism::ScramSha1Plus {
            client = ScramClient::new(Hash::Sha1, "sam", "pencil", binding.clone());
        }
        let result = run(mechanism, context, &mut client, &mut host);
        assert_eq!(result, Err(expected), "{mechanism} {binding:?}");
    }
}

#[test]
fn a_final_message_that_changes_the_header_fails_the_binding_check() {
    let (users, _) = users();
    let mut host = Host::new(Logins::new(&users));
    // The client says "n" first, then presents c= for "y" (header mismatch).
    let mut client = ScramClient::new(Hash::Sha256, "alice", "pencil", Binding::None);
    let mut exchange = Exchange::start(Mechanism::ScramSha256, context());
    let request = exchange.begin(Some(&client.first()));
    let server_first = challenge(exchange.answer(host.answer(&request).unwrap()));
    let honest = String::from_utf8(client.final_message(&server_first)).unwrap();
    let tampered = honest.replacen("c=biws", &format!("c={}", STANDARD.encode("y,,")), 1);
    let reason = failure(exchange.respond(tampered.as_bytes()));
    assert_eq!(reason, FailureReason::ChannelBinding("c= does not match this connection"));
    // The right header with binding data after it, on a mechanism without binding.
    let mut exchange = Exchange::start(Mechanism::ScramSha256, tls_context());
    let mut client = ScramClient::new(Hash::Sha256, "alice", "pencil", Binding::None);
    let request = exchange.begin(Some(&client.first()));
    let server_first = challenge(exchange.answer(host.answer(&request).unwrap()));
    let honest = String::from_utf8(client.final_message(&server_first)).unwrap();
    let with_data = [&b"n,,"[..], EXPORTER].concat();
    let tampered = honest.replacen("c=biws", &format!("c={}", STANDARD.encode(with_data)), 1);
    let reason = failure(exchange.respond(tampered.as_bytes()));
    assert_eq!(reason, FailureReason::ChannelBinding("c= does not match this connection"));
}

#[test]
fn master_users_use_their_own_keys_for_someone_else() {
    let (users, masters) = users();
    let mut host = Host::new(Logins { users: &users, masters: Some(&masters) });
    let mut client = ScramClient::new(Hash::Sha256, "support", "m-pw", Binding::None);
    client.authzid = Some("alice".into());
    let success = run(Mechanism::ScramSha256, context(), &mut client, &mut host).unwrap();
    assert_eq!((success.user.as_str(), success.authzid.as_deref()), ("alice", Some("alice")));
    let mut client = ScramClient::new(Hash::Sha256, "bob*support", "m-pw", Binding::None);
    let success = run(Mechanism::ScramSha256, context(), &mut client, &mut host).unwrap();
    assert_eq!((success.user.as_str(), success.authcid.as_str()), ("bob", "bob*support"));
    // A user's own keys do not authorize another user.
    let mut client = ScramClient::new(Hash::Sha256, "alice", "pencil", Binding::None);
    client.authzid = Some("bob".into());
    assert_eq!(
        run(Mechanism::ScramSha256, context(), &mut client, &mut host),
        Err(FailureReason::BadProof)
    );
}

#[test]
fn malformed_client_first_messages_fail() {
    let cases: [(&[u8], bool); 15] = [
        (b"", false),
        (b"n,,", false),
        (b"n,,r=abc", false),
        (b"n,,n=user", false),
        (b"n,,n=user,r=", false),
        (b"n,,n=,r=abc", false),
        (b"n,,n=us=er,r=abc", false),
        (b"n,,n=user,r=a\x7fb", false),
        (b"n,,n=user,r=abc,1", false),
        (b"n,,n=\xff,r=abc", false),
        (b"x,,n=user,r=abc", false),
        (b"n,b=x,n=user,r=abc", false),
        (b"n,,m=ext,n=user,r=abc", true),
        (b"n,,r=abc,n=user", false),
        (b"n,,n=user,r=a b", false),
    ];
    for (message, unsupported) in cases {
        let mut exchange = Exchange::start(Mechanism::ScramSha256, context());
        let reason = failure(exchange.begin(Some(message)));
        let expected = if unsupported {
            matches!(reason, FailureReason::Unsupported(_))
        } else {
            matches!(reason, FailureReason::Malformed(_))
        };
        assert!(expected, "{:?}: {reason:?}", String::from_utf8_lossy(message));
    }
    // Extensions the server does not know are ignored (RFC 5802 §5.1).
    let mut exchange = Exchange::start(Mechanism::ScramSha256, context());
    let step = exchange.begin(Some(b"n,,n=user,r=abc,x=ext"));
    assert!(matches!(step, Step::ScramCredentials { .. }), "{step:?}");
}

#[test]
fn malformed_client_final_messages_fail() {
    let (users, _) = users();
    let mut host = Host::new(Logins::new(&users));
    let server_nonce = context().server_nonce;
    let nonce = format!("abc{server_nonce}");
    let cases = [
        String::new(),
        format!("c=biws,r={nonce}"),
        format!("r={nonce},c=biws,p=AAAA"),
        format!("c=!!,r={nonce},p=AAAA"),
        format!("c=biws,r={nonce},p=!!"),
        "c=biws,p=AAAA".to_owned(),
        format!("c=biws,r={nonce},1,p=AAAA"),
        "c=biws,r=abc\u{0},p=AAAA".to_owned(),
    ];
    for message in cases {
        let mut exchange = Exchange::start(Mechanism::ScramSha256, context());
        let request = exchange.begin(Some(b"n,,n=alice,r=abc"));
        let _ = challenge(exchange.answer(host.answer(&request).unwrap()));
        let reason = failure(exchange.respond(message.as_bytes()));
        assert!(
            matches!(reason, FailureReason::Malformed(_) | FailureReason::NonceMismatch),
            "{message:?}: {reason:?}"
        );
    }
    // A proof of the wrong length is a bad proof, not a crash.
    let mut exchange = Exchange::start(Mechanism::ScramSha256, context());
    let request = exchange.begin(Some(b"n,,n=alice,r=abc"));
    let _ = challenge(exchange.answer(host.answer(&request).unwrap()));
    let short = format!("c=biws,r={nonce},p=AAAA");
    assert_eq!(failure(exchange.respond(short.as_bytes())), FailureReason::BadProof);
}

#[test]
fn oversize_messages_and_an_unavailable_host_fail() {
    let big = vec![b'a'; CLIENT_MESSAGE_BYTES_MAX + 1];
    let mut exchange = Exchange::start(Mechanism::ScramSha256, context());
    assert_eq!(failure(exchange.begin(Some(&big))), FailureReason::Oversize);
    let mut exchange = Exchange::start(Mechanism::ScramSha256, context());
    let _ = challenge(exchange.begin(None));
    assert_eq!(failure(exchange.respond(&big)), FailureReason::Oversize);
    let mut exchange = Exchange::start(Mechanism::ScramSha256, context());
    let _ = exchange.begin(Some(b"n,,n=alice,r=abc"));
    assert_eq!(failure(exchange.answer(HostAnswer::Unavailable)), FailureReason::Unavailable);
}

#[test]
fn cancelling_ends_the_exchange() {
    let mut exchange = Exchange::start(Mechanism::ScramSha256, context());
    let _ = challenge(exchange.begin(None));
    assert_eq!(exchange.cancel().reason, FailureReason::Cancelled);
    assert!(exchange.is_finished());
}

#[test]
fn unknown_users_pretend_to_have_the_iteration_count_the_host_names() {
    let (users, _) = users();
    let mut host = Host::new(Logins::new(&users));
    let mut context = context();
    context.scram_fake_iterations = std::num::NonZeroU32::new(10_000).unwrap();
    let mut exchange = Exchange::start(Mechanism::ScramSha256, context);
    let request = exchange.begin(Some(b"n,,n=nobody,r=abc"));
    let server_first = challenge(exchange.answer(host.answer(&request).unwrap()));
    assert!(server_first.ends_with(b",i=10000"), "{}", String::from_utf8_lossy(&server_first));
}
