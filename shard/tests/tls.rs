//! skua's TLS configuration (issue 8, item 2), end to end through rustls but without sockets:
//! a CA made here with rcgen, certificate files on a temporary directory, [`TlsConfigs`]
//! loaded from them, and a rustls client talking to a `ServerConnection` built from
//! `TlsConfigs::imap()` / `lmtp()` over an in-memory pipe, as the transport will at accept.
//!
//! Invariants: SNI picks the certificate whose DNS names match (exact, then one-label
//! wildcard), else the default; IMAP offers ALPN `imap` and LMTP none; TLS 1.2 and 1.3 both
//! work and both resume from a ticket (not across protocols, not across a reload); a reload is seen by the next
//! handshake while an open session keeps working; a failed reload keeps the old certificate;
//! a verified client certificate maps to a user by the configured field; the self-signed
//! certificate is made once and reused (same fingerprint); every bad file is named in the error.

mod tls_support;

use std::sync::{Arc, Mutex};

use rustls::{HandshakeKind, ProtocolVersion};
use skua_shard::tls::{
    CertificatePaths, ClientCertError, ClientCertField, Fingerprint, TlsConfigs, TlsError,
    TlsSettings, client_cert, selfsigned,
};
use tls_support::{Pair, TestCa, Versions, client, connect, load, recording_client, write};

/// Three certificates from one CA: the default (`mail.example.org`, `localhost`, 127.0.0.1),
/// one for `imap.example.net`, one for `*.example.com`.
struct Site {
    dir: tempfile::TempDir,
    ca: TestCa,
    default: rustls::pki_types::CertificateDer<'static>,
    net: rustls::pki_types::CertificateDer<'static>,
    wildcard: rustls::pki_types::CertificateDer<'static>,
    settings: TlsSettings,
}

fn site() -> Site {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("skua test CA");
    let chain = ca.pem();
    let default = ca.server(&["mail.example.org", "localhost", "127.0.0.1"]);
    let net = ca.server(&["imap.example.net"]);
    let wildcard = ca.server(&["*.example.com"]);
    let mut settings = TlsSettings::new(default.write(dir.path(), "default", &chain));
    settings.certificates.push(net.write(dir.path(), "net", &chain));
    settings.certificates.push(wildcard.write(dir.path(), "wildcard", &chain));
    Site { dir, ca, default: default.der, net: net.der, wildcard: wildcard.der, settings }
}

#[test]
fn sni_picks_the_certificate_by_name_and_falls_back_to_the_default() {
    let site = site();
    let configs = load(site.settings.clone());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recording = recording_client(&site.ca.pem(), seen.clone());
    let cases = [
        ("mail.example.org", &site.default),
        ("imap.example.net", &site.net),
        ("IMAP.Example.NET", &site.net),
        ("x.example.com", &site.wildcard),
        // A wildcard covers one label only.
        ("a.b.example.com", &site.default),
        ("example.com", &site.default),
        ("unknown.example", &site.default),
        // An IP address sends no SNI.
        ("127.0.0.1", &site.default),
    ];
    for (name, expected) in cases {
        let pair = connect(&recording, configs.imap(), name);
        assert_eq!(&pair.server_certificate(), expected, "certificate for {name}");
        let pair = connect(&recording, configs.lmtp(), name);
        assert_eq!(&pair.server_certificate(), expected, "LMTP certificate for {name}");
    }
    assert_eq!(seen.lock().expect("seen").len(), cases.len() * 2);
    // A client that checks names accepts each certificate for its own names.
    let strict = client(&site.ca.pem(), Versions::Both, &[]);
    for name in ["mail.example.org", "localhost", "127.0.0.1", "imap.example.net", "a.example.com"]
    {
        connect(&strict, configs.imap(), name).exchange("a1 NOOP\r\n");
    }
}

