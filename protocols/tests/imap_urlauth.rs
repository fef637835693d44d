//! URLAUTH (RFC 4467) round trips, which need the random token GENURLAUTH hands out (the
//! transcript `37_urlauth.txt` covers the rest): a URL fetches its part, across a restart;
//! RESETKEY revokes it; `;EXPIRE=` in the past, a changed token or URL, an access identifier
//! the session does not hold and another user's URL all answer NIL alike; CATENATE takes an
//! authorized URL and refuses a tampered one.

mod imap_support;

use imap_support::{Client, World, tagged};

const MESSAGE: &str = "From: Fred <fred@example.org>\r\n\
Subject: war and peace\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain\r\n\
\r\n\
Hello.\r\n\
--b1\r\n\
Content-Type: text/plain\r\n\
\r\n\
Si vis pacem, para bellum.\r\n\
\r\n\
--b1--\r\n";

fn append(client: &mut Client, world: &mut World, mailbox: &str) {
    let mut command = format!("ap APPEND {mailbox} {{{}+}}\r\n", MESSAGE.len()).into_bytes();
    command.extend_from_slice(MESSAGE.as_bytes());
    command.extend_from_slice(b"\r\n");
    client.send(world, &command);
    tagged(&client.drain(), "ap OK");
}

/// GENURLAUTH of one rump; the authorized URL.
fn authorize(client: &mut Client, world: &mut World, rump: &str) -> String {
    let reply = client.command(world, &format!("g GENURLAUTH \"{rump}\" INTERNAL"));
    tagged(&reply, "g OK GENURLAUTH completed");
    let line = &reply[0];
    let full = line
        .strip_prefix("* GENURLAUTH \"")
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{reply:?}"));
    let token = full.strip_prefix(&format!("{rump}:internal:")).expect("rump, then the token");
    assert_eq!(token.len(), 66, "version byte and an HMAC-SHA256 tag in hex");
    full.to_owned()
}

/// URLFETCH of one URL: the data, or `None` for NIL.
fn fetch(client: &mut Client, world: &mut World, url: &str) -> Option<String> {
    let reply = client.command(world, &format!("f URLFETCH \"{url}\""));
    tagged(&reply, "f OK URLFETCH completed");
    let head = format!("* URLFETCH \"{url}\" ");
    let first = reply[0].strip_prefix(&head).unwrap_or_else(|| panic!("{reply:?}"));
    if first == "NIL" {
        assert_eq!(reply.len(), 2, "{reply:?}");
        return None;
    }
    let len: usize =
        first.strip_prefix('{').and_then(|l| l.strip_suffix('}')).unwrap().parse().unwrap();
    let body = reply[1..reply.len() - 1].join("\r\n");
    assert_eq!(body.len(), len, "{reply:?}");
    Some(body)
}

const PART: &str = "Si vis pacem, para bellum.\r\n";

