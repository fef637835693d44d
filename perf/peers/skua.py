"""skua itself: the release binary of this checkout, one shard per online core.

Durability is skua's only mode: an LMTP 250 (and an APPEND OK) is sent only after the group
commit's fdatasync round that covers the message and its index record (DESIGN.md,
"Durability"). Users go into DATA_DIR/passwd as `name:{PLAIN}password::::::`, the
Dovecot passwd-file format, with the same plain-text scheme Dovecot gets.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess

from .base import HOST, Peer, PeerUnavailable, kill_tree, wait_for_ports

REPO = pathlib.Path(__file__).resolve().parents[2]
# Where skua's built-in `connections_per_shard_max` (IMAP and LMTP together) is set. Neither
# the CLI nor the config file sets it yet, so a run holds at most shards x this; it is read
# from the source the binary is built from, so the cap follows the code.
SHARD_CONFIG = REPO / "shard" / "src" / "config.rs"
CONNECTIONS_PER_SHARD_DEFAULT = 4096


def connections_per_shard(config_rs: str) -> int:
    """The `connections_per_shard_max: N` of ServerConfig's Default in shard/src/config.rs."""
    m = re.search(r"connections_per_shard_max:\s*([0-9_]+)\s*,", config_rs)
    return int(m.group(1).replace("_", "")) if m else CONNECTIONS_PER_SHARD_DEFAULT


class Skua(Peer):
    """skua from `target/release/skua` (built by compare.py before any peer starts)."""

    name = "skua"

    def __init__(self, binary: pathlib.Path | None = None, shards: int | None = None):
        self.binary = binary or REPO / "target" / "release" / "skua"
        self.shards = shards or os.cpu_count() or 1
        self.process: subprocess.Popen | None = None
        self.log = None

    def install(self) -> None:
        if not self.binary.exists():
            raise PeerUnavailable(
                f"no skua binary at {self.binary}: cargo build --release --bin skua"
            )

    def version(self) -> str:
        result = subprocess.run(
            [str(self.binary), "--version"], capture_output=True, text=True, timeout=30
        )
        return (result.stdout or result.stderr).strip() or "unknown"

    def start(self, workdir, users, imap_port, lmtp_port) -> None:
        data = pathlib.Path(workdir) / "data"
        data.mkdir(parents=True, exist_ok=True)
        (data / "passwd").write_text(
            "".join(f"{name}:{{PLAIN}}{password}::::::\n" for name, password in users)
        )
        self.log = open(pathlib.Path(workdir) / "skua.log", "ab")
        self.process = subprocess.Popen(
            [
                str(self.binary), "serve",
                "--data-dir", str(data),
                "--imap-listen", f"{HOST}:{imap_port}",
                "--lmtp-listen", f"{HOST}:{lmtp_port}",
                "--shards", str(self.shards),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            wait_for_ports([imap_port, lmtp_port], alive=lambda: self.process.poll() is None)
        except RuntimeError as e:
            self.stop()
            raise PeerUnavailable(f"skua did not start: {e} (log: {workdir}/skua.log)") from e

    def main_pid(self) -> int:
        assert self.process is not None, "main_pid() before start()"
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None:
            kill_tree(self.process.pid)
            self.process.wait()
            self.process = None
        if self.log is not None:
            self.log.close()
            self.log = None

    def max_connections(self) -> int:
        try:
            per_shard = connections_per_shard(SHARD_CONFIG.read_text())
        except OSError:
            per_shard = CONNECTIONS_PER_SHARD_DEFAULT
        return self.shards * per_shard

    def settings(self) -> dict[str, str]:
        return {
            "connections_per_shard_max": f"{self.max_connections() // self.shards} (built in)",
            "shards": str(self.shards),
            "durability": "LMTP 250 / APPEND OK after the group-commit fdatasync (always on)",
            "passwords": "{PLAIN} in a passwd-file",
            "process model": "one process, one pinned thread per shard",
        }
