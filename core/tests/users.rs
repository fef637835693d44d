//! The users database through its public API: real hashes from every scheme, a Dovecot-style
//! file with comments and extra fields, and the file edits.

use std::fs;
use std::path::Path;

use skua_core::users::{
    HashCost, Scheme, UserDb, UsersError, add_user, delete_user, hash_password_with, list_users,
    set_password,
};

const SCHEMES: [Scheme; 5] =
    [Scheme::Sha512Crypt, Scheme::BlfCrypt, Scheme::Argon2id, Scheme::Argon2i, Scheme::Plain];

fn load(path: &Path) -> UserDb {
    UserDb::load(path).expect("load")
}

#[test]
fn generated_hashes_verify_after_a_round_trip_through_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    for (index, scheme) in SCHEMES.into_iter().enumerate() {
        let password = format!("secret-{index}");
        let hash = hash_password_with(scheme, password.as_bytes(), &HashCost::low()).unwrap();
        add_user(&path, &format!("user{index}@example.com"), &hash).unwrap();
    }
    let db = load(&path);
    assert_eq!(db.len(), SCHEMES.len());
    for (index, scheme) in SCHEMES.into_iter().enumerate() {
        let entry = db.lookup(&format!("USER{index}@example.com")).unwrap();
        assert_eq!(entry.scheme(), Some(scheme));
        assert!(entry.verify(format!("secret-{index}")));
        assert!(!entry.verify(format!("secret-{}", index + 1)));
    }
}

/// Hashes made here with the algorithm crates and fixed salts, written in the forms Dovecot
/// writes, with and without the `{SCHEME}` prefix.
#[test]
fn fixed_salt_hashes_in_dovecot_forms() {
    use argon2::password_hash::{PasswordHasher, SaltString};

    let password = b"Tr0ub4dor&3";
    let sha512_params = sha_crypt::Sha512Params::new(5000).unwrap();
    let sha512 = sha_crypt::sha512_crypt_b64(password, b"fixedsalt", &sha512_params).unwrap();
    let bcrypt = bcrypt::hash_with_salt(password, 5, *b"0123456789abcdef").unwrap();
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    let argon2_params = argon2::Params::new(64, 1, 1, None).unwrap();
    let argon2id =
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, argon2_params)
            .hash_password(password, &salt)
            .unwrap()
            .to_string();
    assert!(argon2id.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));

    let contents = format!(
        "a:{{SHA512-CRYPT}}$6$fixedsalt${sha512}\n\
         b:$6$fixedsalt${sha512}\n\
         c:{{BLF-CRYPT}}{}\n\
         d:{}\n\
         e:{{ARGON2ID}}{argon2id}\n\
         f:{argon2id}\n\
         g:{{CRYPT}}{}\n",
        bcrypt.format_for_version(bcrypt::Version::TwoY),
        bcrypt.format_for_version(bcrypt::Version::TwoB),
        bcrypt.format_for_version(bcrypt::Version::TwoY),
    );
    let db = UserDb::parse(contents.as_bytes(), "test");
    assert_eq!(db.len(), 7);
    for entry in db.iter() {
        assert!(entry.scheme().is_some(), "{entry:?}");
        assert!(entry.verify(password), "{}", entry.name);
        assert!(!entry.verify(b"Tr0ub4dor&4"), "{}", entry.name);
    }
}