#[test]
fn urls_fetch_across_a_restart_until_their_key_is_reset() {
    let mut world = World::new();
    let mut client = Client::new();
    client.login(&mut world);
    append(&mut client, &mut world, "INBOX");
    tagged(&client.command(&mut world, "c CREATE Drafts"), "c OK");
    append(&mut client, &mut world, "Drafts");
    let inbox = authorize(
        &mut client,
        &mut world,
        "imap://alice@test.example/INBOX/;uid=1/;section=2;urlauth=submit+alice",
    );
    let drafts = authorize(
        &mut client,
        &mut world,
        "imap://alice@test.example/Drafts/;UID=1;URLAUTH=authuser",
    );
    // RFC 4467's example data, fetched in the Authenticated state.
    assert_eq!(fetch(&mut client, &mut world, &inbox).as_deref(), Some(PART));
    assert_eq!(fetch(&mut client, &mut world, &drafts).as_deref(), Some(MESSAGE));

    // The keys are on disk: a restart keeps every URL working.
    world.reopen();
    let mut client = Client::new();
    client.login(&mut world);
    tagged(&client.command(&mut world, "s SELECT Drafts"), "s OK");
    assert_eq!(
        fetch(&mut client, &mut world, &inbox).as_deref(),
        Some(PART),
        "any mailbox selected"
    );

    // RESETKEY INBOX revokes INBOX's URLs only; a new one works.
    tagged(&client.command(&mut world, "r RESETKEY INBOX"), "r OK [URLMECH INTERNAL]");
    assert_eq!(fetch(&mut client, &mut world, &inbox), None);
    assert_eq!(fetch(&mut client, &mut world, &drafts).as_deref(), Some(MESSAGE));
    let again = authorize(
        &mut client,
        &mut world,
        "imap://alice@test.example/INBOX/;uid=1/;section=2;urlauth=submit+alice",
    );
    assert_ne!(again, inbox);
    assert_eq!(fetch(&mut client, &mut world, &again).as_deref(), Some(PART));
    // RESETKEY revokes them all, for good: also after a restart.
    tagged(&client.command(&mut world, "r RESETKEY"), "r OK");
    world.reopen();
    let mut client = Client::new();
    client.login(&mut world);
    for url in [&inbox, &drafts, &again] {
        assert_eq!(fetch(&mut client, &mut world, url), None, "{url}");
    }
}

#[test]
fn every_url_not_served_answers_nil_alike() {
    let mut world = World::new();
    let mut client = Client::new();
    client.login(&mut world);
    append(&mut client, &mut world, "INBOX");
    let base = "imap://alice@test.example/INBOX/;UID=1/;SECTION=2";
    let past = authorize(
        &mut client,
        &mut world,
        &format!("{base};EXPIRE=2001-01-01T00:00:00Z;URLAUTH=anonymous"),
    );
    let future = authorize(
        &mut client,
        &mut world,
        &format!("{base};EXPIRE=2099-01-01T00:00:00+02:00;URLAUTH=anonymous"),
    );
    assert_eq!(fetch(&mut client, &mut world, &past), None, "expired");
    assert_eq!(fetch(&mut client, &mut world, &future).as_deref(), Some(PART));
    for access in ["anonymous", "authuser", "user+alice", "submit+alice", "user+ALICE"] {
        let url = authorize(&mut client, &mut world, &format!("{base};URLAUTH={access}"));
        assert_eq!(fetch(&mut client, &mut world, &url).as_deref(), Some(PART), "{access}");
    }
    for access in ["user+bob", "submit+bob"] {
        let url = authorize(&mut client, &mut world, &format!("{base};URLAUTH={access}"));
        assert_eq!(fetch(&mut client, &mut world, &url), None, "{access} is not this session");
    }
    let good = authorize(&mut client, &mut world, &format!("{base};URLAUTH=anonymous"));
    // The token in upper case still checks (HEXDIG); one changed digit does not.
    let (rump, token) = good.rsplit_once(':').unwrap();
    assert_eq!(
        fetch(&mut client, &mut world, &format!("{rump}:{}", token.to_uppercase())).as_deref(),
        Some(PART)
    );
    let last = token.chars().last().unwrap();
    let flipped =
        format!("{rump}:{}{}", &token[..token.len() - 1], if last == '0' { '1' } else { '0' });
    assert_eq!(fetch(&mut client, &mut world, &flipped), None, "changed token");
    // The token signs the whole rump: another part, expiry or access with it is refused.
    for (from, to) in [("SECTION=2", "SECTION=1"), ("UID=1", "UID=2"), ("anonymous", "authuser")] {
        assert_eq!(fetch(&mut client, &mut world, &good.replacen(from, to, 1)), None, "{to}");
    }
    // Another user's URL: that store is on its own shard (issue 10), so NIL; so is a URL
    // for another server.
    for (from, to) in [("alice@", "bob@"), ("test.example", "example.com")] {
        assert_eq!(fetch(&mut client, &mut world, &good.replacen(from, to, 1)), None, "{to}");
    }
    // A URL of an expunged message, and of a deleted and re-created mailbox.
    tagged(&client.command(&mut world, "c CREATE Box"), "c OK");
    append(&mut client, &mut world, "Box");
    let boxed = authorize(
        &mut client,
        &mut world,
        "imap://alice@test.example/Box/;UID=1;URLAUTH=anonymous",
    );
    assert_eq!(fetch(&mut client, &mut world, &boxed).as_deref(), Some(MESSAGE));
    tagged(&client.command(&mut world, "d DELETE Box"), "d OK");
    tagged(&client.command(&mut world, "c CREATE Box"), "c OK");
    append(&mut client, &mut world, "Box");
    assert_eq!(fetch(&mut client, &mut world, &boxed), None, "a new mailbox has new keys");
}

