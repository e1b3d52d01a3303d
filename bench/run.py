"""Time journey's reports on the benchmark workspace, against a DuckDB reference.

    .venv/bin/python -m bench.run                 # both databases, 10 warm runs each
    .venv/bin/python -m bench.run --sqlite --runs 5
    .venv/bin/python -m bench.run --profile       # + per-statement times and query plans

Why it measures what it measures:

- Reports run the way the CLI runs them: journey's engine settings, one Session
  per call, the public report functions. Each case starts on a fresh connection
  ("first": catalog and page caches of the connection are cold, the OS page cache
  and PostgreSQL's shared buffers are not, so it is cold-ish, not cold), then
  `--runs` warm calls give the median and the 95th percentile (linear
  interpolation; with 10 runs that is close to the slowest run).
- Periods end where the data ends (see bench.generate.END): the default "30d",
  a 90-day "last quarter" and the full year, plus the funnel for one channel.
- The reference is what an analyst would write without journey: the same funnel
  (cohort = first seen in the period, a stage counts if it or any later stage was
  reached before the period's end, retention = second purchase day) computed by
  DuckDB straight from the raw events, loaded into memory from the parquet file
  the generator wrote. Only the query is timed. Its counts must equal journey's,
  which makes the benchmark a correctness check of the state table as well.
- `--profile` logs every statement a report sends with its time, and EXPLAINs the
  slow ones (EXPLAIN QUERY PLAN on SQLite, EXPLAIN ANALYZE on PostgreSQL), so a
  missed target comes with the query and the scan that caused it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from rich.console import Console
from sqlalchemy import Engine, event, text
from sqlmodel import Session

from bench.generate import (
    DATA_DIR,
    END,
    EVENTS_PARQUET,
    META_JSON,
    POSTGRES_URL,
    SQLITE_PATH,
    WORKSPACE,
    machine,
)
from journey.db import make_engine
from journey.metrics.funnel import funnel_report
from journey.metrics.retention import retention_report
from journey.metrics.reviews import review_report
from journey.periods import Period, parse_period
from journey.reports import FunnelReport
from journey.state import _refresh_sql
from journey.workspaces import stage_model

RESULTS_JSON = DATA_DIR / "results.json"
PLANS_DIR = DATA_DIR
# "Now" is the last second of the data, so "30d" means the last 30 days of it.
NOW = END - timedelta(seconds=1)
PERIODS: dict[str, Period] = {
    "30d": parse_period("30d", NOW),
    "90d": parse_period("90d", NOW),
    "year": parse_period("365d", NOW),
}
CHANNEL = "paid_search"
# The reference's own stage mapping for the kinds the generator emits (refunds reach none).
STAGE_OF_KIND = {"visit": 0, "inquiry": 1, "checkout": 2, "order": 3, "review": 5}
STAGES = 6
RETENTION = 4
PURCHASE_KINDS = ("order",)
TARGET_S = 1.0
SLOW_STATEMENT_S = 0.05
# A case whose first run takes longer than this gets at most 3 warm runs: its
# verdict is clear and ten runs of a 40-second report would dominate the benchmark.
SLOW_CASE_S = 5.0

console = Console(width=None if Console().is_terminal else 160)


@dataclass(frozen=True)
class Case:
    """One report call: which report, which period, which channel filter."""

    report: str
    period: str
    channel: str | None = None

    @property
    def name(self) -> str:
        suffix = f" channel={self.channel}" if self.channel else ""
        return f"{self.report} {self.period}{suffix}"

    def call(self, session: Session) -> Any:
        period = PERIODS[self.period]
        if self.report == "funnel":
            return funnel_report(session, WORKSPACE, period, self.channel)
        if self.report == "retention":
            return retention_report(session, WORKSPACE, period)
        return review_report(session, WORKSPACE, period, now=NOW)


CASES: list[Case] = [
    *(Case("funnel", p) for p in PERIODS),
    *(Case("funnel", p, CHANNEL) for p in PERIODS),
    *(Case("retention", p) for p in PERIODS),
    *(Case("reviews", p) for p in PERIODS),
]


@dataclass
class Timing:
    first: float
    runs: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def p95(self) -> float:
        return float(np.percentile(self.runs, 95))

    def as_dict(self) -> dict[str, Any]:
        return {
            "first": round(self.first, 4),
            "median": round(self.median, 4),
            "p95": round(self.p95, 4),
            "runs": [round(r, 4) for r in self.runs],
        }


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


# --------------------------------------------------------------------------- statement log


class StatementLog:
    """Every statement a report sends, with its parameters as the driver got them."""

    def __init__(self, engine: Engine) -> None:
        self.entries: list[tuple[str, Any]] = []
        self.active = False
        event.listen(engine, "before_cursor_execute", self._before)

    def _before(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if self.active:
            self.entries.append((statement, parameters))


def _statement_time(engine: Engine, statement: str, parameters: Any, runs: int = 3) -> float:
    """Median time of execute + fetchall, each statement re-run on its own.

    Timing inside the report would stop at cursor.execute, which on SQLite returns
    at the first row: a UNION ALL's later branches would run during the fetch.
    """
    times = []
    with engine.connect() as conn:
        for _ in range(runs):
            t = time.perf_counter()
            conn.exec_driver_sql(statement, parameters).all()
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def _explain(engine: Engine, statement: str, parameters: Any) -> str:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            depth: dict[int, int] = {0: 0}
            lines = []
            for node, parent, _, detail in rows:
                depth[node] = depth.get(parent, 0) + 1
                lines.append("  " * depth[node] + str(detail))
            return "\n".join(lines)
        rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).all()
        return "\n".join(str(r[0]) for r in rows)


# --------------------------------------------------------------------------- journey timings


def bench_database(
    db: str, url: str, runs: int, profile: bool, cases: list[Case]
) -> tuple[dict[str, Timing], dict[str, Any], list[str]]:
    """Time every case on one database; returns timings, funnel reports and profile text."""
    engine = make_engine(url)
    log = StatementLog(engine)
    timings: dict[str, Timing] = {}
    reports: dict[str, Any] = {}
    profile_out: list[str] = []
    for case in cases:
        engine.dispose()  # a fresh connection for the first, cold-ish run

        def once(case: Case = case) -> Any:
            with Session(engine) as session:
                return case.call(session)

        first, report = _timed(once)
        reports[case.name] = report
        warm = [_timed(once)[0] for _ in range(runs if first < SLOW_CASE_S else min(runs, 3))]
        timings[case.name] = timing = Timing(first, warm)
        flag = "" if timing.p95 < TARGET_S else "  [red]over 1 s[/red]"
        console.print(
            f"  {db:10} {case.name:28} first {first:7.3f}  median {timing.median:7.3f}"
            f"  p95 {timing.p95:7.3f}{flag}"
        )
        if profile:
            log.entries.clear()
            log.active = True
            once()
            log.active = False
            profile_out.append(f"=== {db}: {case.name}")
            timed = [(st, pa, _statement_time(engine, st, pa)) for st, pa in log.entries]
            for statement, parameters, elapsed in sorted(timed, key=lambda e: -e[2]):
                one_line = " ".join(statement.split())
                if elapsed < SLOW_STATEMENT_S:
                    profile_out.append(f"{elapsed:8.3f} s  {one_line[:160]}")
                else:
                    profile_out.append(f"{elapsed:8.3f} s  {one_line}")
                    profile_out.append("    params: " + repr(parameters)[:300])
                    plan = _explain(engine, statement, parameters)
                    profile_out.extend("    | " + line for line in plan.splitlines())
            profile_out.append("")
    engine.dispose()
    return timings, reports, profile_out


# --------------------------------------------------------------------------- DuckDB reference


def _reference_sql() -> str:
    """The funnel from raw events, written as an analyst would, parameterized by period."""
    pos = " ".join(f"WHEN '{k}' THEN {p}" for k, p in STAGE_OF_KIND.items())
    buy = ", ".join(f"'{k}'" for k in PURCHASE_KINDS)
    reached = ", ".join(f"MIN(ts) FILTER (WHERE pos >= {i}) AS r{i}" for i in range(1, STAGES))
    counts = ", ".join(f"COUNT(*) FILTER (WHERE r{i} < $end)" for i in range(1, STAGES))
    return f"""
