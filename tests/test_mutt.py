"""neomutt, Debian's terminal mail client, driven in batch by pushed key strokes on a
pseudo-terminal (`script`): it reads a message, saves one into a new nested folder, flags one,
deletes one and syncs; a run that only opens and quits must change nothing."""

import os
import shutil
import subprocess
import unittest

from harness import HOST, ServerTest, lmtp_deliver, message
from test_imap import fetch_uid_map
from test_offlineimap import server_state

NEOMUTT = shutil.which("neomutt")
SCRIPT = shutil.which("script")


@unittest.skipIf(
    (NEOMUTT is None or SCRIPT is None) and not os.environ.get("CI"),
    "neomutt not installed (apt-get install neomutt)",
)
class Neomutt(ServerTest):
    def write_config(self):
        config = os.path.join(self.tmp, "neomuttrc")
        with open(config, "w", encoding="utf-8") as f:
            f.write(
                f"""set folder = "imap://{HOST}:{self.server.imap_port}/"
set spoolfile = "+INBOX"
set imap_user = "alice"
set imap_pass = "alice-pw"
set imap_authenticators = "login"
set ssl_starttls = no
set ssl_force_tls = no
set header_cache = ""
set message_cachedir = ""
set sort = unsorted
set resolve = yes
set confirmcreate = no
set confirmappend = no
set delete = yes
set quit = yes
set move = no
set mark_old = no
set wait_key = no
set pipe_decode = no
"""
            )
        return config

    def neomutt(self, config, keys):
        log = os.path.join(self.tmp, "neomutt.log")
        inner = f"{NEOMUTT} -n -F {config} -d 2 -l {log} -e 'push \"{keys}\"'"
        result = subprocess.run(
            [SCRIPT, "-qec", inner, "/dev/null"],
            capture_output=True, timeout=60, env={**os.environ, "TERM": "xterm"},
        )
        with open(log + "0", encoding="utf-8", errors="replace") as f:
            trace = f.read()
        self.assertEqual(result.returncode, 0, trace[-4000:])
        return trace

    def test_read_save_flag_delete_then_an_idle_run_changes_nothing(self):
        lmtp = self.server.lmtp()
        sent = [message(f"mutt{i}", f"neomutt body {i}") for i in range(3)]
        for raw in sent:
            self.assertEqual(lmtp_deliver(lmtp, "s@x", ["alice"], raw)[0][0], 250)
        lmtp.quit()
        config = self.write_config()
        piped = os.path.join(self.tmp, "piped.eml")

        # Message 1 is saved (copied, then marked deleted) into a new nested folder; the cursor
        # moves on: message 2 is piped to a file (read whole over IMAP) and flagged; message 3
        # is deleted; the sync stores the flags and expunges.
        self.neomutt(
            config,
            "<save-message>=Archive/2026<enter>"
            f"<pipe-message>cat > {piped}<enter>"
            "<flag-message><delete-message><sync-mailbox><quit>",
        )

        with open(piped, "rb") as f:
            self.assertTrue(
                f.read().replace(b"\r\n", b"\n").endswith(sent[1].replace(b"\r\n", b"\n")),
                "neomutt read message 2 whole",
            )
        c = self.server.imap("alice", "alice-pw")
        c.select("INBOX")
        inbox = list(fetch_uid_map(c).values())
        self.assertEqual(len(inbox), 1, "messages 1 and 3 were expunged")
        self.assertTrue(inbox[0].endswith(sent[1]))
        typ, data = c.search(None, "FLAGGED")
        self.assertEqual(data[0].split(), [b"1"], "message 2 is flagged")
        c.select("Archive/2026")
        archived = list(fetch_uid_map(c).values())
        self.assertEqual(len(archived), 1)
        self.assertTrue(archived[0].endswith(sent[0]), "the saved copy is message 1")
        c.logout()

        before = server_state(self.server)
        self.neomutt(config, "<quit>")
        self.assertEqual(server_state(self.server), before)


if __name__ == "__main__":
    unittest.main()
