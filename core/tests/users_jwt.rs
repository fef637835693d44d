//! Bearer-token checks (`skua_core::users::jwt`) against tokens signed here, with keys made
//! here (Ed25519, ECDSA P-256) or read from a test-only fixture (RSA 2048, which `ring` cannot
//! generate): every accepted form, and each way a token must be refused.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};
use skua_core::users::jwt::{JwksError, TokenPolicy, TokenRejection, TokenVerifier};
use skua_core::users::limits::TOKEN_BYTES_MAX;

const NOW: u64 = 1_800_000_000;
const ISSUER: &str = "https://id.example.com";
const AUDIENCE: &str = "skua-imap";

/// The provider's signing keys, with the JWKS publishing their public halves.
struct Provider {
    rsa: RsaKeyPair,
    ec: EcdsaKeyPair,
    ed: Ed25519KeyPair,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Provider {
    fn new() -> Provider {
        let random = SystemRandom::new();
        let rsa_der = include_bytes!("jwt/test-only-rsa-2048.der");
        let rsa = RsaKeyPair::from_der(rsa_der).unwrap();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let ec_pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &random).unwrap();
        let ec = EcdsaKeyPair::from_pkcs8(alg, ec_pkcs8.as_ref(), &random).unwrap();
        let ed_pkcs8 = Ed25519KeyPair::generate_pkcs8(&random).unwrap();
        let ed = Ed25519KeyPair::from_pkcs8(ed_pkcs8.as_ref()).unwrap();
        Provider { rsa, ec, ed }
    }

    fn jwks(&self) -> Value {
        let rsa: signature::RsaPublicKeyComponents<Vec<u8>> = self.rsa.public().into();
        let point = self.ec.public_key().as_ref();
        json!({"keys": [
            {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256",
             "n": b64(&rsa.n), "e": b64(&rsa.e)},
            {"kty": "EC", "kid": "ec-1", "crv": "P-256",
             "x": b64(&point[1..33]), "y": b64(&point[33..65])},
            {"kty": "OKP", "kid": "ed-1", "crv": "Ed25519", "x": b64(self.ed.public_key().as_ref())},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AA", "y": "AA"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
        ]})
    }

    /// A token with this header and these claims, signed by the key `alg` names.
    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let random = SystemRandom::new();
        let signature = match header["alg"].as_str().unwrap() {
            "RS256" => {
                let mut out = vec![0; self.rsa.public().modulus_len()];
                self.rsa
                    .sign(&signature::RSA_PKCS1_SHA256, &random, input.as_bytes(), &mut out)
                    .unwrap();
                out
            }
            "ES256" => self.ec.sign(&random, input.as_bytes()).unwrap().as_ref().to_vec(),
            "EdDSA" => self.ed.sign(input.as_bytes()).as_ref().to_vec(),
            other => panic!("no key for {other}"),
        };
        format!("{input}.{}", b64(&signature))
    }
}

fn claims() -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "email": "alice@example.com",
           "exp": NOW + 300, "nbf": NOW - 10, "iat": NOW - 10})
}

fn verifier(provider: &Provider) -> TokenVerifier {
    let policy = TokenPolicy::new("jwks.json".into(), ISSUER.into(), AUDIENCE.into());
    TokenVerifier::from_jwks(policy, provider.jwks().to_string().as_bytes()).unwrap()
}

#[test]
fn every_algorithm_is_accepted_with_and_without_kid() {
    let provider = Provider::new();
    let verifier = verifier(&provider);
    for (alg, kid) in [("RS256", "rsa-1"), ("ES256", "ec-1"), ("EdDSA", "ed-1")] {
        let with_kid = provider.sign(&json!({"alg": alg, "kid": kid, "typ": "JWT"}), &claims());
        assert_eq!(verifier.verify(&with_kid, NOW), Ok("alice".to_owned()), "{alg}");
        let without_kid = provider.sign(&json!({"alg": alg}), &claims());
        assert_eq!(verifier.verify(&without_kid, NOW), Ok("alice".to_owned()), "{alg}");
    }
}

#[test]
fn the_user_claim_and_audience_list_are_honoured() {
    let provider = Provider::new();
    let mut policy = TokenPolicy::new("jwks.json".into(), ISSUER.into(), AUDIENCE.into());
    policy.user_claim = "email".into();
    let verifier =
        TokenVerifier::from_jwks(policy, provider.jwks().to_string().as_bytes()).unwrap();
    let mut claims = claims();
    claims["aud"] = json!(["other", AUDIENCE]);
    let token = provider.sign(&json!({"alg": "EdDSA"}), &claims);
    assert_eq!(verifier.verify(&token, NOW), Ok("alice@example.com".to_owned()));
    claims.as_object_mut().unwrap().remove("email");
    let token = provider.sign(&json!({"alg": "EdDSA"}), &claims);
    assert_eq!(verifier.verify(&token, NOW), Err(TokenRejection::NoUser));
}