WITH buys AS (
  SELECT customer_id, occurred_at AS ts, occurred_at // 86400 AS day
  FROM events WHERE kind IN ({buy})
),
first_day AS (SELECT customer_id, MIN(day) AS day FROM buys GROUP BY customer_id),
second AS (
  SELECT b.customer_id, MIN(b.ts) AS ts FROM buys b JOIN first_day f USING (customer_id)
  WHERE b.day > f.day GROUP BY b.customer_id
),
points AS (
  SELECT customer_id, occurred_at AS ts, channel, CASE kind {pos} END AS pos FROM events
  UNION ALL SELECT customer_id, ts, NULL, {RETENTION} FROM second
),
per_customer AS (
  SELECT customer_id, arg_min(channel, ts) AS channel, MIN(ts) AS r0, {reached}
  FROM points WHERE pos IS NOT NULL GROUP BY customer_id
)
SELECT channel, COUNT(*) AS entered, {counts}
FROM per_customer
WHERE r0 >= $start AND r0 < $end AND ($channel IS NULL OR channel = $channel)
GROUP BY channel
"""


def bench_duckdb(
    runs: int, funnels: list[Case]
) -> tuple[float, dict[str, Timing], dict[str, dict[str, list[int]]]]:
    """Load the parquet into an in-memory table (not timed in the cases), then time the query."""
    con = duckdb.connect()
    load, _ = _timed(
        lambda: con.execute(f"CREATE TABLE events AS SELECT * FROM '{EVENTS_PARQUET}'")
    )
    sql = _reference_sql()
    timings: dict[str, Timing] = {}
    counts: dict[str, dict[str, list[int]]] = {}
    for case in funnels:
        period = PERIODS[case.period]
        params = {
            "start": int(period.start.timestamp()),
            "end": int(period.end.timestamp()),
            "channel": case.channel,
        }

        def once(params: dict[str, Any] = params) -> list[tuple[Any, ...]]:
            return con.execute(sql, params).fetchall()

        first, rows = _timed(once)
        warm = [_timed(once)[0] for _ in range(runs)]
        timings[case.name] = timing = Timing(first, warm)
        counts[case.name] = {str(r[0]): [int(v) for v in r[1:]] for r in rows}
        console.print(
            f"  {'duckdb':10} {case.name:28} first {first:7.3f}  median {timing.median:7.3f}"
            f"  p95 {timing.p95:7.3f}"
        )
    con.close()
    return load, timings, counts


def check_counts(db: str, case: Case, report: FunnelReport, ref: dict[str, list[int]]) -> bool:
    """journey's funnel must count exactly what the reference counts; say so loudly if not."""
    total = [sum(v[i] for v in ref.values()) for i in range(STAGES)]
    ours = [report.entered] + [s.reached for s in report.stages[1:]]
    problems = []
    if ours != total:
        problems.append(f"totals journey={ours} duckdb={total}")
    for channel in report.channels:
        if channel.channel in ref:
            expected = ref[channel.channel]
            got = [channel.entered, *channel.reached[1:]]
            if got != expected:
                problems.append(f"channel {channel.channel}: journey={got} duckdb={expected}")
    if problems:
        console.print(f"[bold red]MISMATCH {db} {case.name}:[/bold red]")
        for p in problems:
            console.print(f"[bold red]  {p}[/bold red]")
        return False
    console.print(f"  counts match: {db} {case.name} {ours}")
    return True


