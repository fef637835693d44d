//! SCRAM credentials in the passwd-file (as Dovecot writes them) and master-user logins,
//! through the public API of `skua_core::users`.

use skua_core::users::master::{LoginIdentity, LoginRefusal, Logins};
use skua_core::users::scram::{ScramAlgorithm, ScramKeys};
use skua_core::users::{HashCost, Scheme, Secret, UserDb, hash_password_with};

/// Made by `doveadm pw -s SCRAM-SHA-256 -p pencil` and `doveadm pw -s SCRAM-SHA-1 -p pencil`
/// (Dovecot 2.3).
const DOVECOT_SHA256: &str = "{SCRAM-SHA-256}4096,QXZtpHzhKc57FaZ0FYGv9w==,\
    hWgwXTByAfa0QVsWyqeO1VPhOoP4347CierltQlW2kI=,leq/Z46dZrqcNdLUp1h6xoDEhAh3h5dss52UY6GoOn8=";
const DOVECOT_SHA1: &str = "{SCRAM-SHA-1}4096,r/IPttUWC1nh6B9yB2Da0w==,\
    bEbLp5aY1AXw2PvUNa0fe5O16Ko=,28SO0+P4giyJEZQ4Qzb4zn9UAto=";

fn secret(password: &str) -> Secret<String> {
    Secret::from(password)
}

#[test]
fn dovecot_scram_lines_verify_passwords_and_give_keys() {
    let file = format!("s256:{DOVECOT_SHA256}\ns1:{DOVECOT_SHA1}\n");
    let db = UserDb::parse(file.as_bytes(), "test");
    assert_eq!(db.lookup("s256").unwrap().scheme(), Some(Scheme::ScramSha256));
    assert_eq!(db.lookup("s1").unwrap().scheme(), Some(Scheme::ScramSha1));
    // PLAIN/LOGIN against a SCRAM line: PBKDF2, then both keys compared.
    assert!(db.check_login("s256", &secret("pencil")).is_some());
    assert!(db.check_login("s256", &secret("pencim")).is_none());
    assert!(db.check_login("s1", &secret("pencil")).is_some());
    assert!(db.check_login("s1", &secret("Pencil")).is_none());
    // SCRAM keys only for the matching hash.
    let keys = db.lookup("s256").unwrap().scram_keys(ScramAlgorithm::Sha256).unwrap();
    assert_eq!(keys.iterations().get(), 4096);
    assert!(db.lookup("s256").unwrap().scram_keys(ScramAlgorithm::Sha1).is_none());
    assert!(db.lookup("s1").unwrap().scram_keys(ScramAlgorithm::Sha1).is_some());
    // The same keys derive from the password and the stored salt.
    let derived = ScramKeys::derive(ScramAlgorithm::Sha256, b"pencil", keys.salt(), 4096).unwrap();
    assert_eq!(&derived, keys);
    assert_eq!(derived.to_passwd_field(), DOVECOT_SHA256);
}

#[test]
fn new_scram_hashes_are_in_dovecot_form() {
    let cost = HashCost { scram_iterations: 4096, ..HashCost::low() };
    for (scheme, algorithm) in
        [(Scheme::ScramSha256, ScramAlgorithm::Sha256), (Scheme::ScramSha1, ScramAlgorithm::Sha1)]
    {
        let stored = hash_password_with(scheme, b"pencil", &cost).unwrap();
        let body = stored.strip_prefix(&format!("{{{}}}", scheme.name())).unwrap();
        let fields: Vec<&str> = body.split(',').collect();
        assert_eq!(fields.len(), 4, "{stored}");
        assert_eq!(fields[0], "4096");
        let db = UserDb::parse(format!("u:{stored}\n").as_bytes(), "test");
        assert!(db.check_login("u", &secret("pencil")).is_some());
        assert!(db.lookup("u").unwrap().scram_keys(algorithm).is_some());
    }
}

#[test]
fn a_non_scram_user_has_no_scram_keys() {
    let db = UserDb::parse(b"p:{PLAIN}pencil\n", "test");
    let entry = db.lookup("p").unwrap();
    assert!(entry.scram_keys(ScramAlgorithm::Sha256).is_none());
    assert!(entry.scram_keys(ScramAlgorithm::Sha1).is_none());
}

const USERS: &[u8] = b"alice:{PLAIN}alice-pw\nbob:{PLAIN}bob-pw\n";
const MASTERS: &[u8] = b"Support:{PLAIN}master-pw\n";

