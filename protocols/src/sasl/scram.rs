//! SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677), and their `-PLUS` variants bound to
//! the TLS connection with `tls-exporter` (RFC 9266).
//!
//! ```text
//! C: client-first  = gs2-header "n=" saslname ",r=" c-nonce ["," extensions]
//!    (host: ScramCredentials → keys, or None: fake keys, same messages)
//! S: server-first  = "r=" c-nonce s-nonce ",s=" base64(salt) ",i=" iterations
//! C: client-final  = "c=" base64(gs2-header [cbind-data]) ",r=" nonce ["," ext] ",p=" proof
//! S: server-final  = "v=" base64(ServerSignature)
//! ```
//!
//! Channel binding rules (RFC 5802 §6, RFC 9266):
//!
//! | mechanism | flag `n` | flag `y` | flag `p=tls-exporter` | other `p=` |
//! | --- | --- | --- | --- | --- |
//! | `-PLUS` | refused | refused | `c=` must be header + this connection's exporter | refused |
//! | plain SCRAM, `-PLUS` advertised | ok | refused (downgrade) | refused | refused |
//! | plain SCRAM, not advertised | ok | ok | refused | refused |
//!
//! The proof check and the server signature are HMACs on the stored keys
//! (`skua_core::users::scram`), cheap enough for the reactor. An unknown user gets the same
//! server-first message shape with fake keys (stable salt, default iterations) and fails at
//! the proof, so the exchange does not tell who exists.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use skua_core::users::Secret;
use skua_core::users::scram::{ScramAlgorithm, ScramKeys};

use super::gs2::{self, BindingFlag};
use super::limits::CLIENT_NONCE_BYTES_MAX;
use super::password::out_of_order;
use super::types::{Context, FailureReason, HostAnswer, Step, Success};

/// The only channel binding type skua binds to.
const TLS_EXPORTER: &str = "tls-exporter";

/// What the client's first message told us, kept for the final one.
#[derive(Debug)]
pub(super) struct First {
    /// The GS2 header as sent (`c=` must repeat it).
    gs2_header: Vec<u8>,
    /// The client-first-message-bare, part of AuthMessage.
    bare: String,
    client_nonce: String,
    authcid: String,
    authzid: Option<String>,
}

/// After the server-first message.
#[derive(Debug)]
pub(super) struct Sent {
    first: First,
    server_first: String,
    keys: ScramKeys,
    /// The user the keys log in as; `None` for fake keys, which never succeed.
    user: Option<String>,
}

/// A SCRAM exchange's state.
#[derive(Debug)]
pub(super) enum Scram {
    AwaitFirst { algorithm: ScramAlgorithm, plus: bool },
    AwaitKeys { algorithm: ScramAlgorithm, first: First },
    AwaitFinal(Box<Sent>),
    Finished,
}

impl Scram {
    pub(super) fn new(algorithm: ScramAlgorithm, plus: bool) -> Scram {
        Scram::AwaitFirst { algorithm, plus }
    }

    pub(super) fn begin(&mut self, initial: Option<&[u8]>, context: &Context) -> Step {
        match initial {
            None => Step::Challenge(Vec::new()),
            Some(message) => self.respond(message, context),
        }
    }

    pub(super) fn respond(&mut self, message: &[u8], context: &Context) -> Step {
        match std::mem::replace(self, Scram::Finished) {
            Scram::AwaitFirst { algorithm, plus } => match client_first(message, plus, context) {
                Ok(first) => {
                    let step = Step::ScramCredentials {
                        authcid: first.authcid.clone(),
                        authzid: first.authzid.clone(),
                        algorithm,
                    };
                    *self = Scram::AwaitKeys { algorithm, first };
                    step
                }
                Err(reason) => Step::fail(reason),
            },
            Scram::AwaitFinal(sent) => match client_final(message, &sent, context) {
                Ok(step) => step,
                Err(reason) => Step::fail(reason),
            },
            Scram::AwaitKeys { .. } | Scram::Finished => out_of_order(),
        }
    }

    pub(super) fn answer(&mut self, answer: HostAnswer, context: &Context) -> Step {
        let Scram::AwaitKeys { algorithm, first } = std::mem::replace(self, Scram::Finished) else {
            return out_of_order();
        };
        let (keys, user) = match answer {
            HostAnswer::ScramKeys(Some((keys, user))) if keys.algorithm() == algorithm => {
                (keys, Some(user))
            }
            HostAnswer::ScramKeys(Some(_)) => return out_of_order(),
            HostAnswer::ScramKeys(None) => {
                let secret = context.fake_secret.expose();
                let iterations = context.scram_fake_iterations;
                (ScramKeys::fake(algorithm, secret, &first.authcid, iterations), None)
            }
            HostAnswer::Unavailable => return Step::fail(FailureReason::Unavailable),
            HostAnswer::Accepted { .. } | HostAnswer::Refused(_) | HostAnswer::NotAuthorized(_) => {
                return out_of_order();
            }
        };
        if !valid_nonce(&context.server_nonce) {
            debug_assert!(false, "the host's server nonce is not SCRAM printable");
            return Step::fail(FailureReason::OutOfOrder);
        }
        let nonce = format!("{}{}", first.client_nonce, context.server_nonce);
        let server_first =
            format!("r={nonce},s={},i={}", STANDARD.encode(keys.salt()), keys.iterations());
        let challenge = server_first.clone().into_bytes();
        *self = Scram::AwaitFinal(Box::new(Sent { first, server_first, keys, user }));
        Step::Challenge(challenge)
    }
}

