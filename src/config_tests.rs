//! Tests of the config file's parsing and checks (`config.rs`).

use super::*;

#[test]
fn compaction_keys_and_retention_durations() {
    let text = "[compaction]\nretention = \"12h\"\ninterval_seconds = 5\nenabled = false\n";
    let file: FileConfig = toml::from_str(text).expect("parses");
    let mut config = ServerConfig::default();
    file.apply_compaction(&mut config).unwrap();
    assert_eq!(config.compaction.retention, Duration::from_secs(12 * 3600));
    assert_eq!(config.compaction.interval, Duration::from_secs(5));
    assert!(!config.compaction.enabled);
    let defaults = ServerConfig::default().compaction;
    assert_eq!(defaults.retention, Duration::from_secs(7 * 86_400));
    assert_eq!(config.compaction.bytes_per_second, defaults.bytes_per_second);
    assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
    for bad in ["", "7", "d", "7w", "-1d", "1.5d", "99999999999d"] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
    let zero = "[compaction]\ninterval_seconds = 0\n";
    let file: FileConfig = toml::from_str(zero).expect("parses");
    assert!(file.apply_compaction(&mut ServerConfig::default()).is_err());
}

#[test]
fn limits_come_from_the_file_and_default_otherwise() {
    let text = "connections_per_shard = 16384\n\
                [limits]\n\
                connections_per_source = 10\n\
                connections_per_user = 3\n\
                login_deadline_seconds = 5\n\
                command_deadline_seconds = 7\n\
                refusal_log_interval_seconds = 9\n\
                [lmtp]\n\
                connections_per_shard = 20\n";
    let file: FileConfig = toml::from_str(text).expect("parses");
    let mut config = ServerConfig::default();
    file.apply_limits(&mut config).expect("valid");
    assert_eq!(config.connections_per_source_max, 10);
    assert_eq!(config.connections_per_user_max, 3);
    assert_eq!(config.login_deadline, Duration::from_secs(5));
    assert_eq!(config.command_deadline, Duration::from_secs(7));
    assert_eq!(config.refusal_log_interval, Duration::from_secs(9));
    assert_eq!(config.lmtp_connections_per_shard_max, 20);

    let mut defaults = ServerConfig::default();
    FileConfig::default().apply_limits(&mut defaults).expect("valid");
    assert_eq!(defaults.connections_per_source_max, 1024);
    assert_eq!(defaults.connections_per_user_max, 64);
    assert_eq!(defaults.login_deadline, Duration::from_secs(60));
    assert_eq!(defaults.command_deadline, Duration::from_secs(300));
    assert_eq!(defaults.refusal_log_interval, Duration::from_secs(60));
    assert_eq!(defaults.lmtp_connections_per_shard_max, 256);
}

