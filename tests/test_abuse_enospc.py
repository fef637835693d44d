"""Abuse suite, issue 7 defect 5: a full disk never turns a refusal into a later delivery.

Before the fix, when the spool write of a delivery succeeded and the index write hit ENOSPC,
the delivery was refused with 452 but the spool record stayed, and recovery's catch-up added
the message back after a restart: the MTA retried and the user got it twice (APPEND the
same). The test mounts a small tmpfs as the data dir (we run as root in CI; skipped with a
message where mounting is not permitted). It first gives each of four users 62 messages, so
that each user's next index record starts a new 4 KiB page (128-byte header + 62 × 64-byte
records, core/FORMAT.md), fills the filesystem to the last page, and delivers small messages
until every attempt is refused: a small spool record still fits in its segment's last,
partly used page, while the index record needs a page there is no room for. Then it frees
space, restarts, and checks that every acknowledged message is there exactly once and no
refused one is.
"""

import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import AbuseServer, OtherUserProbe, check_at_end, lmtp_deliver, message

TARGETS = {"alice": "alice-pw", "carol": "carol-pw", "dave": "dave-pw", "erin": "erin-pw"}
USERS = {**TARGETS, "bob": "bob-pw"}
FILLER_CHUNK = 64 * 1024
# Index records that fill an index's first 4 KiB page: (4096 - 128) / 64.
RECORDS_TO_PAGE_END = 62


def mount_tmpfs(path, size="8m"):
    """Mounts a tmpfs; returns None, or why it could not."""
    try:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path],
            capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    if result.returncode != 0:
        return result.stderr.strip() or f"mount exited {result.returncode}"
    return None