/// authcid, authzid, password, expected outcome.
type Case = (&'static str, Option<&'static str>, &'static str, Result<LoginIdentity, LoginRefusal>);

fn identity(user: &str, authenticated_as: &str, master: bool) -> LoginIdentity {
    LoginIdentity { user: user.into(), authenticated_as: authenticated_as.into(), master }
}

#[test]
fn master_users_log_in_as_anyone_with_one_verification_each() {
    let users = UserDb::parse(USERS, "users");
    let masters = UserDb::parse(MASTERS, "masters");
    let logins = Logins { users: &users, masters: Some(&masters) };
    let checks = || users.verifications() + masters.verifications();
    let cases: [Case; 11] = [
        ("alice", None, "alice-pw", Ok(identity("alice", "alice", false))),
        ("ALICE", Some("alice"), "alice-pw", Ok(identity("alice", "alice", false))),
        ("alice", None, "master-pw", Err(LoginRefusal::BadCredentials)),
        // PLAIN authzid: the authcid is a master.
        ("support", Some("Bob"), "master-pw", Ok(identity("bob", "Support", true))),
        ("support", Some("bob"), "bob-pw", Err(LoginRefusal::BadCredentials)),
        ("support", Some("nobody"), "master-pw", Err(LoginRefusal::NoSuchTarget)),
        // A user is no master: its own password does not let it be someone else.
        ("alice", Some("bob"), "alice-pw", Err(LoginRefusal::BadCredentials)),
        // LOGIN-style `target*master`.
        ("bob*Support", None, "master-pw", Ok(identity("bob", "Support", true))),
        ("bob*support", None, "bob-pw", Err(LoginRefusal::BadCredentials)),
        ("bob*support", Some("alice"), "master-pw", Err(LoginRefusal::Ambiguous)),
        // The master file grants no mailbox of its own.
        ("support", None, "master-pw", Err(LoginRefusal::BadCredentials)),
    ];
    for (authcid, authzid, password, expected) in cases {
        let before = checks();
        let got = logins.check_password(authcid, authzid, &secret(password));
        assert_eq!(got, expected, "{authcid} {authzid:?}");
        assert_eq!(checks(), before + 1, "{authcid} {authzid:?}: one verification");
    }
}

#[test]
fn without_a_master_file_authzid_must_be_oneself_and_star_is_a_name() {
    let users = UserDb::parse(b"alice:{PLAIN}alice-pw\nodd*name:{PLAIN}odd-pw\n", "users");
    let logins = Logins::new(&users);
    let ok = |user: &str| Ok(identity(user, user, false));
    assert_eq!(logins.check_password("odd*name", None, &secret("odd-pw")), ok("odd*name"));
    assert_eq!(
        logins.check_password("alice", Some("odd*name"), &secret("alice-pw")),
        Err(LoginRefusal::NotAuthorized)
    );
    assert_eq!(users.verifications(), 2, "a refused authzid still costs one verification");
}

#[test]
fn scram_credentials_follow_the_same_rules() {
    let keys = |password: &[u8]| {
        ScramKeys::derive(ScramAlgorithm::Sha256, password, b"salt", 1).unwrap().to_passwd_field()
    };
    let users = format!("alice:{}\nbob:{{PLAIN}}bob-pw\n", keys(b"alice-pw"));
    let masters = format!("support:{}\n", keys(b"master-pw"));
    let users = UserDb::parse(users.as_bytes(), "users");
    let masters = UserDb::parse(masters.as_bytes(), "masters");
    let logins = Logins { users: &users, masters: Some(&masters) };
    let lookup = |authcid: &str, authzid: Option<&str>| {
        logins.scram_credentials(authcid, authzid, ScramAlgorithm::Sha256).map(|(k, who)| {
            assert!(k.verify_password(if who.master { b"master-pw" } else { b"alice-pw" }));
            who
        })
    };
    assert_eq!(lookup("alice", None), Some(identity("alice", "alice", false)));
    assert_eq!(lookup("support", Some("bob")), Some(identity("bob", "support", true)));
    assert_eq!(lookup("bob*support", None), Some(identity("bob", "support", true)));
    assert_eq!(lookup("bob", None), None, "bob has no SCRAM keys");
    assert_eq!(lookup("support", Some("nobody")), None);
    assert_eq!(lookup("alice", Some("bob")), None);
    assert_eq!(lookup("nobody", None), None);
    assert!(logins.scram_credentials("alice", None, ScramAlgorithm::Sha1).is_none());
}

#[test]
fn authorize_maps_proved_identities_to_users() {
    let users = UserDb::parse(USERS, "users");
    let logins = Logins::new(&users);
    assert_eq!(logins.authorize("Alice", None), Ok(identity("alice", "alice", false)));
    assert_eq!(logins.authorize("alice", Some("ALICE")), Ok(identity("alice", "alice", false)));
    assert_eq!(logins.authorize("alice", Some("bob")), Err(LoginRefusal::NotAuthorized));
    assert_eq!(logins.authorize("mallory", None), Err(LoginRefusal::BadCredentials));
}
