"""The side-by-side table of perf/compare.py, and the issue-3 targets checked against it.

Input: `results[peer][scenario]` = the skua-bench JSON report of that run (or None when the
run failed). Output: plain-text lines, one row per scenario and operation, with for each peer
ops/s, p50 and p99, and for each peer other than skua the ratios

- `ops x` = skua ops/s / peer ops/s: **higher is better** for skua;
- `p99 x` = skua p99 / peer p99: **lower is better** for skua (below 1: skua is faster);

- `cpu x` = skua server CPU per operation / peer's: **lower is better** for skua;

and, for the idle scenario, memory per held connection (PSS and RSS, KiB; lower is better),
with the same skua/peer ratio.

Server CPU per operation is one figure per scenario, on a row of its own under the scenario's
operations (`per <unit>`: deliveries, IMAP commands, sessions, connections), with the ops/s of
that unit: the busy time of the server's CPUs over the measured phase (`server_cpu_us_per_op`
of skua-bench `--server-cpus`, when the run is pinned) divided by the operations, or, without
it, the server process tree's CPU time (`server_tree_cpu_us_per_op`, marked `(t)`).
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
# A run whose server tree used less than this share of its CPUs' busy time is flagged: the
# rest was other processes on those CPUs (or kernel work charged to no server process).
NOISE_SHARE = 0.8
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


def table(results: dict, scenarios: list[str], rates: dict | None = None) -> list[str]:
    """The comparison table, as lines; `rates`: the rate of each open-loop scenario, shown in
    its label."""
    peers = list(results)
    others = [p for p in peers if p != "skua"]
    header = ["scenario", "operation"]
    for p in peers:
        header += [f"{p} ops/s", f"{p} cpu/op", f"{p} p50", f"{p} p99", f"{p} err"]
    if "skua" in peers:
        for p in others:
            header += [f"ops x {p}", f"cpu x {p}", f"p99 x {p}"]
    rows = [header]
    for scenario in scenarios:
        label = scenario_label(scenario, rates)
        for name in operations(results, scenario):
            rows.append(op_line(results, scenario, name, peers, others, label))
        cpu = cpu_line(results, scenario, peers, others, label)
        if cpu:
            rows.append(cpu)
        if scenario == "idle":
            rows.extend(idle_lines(results, peers, others))
    return align(rows)


def scenario_label(scenario: str, rates: dict | None) -> str:
    """`lmtp@auto` as `lmtp@350/s` once its rate is known."""
    rate = (rates or {}).get(scenario)
    if rate is None:
        return scenario
    return scenario.split("@")[0] + f"@{rate:g}/s"


def op_line(results, scenario, name, peers, others, label=None) -> list[str]:
    """One operation's row."""
    line = [label or scenario, name]
    rows = {p: op_row(results[p].get(scenario), name) for p in peers}
    for p in peers:
        r = rows[p]
        line += [
            fmt_num(r["per_sec"]) if r else "-",
            "",
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
                "",
                fmt_ratio(ratio(latency(s, "p99"), latency(o, "p99"))),
            ]
    return line


def cpu_per_op(report: dict | None) -> tuple[float | None, str]:
    """(server CPU µs per operation, method): 'cpus' from the pinned CPUs' busy time, 'tree'
    from the server's process tree, or (None, '')."""
    extra = (report or {}).get("extra") or {}
    for key, method in (("server_cpu_us_per_op", "cpus"), ("server_tree_cpu_us_per_op", "tree")):
        if isinstance(extra.get(key), (int, float)):
            return float(extra[key]), method
    return None, ""


def unit_per_sec(report: dict | None) -> float | None:
    """Operations per second of the unit CPU is counted in (`cpu_ops` over the phase)."""
    extra = (report or {}).get("extra") or {}
    ops, secs = extra.get("cpu_ops"), (report or {}).get("elapsed_s")
    if not isinstance(ops, (int, float)) or not secs:
        return None
    return ops / secs