#[test]
fn lmtp_listens_on_tcp_and_unix_sockets_and_reads_its_window() {
    let text = "[lmtp]\n\
                listen = [\"127.0.0.1:24\", \"unix:/run/skua/lmtp.sock\"]\n\
                unix_mode = \"0600\"\n\
                duplicate_window = \"2h\"\n";
    let file: FileConfig = toml::from_str(text).expect("parses");
    let tcp: SocketAddr = "127.0.0.1:24".parse().unwrap();
    assert_eq!(file.lmtp.tcp_listen(), Some(vec![tcp]));
    let unix = file.lmtp.unix_listen().expect("valid");
    assert_eq!(unix.len(), 1);
    assert_eq!((unix[0].path.to_str(), unix[0].mode), (Some("/run/skua/lmtp.sock"), 0o600));
    assert_eq!(file.lmtp.duplicate_window_seconds().unwrap(), 7_200);

    let only_unix: FileConfig =
        toml::from_str("[lmtp]\nlisten = [\"unix:/s\"]\nduplicate_window = 0\n").unwrap();
    assert_eq!(only_unix.lmtp.tcp_listen(), Some(vec![]), "instead of TCP");
    assert_eq!(only_unix.lmtp.unix_listen().unwrap()[0].mode, 0o660, "the default mode");
    assert_eq!(only_unix.lmtp.duplicate_window_seconds().unwrap(), 0, "off");
    let defaults = FileConfig::default();
    assert_eq!(defaults.lmtp.tcp_listen(), None);
    assert_eq!(defaults.lmtp.duplicate_window_seconds().unwrap(), 86_400);

    for bad in ["listen = [\"unix:relative\"]", "listen = [\"nowhere\"]"] {
        assert!(toml::from_str::<FileConfig>(&format!("[lmtp]\n{bad}\n")).is_err(), "{bad}");
    }
    for bad in ["\"24x\"", "\"h\"", "\"-1h\"", "\"99999999999999999999d\""] {
        let file: FileConfig =
            toml::from_str(&format!("[lmtp]\nduplicate_window = {bad}\n")).unwrap();
        assert!(file.lmtp.duplicate_window_seconds().is_err(), "{bad}");
    }
    let file: FileConfig = toml::from_str("[lmtp]\nunix_mode = \"0999\"\n").unwrap();
    assert!(file.lmtp.unix_listen().is_err());
}

#[test]
fn socketmap_listens_on_tcp_and_unix_sockets_through_apply_limits() {
    let text = "[socketmap]\n\
                listen = [\"127.0.0.1:2425\", \"unix:/run/skua/socketmap.sock\"]\n\
                unix_mode = \"0640\"\n";
    let file: FileConfig = toml::from_str(text).expect("parses");
    let mut config = ServerConfig::default();
    file.apply_limits(&mut config).expect("valid");
    let tcp: SocketAddr = "127.0.0.1:2425".parse().unwrap();
    assert_eq!(config.socketmap_listen, vec![tcp]);
    let unix = &config.socketmap_unix_listen;
    assert_eq!(unix.len(), 1);
    assert_eq!((unix[0].path.to_str(), unix[0].mode), (Some("/run/skua/socketmap.sock"), 0o640));

    let mut defaults = ServerConfig::default();
    FileConfig::default().apply_limits(&mut defaults).expect("valid");
    assert!(defaults.socketmap_listen.is_empty() && defaults.socketmap_unix_listen.is_empty());
    let bad: FileConfig = toml::from_str("[socketmap]\nunix_mode = \"0999\"\n").unwrap();
    let error = bad.apply_limits(&mut ServerConfig::default()).expect_err("bad mode");
    assert!(error.to_string().starts_with("socketmap.unix_mode"), "{error}");
    assert!(toml::from_str::<FileConfig>("[socketmap]\nport = 1\n").is_err(), "unknown key");
}

#[test]
fn lmtp_message_settings_come_from_the_file_and_are_checked() {
    let text = "[lmtp]\n\
                max_message_size = 1000\n\
                detail_separator = \"-\"\n\
                received_header = false\n\
                delivered_to_header = false\n\
                bare_line_endings = \"refuse\"\n";
    let file: FileConfig = toml::from_str(text).expect("parses");
    let mut config = ServerConfig::default();
    file.apply_limits(&mut config).expect("valid");
    assert_eq!(config.lmtp.max_message_bytes, 1000);
    assert_eq!(config.lmtp.detail_separator, Some('-'));
    assert!(!config.lmtp.received_header);
    assert!(!config.lmtp.delivered_to_header);
    assert_eq!(config.lmtp.bare_line_endings, BareLineEndings::Refuse);

    let mut defaults = ServerConfig::default();
    FileConfig::default().apply_limits(&mut defaults).expect("valid");
    assert_eq!(defaults.lmtp.max_message_bytes, 64 * 1024 * 1024);
    assert_eq!(defaults.lmtp.detail_separator, Some('+'));
    assert!(defaults.lmtp.received_header && defaults.lmtp.delivered_to_header);
    assert_eq!(defaults.lmtp.bare_line_endings, BareLineEndings::Normalize);

    let off: FileConfig = toml::from_str("[lmtp]\ndetail_separator = \"\"\n").unwrap();
    off.apply_limits(&mut defaults).expect("valid");
    assert_eq!(defaults.lmtp.detail_separator, None);
    for bad in [
        "max_message_size = 0",
        "max_message_size = 67108865",
        "detail_separator = \"++\"",
        "detail_separator = \"@\"",
        "bare_line_endings = \"keep\"",
    ] {
        let file: FileConfig = toml::from_str(&format!("[lmtp]\n{bad}\n")).unwrap();
        assert!(file.apply_limits(&mut ServerConfig::default()).is_err(), "{bad}");
    }
}

