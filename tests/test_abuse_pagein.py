"""Issue 7: a cold message body is read in before it is sent, never by a major page fault
inside the send on the shard's thread (every other session of the shard would wait for the
disk). Issue 13: it is read in through the shard's io_uring (shard/src/pagein.rs).

The bodies are evicted from the page cache after the server opened the store (posix_fadvise
DONTNEED on the spool segments, checked with mincore), then fetched; the server's major page
faults (/proc/PID/stat) must not grow while it sends them, the bodies must arrive whole, and
`skua_pagein_ring_reads_total` must have counted reads through the ring. Skipped where the
page cache keeps the files (tmpfs)."""

import ctypes
import glob
import mmap
import os
import shutil
import tempfile
import smtplib
import unittest

from harness import HOST, AbuseServer, check_at_end, free_port, lmtp_deliver, RawImap, wait_for_port
from test_metrics import scrape, total

PAGE = os.sysconf("SC_PAGE_SIZE")
LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]


def resident_pages(path):
    """(resident, total) pages of `path` in the page cache (mincore over a fresh mapping)."""
    size = os.path.getsize(path)
    pages = (size + PAGE - 1) // PAGE
    with open(path, "rb") as f:
        # A private mapping can lend its address to ctypes; unwritten, it shares the cache.
        m = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY)
        try:
            anchor = ctypes.c_char.from_buffer(m)
            vec = (ctypes.c_ubyte * pages)()
            status = LIBC.mincore(ctypes.c_void_p(ctypes.addressof(anchor)), size, vec)
            del anchor
            if status != 0:
                raise OSError(ctypes.get_errno(), "mincore")
            return sum(v & 1 for v in vec), pages
        finally:
            m.close()


def evict(path):
    with open(path, "rb") as f:
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def major_faults(pid):
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[9])  # majflt: field 12 of stat, the 10th after the command name


class ColdBodies(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-abuse-pagein-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        check_at_end(self, os.path.join(self.tmp, "data"))
        self.data = os.path.join(self.tmp, "data")
        self.metrics_port = free_port()
        config = f'[metrics]\nlisten = ["{HOST}:{self.metrics_port}"]\n'
        self.server = AbuseServer(self.data, users={"alice": "pw"}, config=config)
        self.server.start()
        self.addCleanup(self.server.stop_quietly)

    def ring_reads(self):
        wait_for_port(self.metrics_port, self.server.process)
        _, _, samples = scrape(self.metrics_port)
        return total(samples, "skua_pagein_ring_reads_total")

    def test_cold_bodies_are_read_in_before_the_send(self):
        body = ("cold body line\r\n" * 65536)  # 1 MiB
        client = smtplib.LMTP("127.0.0.1", self.server.lmtp_port, timeout=30)
        client.ehlo_or_helo_if_needed()
        for i in range(12):
            data = f"Subject: cold {i}\r\n\r\n{body}".encode()
            lmtp_deliver(client, "a@example.org", ["alice@localhost"], data)
        client.quit()
        self.server.stop()
        self.server.start()
        c = RawImap(self.server.imap_port, timeout=60)
        c.greeting()
        c.login("alice", "pw")
        c.command("s", "SELECT INBOX")
        # The code path itself is paged in by a first FETCH (its pages are the binary's).
        c.command("w", "FETCH 1 BODY.PEEK[]", timeout=60)
        # Now the bodies leave the page cache: the store is open (recovery read what it read),
        # and pages the server never mapped can be dropped.
        segments = glob.glob(os.path.join(self.server.user_dir("alice"), "spool", "*.seg"))
        self.assertTrue(segments)
        for path in segments:
            evict(path)
        resident = sum(resident_pages(p)[0] for p in segments)
        total = sum(resident_pages(p)[1] for p in segments)
        if resident > total // 2:
            self.skipTest(f"the page cache keeps the spool here ({resident}/{total} pages)")
        reads_before = self.ring_reads()
        before = major_faults(self.server.process.pid)
        lines, tagged = c.command("f", "FETCH 2:12 BODY.PEEK[]", timeout=60)
        after = major_faults(self.server.process.pid)
        self.assertTrue(tagged.startswith(b"f OK"), tagged)
        self.assertEqual(
            after - before, 0,
            f"{after - before} major page faults while sending 11 MiB of cold bodies",
        )
        received = b"".join(line for line in lines if isinstance(line, bytes))
        for i in range(1, 12):
            expected = f"Subject: cold {i}\r\n\r\n{body}".encode()
            self.assertIn(expected, received, f"message {i + 1} not sent whole")
        self.assertGreater(
            self.ring_reads() - reads_before, 0, "no cold body was read through the ring"
        )
        c.close()


if __name__ == "__main__":
    unittest.main()
