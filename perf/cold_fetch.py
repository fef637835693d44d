"""Time of one FETCH of N message bodies whose pages were evicted from the page cache, for
each skua binary given, three times each: what reading cold bodies in before the send costs
(shard/src/pagein.rs). Each binary gets a fresh data dir on free loopback ports: N messages of
SIZE bytes are delivered over LMTP, the server stops, the spool segments are fsynced and
evicted (posix_fadvise DONTNEED), the server starts again, and `FETCH 1:N (BODY.PEEK[])` is
timed from imaplib (so the client's parsing is in the figure too). The server runs on CPU 0.

    python3 perf/cold_fetch.py N SIZE SKUA_BINARY...
    e.g. python3 perf/cold_fetch.py 60 1000000 /tmp/skua-old /tmp/skua-new
"""
import glob
import imaplib
import os
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time

REPEATS = 3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, data, imap_port, lmtp_port):
    process = subprocess.Popen(
        ["taskset", "-c", "0", binary, "serve", "--data-dir", data, "--imap-listen",
         f"127.0.0.1:{imap_port}", "--lmtp-listen", f"127.0.0.1:{lmtp_port}", "--no-imaps",
         "--shards", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            imaplib.IMAP4("127.0.0.1", imap_port).logout()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"{binary} did not start")


def evict(data):
    for segment in glob.glob(os.path.join(data, "users", "*", "*", "spool", "*.seg")):
        with open(segment, "rb") as f:
            os.fsync(f.fileno())
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def measure(binary, count, size):
    top = tempfile.mkdtemp(prefix="skua-cold-fetch-")
    try:
        data = os.path.join(top, "data")
        os.mkdir(data)
        with open(os.path.join(data, "passwd"), "w", encoding="ascii") as f:
            f.write("alice:{PLAIN}pw::::::\n")
        imap_port, lmtp_port = free_port(), free_port()
        process = start(binary, data, imap_port, lmtp_port)
        line = "x" * 76 + "\r\n"
        body = line * max(1, size // len(line))
        client = smtplib.LMTP("127.0.0.1", lmtp_port)
        for n in range(count):
            client.sendmail("s@example.org", ["alice"], f"Subject: {n}\r\n\r\n{body}")
        client.quit()
        process.terminate()
        process.wait()
        took = []
        for _ in range(REPEATS):
            evict(data)
            process = start(binary, data, imap_port, lmtp_port)
            imap = imaplib.IMAP4("127.0.0.1", imap_port)
            imap.login("alice", "pw")
            imap.select("INBOX")
            started = time.perf_counter()
            typ, got = imap.fetch(f"1:{count}", "(BODY.PEEK[])")
            took.append(time.perf_counter() - started)
            bodies = sum(1 for item in got if isinstance(item, tuple))
            if typ != "OK" or bodies != count:
                raise SystemExit(f"{binary}: {typ}, {bodies} of {count} bodies")
            imap.logout()
            process.terminate()
            process.wait()
        return took
    finally:
        shutil.rmtree(top, ignore_errors=True)


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    count, size = int(sys.argv[1]), int(sys.argv[2])
    for binary in sys.argv[3:]:
        took = measure(binary, count, size)
        print(binary, " ".join(f"{t * 1000:.0f} ms" for t in took))


if __name__ == "__main__":
    main()
