//! No input makes a session panic or loop: arbitrary bytes, and arbitrary sequences of
//! command-like fragments, before and after login, against a real store.

mod imap_support;

use imap_support::{Client, World};
use proptest::prelude::*;

/// Fragments that reach deep into the grammar and the command code.
const FRAGMENTS: &[&str] = &[
    "a SELECT INBOX\r\n",
    "b FETCH 1:* (FLAGS BODY[] BODY.PEEK[1.MIME]<0.5> ENVELOPE)\r\n",
    "c STORE 1 +FLAGS (\\Deleted kw)\r\n",
    "d EXPUNGE\r\n",
    "e APPEND INBOX {5+}\r\nhello\r\n",
    "f SEARCH OR FROM x NOT SEEN\r\n",
    "g UID MOVE 1:* INBOX\r\n",
    "h IDLE\r\n",
    "DONE\r\n",
    "i CREATE a/b\r\n",
    "j LIST \"\" *\r\n",
    "k CLOSE\r\n",
    "l COPY 1 a/b\r\n",
    "{3}\r\n",
    "m AUTHENTICATE PLAIN\r\n",
    "*\r\n",
    "n UID EXPUNGE 1\r\n",
    "o ENABLE IMAP4rev2\r\n",
    "p STATUS INBOX (MESSAGES SIZE)\r\n",
    "q UNSELECT\r\n",
    "r FETCH 1 BODY[2.HEADER]\r\n",
];

fn drive(chunks: &[Vec<u8>], login: bool) {
    let mut world = World::new();
    let mut client = Client::new();
    if login {
        client.login(&mut world);
    }
    for chunk in chunks {
        if client.closed {
            break;
        }
        client.send(&mut world, chunk);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_bytes(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..16), login in any::<bool>()) {
        drive(&chunks, login);
    }

    #[test]
    fn command_fragments(picks in prop::collection::vec(0..FRAGMENTS.len(), 0..24)) {
        let chunks: Vec<Vec<u8>> = picks.iter().map(|&i| FRAGMENTS[i].as_bytes().to_vec()).collect();
        drive(&chunks, true);
    }
}
