"""The command line: help, users, the demo user, reconstruct, curl's imap:// support."""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from harness import BIN, HOST, Server, ServerTest, free_port, lmtp_deliver, message, run_cli, wait_for_port, without_trace_fields
from test_imap import fetch_uid_map


class Help(unittest.TestCase):
    def test_every_subcommand_has_help(self):
        for args in (
            ["--help"], ["serve", "--help"], ["user", "--help"], ["user", "add", "--help"],
            ["user", "passwd", "--help"], ["user", "del", "--help"], ["user", "list", "--help"],
            ["reconstruct", "--help"],
        ):
            result = run_cli(*args)
            self.assertIn("Usage", result.stdout, args)


class Users(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-cli-")
        self.data = os.path.join(self.tmp, "data")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_user_add_list_passwd_del_then_login(self):
        run_cli("user", "add", "dave", "--data-dir", self.data, stdin="secret-1\n")
        run_cli("user", "add", "erin@example.com", "--data-dir", self.data, stdin="secret-2\n")
        dup = run_cli("user", "add", "dave", "--data-dir", self.data, stdin="x\n", check=False)
        self.assertNotEqual(dup.returncode, 0)
        listing = run_cli("user", "list", "--data-dir", self.data).stdout.split()
        self.assertEqual(sorted(listing), ["dave", "erin@example.com"])
        with open(os.path.join(self.data, "passwd"), encoding="utf-8") as f:
            text = f.read()
        self.assertNotIn("secret-1", text, "passwords are stored hashed")
        run_cli("user", "passwd", "dave", "--data-dir", self.data, stdin="secret-3\n")
        run_cli("user", "del", "erin@example.com", "--data-dir", self.data)
        self.assertEqual(run_cli("user", "list", "--data-dir", self.data).stdout.split(), ["dave"])
        server = Server(self.data, None).start()
        try:
            c = server.imap("dave", "secret-3")
            c.logout()
        finally:
            self.assertEqual(server.stop(), 0)

    def test_demo_user_printed_on_empty_data_dir(self):
        imap_port, lmtp_port = free_port(), free_port()
        process = subprocess.Popen(
            [BIN, "serve", "--data-dir", self.data, "--imap-listen", f"{HOST}:{imap_port}",
             "--lmtp-listen", f"{HOST}:{lmtp_port}", "--imaps-listen", f"{HOST}:{free_port()}",
             "--shards", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            wait_for_port(imap_port, process)
            banner = ""
            deadline = time.monotonic() + 10
            while "password" not in banner and time.monotonic() < deadline:
                banner += process.stdout.readline()
            match = re.search(r"user\s+(\S+)\s+password\s+(\S+)", banner)
            self.assertIsNotNone(match, banner)
            import imaplib

            c = imaplib.IMAP4(HOST, imap_port, timeout=10)
            c.login(match.group(1), match.group(2))
            c.logout()
        finally:
            process.terminate()
            code = process.wait(timeout=30)
            process.stdout.close()
            self.assertEqual(code, 0)


class Reconstruct(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-rec-")
        self.data = os.path.join(self.tmp, "data")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_reconstruct_rebuilds_deleted_indexes(self):
        server = Server(self.data, {"alice": "pw"}).start()
        lmtp = server.lmtp()
        sent = [message(f"r{i}", f"body {i}") for i in range(5)]
        for raw in sent:
            self.assertEqual(lmtp_deliver(lmtp, "s@x", ["alice"], raw)[0][0], 250)
        lmtp.quit()
        self.assertEqual(server.stop(), 0)
        removed = 0
        for root, _, files in os.walk(self.data):
            for name in files:
                if name.endswith(".idx"):
                    os.remove(os.path.join(root, name))
                    removed += 1
        self.assertGreater(removed, 0)
        run_cli("reconstruct", "alice", "--data-dir", self.data)
        server = Server(self.data, None).start()
        try:
            c = server.imap("alice", "pw")
            c.select("INBOX")
            bodies = list(fetch_uid_map(c).values())
            self.assertEqual([without_trace_fields(b) for b in bodies], sent)
            c.logout()
        finally:
            self.assertEqual(server.stop(), 0)


class Curl(ServerTest):
    def test_curl_fetches_by_uid(self):
        raw = message("curl", "fetched by curl")
        c = self.server.imap("alice", "alice-pw")
        c.append("INBOX", None, None, raw)
        c.logout()
        url = f"imap://{HOST}:{self.server.imap_port}/INBOX;UID=1"
        result = subprocess.run(
            ["curl", "-sS", "--max-time", "20", "-u", "alice:alice-pw", url],
            capture_output=True, timeout=30,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, raw)



class ConfigFile(unittest.TestCase):
    """Settings from the TOML file reach the server; unknown keys are refused."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-test-")
        self.config = os.path.join(self.tmp, "skua.toml")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_connections_per_shard_and_unpinned_shards(self):
        with open(self.config, "w", encoding="utf-8") as f:
            f.write("pin_cores = false\nconnections_per_shard = 1\n")
        server = Server(os.path.join(self.tmp, "data"), {"alice": "pw"}, shards=1,
                        extra_args=["--config", self.config]).start()
        try:
            # The harness's readiness probes hold the one slot until the server sees them
            # close; wait for it to be free.
            deadline = time.monotonic() + 10
            while True:
                first = socket.create_connection((HOST, server.imap_port), timeout=10)
                greeting = first.recv(512)
                if greeting.startswith(b"* OK") or time.monotonic() > deadline:
                    break
                first.close()
                time.sleep(0.05)
            self.assertTrue(greeting.startswith(b"* OK"), greeting)
            second = socket.create_connection((HOST, server.imap_port), timeout=10)
            self.assertIn(b"* BYE [LIMIT]", second.recv(512))
            second.close()
            first.close()
        finally:
            self.assertEqual(server.stop(), 0, server.log_text())

    def test_unknown_setting_is_refused(self):
        with open(self.config, "w", encoding="utf-8") as f:
            f.write("pin_core = false\n")
        result = run_cli("serve", "--config", self.config, "--data-dir",
                         os.path.join(self.tmp, "data"), check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("pin_core", result.stderr + result.stdout)


if __name__ == "__main__":
    unittest.main()