#[test]
fn each_load_describes_its_certificates_for_the_log() {
    let site = site();
    let configs = load(site.settings.clone());
    let set = configs.current();
    let summaries = &set.certificates;
    assert_eq!(summaries.len(), 3);
    let expected = [
        (&site.settings.default_certificate, &site.default, &["mail.example.org", "localhost"][..]),
        (&site.settings.certificates[0], &site.net, &["imap.example.net"][..]),
        (&site.settings.certificates[1], &site.wildcard, &["*.example.com"][..]),
    ];
    for (summary, (paths, der, names)) in summaries.iter().zip(expected) {
        assert_eq!(summary.path, paths.cert);
        assert_eq!(summary.fingerprint, Fingerprint::of(der));
        assert_eq!(summary.names, names);
    }

    // A certificate whose validity ends soon is reported as expiring.
    let mut params = rcgen::CertificateParams::new(vec!["old.example.org".to_owned()]).expect("p");
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let key = rcgen::KeyPair::generate().expect("key");
    let old = params.signed_by(&key, &site.ca.certificate, &site.ca.key).expect("signed");
    let cert = write(site.dir.path(), "old.crt", &old.pem());
    let key = write(site.dir.path(), "old.key", &key.serialize_pem());
    let configs = load(TlsSettings::new(CertificatePaths { cert, key }));
    let summary = &configs.current().certificates[0];
    let end_of_2020 = 1_609_459_200;
    assert_eq!(summary.not_after_unix, end_of_2020);
    assert!(summary.expires_within(end_of_2020 - 10, 10));
    assert!(!summary.expires_within(end_of_2020 - 11, 10));
    assert!(!site_expires_within(&site, end_of_2020));
}

/// True if any certificate of the site's (valid until 4096) expires within a day of `now`.
fn site_expires_within(site: &Site, now: i64) -> bool {
    let configs = load(site.settings.clone());
    configs.current().certificates.iter().any(|c| c.expires_within(now, 24 * 60 * 60))
}

#[test]
fn imap_offers_alpn_imap_and_lmtp_none() {
    let site = site();
    let configs = load(site.settings.clone());
    let roots = site.ca.pem();
    let imap_client = client(&roots, Versions::Both, &[b"imap"]);
    let pair = connect(&imap_client, configs.imap(), "mail.example.org");
    assert_eq!(pair.client.alpn_protocol(), Some(&b"imap"[..]));
    assert_eq!(pair.server.alpn_protocol(), Some(&b"imap"[..]));
    let pair = connect(&imap_client, configs.lmtp(), "mail.example.org");
    assert_eq!(pair.client.alpn_protocol(), None);
    // A client that offers no ALPN is served as before.
    let plain_client = client(&roots, Versions::Both, &[]);
    let pair = connect(&plain_client, configs.imap(), "mail.example.org");
    assert_eq!(pair.server.alpn_protocol(), None);
    // A client that offers only another protocol is refused (RFC 7301 section 3.2).
    let other = client(&roots, Versions::Both, &[b"h2"]);
    let mut pair = Pair::new(&other, configs.imap(), "mail.example.org");
    let (side, error) = pair.handshake().expect_err("no common protocol");
    assert_eq!(side, "server", "{error}");
    assert_eq!(error, rustls::Error::NoApplicationProtocol);
}

#[test]
fn tls_1_2_and_1_3_both_handshake_and_resume_from_a_ticket() {
    let site = site();
    let configs = load(site.settings.clone());
    for (versions, expected) in [
        (Versions::Tls12, ProtocolVersion::TLSv1_2),
        (Versions::Tls13, ProtocolVersion::TLSv1_3),
        (Versions::Both, ProtocolVersion::TLSv1_3),
    ] {
        // One client config holds the client's ticket store, as one client program would.
        let client = client(&site.ca.pem(), versions, &[b"imap"]);
        let mut first = connect(&client, configs.imap(), "mail.example.org");
        assert_eq!(first.client.protocol_version(), Some(expected), "{versions:?}");
        assert_eq!(first.server.handshake_kind(), Some(HandshakeKind::Full), "{versions:?}");
        first.exchange("a1 NOOP\r\n");
        let mut second = connect(&client, configs.imap(), "mail.example.org");
        assert_eq!(second.server.handshake_kind(), Some(HandshakeKind::Resumed), "{versions:?}");
        assert_eq!(second.client.protocol_version(), Some(expected));
        second.exchange("a2 NOOP\r\n");
        // An IMAP ticket does not resume on LMTP (each protocol has its own ticket keys).
        let lmtp = connect(&client, configs.lmtp(), "mail.example.org");
        assert_eq!(lmtp.server.handshake_kind(), Some(HandshakeKind::Full), "{versions:?}");
        // A reload starts new ticket keys: the next handshake is full (and so sees a renewed
        // certificate), the one after resumes again.
        configs.reload().expect("reload");
        let third = connect(&client, configs.imap(), "mail.example.org");
        assert_eq!(third.server.handshake_kind(), Some(HandshakeKind::Full), "{versions:?}");
        let fourth = connect(&client, configs.imap(), "mail.example.org");
        assert_eq!(fourth.server.handshake_kind(), Some(HandshakeKind::Resumed), "{versions:?}");
    }
}

