#!/usr/bin/env python3
"""Folds `perf script` output into flame-graph input: one line per distinct stack,
"root;...;leaf count", the format inferno-flamegraph and flamegraph.pl read.

    perf script -i perf.data | perf/profile/fold-perf-script.py > folded.txt

A sample in `perf script` is a header line (comm, pid, time, event) followed by one frame
per line (address, symbol, (module)), leaf first, and a blank line. Frames are kept by
symbol name with Rust hashes (::h0123...) removed; the thread name is the root frame.
"""
import re
import sys
from collections import Counter

HASH = re.compile(r"::h[0-9a-f]{16}$")
stacks = Counter()
comm = None
frames = []


def finish():
    if comm is not None and frames:
        stacks[";".join([comm] + frames[::-1])] += 1


for line in sys.stdin:
    line = line.rstrip("\n")
    if not line.strip():
        finish()
        comm, frames = None, []
    elif not line[0].isspace():
        comm = line.split()[0]
    else:
        parts = line.strip().split(None, 1)
        symbol = parts[1] if len(parts) > 1 else "[unknown]"
        symbol = re.sub(r"\+0x[0-9a-f]+", "", symbol.rsplit(" (", 1)[0])
        frames.append(HASH.sub("", symbol).replace(";", ":"))
finish()
for stack, count in stacks.most_common():
    print(f"{stack} {count}")
