#!/usr/bin/env python3
"""Sums a folded-stack file (fold-perf-script.py output) into the categories that matter for
LMTP delivery, per thread kind, so before/after profiles compare at a glance.

    perf/profile/categorize-folded.py folded.txt

A sample counts once per category whose marker appears anywhere in its stack (categories
overlap: `deliver` contains `mime` and `store`). Thread kinds: `shard` (skua-shard-N: the
executors and their blocking pools, which glommio names after the executor), `sync`
(skua-sync: the disk's sync threads), `other`.
"""
import sys
from collections import Counter

CATEGORIES = [
    ("fdatasync", "fdatasync"),
    ("io_uring_enter", "io_uring_enter (glommio reactor)"),
    ("membarrier", "membarrier (glommio park)"),
    ("futex", "futex (thread hand-offs)"),
    ("skua_protocols::lmtp::deliver::deliver", "lmtp::deliver (cache blob + append)"),
    ("skua_protocols::mime::", "mime (cache blob)"),
    ("skua_core::store::", "store (append)"),
    ("LmtpSession", "LmtpSession (parse, DATA)"),
    ("sendmsg", "sendmsg"),
    ("recvfrom", "recvfrom"),
    ("pwrite", "pwrite"),
    ("malloc", "malloc"),
    ("free", "free"),
]


def kind(thread):
    if thread.startswith("skua-shard"):
        return "shard"
    if thread.startswith("skua-sync"):
        return "sync"
    return "other"


totals = Counter()
threads = Counter()
samples = 0
for line in open(sys.argv[1]):
    stack, count = line.rsplit(" ", 1)
    count = int(count)
    samples += count
    thread = kind(stack.split(";", 1)[0])
    threads[thread] += count
    for marker, name in CATEGORIES:
        if marker in stack:
            totals[(thread, name)] += count
print(f"samples: {samples}; by thread kind: " + ", ".join(f"{k} {v}" for k, v in threads.most_common()))
for (thread, name), count in sorted(totals.items(), key=lambda item: -item[1]):
    print(f"{thread:6} {name:40} {count:6} {100 * count / samples:5.1f}%")
