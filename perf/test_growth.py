"""Unit tests of perf/growth.py's pure parts (no server is started here): option parsing,
the figures taken from a bench report, how growth is judged, and the tables.

    python3 -m unittest discover -s perf -p 'test_*.py'
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import growth  # noqa: E402


def bench_report(rows, extra):
    return {"ops": [{"name": n, "count": c, "errors": 0, "per_sec": c / 5.0,
                     "bytes_per_sec": b, "latency_us": {"p50": 100, "p99": 900}}
                    for n, c, b in rows], "extra": extra}


class GrowthTest(unittest.TestCase):
    def test_options(self):
        args = growth.parse_args(["--mailbox-sizes", "10000,1000", "--parts", "users",
                                  "--unpinned"])
        self.assertEqual(args.mailbox_sizes, [1000, 10000])
        self.assertEqual(args.parts, ["users"])
        self.assertIsNone(args.server_cpus)
        self.assertEqual(args.shards, os.cpu_count())
        for bad in (["--parts", "bogus"], ["--user-counts", "0"], ["--duration", "0"]):
            with self.assertRaises(SystemExit, msg=bad):
                import contextlib
                import io
                with contextlib.redirect_stderr(io.StringIO()):
                    growth.parse_args(bad)

    def test_cpu_is_charged_to_the_row_measured_only(self):
        # 2 s of busy CPU over 1000 fetch-tail commands; the session's LOGIN and EXAMINE
        # are other rows and are not counted.
        report = bench_report([("login", 1, 0), ("examine", 1, 0), ("fetch-tail", 1000, 2 << 20)],
                              {"server_cpu_busy_ms": 2000.0, "server_cpu_busy_share": 0.4,
                               "server_tree_cpu_ms": 1500.0})
        row = growth.row_figures(report, "fetch-tail")
        self.assertEqual(row["cpu_us_per_op"], 2000.0)
        self.assertEqual(row["cpu_method"], "cpus")
        self.assertAlmostEqual(row["mib_per_sec"], 2.0)
        del report["extra"]["server_cpu_busy_ms"]
        tree = growth.row_figures(report, "fetch-tail")
        self.assertEqual((tree["cpu_us_per_op"], tree["cpu_method"]), (1500.0, "tree"))
        self.assertEqual(growth.cpu_text(tree), "1.50ms(t)")
        self.assertIsNone(growth.row_figures(report, "status"))

    def test_growth_is_judged_against_the_size(self):
        self.assertIn("FASTER than linear", growth.growth_note({1000: 10.0, 100000: 5000.0}))
        self.assertIn("about linear", growth.growth_note({1000: 10.0, 100000: 900.0}))
        self.assertIn("sub-linear", growth.growth_note({1000: 10.0, 100000: 50.0}))
        self.assertIn("flat", growth.growth_note({1000: 10.0, 10000: 11.0, 100000: 12.0}))
        # Sub-linear over the whole range, but one step grows faster than its size.
        note = growth.growth_note({4096: 0.5, 262144: 1.4, 10485760: 90.0})
        self.assertEqual(note, "x2.8 for x64, x64.3 for x40 in size: FASTER than linear")
        self.assertEqual(growth.growth_note({1000: 10.0, 100000: None}), "")

    def test_pss_of_rollup(self):
        self.assertEqual(growth.pss_of_rollup("Rss: 10 kB\nPss:   7 kB\n"), 7)
        self.assertIsNone(growth.pss_of_rollup("Rss: 10 kB\n"))
        self.assertIsNotNone(growth.tree_pss_kib(os.getpid()))

    def test_tables(self):
        args = growth.parse_args(["--unpinned"])
        row = growth.row_figures(bench_report([("search-header", 10, 0)],
                                              {"server_cpu_busy_ms": 10.0}), "search-header")
        big = dict(row, cpu_us_per_op=row["cpu_us_per_op"] * 500)
        results = {"skua": {
            "mailbox": {"sizes": {"1000": {"search-header": row, "open_mailbox_kib": 40},
                                  "100000": {"search-header": big, "open_mailbox_kib": 900}}},
            "users": {"counts": {"1000": {"start_s": 0.05, "pss_idle_kib": 9000,
                                          "cold_login_ms": [1.0, 2.0, 3.0],
                                          "cold_select_ms": [0.1]},
                                 "100000": {"error": "did not start"}}},
            "sizes": {"sizes": {"10485760": {"deliver": row, "fetch-body": None}}},
        }}
        text = "\n".join(growth.tables(args, results))
        self.assertIn("| skua | 100,000 | search-header | 100us | 900us | 500.00ms | 2.0 |", text)
        self.assertIn("- skua search-header CPU/op: x500.0 for x100 in size: FASTER than linear",
                      text)
        self.assertIn("| skua | 1,000 | 0.05 s | 9000 | 2.00 ms | 0.10 ms |", text)
        self.assertIn("| skua | 100,000 | failed: did not start", text)
        self.assertIn("| skua | 10,240 KiB | 2.0 |", text)
        self.assertIn("| skua | 1,000 | 40 | - | - |", text)


if __name__ == "__main__":
    unittest.main()
