"""Logs an operator can use (issue 8, item 7), from the real binary at the default level: one
line per connection opened and closed (peer, protocol, TLS version and cipher, duration, bytes
each way), one per LMTP recipient (sender, recipient, Message-ID, size, outcome and reply code,
milliseconds) and per refused recipient; no ANSI colours when stderr is not a terminal; and
`--log-format json` gives one JSON object per line."""

import imaplib
import json
import os
import re
import shutil
import ssl
import tempfile
import time
import unittest

from harness import HOST, Server, check_at_end, lmtp_deliver, message

ANSI = re.compile(rb"\x1b\[")
# Polls of the log for a line before giving up (a bound on polls, not a timing assertion).
LOG_POLLS_MAX = 300


class Logs(unittest.TestCase):
    def start(self, *extra):
        self.tmp = tempfile.mkdtemp(prefix="skua-logs-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        check_at_end(self, os.path.join(self.tmp, "data"))
        self.server = Server(os.path.join(self.tmp, "data"), {"alice": "alice-pw"}, 1,
                             extra_args=list(extra)).start()
        self.addCleanup(self.server.stop)

    def traffic(self):
        lmtp = self.server.lmtp()
        replies = lmtp_deliver(lmtp, "sender@example.org", ["alice@localhost", "nobody@localhost"],
                               message("logged", "body", message_id="<logged.1@test>"))
        lmtp.quit()
        self.assertEqual(replies[0][0], 250, replies)
        context = ssl.create_default_context(
            cafile=os.path.join(self.server.data_dir, "tls", "selfsigned.crt"))
        client = imaplib.IMAP4_SSL(HOST, self.server.imaps_port, ssl_context=context)
        client.login("alice", "alice-pw")
        client.select("INBOX")
        client.fetch("1", "(BODY[])")
        client.logout()

    def wait_for(self, pattern):
        for _ in range(LOG_POLLS_MAX):
            text = self.server.log_text()
            if re.search(pattern, text):
                return text
            time.sleep(0.02)
        self.fail(f"no log line matches {pattern!r}:\n{self.server.log_text()[-3000:]}")

    def test_text_lines_for_connections_and_recipients_without_colours(self):
        self.start()
        self.traffic()
        text = self.wait_for(r'connection closed.*protocol="?imap"?.*user="?alice')
        with open(self.server.log_path, "rb") as f:
            self.assertIsNone(ANSI.search(f.read()), "no colour codes in a log file")
        self.assertRegex(text, r'connection opened.*peer=127\.0\.0\.1:\d+.*protocol="?imaps')
        closed = [l for l in text.splitlines() if "connection closed" in l and "alice" in l][0]
        self.assertRegex(closed, r"tls=\"?TLSv1_[23]")
        self.assertRegex(closed, r"cipher=\"?TLS")
        self.assertRegex(closed, r"duration_ms=\d+")
        self.assertRegex(closed, r"bytes_in=[1-9]\d*")
        self.assertRegex(closed, r"bytes_out=[1-9]\d*")
        delivered = [l for l in text.splitlines() if "lmtp delivery" in l][0]
        for field in (r'from="?sender@example\.org', r'to="?alice', r'message_id="?<logged\.1@test>',
                      r"size=\d+", r'outcome="?delivered', r'code="?250 2\.0\.0', r"took_ms=\d+"):
            self.assertRegex(delivered, field)
        self.assertRegex(text, r'lmtp recipient refused.*to="?nobody@localhost.*550 5\.1\.1')
        self.assertRegex(text, r'connection closed.*protocol="?lmtp')
        self.assertRegex(text, r'INFO.* login .*source=127\.0\.0\.1.*mechanism="?LOGIN.*user="?alice')
        # A failed login says why, in a form a log watcher (fail2ban) can match on the source.
        client = imaplib.IMAP4(HOST, self.server.imap_port)
        with self.assertRaises(imaplib.IMAP4.error):
            client.login("alice", "wrong")
        client.logout()
        self.wait_for(r'login failed.*source=127\.0\.0\.1.*user="?alice.*reason=')

    def test_json_lines(self):
        self.start("--log-format", "json")
        self.traffic()
        self.wait_for(r'"connection closed".*alice|alice.*"connection closed"')
        records = []
        for line in self.server.log_text().splitlines():
            if line.startswith("{"):
                records.append(json.loads(line))
        messages = [r.get("fields", {}).get("message") for r in records]
        self.assertIn("connection opened", messages)
        self.assertIn("lmtp delivery", messages)
        closed = [r["fields"] for r in records
                  if r.get("fields", {}).get("message") == "connection closed"
                  and r["fields"].get("user") == "alice"]
        self.assertTrue(closed, records[-5:])
        self.assertTrue(closed[0]["tls"].startswith("TLSv1_"))
        self.assertGreater(closed[0]["bytes_out"], 0)


if __name__ == "__main__":
    unittest.main()
