"""Unit tests of compare.py's issue-12 parts: pinned placement, server CPU per operation in the
table, scenario specs (sweeps and open-loop rates). No mail server is started; the pinning
test starts `sh` and `sleep` under taskset and reads their CPU sets back from /proc.

    python3 -m unittest discover -s perf -p 'test_*.py'
"""

import argparse
import os
import pathlib
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import compare  # noqa: E402
import compare_table as t  # noqa: E402
from peers import base  # noqa: E402
from peers.dovecot import config_text as dovecot_config  # noqa: E402
from peers.skua import Skua, config_text as skua_config, connections_per_shard  # noqa: E402


def report(scenario, ops, extra=None, elapsed=10.0):
    return {
        "scenario": scenario,
        "elapsed_s": elapsed,
        "ops": [{"name": n, "count": int(r * elapsed), "errors": 0, "per_sec": r,
                 "latency_us": {"p50": 100, "p90": 200, "p99": 300, "p999": 400, "max": 500,
                                "mean": 120}}
                for n, r in ops],
        "extra": extra or {},
    }


def placement_args(server=None, client=None, unpinned=False):
    return argparse.Namespace(server_cpus=server, client_cpus=client, unpinned=unpinned)


class CpuListTest(unittest.TestCase):
    def test_lists_parse_and_print_as_taskset_writes_them(self):
        self.assertEqual(base.parse_cpu_list("0-3,6, 8"), [0, 1, 2, 3, 6, 8])
        self.assertEqual(base.cpu_list_text([8, 0, 1, 2, 3, 6]), "0-3,6,8")
        self.assertEqual(base.cpu_list_text([1]), "1")
        for bad in ("", "a", "3-1", "0,", "-1"):
            with self.assertRaises(ValueError, msg=bad):
                base.parse_cpu_list(bad)

    def test_pinned_prefixes_taskset_only_when_asked(self):
        self.assertEqual(base.pinned(["dovecot", "-F"], [0]), ["taskset", "-c", "0", "dovecot",
                                                                "-F"])
        self.assertEqual(base.pinned(["dovecot"], None), ["dovecot"])
        self.assertEqual(base.pinned(["x"], [0, 1, 2]), ["taskset", "-c", "0-2", "x"])

    def test_a_pinned_server_and_what_it_forks_stay_on_the_set(self):
        cpu = sorted(os.sched_getaffinity(0))[-1]
        shell = subprocess.Popen(base.pinned(["sh", "-c", "sleep 30 & wait"], [cpu]))
        try:
            for _ in range(200):
                children = base.descendants(shell.pid)
                if children:
                    break
                time.sleep(0.01)
            self.assertEqual(len(children), 1, "the shell forked its sleep")
            self.assertEqual(base.allowed_cpus(shell.pid), [cpu], "taskset keeps the pid")
            self.assertEqual(base.allowed_cpus(children[0]), [cpu], "children inherit the set")
        finally:
            base.kill_tree(shell.pid, grace_s=1)
            shell.wait(timeout=5)
        self.assertIsNone(base.allowed_cpus(2**22 + 12345))


class PlacementTest(unittest.TestCase):
    def test_two_cpus_put_the_server_on_0_and_the_bench_on_1(self):
        server, client, note = compare.placement(placement_args(), [0, 1])
        self.assertEqual((server, client), ([0], [1]))
        self.assertIn("CPU 0", note)

    def test_the_bench_gets_the_last_quarter(self):
        server, client, _ = compare.placement(placement_args(), list(range(8)))
        self.assertEqual((server, client), ([0, 1, 2, 3, 4, 5], [6, 7]))

    def test_explicit_sets_are_checked(self):
        self.assertEqual(compare.placement(placement_args("1", "0"), [0, 1])[:2], ([1], [0]))
        self.assertEqual(compare.placement(placement_args("0-2"), list(range(4)))[:2],
                         ([0, 1, 2], [3]))
        for server, client, why in (("0", "0", "overlap"), ("0-1", None, "no CPU is left"),
                                    ("0", "5", "not available")):
            with self.assertRaises(ValueError) as e:
                compare.placement(placement_args(server, client), [0, 1])
            self.assertIn(why, str(e.exception))

    def test_unpinned_and_single_cpu(self):
        self.assertEqual(compare.placement(placement_args(unpinned=True), [0, 1])[:2],
                         (None, None))
        with self.assertRaises(ValueError):
            compare.placement(placement_args("0", unpinned=True), [0, 1])
        server, client, note = compare.placement(placement_args(), [3])
        self.assertEqual((server, client), (None, None))
        self.assertIn("unpinned", note)

    def test_skua_shards_follow_the_server_set(self):
        if len(os.sched_getaffinity(0)) < 2:
            self.skipTest("needs two CPUs")
        cpus = sorted(os.sched_getaffinity(0))
        args = compare.parse_args(["--server-cpus", str(cpus[0]), "--client-cpus",
                                   str(cpus[1])])
        self.assertEqual((args.server_cpus, args.client_cpus, args.shards),
                         ([cpus[0]], [cpus[1]], 1))
        self.assertEqual(compare.parse_args(["--unpinned"]).shards, os.cpu_count())
        self.assertEqual(compare.parse_args(["--shards", "3"]).shards, 3)