# --------------------------------------------------------------------------- state rebuild plan


def explain_refresh(db: str, url: str) -> Path:
    """The plan of the full state rebuild (EXPLAIN ANALYZE on PostgreSQL, rolled back).

    The rebuild is journey's slowest statement; its plan says where the minute goes.
    """
    engine = make_engine(url)
    path = PLANS_DIR / f"refresh-plan-{db}.txt"
    with Session(engine) as session:
        sql = _refresh_sql(stage_model(session, WORKSPACE), engine.dialect.name, subset=False)
        if db == "sqlite":
            rows = session.execute(text("EXPLAIN QUERY PLAN " + sql), {"ws": WORKSPACE}).all()
            plan = "\n".join(f"{r[0]:4} {r[1]:4} {r[3]}" for r in rows)
        else:
            session.execute(
                text("DELETE FROM customer_journey WHERE workspace_id = :ws"), {"ws": WORKSPACE}
            )
            rows = session.execute(
                text("EXPLAIN (ANALYZE, BUFFERS) " + sql), {"ws": WORKSPACE}
            ).all()
            plan = "\n".join(str(r[0]) for r in rows)
            session.rollback()
    engine.dispose()
    path.write_text(plan + "\n")
    return path


# --------------------------------------------------------------------------- output


def markdown(results: dict[str, Any]) -> str:
    """The figures as the Markdown tables bench/README.md records."""
    dbs = [db for db in ("sqlite", "postgresql", "duckdb") if db in results["timings"]]
    head = "| report | " + " | ".join(f"{db} first | {db} median | {db} p95" for db in dbs)
    lines = [head + " |", "|---" + "|---:" * 3 * len(dbs) + "|"]
    for case in CASES:
        row = [case.name]
        for db in dbs:
            t = results["timings"][db].get(case.name)
            row += (
                ["", "", ""]
                if t is None
                else [_cell(t["first"]), _cell(t["median"]), _cell(t["p95"])]
            )
        if any(row[1:]):
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _cell(seconds: float) -> str:
    text = f"{seconds:.3f}"
    return f"**{text}**" if seconds >= TARGET_S else text


