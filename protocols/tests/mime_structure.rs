//! ENVELOPE, BODYSTRUCTURE and BODY text of `mime::cache::build`, compared with strings
//! worked out by hand from the RFC 9051 §7.5.2 grammar (and its examples).

mod mime_fixtures;

use mime_fixtures::{ALTERNATIVE, MIXED, SIMPLE};
use skua_protocols::mime::cache::{CacheView, build};

fn view_text(message: &[u8]) -> (String, String, String) {
    let blob = build(message);
    let view = CacheView::parse(&blob).expect("own blob parses");
    let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).expect("utf-8");
    (text(view.envelope()), text(view.body_structure()), text(view.body()))
}

#[test]
fn simple_text_plain_matches_the_rfc_example() {
    let (envelope, structure, body) = view_text(SIMPLE);
    assert_eq!(
        envelope,
        "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev2 WG mtg summary and minutes\" \
((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
((NIL NIL \"imap\" \"cac.washington.edu\")) \
((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) \
NIL NIL \"<B27397-0100000@cac.washington.edu>\")"
    );
    assert_eq!(
        structure,
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 26 2 NIL NIL NIL NIL)"
    );
    assert_eq!(body, "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 26 2)");
    let blob = build(SIMPLE);
    let view = CacheView::parse(&blob).expect("parses");
    // 1996-07-17T09:23:25Z; the day as written is 1996-07-17 = day 9694.
    assert_eq!(view.sent_date(), Some(837_595_405));
    assert_eq!(view.sent_zone_minutes(), Some(-420));
    assert_eq!(view.sent_day(), Some(9694));
    assert_eq!(view.header_len() as usize, SIMPLE.len() - 26);
    assert!(!view.truncated() && !view.missing_separator());
    assert_eq!(view.part_count(), 1);
}

#[test]
fn multipart_alternative() {
    let (envelope, structure, body) = view_text(ALTERNATIVE);
    assert_eq!(
        envelope,
        "(NIL NIL ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) NIL NIL NIL NIL NIL)"
    );
    assert_eq!(
        structure,
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 5 1 NIL NIL NIL NIL)\
(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 11 1 NIL NIL NIL NIL) \
\"ALTERNATIVE\" (\"BOUNDARY\" \"XX\") NIL NIL NIL)"
    );
    assert_eq!(
        body,
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 5 1)\
(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 11 1) \"ALTERNATIVE\")"
    );
}

const INNER_ENVELOPE: &str = "(NIL \"inner subject\" ((\"Inner\" NIL \"inner\" \"example.org\")) \
((\"Inner\" NIL \"inner\" \"example.org\")) ((\"Inner\" NIL \"inner\" \"example.org\")) \
NIL NIL NIL NIL NIL)";

#[test]
fn multipart_mixed_with_attachment_and_message() {
    // Text parts without a charset say US-ASCII, as a part without Content-Type does (issue 9:
    // they said NIL).
    let (envelope, structure, body) = view_text(MIXED);
    assert_eq!(envelope, "(NIL \"mixed\" NIL NIL NIL NIL NIL NIL NIL NIL)");
    let expected = format!(
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 12 1 NIL NIL NIL NIL)\
(\"APPLICATION\" \"PDF\" (\"NAME\" \"doc.pdf\") \"<pdf1@x>\" \"the doc\" \"BASE64\" 18 NIL \
(\"ATTACHMENT\" (\"FILENAME\" \"doc.pdf\")) NIL NIL)\
(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 190 {INNER_ENVELOPE} \
((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 10 1 NIL NIL NIL NIL)\
(\"TEXT\" \"HTML\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 8 1 NIL NIL NIL NIL) \"ALTERNATIVE\" (\"BOUNDARY\" \"inner\") NIL NIL NIL) \
12 NIL NIL NIL NIL) \"MIXED\" (\"BOUNDARY\" \"outer\") NIL NIL NIL)"
    );
    assert_eq!(structure, expected);
    let expected_body = format!(
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 12 1)\
(\"APPLICATION\" \"PDF\" (\"NAME\" \"doc.pdf\") \"<pdf1@x>\" \"the doc\" \"BASE64\" 18)\
(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 190 {INNER_ENVELOPE} \
((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 10 1)\
(\"TEXT\" \"HTML\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 8 1) \"ALTERNATIVE\") 12) \"MIXED\")"
    );
    assert_eq!(body, expected_body);
}

