//! QUOTA (RFC 9208) beyond the transcript (`transcripts/40_quota.txt`): an administrator's
//! SETQUOTA and the `* QUOTA` lines it and GETQUOTA/GETQUOTAROOT give, `NO [OVERQUOTA]` for
//! APPEND, COPY, MOVE and CREATE before anything is written, EXPUNGE freeing quota at once,
//! limits the shard gave (config / passwd-file) enforced for a user who is no administrator,
//! and SETQUOTA'd limits read back after a restart.

mod imap_support;

use imap_support::{Client, World, tagged};
use skua_core::store::QuotaLimits;
use skua_protocols::imap::session::ImapConfig;

fn admin() -> Client {
    let mut config = ImapConfig::new("test.example");
    config.admins = vec!["ALICE".into()];
    Client::with_config(config)
}

fn append(client: &mut Client, world: &mut World, tag: &str, size: usize) -> Vec<String> {
    let body = "x".repeat(size);
    client.command(world, &format!("{tag} APPEND INBOX {{{size}+}}\r\n{body}"))
}

#[test]
fn administrator_sets_limits_and_every_path_is_refused_past_them() {
    let mut world = World::new();
    let mut client = admin();
    client.login(&mut world);
    let reply = client.command(&mut world, "s SETQUOTA \"\" (STORAGE 1 MESSAGE 2 MAILBOX 2)");
    assert_eq!(
        reply,
        ["* QUOTA \"\" (STORAGE 0 1 MESSAGE 0 2 MAILBOX 1 2)", "s OK SETQUOTA completed"]
    );
    tagged(&append(&mut client, &mut world, "a1", 1000), "a1 OK [APPENDUID");
    let reply = client.command(&mut world, "g GETQUOTAROOT INBOX");
    assert_eq!(
        reply,
        [
            "* QUOTAROOT INBOX \"\"",
            "* QUOTA \"\" (STORAGE 1 1 MESSAGE 1 2 MAILBOX 1 2)",
            "g OK GETQUOTAROOT completed"
        ]
    );
    // 1000 + 25 bytes pass 1024: refused, and nothing was stored.
    let reply = append(&mut client, &mut world, "a2", 25);
    assert_eq!(reply, ["a2 NO [OVERQUOTA] Quota exceeded: STORAGE"]);
    tagged(&append(&mut client, &mut world, "a3", 23), "a3 OK [APPENDUID");
    // MESSAGE is now full.
    let reply = append(&mut client, &mut world, "a4", 1);
    assert_eq!(reply, ["a4 NO [OVERQUOTA] Quota exceeded: MESSAGE"]);
    // MAILBOX: INBOX and one more.
    tagged(&client.command(&mut world, "c1 CREATE Other"), "c1 OK");
    let reply = client.command(&mut world, "c2 CREATE Third");
    assert_eq!(reply, ["c2 NO [OVERQUOTA] Quota exceeded: MAILBOX"]);
    // COPY and MOVE need room for the copies (MOVE copies first).
    client.command(&mut world, "x SELECT INBOX");
    let reply = client.command(&mut world, "m1 COPY 1 Other");
    assert_eq!(reply, ["m1 NO [OVERQUOTA] Quota exceeded: STORAGE"]);
    let reply = client.command(&mut world, "m2 MOVE 2 Other");
    tagged(&reply, "m2 NO [OVERQUOTA]");
    let reply = client.command(&mut world, "st STATUS Other (MESSAGES)");
    assert_eq!(reply[0], "* STATUS Other (MESSAGES 0)");
    // EXPUNGE frees at once.
    client.command(&mut world, "f STORE 1 +FLAGS.SILENT (\\Deleted)");
    tagged(&client.command(&mut world, "e EXPUNGE"), "e OK");
    let reply = client.command(&mut world, "q GETQUOTA \"\"");
    assert_eq!(
        reply,
        ["* QUOTA \"\" (STORAGE 1 1 MESSAGE 1 2 MAILBOX 2 2)", "q OK GETQUOTA completed"]
    );
    tagged(&client.command(&mut world, "m3 COPY 1 Other"), "m3 OK");
    world.store.check_invariants();
}

