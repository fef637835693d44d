"""Unit tests of the comparison script's pure parts (no server is started here).

    python3 -m unittest discover -s perf -p 'test_*.py'
"""

import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import compare  # noqa: E402
import compare_table as t  # noqa: E402
import peers  # noqa: E402
from peers import base  # noqa: E402
from peers.dovecot import config_text  # noqa: E402


def report(scenario, ops, extra=None):
    return {
        "scenario": scenario,
        "ops": [
            {"name": n, "count": 10, "errors": e, "per_sec": r,
             "latency_us": {"p50": p50, "p90": p99, "p99": p99, "p999": p99, "max": p99,
                            "mean": p50}}
            for n, r, p50, p99, e in ops
        ],
        "extra": extra or {},
    }


RESULTS = {
    "skua": {
        "lmtp": report("lmtp", [("deliver", 3000.0, 2000, 7000, 0)]),
        "idle": report("idle", [("notify", 100.0, 500, 4000, 0)],
                       {"idle_connections": 19000, "pss_per_connection_kib": 1.5,
                        "rss_per_connection_kib": 1.6}),
    },
    "dovecot": {
        "lmtp": report("lmtp", [("deliver", 250.0, 6000, 30000, 0)]),
        "idle": report("idle", [("notify", 2.0, 500000, 510000, 0)],
                       {"idle_connections": 500, "pss_per_connection_kib": 500.0,
                        "rss_per_connection_kib": 5000.0}),
    },
}


class TableTest(unittest.TestCase):
    def test_ratio_and_formats(self):
        self.assertEqual(t.ratio(10, 4), 2.5)
        self.assertIsNone(t.ratio(10, 0))
        self.assertIsNone(t.ratio(None, 3))
        self.assertEqual(t.fmt_us(850), "850us")
        self.assertEqual(t.fmt_us(12_345), "12.35ms")
        self.assertEqual(t.fmt_us(2_500_000), "2.50s")
        self.assertEqual(t.fmt_ratio(None), "-")

    def test_table_has_a_row_per_operation_with_ratios(self):
        lines = t.table(RESULTS, ["lmtp", "idle"])
        self.assertIn("ops x dovecot", lines[0])
        deliver = next(line for line in lines if " deliver " in line)
        self.assertIn("12.00x", deliver)  # 3000 / 250
        self.assertIn("0.23x", deliver)  # 7 ms / 30 ms
        pss = next(line for line in lines if "PSS KiB/conn" in line)
        self.assertIn("0.00x", pss)
        self.assertEqual(len({len(line) for line in lines[:2]}), 1, "columns aligned")

    def test_missing_peer_run_shows_dashes(self):
        results = {"skua": RESULTS["skua"], "dovecot": {"lmtp": None}}
        deliver = next(line for line in t.table(results, ["lmtp"]) if "deliver" in line)
        self.assertIn("-", deliver)

    def test_verdicts(self):
        v = t.verdicts(RESULTS)
        self.assertTrue(any(x.startswith("lmtp deliver: 12.00x") and x.endswith(": met")
                            for x in v), v)
        self.assertTrue(any("connections held: 19,000" in x and x.endswith(": met") for x in v))
        self.assertTrue(any("PSS per connection: 1.50" in x and x.endswith(": met") for x in v))
        slow = {"skua": {"lmtp": report("lmtp", [("deliver", 3000.0, 2000, 90000, 0)])},
                "dovecot": RESULTS["dovecot"]}
        self.assertTrue(t.verdicts(slow)[0].endswith("NOT met"), "higher p99 fails")


# What skua-bench --server-metrics adds to a report's extras (bench/src/server_metrics.rs).
STORAGE = {
    "server_fdatasyncs": 11106, "server_flush_rounds": 2776,
    "server_fdatasyncs_per_imap_command": 0.52, "server_flush_rounds_per_imap_command": 0.25,
    "server_fdatasyncs_per_write_command": 1.21, "server_flush_rounds_per_write_command": 0.58,
    "server_flush_round_p50_us": 566.155, "server_flush_round_p90_us": 972.0,
    "server_flush_round_p99_us": 4374.6, "server_flush_round_mean_us": 678.4,
}


