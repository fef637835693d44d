//! Property tests of the SASL exchange: for every mechanism, arbitrary client bytes (random,
//! and valid messages with mutations) and any well-typed host answers never panic, end within
//! a bounded number of steps, and end only in a failure or a success the host or the SCRAM
//! proof allowed.

mod sasl_support;

use proptest::prelude::*;
use sasl_support::context;
use skua_core::users::Secret;
use skua_core::users::scram::ScramKeys;
use skua_protocols::sasl::{Exchange, HostAnswer, Mechanism, Step};

/// Valid first messages, mutated by the strategy below.
fn seeds(mechanism: Mechanism) -> Vec<&'static [u8]> {
    match mechanism {
        Mechanism::Plain => vec![b"\0alice\0pw", b"bob\0alice\0pw"],
        Mechanism::Login => vec![b"alice", b"pw"],
        Mechanism::External => vec![b"", b"alice"],
        Mechanism::OAuthBearer => vec![b"n,a=alice,\x01auth=Bearer abc\x01\x01", b"\x01"],
        Mechanism::XOAuth2 => vec![b"user=alice\x01auth=Bearer abc\x01\x01"],
        _ => vec![
            b"n,,n=alice,r=abc",
            b"p=tls-exporter,a=x,n=alice,r=abc",
            b"c=biws,r=abcAAAA,p=AAAA",
            b"c=cD10bHMtZXhwb3J0ZXIsLA==,r=abc,p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ],
    }
}

/// A client message: random bytes, or a seed with a byte changed, cut, or something inserted.
fn message(mechanism: Mechanism) -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds(mechanism);
    let mutated = (0..seeds.len(), any::<usize>(), any::<u8>(), 0..3u8).prop_map(
        move |(which, at, byte, how)| {
            let mut message = seeds[which].to_vec();
            let at = if message.is_empty() { 0 } else { at % message.len() };
            match how {
                0 if !message.is_empty() => message[at] = byte,
                1 => message.truncate(at),
                _ => message.insert(at, byte),
            }
            message
        },
    );
    prop_oneof![proptest::collection::vec(any::<u8>(), 0..200), mutated]
}

/// A host answer, chosen to fit the request it answers.
#[derive(Clone, Debug)]
enum Choice {
    Yes,
    No,
    Unavailable,
    Keys,
    NoKeys,
}

fn choice() -> impl Strategy<Value = Choice> {
    prop_oneof![
        Just(Choice::Yes),
        Just(Choice::No),
        Just(Choice::Unavailable),
        Just(Choice::Keys),
        Just(Choice::NoKeys),
    ]
}

fn answer(request: &Step, choice: &Choice) -> HostAnswer {
    match (request, choice) {
        (Step::ScramCredentials { algorithm, .. }, Choice::Keys | Choice::Yes) => {
            let keys = ScramKeys::derive(*algorithm, b"pw", b"salt", 1).unwrap();
            HostAnswer::ScramKeys(Some((keys, "alice".into())))
        }
        (Step::ScramCredentials { .. }, Choice::NoKeys | Choice::No) => HostAnswer::ScramKeys(None),
        (_, Choice::Unavailable) => HostAnswer::Unavailable,
        (_, Choice::Yes | Choice::Keys) => HostAnswer::Accepted { user: "alice".into() },
        (_, Choice::No | Choice::NoKeys) => HostAnswer::Refused("no".into()),
    }
}

/// Drives one exchange; checks the properties of the module docs.
fn drive(mechanism: Mechanism, initial: Option<Vec<u8>>, messages: &[Vec<u8>], choices: &[Choice]) {
    let exporter = Secret::new(b"exporter exporter exporter 32 b.".to_vec());
    let mut exchange = Exchange::start(mechanism, context().with_tls_exporter(exporter));
    let mut messages = messages.iter();
    let mut choices = choices.iter().cycle();
    let mut last_accepted = false;
    let mut step = exchange.begin(initial.as_deref());
    for _ in 0..32 {
        assert_eq!(
            exchange.is_finished(),
            matches!(step, Step::Success(_) | Step::Failure(_)),
            "finished exactly after success or failure: {step:?}"
        );
        step = match step {
            Step::Challenge(data) => {
                assert!(data.len() <= 1024, "challenges stay small");
                match messages.next() {
                    Some(message) => exchange.respond(message),
                    None => {
                        let _ = exchange.cancel();
                        assert!(exchange.is_finished());
                        return;
                    }
                }
            }
            Step::Success(success) => {
                assert!(mechanism.scram().is_none(), "no SCRAM proof is guessed: {success:?}");
                assert!(last_accepted, "success only after the host accepted");
                return;
            }
            Step::Failure(_) => return,
            request => {
                let answer = answer(&request, choices.next().expect("cycle"));
                last_accepted = matches!(answer, HostAnswer::Accepted { .. });
                exchange.answer(answer)
            }
        };
    }
    panic!("{mechanism}: no end after 32 steps");
}

fn mechanism() -> impl Strategy<Value = Mechanism> {
    proptest::sample::select(Mechanism::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_client_bytes_never_panic_and_always_end(
        (mechanism, initial, messages) in mechanism().prop_flat_map(|m| (
            Just(m),
            proptest::option::of(message(m)),
            proptest::collection::vec(message(m), 0..5),
        )),
        choices in proptest::collection::vec(choice(), 1..4),
    ) {
        drive(mechanism, initial, &messages, &choices);
    }
}
