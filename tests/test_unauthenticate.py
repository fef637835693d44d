"""UNAUTHENTICATE (RFC 8437, issue 9) against the real binary: one connection logs in as one
user, logs out of the user without closing, and logs in as users whose stores live on other
shards (the connection is handed over again, as after a first login). Each login sees its own
user's mail, and the server's log shows the store let go."""

import time
import unittest

from harness import RawImap, ServerTest, lmtp_deliver, message


class Unauthenticate(ServerTest):
    USERS = {f"user{i}": f"pw{i}" for i in range(6)}

    def test_one_connection_serves_users_on_every_shard_in_turn(self):
        lmtp = self.server.lmtp()
        for name in self.USERS:
            lmtp_deliver(lmtp, "s@example.org", [f"{name}@localhost"],
                         message(f"for {name}", f"body of {name}"))
        lmtp.quit()
        c = RawImap(self.server.imap_port)
        try:
            self.assertTrue(c.greeting().startswith(b"* OK"))
            _, tagged = c.command("u0", "UNAUTHENTICATE")
            self.assertTrue(tagged.startswith(b"u0 BAD"), tagged)
            # Twice round, so the connection moves to every shard and back.
            for round_ in range(2):
                for n, (name, password) in enumerate(self.USERS.items()):
                    tag = f"r{round_}n{n}"
                    c.login(name, password, tag=tag + "l")
                    lines, tagged = c.command(tag + "s", "SELECT INBOX")
                    self.assertTrue(tagged.startswith(f"{tag}s OK".encode()), tagged)
                    self.assertIn(b"* 1 EXISTS\r\n", lines)
                    lines, tagged = c.command(tag + "f", "FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
                    self.assertTrue(tagged.startswith(f"{tag}f OK".encode()), tagged)
                    self.assertTrue(any(f"for {name}".encode() in line for line in lines), lines)
                    _, tagged = c.command(tag + "u", "UNAUTHENTICATE")
                    self.assertTrue(tagged.startswith(f"{tag}u OK".encode()), tagged)
                    _, tagged = c.command(tag + "x", "SELECT INBOX")
                    self.assertTrue(tagged.startswith(f"{tag}x BAD".encode()), tagged)
            _, tagged = c.command("z", "LOGOUT")
            self.assertTrue(tagged.startswith(b"z OK"), tagged)
        finally:
            c.close()
        # The log is written by a background writer: give the last lines a moment.
        for _ in range(100):
            count = self.server.log_text().count("logged out, connection kept")
            if count >= 2 * len(self.USERS):
                break
            time.sleep(0.05)
        self.assertGreaterEqual(count, 2 * len(self.USERS))


if __name__ == "__main__":
    unittest.main()
