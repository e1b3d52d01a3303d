"""Benchmark of the value report at a million customers, against lifetimes' two fitters.

    .venv/bin/python -m bench.value                        # 1M customers, SQLite and PostgreSQL
    .venv/bin/python -m bench.value --customers 100000 --no-postgres
    .venv/bin/python -m bench.value --profile              # where the report's time goes

What it measures and why (figures in bench/VALUE.md):

- Data: `--customers` buyers (1M by default: the worst case, every customer has bought, so
  both fits, the scoring and every channel's bootstrap run over all of them), drawn from
  the BG/NBD process at day resolution with CDNOW's parameters (as bench/churn_model.py)
  and their repeat spend from the Gamma-Gamma model with CDNOW's parameters (p 6.25,
  q 3.74, gamma 15.44 dollars), ages spread over two years, six acquisition channels.
  Every customer entered the journey in the report's period, so the report's cohort is
  all of them. Seed 20051: same data every run.
- Store: written straight into `customer` and `customer_journey` of a throw-away SQLite
  file and a throw-away PostgreSQL database (`journey_bench_value`, dropped at the end),
  as bench/churn_model.py does: the report reads only the journey state.
- Report: `value_report` end to end (the one read of buyers and cohort, BG/NBD and
  Gamma-Gamma fits, every buyer's discounted 12-month value, the channel bootstrap), each
  call in its own session. Median of `--runs` warm runs after one warm-up.
- Overview pair: the value report and the churn report (limit 0) for the same as-of time,
  as the overview and the App Home build them, with one `SharedFits` (one read, one fit
  of each model) and without (each report reading and fitting on its own).
- lifetimes: `BetaGeoFitter().fit(x, t_x, T)` plus `GammaGammaFitter().fit(x, m)` on the
  repeat buyers, on the very arrays the report read from SQLite (so the same data), once
  (it is slow), in the same process and run. Ours is also timed on those arrays (both fits
  alone), and the parameters compared.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sqlite3
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from bench.churn_model import TRUTH, machine
from journey.db import make_engine, session_scope, upgrade
from journey.metrics.buyers import SharedFits
from journey.metrics.churn import churn_report, read_summary
from journey.metrics.churn_model import fit_bg_nbd, simulate_bg_nbd
from journey.metrics.gamma_gamma import GammaGammaParams, fit_gamma_gamma, simulate_gamma_gamma
from journey.metrics.value import value_report
from journey.periods import Period
from journey.workspaces import ensure_source, ensure_workspace

OUT = Path(__file__).parent / "data" / "value.json"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/journey_bench_value"
SPEND = GammaGammaParams(p=6.25, q=3.74, gamma=15.44)  # CDNOW, dollars
CHANNELS = ("organic_search", "paid_search", "social", "email", "referral", "direct")
SHARE = (0.30, 0.22, 0.18, 0.10, 0.08, 0.12)
AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
AGE_DAYS = 730
SEED = 20051
DAY = 86400
WS = "bench"


def generate(n: int) -> dict[str, np.ndarray]:
    """Columns of customer_journey for n buyers (see the module docstring)."""
    rng = np.random.default_rng(SEED)
    ages = rng.uniform(1, AGE_DAYS, size=n)
    x, t_x, T = simulate_bg_nbd(TRUTH, ages, rng, day_resolution=True)
    m = simulate_gamma_gamma(SPEND, x, rng)
    first_day = rng.gamma(4.0, 8.0, size=n)  # a first purchase, dollars
    end = int(AS_OF.timestamp())
    # First purchase at 01:00 on day (as-of day - T - 1), as bench/churn_model.py.
    first = end - (T.astype(np.int64) + 1) * DAY + 3600
    last = first + t_x.astype(np.int64) * DAY
    first_cents = np.round(first_day * 100).astype(np.int64)
    revenue = first_cents + np.round(m * x * 100).astype(np.int64)
    channel = rng.choice(len(CHANNELS), size=n, p=SHARE)
    return {
        "id": np.arange(1, n + 1, dtype=np.int64),
        "channel": channel,
        "reached_0": first - 3600,
        "first": first,
        "last": last,
        "days": x.astype(np.int64) + 1,
        "revenue": revenue,
        "first_cents": first_cents,
    }


def period() -> Period:
    start = AS_OF - timedelta(days=AGE_DAYS + 2)
    return Period(start, AS_OF, "2y")


def _rows(d: dict[str, np.ndarray]) -> Any:
    return zip(
        d["id"].tolist(),
        [CHANNELS[c] for c in d["channel"]],
        d["reached_0"].tolist(),
        d["first"].tolist(),
        d["last"].tolist(),
        d["days"].tolist(),
        d["revenue"].tolist(),
        d["first_cents"].tolist(),
        strict=True,
    )


_CJ_COLUMNS = (
    "customer_id, channel, reached_0, first_purchase_at, last_purchase_at, purchase_days, "
    "revenue_cents, first_day_cents"
)


def _prepare_schema(url: str) -> int:
    engine = make_engine(url)
    upgrade(engine)
    with session_scope(engine) as session:
        ensure_workspace(session, WS)
        source_id = ensure_source(session, WS, "csv", "bench").id
    engine.dispose()
    assert source_id is not None
    return source_id


def load_sqlite(d: dict[str, np.ndarray], path: Path) -> float:
    start = time.perf_counter()
    source_id = _prepare_schema(f"sqlite:///{path}")
    con = sqlite3.connect(path)
    con.executemany(
        f"INSERT INTO customer (id, workspace_id, source_id, external_id) VALUES (?, '{WS}', ?, ?)",
        ((i, source_id, f"C{i}") for i in d["id"].tolist()),
    )
    con.executemany(
        f"INSERT INTO customer_journey (workspace_id, {_CJ_COLUMNS}, recorded_mask, "
        f"purchase_month_mask) VALUES ('{WS}', ?, ?, ?, ?, ?, ?, ?, ?, 0, 0)",
        _rows(d),
    )
    con.commit()
    con.close()
    return time.perf_counter() - start


def load_postgres(d: dict[str, np.ndarray], url: str) -> float:
    import psycopg

    start = time.perf_counter()
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.execute(text(f'DROP DATABASE IF EXISTS "{target.database}"'))
        con.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    source_id = _prepare_schema(url)
    plain = target.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as con:
        con.execute("SET session_replication_role = replica")
        with con.cursor() as cur:
            buf = io.StringIO()
            buf.writelines(f"{i}\t{WS}\t{source_id}\tC{i}\n" for i in d["id"].tolist())
            with cur.copy(
                "COPY customer (id, workspace_id, source_id, external_id) FROM STDIN"
            ) as cp:
                cp.write(buf.getvalue())
            buf = io.StringIO()
            buf.writelines(f"{WS}\t" + "\t".join(map(str, row)) + "\t0\t0\n" for row in _rows(d))
            with cur.copy(
                f"COPY customer_journey (workspace_id, {_CJ_COLUMNS}, recorded_mask, "
                "purchase_month_mask) FROM STDIN"
            ) as cp:
                cp.write(buf.getvalue())
        con.commit()
    with psycopg.connect(plain, autocommit=True) as con:
        con.execute("VACUUM ANALYZE customer_journey")
        con.execute("VACUUM ANALYZE customer")
    return time.perf_counter() - start


def drop_postgres(url: str) -> None:
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.execute(text(f'DROP DATABASE IF EXISTS "{target.database}"'))
    admin.dispose()


def timed(work: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    """Seconds of `runs` runs after one warm-up, and the last result."""
    result = work()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return times, result


def report_case(url: str, runs: int, profile: bool) -> dict[str, Any]:
    engine = make_engine(url)
    end = int(AS_OF.timestamp())

    def report() -> Any:
        with Session(engine) as session:
            return value_report(session, WS, period(), now=AS_OF)

    def summary() -> Any:
        with Session(engine) as session:
            return read_summary(session, WS, end)

    def pair(shared: bool) -> Callable[[], Any]:
        def both() -> Any:
            with Session(engine) as session:
                fits = SharedFits() if shared else None
                value_report(session, WS, period(), now=AS_OF, fits=fits)
                return churn_report(session, WS, period(), limit=0, now=AS_OF, fits=fits)

        return both

    times, result = timed(report, runs)
    read_times, summ = timed(summary, max(1, runs // 2))
    shared_times, _ = timed(pair(True), max(1, runs // 2))
    separate_times, _ = timed(pair(False), max(1, runs // 2))
    case: dict[str, Any] = {
        "report_s": times,
        "report_median_s": statistics.median(times),
        "read_summary_median_s": statistics.median(read_times),
        "overview_pair_shared_s": shared_times,
        "overview_pair_separate_s": separate_times,
        "method": result.method,
        "reason": result.fallback_reason,
        "buyers": result.buyers,
        "repeat_buyers": result.repeat_buyers,
        "best_channel": result.best_channel,
        "params": [result.r, result.alpha, result.a, result.b, result.p, result.q, result.gamma],
    }
    if profile:
        prof = cProfile.Profile()
        prof.enable()
        report()
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(30)
        case["profile"] = out.getvalue()
        print(out.getvalue())
    engine.dispose()
    case["summary"] = summ
    return case


def fits_case(summ: Any, with_lifetimes: bool) -> dict[str, Any]:
    """Both fits, ours and lifetimes', on the arrays the report read."""
    x, t_x, T = summ.x, summ.t_x, summ.T
    m = summ.repeat_spend()

    def ours() -> tuple[Any, Any]:
        return fit_bg_nbd(x, t_x, T), fit_gamma_gamma(x, m)

    times, (bg, gg) = timed(ours, 3)
    case: dict[str, Any] = {
        "ours_fits_median_s": statistics.median(times),
        "ours_params": [*bg.params.as_array().tolist(), *gg.params.as_array().tolist()],
    }
    if with_lifetimes:
        from lifetimes import BetaGeoFitter, GammaGammaFitter

        rep = (x > 0) & (m > 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            ref_bg = BetaGeoFitter().fit(x, t_x, T)
            bg_s = time.perf_counter() - start
            start = time.perf_counter()
            ref_gg = GammaGammaFitter().fit(x[rep], m[rep])
            gg_s = time.perf_counter() - start
        ref = np.array(
            [
                *ref_bg.params_[["r", "alpha", "a", "b"]].to_numpy(dtype=float),
                *ref_gg.params_[["p", "q", "v"]].to_numpy(dtype=float),
            ]
        )
        ours_arr = np.array(case["ours_params"])
        case |= {
            "lifetimes_bg_s": bg_s,
            "lifetimes_gg_s": gg_s,
            "lifetimes_total_s": bg_s + gg_s,
            "lifetimes_params": ref.tolist(),
            "max_rel_diff": float(np.max(np.abs(ours_arr - ref) / np.abs(ref))),
        }
    return case


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-lifetimes", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    args = parser.parse_args(argv)

    results: dict[str, Any] = {"machine": machine(), "customers": args.customers}
    data = generate(args.customers)
    summ = None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "value.db"
        results["load_sqlite_s"] = load_sqlite(data, path)
        case = report_case(f"sqlite:///{path}", args.runs, args.profile)
        summ = case.pop("summary")
        results["sqlite"] = case
        print("sqlite", json.dumps({k: v for k, v in case.items() if k != "profile"}))
    if not args.no_postgres:
        try:
            results["load_postgres_s"] = load_postgres(data, args.postgres_url)
            case = report_case(args.postgres_url, args.runs, args.profile)
            case.pop("summary")
            results["postgresql"] = case
            print("postgresql", json.dumps({k: v for k, v in case.items() if k != "profile"}))
        finally:
            drop_postgres(args.postgres_url)
    results["fits"] = fits_case(summ, not args.no_lifetimes)
    print("fits", json.dumps(results["fits"]))
    results["machine"]["load_after"] = Path("/proc/loadavg").read_text().split()[0]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))
    print(f"written to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