def fill(directory, prefix):
    """Writes filler files (up to 1 MiB each) until the filesystem has not one free page left;
    returns their paths."""
    paths = []
    chunk = b"f" * FILLER_CHUNK
    while True:
        path = os.path.join(directory, f"{prefix}-{len(paths):05d}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        paths.append(path)
        try:
            for _ in range(16):
                os.write(fd, chunk)
        except OSError:
            # Full: top up with single bytes in case a short write left part of a page.
            try:
                while os.write(fd, b"f"):
                    pass
            except OSError:
                return paths
        finally:
            os.close(fd)


def message_ids(client):
    """Every Message-ID in INBOX, with repeats."""
    typ, data = client.select("INBOX")
    assert typ == "OK", (typ, data)
    if data == [b"0"]:
        return []
    typ, data = client.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    assert typ == "OK", (typ, data)
    ids = []
    for item in data:
        if isinstance(item, tuple):
            m = re.search(rb"Message-ID:\s*(<[^>]+>)", item[1], re.I)
            if m:
                ids.append(m.group(1).decode())
    return ids


class DiskFull(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-abuse-enospc-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.mount = os.path.join(self.tmp, "fs")
        os.makedirs(self.mount)
        why = mount_tmpfs(self.mount)
        if why is not None:
            self.skipTest(f"cannot mount a small tmpfs for the disk-full test ({why})")
        self.addCleanup(subprocess.run, ["umount", self.mount], capture_output=True, timeout=30)
        check_at_end(self, os.path.join(self.mount, "data"))
        self.data = os.path.join(self.mount, "data")
        self.server = AbuseServer(self.data, USERS)
        # The server's log lives outside the small filesystem.
        self.server.log_path = os.path.join(self.tmp, "skua.log")
        self.server.start()

    def tearDown(self):
        self.server.stop_quietly()

    def preload(self, acked):
        """Gives every target user RECORDS_TO_PAGE_END messages (one transaction each, to all
        of them), so each index's next record needs a new page."""
        lmtp = self.server.lmtp()
        for i in range(RECORDS_TO_PAGE_END):
            mid = f"<pre-{i}@test>"
            raw = message(f"pre {i}", "before the disk fills", message_id=mid)
            replies = lmtp_deliver(lmtp, "s@example.org", [f"{u}@localhost" for u in TARGETS], raw)
            self.assertEqual([c for c, _ in replies], [250] * len(TARGETS), replies)
            for user in TARGETS:
                acked[user].append(mid)
        lmtp.quit()

    def exhaust(self, attempt, start_size):
        """Calls attempt(i, user, size) -> "ok" | "refused" with ever smaller sizes, round robin
        over the target users, until 12 attempts in a row at the smallest size are refused."""
        size = start_size
        refused_in_a_row = 0
        i = 0
        while refused_in_a_row < 12 and i < 3000:
            user = list(TARGETS)[i % len(TARGETS)]
            outcome = attempt(i, user, size)
            i += 1
            if outcome == "ok":
                refused_in_a_row = 0
            else:
                refused_in_a_row += 1
                size = max(64, size // 2)
        return i

    def check_after_restart(self, acked, refused, what):
        self.assertEqual(self.server.stop(), 0, self.server.log_text()[-2000:])
        self.server.start()
        for user, password in TARGETS.items():
            c = self.server.imap(user, password)
            stored = message_ids(c)
            c.logout()
            lost = [m for m in acked[user] if m not in stored]
            twice = sorted({m for m in stored if stored.count(m) > 1})
            revived = [m for m in refused[user] if m in stored]
            self.assertFalse(lost, f"{what}: {user}: acknowledged messages missing: {lost[:5]}")
            self.assertFalse(twice, f"{what}: {user}: messages stored twice: {twice[:5]}")
            self.assertFalse(
                revived,
                f"{what}: {user}: {len(revived)} refused messages came back after a restart "
                f"(of {len(refused[user])} refused): {revived[:5]}",
            )

    def test_lmtp_refusals_are_452_and_never_come_back(self):
        acked = {u: [] for u in TARGETS}
        refused = {u: [] for u in TARGETS}
        other_codes = []
        self.preload(acked)
        with OtherUserProbe(self.server, "bob", "bob-pw") as probe:
            fillers = fill(self.mount, "filler")
            lmtp = self.server.lmtp()

            def attempt(i, user, size):
                mid = f"<full-{i}@test>"
                raw = message(f"full {i}", "z" * size, message_id=mid)
                replies = lmtp_deliver(lmtp, "s@example.org", [f"{user}@localhost"], raw)
                code = replies[0][0] if replies else None
                if code == 250:
                    acked[user].append(mid)
                    return "ok"
                if code == 452:
                    refused[user].append(mid)
                else:
                    # Anything else: the message's fate is unknown to the sender; count it as
                    # not acknowledged, but a permanent or odd code is itself a failure.
                    other_codes.append((code, replies))
                    refused[user].append(mid)
                return "refused"

            attempts = self.exhaust(attempt, 256)
            lmtp.quit()
        probe.check(self, "deliveries to a full disk")
        total_acked = sum(map(len, acked.values()))
        total_refused = sum(map(len, refused.values()))
        print(f"\n  LMTP on a full disk: {attempts} attempts, {total_acked} acked, "
              f"{total_refused} refused")
        self.assertGreater(total_acked, 0)
        self.assertGreater(total_refused, 0, "the disk never filled")
        self.assertFalse(other_codes, f"refusals must be 452 (temporary): {other_codes[:3]}")
        # The log is written by a background writer: give the refusal's line a moment.
        def logged(log):
            return any(re.search(r"no space|enospc", line, re.I) and any(u in line for u in TARGETS)
                       for line in log.splitlines())

        for _ in range(100):
            log = self.server.log_text()
            if logged(log):
                break
            time.sleep(0.05)
        for path in fillers:
            if os.path.exists(path):
                os.unlink(path)
        self.check_after_restart(acked, refused, "LMTP")
        self.assertTrue(
            logged(log),
            "a disk-full refusal must be logged with the user (and the file)",
        )

    def test_append_refusals_are_no_and_never_come_back(self):
        acked = {u: [] for u in TARGETS}
        refused = {u: [] for u in TARGETS}
        clients = {u: self.server.imap(u, p) for u, p in TARGETS.items()}
        bad = []
        self.preload(acked)
        with OtherUserProbe(self.server, "bob", "bob-pw") as probe:
            fillers = fill(self.mount, "filler")

            def attempt(i, user, size):
                mid = f"<append-{i}@test>"
                try:
                    typ, data = clients[user].append(
                        "INBOX", None, None, message(f"append {i}", "z" * size, message_id=mid)
                    )
                except Exception as error:  # noqa: BLE001 - a BAD or a dropped session
                    bad.append(repr(error))
                    refused[user].append(mid)
                    return "refused"
                if typ == "OK":
                    acked[user].append(mid)
                    return "ok"
                if typ != "NO":
                    bad.append((typ, data))
                refused[user].append(mid)
                return "refused"

            attempts = self.exhaust(attempt, 256)
        probe.check(self, "APPENDs to a full disk")
        for c in clients.values():
            try:
                c.logout()
            except Exception:  # noqa: BLE001
                pass
        print(f"\n  APPEND on a full disk: {attempts} attempts, "
              f"{sum(map(len, acked.values()))} acked, {sum(map(len, refused.values()))} refused")
        self.assertGreater(sum(map(len, refused.values())), 0, "the disk never filled")
        self.assertFalse(bad, f"refused APPENDs must get NO: {bad[:3]}")
        for path in fillers:
            if os.path.exists(path):
                os.unlink(path)
        self.check_after_restart(acked, refused, "APPEND")


if __name__ == "__main__":
    unittest.main()
