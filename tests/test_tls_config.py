"""TLS configuration of the real binary (issue 8, item 2): the self-signed default made on the
first start and reused (same SHA-256 fingerprint, printed on the console, key mode 0600), the
`[tls]` files read at start-up with errors that name the file, and SIGHUP reloading them
without stopping the server (a failed reload keeps serving).

No certificate tool is needed: the certificates the configured-file tests use are ones skua
itself made as its self-signed default on another data dir.
"""

import hashlib
import imaplib
import os
import re
import shutil
import signal
import ssl
import stat
import subprocess
import tempfile
import time
import unittest

from harness import BIN, AbuseServer, check_at_end, free_port, run_cli, write_config

ANSI = re.compile(r"\x1b\[[0-9;]*m")
FINGERPRINT = re.compile(r"SHA-256 fingerprint ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})")
# Polls of the log before a test gives up on a line (a bound, not a timing assertion).
LOG_POLLS_MAX = 600


def plain(text):
    return ANSI.sub("", text)


def fingerprint_of(cert_path):
    with open(cert_path, encoding="ascii") as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def openssl_handshake(cert, key, server_hostname):
    """A TLS handshake between two OpenSSL ends in this process (memory BIOs, no socket): the
    server with skua's certificate and key, the client pinning that certificate as its only
    CA and checking the name, as curl, fetchmail, mbsync and imaplib do. Returns the version."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=cert)
    # Each end reads from one BIO and writes to another; the loop below carries the bytes.
    client_in, client_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context.wrap_bio(client_in, client_out, server_hostname=server_hostname)
    server = server_context.wrap_bio(server_in, server_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, end in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        server_in.write(client_out.read())
        client_in.write(server_out.read())
        if all(done.values()):
            return client.version()
    raise AssertionError(f"handshake did not finish: {done}")


class TlsConfig(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-tls-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.servers = []

    def tearDown(self):
        for server in self.servers:
            server.stop_quietly()

    def server(self, name, config=None):
        data = os.path.join(self.tmp, name)
        check_at_end(self, data)
        server = AbuseServer(data, {"alice": "alice-pw"}, config=config)
        self.servers.append(server)
        return server.start()

    def wait_for_log(self, server, pattern, count=1):
        for _ in range(LOG_POLLS_MAX):
            if len(re.findall(pattern, plain(server.log_text()))) >= count:
                return
            self.assertIsNone(server.process.poll(), "skua exited:\n" + server.log_text()[-3000:])
            time.sleep(0.05)
        self.fail(f"no {pattern!r} in the log:\n{server.log_text()[-3000:]}")

    def self_signed_pair(self, name):
        """Starts and stops a server on a new data dir; returns its self-signed (cert, key)."""
        server = self.server(name)
        self.assertEqual(server.stop(), 0)
        tls = os.path.join(server.data_dir, "tls")
        return os.path.join(tls, "selfsigned.crt"), os.path.join(tls, "selfsigned.key")

    def test_self_signed_certificate_is_made_once_and_its_fingerprint_printed(self):
        server = self.server("data")
        cert = os.path.join(server.data_dir, "tls", "selfsigned.crt")
        key = os.path.join(server.data_dir, "tls", "selfsigned.key")
        log = plain(server.log_text())
        self.assertIn("made now", log)
        printed = FINGERPRINT.findall(log)
        self.assertEqual(printed, [fingerprint_of(cert)], log)
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(key)).st_mode) & 0o077, 0)
        # OpenSSL clients that pin the certificate accept it for each name it was made for.
        for name in ("localhost", "127.0.0.1", "::1"):
            self.assertIn(openssl_handshake(cert, key, name), ("TLSv1.2", "TLSv1.3"), name)
        with self.assertRaises(ssl.SSLCertVerificationError):
            openssl_handshake(cert, key, "mail.example.org")
        # Plain IMAP is served as before.
        client = server.imap("alice", "alice-pw")
        client.logout()
        self.assertEqual(server.stop(), 0)

        server.start()
        log = plain(server.log_text())
        self.assertIn("made earlier", log)
        self.assertEqual(FINGERPRINT.findall(log), [fingerprint_of(cert)] * 2, log)

    def test_sighup_reloads_the_files_and_a_failed_reload_keeps_serving(self):
        cert_source, key_source = self.self_signed_pair("maker")
        cert = os.path.join(self.tmp, "server.crt")
        key = os.path.join(self.tmp, "server.key")
        shutil.copy(cert_source, cert)
        shutil.copy(key_source, key)
        config = f'[tls]\ncert = "{cert}"\nkey = "{key}"\n'
        server = self.server("data", config)
        log = plain(server.log_text())
        self.assertIsNone(FINGERPRINT.search(log), "a configured certificate is not self-signed")
        self.assertFalse(os.path.exists(os.path.join(server.data_dir, "tls")))

        # An IMAPS session open across the reload, trusting the first certificate.
        open_session = imaplib.IMAP4_SSL(
            "127.0.0.1", server.imaps_port,
            ssl_context=ssl.create_default_context(cafile=cert_source))
        open_session.login("alice", "alice-pw")

        # A new certificate (another data dir's self-signed one) and SIGHUP.
        new_cert, new_key = self.self_signed_pair("maker2")
        shutil.copy(new_cert, cert)
        shutil.copy(new_key, key)
        server.process.send_signal(signal.SIGHUP)
        self.wait_for_log(server, r"TLS certificates reloaded \(SIGHUP\) generation=2")
        # The open session goes on; a new handshake gets the new certificate.
        self.assertEqual(open_session.select("INBOX")[0], "OK")
        open_session.logout()
        served = ssl.get_server_certificate(("127.0.0.1", server.imaps_port))
        self.assertEqual(ssl.PEM_cert_to_DER_cert(served),
                         ssl.PEM_cert_to_DER_cert(open(new_cert, encoding="ascii").read()))

        with open(cert, "w", encoding="ascii") as f:
            f.write("not a certificate\n")
        server.process.send_signal(signal.SIGHUP)
        self.wait_for_log(server, r"TLS reload failed")
        self.assertIn(f"{cert}: no CERTIFICATE block", plain(server.log_text()))
        client = server.imap("alice", "alice-pw")
        client.noop()
        client.logout()
        self.assertEqual(server.stop(), 0, server.log_text()[-3000:])

    def test_bad_tls_files_stop_start_up_and_name_the_file(self):
        data = os.path.join(self.tmp, "data")
        garbage = write_config(os.path.join(self.tmp, "garbage.pem"), "hello\n")
        missing = os.path.join(self.tmp, "missing.pem")
        cert_source, key_source = self.self_signed_pair("maker")
        cases = [
            (f'[tls]\ncert = "{missing}"\nkey = "{key_source}"\n', missing),
            (f'[tls]\ncert = "{garbage}"\nkey = "{key_source}"\n', f"{garbage}: no CERTIFICATE"),
            (f'[tls]\ncert = "{cert_source}"\nkey = "{garbage}"\n', f"{garbage}: no private key"),
            (f'[tls]\ncert = "{cert_source}"\n', "tls.cert is set but tls.key is not"),
            (
                f'[tls]\ncert = "{cert_source}"\nkey = "{key_source}"\n'
                f'[[tls.certificates]]\ncert = "{garbage}"\nkey = "{key_source}"\n',
                f"{garbage}: no CERTIFICATE",
            ),
        ]
        for index, (text, expected) in enumerate(cases):
            config = write_config(os.path.join(self.tmp, f"bad-{index}.toml"), text)
            result = subprocess.run(
                [
                    BIN, "serve", "--config", config, "--data-dir", data,
                    "--imap-listen", f"127.0.0.1:{free_port()}",
                    "--lmtp-listen", f"127.0.0.1:{free_port()}",
                    "--imaps-listen", f"127.0.0.1:{free_port()}", "--shards", "1",
                ],
                capture_output=True, text=True, timeout=60,
            )
            self.assertNotEqual(result.returncode, 0, text)
            self.assertIn(expected, plain(result.stderr), text)

    def test_imaps_flags_are_documented_and_exclusive(self):
        help_text = run_cli("serve", "--help").stdout
        self.assertIn("--imaps-listen", help_text)
        self.assertIn("--no-imaps", help_text)
        both = run_cli(
            "serve", "--data-dir", os.path.join(self.tmp, "data"), "--no-imaps",
            "--imaps-listen", f"127.0.0.1:{free_port()}", check=False,
        )
        self.assertNotEqual(both.returncode, 0)
        self.assertIn("cannot be used with", both.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "data")))


if __name__ == "__main__":
    unittest.main()
