//! SEARCH keys, each against a small mailbox whose answer is known: flags, keywords, dates
//! (internal and sent), sizes, addresses, headers, body and text, sets, NOT/OR/AND, and the
//! ESEARCH and IMAP4rev2 reply forms.

mod imap_support;

use imap_support::{Client, World, tagged};

/// (flags, internal date, raw message)
const MESSAGES: [(&str, &str, &str); 4] = [
    (
        "(\\Seen \\Answered)",
        "01-Feb-2024 10:00:00 +0000",
        "From: Ann <ann@example.org>\r\nTo: bob@example.org\r\nDate: Wed, 31 Jan 2024 23:00:00 +0000\r\nSubject: Lunch plans\r\n\r\npizza at noon\r\n",
    ),
    (
        "(\\Flagged $Work)",
        "05-Mar-2024 10:00:00 +0000",
        "From: Bob <bob@example.org>\r\nTo: ann@example.org\r\nCc: carol@example.org\r\nDate: Tue, 5 Mar 2024 09:00:00 +0000\r\nSubject: Quarterly report\r\nX-Priority: 1\r\n\r\nnumbers attached\r\n",
    ),
    (
        "(\\Deleted \\Draft)",
        "10-Mar-2024 10:00:00 +0000",
        "From: Carol <carol@example.org>\r\nBcc: dave@example.org\r\nSubject: draft\r\n\r\nunfinished thoughts about pizza\r\n",
    ),
    (
        "()",
        "11-Mar-2024 10:00:00 +0000",
        "From: Dave <dave@example.org>\r\nSubject: =?UTF-8?Q?caf=C3=A9?=\r\n\r\nshort\r\n",
    ),
];

fn setup() -> (World, Client) {
    let mut world = World::new();
    let mut client = Client::new();
    client.login(&mut world);
    for (flags, date, raw) in MESSAGES {
        let mut command = format!("a APPEND INBOX {flags} \"{date}\" {{{}+}}\r\n", raw.len());
        command.push_str(raw);
        command.push_str("\r\n");
        client.lines.clear();
        client.send(&mut world, command.as_bytes());
        tagged(&client.drain(), "a OK [APPENDUID");
    }
    tagged(&client.command(&mut world, "s SELECT INBOX"), "s OK");
    (world, client)
}

/// Runs `SEARCH <keys>` and returns the numbers of the `* SEARCH` reply.
fn search(client: &mut Client, world: &mut World, keys: &str) -> Vec<u32> {
    let reply = client.command(world, &format!("q SEARCH {keys}"));
    assert!(reply.last().is_some_and(|l| l.starts_with("q OK")), "SEARCH {keys}: {reply:?}");
    let line = reply.iter().find(|l| l.starts_with("* SEARCH")).expect("SEARCH reply");
    line["* SEARCH".len()..].split_whitespace().map(|n| n.parse().unwrap()).collect()
}

#[test]
fn every_key() {
    let (mut world, mut client) = setup();
    let cases: &[(&str, &[u32])] = &[
        ("ALL", &[1, 2, 3, 4]),
        ("ANSWERED", &[1]),
        ("UNANSWERED", &[2, 3, 4]),
        ("DELETED", &[3]),
        ("UNDELETED", &[1, 2, 4]),
        ("DRAFT", &[3]),
        ("UNDRAFT", &[1, 2, 4]),
        ("FLAGGED", &[2]),
        ("UNFLAGGED", &[1, 3, 4]),
        ("SEEN", &[1]),
        ("UNSEEN", &[2, 3, 4]),
        // Appended before this session's SELECT, which claimed them all as its \Recent: NEW is
        // RECENT UNSEEN, OLD is NOT RECENT (RFC 3501 §6.4.4).
        ("NEW", &[2, 3, 4]),
        ("OLD", &[]),
        ("RECENT", &[1, 2, 3, 4]),
        ("KEYWORD $Work", &[2]),
        ("UNKEYWORD $Work", &[1, 3, 4]),
        ("KEYWORD $Nothing", &[]),
        ("FROM ann", &[1]),
        ("TO ann", &[2]),
        ("CC carol", &[2]),
        ("BCC dave", &[3]),
        ("SUBJECT REPORT", &[2]),
        ("CHARSET UTF-8 SUBJECT {5+}\r\ncafé", &[4]),
        ("HEADER X-Priority 1", &[2]),
        ("HEADER X-Priority \"\"", &[2]),
        ("BODY pizza", &[1, 3]),
        ("TEXT carol", &[2, 3]),
        ("BEFORE 5-Mar-2024", &[1]),
        ("ON 5-Mar-2024", &[2]),
        ("SINCE 10-Mar-2024", &[3, 4]),
        ("SENTBEFORE 1-Feb-2024", &[1]),
        ("SENTON 5-Mar-2024", &[2]),
        ("SENTSINCE 6-Mar-2024", &[3, 4]),
        ("SMALLER 100", &[4]),
        ("LARGER 150", &[2]),
        ("2:3", &[2, 3]),
        ("UID 1,4", &[1, 4]),
        ("NOT SEEN", &[2, 3, 4]),
        ("OR ANSWERED FLAGGED", &[1, 2]),
        ("(FROM bob SUBJECT report) UNSEEN", &[2]),
        ("NOT (OR SEEN DELETED)", &[2, 4]),
        ("*", &[4]),
    ];
    let mut failures = Vec::new();
    for (keys, expected) in cases {
        let got = search(&mut client, &mut world, keys);
        if got != *expected {
            failures.push(format!("SEARCH {keys}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn uid_search_and_esearch_forms() {
    let (mut world, mut client) = setup();
    let reply = client.command(&mut world, "u UID SEARCH UNSEEN");
    assert_eq!(reply[0], "* SEARCH 2 3 4");
    let reply = client.command(&mut world, "e SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN");
    assert_eq!(reply[0], "* ESEARCH (TAG \"e\") MIN 2 MAX 4 COUNT 3 ALL 2:4");
    let reply = client.command(&mut world, "e2 UID SEARCH RETURN (COUNT) SEEN");
    assert_eq!(reply[0], "* ESEARCH (TAG \"e2\") UID COUNT 1");
    tagged(&client.command(&mut world, "v ENABLE IMAP4rev2"), "v OK");
    let reply = client.command(&mut world, "r SEARCH OR SEEN DELETED");
    assert_eq!(reply[0], "* ESEARCH (TAG \"r\") ALL 1,3");
}

#[test]
fn search_sees_no_expunge_but_uid_search_may() {
    let (mut world, mut client) = setup();
    let mut other = Client::new();
    other.login(&mut world);
    tagged(&other.command(&mut world, "s SELECT INBOX"), "s OK");
    tagged(&other.command(&mut world, "x EXPUNGE"), "x OK");
    // Message 3 is gone from the store, but this session's numbers must not move during
    // SEARCH: no EXPUNGE, and the gone message does not match.
    let reply = client.command(&mut world, "q SEARCH ALL");
    assert_eq!(reply, vec!["* SEARCH 1 2 4".to_owned(), "q OK SEARCH completed".to_owned()]);
    // UID SEARCH may report the expunge (its results are UIDs, which do not move).
    let reply = client.command(&mut world, "u UID SEARCH ALL");
    assert!(reply.contains(&"* 3 EXPUNGE".to_owned()), "{reply:?}");
    assert!(reply.contains(&"* SEARCH 1 2 4".to_owned()), "{reply:?}");
}