/// Parses and checks the client-first message.
fn client_first(message: &[u8], plus: bool, context: &Context) -> Result<First, FailureReason> {
    let header = gs2::parse_header(message).map_err(FailureReason::Malformed)?;
    check_binding_flag(&header.flag, plus, context)?;
    let bare = std::str::from_utf8(header.rest)
        .map_err(|_| FailureReason::Malformed("SCRAM client-first (not UTF-8)"))?;
    let mut attributes = bare.split(',');
    let username = match attributes.next() {
        Some(field) if field.starts_with("m=") => {
            return Err(FailureReason::Unsupported("SCRAM mandatory extension"));
        }
        Some(field) => field.strip_prefix("n=").ok_or(FailureReason::Malformed("SCRAM n="))?,
        None => return Err(FailureReason::Malformed("SCRAM client-first")),
    };
    let authcid = gs2::decode_saslname(username.as_bytes()).map_err(FailureReason::Malformed)?;
    let client_nonce = attributes
        .next()
        .and_then(|field| field.strip_prefix("r="))
        .ok_or(FailureReason::Malformed("SCRAM r="))?;
    if !valid_nonce(client_nonce) {
        return Err(FailureReason::Malformed("SCRAM client nonce"));
    }
    if !attributes.all(valid_extension) {
        return Err(FailureReason::Malformed("SCRAM extension"));
    }
    Ok(First {
        gs2_header: header.raw.to_vec(),
        bare: bare.to_owned(),
        client_nonce: client_nonce.to_owned(),
        authcid,
        authzid: header.authzid,
    })
}

/// The channel-binding table of the module docs.
fn check_binding_flag(
    flag: &BindingFlag,
    plus: bool,
    context: &Context,
) -> Result<(), FailureReason> {
    match (flag, plus) {
        (BindingFlag::Bound(name), true) if name == TLS_EXPORTER => {
            if context.tls_exporter.is_none() {
                return Err(FailureReason::ChannelBinding("no TLS exporter on this connection"));
            }
            Ok(())
        }
        (BindingFlag::Bound(_), true) => {
            Err(FailureReason::Unsupported("channel binding type other than tls-exporter"))
        }
        (BindingFlag::No | BindingFlag::ClientOnly, true) => {
            Err(FailureReason::ChannelBinding("-PLUS mechanism without channel binding"))
        }
        (BindingFlag::Bound(_), false) => {
            Err(FailureReason::ChannelBinding("binding requested on a non-PLUS mechanism"))
        }
        (BindingFlag::ClientOnly, false) if context.plus_advertised => {
            Err(FailureReason::Downgrade)
        }
        (BindingFlag::No | BindingFlag::ClientOnly, false) => Ok(()),
    }
}

/// `printable = %x21-2B / %x2D-7E` (any printable ASCII but `,`), bounded.
fn valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce.len() <= CLIENT_NONCE_BYTES_MAX
        && nonce.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// `attr-val = ALPHA "=" value`: extensions skua ignores.
fn valid_extension(field: &str) -> bool {
    let bytes = field.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b'='
}

/// Parses and checks the client-final message; the success step when the proof is right.
fn client_final(message: &[u8], sent: &Sent, context: &Context) -> Result<Step, FailureReason> {
    let text = std::str::from_utf8(message)
        .map_err(|_| FailureReason::Malformed("SCRAM client-final (not UTF-8)"))?;
    let (without_proof, proof) =
        text.rsplit_once(",p=").ok_or(FailureReason::Malformed("SCRAM client-final p="))?;
    let mut attributes = without_proof.split(',');
    let binding = attributes
        .next()
        .and_then(|field| field.strip_prefix("c="))
        .ok_or(FailureReason::Malformed("SCRAM c="))?;
    let nonce = attributes
        .next()
        .and_then(|field| field.strip_prefix("r="))
        .ok_or(FailureReason::Malformed("SCRAM client-final r="))?;
    if !attributes.all(valid_extension) {
        return Err(FailureReason::Malformed("SCRAM extension"));
    }
    let binding =
        STANDARD.decode(binding).map_err(|_| FailureReason::Malformed("SCRAM c= base64"))?;
    let proof = STANDARD.decode(proof).map_err(|_| FailureReason::Malformed("SCRAM p= base64"))?;
    let expected_nonce = format!("{}{}", sent.first.client_nonce, context.server_nonce);
    if nonce != expected_nonce {
        return Err(FailureReason::NonceMismatch);
    }
    if !binding_matches(&binding, &sent.first.gs2_header, context) {
        return Err(FailureReason::ChannelBinding("c= does not match this connection"));
    }
    let auth_message = format!("{},{},{}", sent.first.bare, sent.server_first, without_proof);
    let proof_right = sent.keys.verify_proof(auth_message.as_bytes(), &proof);
    let user = match (&sent.user, proof_right) {
        (Some(user), true) => user.clone(),
        _ => return Err(FailureReason::BadProof),
    };
    let signature = sent.keys.server_signature(auth_message.as_bytes());
    let final_data = format!("v={}", STANDARD.encode(signature)).into_bytes();
    Ok(Step::Success(Success {
        user,
        authcid: sent.first.authcid.clone(),
        authzid: sent.first.authzid.clone(),
        final_data: Some(final_data),
    }))
}

/// `c=` must be the GS2 header, followed by the `tls-exporter` value when the header says
/// `p=` (which [`check_binding_flag`] allowed only for `-PLUS` with an exporter).
fn binding_matches(binding: &[u8], gs2_header: &[u8], context: &Context) -> bool {
    let Some(data) = binding.strip_prefix(gs2_header) else {
        return false;
    };
    if gs2_header.starts_with(b"p=") {
        let exporter = context.tls_exporter.as_ref().map(Secret::expose);
        exporter.is_some_and(|exporter| !exporter.is_empty() && data == exporter.as_slice())
    } else {
        data.is_empty()
    }
}
