"""Unit tests of compare.py's --tls parts (no server is started here).

    python3 -m unittest discover -s perf -p 'test_*.py'
"""

import os
import pathlib
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import compare  # noqa: E402
from peers.base import PeerUnavailable, TlsFiles  # noqa: E402
from peers.dovecot import config_text as dovecot_config  # noqa: E402
from peers.skua import Skua, config_text as skua_config  # noqa: E402

TLS = TlsFiles(pathlib.Path("/r/tls.crt"), pathlib.Path("/r/tls.key"), imaps_port=40993)


def report(scenario, ops, extra=None):
    return {
        "scenario": scenario,
        "ops": [{"name": n, "count": c, "errors": 0, "per_sec": r,
                 "latency_us": {"p50": 1, "p90": 1, "p99": 1, "p999": 1, "max": 1, "mean": 1}}
                for n, c, r in ops],
        "extra": extra or {},
    }


class ArgsTest(unittest.TestCase):
    def test_tls_mode_has_its_own_default_scenarios(self):
        self.assertEqual(compare.parse_args(["--tls"]).scenarios, compare.TLS_SCENARIOS)
        self.assertEqual(compare.parse_args([]).scenarios, compare.SCENARIOS)
        with self.assertRaises(SystemExit):
            compare.parse_args(["--scenarios", "handshake-full"])  # TLS only


class CommandTest(unittest.TestCase):
    def cmd(self, scenario, tls=TLS):
        args = compare.parse_args(["--tls", "--duration", "3"])
        return compare.bench_command(args, scenario, None, 143, 24, ["--size", "4096"], 7,
                                     19000, tls)

    def test_handshakes_go_to_the_imaps_port_with_the_run_certificate(self):
        full = self.cmd("handshake-full")
        self.assertEqual(full[1:4], ["handshake", "--port", "40993"])
        self.assertIn("--tls", full)
        self.assertEqual(full[full.index("--tls-ca") + 1], "/r/tls.crt")
        self.assertNotIn("--tls-resume", full)
        self.assertEqual(full[full.index("--server-pid") + 1], "7")
        self.assertIn("--tls-resume", self.cmd("handshake-resumed"))

    def test_imap_over_imaps_lmtp_over_starttls_plain_run_without_tls(self):
        read = self.cmd("imap-read")
        self.assertEqual(read[read.index("--port") + 1], "40993")
        self.assertEqual(read[read.index("--lmtp-port") + 1], "24")
        self.assertIn("--tls", read)
        lmtp = self.cmd("lmtp")
        self.assertIn("--starttls", lmtp)
        self.assertNotIn("--tls", lmtp)
        self.assertEqual(lmtp[lmtp.index("--port") + 1], "24")
        plain = self.cmd("imap-read-plain", tls=None)
        self.assertEqual(plain[1], "imap-read")
        self.assertEqual(plain[plain.index("--port") + 1], "143")
        self.assertFalse(any(a.startswith("--tls") for a in plain))
        idle = self.cmd("idle")
        self.assertEqual(idle[idle.index("--port") + 1], "40993")
        self.assertEqual(idle[idle.index("--connections") + 1], "19000")


class PeerConfigTest(unittest.TestCase):
    def test_dovecot_requires_tls_with_the_run_certificate(self):
        text = dovecot_config(pathlib.Path("/w"), 1, 1, 1143, 1024, 100, False, TLS)
        self.assertIn("ssl = required", text)
        self.assertIn("ssl_cert = </r/tls.crt", text)
        self.assertIn("ssl_key = </r/tls.key", text)
        self.assertIn("port = 40993\n    ssl = yes", text)
        self.assertNotIn("ssl = no", text)
        plain = dovecot_config(pathlib.Path("/w"), 1, 1, 1143, 1024, 100, False)
        self.assertIn("ssl = no", plain)
        self.assertIn("port = 0", plain)

    def test_skua_serves_the_run_certificate(self):
        self.assertIn('[tls]\ncert = "/r/tls.crt"\nkey = "/r/tls.key"\n', skua_config(tls=TLS))
        self.assertNotIn("[tls]", skua_config())
        peer = Skua(binary=pathlib.Path("/nonexistent"), shards=2)
        peer.configure_tls(TLS)
        self.assertIn("tls", peer.settings())
        peer.configure_tls(None)
        self.assertNotIn("tls", peer.settings())

    def test_a_peer_without_tls_support_is_skipped(self):
        from peers.base import Peer
        with self.assertRaises(PeerUnavailable):
            Peer().configure_tls(TLS)
        Peer().configure_tls(None)


class VerdictTest(unittest.TestCase):
    def test_goals(self):
        results = {
            "skua": {
                "handshake-resumed": report("handshake", [("full", 8, 10.0),
                                                          ("resumed", 992, 99.0)],
                                            {"negotiated": "TLSv1_3/X",
                                             "server_cpu_ms_per_connection": 0.4567}),
                "imap-read": report("imap-read", [("fetch-body", 10, 900.0)]),
                "imap-read-plain": report("imap-read", [("fetch-body", 10, 1000.0)]),
                "idle": report("idle", [], {"idle_connections": 19000,
                                            "rss_per_connection_kib": 6.1,
                                            "pss_per_connection_kib": 6.0}),
            },
            "dovecot": {
                "imap-read": report("imap-read", [("fetch-body", 10, 100.0)]),
                "imap-read-plain": report("imap-read", [("fetch-body", 10, 50.0)]),
                "idle": report("idle", [], {"idle_connections": 500,
                                            "rss_per_connection_kib": 300.0}),
            },
        }
        lines = compare.tls_verdicts(results)
        self.assertIn("skua handshake-resumed: TLSv1_3/X, 8 full and 992 resumed handshakes, "
                      "server CPU 0.457 ms per connection", lines)
        self.assertTrue(any(l.startswith("skua idle TLS: 19,000 held, RSS 6.10 KiB")
                            and l.endswith("NOT met") for l in lines), lines)
        results["dovecot"]["idle"]["extra"] = {"idle_connections": 0,
                                               "rss_per_connection_kib": 0.0}
        self.assertTrue(any(l.startswith("dovecot idle TLS: 0 held") and l.endswith("NOT met")
                            for l in compare.tls_verdicts(results)), "nothing held: not met")
        self.assertTrue(any(l.startswith("imap-read fetch-body: skua/Dovecot 9.00x over TLS, "
                                         "20.00x plain: lead kept (narrower over TLS)")
                            for l in lines), lines)


if __name__ == "__main__":
    unittest.main()