def cpu_line(results, scenario, peers, others, label=None) -> list[str] | None:
    """The scenario's server-CPU row: the unit's ops/s and CPU per op for each peer, and the
    ratios; None when no peer reported CPU for it."""
    reports = {p: results[p].get(scenario) for p in peers}
    cpu = {p: cpu_per_op(reports[p]) for p in peers}
    if not any(v is not None for v, _ in cpu.values()):
        return None
    unit = next((r["extra"].get("cpu_op_unit") for r in reports.values()
                 if r and r.get("extra", {}).get("cpu_op_unit")), "operation")
    line = [label or scenario, f"per {unit}"]
    for p in peers:
        value, method = cpu[p]
        line += [
            fmt_num(unit_per_sec(reports[p])),
            fmt_us(value) + ("(t)" if method == "tree" and value is not None else ""),
            "", "", "",
        ]
    if "skua" in peers:
        for p in others:
            line += [
                fmt_ratio(ratio(unit_per_sec(reports["skua"]), unit_per_sec(reports[p]))),
                fmt_ratio(ratio(cpu["skua"][0], cpu[p][0])) if cpu["skua"][1] == cpu[p][1]
                else "-",
                "",
            ]
    return line


def cpu_details(results: dict, scenarios: list[str], rates: dict | None = None) -> list[str]:
    """One line per peer and scenario: how busy the server's CPUs were, and both CPU figures.
    The CPUs' busy share says whether the server was the bottleneck (near 100%) or waited on
    the client; the process tree's time close to the CPUs' says little else ran there."""
    lines = []
    for scenario in scenarios:
        for peer, by_scenario in results.items():
            extra = (by_scenario.get(scenario) or {}).get("extra") or {}
            if "server_cpu_busy_ms" not in extra and "server_tree_cpu_ms" not in extra:
                continue
            parts = []
            if "server_cpu_busy_ms" in extra:
                parts.append(
                    f"CPU {extra.get('server_cpus', '?')} busy "
                    f"{100 * extra.get('server_cpu_busy_share', 0):.1f}% "
                    f"({extra['server_cpu_busy_ms']:,.0f} ms, steal "
                    f"{extra.get('server_cpu_steal_ms', 0):,.0f} ms): "
                    f"{fmt_us(extra.get('server_cpu_us_per_op'))}/op")
            if "server_tree_cpu_ms" in extra:
                parts.append(f"process tree {extra['server_tree_cpu_ms']:,.0f} ms: "
                             f"{fmt_us(extra.get('server_tree_cpu_us_per_op'))}/op")
            busy, tree = extra.get("server_cpu_busy_ms"), extra.get("server_tree_cpu_ms")
            if busy and tree is not None and tree < NOISE_SHARE * busy:
                parts.append(f"NOISY: {1 - tree / busy:.0%} of the CPUs' busy time was not the "
                             "server tree's (other processes, or kernel work)")
            lines.append(f"{peer} {scenario_label(scenario, rates)}: " + "; ".join(parts)
                         + f" ({extra.get('cpu_ops', 0):,} x {extra.get('cpu_op_unit', 'op')})")
    return lines


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
            line += [fmt_num(values[p], digits), "", "", "", ""]
        if "skua" in peers:
            for p in others:
                line += [fmt_ratio(ratio(values["skua"], values[p])), "", ""]
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