def _journey_dirty() -> bool:
    """Whether journey/ differs from the recorded commit (others edit the tree concurrently)."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "--", "journey"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return bool(status.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="warm runs per case")
    parser.add_argument("--sqlite", action="store_true", help="SQLite only (default: both)")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL only")
    parser.add_argument("--no-duckdb", action="store_true", help="skip the DuckDB reference")
    parser.add_argument(
        "--duckdb-only", action="store_true", help="only time the DuckDB reference (no checks)"
    )
    parser.add_argument("--sqlite-path", type=Path, default=SQLITE_PATH)
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--profile", action="store_true", help="statement times + plans")
    parser.add_argument("--only", help="run only cases whose name contains this text")
    parser.add_argument(
        "--explain-refresh", action="store_true", help="plan of the full state rebuild"
    )
    parser.add_argument(
        "--markdown", action="store_true", help="only print the recorded results as Markdown"
    )
    args = parser.parse_args(argv)
    if args.explain_refresh:
        for db, url in (
            ("sqlite", f"sqlite:///{args.sqlite_path}"),
            ("postgresql", args.postgres_url),
        ):
            if (db == "sqlite" and not args.postgres) or (db == "postgresql" and not args.sqlite):
                console.print(f"{db}: {explain_refresh(db, url)}")
        return 0
    if args.markdown:
        print(markdown(json.loads(RESULTS_JSON.read_text())))
        return 0
    both = not (args.sqlite or args.postgres)
    cases = [c for c in CASES if not args.only or args.only in c.name]

    meta = json.loads(META_JSON.read_text()) if META_JSON.exists() else {}
    console.print(f"dataset: {meta.get('dataset')}")
    results: dict[str, Any] = {
        "dataset": meta.get("dataset"),
        "machine": machine(),
        "measured": datetime.now().astimezone().isoformat(timespec="seconds"),
        "runs": args.runs,
        "journey_dirty": _journey_dirty(),
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "timings": {},
    }
    dbs = []
    if args.duckdb_only:
        pass
    elif both or args.sqlite:
        dbs.append(("sqlite", f"sqlite:///{args.sqlite_path}"))
    if not args.duckdb_only and (both or args.postgres):
        dbs.append(("postgresql", args.postgres_url))

    reports: dict[str, dict[str, Any]] = {}
    for db, url in dbs:
        console.rule(db)
        timings, reports[db], profile = bench_database(db, url, args.runs, args.profile, cases)
        results["timings"][db] = {name: t.as_dict() for name, t in timings.items()}
        if profile:
            path = PLANS_DIR / f"profile-{db}.txt"
            path.write_text("\n".join(profile))
            console.print(f"  statement times and plans: {path}")

    ok = True
    funnels = [c for c in cases if c.report == "funnel"]
    if not args.no_duckdb and funnels:
        console.rule("duckdb (reference, raw events)")
        load, timings, counts = bench_duckdb(args.runs, funnels)
        results["duckdb_load_s"] = round(load, 2)
        results["timings"]["duckdb"] = {name: t.as_dict() for name, t in timings.items()}
        console.print(f"  (loading the parquet into DuckDB took {load:.2f} s, not counted)")
        for db in reports:
            for case in funnels:
                ok &= check_counts(db, case, reports[db][case.name], counts[case.name])

    previous = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    if previous.get("dataset") == results["dataset"]:  # keep what this run did not measure
        for db, t in previous.get("timings", {}).items():
            results["timings"].setdefault(db, t)
            for name, value in t.items():
                results["timings"][db].setdefault(name, value)
        results.setdefault("duckdb_load_s", previous.get("duckdb_load_s"))
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS_JSON.write_text(json.dumps(results, indent=2))
    print(markdown(results))
    if not ok:
        console.print(
            "[bold red]journey's funnel counts differ from the DuckDB reference[/bold red]"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