class StorageTest(unittest.TestCase):
    results = {
        "skua": {"imap-mixed": report("imap-mixed", [("store", 900.0, 500, 900, 0)], STORAGE),
                 "lmtp": report("lmtp", [("deliver", 10.0, 1, 1, 0)],
                                {"server_metrics": "unavailable (HTTP status \"404\")"}),
                 "churn": report("churn", [("session", 10.0, 1, 1, 0)])},
        "dovecot": {"imap-mixed": report("imap-mixed", [("store", 90.0, 900, 9000, 0)]),
                    "lmtp": None},
    }

    def test_details_per_unit_with_peers_as_na(self):
        lines = t.storage_details(self.results, ["imap-mixed", "lmtp", "churn"])
        self.assertEqual(len(lines), 3, lines)  # churn: nobody measured; dovecot lmtp failed
        skua, dovecot, unavailable = lines
        self.assertTrue(skua.startswith("skua imap-mixed: 0.52 fdatasyncs, 0.25 flush rounds "
                                        "per imap command; 1.21 fdatasyncs, 0.58 flush rounds "
                                        "per write command; 11,106 fdatasyncs and 2,776 rounds"),
                        skua)
        self.assertIn("p50 566us, p90 972us, p99 4.37ms, mean 678us", skua)
        self.assertEqual(dovecot, "dovecot imap-mixed: n/a (no metrics endpoint)")
        self.assertEqual(unavailable, 'skua lmtp: server metrics unavailable (HTTP status "404")')

    def test_markdown_rows(self):
        rows = t.storage_markdown(self.results, ["imap-mixed", "lmtp", "churn"])
        self.assertEqual(len(rows), 2 + 3, rows)
        self.assertEqual(rows[2], "| imap-mixed | skua | 0.52 / 0.25 per imap command; 1.21 / "
                                  "0.58 per write command | 11,106 / 2,776 | p50 566us, "
                                  "p90 972us, p99 4.37ms |")
        self.assertEqual(rows[3], "| imap-mixed | dovecot | n/a | n/a | n/a |")
        self.assertIn("unavailable", rows[4])
        self.assertEqual(t.storage_markdown(RESULTS, ["lmtp", "idle"]), [])

    def test_summary_has_the_section_only_when_measured(self):
        args = compare.parse_args(["--scenarios", "imap-mixed", "--peers", "skua,dovecot"])
        lines = compare.summary(args, self.results, {})
        at = lines.index("Server storage over each measured phase (skua's metrics endpoint; "
                         "peers export none: n/a):")
        self.assertTrue(lines[at + 1].startswith("  skua imap-mixed: 0.52 fdatasyncs"))
        self.assertEqual(lines[at + 2], "  dovecot imap-mixed: n/a (no metrics endpoint)")
        args = compare.parse_args(["--scenarios", "lmtp"])
        lines = compare.summary(args, RESULTS, {})
        self.assertFalse(any("Server storage" in x for x in lines))

    def test_skua_is_scraped_and_the_peers_are_not(self):
        from peers.skua import Skua, config_text
        self.assertTrue(config_text(16384, metrics_port=9).endswith(
            '[metrics]\nlisten = ["127.0.0.1:9"]\n'))
        skua = Skua()
        self.assertIsNone(skua.metrics_url(), "not started")
        skua.metrics_port = 9
        args = compare.parse_args(["--peers", "skua,dovecot"])
        cmd = compare.bench_command(args, "imap-mixed", skua, 1, 2, [], 42, 500)
        self.assertEqual(cmd[cmd.index("--server-metrics") + 1], "http://127.0.0.1:9/metrics")
        dovecot = peers.make("dovecot", {"max_connections": 600})
        self.assertIsNone(dovecot.metrics_url())
        cmd = compare.bench_command(args, "imap-mixed", dovecot, 1, 2, [], 42, 500)
        self.assertNotIn("--server-metrics", cmd)


class ProcessTreeTest(unittest.TestCase):
    def test_parent_of_stat(self):
        self.assertEqual(base.parent_of_stat("7 (imap) S 3 7 7"), 3)
        self.assertEqual(base.parent_of_stat("7 (a) b) R 4 1"), 4)
        self.assertIsNone(base.parent_of_stat("nonsense"))

    def test_descendants(self):
        parents = {2: 1, 3: 2, 4: 2, 5: 9, 1: 0}
        self.assertEqual(sorted(base.descendants(1, parents)), [2, 3, 4])
        self.assertEqual(base.descendants(4, parents), [])

    def test_kill_tree_ends_children(self):
        shell = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60 & wait"])
        try:
            for _ in range(100):
                if len(base.descendants(shell.pid)) == 2:
                    break
                import time
                time.sleep(0.02)
            children = base.descendants(shell.pid)
            self.assertEqual(len(children), 2)
            base.kill_tree(shell.pid, grace_s=5)
            shell.wait(timeout=5)
            for _ in range(100):
                if not any(base.alive(c) for c in children):
                    break
                import time
                time.sleep(0.02)
            self.assertFalse(any(base.alive(c) for c in children))
        finally:
            if shell.poll() is None:
                shell.kill()

    def test_free_port_is_in_range(self):
        self.assertTrue(20000 <= base.free_port() < 60000)