#[test]
fn setquota_refusals_and_clearing() {
    let mut world = World::new();
    let mut client = admin();
    client.login(&mut world);
    let reply = client.command(&mut world, "a SETQUOTA \"user/bob\" (STORAGE 1)");
    tagged(&reply, "a NO [NONEXISTENT]");
    let reply = client.command(&mut world, "b SETQUOTA \"\" (ANNOTATION-STORAGE 1)");
    assert_eq!(reply, ["b NO Unsupported quota resource ANNOTATION-STORAGE"]);
    let reply = client.command(&mut world, "c SETQUOTA \"\" (STORAGE 1 storage 2)");
    assert_eq!(reply, ["c BAD Resource STORAGE named twice"]);
    tagged(&client.command(&mut world, "d SETQUOTA \"\" (MESSAGE 5)"), "d OK");
    // An empty list takes every limit away: the root is gone.
    let reply = client.command(&mut world, "e SETQUOTA \"\" ()");
    assert_eq!(reply, ["e OK SETQUOTA completed"]);
    let reply = client.command(&mut world, "f GETQUOTAROOT INBOX");
    assert_eq!(reply, ["* QUOTAROOT INBOX", "f OK GETQUOTAROOT completed"]);
    // The stored empty set wins over the shard's limits too.
    world.store.set_default_quota(QuotaLimits { messages: Some(0), ..QuotaLimits::UNLIMITED });
    tagged(&append(&mut client, &mut world, "g", 10), "g OK");
}

#[test]
fn limits_from_the_shard_bind_a_user_who_is_not_an_administrator() {
    let mut world = World::new();
    world.store.set_default_quota(QuotaLimits { messages: Some(1), ..QuotaLimits::UNLIMITED });
    let mut client = Client::new();
    client.login(&mut world);
    tagged(&append(&mut client, &mut world, "a", 10), "a OK");
    let reply = append(&mut client, &mut world, "b", 10);
    assert_eq!(reply, ["b NO [OVERQUOTA] Quota exceeded: MESSAGE"]);
    let reply = client.command(&mut world, "c GETQUOTA \"\"");
    assert_eq!(reply, ["* QUOTA \"\" (MESSAGE 1 1)", "c OK GETQUOTA completed"]);
    let reply = client.command(&mut world, "d SETQUOTA \"\" (MESSAGE 10)");
    assert_eq!(reply, ["d NO [NOPERM] Only administrators may set quotas"]);
    // After UNAUTHENTICATE and a login as an administrator, SETQUOTA works.
    let mut client = admin();
    client.login(&mut world);
    tagged(&client.command(&mut world, "e SETQUOTA \"\" (MESSAGE 10)"), "e OK");
    tagged(&client.command(&mut world, "f UNAUTHENTICATE"), "f OK");
    let reply = client.command(&mut world, "g LOGIN bob secret");
    tagged(&reply, "g OK");
    let reply = client.command(&mut world, "h SETQUOTA \"\" (MESSAGE 10)");
    tagged(&reply, "h NO [NOPERM]");
}

#[test]
fn setquota_waits_for_durability_and_survives_a_restart() {
    let mut world = World::new();
    let mut client = admin();
    client.login(&mut world);
    world.flush();
    client.command(&mut world, "a SETQUOTA \"\" (STORAGE 7)");
    // The runner flushes before a reply that carries a durability ticket: nothing is left.
    assert!(!world.flush(), "the reply waited for a flush of the new limits");
    world.reopen();
    let mut client = Client::new();
    client.login(&mut world);
    let reply = client.command(&mut world, "b GETQUOTA \"\"");
    assert_eq!(reply, ["* QUOTA \"\" (STORAGE 0 7)", "b OK GETQUOTA completed"]);
}
