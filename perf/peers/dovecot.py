"""Dovecot from Debian's packages, run with its own configuration file in the work directory.

The configuration (written by `config_text`, kept in WORKDIR/dovecot.conf with the results)
makes Dovecot as comparable to skua as its settings allow:

- durability: `mail_fsync = always`. Dovecot's own description (10-mail.conf of the package):
  "optimized (default): Whenever necessary to avoid losing important data / always: Useful
  with e.g. NFS when write()s are delayed / never: Never use it (best performance, but crashes
  can lose data)"; its source (fsync-mode.h) says of `always` "fsync after all writes". skua
  makes both the message and its index record durable before the 250, so `always` (message
  *and* index files) is the matching setting, not `optimized`.
- storage: mdbox (Dovecot's own multi-message format, the closest to skua's spools);
- users: the same names and passwords, `{PLAIN}` in a passwd-file; one static uid/gid owns
  every mailbox (a system user `vmail`, made if missing);
- listeners on 127.0.0.1 only, on the ports given; no TLS (`ssl = no`), plain-text LOGIN
  allowed (`disable_plaintext_auth = no`), as skua allows it on loopback; with
  `configure_tls` (compare.py --tls): `ssl = required` with the run's certificate and key
  (`ssl_cert = <FILE`, `ssl_key = <FILE`), an `imaps` listener (`ssl = yes`) on the port
  given and STARTTLS on the plain one, OpenSSL's defaults otherwise (TLS 1.2 and 1.3, session
  tickets on);
- LMTP delivers to INBOX only (`lmtp_save_to_detail_mailbox = no`);
- process model: Dovecot's "high-performance" login mode (`service_count = 0`, one
  pre-started imap-login per core, each serving many clients), which its documentation
  recommends for busy servers; the post-login `imap` service stays one process per connection;
- per-user connection limit (`mail_max_userip_connections`, default 10) raised so the bench's
  users are never refused;
- logging: errors and warnings to WORKDIR/dovecot.log, the per-login and per-delivery info
  lines to /dev/null (skua logs no line per login or delivery either);
- IDLE: inotify notices new mail at once as long as `fs.inotify.max_user_instances` allows one
  instance per idling process (every imap process runs as `vmail`); `start` raises that
  sysctl to the connections expected and `stop` puts it back;
- `imap_hibernate_timeout` is off unless asked (`hibernate=True`); `settings()` records which.
"""

from __future__ import annotations

import os
import pathlib
import pwd
import grp
import shutil
import subprocess

from .base import (
    HOST,
    PeerUnavailable,
    ProcessPeer,
    TlsFiles,
    apt_install,
    stop_system_service,
)

PACKAGES = ["dovecot-core", "dovecot-imapd", "dovecot-lmtpd"]
MAIL_USER = "vmail"
INOTIFY = pathlib.Path("/proc/sys/fs/inotify/max_user_instances")


class Dovecot(ProcessPeer):
    """Dovecot 2.3 (Debian 12's) in the foreground (`dovecot -F -c WORKDIR/dovecot.conf`)."""

    name = "dovecot"

    def __init__(self, hibernate: bool = False, max_connections: int = 1000):
        self.hibernate = hibernate
        self.cpus: list[int] | None = None
        self.connections_expected = max_connections
        super().__init__()
        self.inotify_before: int | None = None
        self.tls: TlsFiles | None = None

    def configure_tls(self, tls: TlsFiles | None) -> None:
        self.tls = tls

    def install(self) -> None:
        apt_install(PACKAGES, "dovecot")
        # A postinst may have started the system's Dovecot (ports 143, 993, 24...).
        stop_system_service("dovecot", "dovecot")
        if shutil.which("dovecot") is None:
            raise PeerUnavailable("dovecot: the packages are installed but no dovecot binary")
        ensure_mail_user()

    def version(self) -> str:
        result = subprocess.run(["dovecot", "--version"], capture_output=True, text=True)
        return result.stdout.strip() or "unknown"

    def start(self, workdir, users, imap_port, lmtp_port) -> None:
        workdir = pathlib.Path(workdir)
        account = pwd.getpwnam(MAIL_USER)
        workdir.chmod(0o755)  # the mail user and dovecot's internal users must traverse it
        for parent in workdir.parents:
            if parent.stat().st_mode & 0o001 == 0:
                raise PeerUnavailable(
                    f"dovecot: {parent} is not traversable by other users (mode "
                    f"{parent.stat().st_mode & 0o777:o}); Dovecot's auth and mail users need it"
                )
        mail = workdir / "mail"
        mail.mkdir(exist_ok=True)
        os.chown(mail, account.pw_uid, account.pw_gid)
        passwd = workdir / "passwd"
        passwd.write_text("".join(f"{n}:{{PLAIN}}{p}::::::\n" for n, p in users))
        passwd.chmod(0o644)
        config = workdir / "dovecot.conf"
        config.write_text(
            config_text(
                workdir, account.pw_uid, account.pw_gid, imap_port, lmtp_port,
                self.connections_expected, self.hibernate, self.tls,
                cores=len(self.cpus) if self.cpus else None,
            )
        )
        self.raise_inotify(self.connections_expected + 512)
        check = subprocess.run(
            ["doveconf", "-c", str(config), "-n"], capture_output=True, text=True
        )
        if check.returncode != 0:
            raise PeerUnavailable(f"dovecot: config refused: {check.stderr.strip()}")
        ports = [imap_port, lmtp_port] + ([self.tls.imaps_port] if self.tls else [])
        self.launch(["dovecot", "-F", "-c", str(config)], workdir / "dovecot.stderr", ports)

    def stop(self) -> None:
        super().stop()
        if self.inotify_before is not None:
            try:
                INOTIFY.write_text(str(self.inotify_before))
            except OSError:
                pass
            self.inotify_before = None

    def raise_inotify(self, wanted: int) -> None:
        """Raises fs.inotify.max_user_instances to `wanted` (if lower), remembering the old."""
        try:
            now = int(INOTIFY.read_text())
            if now < wanted:
                INOTIFY.write_text(str(wanted))
                self.inotify_before = now
        except (OSError, ValueError):
            pass  # recorded by settings(): IDLE may fall back to polling

    def settings(self) -> dict[str, str]:
        try:
            inotify = INOTIFY.read_text().strip()
        except OSError:
            inotify = "unknown"
        tls = {} if self.tls is None else {
            "ssl": "required; imaps listener + STARTTLS; the run's certificate (OpenSSL)",
        }
        return {
            **tls,
            "mail_fsync": "always",
            "mail_location": "mdbox",
            "passwords": "{PLAIN} in a passwd-file",
            "imap-login": "high-performance mode (service_count = 0), one per core"
            + (f" of its {len(self.cpus)} CPU(s)" if self.cpus else ""),
            "imap": "one process per connection (Dovecot's default)",
            "imap_hibernate": "on (imap_hibernate_timeout = 2s)" if self.hibernate else "off",
            "fs.inotify.max_user_instances": inotify,
        }