#[test]
fn claims_are_checked() {
    let provider = Provider::new();
    let verifier = verifier(&provider);
    let header = json!({"alg": "ES256", "kid": "ec-1"});
    let with = |field: &str, value: Value| {
        let mut claims = claims();
        claims[field] = value;
        provider.sign(&header, &claims)
    };
    let cases = [
        (with("iss", json!("https://evil.example.com")), TokenRejection::WrongIssuer),
        (with("aud", json!("someone-else")), TokenRejection::WrongAudience),
        (with("aud", json!(["a", "b"])), TokenRejection::WrongAudience),
        (with("exp", json!(NOW - 61)), TokenRejection::Expired),
        (with("exp", json!("tomorrow")), TokenRejection::Expired),
        (with("nbf", json!(NOW + 61)), TokenRejection::NotYetValid),
        (with("sub", json!("")), TokenRejection::NoUser),
        (with("sub", json!(42)), TokenRejection::NoUser),
    ];
    for (token, rejection) in cases {
        assert_eq!(verifier.verify(&token, NOW), Err(rejection));
    }
    // Within the skew: accepted.
    assert!(verifier.verify(&with("exp", json!(NOW - 59)), NOW).is_ok());
    assert!(verifier.verify(&with("nbf", json!(NOW + 59)), NOW).is_ok());
    // No expiry at all: a token that would live forever is refused.
    let mut forever = claims();
    forever.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        verifier.verify(&provider.sign(&header, &forever), NOW),
        Err(TokenRejection::Expired)
    );
}

#[test]
fn signatures_and_algorithms_are_checked() {
    let provider = Provider::new();
    let verifier = verifier(&provider);
    let good = provider.sign(&json!({"alg": "EdDSA"}), &claims());
    // Another user's claims under the good signature.
    let (header, rest) = good.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let mut forged = claims();
    forged["sub"] = json!("root");
    let forged = format!("{header}.{}.{signature}", b64(forged.to_string().as_bytes()));
    assert_eq!(verifier.verify(&forged, NOW), Err(TokenRejection::BadSignature));
    // A signature by one key presented under another key's kid.
    let mislabelled = provider.sign(&json!({"alg": "ES256", "kid": "ec-1"}), &claims());
    let relabelled = mislabelled.replacen(
        &b64(json!({"alg": "ES256", "kid": "ec-1"}).to_string().as_bytes()),
        &b64(json!({"alg": "EdDSA", "kid": "ed-1"}).to_string().as_bytes()),
        1,
    );
    assert_eq!(verifier.verify(&relabelled, NOW), Err(TokenRejection::BadSignature));
    // Unknown kid, unsupported algorithms, critical extensions.
    let unknown = provider.sign(&json!({"alg": "EdDSA", "kid": "nope"}), &claims());
    assert_eq!(verifier.verify(&unknown, NOW), Err(TokenRejection::UnknownKey));
    for header in [json!({"alg": "none"}), json!({"alg": "HS256"}), json!({})] {
        let token = format!(
            "{}.{}.",
            b64(header.to_string().as_bytes()),
            b64(claims().to_string().as_bytes())
        );
        assert_eq!(verifier.verify(&token, NOW), Err(TokenRejection::UnsupportedAlgorithm));
    }
    let critical = provider.sign(&json!({"alg": "EdDSA", "crit": ["exp"]}), &claims());
    assert_eq!(verifier.verify(&critical, NOW), Err(TokenRejection::UnsupportedAlgorithm));
}

#[test]
fn malformed_and_oversize_tokens_are_refused() {
    let provider = Provider::new();
    let verifier = verifier(&provider);
    for token in ["", "a", "a.b", "a.b.c.d", "!!.e30.", "e30.e30.!!", "W10.e30."] {
        let rejection = verifier.verify(token, NOW).unwrap_err();
        assert!(
            matches!(rejection, TokenRejection::Malformed | TokenRejection::UnsupportedAlgorithm),
            "{token:?}: {rejection:?}"
        );
    }
    let mut big = claims();
    big["padding"] = json!("x".repeat(TOKEN_BYTES_MAX));
    let token = provider.sign(&json!({"alg": "EdDSA"}), &big);
    assert_eq!(verifier.verify(&token, NOW), Err(TokenRejection::Oversize));
    // A payload that is not JSON, under a good signature.
    let header = b64(json!({"alg": "EdDSA"}).to_string().as_bytes());
    let input = format!("{header}.{}", b64(b"not json"));
    let signature = provider.ed.sign(input.as_bytes());
    let token = format!("{input}.{}", b64(signature.as_ref()));
    assert_eq!(verifier.verify(&token, NOW), Err(TokenRejection::Malformed));
}

#[test]
fn jwks_files_load_or_fail_plainly() {
    let provider = Provider::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, provider.jwks().to_string()).unwrap();
    let policy = TokenPolicy::new(path.clone(), ISSUER.into(), AUDIENCE.into());
    let verifier = TokenVerifier::load(policy.clone()).unwrap();
    let token = provider.sign(&json!({"alg": "RS256"}), &claims());
    assert_eq!(verifier.verify(&token, NOW), Ok("alice".to_owned()));

    let load = |contents: &str| {
        std::fs::write(&path, contents).unwrap();
        TokenVerifier::load(policy.clone())
    };
    assert!(matches!(load("not json"), Err(JwksError::Malformed(_))));
    assert!(matches!(load("{}"), Err(JwksError::Malformed(_))));
    assert!(matches!(load(r#"{"keys":[]}"#), Err(JwksError::NoUsableKey)));
    let weak = r#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}"#;
    assert!(matches!(load(weak), Err(JwksError::NoUsableKey)));
    let mismatched = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"RS256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}"#;
    assert!(matches!(load(mismatched), Err(JwksError::NoUsableKey)));
    let missing = TokenPolicy::new(dir.path().join("none"), ISSUER.into(), AUDIENCE.into());
    assert!(matches!(TokenVerifier::load(missing), Err(JwksError::Io { .. })));
}