/// A TLS 1.2 ClientHello (one ECDHE-ECDSA suite, X25519, ecdsa_secp256r1_sha256, no SNI),
/// with or without the extended master secret extension: rustls's client always sends it.
fn tls12_client_hello(extended_master_secret: bool) -> Vec<u8> {
    let mut extensions = vec![0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x1d]; // groups: x25519
    extensions.extend([0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]); // point formats: uncompressed
    extensions.extend([0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03]); // ecdsa P-256 SHA-256
    if extended_master_secret {
        extensions.extend([0x00, 0x17, 0x00, 0x00]);
    }
    let mut body = vec![0x03, 0x03];
    body.extend([0x5a; 32]); // random
    body.push(0); // no session id
    body.extend([0x00, 0x02, 0xc0, 0x2b]); // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    body.extend([0x01, 0x00]); // null compression
    body.extend(u16::try_from(extensions.len()).expect("small").to_be_bytes());
    body.extend(extensions);
    let length = u32::try_from(body.len()).expect("small").to_be_bytes();
    let mut handshake = vec![0x01, length[1], length[2], length[3]]; // ClientHello
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend(u16::try_from(handshake.len()).expect("small").to_be_bytes());
    record.extend(handshake);
    record
}

#[test]
fn tls_1_2_without_the_extended_master_secret_is_refused() {
    let site = site();
    let configs = load(site.settings.clone());
    for (server, protocol) in [(configs.imap(), "IMAP"), (configs.lmtp(), "LMTP")] {
        for extended_master_secret in [true, false] {
            let mut connection = rustls::ServerConnection::new(server.clone()).expect("server");
            let hello = tls12_client_hello(extended_master_secret);
            connection.read_tls(&mut &hello[..]).expect("from memory");
            let result = connection.process_new_packets();
            if extended_master_secret {
                result.expect("a TLS 1.2 hello with EMS is answered");
                assert_eq!(connection.protocol_version(), Some(ProtocolVersion::TLSv1_2));
                assert!(connection.wants_write(), "{protocol}: ServerHello expected");
            } else {
                let error = result.expect_err("EMS is required");
                assert_eq!(
                    error,
                    rustls::Error::PeerIncompatible(
                        rustls::PeerIncompatible::ExtendedMasterSecretExtensionRequired
                    ),
                    "{protocol}"
                );
            }
        }
    }
}

#[test]
fn a_ticket_from_another_server_process_gives_a_full_handshake() {
    let site = site();
    let first = load(site.settings.clone());
    let second = load(site.settings.clone());
    let client = client(&site.ca.pem(), Versions::Tls13, &[]);
    connect(&client, first.imap(), "mail.example.org");
    let pair = connect(&client, second.imap(), "mail.example.org");
    assert_eq!(pair.server.handshake_kind(), Some(HandshakeKind::Full));
}