fn never_self_signed() -> anyhow::Result<CertificatePaths> {
    panic!("a configured certificate needs no self-signed one")
}

#[test]
fn tls_settings_come_from_the_file_or_the_self_signed_default() {
    let text = "[imap]\n\
                tls_listen = []\n\
                require_tls = true\n\
                [tls]\n\
                cert = \"a.crt\"\n\
                key = \"a.key\"\n\
                client_ca = \"ca.pem\"\n\
                client_cert_user = \"email\"\n\
                [[tls.certificates]]\n\
                cert = \"b.crt\"\n\
                key = \"b.key\"\n";
    let file: FileConfig = toml::from_str(text).expect("parses");
    assert_eq!(file.imap.tls_listen, Some(vec![]));
    assert_eq!(file.imap.require_tls, Some(true));
    let (settings, self_signed) = file.tls_settings(never_self_signed).expect("valid");
    assert!(!self_signed);
    assert_eq!(settings.default_certificate.cert, PathBuf::from("a.crt"));
    assert_eq!(settings.default_certificate.key, PathBuf::from("a.key"));
    assert_eq!(settings.certificates.len(), 1);
    assert_eq!(settings.certificates[0].cert, PathBuf::from("b.crt"));
    assert_eq!(settings.client_ca, Some(PathBuf::from("ca.pem")));
    assert_eq!(settings.client_cert_user, ClientCertField::Email);

    let made = CertificatePaths { cert: "s.crt".into(), key: "s.key".into() };
    let (settings, self_signed) =
        FileConfig::default().tls_settings(|| Ok(made.clone())).expect("default");
    assert!(self_signed);
    assert_eq!(settings.default_certificate, made);
    assert_eq!(settings.client_ca, None);
}

#[test]
fn half_tls_configurations_are_refused() {
    for (text, expected) in [
        ("[tls]\ncert = \"a.crt\"\n", "tls.key is not"),
        ("[tls]\nkey = \"a.key\"\n", "tls.cert is not"),
        ("[tls]\ncert = \"a\"\nkey = \"b\"\nclient_cert_user = \"cn\"\n", "needs tls.client_ca"),
        (
            "[tls]\ncert = \"a\"\nkey = \"b\"\nclient_ca = \"c\"\nclient_cert_user = \"uid\"\n",
            "uid",
        ),
    ] {
        let file: FileConfig = toml::from_str(text).expect("parses");
        let error = file.tls_settings(never_self_signed).expect_err(text);
        assert!(error.to_string().contains(expected), "{error}");
    }
    assert!(toml::from_str::<FileConfig>("[tls]\ncertificate = \"a\"\n").is_err());
}

#[test]
fn zero_limits_and_unknown_keys_are_refused() {
    let zero: FileConfig = toml::from_str("[limits]\nconnections_per_source = 0\n").expect("toml");
    let error = zero.apply_limits(&mut ServerConfig::default()).expect_err("zero");
    assert!(error.to_string().contains("limits.connections_per_source"), "{error}");
    assert!(toml::from_str::<FileConfig>("[limits]\nconnections_per_ip = 5\n").is_err());
}