#[test]
fn dovecot_file_with_comments_extra_fields_and_bad_lines() {
    let contents = "\
# skua users
#  name:password:uid:gid:gecos:home:shell:extra

alice@example.com:{PLAIN}wonderland:1000:1000:Alice:/home/alice:/bin/false:userdb_quota_rule=*:storage=1G
bob:{CLEAR}builder::::::
carol:{SCRAM-SHA-256}4096,abc,def
dave:
 # indented comment
not a user:{PLAIN}x
erin:{PLAIN}e\r
";
    let db = UserDb::parse(contents.as_bytes(), "test");
    let names: Vec<&str> = db.iter().map(skua_core::users::UserEntry::name).collect();
    assert_eq!(names, ["alice@example.com", "bob", "carol", "dave", "erin"]);
    assert!(db.lookup("alice@example.com").unwrap().verify("wonderland"));
    assert!(db.lookup("bob").unwrap().verify("builder"));
    assert!(db.lookup("erin").unwrap().verify("e"));
    // Unknown scheme and empty password: the users exist (they receive mail) but cannot log in.
    for name in ["carol", "dave"] {
        let entry = db.lookup(name).unwrap();
        assert_eq!(entry.scheme(), None);
        assert!(!entry.verify(""));
    }
    assert_eq!(db.resolve_recipient("<carol@example.net>", true).unwrap().name, "carol");
    assert!(db.resolve_recipient("<carol@example.net>", false).is_none());
}

#[test]
fn edits_round_trip_and_keep_everything_else() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    let original = "# header comment\n\nalice:{PLAIN}a:1000:1000::/home/alice::extra=1\n\
                    # between\nbob:{PLAIN}b\n";
    fs::write(&path, original).unwrap();

    add_user(&path, "carol@example.com", "{PLAIN}c").unwrap();
    set_password(&path, "Alice", "{PLAIN}a2").unwrap();
    delete_user(&path, "bob").unwrap();
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "# header comment\n\nalice:{PLAIN}a2:1000:1000::/home/alice::extra=1\n\
         # between\ncarol@example.com:{PLAIN}c\n"
    );
    assert_eq!(list_users(&path).unwrap(), ["alice", "carol@example.com"]);
    let db = load(&path);
    assert!(db.lookup("alice").unwrap().verify("a2"));
    assert!(!db.lookup("alice").unwrap().verify("a"));
    assert!(db.lookup("bob").is_none());

    let leftovers: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.contains(".tmp."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn edit_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    assert!(list_users(&path).unwrap().is_empty());
    assert!(matches!(delete_user(&path, "x"), Err(UsersError::NoSuchUser(_))));
    assert!(matches!(set_password(&path, "x", "{PLAIN}p"), Err(UsersError::NoSuchUser(_))));
    add_user(&path, "alice", "{PLAIN}a").unwrap();
    assert!(matches!(add_user(&path, "ALICE", "{PLAIN}b"), Err(UsersError::UserExists(_))));
    for bad in ["a:b", "a\nb", "", "a b", "../x"] {
        assert!(
            matches!(add_user(&path, bad, "{PLAIN}a"), Err(UsersError::InvalidName { .. })),
            "{bad:?}"
        );
    }
    for bad in ["{PLAIN}a:b", "{NOPE}x", "cleartext", "{PLAIN}a\nbob:{PLAIN}b"] {
        assert!(matches!(add_user(&path, "bob", bad), Err(UsersError::InvalidHash(_))), "{bad:?}");
    }
    assert_eq!(fs::read_to_string(&path).unwrap(), "alice:{PLAIN}a\n");
}

#[test]
fn concurrent_edits_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    std::thread::scope(|scope| {
        for thread in 0..8 {
            let path = &path;
            scope.spawn(move || {
                for index in 0..5 {
                    add_user(path, &format!("u{thread}-{index}"), "{PLAIN}x").unwrap();
                }
            });
        }
    });
    assert_eq!(list_users(&path).unwrap().len(), 40);
}

#[test]
fn oversized_file_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    let file = fs::File::create(&path).unwrap();
    // Sparse: no disk space is used, and nothing is read.
    file.set_len(skua_core::users::limits::PASSWD_FILE_BYTES_MAX + 1).unwrap();
    assert!(matches!(UserDb::load(&path), Err(UsersError::FileTooLarge { .. })));
    assert!(matches!(list_users(&path), Err(UsersError::FileTooLarge { .. })));
}
