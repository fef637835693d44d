"""The side-by-side table of perf/compare.py, and the issue-3 targets checked against it.

Input: `results[peer][scenario]` = the skua-bench JSON report of that run (or None when the
run failed). Output: plain-text lines, one row per scenario and operation, with for each peer
ops/s, p50 and p99, and for each peer other than skua the ratios

- `ops x` = skua ops/s / peer ops/s: **higher is better** for skua;
- `p99 x` = skua p99 / peer p99: **lower is better** for skua (below 1: skua is faster);

and, for the idle scenario, memory per held connection (PSS and RSS, KiB; lower is better),
with the same skua/peer ratio.
"""

from __future__ import annotations

# Issue 3's targets, by (scenario, operation): a ratio of ops/s against Dovecot, and whether
# skua's p99 must be lower than Dovecot's.
THROUGHPUT_TARGETS = {
    ("lmtp", "deliver"): 10.0,
    **{("imap-mixed", op): 10.0 for op in
       ("fetch-headers", "fetch-body", "store", "expunge", "append")},
    **{("imap-read", op): 10.0 for op in
       ("fetch-range", "fetch-body", "search", "status", "list", "noop")},
}
IDLE_CONNECTIONS_TARGET = 19_000
IDLE_KIB_PER_CONNECTION_TARGET = 2.0
IDLE_NOTIFY_P99_MS_TARGET = 5.0

TARGETS_TEXT = [
    "LMTP: >= 10x Dovecot's deliveries/s, with a lower p99",
    "IMAP mixed and read: >= 10x Dovecot's ops/s, with a lower p99, per command",
    "idle: 19,000 connections held, < 2 KiB per idle connection, delivery->EXISTS p99 < 5 ms",
]


def op_row(report: dict | None, name: str) -> dict | None:
    """The row of operation `name` in a report, if it ran."""
    if not report:
        return None
    return next((o for o in report.get("ops", []) if o["name"] == name), None)


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing or b is zero."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_us(us: float | None) -> str:
    """Microseconds as a short human figure."""
    if us is None:
        return "-"
    if us < 1000:
        return f"{us:.0f}us"
    if us < 1_000_000:
        return f"{us / 1000:.2f}ms"
    return f"{us / 1e6:.2f}s"


def fmt_num(x: float | None, digits: int = 1) -> str:
    """A number, or '-' when missing."""
    return "-" if x is None else f"{x:,.{digits}f}"


def fmt_ratio(x: float | None) -> str:
    """A ratio as '12.3x', or '-'."""
    return "-" if x is None else f"{x:.2f}x"


def operations(results: dict, scenario: str) -> list[str]:
    """Operation names of a scenario, in the order the first report that has them gives."""
    names: list[str] = []
    for by_scenario in results.values():
        for o in (by_scenario.get(scenario) or {}).get("ops", []):
            if o["name"] not in names:
                names.append(o["name"])
    return names


def latency(row: dict | None, pct: str) -> float | None:
    """A latency percentile (µs) of a row."""
    if not row or not row.get("latency_us"):
        return None
    return row["latency_us"][pct]


def table(results: dict, scenarios: list[str]) -> list[str]:
    """The comparison table, as lines."""
    peers = list(results)
    others = [p for p in peers if p != "skua"]
    header = ["scenario", "operation"]
    for p in peers:
        header += [f"{p} ops/s", f"{p} p50", f"{p} p99", f"{p} err"]
    if "skua" in peers:
        for p in others:
            header += [f"ops x {p}", f"p99 x {p}"]
    rows = [header]
    for scenario in scenarios:
        for name in operations(results, scenario):
            rows.append(op_line(results, scenario, name, peers, others))
        if scenario == "idle":
            rows.extend(idle_lines(results, peers, others))
    return align(rows)


