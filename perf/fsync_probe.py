"""How long one fdatasync after a 4 KiB write takes on this machine's file system, for a file
that grows with each write, one preallocated with posix_fallocate (size set), one with
fallocate KEEP_SIZE (size still grows) and one whose blocks were written with zeros first
(neither size nor allocation changes): what spool-segment preallocation could gain
(perf/results/2026-12-07-issue13-ab.md).

    python3 perf/fsync_probe.py [DIRECTORY]   (default: the current directory)
"""
import os
import sys
import time

WRITES = 300
BLOCK = 4096
FALLOC_FL_KEEP_SIZE = 1


def probe(directory, name, setup):
    path = os.path.join(directory, f"fsync-probe-{os.getpid()}-{name}")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        setup(fd)
        os.fsync(fd)
        took = []
        for i in range(WRITES):
            os.pwrite(fd, b"x" * BLOCK, i * BLOCK)
            started = time.perf_counter()
            os.fdatasync(fd)
            took.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        os.unlink(path)
    took.sort()
    p50, p90 = took[WRITES // 2] * 1e3, took[WRITES * 9 // 10] * 1e3
    print(f"{name:12} fdatasync p50 {p50:.3f} ms  p90 {p90:.3f} ms")


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "."
    size = BLOCK * (WRITES + 100)
    probe(directory, "appended", lambda fd: None)
    probe(directory, "fallocated", lambda fd: os.posix_fallocate(fd, 0, size))
    if hasattr(os, "fallocate"):
        probe(directory, "keep-size", lambda fd: os.fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, size))
    probe(directory, "zero-filled", lambda fd: os.pwrite(fd, bytes(size), 0))


if __name__ == "__main__":
    main()
