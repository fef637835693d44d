"""mbsync (isync), a real mail client from Debian's packages, syncing both ways with skua."""

import os
import re
import shutil
import subprocess
import unittest

from harness import HOST, ServerTest, lmtp_deliver, message
from test_imap import fetch_uid_map
from test_offlineimap import local_state, server_state

MBSYNC = shutil.which("mbsync")


def normalized(raw):
    """mbsync stores Maildir files with LF line ends and adds an X-TUID header while syncing."""
    lines = raw.replace(b"\r\n", b"\n").split(b"\n")
    return b"\n".join(l for l in lines if not l.startswith(b"X-TUID: "))


@unittest.skipIf(MBSYNC is None and not os.environ.get("CI"), "mbsync not installed (apt-get install isync)")
class Mbsync(ServerTest):
    def write_config(self, maildir):
        config = os.path.join(self.tmp, "mbsyncrc")
        with open(config, "w", encoding="utf-8") as f:
            f.write(
                f"""IMAPAccount skua
Host {HOST}
Port {self.server.imap_port}
User alice
Pass alice-pw
SSLType None
AuthMechs LOGIN

IMAPStore skua-remote
Account skua

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel skua
Far :skua-remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
"""
            )
        return config

    def mbsync(self, config):
        result = subprocess.run(
            [MBSYNC, "-c", config, "-a"], capture_output=True, text=True, timeout=120
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_sync_down_and_up(self):
        sent = [message(f"mb{i}", f"mbsync body {i}") for i in range(5)]
        lmtp = self.server.lmtp()
        for raw in sent:
            self.assertEqual(lmtp_deliver(lmtp, "s@x", ["alice"], raw)[0][0], 250)
        lmtp.quit()
        c = self.server.imap("alice", "alice-pw")
        c.create("Projects")
        c.append("Projects", r"(\Flagged)", None, message("proj", "in a folder"))
        c.create("Projects/2026/Q4")
        c.append("Projects/2026/Q4", r"(\Seen)", None, message("q4", "deeper"))
        c.logout()

        maildir = os.path.join(self.tmp, "Mail")
        os.makedirs(maildir)
        config = self.write_config(maildir)
        self.mbsync(config)

        local = []
        for sub in ("cur", "new"):
            folder = os.path.join(maildir, "INBOX", sub)
            for name in os.listdir(folder):
                with open(os.path.join(folder, name), "rb") as f:
                    local.append(f.read())
        self.assertEqual(len(local), 5)
        local = [normalized(m) for m in local]
        for raw in sent:
            self.assertTrue(
                any(m.endswith(normalized(raw)) for m in local), "a message differs after sync"
            )
        projects = os.listdir(os.path.join(maildir, "Projects", "cur")) + os.listdir(
            os.path.join(maildir, "Projects", "new")
        )
        self.assertEqual(len(projects), 1)
        self.assertIn("F", projects[0].split(":2,")[-1], "\\Flagged became the maildir F flag")
        self.assertEqual(len(local_state(maildir)["Projects/2026/Q4"]), 1, "the tree came down")

        # Local changes go back up: a flag and a deletion on a synced message, and a new message.
        inbox = os.path.join(maildir, "INBOX")
        synced = [(sub, n) for sub in ("cur", "new") for n in os.listdir(os.path.join(inbox, sub))]
        (sub, first), (sub2, second) = sorted(synced, key=lambda e: e[1])[:2]
        base = first.split(":2,")[0]
        os.rename(os.path.join(inbox, sub, first), os.path.join(inbox, "cur", base + ":2,ST"))
        base = second.split(":2,")[0]
        os.rename(os.path.join(inbox, sub2, second), os.path.join(inbox, "cur", base + ":2,F"))
        new_raw = message("from mbsync", "written locally")
        with open(os.path.join(inbox, "new", "1700000000.local.host"), "wb") as f:
            f.write(new_raw)
        # A new local folder with a parent, made as a Maildir client makes them: the parent is a
        # folder too (the server creates superiors of a new name, RFC 9051 §6.3.4).
        made = os.path.join(maildir, "Local", "Made")
        for folder in (os.path.join(maildir, "Local"), made):
            for sub in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(folder, sub))
        with open(os.path.join(made, "new", "1700000001.local.host"), "wb") as f:
            f.write(message("made locally", "in a new folder"))
        self.mbsync(config)
        self.assertEqual(len(server_state(self.server).get("Local/Made", [])), 1, "folder went up")

        c = self.server.imap("alice", "alice-pw")
        c.select("INBOX")
        bodies = [normalized(b) for b in fetch_uid_map(c).values()]
        self.assertIn(normalized(new_raw), bodies)
        self.assertEqual(len(bodies), 5, "4 delivered messages left plus the uploaded one")
        typ, data = c.search(None, "FLAGGED")
        self.assertEqual(len(data[0].split()), 1, "the Maildir F flag became \\Flagged")
        c.logout()
        # A run with nothing changed succeeds and changes nothing on either side.
        before = (server_state(self.server), local_state(maildir))
        self.mbsync(config)
        self.assertEqual((server_state(self.server), local_state(maildir)), before)


if __name__ == "__main__":
    unittest.main()
