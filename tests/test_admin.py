"""The admin tools and the admin socket (issue 11): `skua check`, `reconstruct`, `quota`,
`mbpath`, `mbexamine`, `df`, `version --build`, `user list`.

Each tool gives the same report against a running server (through DATA_DIR/admin.sock, the
work done on the user's home shard) and a stopped one (the tool opens the store itself under
the data-dir lock). `skua check` finds a byte flipped on disk in a spool record and in an index
record (exit 1) and changes nothing; a clean store gives exit 0. A wrong data dir, an unknown
user or mailbox, and a server that holds the data dir but does not answer are errors. The
socket is mode 0600, replaced after a kill -9, removed at a clean stop, and refuses a peer of
another uid (checked here when the test runs as root; `shard/src/admin.rs` unit-tests the rule).

Bug pinned: `skua user list --data-dir /nonexistent` printed nothing and exited 0.
"""

import fcntl
import glob
import hashlib
import imaplib
import json
import os
import shutil
import signal
import socket
import stat
import tempfile
import unittest

from harness import BIN, Server, check_all, lmtp_deliver, message, run_cli


def user_dir(data_dir, user):
    """The store directory of `user` (`users/<hh>/<user>`), found on disk."""
    found = glob.glob(os.path.join(data_dir, "users", "*", user))
    assert len(found) == 1, found
    return os.path.realpath(found[0])