#[test]
fn a_reload_is_seen_by_the_next_handshake_and_open_sessions_keep_working() {
    let site = site();
    let dir = site.dir.path();
    let paths = site.settings.default_certificate.clone();
    let configs = load(TlsSettings::new(paths.clone()));
    let client = client(&site.ca.pem(), Versions::Both, &[]);
    let mut open = connect(&client, configs.imap(), "mail.example.org");
    open.exchange("a1 NOOP\r\n");
    assert_eq!(open.server_certificate(), site.default);
    // The client now holds a ticket; it must not bring the old certificate back below.
    let resumed = connect(&client, configs.imap(), "mail.example.org");
    assert_eq!(resumed.server.handshake_kind(), Some(HandshakeKind::Resumed));

    let renewed = site.ca.server(&["mail.example.org"]);
    renewed.write(dir, "default", &site.ca.pem());
    assert_eq!(configs.generation(), 1);
    assert_eq!(configs.reload().expect("reload"), 2);
    assert_eq!(configs.generation(), 2);
    let fresh = connect(&client, configs.imap(), "mail.example.org");
    assert_eq!(fresh.server.handshake_kind(), Some(HandshakeKind::Full));
    assert_eq!(fresh.server_certificate(), renewed.der);
    // The connection set up before the reload still carries data both ways.
    open.exchange("a2 NOOP\r\n");

    // A broken file: the reload fails, names the file, and the renewed certificate stays.
    write(dir, "default.crt", "not a certificate\n");
    let error = configs.reload().expect_err("broken certificate file");
    assert!(error.to_string().contains(&paths.cert.display().to_string()), "{error}");
    assert_eq!(configs.generation(), 2);
    assert_eq!(configs.reloads_failed(), 1);
    let new_client = tls_support::client(&site.ca.pem(), Versions::Both, &[]);
    let after = connect(&new_client, configs.imap(), "mail.example.org");
    assert_eq!(after.server.handshake_kind(), Some(HandshakeKind::Full));
    assert_eq!(after.server_certificate(), renewed.der);
    open.exchange("a3 NOOP\r\n");
}

#[test]
fn client_certificates_are_asked_for_verified_and_mapped_to_users() {
    let site = site();
    let dir = site.dir.path();
    let users_ca = TestCa::new("skua test users CA");
    let client_ca = write(dir, "users-ca.pem", &users_ca.pem());
    let alice =
        users_ca.client(Some("alice"), Some("alice@example.org"), Some("alice.example.org"));
    for (field, expected) in [
        (ClientCertField::CommonName, "alice"),
        (ClientCertField::Email, "alice@example.org"),
        (ClientCertField::Dns, "alice.example.org"),
    ] {
        let mut settings = site.settings.clone();
        settings.client_ca = Some(client_ca.clone());
        settings.client_cert_user = field;
        let configs = load(settings);
        let with_cert = tls_support::client_with_identity(&site.ca.pem(), &alice);
        let mut pair = connect(&with_cert, configs.imap(), "mail.example.org");
        pair.exchange("a1 NOOP\r\n");
        let user = configs.client_user(pair.server.peer_certificates());
        assert_eq!(user.as_deref(), Ok(expected), "{field}");

        // Asked for, not required: a client without a certificate is served, and names nobody.
        let without = client(&site.ca.pem(), Versions::Both, &[]);
        let pair = connect(&without, configs.imap(), "mail.example.org");
        assert_eq!(
            configs.client_user(pair.server.peer_certificates()),
            Err(ClientCertError::None)
        );
    }

    // A certificate from another CA fails the handshake.
    let mut settings = site.settings.clone();
    settings.client_ca = Some(client_ca);
    let configs = load(settings);
    let mallory = site.ca.client(Some("alice"), None, None);
    let stranger = tls_support::client_with_identity(&site.ca.pem(), &mallory);
    let mut pair = Pair::new(&stranger, configs.imap(), "mail.example.org");
    let (side, _) = pair.handshake().expect_err("unknown issuer");
    assert_eq!(side, "server");

    // A field the certificate lacks, or a value that is no user name, names nobody.
    let bare = users_ca.client(Some("bob"), None, None);
    assert_eq!(
        client_cert::user_of(&bare.der, ClientCertField::Email),
        Err(ClientCertError::NoField(ClientCertField::Email))
    );
    assert_eq!(client_cert::user_of(&bare.der, ClientCertField::Dns).ok(), None);
    let spaced = users_ca.client(Some("bob smith"), None, None);
    assert!(matches!(
        client_cert::user_of(&spaced.der, ClientCertField::CommonName),
        Err(ClientCertError::BadName { .. })
    ));
}

