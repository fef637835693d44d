"""A private Postfix instance for the end-to-end tests (tests/test_postfix.py).

Debian's postfix, run the way an operator runs a second instance: its own config directory
(`postfix -c DIR start`), its own queue and data directories, smtpd on a free loopback port,
no DNS, no chroot, logs in a file. It never touches the system's /etc/postfix instance: every
command gets `-c DIR`, and nothing listens outside 127.0.0.1.

`available()` says why the tests must be skipped: postfix not installed, not root (postfix
must start as root to drop to its `postfix` user), or no `postfix` user.
"""

import json
import os
import pwd
import shutil
import socket
import subprocess
import time

HOST = "127.0.0.1"

# Every service the instance runs, without chroot (a chroot would need copies of /etc files
# in the queue directory). The smtpd line is added with its port.
MASTER_CF = """\
pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
proxywrite unix  - - n -     1 proxymap
smtp       unix  - - n -     - smtp
relay      unix  - - n -     - smtp
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
lmtp       unix  - - n -     - lmtp
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
"""


def program(name):
    """The path of a Postfix program (they live in /usr/sbin, not always on PATH)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin") or name


def available():
    """None when a private instance can run here, else the reason to skip."""
    if not all(os.path.isabs(program(name)) for name in ("postfix", "postqueue", "postmap")):
        return ("postfix is not installed "
                "(DEBIAN_FRONTEND=noninteractive apt-get install -y postfix; .ci/run does)")
    if os.geteuid() != 0:
        return "postfix must be started as root (it drops to its own user)"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "there is no postfix user (the Debian package makes it)"
    return None


class Postfix:
    """One private instance under `root` (config in `root/conf`, queue in `root/queue`).

    `main_cf` holds the test's own lines (transport, maps, restrictions), appended to the
    instance's base settings.
    """

    def __init__(self, root, smtp_port, main_cf):
        self.root = root
        self.conf = os.path.join(root, "conf")
        self.queue_dir = os.path.join(root, "queue")
        self.data_dir = os.path.join(root, "data")
        self.maillog = os.path.join(root, "maillog")
        self.smtp_port = smtp_port
        self.started = False
        for path in (self.conf, self.queue_dir, self.data_dir):
            os.makedirs(path, exist_ok=True)
        postfix_user = pwd.getpwnam("postfix")
        # master.lock lives here and the postfix user writes it.
        os.chown(self.data_dir, postfix_user.pw_uid, postfix_user.pw_gid)
        base = f"""\
compatibility_level = 3.6
queue_directory = {self.queue_dir}
data_directory = {self.data_dir}
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.skua.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
relay_domains =
alias_maps =
alias_database =
local_transport = error:5.1.1 local delivery is off
biff = no
disable_dns_lookups = yes
smtp_host_lookup = native
lmtp_host_lookup = native
maillog_file = {self.maillog}
maillog_file_prefixes = {root}
"""
        with open(os.path.join(self.conf, "main.cf"), "w", encoding="utf-8") as f:
            f.write(base + main_cf)
        with open(os.path.join(self.conf, "master.cf"), "w", encoding="utf-8") as f:
            f.write(f"{HOST}:{smtp_port} inet n - n - - smtpd\n" + MASTER_CF)

    def command(self, *args, check=True):
        """Runs a Postfix command with `-c CONF` (the program first, then its arguments)."""
        name, rest = args[0], args[1:]
        result = subprocess.run([program(name), "-c", self.conf, *rest],
                                capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(
                f"{name} {' '.join(rest)} exited {result.returncode}:\n"
                f"{result.stdout}{result.stderr}\n{self.log_text()[-3000:]}")
        return result

    def start(self, timeout_s=30):
        self.command("postfix", "start")
        self.started = True
        self._wait(lambda: self._connectable(), timeout_s, "smtpd to listen")
        return self

    def stop(self, timeout_s=30):
        """`postfix stop`, then waits for the master to exit. Safe to call twice."""
        if not self.started:
            return
        pid = self.master_pid()
        self.command("postfix", "stop", check=False)
        self.started = False
        if pid is not None:
            self._wait(lambda: not _alive(pid), timeout_s, "the master to exit")

    def master_pid(self):
        try:
            with open(os.path.join(self.queue_dir, "pid", "master.pid"), encoding="ascii") as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def queue(self):
        """The queue as `postqueue -j` lists it: one dict per message."""
        out = self.command("postqueue", "-j").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def flush(self):
        self.command("postqueue", "-f")

    def log_text(self):
        try:
            with open(self.maillog, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_for(self, predicate, what, timeout_s=30):
        """Polls `predicate` until it is true (or fails with the mail log's tail)."""
        self._wait(predicate, timeout_s, what)

    def _connectable(self):
        try:
            with socket.create_connection((HOST, self.smtp_port), timeout=0.5):
                return True
        except OSError:
            return False

    def _wait(self, predicate, timeout_s, what):
        deadline = time.monotonic() + timeout_s
        delay = 0.02
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.log_text()[-3000:]}")
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


def _alive(pid):
    """True while `pid` runs (a zombie, left when nobody reaps it, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
