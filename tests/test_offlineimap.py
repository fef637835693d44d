"""offlineimap (Debian's offlineimap3), a real mail client, syncing a mailbox tree both ways with
skua; a run after nothing changed must change nothing on either side."""

import os
import re
import shutil
import subprocess
import unittest

from harness import HOST, ServerTest, lmtp_deliver, message

OFFLINEIMAP = shutil.which("offlineimap")


def server_state(server):
    """{mailbox: sorted [(uid, flags, size)]} for every mailbox of alice: what a sync may change."""
    c = server.imap("alice", "alice-pw")
    state = {}
    typ, listing = c.list()
    assert typ == "OK", listing
    for line in listing:
        name = re.search(rb'"/" (.*)$', line).group(1).decode()
        name = name.strip('"')
        typ, _ = c.select(f'"{name}"', readonly=True)
        assert typ == "OK", name
        typ, data = c.fetch("1:*", "(UID FLAGS RFC822.SIZE)")
        items = []
        for item in data:
            if item is None:
                continue
            text = item.decode() if isinstance(item, bytes) else item[0].decode()
            uid = int(re.search(r"UID (\d+)", text).group(1))
            flags = re.search(r"FLAGS \(([^)]*)\)", text).group(1).split()
            size = int(re.search(r"RFC822\.SIZE (\d+)", text).group(1))
            items.append((uid, tuple(sorted(f for f in flags if f != "\\Recent")), size))
        state[name] = sorted(items)
    c.logout()
    return state


def local_state(maildir):
    """{folder: sorted file names}: the Maildir tree offlineimap keeps."""
    state = {}
    for root, dirs, files in os.walk(maildir):
        if os.path.basename(root) in ("cur", "new"):
            folder = os.path.relpath(os.path.dirname(root), maildir)
            state.setdefault(folder, []).extend(files)
    return {k: sorted(v) for k, v in state.items()}


def folder_files(maildir, folder):
    """Paths of the messages in a local folder."""
    paths = []
    for sub in ("cur", "new"):
        path = os.path.join(maildir, folder, sub)
        paths += [os.path.join(path, n) for n in os.listdir(path)]
    return paths


@unittest.skipIf(
    OFFLINEIMAP is None and not os.environ.get("CI"),
    "offlineimap not installed (apt-get install offlineimap3)",
)
class Offlineimap(ServerTest):
    def write_config(self, maildir):
        config = os.path.join(self.tmp, "offlineimaprc")
        with open(config, "w", encoding="utf-8") as f:
            f.write(
                f"""[general]
accounts = skua
metadata = {self.tmp}/offlineimap-meta

[Account skua]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {maildir}
sep = /

[Repository remote]
type = IMAP
remotehost = {HOST}
remoteport = {self.server.imap_port}
remoteuser = alice
remotepass = alice-pw
ssl = no
starttls = no
"""
            )
        return config

    def offlineimap(self, config):
        result = subprocess.run(
            [OFFLINEIMAP, "-c", config, "-o", "-u", "basic"],
            capture_output=True, text=True, timeout=180,
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertNotIn("ERROR", result.stdout + result.stderr, result.stdout + result.stderr)
        return result.stdout + result.stderr

    def test_tree_both_ways_and_an_idle_run_changes_nothing(self):
        lmtp = self.server.lmtp()
        sent = [message(f"oi{i}", f"offlineimap body {i}") for i in range(4)]
        for raw in sent:
            self.assertEqual(lmtp_deliver(lmtp, "s@x", ["alice"], raw)[0][0], 250)
        lmtp.quit()
        c = self.server.imap("alice", "alice-pw")
        c.create("Projects/2026/Q4")
        c.append("Projects/2026/Q4", r"(\Flagged \Seen)", None, message("q4", "deep"))
        c.append("Projects", None, None, message("proj", "shallow"))
        c.logout()

        maildir = os.path.join(self.tmp, "Mail")
        os.makedirs(maildir)
        config = self.write_config(maildir)
        self.offlineimap(config)

        local = local_state(maildir)
        self.assertEqual(len(local["INBOX"]), 4, local)
        self.assertEqual(len(local["Projects"]), 1, local)
        self.assertEqual(len(local["Projects/2026/Q4"]), 1, local)
        self.assertRegex(local["Projects/2026/Q4"][0], r":2,.*F.*S", "flags became Maildir flags")
        bodies = []
        for path in folder_files(maildir, "INBOX"):
            with open(path, "rb") as f:
                bodies.append(f.read().replace(b"\r\n", b"\n"))
        for raw in sent:
            # LMTP delivery put a Return-Path line before the message.
            ends = [b for b in bodies if b.endswith(raw.replace(b"\r\n", b"\n"))]
            self.assertEqual(len(ends), 1, "a message differs after sync")

        # Up: a flag, a deletion, a new message and a new folder with a message in it.
        inbox = folder_files(maildir, "INBOX")
        first, second = sorted(inbox)[:2]
        base = os.path.basename(first).split(":2,")[0]
        os.rename(first, os.path.join(maildir, "INBOX", "cur", base + ":2,FS"))
        os.remove(second)
        # offlineimap wants every level of a nested Maildir tree to be a Maildir itself.
        new_folder = os.path.join(maildir, "Local", "Made")
        for folder in (os.path.join(maildir, "Local"), new_folder):
            for sub in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(folder, sub))
        up = message("from offlineimap", "written locally")
        with open(os.path.join(new_folder, "new", "1700000000.1.host"), "wb") as f:
            f.write(up)
        self.offlineimap(config)

        state = server_state(self.server)
        self.assertEqual(len(state["INBOX"]), 3, state)
        flagged = [m for m in state["INBOX"] if "\\Flagged" in m[1]]
        self.assertEqual(len(flagged), 1, state["INBOX"])
        self.assertIn("\\Seen", flagged[0][1])
        self.assertEqual(len(state.get("Local/Made", [])), 1, state)

        # Nothing changed on either side: a third run must change nothing anywhere.
        before = (server_state(self.server), local_state(maildir))
        self.offlineimap(config)
        self.assertEqual((server_state(self.server), local_state(maildir)), before)


if __name__ == "__main__":
    unittest.main()
