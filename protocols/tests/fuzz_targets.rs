//! The protocol fuzz targets (`protocols/fuzz/targets/`) on the stable toolchain: each runs
//! as a proptest property over any bytes, mutated valid inputs and strung grammar pieces. A
//! plain `cargo test` runs a smoke of a few thousand cases per target from a fixed seed; the
//! long mode and its environment variables are described in `protocols/fuzz/README.md`.

#[path = "../fuzz/runner.rs"]
mod runner;

#[path = "../fuzz/targets/imap_frame.rs"]
mod imap_frame;
#[path = "../fuzz/targets/imap_parse.rs"]
mod imap_parse;
#[path = "../fuzz/targets/imap_utf7.rs"]
mod imap_utf7;
#[path = "../fuzz/targets/lmtp_command.rs"]
mod lmtp_command;
#[path = "../fuzz/targets/lmtp_session.rs"]
mod lmtp_session;
#[path = "../fuzz/targets/mime.rs"]
mod mime;

use runner::Corpus;

const IMAP_COMMANDS: Corpus = Corpus {
    seeds: &[
        b"a LOGIN alice \"pass word\"",
        b"a LOGIN {5+}\r\nalice {3}\r\npwd",
        b"b SELECT INBOX (CONDSTORE)",
        b"b EXAMINE \"Sent &AOk-t&AOk-\"",
        b"c CREATE a/b",
        b"c RENAME old \"new name\"",
        b"d FETCH 1:*,3 (FLAGS BODY.PEEK[1.2.HEADER.FIELDS (SUBJECT FROM)]<0.100> ENVELOPE)",
        b"d UID FETCH 1:10 (UID MODSEQ) (CHANGEDSINCE 12 VANISHED)",
        b"e UID STORE 1:5 +FLAGS.SILENT (\\Seen kw) ",
        b"e STORE 2 (UNCHANGEDSINCE 5) FLAGS (\\Deleted)",
        b"f SEARCH CHARSET UTF-8 OR (FROM x SINCE 1-Jan-2020) NOT (SEEN LARGER 100) TEXT {3}\r\nabc",
        b"f UID SEARCH RETURN (MIN COUNT) MODSEQ 5 HEADER Subject hi",
        b"g APPEND INBOX (\\Seen) \"17-Jul-1996 02:44:25 -0700\" {5+}\r\nhello",
        b"g APPEND INBOX ~{3}\r\na\0b",
        b"h LIST (SUBSCRIBED) \"\" (\"*\" \"%a\") RETURN (SUBSCRIBED)",
        b"h STATUS INBOX (MESSAGES UIDNEXT HIGHESTMODSEQ SIZE)",
        b"i AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==",
        b"i ENABLE QRESYNC IMAP4rev2",
        b"j SELECT INBOX (QRESYNC (1 2 1:5 (1:3 1:3)))",
        b"k UID MOVE 1:* Trash",
        b"k ID (\"name\" \"x\")",
    ],
    pieces: &[
        b" ", b"(", b")", b"\"", b"\\", b"{", b"}", b"{3}\r\n", b"{0+}\r\n", b"~{1}\r\n", b"*",
        b"%", b"1:*", b"4294967295", b"4294967296", b"0", b"NIL", b"BODY[", b"]", b"<", b">",
        b".", b"HEADER.FIELDS", b"&", b"-", b"&AOk-", b"&-", b"\r\n", b"\0", b"\xff", b"UID ",
        b"OR ", b"NOT ", b"(CONDSTORE)", b"MIME", b"TEXT", b"1-Jan-2020", b"+FLAGS",
    ],
};

const FRAMES: Corpus = Corpus {
    seeds: &[
        b"\x05a NOOP\r\nb LOGIN {3}\r\nabc {2+}\r\nxy\r\nc APPEND INBOX {20}\r\n01234567890123456789\r\n",
        b"\x81a NOOP\nb FETCH 1 BODY[]\r\nc APPEND x {300}\r\n",
        b"\x01a LOGIN {99999999999999999999}\r\n",
        b"\x40a SEARCH TEXT {5}\r\nhello TEXT {5}\r\nhello TEXT {5}\r\nhello TEXT {5}\r\nhello TEXT {5}\r\nhello\r\n",
        b"\x03DONE\r\n*\r\nabc\r\n",
    ],
    pieces: &[
        b"\r\n", b"\n", b"\r", b"{1}\r\n", b"{40}\r\n", b"{5+}\r\n", b"~{2}\r\n", b"{300}", b"a ",
        b"APPEND x ", b"{", b"}", b"+", b"0123456789abcdef0123456789abcdef",
    ],
};