#[test]
fn encoded_words_and_8bit_headers_are_kept_raw() {
    let message = "From: \"=?utf-8?q?J=C3=B6rg?=\" <j@x.de>\r\n\
Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\
In-Reply-To: <a@b>\r\n\
Content-Type: text/plain; charset=\"utf-8\"\r\n\
Content-Language: de, en\r\n\
Content-Location: http://x/y\r\n\r\nü\r\n";
    let (envelope, structure, _) = view_text(message.as_bytes());
    assert_eq!(
        envelope,
        "(NIL \"=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\" ((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"x.de\")) \
((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"x.de\")) ((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"x.de\")) \
NIL NIL NIL \"<a@b>\" NIL)"
    );
    assert_eq!(
        structure,
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 4 1 NIL NIL (\"de\" \"en\") \"http://x/y\")"
    );
    let raw = "Subject: Grüße\r\n\r\n";
    let (envelope, _, _) = view_text(raw.as_bytes());
    assert_eq!(envelope, "(NIL {7}\r\nGrüße NIL NIL NIL NIL NIL NIL NIL NIL)");
}

#[test]
fn missing_headers_are_nil() {
    let (envelope, structure, body) = view_text(b"\r\nbody only\r\n");
    assert_eq!(envelope, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
    assert_eq!(
        structure,
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 11 1 NIL NIL NIL NIL)"
    );
    assert_eq!(body, "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 11 1)");
    let blob = build(b"\r\nbody only\r\n");
    assert_eq!(CacheView::parse(&blob).expect("parses").sent_date(), None);
    let (envelope, structure, _) = view_text(b"");
    assert_eq!(envelope, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
    assert_eq!(
        structure,
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0 NIL NIL NIL NIL)"
    );
}

#[test]
fn groups_routes_and_odd_addresses() {
    let message = b"To: A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;\r\n\
Cc: Undisclosed recipients:;\r\n\
From: \"Joe Q. Public\" <john.q.public@example.com>\r\n\
Reply-To: <@route.one,@route.two:x@y.test>\r\n\
Sender: root (Super User)\r\n\
Bcc:\r\n\r\n";
    let (envelope, _, _) = view_text(message);
    assert_eq!(
        envelope,
        "(NIL NIL ((\"Joe Q. Public\" NIL \"john.q.public\" \"example.com\")) \
((\"Super User\" NIL \"root\" \".MISSING-HOST-NAME.\")) \
((NIL \"@route.one,@route.two\" \"x\" \"y.test\")) \
((NIL NIL \"A Group\" NIL)(\"Ed Jones\" NIL \"c\" \"a.test\")(NIL NIL \"joe\" \"where.test\")\
(\"John\" NIL \"jdoe\" \"one.test\")(NIL NIL NIL NIL)) \
((NIL NIL \"Undisclosed recipients\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL)"
    );
}

#[test]
fn message_without_separator() {
    let message = b"Subject: only header\r\nFrom: x@y";
    let blob = build(message);
    let view = CacheView::parse(&blob).expect("parses");
    assert!(view.missing_separator());
    assert_eq!(view.header_len() as usize, message.len());
    assert_eq!(
        String::from_utf8_lossy(view.body_structure()),
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0 NIL NIL NIL NIL)"
    );
    assert_eq!(
        String::from_utf8_lossy(view.envelope()),
        "(NIL \"only header\" ((NIL NIL \"x\" \"y\")) ((NIL NIL \"x\" \"y\")) ((NIL NIL \"x\" \"y\")) NIL NIL NIL NIL NIL)"
    );
}

#[test]
fn too_many_parts_is_one_text_leaf() {
    let mut message =
        b"Subject: wide\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
    let header_len = message.len();
    for _ in 0..1500 {
        message.extend_from_slice(b"--b\r\n\r\nx\r\n");
    }
    let blob = build(&message);
    let view = CacheView::parse(&blob).expect("parses");
    assert!(view.truncated());
    assert_eq!(view.part_count(), 1);
    let size = message.len() - header_len;
    assert_eq!(
        String::from_utf8_lossy(view.body_structure()),
        format!(
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" {size} 4500 NIL NIL NIL NIL)"
        )
    );
    assert!(String::from_utf8_lossy(view.envelope()).contains("\"wide\""));
}

/// The sample message of RFC 2046 §5.1.1, with CRLF or bare LF line endings.
fn rfc2046_sample(newline: &str) -> Vec<u8> {
    [
        "From: Nathaniel Borenstein <nsb@bellcore.com>",
        "To: Ned Freed <ned@innosoft.com>",
        "Date: Sun, 21 Mar 1993 23:56:48 -0800 (PST)",
        "Subject: Sample message",
        "MIME-Version: 1.0",
        "Content-type: multipart/mixed; boundary=\"simple boundary\"",
        "",
        "This is the preamble.  It is to be ignored, though it",
        "is a handy place for composition agents to include an",
        "explanatory note to non-MIME conformant readers.",
        "",
        "--simple boundary",
        "",
        "This is implicitly typed plain US-ASCII text.",
        "It does NOT end with a linebreak.",
        "--simple boundary",
        "Content-type: text/plain; charset=us-ascii",
        "",
        "This is explicitly typed plain US-ASCII text.",
        "It DOES end with a linebreak.",
        "",
        "--simple boundary--",
        "",
        "This is the epilogue.  It is also to be ignored.",
        "",
    ]
    .join(newline)
    .into_bytes()
}

#[test]
fn rfc2046_sample_with_crlf_and_lf() {
    for (newline, first, second) in [("\r\n", 80, 78), ("\n", 79, 76)] {
        let (envelope, structure, _) = view_text(&rfc2046_sample(newline));
        assert_eq!(
            envelope,
            "(\"Sun, 21 Mar 1993 23:56:48 -0800 (PST)\" \"Sample message\" \
((\"Nathaniel Borenstein\" NIL \"nsb\" \"bellcore.com\")) \
((\"Nathaniel Borenstein\" NIL \"nsb\" \"bellcore.com\")) \
((\"Nathaniel Borenstein\" NIL \"nsb\" \"bellcore.com\")) \
((\"Ned Freed\" NIL \"ned\" \"innosoft.com\")) NIL NIL NIL NIL)"
        );
        assert_eq!(
            structure,
            format!(
                "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" {first} 2 NIL NIL NIL NIL)\
(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" {second} 2 NIL NIL NIL NIL) \
\"MIXED\" (\"BOUNDARY\" \"simple boundary\") NIL NIL NIL)"
            )
        );
    }
}
