//! The passwd-file's `userdb_quota_rule` extra fields (Dovecot's per-user quota) reach the
//! user's entry, other extra fields and bad rules do not stop the load, and a line without
//! extra fields has no rules (the config default applies).

use skua_core::store::QuotaLimits;
use skua_core::users::UserDb;

const FILE: &[u8] = b"\
alice:{PLAIN}a:1000:1000::/home/alice::userdb_quota_rule=*:storage=1G userdb_quota_rule2=*:messages=10000
bob:{PLAIN}b:1000:1000::/home/bob::userdb_mail=maildir:~/Maildir userdb_quota_rule=Trash:storage=+10M
carol:{PLAIN}c
dave:{PLAIN}d:1000:1000:Dave\x20D:/home/dave:/bin/false:userdb_quota_rule=none
";

#[test]
fn rules_from_extra_fields() {
    let db = UserDb::parse(FILE, "test");
    let default = QuotaLimits { storage_kib: Some(5), messages: Some(6), mailboxes: Some(7) };
    let alice = db.lookup("alice").unwrap().quota().over(default);
    assert_eq!(
        alice,
        QuotaLimits { storage_kib: Some(1 << 20), messages: Some(10_000), mailboxes: Some(7) }
    );
    // A rule skua does not support is ignored (and logged): the default applies.
    assert_eq!(db.lookup("bob").unwrap().quota().over(default), default);
    assert_eq!(db.lookup("carol").unwrap().quota().over(default), default);
    let dave = db.lookup("dave").unwrap().quota().over(default);
    assert_eq!(dave, QuotaLimits { storage_kib: None, messages: None, mailboxes: Some(7) });
    assert!(db.lookup("bob").unwrap().verify("b"), "the rest of the line still works");
}