#[test]
fn the_email_field_falls_back_to_the_subject_email_address() {
    let ca = TestCa::new("skua test users CA");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(rcgen::DnType::CommonName, "carol");
    params.distinguished_name.push(
        rcgen::DnType::CustomDnType(vec![1, 2, 840, 113_549, 1, 9, 1]),
        rcgen::DnValue::Ia5String("carol@example.org".try_into().expect("ia5")),
    );
    let key = rcgen::KeyPair::generate().expect("key");
    let certificate = params.signed_by(&key, &ca.certificate, &ca.key).expect("signed");
    let user = client_cert::user_of(certificate.der(), ClientCertField::Email);
    assert_eq!(user.as_deref(), Ok("carol@example.org"));
}

#[test]
fn rsa_pkcs1_and_ec_sec1_keys_load_as_well_as_pkcs8() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("skua test CA");
    let roots = ca.pem();
    for (name, pkcs8, original, algorithm) in [
        ("rsa", "rsa2048.pkcs8.pem", "rsa2048.pkcs1.pem", &rcgen::PKCS_RSA_SHA256),
        ("ec", "p256.pkcs8.pem", "p256.sec1.pem", &rcgen::PKCS_ECDSA_P256_SHA256),
    ] {
        let pkcs8_pem = std::fs::read_to_string(fixtures.join(pkcs8)).expect("fixture");
        let key = rcgen::KeyPair::from_pem_and_sign_algo(&pkcs8_pem, algorithm).expect("key");
        let issued = ca.server_with_key(&["mail.example.org"], key);
        // The key file in its original form (PKCS#1 / SEC1), as openssl writes it.
        let mut paths = issued.write(dir.path(), name, "");
        paths.key = fixtures.join(original);
        let configs = load(TlsSettings::new(paths));
        for versions in [Versions::Tls12, Versions::Tls13] {
            let client = client(&roots, versions, &[]);
            let mut pair = connect(&client, configs.imap(), "mail.example.org");
            assert_eq!(pair.server_certificate(), issued.der, "{name}");
            pair.exchange("a1 NOOP\r\n");
        }
    }
}

#[test]
fn bad_files_are_named_in_the_error() {
    let site = site();
    let dir = site.dir.path();
    let good = site.settings.default_certificate.clone();
    let other_key = site.settings.certificates[0].key.clone();
    let garbage = write(dir, "garbage.pem", "hello\n");
    let unfinished = write(dir, "unfinished.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n");
    let missing = dir.join("missing.pem");
    let cases: Vec<(CertificatePaths, &std::path::Path, &str)> = vec![
        (
            CertificatePaths { cert: missing.clone(), key: good.key.clone() },
            &missing,
            "No such file",
        ),
        (
            CertificatePaths { cert: good.cert.clone(), key: missing.clone() },
            &missing,
            "No such file",
        ),
        (
            CertificatePaths { cert: garbage.clone(), key: good.key.clone() },
            &garbage,
            "no CERTIFICATE",
        ),
        (
            CertificatePaths { cert: good.cert.clone(), key: garbage.clone() },
            &garbage,
            "no private key",
        ),
        // A certificate file is not a key file.
        (
            CertificatePaths { cert: good.cert.clone(), key: good.cert.clone() },
            &good.cert,
            "no private key",
        ),
        (
            CertificatePaths { cert: unfinished.clone(), key: good.key.clone() },
            &unfinished,
            "not valid PEM",
        ),
        (
            CertificatePaths { cert: good.cert.clone(), key: other_key.clone() },
            &other_key,
            "does not match",
        ),
    ];
    for (paths, at_fault, reason) in cases {
        let error = TlsConfigs::load(TlsSettings::new(paths)).expect_err("must not load");
        let text = error.to_string();
        assert!(text.contains(&at_fault.display().to_string()), "{text}");
        assert!(text.contains(reason), "{text}");
    }
    // The same checks apply to SNI certificates and the client CA.
    let mut settings = site.settings.clone();
    settings.certificates[1].cert = garbage.clone();
    let error = TlsConfigs::load(settings).expect_err("bad SNI certificate");
    assert!(matches!(error, TlsError::NoCertificate { ref path } if *path == garbage), "{error}");
    let mut settings = site.settings.clone();
    settings.client_ca = Some(garbage.clone());
    let error = TlsConfigs::load(settings).expect_err("bad client CA");
    assert!(error.to_string().contains(&garbage.display().to_string()), "{error}");
    // More certificates than the bound: refused before any is read.
    let mut settings = site.settings.clone();
    settings.certificates = vec![good.clone(); skua_shard::tls::CERTIFICATES_MAX];
    let error = TlsConfigs::load(settings).expect_err("too many");
    assert!(
        matches!(error, TlsError::TooManyCertificates { count } if count == skua_shard::tls::CERTIFICATES_MAX + 1),
        "{error}"
    );
    let mut settings = site.settings.clone();
    settings.certificates = vec![good.clone(); skua_shard::tls::CERTIFICATES_MAX - 1];
    assert_eq!(
        TlsConfigs::load(settings).expect("at the bound").current().certificates.len(),
        skua_shard::tls::CERTIFICATES_MAX
    );
    // Too large to be a certificate file: refused before parsing.
    let huge = dir.join("huge.pem");
    let file = std::fs::File::create(&huge).expect("create");
    file.set_len(skua_shard::tls::PEM_FILE_BYTES_MAX + 1).expect("grow");
    let paths = CertificatePaths { cert: huge.clone(), key: good.key.clone() };
    let error = TlsConfigs::load(TlsSettings::new(paths)).expect_err("too large");
    assert!(matches!(error, TlsError::TooLarge { .. }), "{error}");
}

