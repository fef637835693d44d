"""What a published figure must name: the commit, the machine, and how busy it was.

Read-only: `git rev-parse`/`git status` only look, /proc and `df`/`ps` only read.
"""

from __future__ import annotations

import os
import pathlib
import platform
import subprocess


def run_text(cmd: list[str], cwd: pathlib.Path | None = None) -> str:
    """A command's stdout, stripped; '' when it fails or is missing."""
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return r.stdout.strip() if r.returncode == 0 else ""


def commit(repo: pathlib.Path) -> str:
    """`HEAD`'s hash, with ' (dirty)' when the work tree has uncommitted changes."""
    head = run_text(["git", "rev-parse", "HEAD"], repo) or "unknown"
    dirty = run_text(["git", "status", "--porcelain", "--untracked-files=no"], repo)
    return head + (" (dirty: uncommitted changes in the work tree)" if dirty else "")


def cpu_model() -> str:
    """The first `model name` of /proc/cpuinfo."""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> str:
    """MemTotal of /proc/meminfo, GiB."""
    try:
        for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
    except (OSError, ValueError):
        pass
    return "unknown"


def filesystem(path: pathlib.Path) -> str:
    """`df -T` of the path: device, type, size."""
    lines = run_text(["df", "-T", "-h", str(path)]).splitlines()
    if len(lines) < 2:
        return "unknown"
    fields = lines[1].split()
    return f"{fields[0]} {fields[1]}, {fields[2]} total, {fields[4]} free (df -T {path})"


def describe(repo: pathlib.Path, workdir: pathlib.Path) -> dict[str, str]:
    """Commit and machine, as label -> text."""
    return {
        "Commit": commit(repo),
        "Machine": f"{os.cpu_count()} CPUs ({cpu_model()}), {memory_gib()}, "
                   f"Linux {platform.release()}",
        "Work directory filesystem": filesystem(workdir),
        "load at start": busiest(),
    }


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages."""
    try:
        return " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def busiest(count: int = 8) -> str:
    """The processes using the most CPU now (ps), with the load average."""
    top = run_text(["ps", "-eo", "pcpu,pid,etime,comm", "--sort=-pcpu"])
    return f"loadavg {loadavg()}\n" + "\n".join(top.splitlines()[: count + 1])
