"""Deployment: the systemd unit, sd_notify readiness, the man pages and the ansible role.

* The unit in dist/systemd/ passes `systemd-analyze verify` (its ExecStart pointed at the
  binary under test, its Documentation= pages those `skua man` writes) and keeps its
  sandboxing (`systemd-analyze security` exposure at most 2.0, "OK").
* `skua serve` with NOTIFY_SOCKET naming a datagram socket this test owns sends READY=1 once
  every port accepts (each is connected to at once, without retrying), RELOADING=1 with
  MONOTONIC_USEC then READY=1 around a SIGHUP reload, STOPPING=1 on SIGTERM, each from the
  server's own pid as systemd's NotifyAccess=main demands; a server that cannot start sends
  no READY=1.
* dist/skua.toml, the example production config, starts and serves (with local ports).
* `skua man` writes a page per command and subcommand (found from `--help`), each rendered
  by man(1) without warnings.
* The ansible role applied to this machine (local connection, temporary prefix, no service
  management) installs a binary and config that start, and the user it added logs in over
  TLS with the certificate it installed; a second run changes nothing.
"""

import imaplib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import unittest

from harness import BIN, HOST, REPO, check_at_end, free_port, wait_for_port

UNIT = os.path.join(REPO, "dist", "systemd", "skua.service")
ANSIBLE = os.path.join(REPO, "ansible")
NOTIFY_TIMEOUT_S = 30
# systemd-analyze security: 0 is fully locked down, 10 not at all; up to 2.0 reads "OK".
EXPOSURE_MAX = 2.0


def subcommands(*path):
    """The subcommands `skua PATH... --help` lists (clap's "Commands:" section)."""
    text = subprocess.run([BIN, *path, "--help"], capture_output=True, text=True,
                          check=True).stdout
    names, listing = [], False
    for line in text.splitlines():
        if line == "Commands:":
            listing = True
        elif listing and line.startswith("  "):
            name = line.split()[0]
            if name != "help":
                names.append(name)
        elif listing:
            break
    return names


def command_paths(*path):
    """Every command path below `skua PATH...`, PATH itself first."""
    paths = [path]
    for name in subcommands(*path):
        paths.extend(command_paths(*path, name))
    return paths


