"""Postfix end to end (issue 11, item 5): Debian's postfix as a private instance in front of
the real skua binary, set up as an operator would (README, "Postfix").

SMTP in (smtplib) -> Postfix -> LMTP into skua -> IMAP out (imaplib), over LMTP on TCP and on a
unix socket:

- the message arrives intact (byte for byte, once the trace fields are set aside);
- an unknown recipient: with the socketmap (`virtual_mailbox_maps = socketmap:...:user`)
  Postfix refuses it at RCPT (`550 5.1.1`, nothing queued); without it Postfix accepts it,
  skua's LMTP answers `550 5.1.1` and Postfix bounces: the sender (a skua user here) finds
  the bounce in their INBOX;
- a user over quota is refused at RCPT through `check_recipient_access socketmap:...:quota`
  (`552 5.2.2`), the answer coming from the user's home shard;
- skua stopped: Postfix defers (the queue holds the message, "Connection refused"); skua
  restarted on the same data dir, `postqueue -f` delivers it exactly once (duplicate
  suppression is off, so a second copy would show); with the socketmap, a stopped skua makes
  Postfix answer `451 4.3.0` at RCPT instead (the sender keeps the message).

Skipped, saying why, only where Postfix cannot run (not installed, not root). The instance
has its own config, queue and ports and is stopped after each test, pass or fail.
"""

import os
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time
import unittest

import postfix_support
from harness import HOST, AbuseServer, check_at_end, free_port, message, without_trace_fields

USERS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}
# dave may keep one message (the passwd-file's Dovecot-style quota rule).
DAVE_LINE = "dave:{PLAIN}dave-pw::::::userdb_quota_rule=*:messages=1\n"
PASSWORDS = dict(USERS, dave="dave-pw")
DOMAIN = "example.org"
POLL_S = 30