class SpecTest(unittest.TestCase):
    def test_specs(self):
        s = compare.parse_spec("lmtp:256", compare.PLAIN_NAMES)
        self.assertEqual((s.name, s.connections, s.rate), ("lmtp", 256, None))
        s = compare.parse_spec("imap-read:64@auto", compare.PLAIN_NAMES)
        self.assertEqual((s.name, s.connections, s.rate, s.closed_text()),
                         ("imap-read", 64, "auto", "imap-read:64"))
        self.assertEqual(compare.parse_spec("lmtp@500", compare.PLAIN_NAMES).rate, "500")
        for bad in ("lmtp:0", "lmtp:x", "idle:5", "idle@auto", "lmtp@fast", "lmtp@-3", "bogus"):
            with self.assertRaises(ValueError, msg=bad):
                compare.parse_spec(bad, compare.PLAIN_NAMES)

    def test_default_run_has_the_sweeps_and_open_loop(self):
        for spec in ("lmtp", "lmtp:64", "lmtp:256", "imap-mixed", "imap-mixed:64",
                     "imap-read", "imap-read:64", "lmtp@auto", "imap-read@auto"):
            self.assertIn(spec, compare.SCENARIOS)
        for spec in ("lmtp", "imap-mixed", "churn", "imap-read-starttls",
                     "handshake-starttls"):
            self.assertIn(spec, compare.TLS_SCENARIOS)


class CommandTest(unittest.TestCase):
    def args(self, *extra):
        a = compare.parse_args(["--duration", "3", *extra])
        a.server_cpus, a.client_cpus = [0], [1]
        return a

    def test_every_scenario_measures_the_server_cpus_and_tree(self):
        a = self.args()
        for spec in ("lmtp", "imap-read", "imap-mixed", "churn", "idle"):
            cmd = compare.bench_command(a, spec, None, 143, 24, ["--size", "4096"], 42, 500)
            self.assertEqual(cmd[cmd.index("--server-cpus") + 1], "0", spec)
            self.assertEqual(cmd.count("--server-pid"), 1, spec)
            self.assertEqual(cmd[cmd.index("--server-pid") + 1], "42", spec)
        a.server_cpus = None
        cmd = compare.bench_command(a, "lmtp", None, 143, 24, [], 42, 500)
        self.assertNotIn("--server-cpus", cmd)

    def test_connections_and_rate_come_from_the_spec(self):
        a = self.args()
        cmd = compare.bench_command(a, "lmtp:256", None, 143, 24, [], 42, 500)
        self.assertEqual(cmd[cmd.index("--connections") + 1], "256")
        self.assertNotIn("--rate", cmd)
        cmd = compare.bench_command(a, "imap-read@auto", None, 143, 24, [], 42, 500, rate=1400.0)
        self.assertEqual(cmd[cmd.index("--rate") + 1], "1400")
        self.assertEqual(cmd[cmd.index("--connections") + 1], "8")
        with self.assertRaises(ValueError):
            compare.bench_command(a, "lmtp@auto", None, 143, 24, [], 42, 500)

    def test_starttls_scenarios_use_the_plain_port(self):
        a = compare.parse_args(["--tls", "--duration", "3"])
        tls = base.TlsFiles(pathlib.Path("/r/c.crt"), pathlib.Path("/r/c.key"), 40993)
        read = compare.bench_command(a, "imap-read-starttls", None, 143, 24, [], 7, 9, tls)
        self.assertEqual(read[1], "imap-read")
        self.assertEqual(read[read.index("--port") + 1], "143")
        self.assertIn("--starttls", read)
        self.assertNotIn("--tls", read)
        hs = compare.bench_command(a, "handshake-starttls", None, 143, 24, [], 7, 9, tls)
        self.assertEqual(hs[1:4], ["handshake", "--port", "143"])
        self.assertIn("--starttls", hs)
        mixed = compare.bench_command(a, "imap-mixed", None, 143, 24, [], 7, 9, tls)
        self.assertEqual(mixed[mixed.index("--port") + 1], "40993")
        self.assertIn("--tls", mixed)


