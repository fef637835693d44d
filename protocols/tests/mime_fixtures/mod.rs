//! Messages shared by the MIME integration tests; expected texts are in the tests.

/// Test message `simple`.
pub const SIMPLE: &[u8] = b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n\
From: Terry Gray <gray@cac.washington.edu>\r\n\
Subject: IMAP4rev2 WG mtg summary and minutes\r\n\
To: imap@cac.washington.edu\r\n\
cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n\
Message-Id: <B27397-0100000@cac.washington.edu>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
\r\n\
Hello world\r\n\
second line\r\n";

/// Test message `alternative`.
pub const ALTERNATIVE: &[u8] = b"From: a@b.c\r\n\
Content-Type: multipart/alternative; boundary=\"XX\"\r\n\
\r\n\
--XX\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
plain\r\n\
--XX\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
<p>html</p>\r\n\
--XX--\r\n";

/// Test message `mixed`.
pub const MIXED: &[u8] = b"Subject: mixed\r\n\
Content-Type: multipart/mixed; boundary=outer\r\n\
\r\n\
preamble\r\n\
--outer\r\n\
Content-Type: text/plain\r\n\
\r\n\
see attached\r\n\
--outer\r\n\
Content-Type: application/pdf; name=\"doc.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"doc.pdf\"\r\n\
Content-ID: <pdf1@x>\r\n\
Content-Description: the doc\r\n\
\r\n\
JVBERi0xLjQK\r\n\
AAAA\r\n\
--outer\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: Inner <inner@example.org>\r\n\
Subject: inner subject\r\n\
Content-Type: multipart/alternative; boundary=inner\r\n\
\r\n\
--inner\r\n\
\r\n\
inner text\r\n\
--inner\r\n\
Content-Type: text/html\r\n\
\r\n\
<b>x</b>\r\n\
--inner--\r\n\
--outer--\r\n";
