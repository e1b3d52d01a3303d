"""Benchmark of the BG/NBD churn model: fitting ours against lifetimes, scoring, the report.

    .venv/bin/python -m bench.churn_model                     # 100k and 1M, all parts
    .venv/bin/python -m bench.churn_model --sizes 100000 --no-store
    .venv/bin/python -m bench.churn_model --lifetimes-max 100000   # skip lifetimes at 1M

What it measures and why:

- Data: customers drawn from the BG/NBD process itself (`simulate_bg_nbd`) at
  day resolution, like the store sees them (same-day purchases are one
  purchase, recency and age in whole days), ages spread over two years, with
  CDNOW's fitted parameters (alpha converted from weeks to days). Same seed,
  same data.
- Fit: ours (`fit_bg_nbd`: grouped histories, analytic gradient, L-BFGS-B) and
  lifetimes' `BetaGeoFitter.fit` on the very same (x, t_x, T) arrays, each timed
  end to end as a caller sees it (lifetimes' includes the Hessian it computes
  for standard errors; ours includes the grouping). lifetimes is also timed
  given our grouping as its `weights`, to show how much of the gap is grouping
  and how much the optimiser and the gradient. The fitted parameters of each
  run are compared (largest relative difference).
- Scoring: `score` for every customer (P(alive), expected purchases in 90 days
  and over a year), including the grouping, against the same formulas applied
  customer by customer without grouping.
- Store (`--store`, on by default): a throw-away SQLite database with 1M buyers
  in `customer_journey`, and `churn_report` end to end: the summary query, the
  fit, the scoring, the page of customers.
- Each figure is the median of `--runs` runs (lifetimes on the biggest size once,
  it is slow); the first run of each is a warm-up and is not counted.

Writes bench/CHURN.md's figures to bench/data/churn.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import statistics
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy

from journey.metrics.churn_model import (
    BgNbdParams,
    expected_purchases,
    expected_purchases_if_alive,
    fit_bg_nbd,
    group_histories,
    p_alive,
    score,
    simulate_bg_nbd,
)

OUT = Path(__file__).parent / "data" / "churn.json"
# CDNOW (Fader, Hardie & Lee 2005): r=0.243, alpha=4.414 weeks, a=0.793, b=2.426.
TRUTH = BgNbdParams(r=0.243, alpha=4.414 * 7, a=0.793, b=2.426)
AGE_DAYS = 730
SEED = 20051


def generate(n: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ages = rng.uniform(1, AGE_DAYS, size=n)
    return simulate_bg_nbd(TRUTH, ages, rng, day_resolution=True)


def timed(work: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """Median seconds of `runs` runs after one warm-up, and the last result."""
    result = work()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def once(work: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def lifetimes_fit(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray | None) -> Any:
    from lifetimes import BetaGeoFitter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return BetaGeoFitter().fit(x, t_x, T, weights=weights)


def params_of(fitter: Any) -> np.ndarray:
    return fitter.params_[["r", "alpha", "a", "b"]].to_numpy(dtype=float)


def fit_case(n: int, runs: int, with_lifetimes: bool) -> dict[str, Any]:
    x, t_x, T = generate(n)
    ours_s, fit = timed(lambda: fit_bg_nbd(x, t_x, T), runs)
    case: dict[str, Any] = {
        "customers": n,
        "repeat_buyers": fit.repeat_buyers,
        "histories": fit.histories,
        "ours_fit_s": ours_s,
        "ours_iterations": fit.iterations,
        "ours_params": fit.params.as_array().tolist(),
    }
    if with_lifetimes:
        lt_runs = runs if n <= 100_000 else 0
        if lt_runs:
            lt_s, ref = timed(lambda: lifetimes_fit(x, t_x, T, None), lt_runs)
        else:
            lt_s, ref = once(lambda: lifetimes_fit(x, t_x, T, None))
        h = group_histories(x, t_x, T)
        ltw_s, ref_w = timed(lambda: lifetimes_fit(h.x, h.t_x, h.T, h.count), max(1, runs // 2))
        ours = fit.params.as_array()
        case |= {
            "lifetimes_fit_s": lt_s,
            "lifetimes_runs": max(lt_runs, 1),
            "lifetimes_grouped_fit_s": ltw_s,
            "lifetimes_params": params_of(ref).tolist(),
            "max_rel_diff": float(np.max(np.abs(ours - params_of(ref)) / params_of(ref))),
            "max_rel_diff_grouped": float(
                np.max(np.abs(ours - params_of(ref_w)) / params_of(ref_w))
            ),
            "speedup": lt_s / ours_s,
            "speedup_vs_grouped_lifetimes": ltw_s / ours_s,
        }
    return case


def score_case(n: int, runs: int) -> dict[str, Any]:
    x, t_x, T = generate(n)
    params = fit_bg_nbd(x, t_x, T).params
    grouped_s, _ = timed(lambda: score(params, x, t_x, T), runs)

    def ungrouped() -> tuple[np.ndarray, ...]:
        alive = p_alive(params, x, t_x, T)
        return (
            alive,
            expected_purchases(params, 90.0, x, t_x, T),
            expected_purchases_if_alive(params, 365.0, x, T),
        )

    plain_s, _ = timed(ungrouped, runs)
    return {"customers": n, "score_s": grouped_s, "score_ungrouped_s": plain_s}


def store_case(n: int, runs: int) -> dict[str, Any]:
    """churn_report end to end on SQLite with n buyers written straight into the state table."""
    from sqlmodel import Session

    from journey.db import make_engine, session_scope, upgrade
    from journey.metrics.churn import churn_report, read_summary
    from journey.periods import range_period
    from journey.workspaces import ensure_source, ensure_workspace

    x, t_x, T = generate(n)
    as_of = datetime(2026, 11, 1, tzinfo=UTC)
    end = int(as_of.timestamp())
    # The first purchase at 01:00 on day (as-of day - T - 1): every purchase, the last
    # one included (t_x <= T), then falls before the as-of time, as in a real store.
    first = end - (T.astype(np.int64) + 1) * 86400 + 3600
    last = first + t_x.astype(np.int64) * 86400
    rng = np.random.default_rng(SEED + 1)
    revenue = rng.integers(1000, 20000, size=n) * (x.astype(np.int64) + 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "churn.db"
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        with session_scope(engine) as session:
            ensure_workspace(session, "bench")
            source_id = ensure_source(session, "bench", "csv", "bench").id
        engine.dispose()
        con = sqlite3.connect(path)
        ids = np.arange(1, n + 1)
        con.executemany(
            "INSERT INTO customer (id, workspace_id, source_id, external_id) VALUES (?, 'bench', ?, ?)",
            ((int(i), source_id, f"C{i}") for i in ids),
        )
        con.executemany(
            "INSERT INTO customer_journey (workspace_id, customer_id, recorded_mask, "
            "first_purchase_at, last_purchase_at, purchase_days, revenue_cents, "
            "purchase_month_mask) VALUES ('bench', ?, 0, ?, ?, ?, ?, 0)",
            (
                (int(i), int(f), int(la), int(d) + 1, int(r))
                for i, f, la, d, r in zip(ids, first, last, x, revenue, strict=True)
            ),
        )
        con.commit()
        con.close()
        engine = make_engine(f"sqlite:///{path}")
        period = range_period(date(2026, 10, 1), date(2026, 10, 31))

        def summary() -> Any:
            with Session(engine) as session:
                return read_summary(session, "bench", end)

        def report() -> Any:
            with Session(engine) as session:
                return churn_report(session, "bench", period, now=as_of)

        read_s, _ = timed(summary, runs)
        report_s, result = timed(report, runs)
        engine.dispose()
    return {
        "customers": n,
        "read_summary_s": read_s,
        "churn_report_s": report_s,
        "method": result.method,
        "at_risk": result.at_risk_count,
    }


def machine() -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?")
    mem_kb = next(
        int(ln.split()[1])
        for ln in Path("/proc/meminfo").read_text().splitlines()
        if ln.startswith("MemTotal")
    )
    try:
        import lifetimes

        lifetimes_version = lifetimes.__version__
    except ImportError:
        lifetimes_version = "not installed"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": str(sum(1 for ln in cpuinfo if ln.startswith("processor"))),
        "ram_gb": f"{mem_kb / 2**20:.1f}",
        "load_before": Path("/proc/loadavg").read_text().split()[0],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "lifetimes": lifetimes_version,
        "sqlite": sqlite3.sqlite_version,
        "commit": commit,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--lifetimes-max",
        type=int,
        default=1_000_000,
        help="Largest size lifetimes is fitted on (it is slow).",
    )
    parser.add_argument("--no-store", action="store_true", help="Skip the SQLite report.")
    args = parser.parse_args(argv)

    results: dict[str, Any] = {"machine": machine(), "fit": [], "score": [], "store": []}
    for n in args.sizes:
        case = fit_case(n, args.runs, with_lifetimes=n <= args.lifetimes_max)
        results["fit"].append(case)
        print(json.dumps(case))
    for n in args.sizes:
        case = score_case(n, args.runs)
        results["score"].append(case)
        print(json.dumps(case))
    if not args.no_store:
        case = store_case(max(args.sizes), max(1, args.runs // 2))
        results["store"].append(case)
        print(json.dumps(case))
    results["machine"]["load_after"] = Path("/proc/loadavg").read_text().split()[0]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))
    print(f"written to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