def write_man_pages(out_dir):
    result = subprocess.run([BIN, "man", "--out", out_dir], capture_output=True, text=True,
                            timeout=60)
    if result.returncode != 0:
        raise AssertionError(f"skua man failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def self_signed(directory):
    """A certificate for localhost and 127.0.0.1 and its key, made with openssl."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", key, "-out", cert],
        check=True, capture_output=True, timeout=60)
    return cert, key


class UnitFileTest(unittest.TestCase):
    def setUp(self):
        if shutil.which("systemd-analyze") is None:
            self.skipTest("systemd-analyze is not installed (Debian: systemd): unit not checked")
        self.tmp = tempfile.mkdtemp(prefix="skua-unit-")
        self.man = os.path.join(self.tmp, "man")
        write_man_pages(os.path.join(self.man, "man1"))
        with open(UNIT, encoding="utf-8") as f:
            self.text = f.read()
        self.unit = os.path.join(self.tmp, "skua.service")
        with open(self.unit, "w", encoding="utf-8") as f:
            f.write(self.text.replace("/usr/local/bin/skua", os.path.abspath(BIN)))

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_systemd_analyze_verify_accepts_the_unit(self):
        result = subprocess.run(["systemd-analyze", "verify", self.unit],
                                env={**os.environ, "MANPATH": self.man},
                                capture_output=True, text=True, timeout=60)
        said = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, said)
        self.assertNotIn("skua.service:", said)

    def test_the_unit_says_what_the_deployment_needs(self):
        settings = {}
        for line in self.text.splitlines():
            if "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                settings.setdefault(key, []).append(value)
        self.assertEqual(settings["Type"], ["notify"])
        self.assertEqual(settings["ExecReload"], ["/bin/kill -HUP $MAINPID"])
        self.assertEqual(settings["CapabilityBoundingSet"], ["CAP_NET_BIND_SERVICE"])
        self.assertEqual(settings["User"], ["skua"])
        self.assertEqual(settings["ProtectSystem"], ["strict"])
        self.assertEqual(settings["ReadWritePaths"], ["/var/lib/skua"])
        for key in ("LimitNOFILE", "LimitMEMLOCK", "NoNewPrivileges", "ProtectHome",
                    "PrivateTmp"):
            self.assertIn(key, settings)

    def test_sandboxing_keeps_the_exposure_low(self):
        result = subprocess.run(["systemd-analyze", "security", "--offline=true", self.unit],
                                capture_output=True, text=True, timeout=60)
        if "--offline" in result.stderr:
            self.skipTest("this systemd-analyze has no offline security check (systemd < 250)")
        match = re.search(r"Overall exposure level for skua\.service: ([0-9.]+)", result.stdout)
        self.assertIsNotNone(match, result.stdout + result.stderr)
        self.assertLessEqual(float(match.group(1)), EXPOSURE_MAX, result.stdout)


class ExampleConfigTest(unittest.TestCase):
    """dist/skua.toml, with this machine's ports and paths, starts and serves IMAPS."""

    def setUp(self):
        if shutil.which("openssl") is None:
            self.skipTest("openssl is not installed: no certificate for the example config")
        self.tmp = tempfile.mkdtemp(prefix="skua-example-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        check_at_end(self, os.path.join(self.tmp, "data"))
        self.process = None

    def tearDown(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def test_the_example_config_serves(self):
        cert, key = self_signed(self.tmp)
        imap, imaps, lmtp = free_port(), free_port(), free_port()
        with open(os.path.join(REPO, "dist", "skua.toml"), encoding="utf-8") as f:
            text = f.read()
        replacements = {
            '"/var/lib/skua"': json.dumps(os.path.join(self.tmp, "data")),
            '"/etc/skua/tls/mail.example.org.crt"': json.dumps(cert),
            '"/etc/skua/tls/mail.example.org.key"': json.dumps(key),
            '"[::]:143"': f'"{HOST}:{imap}"',
            '"[::]:993"': f'"{HOST}:{imaps}"',
            '"127.0.0.1:24"': f'"{HOST}:{lmtp}"',
            '"unix:/run/skua/lmtp.sock"': json.dumps("unix:" + os.path.join(self.tmp, "lmtp")),
            # What an unprivileged user may lock; the unit's LimitMEMLOCK allows the example's.
            "io_memory_bytes = 4194304": "io_memory_bytes = 524288",
            "shards = 0": "shards = 2",
        }
        for old, new in replacements.items():
            self.assertIn(old, text)
            text = text.replace(old, new)
        config = os.path.join(self.tmp, "skua.toml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(text)
        added = subprocess.run([BIN, "user", "add", "alice", "--config", config],
                               input="alice-pw\n", capture_output=True, text=True, timeout=60)
        self.assertEqual(added.returncode, 0, added.stderr)
        with open(os.path.join(self.tmp, "skua.log"), "ab") as log:
            self.process = subprocess.Popen([BIN, "serve", "--config", config],
                                            stdout=log, stderr=subprocess.STDOUT)
            wait_for_port(imaps, self.process)
            context = ssl.create_default_context(cafile=cert)
            client = imaplib.IMAP4_SSL(HOST, imaps, ssl_context=context, timeout=30)
            self.assertEqual(client.login("alice", "alice-pw")[0], "OK")
            client.logout()
            self.assertTrue(os.path.exists(os.path.join(self.tmp, "lmtp")))
            self.process.send_signal(signal.SIGTERM)
            self.assertEqual(self.process.wait(timeout=30), 0)


class NotifySocket:
    """A datagram socket standing in for systemd's: collects messages with their sender's
    pid (SO_PASSCRED, as systemd checks NotifyAccess=)."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(address)
        self.sock.settimeout(NOTIFY_TIMEOUT_S)

    def receive(self):
        """(fields as a dict, sender pid) of the next message."""
        data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = None
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid, _, _ = struct.unpack("iII", payload[:12])
        text = data.decode("utf-8")
        self.assertion_text = text
        fields = dict(line.split("=", 1) for line in text.splitlines() if line)
        return fields, pid

    def pending(self):
        """Messages already queued, without waiting."""
        self.sock.setblocking(False)
        try:
            messages = []
            while True:
                try:
                    messages.append(self.sock.recv(4096).decode("utf-8"))
                except BlockingIOError:
                    return messages
        finally:
            self.sock.settimeout(NOTIFY_TIMEOUT_S)

    def close(self):
        self.sock.close()


class NotifyTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-notify-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.data = os.path.join(self.tmp, "data")
        check_at_end(self, self.data)
        os.makedirs(self.data)
        with open(os.path.join(self.data, "passwd"), "w", encoding="utf-8") as f:
            f.write("alice:{PLAIN}alice-pw::::::\n")
        self.ports = {"imap": free_port(), "imaps": free_port(), "lmtp": free_port()}
        self.process = None
        self.log = open(os.path.join(self.tmp, "skua.log"), "ab")

    def tearDown(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def start(self, notify_socket, ports=None):
        ports = ports or self.ports
        self.process = subprocess.Popen(
            [BIN, "serve", "--data-dir", self.data, "--shards", "2",
             "--imap-listen", f"{HOST}:{ports['imap']}",
             "--imaps-listen", f"{HOST}:{ports['imaps']}",
             "--lmtp-listen", f"{HOST}:{ports['lmtp']}"],
            env={**os.environ, "NOTIFY_SOCKET": notify_socket},
            stdout=self.log, stderr=subprocess.STDOUT)

    def log_text(self):
        with open(os.path.join(self.tmp, "skua.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def test_ready_reloading_stopping_over_an_abstract_socket(self):
        name = f"skua-test-notify-{os.getpid()}-{self.ports['imap']}"
        manager = NotifySocket("\0" + name)
        try:
            self.start("@" + name)
            fields, pid = manager.receive()
            # Ready means every port accepts now: one attempt each, no retry.
            for protocol, port in self.ports.items():
                with socket.create_connection((HOST, port), timeout=10) as conn:
                    if protocol == "imap":
                        conn.settimeout(10)
                        self.assertTrue(conn.recv(64).startswith(b"* OK"))
            self.assertEqual(fields.get("READY"), "1", manager.assertion_text)
            self.assertEqual(pid, self.process.pid)
            client = imaplib.IMAP4(HOST, self.ports["imap"], timeout=30)
            client.login("alice", "alice-pw")

            before_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            self.process.send_signal(signal.SIGHUP)
            fields, pid = manager.receive()
            after_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            self.assertEqual(fields.get("RELOADING"), "1", manager.assertion_text)
            self.assertEqual(pid, self.process.pid)
            self.assertTrue(before_us <= int(fields["MONOTONIC_USEC"]) <= after_us, fields)
            fields, pid = manager.receive()
            self.assertEqual(fields.get("READY"), "1", manager.assertion_text)
            self.assertIn("TLS certificates reloaded", self.wait_log("TLS certificates reloaded"))
            # The reload dropped nobody.
            self.assertEqual(client.noop()[0], "OK")
            client.logout()

            self.process.send_signal(signal.SIGTERM)
            fields, pid = manager.receive()
            self.assertEqual(fields.get("STOPPING"), "1", manager.assertion_text)
            self.assertEqual(pid, self.process.pid)
            self.assertEqual(self.process.wait(timeout=30), 0, self.log_text())
            self.assertEqual(manager.pending(), [], "nothing after STOPPING=1")
        finally:
            manager.close()

    def test_no_ready_when_a_listener_cannot_bind(self):
        path = os.path.join(self.tmp, "notify")
        manager = NotifySocket(path)
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            holder.bind((HOST, 0))
            holder.listen(1)
            ports = dict(self.ports, lmtp=holder.getsockname()[1])
            self.start(path, ports)
            self.assertNotEqual(self.process.wait(timeout=60), 0, self.log_text())
            messages = manager.pending()
            self.assertFalse([m for m in messages if "READY=1" in m], messages)
        finally:
            holder.close()
            manager.close()

    def wait_log(self, needle, timeout_s=10):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.log_text()
            if needle in text:
                return text
            time.sleep(0.05)
        return self.log_text()


class ManPageTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-man-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_every_subcommand_has_a_page_that_renders(self):
        out = os.path.join(self.tmp, "man1")
        written = write_man_pages(out)
        paths = command_paths()
        self.assertIn(("serve",), paths)
        self.assertIn(("user", "add"), paths)
        self.assertIn(("man",), paths)
        expected = {"-".join(("skua", *path)) + ".1" for path in paths}
        self.assertEqual(set(os.listdir(out)), expected)
        self.assertEqual(len(written.splitlines()), len(expected))
        self.assertTrue(all(line.startswith("wrote ") for line in written.splitlines()))
        renderer = shutil.which("man")
        if renderer is None:
            self.skipTest("man(1) is not installed (Debian: man-db): pages not rendered")
        for page in sorted(expected):
            with self.subTest(page=page):
                result = subprocess.run(
                    ["man", "--warnings", "-l", os.path.join(out, page)],
                    env={**os.environ, "MANWIDTH": "80", "MANPAGER": "cat", "PAGER": "cat"},
                    capture_output=True, text=True, timeout=60)
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertEqual(result.stderr, "")
                name = page[:-2]
                self.assertRegex(result.stdout, r"NAME\n\s+" + re.escape(name) + r"\s+-\s")
                self.assertIn("SYNOPSIS", result.stdout)
        # The same binary again: nothing to rewrite.
        again = write_man_pages(out)
        self.assertTrue(all(line.startswith("unchanged ") for line in again.splitlines()))


class AnsibleRoleTest(unittest.TestCase):
    """The role on this machine, as `.ci/run` applies it."""

    def setUp(self):
        if shutil.which("ansible-playbook") is None:
            self.skipTest("ansible-playbook is not installed (Debian: ansible): role not applied")
        if shutil.which("openssl") is None:
            self.skipTest("openssl is not installed: no certificate for the TLS login")
        self.tmp = tempfile.mkdtemp(prefix="skua-ansible-")
        self.prefix = os.path.join(self.tmp, "root")
        self.process = None

    def tearDown(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_role_refuses_to_start_a_server_without_users(self):
        import grp
        import pwd
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        extra_vars = {
            "skua_binary_src": os.path.abspath(BIN), "skua_prefix": self.prefix,
            "skua_create_user": False, "skua_user": user, "skua_group": group,
            "skua_admin_user": user, "skua_admin_group": group, "skua_apply_sysctl": False,
            # Service management on: the play must stop before it reaches systemd.
            "skua_manage_service": True,
        }
        output = self.playbook(extra_vars, expect_failure=True)
        self.assertIn("No users: give skua_users", output)
        self.assertNotIn("TASK [skua : Start skua", output)
        self.assertFalse(os.path.exists(os.path.join(self.prefix, "var/lib/skua/passwd")))

    def playbook(self, extra_vars, expect_failure=False):
        # The modules run with Debian's python3, which Debian's ansible supports, if there is one.
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        inventory = os.path.join(self.tmp, "inventory")
        with open(inventory, "w", encoding="utf-8") as f:
            f.write("[skua]\n")
            f.write(f"localhost ansible_connection=local ansible_become=false "
                    f"ansible_python_interpreter={python}\n")
        vars_file = os.path.join(self.tmp, "vars.json")
        with open(vars_file, "w", encoding="utf-8") as f:
            json.dump(extra_vars, f)
        env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0",
               "ANSIBLE_LOCAL_TEMP": os.path.join(self.tmp, "ansible-local"),
               "ANSIBLE_REMOTE_TEMP": os.path.join(self.tmp, "ansible-remote")}
        result = subprocess.run(
            ["ansible-playbook", "-c", "local", "-i", inventory,
             os.path.join(ANSIBLE, "site.yml"), "-e", "@" + vars_file],
            env=env, capture_output=True, text=True, timeout=300)
        if expect_failure:
            self.assertNotEqual(result.returncode, 0, result.stdout + result.stderr)
        else:
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        return result.stdout

    def test_role_installs_a_server_that_serves_tls(self):
        import grp
        import pwd
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        cert, key = self_signed(self.tmp)
        ports = {"imap": free_port(), "imaps": free_port(), "lmtp": free_port()}
        extra_vars = {
            "skua_binary_src": os.path.abspath(BIN),
            "skua_prefix": self.prefix,
            "skua_create_user": False,
            "skua_user": user, "skua_group": group,
            "skua_admin_user": user, "skua_admin_group": group,
            "skua_manage_service": False,
            "skua_apply_sysctl": False,
            "skua_hostname": "localhost",
            "skua_shards": 2,
            # What an unprivileged user may lock (io_uring's buffers); root may lock more.
            "skua_io_memory_bytes": 524288,
            "skua_imap_listen": [f"{HOST}:{ports['imap']}"],
            "skua_imaps_listen": [f"{HOST}:{ports['imaps']}"],
            "skua_lmtp_listen": [f"{HOST}:{ports['lmtp']}",
                                 f"unix:{os.path.join(self.tmp, 'lmtp.sock')}"],
            "skua_tls_cert_src": cert, "skua_tls_key_src": key,
            "skua_users": [{"name": "alice", "password": "alice-pw"}],
        }
        first = self.playbook(extra_vars)
        self.assertRegex(first, r"localhost\s*: ok=\d+\s+changed=[1-9]")
        self.check_files()
        if shutil.which("systemd-analyze") is not None:
            verified = subprocess.run(
                ["systemd-analyze", "verify",
                 os.path.join(self.prefix, "etc/systemd/system/skua.service")],
                env={**os.environ, "MANPATH": os.path.join(self.prefix, "usr/local/share/man")},
                capture_output=True, text=True, timeout=60)
            self.assertEqual(verified.returncode, 0, verified.stdout + verified.stderr)
            self.assertNotIn("skua.service:", verified.stdout + verified.stderr)

        again = self.playbook(extra_vars)
        self.assertRegex(again, r"localhost\s*: ok=\d+\s+changed=0\s", again)

        skua = os.path.join(self.prefix, "usr/local/bin/skua")
        config = os.path.join(self.prefix, "etc/skua/skua.toml")
        log = open(os.path.join(self.tmp, "skua.log"), "ab")
        try:
            self.process = subprocess.Popen([skua, "serve", "--config", config],
                                            stdout=log, stderr=subprocess.STDOUT)
            wait_for_port(ports["imaps"], self.process)
            context = ssl.create_default_context(
                cafile=os.path.join(self.prefix, "etc/skua/tls/localhost.crt"))
            client = imaplib.IMAP4_SSL(HOST, ports["imaps"], ssl_context=context, timeout=30)
            self.assertEqual(client.login("alice", "alice-pw")[0], "OK")
            self.assertEqual(client.select("INBOX")[0], "OK")
            client.logout()
            self.process.send_signal(signal.SIGTERM)
            self.assertEqual(self.process.wait(timeout=30), 0)
        finally:
            log.close()
        # The data went where the config says, inside the prefix.
        self.assertTrue(os.path.exists(os.path.join(self.prefix, "var/lib/skua/passwd")))

    def check_files(self):
        root = self.prefix
        mode = lambda path: os.stat(os.path.join(root, path)).st_mode & 0o777
        self.assertEqual(mode("usr/local/bin/skua"), 0o755)
        self.assertEqual(mode("etc/skua/skua.toml"), 0o640)
        self.assertEqual(mode("etc/skua/tls/localhost.key"), 0o640)
        self.assertEqual(mode("var/lib/skua"), 0o750)
        pages = os.listdir(os.path.join(root, "usr/local/share/man/man1"))
        self.assertIn("skua.1", pages)
        self.assertIn("skua-serve.1", pages)
        with open(os.path.join(root, "etc/sysctl.d/60-skua.conf"), encoding="utf-8") as f:
            sysctl = f.read()
        self.assertIn("net.core.somaxconn = 4096", sysctl)
        self.assertIn("net.ipv4.ip_local_port_range = 1024 65535", sysctl)
        with open(os.path.join(root, "etc/security/limits.d/skua.conf"), encoding="utf-8") as f:
            self.assertIn("nofile 1048576", f.read())
        # The role's unit is dist/systemd/skua.service with this run's paths and user.
        with open(os.path.join(root, "etc/systemd/system/skua.service"), encoding="utf-8") as f:
            installed = f.read()
        with open(UNIT, encoding="utf-8") as f:
            dist = f.read()
        user = [line for line in installed.splitlines() if line.startswith("User=")][0]
        group = [line for line in installed.splitlines() if line.startswith("Group=")][0]
        normalized = installed.split("\n", 1)[1].replace(root, "")
        normalized = normalized.replace(user + "\n", "User=skua\n")
        normalized = normalized.replace(group + "\n", "Group=skua\n")
        self.assertEqual(normalized, dist)


if __name__ == "__main__":
    unittest.main()