#[test]
fn catenate_takes_an_authorized_url_and_refuses_a_tampered_one() {
    let mut world = World::new();
    let mut client = Client::new();
    client.login(&mut world);
    append(&mut client, &mut world, "INBOX");
    let url = authorize(
        &mut client,
        &mut world,
        "imap://alice@test.example/INBOX/;UID=1/;SECTION=2;URLAUTH=user+alice",
    );
    let reply = client.command(&mut world, &format!("a APPEND INBOX CATENATE (URL \"{url}\")"));
    tagged(&reply, "a OK [APPENDUID");
    let reply = client.command(&mut world, "s EXAMINE INBOX");
    tagged(&reply, "s OK");
    let reply = client.command(&mut world, "f FETCH 2 BODY[]");
    assert_eq!(reply[0], format!("* 2 FETCH (BODY[] {{{}}}", PART.len()));
    let tampered = url.replacen("UID=1", "UID=2", 1);
    let reply =
        client.command(&mut world, &format!("b APPEND INBOX CATENATE (URL \"{tampered}\")"));
    assert_eq!(reply, [format!("b NO [BADURL {tampered}] CATENATE URL cannot be used")]);
}

/// A rump so long that the authorized URL would pass the longest URL accepted: GENURLAUTH
/// refuses it rather than hand out a URL that URLFETCH could never fetch.
#[test]
fn genurlauth_never_makes_a_url_too_long_to_fetch() {
    let mut world = World::new();
    let mut client = Client::new();
    client.login(&mut world);
    append(&mut client, &mut world, "INBOX");
    let rump_of = |fields: usize| {
        let names: Vec<String> = (0..fields).map(|i| format!("X-{i:04}")).collect();
        format!(
            "imap://alice@test.example/INBOX/;UID=1/;SECTION=HEADER.FIELDS%20({});URLAUTH=anonymous",
            names.join("%20")
        )
    };
    // 4,096 bytes (the URL limit) fit a rump of up to 4,096 - 76.
    let fits = (1..600).rev().map(rump_of).find(|rump| rump.len() + 76 <= 4096).unwrap();
    // Too long for a quoted string: the URLs travel as literals both ways.
    let reply = client.command(&mut world, &format!("g GENURLAUTH \"{fits}\" INTERNAL"));
    assert_eq!(reply[0], format!("* GENURLAUTH {{{}}}", fits.len() + 76));
    let full = reply[1].clone();
    assert!(full.starts_with(&fits), "{reply:?}");
    tagged(&reply, "g OK");
    client.send(&mut world, format!("f URLFETCH {{{}+}}\r\n{full}\r\n", full.len()).as_bytes());
    let reply = client.drain();
    // No such fields: the header part is just its blank line. Fetched, not NIL.
    assert!(reply[1] == format!("{full} {{2}}"), "{}", &reply[1][reply[1].len() - 8..]);
    tagged(&reply, "f OK URLFETCH completed");
    let over = (1..600).map(rump_of).find(|rump| rump.len() + 76 > 4096).unwrap();
    assert!(over.len() <= 4096, "a URL the parser accepts on its own");
    let reply = client.command(&mut world, &format!("g GENURLAUTH \"{over}\" INTERNAL"));
    assert_eq!(reply, ["g BAD GENURLAUTH: the URL cannot be authorized here"]);
}
