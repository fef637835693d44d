"""The master users file and the JWKS file are reloaded while the server runs.

The bug: both were read at start-up only, so a master user added for a migration could not log
in, and a provider's rotated signing key refused every new token, until the server restarted.
Now the passwd-file's watcher reloads them as soon as they change (inotify on their
directories), and on SIGHUP; a version that cannot be loaded keeps the previous one.

Each test waits for the server's log line saying the file was (re)loaded or refused, then
checks logins: nothing here waits on a guess of how long a reload takes.
"""

import imaplib
import os
import signal
import time
import unittest

from harness import HOST, AbuseServer
from sasl_support import Provider, SaslServerTest, oauth_config, replace_file


def acknowledged_by(data_dir, pid):
    """Whether the passwd-file acknowledgement in `data_dir` names the process `pid`."""
    try:
        with open(os.path.join(data_dir, "users-loaded"), encoding="utf-8") as f:
            return f"pid {pid}\n" in f.read()
    except FileNotFoundError:
        return False


class SaslReload(SaslServerTest):
    USERS = {"alice": "alice-pw", "bob": "bob-pw"}

    def setUp(self):
        super().setUp()
        # `linked_masters` sits in a directory the server does not watch: the SIGHUP test links
        # the configured name to it, so that edits there reach the server only through SIGHUP.
        self.hidden = os.path.join(self.tmp, "hidden")
        os.makedirs(self.hidden)
        self.masters = os.path.join(self.tmp, "masters")
        self.linked_masters = os.path.join(self.hidden, "masters")
        replace_file(self.masters, "support:{PLAIN}support-pw\n")
        replace_file(self.linked_masters, "support:{PLAIN}support-pw\n")
        self.provider = Provider(self.tmp) if Provider is not None else None
        config = f'[auth]\nmaster_passwd_file = "{self.masters}"\n'
        config += oauth_config(self.provider)
        self.server = AbuseServer(self.data, self.USERS, shards=2, config=config)

    def login(self, mechanism, message):
        """True when AUTHENTICATE succeeds, False when refused as a failed login."""
        client = imaplib.IMAP4(HOST, self.server.imap_port, timeout=30)
        try:
            client.authenticate(mechanism, lambda _: message)
            accepted = True
        except imaplib.IMAP4.error as error:
            self.assertIn("AUTHENTICATIONFAILED", str(error))
            accepted = False
        client.logout()
        return accepted

    def master_login(self, user, master, password):
        return self.login("PLAIN", f"{user}\0{master}\0{password}".encode())

    def token_login(self, user, token):
        return self.login("OAUTHBEARER", f"n,a={user},\x01auth=Bearer {token}\x01\x01".encode())

    def test_a_master_user_added_while_running_logs_in(self):
        self.server.start()
        self.assertTrue(self.master_login("alice", "support", "support-pw"))
        self.assertFalse(self.master_login("alice", "helper", "helper-pw"))
        replace_file(self.masters, "support:{PLAIN}support-pw\nhelper:{PLAIN}helper-pw\n")
        self.wait_for_log("master users file reloaded")
        self.assertTrue(self.master_login("bob", "helper", "helper-pw"))
        self.wait_for_log('user="bob" authenticated_as="helper"')
        # A file that cannot be read keeps the master users loaded before. Swapped in by one
        # rename (a link to a directory): a moment without a file would mean no master users.
        os.mkdir(os.path.join(self.tmp, "not-a-file"))
        os.symlink(os.path.join(self.tmp, "not-a-file"), self.masters + ".link")
        os.rename(self.masters + ".link", self.masters)
        self.wait_for_log("master users file changed but cannot be loaded; "
                          "keeping the old master users")
        self.assertTrue(self.master_login("alice", "helper", "helper-pw"))

    def test_sighup_reloads_a_master_users_file_no_event_announces(self):
        os.remove(self.masters)
        os.symlink(self.linked_masters, self.masters)
        self.server.start()
        # The watcher's SIGHUP handler is in place once it has acknowledged the passwd-file.
        deadline = time.monotonic() + 10
        while not acknowledged_by(self.data, self.server.process.pid):
            self.assertLess(time.monotonic(), deadline, "the watcher never acknowledged")
            time.sleep(0.02)
        # Edited in place, in a directory the server does not watch.
        with open(self.linked_masters, "a", encoding="utf-8") as f:
            f.write("night:{PLAIN}night-pw\n")
        self.server.process.send_signal(signal.SIGHUP)
        self.wait_for_log("master users file reloaded")
        # Reloaded by the signal, not by the periodic check of the files' identity (which
        # would see the edit too, a few seconds later).
        log = self.server.log_text()
        signalled = log.find("SIGHUP: reading the passwd, master users and JWKS files again")
        self.assertGreaterEqual(signalled, 0, log[-3000:])
        self.assertLess(signalled, log.find("master users file reloaded"))
        self.assertTrue(self.master_login("alice", "night", "night-pw"))
        # The TLS certificates were reloaded by the same signal.
        self.wait_for_log("TLS certificates reloaded (SIGHUP)")

    def test_a_rotated_jwks_key_and_a_broken_jwks_file(self):
        if self.provider is None:
            self.skipTest("the `cryptography` package is missing: no Ed25519 signer")
        self.server.start()
        old_token = self.provider.token("alice")
        self.assertTrue(self.token_login("alice", old_token))
        self.provider.rotate()
        self.wait_for_log("JWKS file reloaded")
        self.assertTrue(self.token_login("alice", self.provider.token("alice")))
        self.assertFalse(self.token_login("alice", old_token), "the old key's token")
        # A broken file keeps the keys loaded before.
        replace_file(self.provider.jwks, "{not json")
        self.wait_for_log("JWKS file changed but cannot be loaded; keeping the old keys")
        self.assertTrue(self.token_login("bob", self.provider.token("bob")))


if __name__ == "__main__":
    unittest.main()