#[test]
fn auth_section_parses_and_refuses_what_it_cannot_use() {
    let text = "[auth]\n\
                master_passwd_file = \"/nonexistent/skua-masters\"\n\
                [auth.oauth]\n\
                jwks_file = \"/nonexistent/keys.jwks\"\n\
                issuer = \"https://id.example.org\"\n\
                audience = \"skua\"\n\
                user_claim = \"email\"\n";
    let file: FileConfig = toml::from_str(text).expect("parses");
    let oauth = file.auth.oauth.as_ref().expect("oauth");
    assert_eq!(
        (oauth.issuer.as_str(), oauth.user_claim.as_deref()),
        ("https://id.example.org", Some("email"))
    );
    // The master file is read first: a missing one stops the start (and writes nothing).
    let error = file.apply_auth(&mut ServerConfig::default()).expect_err("missing file");
    assert!(format!("{error:#}").contains("skua-masters"), "{error:#}");
    let zero: FileConfig = toml::from_str("[auth]\nscram_fake_iterations = 0\n").expect("parses");
    assert!(zero.apply_auth(&mut ServerConfig::default()).is_err());
    assert!(toml::from_str::<FileConfig>("[auth]\nmaster = \"x\"\n").is_err());
}

#[test]
fn quota_section_and_admins() {
    let text = "[quota]\nstorage = \"1G\"\nmessages = 10\nmailboxes = 0\n\
                [imap]\nadmins = [\"root\"]\n";
    let file: FileConfig = toml::from_str(text).expect("toml");
    let mut config = ServerConfig::default();
    file.apply_quota(&mut config).expect("valid");
    let expected = skua_core::store::QuotaLimits {
        storage_kib: Some(1 << 20),
        messages: Some(10),
        mailboxes: None,
    };
    assert_eq!(config.quota_default, expected);
    assert_eq!(config.imap_admins, ["root"]);
    let mut config = ServerConfig::default();
    FileConfig::default().apply_quota(&mut config).expect("valid");
    assert_eq!(config.quota_default, skua_core::store::QuotaLimits::UNLIMITED);
    for bad in ["storage = \"1X\"", "storage = \"-1G\"", "storage = \"\"", "bogus = 1"] {
        let parsed = toml::from_str::<FileConfig>(&format!("[quota]\n{bad}\n"));
        assert!(parsed.map_or(true, |f| f.apply_quota(&mut config).is_err()), "{bad}");
    }
}

#[test]
fn folders_section_renames_and_leaves_out() {
    use skua_core::store::SpecialUse;
    let mut config = ServerConfig::default();
    let names = |config: &ServerConfig| -> Vec<String> {
        config.default_folders.iter().map(|f| f.name.clone()).collect()
    };
    assert_eq!(names(&config), ["Drafts", "Sent", "Trash", "Junk", "Archive"]);
    let text = "[folders]\nsent = \"Sent Items\"\njunk = \"\"\narchive = \"Old/Archive\"\n";
    let file: FileConfig = toml::from_str(text).expect("parses");
    file.apply_folders(&mut config).expect("valid");
    assert_eq!(names(&config), ["Drafts", "Sent Items", "Trash", "Old/Archive"]);
    assert_eq!(config.default_folders[1].uses, SpecialUse::SENT);
    assert_eq!(config.default_folders[3].uses, SpecialUse::ARCHIVE);
    for bad in ["sent = \"a//b\"", "sent = \"inbox\"", "sent = \"Trash\"", "sent = \"..\""] {
        let file: FileConfig = toml::from_str(&format!("[folders]\n{bad}\n")).expect("toml");
        assert!(file.apply_folders(&mut ServerConfig::default()).is_err(), "{bad}");
    }
    assert!(toml::from_str::<FileConfig>("[folders]\nspam = \"x\"\n").is_err());
}
