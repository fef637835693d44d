//! Shared by the SASL tests: a SCRAM client written from RFC 5802's formulas (on `ring`
//! directly, not on skua's SCRAM code), and a host that answers an exchange's requests the
//! way the shard does, from a users file, a master file and a token verifier.
#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::{digest, hmac, pbkdf2};
use skua_core::users::Secret;
use skua_core::users::jwt::TokenVerifier;
use skua_core::users::master::{LoginRefusal, Logins};
use skua_protocols::sasl::{Context, HostAnswer, Step};

/// A fixed fake secret and nonce, so exchanges replay exactly.
pub fn context() -> Context {
    Context::new([7; 18], Secret::new(b"test fake secret".to_vec()))
}

/// The hash a test client uses.
#[derive(Clone, Copy, Debug)]
pub enum Hash {
    Sha1,
    Sha256,
}

impl Hash {
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        let algorithm = match self {
            Hash::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Hash::Sha256 => hmac::HMAC_SHA256,
        };
        hmac::sign(&hmac::Key::new(algorithm, key), data).as_ref().to_vec()
    }

    fn h(self, data: &[u8]) -> Vec<u8> {
        let algorithm = match self {
            Hash::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Hash::Sha256 => &digest::SHA256,
        };
        digest::digest(algorithm, data).as_ref().to_vec()
    }

    fn hi(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let (algorithm, length) = match self {
            Hash::Sha1 => (pbkdf2::PBKDF2_HMAC_SHA1, 20),
            Hash::Sha256 => (pbkdf2::PBKDF2_HMAC_SHA256, 32),
        };
        let mut out = vec![0; length];
        let iterations = std::num::NonZeroU32::new(iterations).expect("iterations > 0");
        pbkdf2::derive(algorithm, iterations, salt, password, &mut out);
        out
    }
}

/// The GS2 channel-binding flag the client sends, and the data it binds to.
#[derive(Clone, Debug)]
pub enum Binding {
    /// `n`.
    None,
    /// `y`.
    ClientOnly,
    /// `p=name` with this data after the header in `c=`.
    Bound(&'static str, Vec<u8>),
}

/// A SCRAM client (RFC 5802 §3 formulas).
pub struct ScramClient {
    pub hash: Hash,
    pub user: String,
    pub password: String,
    pub authzid: Option<String>,
    pub binding: Binding,
    pub nonce: String,
    gs2_header: String,
    first_bare: String,
    auth_message: String,
    salted: Vec<u8>,
}

impl ScramClient {
    pub fn new(hash: Hash, user: &str, password: &str, binding: Binding) -> ScramClient {
        ScramClient {
            hash,
            user: user.into(),
            password: password.into(),
            authzid: None,
            binding,
            nonce: "fyko+d2lbbFgONRv9qkxdawL".into(),
            gs2_header: String::new(),
            first_bare: String::new(),
            auth_message: String::new(),
            salted: Vec::new(),
        }
    }

    fn escape(name: &str) -> String {
        name.replace('=', "=3D").replace(',', "=2C")
    }

    /// client-first-message.
    pub fn first(&mut self) -> Vec<u8> {
        let flag = match &self.binding {
            Binding::None => "n".to_owned(),
            Binding::ClientOnly => "y".to_owned(),
            Binding::Bound(name, _) => format!("p={name}"),
        };
        let authzid = self.authzid.as_deref().map(|a| format!("a={}", Self::escape(a)));
        self.gs2_header = format!("{flag},{},", authzid.unwrap_or_default());
        self.first_bare = format!("n={},r={}", Self::escape(&self.user), self.nonce);
        format!("{}{}", self.gs2_header, self.first_bare).into_bytes()
    }

    /// client-final-message for `server_first`, with the nonce the server sent.
    pub fn final_message(&mut self, server_first: &[u8]) -> Vec<u8> {
        let server_first = std::str::from_utf8(server_first).expect("server-first is UTF-8");
        let mut nonce = "";
        let mut salt = Vec::new();
        let mut iterations = 0;
        for attribute in server_first.split(',') {
            match attribute.split_at(2) {
                ("r=", value) => nonce = value,
                ("s=", value) => salt = STANDARD.decode(value).expect("salt base64"),
                ("i=", value) => iterations = value.parse().expect("iterations"),
                _ => panic!("unexpected attribute {attribute}"),
            }
        }
        assert!(nonce.starts_with(&self.nonce), "server nonce extends the client's");
        self.final_with(server_first, nonce, &salt, iterations)
    }