def op_line(results, scenario, name, peers, others) -> list[str]:
    """One operation's row."""
    line = [scenario, name]
    rows = {p: op_row(results[p].get(scenario), name) for p in peers}
    for p in peers:
        r = rows[p]
        line += [
            fmt_num(r["per_sec"]) if r else "-",
            fmt_us(latency(r, "p50")),
            fmt_us(latency(r, "p99")),
            str(r["errors"]) if r else "-",
        ]
    if "skua" in peers:
        s = rows["skua"]
        for p in others:
            o = rows[p]
            line += [
                fmt_ratio(ratio(s and s["per_sec"], o and o["per_sec"])),
                fmt_ratio(ratio(latency(s, "p99"), latency(o, "p99"))),
            ]
    return line


def idle_figure(report: dict | None, key: str) -> float | None:
    """A number from the idle report's `extra`."""
    if not report:
        return None
    value = report.get("extra", {}).get(key)
    return float(value) if isinstance(value, (int, float)) else None


def idle_lines(results, peers, others) -> list[list[str]]:
    """Rows for held connections and memory per connection (KiB; lower is better)."""
    lines = []
    for key, label in (
        ("idle_connections", "connections held"),
        ("pss_per_connection_kib", "PSS KiB/conn"),
        ("rss_per_connection_kib", "RSS KiB/conn"),
    ):
        line = ["idle", label]
        values = {p: idle_figure(results[p].get("idle"), key) for p in peers}
        for p in peers:
            digits = 0 if key == "idle_connections" else 2
            line += [fmt_num(values[p], digits), "", "", ""]
        if "skua" in peers:
            for p in others:
                line += [fmt_ratio(ratio(values["skua"], values[p])), ""]
        lines.append(line)
    return lines


def align(rows: list[list[str]]) -> list[str]:
    """Left-aligned first two columns, right-aligned numbers."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))
        ]
        out.append("  ".join(cells).rstrip())
    return out


def verdicts(results: dict) -> list[str]:
    """Each issue-3 target with the figures measured and met / NOT met / not measured."""
    skua = results.get("skua", {})
    dovecot = results.get("dovecot")
    lines = []
    for (scenario, name), target in THROUGHPUT_TARGETS.items():
        s = op_row(skua.get(scenario), name)
        d = op_row(dovecot.get(scenario), name) if dovecot else None
        if not s or not d:
            continue
        r = ratio(s["per_sec"], d["per_sec"])
        faster = (latency(s, "p99") or 0) < (latency(d, "p99") or 0)
        met = r is not None and r >= target and faster
        lines.append(
            f"{scenario} {name}: {fmt_ratio(r)} Dovecot's ops/s (target >= {target:.0f}x), "
            f"p99 {fmt_us(latency(s, 'p99'))} vs {fmt_us(latency(d, 'p99'))} "
            f"(target lower): {'met' if met else 'NOT met'}"
        )
    idle = skua.get("idle")
    if idle:
        held = idle_figure(idle, "idle_connections")
        pss = idle_figure(idle, "pss_per_connection_kib")
        notify = latency(op_row(idle, "notify"), "p99")
        lines.append(
            f"idle connections held: {fmt_num(held, 0)} (target {IDLE_CONNECTIONS_TARGET:,}): "
            + met_text(held is not None and held >= IDLE_CONNECTIONS_TARGET)
        )
        lines.append(
            f"idle PSS per connection: {fmt_num(pss, 2)} KiB "
            f"(target < {IDLE_KIB_PER_CONNECTION_TARGET} KiB): "
            + met_text(pss is not None and pss < IDLE_KIB_PER_CONNECTION_TARGET)
        )
        lines.append(
            f"delivery->EXISTS p99: {fmt_us(notify)} (target < {IDLE_NOTIFY_P99_MS_TARGET} ms): "
            + met_text(notify is not None and notify < IDLE_NOTIFY_P99_MS_TARGET * 1000)
        )
    return lines


def met_text(ok: bool) -> str:
    """'met' or 'NOT met'."""
    return "met" if ok else "NOT met"
