"""`skua deny` (issue 11, Cyrus's cyr_deny): users shut out of IMAP and LMTP delivery.

Against a running server (through the admin socket: the change is in force on every shard when
the tool returns) and a stopped one (the tool writes DATA_DIR/deny.list itself under the
data-dir lock): a denied user's right password gets `NO [CONTACTADMIN]` with the operator's
message, by LOGIN and by AUTHENTICATE PLAIN; a session already logged in is ended with
`* BYE [CONTACTADMIN]` at its next command; with `--services lmtp` RCPT gets `550 5.2.1`;
other users are untouched; the list survives a restart; `--allow` lets the user in again. An
unknown user, a user to allow who is not denied, an unknown service are errors (exit 1), and a
deny list that does not parse stops the server from starting, naming the bad line.

skua has no POP3 server yet, so there is no POP3 path to refuse (`skua_core::deny::Service`
holds only what skua serves).
"""

import base64
import imaplib
import json
import os
import shutil
import tempfile
import unittest

from harness import HOST, Server, check_all, lmtp_deliver, message, raw_login, run_cli


class DenyTest(unittest.TestCase):
    USERS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-deny-")
        self.data = os.path.join(self.tmp, "data")
        self.server = Server(self.data, self.USERS, shards=2).start()

    def tearDown(self):
        try:
            if self.server.process is not None:
                self.assertEqual(self.server.stop(), 0, self.server.log_text())
            check_all(self, self.data)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def cli(self, *args, check=True):
        return run_cli(*args, "--data-dir", self.data, check=check)

    def login_refusal(self, user, password):
        """The refusal text of a LOGIN with the right password, or None when it succeeds."""
        client = imaplib.IMAP4(HOST, self.server.imap_port, timeout=30)
        try:
            client.login(user, password)
        except imaplib.IMAP4.error as error:
            return str(error)
        finally:
            try:
                client.logout()
            except imaplib.IMAP4.error:
                pass
        return None

    def plain_refusal(self, user, password):
        """The same with AUTHENTICATE PLAIN."""
        client = imaplib.IMAP4(HOST, self.server.imap_port, timeout=30)
        try:
            client.authenticate("PLAIN", lambda _: f"\0{user}\0{password}".encode())
        except imaplib.IMAP4.error as error:
            return str(error)
        finally:
            client.logout()
        return None

    def rcpt(self, user):
        """The LMTP reply to RCPT TO:<user@localhost>."""
        lmtp = self.server.lmtp()
        lmtp.mail("s@example.org")
        code, text = lmtp.rcpt(f"{user}@localhost")
        lmtp.rset()
        lmtp.quit()
        return code, text.decode()

    def test_a_session_waiting_in_idle_or_between_commands_is_ended_at_once(self):
        idling = raw_login(self.server.imap_port, "alice", "alice-pw")
        idling.command("s", "SELECT INBOX")
        idling.send(b"i IDLE\r\n")
        self.assertTrue(idling.line().startswith(b"+ "))
        quiet = raw_login(self.server.imap_port, "alice", "alice-pw")
        other = raw_login(self.server.imap_port, "bob", "bob-pw")
        self.cli("deny", "alice")
        for session in (idling, quiet):  # neither sends anything
            _, lines = session.wait_closed(10)
            self.assertTrue(any(b"* BYE [CONTACTADMIN]" in line for line in lines), lines)
        _, tagged = other.command("n", "NOOP")
        self.assertTrue(tagged.startswith(b"n OK"), tagged)
        for session in (idling, quiet, other):
            session.close()

    def test_deny_online_refuses_logins_ends_sessions_and_is_lifted(self):
        session = self.server.imap("alice", "alice-pw")
        session.select("INBOX")
        out = self.cli("deny", "alice", "--message", "Suspended: call 555").stdout
        self.assertIn("alice: denied imap: Suspended: call 555", out)
        refusal = self.login_refusal("alice", "alice-pw")
        self.assertIn("[CONTACTADMIN] Suspended: call 555", refusal)
        self.assertIn("[CONTACTADMIN] Suspended: call 555", self.plain_refusal("ALICE", "alice-pw"))
        # A wrong password is still just a failure: the deny does not tell guessers anything.
        self.assertIn("AUTHENTICATIONFAILED", self.login_refusal("alice", "guess"))
        # The session logged in before the deny ends at its next command.
        with self.assertRaises(imaplib.IMAP4.abort) as ended:
            session.noop()
        self.assertIn("CONTACTADMIN", str(ended.exception))
        # Others are untouched; imap only, so mail still arrives.
        self.assertIsNone(self.login_refusal("bob", "bob-pw"))
        self.assertEqual(self.rcpt("alice")[0], 250)
        # Now mail too (the entry is replaced, not merged).
        self.cli("deny", "alice", "--services", "imap,lmtp")
        code, text = self.rcpt("alice")
        self.assertEqual((code, text[:5]), (550, "5.2.1"), text)
        self.assertEqual(self.rcpt("bob")[0], 250)
        listed = json.loads(self.cli("deny", "--list", "--json").stdout)
        self.assertEqual(listed, [{"user": "alice", "services": ["imap", "lmtp"], "message": ""}])
        log = self.server.log_text()
        self.assertIn("login refused: user denied", log)
        self.assertIn("lmtp recipient refused: user denied", log)
        # A restart keeps it.
        self.assertEqual(self.server.stop(), 0)
        self.server.start()
        self.assertIn("CONTACTADMIN", self.login_refusal("alice", "alice-pw"))
        self.assertEqual(self.rcpt("alice")[0], 550)
        out = self.cli("deny", "--allow", "alice").stdout
        self.assertIn("alice: allowed again (was denied imap,lmtp)", out)
        self.assertIsNone(self.login_refusal("alice", "alice-pw"))
        lmtp = self.server.lmtp()
        replies = lmtp_deliver(lmtp, "s@example.org", ["alice@localhost"], message("back", "b"))
        self.assertEqual(replies[0][0], 250)
        lmtp.quit()
        self.assertEqual(json.loads(self.cli("deny", "--list", "--json").stdout), [])

    def test_deny_offline_is_in_force_at_the_next_start(self):
        self.assertEqual(self.server.stop(), 0)
        self.cli("deny", "bob", "--services", "lmtp", "--message", "Moved away")
        self.cli("deny", "carol")
        with open(os.path.join(self.data, "deny.list"), encoding="utf-8") as f:
            self.assertEqual(
                f.read(), "skua-deny 1\nbob\tlmtp\tMoved away\ncarol\timap\t\n"
            )
        self.assertEqual(os.stat(os.path.join(self.data, "deny.list")).st_mode & 0o777, 0o600)
        self.server.start()
        self.assertEqual(self.rcpt("bob")[0], 550)
        self.assertIsNone(self.login_refusal("bob", "bob-pw"), "lmtp only: bob logs in")
        refusal = self.login_refusal("carol", "carol-pw")
        self.assertIn("[CONTACTADMIN] Access disabled; contact your administrator", refusal)
        # Online and offline list the same.
        online = self.cli("deny", "--list", "--json").stdout
        self.assertEqual(self.server.stop(), 0)
        self.assertEqual(self.cli("deny", "--list", "--json").stdout, online)
        self.cli("deny", "--allow", "bob", "carol")
        self.assertEqual(self.cli("deny", "--list").stdout, "")

    def test_errors_change_nothing(self):
        for running in (True, False):
            with self.subTest(running=running):
                if not running:
                    self.assertEqual(self.server.stop(), 0)
                self.cli("deny", "alice")
                for args, said in [
                    (("deny", "nobody"), "unknown"),
                    (("deny", "--allow", "bob"), "not on the deny list"),
                    (("deny", "bob", "--services", "pop3"), "unknown service"),
                    (("deny", "bob", "--message", "tab\there"), "printable ASCII"),
                    (("deny",), "users"),
                    (("deny", "--list", "bob"), "takes no users"),
                ]:
                    result = self.cli(*args, check=False)
                    self.assertEqual(result.returncode, 1, (args, result.stderr))
                    self.assertIn(said, result.stderr, args)
                listed = json.loads(self.cli("deny", "--list", "--json").stdout)
                self.assertEqual([entry["user"] for entry in listed], ["alice"])
                self.cli("deny", "--allow", "alice")
        missing = run_cli("deny", "--list", "--data-dir", os.path.join(self.tmp, "nope"), check=False)
        self.assertEqual(missing.returncode, 1)

    def test_a_deny_list_that_does_not_parse_stops_the_start(self):
        self.assertEqual(self.server.stop(), 0)
        path = os.path.join(self.data, "deny.list")
        with open(path, "w", encoding="utf-8") as f:
            f.write("skua-deny 1\nalice\timap\t\nbob imap\n")
        with self.assertRaises(RuntimeError):
            self.server.start()
        self.server.process.wait()
        self.server.process = None
        self.server.log.close()
        log = self.server.log_text()
        self.assertIn("line 3", log)
        self.assertIn("deny.list", log)
        result = self.cli("deny", "--list", check=False)
        self.assertEqual(result.returncode, 1)
        self.assertIn("line 3", result.stderr)
        os.remove(path)
        self.server.start()


if __name__ == "__main__":
    unittest.main()
