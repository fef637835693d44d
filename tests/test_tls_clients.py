"""Mail clients from Debian's packages over TLS with their default settings (issue 8): mbsync
(isync) and fetchmail negotiate STARTTLS on their own and verify skua's self-signed
certificate given as their CA; both also over implicit TLS (IMAPS). The server's close line
for each login says which TLS version ran, so a client silently falling back to plain text
fails the test."""

import os
import re
import shutil
import subprocess
import time
import unittest

from harness import ServerTest, lmtp_deliver, message

MBSYNC = shutil.which("mbsync")
FETCHMAIL = shutil.which("fetchmail")
# Polls of the log for the close line (a bound on polls, not a timing assertion).
LOG_POLLS_MAX = 300


class TlsClients(ServerTest):
    USERS = {"alice": "alice-pw"}
    SHARDS = 1

    def setUp(self):
        super().setUp()
        lmtp = self.server.lmtp()
        for i in range(3):
            replies = lmtp_deliver(lmtp, "s@example.org", ["alice@localhost"],
                                   message(f"tls client {i}", f"tls client body {i}"))
            self.assertEqual(replies[0][0], 250)
        lmtp.quit()
        self.cert = os.path.join(self.server.data_dir, "tls", "selfsigned.crt")

    def assert_logins_used_tls(self, count):
        pattern = re.compile(r'connection closed.*user="alice".*tls="([^"]+)"')
        for _ in range(LOG_POLLS_MAX):
            versions = pattern.findall(self.server.log_text())
            if len(versions) >= count:
                break
            time.sleep(0.02)
        self.assertGreaterEqual(len(versions), count, self.server.log_text()[-2000:])
        self.assertTrue(all(v.startswith("TLSv1_") for v in versions), versions)

    def mbsync(self, ssl_type):
        maildir = os.path.join(self.tmp, f"Mail-{ssl_type or 'default'}")
        os.makedirs(maildir)
        port = self.server.imaps_port if ssl_type == "IMAPS" else self.server.imap_port
        config = os.path.join(self.tmp, "mbsyncrc")
        with open(config, "w", encoding="utf-8") as f:
            f.write(f"IMAPAccount skua\nHost localhost\nPort {port}\nUser alice\n"
                    f"Pass alice-pw\nCertificateFile {self.cert}\n"
                    + (f"SSLType {ssl_type}\n" if ssl_type else "")
                    + f"\nIMAPStore remote\nAccount skua\n\nMaildirStore local\n"
                    f"Path {maildir}/\nInbox {maildir}/INBOX\n\nChannel c\nFar :remote:\n"
                    f"Near :local:\nPatterns INBOX\nCreate Near\nSyncState *\n")
        result = subprocess.run([MBSYNC, "-c", config, "-a"], capture_output=True, text=True,
                                timeout=120, env=dict(os.environ, HOME=self.tmp))
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        bodies = []
        for sub in ("cur", "new"):
            for name in os.listdir(os.path.join(maildir, "INBOX", sub)):
                with open(os.path.join(maildir, "INBOX", sub, name), "rb") as f:
                    bodies.append(f.read())
        self.assertEqual(len(bodies), 3)
        self.assertTrue(any(b"tls client body 2" in b for b in bodies))

    @unittest.skipIf(MBSYNC is None and not os.environ.get("CI"), "mbsync not installed")
    def test_mbsync_default_starttls_and_imaps(self):
        self.mbsync(None)  # isync's default: STARTTLS, required
        self.mbsync("IMAPS")
        self.assert_logins_used_tls(2)

    def fetchmail(self, implicit):
        out = os.path.join(self.tmp, f"fetched-{implicit}.txt")
        rc = os.path.join(self.tmp, "fetchmailrc")
        port = self.server.imaps_port if implicit else self.server.imap_port
        with open(rc, "w", encoding="utf-8") as f:
            f.write(f'poll localhost via 127.0.0.1 port {port} protocol IMAP '
                    f'user "alice" password "alice-pw" '
                    + ("ssl " if implicit else "")
                    + f'sslcertfile "{self.cert}" sslcertck sslcommonname "localhost" '
                    f'keep fetchall mda "/bin/sh -c \'cat >> {out}\'"\n')
        os.chmod(rc, 0o600)
        env = dict(os.environ, HOME=self.tmp)
        result = subprocess.run([FETCHMAIL, "-f", rc, "--nosyslog"], capture_output=True,
                                text=True, timeout=120, env=env)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        with open(out, "rb") as f:
            fetched = f.read()
        self.assertEqual(fetched.count(b"tls client body"), 3, fetched[-500:])

    @unittest.skipIf(FETCHMAIL is None and not os.environ.get("CI"), "fetchmail not installed")
    def test_fetchmail_default_starttls_and_ssl(self):
        self.fetchmail(False)  # fetchmail's default: STARTTLS when the server offers it
        self.fetchmail(True)
        self.assert_logins_used_tls(2)


if __name__ == "__main__":
    unittest.main()