def markdown(results: dict, scenarios: list[str], rates: dict | None = None) -> list[str]:
    """The scenario-level summary as a Markdown table (the README's form): for each scenario
    and peer, the unit's ops/s and server CPU per op, and against each other peer skua's
    ops/s ratio and how many times less CPU per op skua used."""
    peers = list(results)
    others = [p for p in peers if p != "skua"] if "skua" in peers else []
    header = ["scenario", *peers]
    for p in others:
        header += [f"ops/s vs {p}", f"CPU/op vs {p}"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for scenario in scenarios:
        reports = {p: results[p].get(scenario) for p in peers}
        cpu = {p: cpu_per_op(reports[p]) for p in peers}
        if not any(v is not None for v, _ in cpu.values()):
            continue
        unit = next((r["extra"].get("cpu_op_unit") for r in reports.values()
                     if r and r.get("extra", {}).get("cpu_op_unit")), "op")
        cells = [f"{scenario_label(scenario, rates)} ({unit})"]
        for p in peers:
            value, method = cpu[p]
            rate = unit_per_sec(reports[p])
            cells.append("-" if rate is None else
                         f"{rate:,.0f}/s, {fmt_us(value)}/op" + (" (t)" if method == "tree"
                                                                  else ""))
        for p in others:
            r = ratio(unit_per_sec(reports["skua"]), unit_per_sec(reports[p]))
            less = ratio(cpu[p][0], cpu["skua"][0]) if cpu["skua"][1] == cpu[p][1] else None
            cells += [fmt_ratio(r).replace("x", "×"),
                      "-" if less is None else f"{less:.1f}× less"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# Storage figures of skua-bench `--server-metrics` (skua only: the peers export no such
# metrics, so their cells read n/a): fdatasync calls and flush rounds per operation of each
# unit the report names, and flush-round percentiles estimated from the histogram buckets.
SYNCS_PREFIX = "server_fdatasyncs_per_"
ROUNDS_PREFIX = "server_flush_rounds_per_"


def storage_units(extra: dict) -> list[str]:
    """The units a report has storage figures per (`delivery`, `imap_command`,
    `write_command`, ...), in the report's order."""
    return [k[len(SYNCS_PREFIX):] for k in extra if k.startswith(SYNCS_PREFIX)]


def storage_text(extra: dict) -> str:
    """One report's storage figures as a phrase, `n/a` without any, or why they are missing."""
    if "server_fdatasyncs" not in extra:
        why = extra.get("server_metrics")
        return f"server metrics {why}" if why else "n/a (no metrics endpoint)"
    per = [f"{extra[SYNCS_PREFIX + u]:.2f} fdatasyncs, {extra.get(ROUNDS_PREFIX + u, 0):.2f} "
           f"flush rounds per {u.replace('_', ' ')}" for u in storage_units(extra)]
    text = "; ".join(per + [f"{extra['server_fdatasyncs']:,} fdatasyncs and "
                            f"{extra.get('server_flush_rounds', 0):,} rounds in all"])
    if "server_flush_round_p50_us" in extra:
        text += "; flush round " + flush_percentiles(extra) + (
            f", mean {fmt_us(extra.get('server_flush_round_mean_us'))}"
            " (percentiles estimated from the histogram buckets)")
    return text


def flush_percentiles(extra: dict) -> str:
    """`p50 566us, p90 972us, p99 4.37ms`, or `-` without rounds."""
    if "server_flush_round_p50_us" not in extra:
        return "-"
    return ", ".join(f"{p} {fmt_us(extra.get(f'server_flush_round_{p}_us'))}"
                     for p in ("p50", "p90", "p99"))


def has_storage(results: dict, scenario: str) -> bool:
    """Whether any peer's report of `scenario` asked for server metrics (got them or not)."""
    return any(((by.get(scenario) or {}).get("extra") or {}).keys()
               & {"server_fdatasyncs", "server_metrics"} for by in results.values())


def storage_details(results: dict, scenarios: list[str], rates: dict | None = None) -> list[str]:
    """One line per peer and scenario with a report, where some peer measured storage."""
    lines = []
    for scenario in scenarios:
        if not has_storage(results, scenario):
            continue
        for peer, by_scenario in results.items():
            report = by_scenario.get(scenario)
            if report:
                lines.append(f"{peer} {scenario_label(scenario, rates)}: "
                             + storage_text(report.get("extra") or {}))
    return lines


def storage_markdown(results: dict, scenarios: list[str], rates: dict | None = None) -> list[str]:
    """The storage figures as a Markdown table, one row per scenario and peer (empty when no
    run measured them)."""
    rows = []
    for scenario in scenarios:
        if not has_storage(results, scenario):
            continue
        for peer, by_scenario in results.items():
            extra = (by_scenario.get(scenario) or {}).get("extra")
            if extra is None:
                continue
            units = storage_units(extra)
            cells = [scenario_label(scenario, rates), peer]
            if "server_fdatasyncs" not in extra:
                cells += ["n/a" if "server_metrics" not in extra else "unavailable"] * 3
            else:
                cells.append("; ".join(
                    f"{extra[SYNCS_PREFIX + u]:.2f} / {extra.get(ROUNDS_PREFIX + u, 0):.2f} "
                    f"per {u.replace('_', ' ')}" for u in units) or "-")
                cells.append(f"{extra['server_fdatasyncs']:,} / "
                             f"{extra.get('server_flush_rounds', 0):,}")
                cells.append(flush_percentiles(extra))
            rows.append("| " + " | ".join(cells) + " |")
    if not rows:
        return []
    return ["| scenario | peer | fdatasyncs / flush rounds per op | in all | flush round "
            "(estimated) |", "|" + " --- |" * 5, *rows]