class RateTest(unittest.TestCase):
    def test_paced_operations(self):
        self.assertEqual(compare.paced_per_sec(report("lmtp", [("deliver", 700.0),
                                                               ("connect", 0.8)])), 700.0)
        self.assertEqual(compare.paced_per_sec(report("churn", [("session", 50.0),
                                                                ("login", 50.0)])), 50.0)
        imap = report("imap-read", [("connect", 10.0), ("login", 10.0), ("examine", 10.0),
                                    ("fetch-body", 150.0), ("noop", 50.0), ("logout", 10.0)])
        self.assertEqual(compare.paced_per_sec(imap), 210.0)  # session starts + commands
        self.assertIsNone(compare.paced_per_sec(None))

    def test_auto_rate_is_half_the_slowest_peer(self):
        a = compare.parse_args(["--duration", "3"])
        specs = [compare.parse_spec(x, compare.PLAIN_NAMES)
                 for x in ("lmtp", "lmtp@auto", "lmtp:64@auto", "imap-read@750")]
        results = {"skua": {"lmtp": report("lmtp", [("deliver", 7000.0)])},
                   "dovecot": {"lmtp": report("lmtp", [("deliver", 743.0)])}}
        rates, notes = compare.resolve_rates(a, specs, results)
        self.assertEqual(rates, {"lmtp@auto": 370.0, "imap-read@750": 750.0})
        self.assertTrue(any("dovecot's 743/s" in n for n in notes), notes)
        self.assertTrue(any(n.startswith("lmtp:64@auto: no closed-loop run") for n in notes))
        self.assertEqual(compare.round_down(1434.2), 1400.0)
        self.assertEqual(compare.round_down(8.7), 8.0)
        self.assertEqual(compare.round_down(0.2), 1.0)

    def test_open_loop_lines_say_who_kept_up(self):
        results = {"skua": {"lmtp@auto": report("lmtp", [("deliver", 370.0)])},
                   "dovecot": {"lmtp@auto": report("lmtp", [("deliver", 300.0)])}}
        lines = compare.open_loop_lines(results, {"lmtp@auto": 370.0}, ["why"])
        self.assertEqual(lines[0], "why")
        self.assertIn("skua lmtp@370/s: 370.0/s of 370/s: sustained", lines)
        self.assertIn("dovecot lmtp@370/s: 300.0/s of 370/s: NOT sustained", lines)


def cpu_extra(ops, us, tree_us=None, busy_ms=9000.0):
    extra = {"cpu_ops": ops, "cpu_op_unit": "delivery", "server_cpus": "0",
             "server_cpu_busy_ms": busy_ms, "server_cpu_busy_share": busy_ms / 10000,
             "server_cpu_steal_ms": 0.0, "server_cpu_us_per_op": us}
    if tree_us is not None:
        extra.update(server_tree_cpu_ms=busy_ms * 0.9, server_tree_cpu_us_per_op=tree_us)
    return extra