def tree_digest(root):
    """A digest of every file's path and bytes under `root` (the lock file aside)."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if name in ("lock", "admin.sock") or not os.path.isfile(path):
                continue
            digest.update(os.path.relpath(path, root).encode())
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


class AdminTest(unittest.TestCase):
    USERS = {"alice": "alice-pw", "bob": "bob-pw"}

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-admin-")
        self.data = os.path.join(self.tmp, "data")
        self.server = Server(self.data, self.USERS, shards=2).start()
        self.socket_path = os.path.join(self.data, "admin.sock")

    def tearDown(self):
        try:
            if self.server.process is not None:
                self.assertEqual(self.server.stop(), 0, self.server.log_text())
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def deliver(self, user, count, tag="m"):
        lmtp = self.server.lmtp()
        for i in range(count):
            raw = message(f"{tag} {i}", f"body {tag} {i} " + "x" * 200)
            self.assertEqual(lmtp_deliver(lmtp, "s@x", [user], raw)[0][0], 250)
        lmtp.quit()

    def mail(self):
        """Some mail in two users' stores, a flag, a keyword, an expunge, a second mailbox."""
        self.deliver("alice", 4)
        self.deliver("bob", 2)
        c = self.server.imap("alice", "alice-pw")
        c.create("Archive")
        c.select("INBOX")
        c.uid("STORE", "1", "+FLAGS", r"(\Seen $Important)")
        c.uid("STORE", "2", "+FLAGS", r"(\Deleted)")
        c.expunge()
        c.uid("COPY", "3", "Archive")
        self.alice_mailboxes = len(c.list()[1])
        c.logout()

    def cli(self, *args, check=True):
        return run_cli(*args, "--data-dir", self.data, check=check)

    def reports(self):
        """Every tool's JSON report, by tool."""
        return {
            "check": json.loads(self.cli("check", "--all", "--json").stdout),
            "check-one": json.loads(self.cli("check", "bob", "--json").stdout),
            "quota": json.loads(self.cli("quota", "alice", "bob", "--json").stdout),
            # exact counters: --fix finds nothing to set, online (in place) and offline alike
            "quota-fix": json.loads(self.cli("quota", "alice", "--fix", "--json").stdout),
            "mbexamine": json.loads(self.cli("mbexamine", "alice", "inbox", "--json").stdout),
            "mbexamine-archive": json.loads(
                self.cli("mbexamine", "alice", "Archive", "--json").stdout
            ),
            "df": json.loads(self.cli("df", "--json").stdout),
            "mbpath": json.loads(self.cli("mbpath", "alice", "--json").stdout),
        }

    def test_every_tool_reports_the_same_against_a_running_and_a_stopped_server(self):
        self.mail()
        self.assertEqual(stat.S_IMODE(os.stat(self.socket_path).st_mode), 0o600)
        running = self.reports()
        self.assertEqual(self.server.stop(), 0)
        self.assertFalse(os.path.exists(self.socket_path), "a clean stop removes admin.sock")
        stopped = self.reports()
        # The index header's checkpoint is written at the server's last flush rounds: the
        # running server shows the header as last written, the stopped store its final one.
        for report in (running, stopped):
            for key in ("mbexamine", "mbexamine-archive"):
                for field in ("checkpoint_segment", "checkpoint_offset", "first_recent_uid"):
                    report[key].pop(field)
        self.assertEqual(running, stopped)
        check = stopped["check"]
        self.assertEqual([r["user"] for r in check], ["alice", "bob"])
        self.assertTrue(all(not r["findings"] for r in check), check)
        self.assertEqual(check[0]["spool_records"], 4, "3 live in INBOX, 1 in Archive")
        inbox = stopped["mbexamine"]
        self.assertEqual(inbox["mailbox"], "INBOX")
        self.assertEqual([r["uid"] for r in inbox["records"]], [1, 2, 3, 4])
        self.assertEqual([r["expunged"] for r in inbox["records"]], [False, True, False, False])
        self.assertEqual(inbox["records"][0]["flags"], ["\\Seen", "$Important"])
        self.assertEqual(inbox["messages"], 3)
        quota = {r["user"]: r for r in stopped["quota"]}
        self.assertEqual(quota["alice"]["messages"], 4)
        self.assertEqual(quota["alice"]["mailboxes"], self.alice_mailboxes)
        self.assertEqual(quota["bob"]["mailboxes"], 1, "bob never logged in: INBOX only")
        self.assertEqual(quota["bob"]["messages"], 2)
        self.assertEqual(quota["alice"]["storage_bytes"], quota["alice"]["recount_storage_bytes"])
        self.assertFalse(stopped["quota-fix"][0]["fixed"], "nothing differed")
        df = stopped["df"]
        self.assertEqual([u["user"] for u in df["users"]], ["alice", "bob"])
        self.assertEqual(df["total"]["messages"], 6)
        self.assertEqual(
            df["total"]["total_bytes"], sum(u["total_bytes"] for u in df["users"])
        )
        self.assertTrue(os.path.isdir(stopped["mbpath"]["path"]))
        self.assertEqual(
            os.path.realpath(stopped["mbpath"]["path"]), user_dir(self.data, "alice")
        )
        check_all(self, self.data)

    def test_check_finds_a_flipped_byte_in_a_spool_record_and_in_an_index_record(self):
        self.deliver("alice", 3, tag="flip")
        self.deliver("bob", 1)
        check_all(self, self.data)  # online, clean
        self.assertEqual(self.server.stop(), 0)
        check_all(self, self.data)  # offline, clean
        alice = user_dir(self.data, "alice")
        before = tree_digest(alice)

        segment = sorted(glob.glob(os.path.join(alice, "spool", "*.seg")))[0]
        with open(segment, "rb") as f:
            spool = bytearray(f.read())
        at = spool.index(b"body flip 1 ")
        spool[at] ^= 0x20
        with open(segment, "wb") as f:
            f.write(spool)
        flipped = tree_digest(alice)
        result = self.cli("check", "--all", check=False)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn(os.path.relpath(segment, self.data), result.stdout)
        self.assertIn("fails its checksum", result.stdout)
        self.assertNotIn("bob: users", result.stdout, "bob's store is sound")
        self.assertEqual(tree_digest(alice), flipped, "check changed nothing")
        report = json.loads(self.cli("check", "alice", "--json", check=False).stdout)
        self.assertEqual(len(report[0]["findings"]), 1, report)
        self.assertEqual(report[0]["findings"][0]["user"], "alice")
        spool[at] ^= 0x20
        with open(segment, "wb") as f:
            f.write(spool)
        self.assertEqual(tree_digest(alice), before)
        self.assertEqual(self.cli("check", "alice", check=False).returncode, 0)

        inbox = json.loads(self.cli("mbexamine", "alice", "INBOX", "--json").stdout)
        index = os.path.join(alice, "mbox", f"{inbox['id']:08d}.idx")
        with open(index, "r+b") as f:
            f.seek(128 + 64 + 36)  # the second record's size field
            byte = f.read(1)
            f.seek(128 + 64 + 36)
            f.write(bytes([byte[0] ^ 0x01]))
        flipped = tree_digest(alice)
        result = self.cli("check", "alice", check=False)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn(os.path.relpath(index, self.data), result.stdout)
        self.assertIn("index record 1 (offset 192) fails its checksum", result.stdout)
        self.assertEqual(tree_digest(alice), flipped, "check did not open (and repair) it")
        with self.subTest("reconstruct --check reports and changes nothing"):
            result = self.cli("reconstruct", "alice", "--check", check=False)
            self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
            self.assertEqual(tree_digest(alice), flipped)
        self.cli("reconstruct", "--all")
        check_all(self, self.data)
        self.server = Server(self.data, None, shards=2).start()
        c = self.server.imap("alice", "alice-pw")
        typ, data = c.select("INBOX")
        self.assertEqual(data, [b"3"], "reconstruct kept every message")
        c.logout()
        check_all(self, self.data)

    def test_wrong_data_dir_user_and_mailbox_are_errors_online_and_offline(self):
        self.deliver("alice", 1)
        missing = os.path.join(self.tmp, "nonexistent")
        for args in (("user", "list"), ("check", "--all"), ("df",), ("quota",), ("mbpath", "a")):
            result = run_cli(*args, "--data-dir", missing, check=False)
            self.assertNotEqual(result.returncode, 0, f"{args}: {result.stdout}")
            self.assertIn("nonexistent", result.stderr, args)
            self.assertFalse(os.path.exists(missing), f"{args} created the data dir")
        for state in ("running", "stopped"):
            with self.subTest(state):
                for args, said in (
                    (("check", "nobody"), "nobody has no store"),
                    (("quota", "nobody"), "nobody has no store"),
                    (("mbexamine", "nobody", "INBOX"), "nobody has no store"),
                    (("mbexamine", "alice", "Nowhere"), "no mailbox \"Nowhere\""),
                    (("mbpath", "nobody"), "nobody has no store"),
                    (("check", "alice", "--all"), "cannot be used with"),
                ):
                    result = self.cli(*args, check=False)
                    self.assertNotEqual(result.returncode, 0, f"{args}: {result.stdout}")
                    self.assertIn(said, result.stderr, args)
                listed = self.cli("user", "list").stdout.split()
                self.assertEqual(sorted(listed), ["alice", "bob"])
            if state == "running":
                self.assertEqual(self.server.stop(), 0)

    def test_reconstruct_online_rebuilds_a_damaged_index_and_its_sessions_reconnect(self):
        self.deliver("alice", 3, tag="rebuild")
        self.deliver("bob", 1)
        c = self.server.imap("alice", "alice-pw")
        c.select("INBOX")
        self.assertEqual(c.store("1", "+FLAGS", r"(\Flagged)")[0], "OK")
        inbox = json.loads(self.cli("mbexamine", "alice", "INBOX", "--json").stdout)
        index = os.path.join(user_dir(self.data, "alice"), "mbox", f"{inbox['id']:08d}.idx")
        with open(index, "r+b") as f:  # the second record's size field, under the server
            f.seek(128 + 64 + 36)
            byte = f.read(1)
            f.seek(128 + 64 + 36)
            f.write(bytes([byte[0] ^ 0x01]))
        result = self.cli("check", "alice", check=False)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn("fails its checksum", result.stdout)

        out = self.cli("reconstruct", "alice", "--json").stdout.splitlines()
        report = json.loads(out[0])
        self.assertEqual((report["user"], report["messages"]), ("alice", 3), report)
        self.assertEqual(report["flags_kept"], 2, "the damaged record's flags come from the spool")
        # The selected session was told at once, without sending anything.
        with self.assertRaises(imaplib.IMAP4.abort) as told:
            c.noop()
        self.assertIn("reset", str(told.exception))
        check_all(self, self.data)
        c = self.server.imap("alice", "alice-pw")
        c.select("INBOX")
        typ, data = c.fetch("1:*", "FLAGS")
        self.assertEqual(len(data), 3, data)
        self.assertIn(rb"\Flagged", data[0], "flags kept")
        c.logout()
        self.deliver("alice", 1, tag="after")
        self.assertEqual(
            json.loads(self.cli("quota", "alice", "--json").stdout)[0]["messages"], 4
        )
        with self.subTest("an unknown user is an error, online too"):
            result = self.cli("reconstruct", "nobody", check=False)
            self.assertEqual(result.returncode, 1)
            self.assertIn("nobody has no store", result.stderr)
        self.assertEqual(self.server.stop(), 0)
        out = self.cli("reconstruct", "--all", "--json").stdout.splitlines()
        self.assertEqual([json.loads(line)["user"] for line in out], ["alice", "bob"])
        self.assertEqual([json.loads(line)["messages"] for line in out], [4, 1])
        check_all(self, self.data)

    def test_a_server_that_does_not_answer_is_an_error(self):
        self.deliver("alice", 1)
        os.unlink(self.socket_path)
        result = self.cli("check", "alice", check=False)
        self.assertEqual(result.returncode, 1)
        self.assertIn("did not answer on its admin socket", result.stderr)
        self.assertEqual(self.server.stop(), 0)
        # A data dir locked by something that is not a skua server (no socket at all).
        with open(os.path.join(self.data, "lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            result = self.cli("df", check=False)
            self.assertEqual(result.returncode, 1)
            self.assertIn("did not answer", result.stderr)

    def test_the_socket_is_replaced_after_a_kill_and_answers(self):
        self.deliver("alice", 1)
        self.server.kill9()
        self.assertTrue(os.path.exists(self.socket_path), "a killed server leaves its socket")
        self.assertEqual(self.cli("check", "alice", check=False).returncode, 0, "offline now")
        self.server = Server(self.data, None, shards=2).start()
        self.assertEqual(stat.S_IMODE(os.stat(self.socket_path).st_mode), 0o600)
        report = json.loads(self.cli("quota", "alice", "--json").stdout)
        self.assertEqual(report[0]["messages"], 1)
        check_all(self, self.data)

    def test_the_protocol_answers_bad_requests_and_progress(self):
        self.deliver("alice", 1)
        self.deliver("bob", 1)

        def ask(line):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(30)
                s.connect(self.socket_path)
                s.sendall(line)
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            return [json.loads(x) for x in data.decode().splitlines()]

        lines = ask(b'{"op":"check","all":true}\n')
        self.assertEqual(
            [x.get("progress") for x in lines[:-1]],
            [
                {"done": 0, "total": 2, "user": "alice"},
                {"done": 1, "total": 2, "user": "bob"},
            ],
        )
        self.assertEqual([r["user"] for r in lines[-1]["ok"]], ["alice", "bob"])
        for bad in (b"nonsense\n", b'{"op":"check"}\n', b'{"op":"check","users":["a"],"x":1}\n'):
            self.assertEqual(ask(bad)[-1]["error"]["kind"], "bad-request", bad)
        self.assertEqual(ask(b"x" * (70 * 1024) + b"\n")[-1]["error"]["kind"], "bad-request")
        self.assertEqual(ask(b'{"op":"ping"}\n')[-1]["ok"]["pid"], self.server.process.pid)

    def test_connections_past_the_bound_are_told_busy(self):
        idle = []
        try:
            for _ in range(8):  # ADMIN_CONNECTIONS_MAX (shard/src/limits.rs)
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.socket_path)
                idle.append(s)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(30)
                s.connect(self.socket_path)
                s.sendall(b'{"op":"ping"}\n')
                reply = json.loads(s.makefile().readline())
            self.assertEqual(reply["error"]["kind"], "busy", reply)
        finally:
            for s in idle:
                s.close()
        for _ in range(100):  # the server notices the closes
            result = self.cli("df", "--json", check=False)
            if result.returncode == 0:
                break
        self.assertEqual(result.returncode, 0, result.stderr)

    @unittest.skipUnless(os.geteuid() == 0, "needs root to connect as another uid")
    def test_a_peer_of_another_uid_is_refused(self):
        # Let the kernel pass the other uid to the socket: SO_PEERCRED must refuse it.
        for path in (self.tmp, self.data):
            os.chmod(path, 0o755)
        os.chmod(self.socket_path, 0o666)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(read)
                os.setgid(65534)
                os.setuid(65534)
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(10)
                    s.connect(self.socket_path)
                    try:
                        s.sendall(b'{"op":"ping"}\n')
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # refused and closed already: the answer is still to be read
                    answer = s.recv(4096)
                os.write(write, answer)
            except Exception as error:  # reported through the pipe to the parent
                os.write(write, f"child failed: {error!r}".encode())
            finally:
                os._exit(0)
        os.close(write)
        answer = os.read(read, 4096)
        os.close(read)
        os.waitpid(pid, 0)
        self.assertTrue(answer.startswith(b"{"), answer)
        reply = json.loads(answer.decode().splitlines()[0])
        self.assertEqual(reply["error"]["kind"], "refused", reply)
        self.assertIn("uid 65534", reply["error"]["message"])


class InfoTest(unittest.TestCase):
    def test_info_shows_what_the_config_and_flags_change(self):
        tmp = tempfile.mkdtemp(prefix="skua-info-")
        try:
            config = os.path.join(tmp, "skua.toml")
            with open(config, "w", encoding="utf-8") as f:
                f.write('hostname = "mail.example.org"\n[quota]\nstorage = "1G"\n')
            cwd = os.getcwd()
            os.chdir(tmp)  # the default data dir, ./skua-data, must not be made
            try:
                bare = json.loads(run_cli("info", "--json").stdout)
                self.assertEqual(os.listdir(tmp), ["skua.toml"], "info made nothing")
            finally:
                os.chdir(cwd)
            self.assertEqual(sorted(bare), ["tls"], "nothing differs from the defaults")
            shown = json.loads(run_cli("info", "--json", "--config", config, "--shards", "3").stdout)
            self.assertEqual(shown["hostname"], '"mail.example.org"')
            self.assertEqual(shown["shards"], "3")
            self.assertIn("storage_kib: Some(\n        1048576,", shown["quota_default"])
            self.assertNotIn("imap_listen", shown)
            everything = run_cli("info", "--all").stdout
            self.assertIn("imap_listen = [", everything)
            self.assertIn("auth = AuthSection", everything)
            with open(config, "a", encoding="utf-8") as f:
                f.write("[tls]\ncert = \"/x.pem\"\n")
            result = run_cli("info", "--config", config, check=False)
            self.assertEqual(result.returncode, 1)
            self.assertIn("tls.cert is set but tls.key is not", result.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class VersionTest(unittest.TestCase):
    def test_version_build_says_how_the_binary_was_made(self):
        info = json.loads(run_cli("version", "--build", "--json").stdout)
        self.assertTrue(info["version"])
        self.assertTrue(info["rustc"].startswith("rustc "), info)
        self.assertIn("linux", info["target"])
        self.assertIn(info["profile"], ("debug", "release"))
        plain = run_cli("version", "--build").stdout
        self.assertIn("rustc", plain)
        self.assertTrue(run_cli("version").stdout.startswith("skua "))


if __name__ == "__main__":
    unittest.main()