class PostfixTest(unittest.TestCase):
    """skua (2 shards, `SKUA_CONFIG`) and a private Postfix (`main_cf()`), fresh per test."""

    SKUA_CONFIG = ""

    def setUp(self):
        reason = postfix_support.available()
        if reason is not None:
            self.skipTest(reason)
        self.tmp = tempfile.mkdtemp(prefix="skua-postfix-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        check_at_end(self, os.path.join(self.tmp, "data"))
        # Postfix's daemons run as the postfix user: they must reach the queue and the socket.
        os.chmod(self.tmp, 0o755)
        self.lmtp_socket = os.path.join(self.tmp, "lmtp.sock")
        self.socketmap_port = free_port()
        self.socketmap_socket = os.path.join(self.tmp, "socketmap.sock")
        config = (self.SKUA_CONFIG.replace("LMTP_SOCKET", self.lmtp_socket)
                  .replace("SOCKETMAP_SOCKET", self.socketmap_socket)
                  .replace("SOCKETMAP_PORT", str(self.socketmap_port)))
        self.skua = AbuseServer(os.path.join(self.tmp, "data"), USERS, 2, config)
        with open(os.path.join(self.skua.data_dir, "passwd"), "a", encoding="utf-8") as f:
            f.write(DAVE_LINE)
        self.start_skua()
        self.addCleanup(self.stop_skua)
        self.postfix = postfix_support.Postfix(
            os.path.join(self.tmp, "postfix"), free_port(), self.main_cf())
        # Registered before start: a start that fails half-way is still stopped.
        self.addCleanup(self.postfix.stop)
        self.postfix.start()

    def main_cf(self):
        raise NotImplementedError

    def start_skua(self):
        self.skua.start()
        if "LMTP_SOCKET" in self.SKUA_CONFIG:
            # start() returns once a TCP port answers; shard 0 binds the unix socket.
            deadline = time.monotonic() + POLL_S
            while not connectable_unix(self.lmtp_socket):  # the socketmap's comes with it
                self.assertLess(time.monotonic(), deadline, "no LMTP socket\n" + self.skua_log())
                time.sleep(0.02)

    def stop_skua(self):
        if self.skua.process is not None:
            self.assertEqual(self.skua.stop(), 0, self.skua_log())

    def skua_log(self):
        return self.skua.log_text()[-3000:]

    def smtp(self):
        client = smtplib.SMTP(HOST, self.postfix.smtp_port, timeout=30)
        client.ehlo()
        return client

    def send(self, sender, recipient, raw):
        client = self.smtp()
        try:
            refused = client.sendmail(sender, [recipient], raw)
            self.assertEqual(refused, {})
        finally:
            client.quit()

    def rcpt_reply(self, recipient, sender="carol@example.org"):
        """The reply to RCPT TO:<recipient> (the transaction is reset after)."""
        client = self.smtp()
        try:
            code, _ = client.mail(sender)
            self.assertEqual(code, 250)
            return client.rcpt(recipient)
        finally:
            client.rset()
            client.quit()

    def inbox(self, user):
        """The messages in `user`'s INBOX, oldest first."""
        client = self.skua.imap(user, PASSWORDS[user])
        try:
            typ, data = client.select("INBOX", readonly=True)
            self.assertEqual(typ, "OK", data)
            if data == [b"0"]:
                return []
            typ, data = client.fetch("1:*", "(BODY.PEEK[])")
            self.assertEqual(typ, "OK", data)
            return [item[1] for item in data if isinstance(item, tuple)]
        finally:
            client.logout()

    def wait_for_inbox(self, user, count):
        """Polls until `user`'s INBOX holds `count` messages; returns them."""
        deadline = time.monotonic() + POLL_S
        while True:
            found = self.inbox(user)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                self.fail(f"{user} has {len(found)} of {count} messages\n"
                          f"{self.postfix.log_text()[-3000:]}\n{self.skua_log()}")
            time.sleep(0.05)

    def wait_for_empty_queue(self):
        self.postfix.wait_for(lambda: self.postfix.queue() == [], "an empty queue", POLL_S)

    def assert_arrives_intact(self, recipient, user):
        raw = message("through postfix", "SMTP in, LMTP to skua, IMAP out.\r\n\r\n-- \r\nend",
                      sender="carol@example.org", to=recipient)
        self.send("carol@example.org", recipient, raw)
        [stored] = self.wait_for_inbox(user, 1)
        # Postfix's Received: and skua's Return-Path/Delivered-To/Received are on top.
        self.assertEqual(without_trace_fields(stored), raw)
        self.assertIn(f"Delivered-To: {recipient}".encode(), stored)
        self.assertIn(b"by mx.skua.test (Postfix)", stored, "Postfix's trace field")
        self.wait_for_empty_queue()


def connectable_unix(path):
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.connect(path)
        return True
    except OSError:
        return False


class LmtpTcpWithSocketmap(PostfixTest):
    """LMTP over TCP; Postfix asks skua's socketmap for recipients and quota at RCPT."""

    SKUA_CONFIG = ('[lmtp]\nduplicate_window = 0\n'
                   '[socketmap]\nlisten = ["127.0.0.1:SOCKETMAP_PORT"]\n')

    def main_cf(self):
        socketmap = f"socketmap:inet:{HOST}:{self.socketmap_port}"
        return f"""\
virtual_mailbox_domains = {DOMAIN}
virtual_mailbox_maps = {socketmap}:user
virtual_transport = lmtp:inet:{HOST}:{self.skua.lmtp_port}
smtpd_recipient_restrictions =
    reject_unlisted_recipient,
    check_recipient_access {socketmap}:quota,
    permit_mynetworks,
    reject_unauth_destination
"""

    def postmap(self, key, table, stderr=False):
        """`postmap -q` (Postfix's own socketmap client): (exit code, output[, errors])."""
        result = subprocess.run(
            [postfix_support.program("postmap"), "-c", self.postfix.conf, "-q", key,
             f"socketmap:inet:{HOST}:{self.socketmap_port}:{table}"],
            capture_output=True, text=True, timeout=60)
        if stderr:
            return result.returncode, result.stdout.strip(), result.stderr
        return result.returncode, result.stdout.strip()

    def test_smtp_to_lmtp_to_imap_keeps_the_message_intact(self):
        self.assert_arrives_intact("alice@example.org", "alice")

    def test_the_user_map_resolves_as_lmtp_rcpt_does(self):
        self.assertEqual(self.postmap("alice@example.org", "user"), (0, "alice"))
        self.assertEqual(self.postmap("bob+lists@example.org", "user"), (0, "bob"), "+detail")
        self.assertEqual(self.postmap("nobody@example.org", "user"), (1, ""), "not found: 1")
        self.assertEqual(self.postmap("alice@example.org", "quota"), (1, ""), "room: not found")
        # An unknown map name is a PERM answer, which Postfix logs with its reason.
        code, out, errors = self.postmap("alice@example.org", "nosuchmap", stderr=True)
        self.assertEqual(out, "", errors)
        self.assertIn("socketmap server permanent error: unknown map name", errors)

    def test_an_unknown_recipient_is_refused_at_rcpt_and_nothing_is_queued(self):
        code, text = self.rcpt_reply("nobody@example.org")
        self.assertEqual(code, 550, text)
        self.assertIn(b"5.1.1", text)
        self.assertIn(b"User unknown in virtual mailbox table", text)
        code, text = self.rcpt_reply("bob+lists@example.org")
        self.assertEqual(code, 250, text)
        self.assertEqual(self.postfix.queue(), [])

    def test_a_user_over_quota_is_refused_at_rcpt(self):
        self.assertEqual(self.rcpt_reply("dave@example.org")[0], 250, "room for one")
        self.send("carol@example.org", "dave@example.org", message("first", "fits"))
        self.wait_for_inbox("dave", 1)
        self.wait_for_empty_queue()
        code, text = self.rcpt_reply("dave@example.org")
        self.assertEqual(code, 552, text)
        self.assertEqual(
            text, b"5.2.2 <dave@example.org>: Recipient address rejected: Mailbox over quota")
        self.assertEqual(self.rcpt_reply("dave+x@example.org")[0], 552, "+detail too")
        self.assertEqual(self.rcpt_reply("alice@example.org")[0], 250, "others unaffected")
        self.assertEqual(len(self.inbox("dave")), 1)

    def test_skua_stopped_makes_postfix_answer_a_temporary_failure_at_rcpt(self):
        self.assertEqual(self.skua.stop(), 0, self.skua_log())
        code, text = self.rcpt_reply("alice@example.org")
        self.assertEqual(code, 451, text)
        self.assertIn(b"4.3.0 <alice@example.org>: Temporary lookup failure", text)
        self.assertEqual(self.postfix.queue(), [], "the sender keeps it, not Postfix")
        self.start_skua()
        self.postfix.wait_for(lambda: self.rcpt_reply("alice@example.org")[0] == 250,
                              "RCPT accepted again", POLL_S)


class LmtpUnixWithoutSocketmap(PostfixTest):
    """LMTP over skua's unix socket; Postfix knows only the domain (no socketmap)."""

    # The test's skua and Postfix run as different users: the socket is world-connectable
    # here; an operator keeps 0660 and puts the postfix user in skua's group (README).
    SKUA_CONFIG = ('[lmtp]\nlisten = ["unix:LMTP_SOCKET"]\nunix_mode = "0666"\n'
                   'duplicate_window = 0\n'
                   '[socketmap]\nlisten = ["unix:SOCKETMAP_SOCKET"]\n')

    def main_cf(self):
        return f"""\
virtual_mailbox_domains = {DOMAIN}
virtual_transport = lmtp:unix:{self.lmtp_socket}
"""

    def test_smtp_to_lmtp_over_the_unix_socket_to_imap(self):
        self.assert_arrives_intact("bob@example.org", "bob")
        relay = f"relay=mx.skua.test[{self.lmtp_socket}]"
        # Postfix logs the delivery after skua stored it: wait for the line, not just the mail.
        self.postfix.wait_for(lambda: relay in self.postfix.log_text(), "the relay= line", 10)

    def test_the_socketmap_answers_on_a_unix_socket_too(self):
        # Not in this instance's main.cf: asked with Postfix's own client, as root.
        table = f"socketmap:unix:{self.socketmap_socket}"
        for key, map_name, expected in [("carol+x@example.org", "user", (0, "carol")),
                                        ("nobody@example.org", "user", (1, "")),
                                        ("carol@example.org", "quota", (1, ""))]:
            result = subprocess.run(
                [postfix_support.program("postmap"), "-c", self.postfix.conf, "-q", key,
                 f"{table}:{map_name}"], capture_output=True, text=True, timeout=60)
            self.assertEqual((result.returncode, result.stdout.strip()), expected,
                             result.stderr)

    def test_an_unknown_recipient_bounces_to_the_sender(self):
        code, text = self.rcpt_reply("nobody@example.org")
        self.assertEqual(code, 250, "accepted: Postfix cannot know")
        raw = message("to nobody", "nobody is here", sender="carol@example.org",
                      to="nobody@example.org")
        self.send("carol@example.org", "nobody@example.org", raw)
        [bounce] = self.wait_for_inbox("carol", 1)
        self.assertIn(b"From: Mail Delivery System <MAILER-DAEMON@mx.skua.test>", bounce)
        self.assertIn(b"Undelivered Mail Returned to Sender", bounce)
        self.assertIn(b"<nobody@example.org>", bounce)
        self.assertIn(b"550 5.1.1", bounce, "skua's LMTP reply is quoted")
        self.assertIn(b"Subject: to nobody", bounce, "the original is returned")
        self.wait_for_empty_queue()
        self.postfix.wait_for(lambda: "status=bounced" in self.postfix.log_text(),
                              "the status=bounced line", 10)

    def test_skua_stopped_postfix_defers_then_delivers_once_after_restart(self):
        self.assertEqual(self.skua.stop(), 0, self.skua_log())
        self.assertFalse(os.path.exists(self.lmtp_socket), "skua removed its socket")
        raw = message("deferred", "waits in Postfix's queue", to="alice@example.org")
        self.send("carol@example.org", "alice@example.org", raw)

        def deferred():
            queue = self.postfix.queue()
            return (len(queue) == 1 and queue[0]["queue_name"] == "deferred"
                    and queue[0]["recipients"][0].get("delay_reason"))

        self.postfix.wait_for(deferred, "the message to be deferred", POLL_S)
        [held] = self.postfix.queue()
        self.assertEqual(held["recipients"][0]["address"], "alice@example.org")
        self.assertIn("No such file or directory", held["recipients"][0]["delay_reason"])

        self.start_skua()
        self.assertEqual(self.inbox("alice"), [], "nothing before the flush")
        self.postfix.flush()
        self.wait_for_empty_queue()
        [stored] = self.wait_for_inbox("alice", 1)
        self.assertEqual(without_trace_fields(stored), raw)
        self.assertEqual(len(self.inbox("alice")), 1, "exactly once")
        self.postfix.wait_for(lambda: "status=sent" in self.postfix.log_text(),
                              "the status=sent line", 10)
        self.assertEqual(self.postfix.log_text().count("status=sent"), 1)


if __name__ == "__main__":
    unittest.main()