class CpuTableTest(unittest.TestCase):
    RESULTS = {
        "skua": {"lmtp:64": report("lmtp", [("deliver", 11876.0)],
                                   cpu_extra(118760, 83.0, 80.0))},
        "dovecot": {"lmtp:64": report("lmtp", [("deliver", 662.0)],
                                      cpu_extra(6620, 1519.0, 1400.0))},
    }

    def test_the_per_row_has_cpu_per_op_and_the_ratio(self):
        lines = t.table(self.RESULTS, ["lmtp:64"])
        self.assertIn("skua cpu/op", lines[0])
        self.assertIn("cpu x dovecot", lines[0])
        per = next(line for line in lines if "per delivery" in line)
        self.assertIn("83us", per)
        self.assertIn("1.52ms", per)
        self.assertIn("17.94x", per)  # 11,876 / 662 deliveries/s
        self.assertIn("0.05x", per)  # 83 / 1519 µs
        self.assertEqual(len({len(line) for line in lines[:2]}), 1, "columns aligned")

    def test_tree_figures_are_marked_and_never_compared_with_cpu_figures(self):
        skua = report("lmtp", [("deliver", 100.0)],
                      {"cpu_ops": 1000, "cpu_op_unit": "delivery",
                       "server_tree_cpu_us_per_op": 50.0})
        results = {"skua": {"lmtp": skua}, "dovecot": self.RESULTS["dovecot"]}
        results["dovecot"] = {"lmtp": self.RESULTS["dovecot"]["lmtp:64"]}
        per = next(line for line in t.table(results, ["lmtp"]) if "per delivery" in line)
        self.assertIn("50us(t)", per)
        cells = per.split()
        self.assertEqual(cells[-1], "-", "a tree figure against a CPU figure: no ratio")
        self.assertEqual(t.cpu_per_op(None), (None, ""))

    def test_no_cpu_figures_no_row(self):
        results = {"skua": {"lmtp": report("lmtp", [("deliver", 1.0)])}}
        self.assertFalse(any("per " in line for line in t.table(results, ["lmtp"])))

    def test_open_loop_label_and_details(self):
        results = {"skua": {"lmtp@auto": self.RESULTS["skua"]["lmtp:64"]}}
        lines = t.table(results, ["lmtp@auto"], {"lmtp@auto": 370.0})
        self.assertTrue(lines[1].startswith("lmtp@370/s"), lines[1])
        details = t.cpu_details(self.RESULTS, ["lmtp:64"])
        self.assertEqual(
            details[0],
            "skua lmtp:64: CPU 0 busy 90.0% (9,000 ms, steal 0 ms): 83us/op; process tree "
            "8,100 ms: 80us/op (118,760 x delivery)")

    def test_markdown_summary_reads_like_the_issue(self):
        lines = t.markdown(self.RESULTS, ["lmtp:64", "nothing"])
        self.assertEqual(lines[0], "| scenario | skua | dovecot | ops/s vs dovecot | "
                                   "CPU/op vs dovecot |")
        self.assertEqual(len(lines), 3, "a scenario without CPU figures has no row")
        self.assertEqual(lines[2], "| lmtp:64 (delivery) | 11,876/s, 83us/op | "
                                   "662/s, 1.52ms/op | 17.94× | 18.3× less |")

    def test_a_run_where_others_used_the_server_cpus_is_flagged(self):
        busy = {"skua": {"lmtp": report("lmtp", [("deliver", 10.0)],
                                        dict(cpu_extra(100, 90.0), server_tree_cpu_ms=4500.0,
                                             server_tree_cpu_us_per_op=45.0))}}
        line = t.cpu_details(busy, ["lmtp"])[0]
        self.assertIn("NOISY: 50% of the CPUs' busy time was not the server tree's", line)
        quiet = t.cpu_details(self.RESULTS, ["lmtp:64"])[0]  # tree 90% of busy
        self.assertNotIn("NOISY", quiet)

    def test_summary_states_placement_and_method(self):
        a = compare.parse_args(["--scenarios", "lmtp:64"])
        a.server_cpus, a.client_cpus, a.placement_note = [0], [1], "pinned: test"
        lines = compare.summary(a, self.RESULTS, {"skua": {}, "dovecot": {}})
        self.assertTrue(lines[0].startswith("Placement: pinned: test"))
        self.assertTrue(any(line.startswith("cpu/op = busy time") for line in lines))
        self.assertTrue(any("process tree" in line for line in lines))


class PeerPinningTest(unittest.TestCase):
    def test_dovecot_prestarts_one_login_process_per_server_cpu(self):
        text = dovecot_config(pathlib.Path("/w"), 1, 0, 1143, 1024, 100, False, cores=1)
        self.assertIn("process_min_avail = 1\n", text)

    def test_one_skua_shard_gets_every_connection_and_the_lmtp_sweep(self):
        self.assertEqual(connections_per_shard(1), 32768)
        self.assertEqual(connections_per_shard(2), 16384)
        self.assertEqual(connections_per_shard(4), 16384)
        self.assertEqual(Skua(shards=1).max_connections(), 32768)
        self.assertIn("[lmtp]\nconnections_per_shard = 272\n",
                      skua_config(32768, lmtp_per_shard=272))
        self.assertEqual(Skua(shards=1, lmtp_connections=272).settings()[
            "lmtp.connections_per_shard"], "272")
        self.assertEqual(Skua(shards=1, lmtp_connections=10).lmtp_per_shard, 64)


if __name__ == "__main__":
    unittest.main()