class DovecotConfigTest(unittest.TestCase):
    def test_config_holds_the_fairness_settings(self):
        text = config_text(pathlib.Path("/w"), 999, 0, 21000, 21001, 500, False)
        for setting in ("mail_fsync = always", "ssl = no", "disable_plaintext_auth = no",
                        "lmtp_save_to_detail_mailbox = no", "mail_location = mdbox:/w/mail/%u",
                        "address = 127.0.0.1", "port = 21000", "port = 21001",
                        "args = scheme=PLAIN /w/passwd", "listen = 127.0.0.1"):
            self.assertIn(setting, text)
        self.assertNotIn("imap_hibernate_timeout", text)
        self.assertEqual(text.count("service imap {"), 1)
        hibernating = config_text(pathlib.Path("/w"), 999, 0, 21000, 21001, 500, True)
        self.assertIn("imap_hibernate_timeout", hibernating)
        self.assertEqual(hibernating.count("service imap {"), 1)


class CompareArgsTest(unittest.TestCase):
    def test_defaults_and_commands(self):
        args = compare.parse_args(["--peers", "skua,dovecot", "--duration", "5"])
        self.assertEqual(args.peers, ["skua", "dovecot"])
        self.assertEqual(args.scenarios, compare.SCENARIOS)
        idle = compare.bench_command(args, "idle", None, 1, 2, ["--size", "4096"], 42, 500)
        self.assertEqual(idle[idle.index("--server-pid") + 1], "42")
        self.assertEqual(idle[idle.index("--connections") + 1], "500")
        read = compare.bench_command(args, "imap-read", None, 1, 2, [], 42, 500)
        self.assertEqual(read[read.index("--prefill") + 1], "50")
        self.assertIn("--json", read)

    def test_unknown_scenario_is_refused(self):
        import contextlib
        import io
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
            compare.parse_args(["--scenarios", "lmtp,bogus"])

    def test_idle_limit_caps_at_the_fd_limit(self):
        k, note = compare.idle_limit(10**9)
        self.assertLess(k, 10**9)
        self.assertIn("fd limit", note)
        self.assertEqual(compare.idle_limit(10), (10, None))

    def test_every_peer_answers_the_optional_methods(self):
        for name in ("skua", "dovecot"):
            peer = peers.make(name, {"max_connections": 600})
            limit = peer.max_connections()
            self.assertTrue(limit is None or limit > 0, name)
            self.assertIsInstance(peer.settings(), dict)

    def test_skua_connection_limit_is_the_one_its_config_sets(self):
        from peers.skua import CONNECTIONS_PER_SHARD, Skua, config_text
        self.assertEqual(
            config_text(16384),
            "connections_per_shard = 16384\n[limits]\nconnections_per_source = 65536\n"
            "connections_per_user = 65536\n[lmtp]\nconnections_per_shard = 64\n",
        )
        self.assertEqual(Skua(shards=3).max_connections(), 3 * CONNECTIONS_PER_SHARD)

    def test_unknown_peer_is_unavailable(self):
        with self.assertRaises(peers.PeerUnavailable):
            peers.make("exchange", {})


class ResultFileTest(unittest.TestCase):
    def test_summary_lists_skipped_peers_and_targets(self):
        args = compare.parse_args(["--scenarios", "lmtp"])
        lines = compare.summary(args, {"skua": RESULTS["skua"]},
                                {"skua": {}, "cyrus": {"skipped": "not installed"}})
        self.assertIn("cyrus: skipped: not installed", lines)
        self.assertTrue(any("Issue 3 targets" in x for x in lines))

    def test_machine_description(self):
        import machine
        with tempfile.TemporaryDirectory() as d:
            info = machine.describe(compare.REPO, pathlib.Path(d))
        self.assertIn("CPUs", info["Machine"])
        self.assertRegex(info["Commit"], r"^[0-9a-f]{40}|unknown")


if __name__ == "__main__":
    unittest.main()