def ensure_mail_user() -> None:
    """Creates the system user `vmail` (own group, no login, no home) if it is missing."""
    try:
        pwd.getpwnam(MAIL_USER)
        return
    except KeyError:
        pass
    result = subprocess.run(
        [
            "useradd", "--system", "--user-group", "--no-create-home",
            "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", MAIL_USER,
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise PeerUnavailable(f"dovecot: cannot create user {MAIL_USER}: {result.stderr.strip()}")


def config_text(
    workdir: pathlib.Path,
    uid: int,
    gid: int,
    imap_port: int,
    lmtp_port: int,
    max_connections: int,
    hibernate: bool,
    tls: TlsFiles | None = None,
    cores: int | None = None,
) -> str:
    """The whole dovecot.conf for one run (Dovecot 2.3 syntax). `cores`: the CPUs Dovecot
    runs on (its pinned set; default all), one pre-started imap-login process each."""
    cores = cores or os.cpu_count() or 1
    processes = max_connections + 256
    group = grp.getgrgid(gid).gr_name
    # Hibernation hands idle connections back through imap-master, which dovecot's internal
    # user must be able to open (the package's 20-imap.conf explains the trade-off).
    imap_hibernate = """
  unix_listener imap-master {
    user = $default_internal_user
  }
  extra_groups = $default_internal_group""" if hibernate else ""
    hibernate_text = f"""
imap_hibernate_timeout = 2s
service imap-hibernate {{
  unix_listener imap-hibernate {{
    mode = 0660
    group = $default_internal_group
  }}
}}
""" if hibernate else ""
    if tls is None:
        ssl = "ssl = no\ndisable_plaintext_auth = no"
        imaps = "port = 0"
    else:
        ssl = (f"ssl = required\nssl_cert = <{tls.cert}\nssl_key = <{tls.key}\n"
               "disable_plaintext_auth = yes")
        imaps = f"address = {HOST}\n    port = {tls.imaps_port}\n    ssl = yes"
    return f"""# Written by perf/peers/dovecot.py for one comparison run; see its docstring.
base_dir = {workdir}/run
state_dir = {workdir}/state
instance_name = dovecot-bench-{imap_port}
log_path = {workdir}/dovecot.log
info_log_path = /dev/null
protocols = imap lmtp
listen = {HOST}
{ssl}
auth_mechanisms = plain login
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
default_process_limit = {processes}
default_client_limit = {processes}
default_vsz_limit = 1G

mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
mail_privileged_group = {group}
mail_location = mdbox:{workdir}/mail/%u
mail_fsync = always

passdb {{
  driver = passwd-file
  args = scheme=PLAIN {workdir}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={workdir}/mail/%u
}}

protocol imap {{
  mail_max_userip_connections = {processes}
}}
protocol lmtp {{
  lmtp_save_to_detail_mailbox = no
}}

service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {imap_port}
  }}
  inet_listener imaps {{
    {imaps}
  }}
  service_count = 0
  process_min_avail = {cores}
  client_limit = {processes}
}}
service imap {{
  process_limit = {processes}{imap_hibernate}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {HOST}
    port = {lmtp_port}
  }}
}}
service anvil {{
  client_limit = {processes * 4}
}}
service auth {{
  client_limit = {processes * 4}
}}
{hibernate_text}"""