const UTF7: Corpus = Corpus {
    seeds: &[b"INBOX", b"&AOk-t&AOk-", b"&-", b"&Jjo-!", b"\xc3\xa9t\xc3\xa9", b"\xf0\x9f\x93\xa7"],
    pieces: &[
        b"&",
        b"-",
        b"&-",
        b"A",
        b"+",
        b",",
        b"/",
        b"\xc3\xa9",
        b"\xe2\x82\xac",
        b"\xed\xa0\x80",
    ],
};

const LMTP_COMMANDS: Corpus = Corpus {
    seeds: &[
        b"LHLO mx.example.org",
        b"MAIL FROM:<a@b.c> SIZE=100 BODY=8BITMIME",
        b"MAIL FROM:<>",
        b"MAIL FROM: <\"x y>\"@b>",
        b"RCPT TO:<@route,@r2:user@example.com>",
        b"RCPT TO:<Postmaster>",
        b"BDAT 100 LAST",
        b"DATA",
        b"NOOP hello",
        b"VRFY x",
    ],
    pieces: &[
        b"<",
        b">",
        b"\"",
        b"\\",
        b"@",
        b":",
        b",",
        b" ",
        b"=",
        b"SIZE=",
        b"BODY=",
        b"LAST",
        b"\t",
        b"\0",
        b"\xc3\xa9",
    ],
};

const LMTP_SESSIONS: Corpus = Corpus {
    seeds: &[
        b"\x10Subject: x\n\n.body\n..\n.\n",
        b"\x03LHLO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<x@d>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
        b"\x7fLHLO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 4\r\nabcdBDAT 0 LAST\r\nRSET\r\n",
        b"\x00\r\n.\r\n.\r\n",
    ],
    pieces: &[
        b"\r\n", b"\n", b".", b"..", b"\r\n.\r\n", b"LHLO a\r\n", b"MAIL FROM:<a@b>\r\n",
        b"RCPT TO:<c@d>\r\n", b"RCPT TO:<x@d>\r\n", b"DATA\r\n", b"BDAT 3\r\n", b"BDAT 2 LAST\r\n",
        b"RSET\r\n", b"QUIT\r\n", b"NOOP\r\n",
    ],
};

const MESSAGES: Corpus = Corpus {
    seeds: &[
        b"Subject: x\r\nFrom: \"A\" <a@b>, c@d\r\nTo: g: e@f, h@i;\r\n\r\nbody\r\n",
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\npre\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\none\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: =?utf-8?q?inner?=\r\n\r\ntwo\r\n--b--\r\nepilogue\r\n",
        b"Content-Type: multipart/alternative; boundary=\"XX\"\r\n\r\n--XX\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD\r\n--XX\r\nContent-Type: text/html; charset=iso-2022-jp\r\nContent-Disposition: attachment; filename*=utf-8''%e2%82%ac.txt\r\n\r\n\x1b$B\r\n--XX--\r\n",
        b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\nMessage-Id: <a@b>\r\nIn-Reply-To: <c@d>\r\nContent-Language: en, fr\r\n\r\n",
        b"no header at all",
    ],
    pieces: &[
        b"\r\n", b"\n", b"\r\n\r\n", b"--", b"--b", b"--b--", b"--XX", b" ", b"\t", b";", b"=",
        b"\"", b"(", b")", b"<", b">", b"@", b",", b":", b"=?utf-8?b?", b"?=", b"Content-Type: ",
        b"multipart/mixed; boundary=b", b"message/rfc822", b"Content-Transfer-Encoding: ",
        b"base64", b"quoted-printable", b"=E2=82", b"charset=utf-7", b"+AGEA-", b"\\",
        b"Subject: ", b"From: ", b"To: ", b"Date: ",
    ],
};

#[test]
fn imap_parse() {
    assert!(runner::run("imap_parse", imap_parse::target, &IMAP_COMMANDS) > 0);
}

#[test]
fn imap_frame() {
    assert!(runner::run("imap_frame", imap_frame::target, &FRAMES) > 0);
}

#[test]
fn imap_utf7() {
    assert!(runner::run("imap_utf7", imap_utf7::target, &UTF7) > 0);
}

#[test]
fn lmtp_command() {
    assert!(runner::run("lmtp_command", lmtp_command::target, &LMTP_COMMANDS) > 0);
}

#[test]
fn lmtp_session() {
    assert!(runner::run("lmtp_session", lmtp_session::target, &LMTP_SESSIONS) > 0);
}

#[test]
fn mime() {
    assert!(runner::run("mime", mime::target, &MESSAGES) > 0);
}