    /// client-final-message with an explicit nonce (to test a mismatch).
    pub fn final_with(&mut self, server_first: &str, nonce: &str, salt: &[u8], i: u32) -> Vec<u8> {
        let mut cbind_input = self.gs2_header.clone().into_bytes();
        if let Binding::Bound(_, data) = &self.binding {
            cbind_input.extend_from_slice(data);
        }
        let without_proof = format!("c={},r={nonce}", STANDARD.encode(&cbind_input));
        self.auth_message = format!("{},{server_first},{without_proof}", self.first_bare);
        self.salted = self.hash.hi(self.password.as_bytes(), salt, i);
        let client_key = self.hash.hmac(&self.salted, b"Client Key");
        let stored_key = self.hash.h(&client_key);
        let signature = self.hash.hmac(&stored_key, self.auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(k, s)| k ^ s).collect();
        format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes()
    }

    /// True when `server_final` is `v=` with the right ServerSignature.
    pub fn server_final_ok(&self, server_final: &[u8]) -> bool {
        let server_key = self.hash.hmac(&self.salted, b"Server Key");
        let signature = self.hash.hmac(&server_key, self.auth_message.as_bytes());
        server_final == format!("v={}", STANDARD.encode(signature)).as_bytes()
    }
}

/// Answers requests as the shard would, counting what it was asked.
pub struct Host<'a> {
    pub logins: Logins<'a>,
    pub tokens: Option<&'a TokenVerifier>,
    pub now_unix_seconds: u64,
    /// The user the TLS client certificate maps to, for EXTERNAL.
    pub certificate_user: Option<&'a str>,
    pub requests: usize,
}

impl<'a> Host<'a> {
    pub fn new(logins: Logins<'a>) -> Host<'a> {
        Host { logins, tokens: None, now_unix_seconds: 0, certificate_user: None, requests: 0 }
    }

    /// The answer to a request step; `None` for steps that are not requests.
    pub fn answer(&mut self, step: &Step) -> Option<HostAnswer> {
        let verdict = |result: Result<String, String>| match result {
            Ok(user) => HostAnswer::Accepted { user },
            Err(reason) => HostAnswer::Refused(reason),
        };
        // A proved identity (token, certificate) asking to act as someone it may not.
        let authorized = |result: Result<String, LoginRefusal>| match result {
            Ok(user) => HostAnswer::Accepted { user },
            Err(refusal @ LoginRefusal::NotAuthorized) => {
                HostAnswer::NotAuthorized(refusal.to_string())
            }
            Err(refusal) => HostAnswer::Refused(refusal.to_string()),
        };
        let answer = match step {
            Step::VerifyPassword { authcid, authzid, password } => verdict(
                self.logins
                    .check_password(authcid, authzid.as_deref(), password)
                    .map(|identity| identity.user)
                    .map_err(|refusal| refusal.to_string()),
            ),
            Step::ScramCredentials { authcid, authzid, algorithm } => HostAnswer::ScramKeys(
                self.logins
                    .scram_credentials(authcid, authzid.as_deref(), *algorithm)
                    .map(|(keys, identity)| (keys, identity.user)),
            ),
            Step::VerifyToken { token, authzid } => {
                let verifier = self.tokens.expect("a token verifier");
                match verifier.verify(token.expose(), self.now_unix_seconds) {
                    Err(rejection) => HostAnswer::Refused(rejection.to_string()),
                    Ok(claim) => authorized(
                        self.logins
                            .authorize(&claim, authzid.as_deref())
                            .map(|identity| identity.user),
                    ),
                }
            }
            Step::External { authzid } => match self.certificate_user {
                None => HostAnswer::Refused("no client certificate".to_owned()),
                Some(user) => authorized(
                    self.logins.authorize(user, authzid.as_deref()).map(|identity| identity.user),
                ),
            },
            Step::Challenge(_) | Step::Success(_) | Step::Failure(_) => return None,
        };
        self.requests += 1;
        Some(answer)
    }
}