#[test]
fn the_self_signed_certificate_is_made_once_and_reused() {
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().expect("tempdir");
    let first = selfsigned::ensure(data.path()).expect("made");
    assert!(first.created);
    assert_eq!(first.paths, selfsigned::paths(data.path()));
    let mode = std::fs::metadata(&first.paths.key).expect("key").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "key mode {mode:o}");
    let dir_mode = std::fs::metadata(data.path().join("tls")).expect("dir").permissions().mode();
    assert_eq!(dir_mode & 0o077, 0, "tls dir mode {dir_mode:o}");
    assert!(!data.path().join("tls/selfsigned.key.tmp").exists());

    let second = selfsigned::ensure(data.path()).expect("reused");
    assert!(!second.created);
    assert_eq!(second.fingerprint, first.fingerprint);

    // The fingerprint is SHA-256 over the certificate's DER, and a client that pins the
    // certificate reaches the server as localhost, 127.0.0.1 and ::1.
    let pem = std::fs::read_to_string(&first.paths.cert).expect("cert");
    let der = tls_support::root_store(&pem);
    assert_eq!(der.len(), 1);
    let configs = load(TlsSettings::new(first.paths.clone()));
    let pinned = client(&pem, Versions::Both, &[b"imap"]);
    for name in ["localhost", "127.0.0.1", "::1"] {
        let mut pair = connect(&pinned, configs.imap(), name);
        assert_eq!(Fingerprint::of(&pair.server_certificate()), first.fingerprint);
        pair.exchange("a1 NOOP\r\n");
    }

    // A start that finds a key without its certificate (a crash between the two renames)
    // makes a new pair.
    std::fs::remove_file(&first.paths.cert).expect("remove");
    let third = selfsigned::ensure(data.path()).expect("remade");
    assert!(third.created);
    assert_ne!(third.fingerprint, first.fingerprint);

    // A certificate whose key is gone is replaced with a new pair, too.
    std::fs::remove_file(&third.paths.key).expect("remove");
    let fourth = selfsigned::ensure(data.path()).expect("remade");
    assert!(fourth.created);
    assert_ne!(fourth.fingerprint, third.fingerprint);
    let third = fourth;

    // Files that are there but broken are not overwritten: the error names them.
    std::fs::write(&third.paths.cert, "edited by hand\n").expect("write");
    let error = selfsigned::ensure(data.path()).expect_err("broken");
    assert!(error.to_string().contains(&third.paths.cert.display().to_string()), "{error}");
    assert_eq!(std::fs::read_to_string(&third.paths.cert).expect("kept"), "edited by hand\n");
}
