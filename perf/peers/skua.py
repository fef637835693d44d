"""skua itself: the release binary of this checkout, one shard per online core.

Durability is skua's only mode: an LMTP 250 (and an APPEND OK) is sent only after the group
commit's fdatasync round that covers the message's spool record (core/FORMAT.md, write
order). Users go into DATA_DIR/passwd as `name:{PLAIN}password::::::`, the
Dovecot passwd-file format, with the same plain-text scheme Dovecot gets.
"""

from __future__ import annotations

import os
import pathlib
import subprocess

from .base import HOST, PeerUnavailable, ProcessPeer, TlsFiles, free_port

REPO = pathlib.Path(__file__).resolve().parents[2]
# Client connections (IMAP and LMTP together) each shard serves at once, set explicitly in the
# config file the run writes, so the idle scenario knows how many connections fit. With fewer
# than two shards (compare.py pins skua to one CPU by default) a shard gets the whole
# CONNECTIONS_TOTAL: the open-files limit (20,000 here), not the shard count, is then what
# binds the idle scenario, as it does with two shards.
CONNECTIONS_PER_SHARD = 16384
CONNECTIONS_TOTAL = 2 * CONNECTIONS_PER_SHARD


# The load generator connects from one address (127.0.0.1) as 100 users: the per-source cap
# (1024 by default, against one source taking the whole server) and the per-user cap (64) must
# not apply to it, as Dovecot's `mail_max_userip_connections` is raised for it (dovecot.py).
CONNECTIONS_PER_SOURCE = 65536
CONNECTIONS_PER_USER = 65536
# LMTP's own budget per shard (256 by default) is carved out of the open-files budget too; most
# scenarios use at most 64 LMTP connections in all, and the idle scenario needs every other
# descriptor of the 20,000 for its IMAP connections. A run with an LMTP sweep asks for more
# (`lmtp_connections`): every connection of the sweep may land on one shard.
LMTP_CONNECTIONS_PER_SHARD = 64


def connections_per_shard(shards: int) -> int:
    """IMAP + LMTP connections one of `shards` shards serves (see CONNECTIONS_TOTAL)."""
    return max(CONNECTIONS_PER_SHARD, -(-CONNECTIONS_TOTAL // max(1, shards)))


def config_text(
    connections_per_shard: int = CONNECTIONS_PER_SHARD,
    tls: TlsFiles | None = None,
    lmtp_per_shard: int = LMTP_CONNECTIONS_PER_SHARD,
    metrics_port: int | None = None,
) -> str:
    """The skua config file of a run (everything else comes from the command line); with
    `tls`, its certificate and key (`[tls] cert/key`) instead of the self-signed pair skua
    would make; with `metrics_port`, the Prometheus endpoint on that loopback port."""
    text = (
        f"connections_per_shard = {connections_per_shard}\n"
        f"[limits]\nconnections_per_source = {CONNECTIONS_PER_SOURCE}\n"
        f"connections_per_user = {CONNECTIONS_PER_USER}\n"
        f"[lmtp]\nconnections_per_shard = {lmtp_per_shard}\n"
    )
    if tls is not None:
        text += f"[tls]\ncert = {toml_string(tls.cert)}\nkey = {toml_string(tls.key)}\n"
    if metrics_port is not None:
        text += f'[metrics]\nlisten = ["{HOST}:{metrics_port}"]\n'
    return text


def toml_string(path) -> str:
    """A path as a TOML basic string."""
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


class Skua(ProcessPeer):
    """skua from `target/release/skua` (built by compare.py before any peer starts)."""

    name = "skua"

    def __init__(
        self,
        binary: pathlib.Path | None = None,
        shards: int | None = None,
        lmtp_connections: int = LMTP_CONNECTIONS_PER_SHARD,
    ):
        super().__init__()
        self.binary = binary or REPO / "target" / "release" / "skua"
        self.shards = shards or os.cpu_count() or 1
        self.lmtp_per_shard = max(LMTP_CONNECTIONS_PER_SHARD, lmtp_connections)
        self.tls: TlsFiles | None = None
        # The Prometheus endpoint of the running server (a fresh port per start), scraped by
        # skua-bench --server-metrics around each measured phase.
        self.metrics_port: int | None = None

    def configure_tls(self, tls: TlsFiles | None) -> None:
        self.tls = tls

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
        workdir = pathlib.Path(workdir)
        data = workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        (data / "passwd").write_text(
            "".join(f"{name}:{{PLAIN}}{password}::::::\n" for name, password in users)
        )
        config = workdir / "skua.toml"
        self.metrics_port = free_port()
        config.write_text(config_text(
            connections_per_shard(self.shards), tls=self.tls, lmtp_per_shard=self.lmtp_per_shard,
            metrics_port=self.metrics_port,
        ))
        if self.tls is None:
            listeners = ["--no-imaps"]
            ports = [imap_port, lmtp_port, self.metrics_port]
        else:
            listeners = ["--imaps-listen", f"{HOST}:{self.tls.imaps_port}"]
            ports = [imap_port, lmtp_port, self.metrics_port, self.tls.imaps_port]
        self.launch(
            [
                str(self.binary), "serve",
                "--config", str(config),
                "--data-dir", str(data),
                "--imap-listen", f"{HOST}:{imap_port}",
                "--lmtp-listen", f"{HOST}:{lmtp_port}",
                *listeners,
                "--shards", str(self.shards),
            ],
            workdir / "skua.log",
            ports,
        )

    def metrics_url(self) -> str | None:
        return None if self.metrics_port is None else f"http://{HOST}:{self.metrics_port}/metrics"

    def max_connections(self) -> int:
        return self.shards * connections_per_shard(self.shards)

    def settings(self) -> dict[str, str]:
        tls = {} if self.tls is None else {
            "tls": "IMAPS and STARTTLS, [tls] cert/key = the run's certificate (rustls, ring)",
        }
        return {
            **tls,
            "connections_per_shard": str(connections_per_shard(self.shards)),
            "lmtp.connections_per_shard": str(self.lmtp_per_shard),
            "shards": str(self.shards),
            "durability": "LMTP 250 / APPEND OK after the group-commit fdatasync (always on)",
            "metrics": "[metrics] listen on a loopback port, scraped by skua-bench "
                       "--server-metrics before and after each measured phase",
            "passwords": "{PLAIN} in a passwd-file",
            "process model": "one process, one pinned thread per shard",
        }
