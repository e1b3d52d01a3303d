"""Generate the benchmark workspace "bench" and load it into SQLite and PostgreSQL.

    .venv/bin/python -m bench.generate                      # 1M customers, 10M events, both DBs
    .venv/bin/python -m bench.generate --customers 100000   # a quick run
    .venv/bin/python -m bench.generate --sqlite             # only one database

Why it is built this way:

- Every column is drawn with numpy, vectorized and from one seed, so 10M events
  take seconds to make and every run (and both databases) gets the same data.
- The shape is a small shop over the 12 months ending at END: six acquisition
  channels with different conversion, visit -> inquiry -> checkout -> order,
  repeat buyers with their own rhythm, refunds, review requests and the reviews
  they bring. Visits fill the event budget, as they do in real analytics data.
- The raw events are also written to bench/data/events.parquet, so bench/run.py
  can compute the same funnel with DuckDB from exactly these rows.
- Loading uses each database's fast path (one executemany per million rows on
  SQLite, COPY on PostgreSQL). The plain secondary indexes of the bulk-loaded
  tables are dropped first and rebuilt from their own definitions afterwards,
  and foreign-key checks are off for the loader's connection only: the data is
  consistent by construction and this is the standard bulk-load recipe. The
  journey state is then built by journey itself (`refresh_journeys`, full
  rebuild), which is the number that matters.
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from journey.db import make_engine, session_scope, upgrade
from journey.state import refresh_journeys
from journey.workspaces import ensure_source, ensure_workspace

DATA_DIR = Path(__file__).resolve().parent / "data"
WORKSPACE = "bench"
SQLITE_PATH = DATA_DIR / "bench.db"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/journey_bench"
EVENTS_PARQUET = DATA_DIR / "events.parquet"
CUSTOMERS_PARQUET = DATA_DIR / "customers.parquet"
META_JSON = DATA_DIR / "meta.json"

# The data ends just before END (exclusive), a fixed date so every run is identical.
END = datetime(2026, 11, 1, tzinfo=UTC)
DAYS = 365
START = END - timedelta(days=DAYS)
DAY = 86400
HOUR = 3600

KINDS = ("visit", "inquiry", "checkout", "order", "refund", "review")
VISIT, INQUIRY, CHECKOUT, ORDER, REFUND, REVIEW = range(len(KINDS))
CHANNELS = ("organic_search", "paid_search", "social", "email", "referral", "direct")
# Per channel: share of new customers, P(inquiry), P(checkout | inquiry),
# P(order | checkout), P(buys again, per order), average order value multiplier.
CHANNEL_SHARE = np.array([0.30, 0.22, 0.18, 0.10, 0.08, 0.12])
P_CONSIDER = np.array([0.38, 0.30, 0.20, 0.55, 0.50, 0.45])
P_DECIDE = np.array([0.50, 0.45, 0.35, 0.60, 0.60, 0.55])
P_BUY = np.array([0.55, 0.50, 0.40, 0.65, 0.70, 0.60])
P_REPEAT = np.array([0.40, 0.30, 0.25, 0.55, 0.50, 0.45])
AOV = np.array([1.0, 0.9, 0.8, 1.1, 1.3, 1.2])
# Shortcuts that skip a stage: checkout without an inquiry, an order without a checkout.
P_SKIP_TO_DECIDE = 0.06
P_SKIP_TO_BUY = 0.01
MAX_ORDERS = 40
P_REFUND = 0.04
P_ASK = 0.30
P_SKIPPED = 0.10
P_ANSWER = 0.30
P_SPONTANEOUS_REVIEW = 0.03
REVIEW_STATUS = ("asked", "skipped")
REVIEW_VIA = ("email", "sms")

CHUNK = 1_000_000
console = Console(width=None if Console().is_terminal else 160)


@dataclass
class Dataset:
    """Column arrays of the three bulk tables; ids are 1-based and dense.

    Codes index KINDS / CHANNELS; -1 means NULL (an event without channel or amount).
    """

    customers: int
    first_seen: np.ndarray
    customer_channel: np.ndarray
    event_customer: np.ndarray
    event_ts: np.ndarray
    event_kind: np.ndarray
    event_channel: np.ndarray
    event_amount: np.ndarray
    request_customer: np.ndarray
    request_asked_at: np.ndarray
    request_status: np.ndarray
    request_via: np.ndarray
    seed: int = 0
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def events(self) -> int:
        return len(self.event_ts)

    @property
    def requests(self) -> int:
        return len(self.request_asked_at)


def _arrival_times(rng: np.random.Generator, n: int, start: int) -> np.ndarray:
    """First-seen times: growing traffic, quieter weekends, a holiday peak, a daily rhythm."""
    day = np.arange(DAYS)
    weight = 1.0 + 0.6 * day / DAYS
    weekday = (START.weekday() + day) % 7
    weight *= np.where(weekday >= 5, 0.8, 1.0)
    holiday = (day >= 20) & (day < 55)  # late November to Christmas (the data starts Nov 1)
    weight *= np.where(holiday, 1.4, 1.0)
    night = [1, 0.6, 0.4, 0.3, 0.3, 0.4, 0.8, 1.5, 2.5, 3, 3.2, 3.2]
    evening = [3.4, 3.3, 3.1, 3, 3, 3.1, 3.3, 3.6, 3.8, 3.3, 2.5, 1.6]
    hour_weight = np.array([*night, *evening])
    days = rng.choice(DAYS, size=n, p=weight / weight.sum())
    hours = rng.choice(24, size=n, p=hour_weight / hour_weight.sum())
    seconds = rng.integers(0, HOUR, size=n)
    return np.sort(start + days * DAY + hours * HOUR + seconds)


def _delay(rng: np.random.Generator, mean: float, size: int, minimum: int = 60) -> np.ndarray:
    """Exponential waiting times in whole seconds, never shorter than `minimum`."""
    return np.maximum(minimum, rng.exponential(mean, size=size)).astype(np.int64)


def generate(customers: int, events_per_customer: float, seed: int) -> Dataset:
    """Draw the whole workspace; the event total is exact (visits fill the budget)."""
    rng = np.random.default_rng(seed)
    start, end = int(START.timestamp()), int(END.timestamp())
    n = customers
    t0 = _arrival_times(rng, n, start)
    channel = rng.choice(len(CHANNELS), size=n, p=CHANNEL_SHARE).astype(np.int8)

    consider = rng.random(n) < P_CONSIDER[channel]
    decide = np.where(consider, rng.random(n) < P_DECIDE[channel], rng.random(n) < P_SKIP_TO_DECIDE)
    buy = np.where(decide, rng.random(n) < P_BUY[channel], rng.random(n) < P_SKIP_TO_BUY)
    t_inquiry = t0 + _delay(rng, 1.5 * DAY, n)
    t_checkout = np.where(consider, t_inquiry, t0) + _delay(rng, 1.0 * DAY, n)
    t_first_buy = np.where(
        decide, t_checkout + _delay(rng, 2 * HOUR, n), t0 + _delay(rng, 2 * DAY, n)
    )

    # Orders: each buyer has a rhythm (mean gap) and buys again with a channel's odds.
    buyers = np.flatnonzero(buy)
    n_orders = np.minimum(rng.geometric(1.0 - P_REPEAT[channel[buyers]]), MAX_ORDERS)
    owner = np.repeat(buyers, n_orders)
    first = np.cumsum(n_orders) - n_orders
    rank = np.arange(len(owner)) - np.repeat(first, n_orders)
    rhythm = rng.lognormal(np.log(35 * DAY), 0.5, size=len(buyers))
    gaps = rng.exponential(np.repeat(rhythm, n_orders))
    gaps[rank == 0] = 0.0
    offset = np.cumsum(gaps)
    offset -= np.repeat(offset[first], n_orders)
    order_ts = t_first_buy[owner] + offset.astype(np.int64)
    amount = rng.lognormal(np.log(4500.0 * AOV[channel[owner]]), 0.6)
    order_cents = np.maximum(499, np.round(amount / 100) * 100 - 1).astype(np.int64)
    kept = order_ts < end
    owner, order_ts, order_cents = owner[kept], order_ts[kept], order_cents[kept]

    refunded = rng.random(len(owner)) < P_REFUND
    refund_owner = owner[refunded]
    refund_ts = order_ts[refunded] + _delay(rng, 6 * DAY, int(refunded.sum()), HOUR)
    refund_cents = np.where(
        rng.random(len(refund_owner)) < 0.8, order_cents[refunded], order_cents[refunded] // 2
    )

    asked = rng.random(len(owner)) < P_ASK
    request_customer = owner[asked]
    request_asked_at = order_ts[asked] + 4 * DAY + rng.integers(0, 3 * DAY, size=int(asked.sum()))
    request_status = (rng.random(len(request_customer)) < P_SKIPPED).astype(np.int8)
    request_via = (rng.random(len(request_customer)) < 0.2).astype(np.int8)
    answered = (request_status == 0) & (rng.random(len(request_customer)) < P_ANSWER)
    spontaneous = rng.random(len(owner)) < P_SPONTANEOUS_REVIEW
    review_owner = np.concatenate([request_customer[answered], owner[spontaneous]])
    review_ts = np.concatenate(
        [
            request_asked_at[answered] + _delay(rng, 3 * DAY, int(answered.sum()), HOUR),
            order_ts[spontaneous] + _delay(rng, 7 * DAY, int(spontaneous.sum()), HOUR),
        ]
    )
    in_range = request_asked_at < end
    request_customer, request_asked_at = request_customer[in_range], request_asked_at[in_range]
    request_status, request_via = request_status[in_range], request_via[in_range]

    ids = np.arange(n)
    inq, chk = ids[consider], ids[decide]
    core_customer = np.concatenate([ids, inq, chk, owner, refund_owner, review_owner])
    core_ts = np.concatenate([t0, t_inquiry[inq], t_checkout[chk], order_ts, refund_ts, review_ts])
    core_kind = np.concatenate(
        [
            np.full(n, VISIT),
            np.full(len(inq), INQUIRY),
            np.full(len(chk), CHECKOUT),
            np.full(len(owner), ORDER),
            np.full(len(refund_owner), REFUND),
            np.full(len(review_owner), REVIEW),
        ]
    ).astype(np.int8)
    core_amount = np.concatenate(
        [
            np.full(n + len(inq) + len(chk), -1),
            order_cents,
            refund_cents,
            np.full(len(review_owner), -1),
        ]
    ).astype(np.int64)
    future = core_ts >= end
    core_customer, core_ts = core_customer[~future], core_ts[~future]
    core_kind, core_amount = core_kind[~future], core_amount[~future]

    # Extra visits fill the budget: more for engaged customers, spread from their
    # first visit to three weeks after their last known activity.
    target = round(n * events_per_customer)
    budget = max(0, target - len(core_ts))
    orders_per_customer = np.bincount(owner, minlength=n)
    weight = 1.0 + consider + decide + 2.0 * orders_per_customer
    extra_per_customer = rng.multinomial(budget, weight / weight.sum())
    last_activity = np.full(n, 0, dtype=np.int64)
    np.maximum.at(last_activity, core_customer, core_ts)
    upper = np.minimum(last_activity + 21 * DAY, end - 1)
    visit_customer = np.repeat(ids, extra_per_customer)
    span = (upper - t0)[visit_customer]
    visit_ts = t0[visit_customer] + 1 + (rng.random(budget) * span).astype(np.int64)

    event_customer = np.concatenate([core_customer, visit_customer])
    event_ts = np.concatenate([core_ts, visit_ts])
    event_kind = np.concatenate([core_kind, np.full(budget, VISIT, dtype=np.int8)])
    event_amount = np.concatenate([core_amount, np.full(budget, -1, dtype=np.int64)])
    # The first visit carries the acquisition channel; later events mostly do too.
    m = len(event_ts)
    same = rng.random(m) < 0.7
    event_channel = np.where(
        same, channel[event_customer], rng.integers(0, len(CHANNELS), size=m)
    ).astype(np.int8)
    event_channel[:n] = channel
    event_channel[event_kind == REFUND] = -1

    # Ids follow time, as an append-only event log's would.
    order = np.lexsort((event_kind, event_customer, event_ts))
    dataset = Dataset(
        customers=n,
        first_seen=t0,
        customer_channel=channel,
        event_customer=event_customer[order] + 1,
        event_ts=event_ts[order],
        event_kind=event_kind[order],
        event_channel=event_channel[order],
        event_amount=event_amount[order],
        request_customer=request_customer + 1,
        request_asked_at=request_asked_at,
        request_status=request_status,
        request_via=request_via,
        seed=seed,
    )
    dataset.summary = {
        "customers": n,
        "events": dataset.events,
        "review_requests": dataset.requests,
        "events_by_kind": {
            k: int(c) for k, c in zip(KINDS, np.bincount(dataset.event_kind), strict=False)
        },
        "buyers": len(np.unique(owner)),
        "repeat_buyers": int((orders_per_customer >= 2).sum()),
        "start": START.isoformat(),
        "end": END.isoformat(),
        "seed": seed,
    }
    return dataset


def _event_rows(data: Dataset, source_id: int, lo: int, hi: int) -> Iterator[tuple[Any, ...]]:
    """Rows of journey_event [lo, hi) as tuples, built from column lists (fast in CPython)."""
    kinds = np.array(KINDS, dtype=object)[data.event_kind[lo:hi]].tolist()
    channels = np.array([*CHANNELS, None], dtype=object)[data.event_channel[lo:hi]].tolist()
    amounts = data.event_amount[lo:hi]
    amount_obj = np.where(amounts >= 0, amounts.astype(object), None).tolist()
    ids = range(lo + 1, hi + 1)
    return zip(
        ids,
        [WORKSPACE] * (hi - lo),
        data.event_customer[lo:hi].tolist(),
        [source_id] * (hi - lo),
        [f"ev-{i:010d}" for i in ids],
        kinds,
        data.event_ts[lo:hi].tolist(),
        channels,
        amount_obj,
        strict=True,
    )


def _customer_rows(data: Dataset, source_id: int, lo: int, hi: int) -> Iterator[tuple[Any, ...]]:
    ids = range(lo + 1, hi + 1)
    return zip(
        ids,
        [WORKSPACE] * (hi - lo),
        [source_id] * (hi - lo),
        [f"cust-{i:08d}" for i in ids],
        [f"Customer {i}" for i in ids],
        [f"customer{i}@example.com" for i in ids],
        data.first_seen[lo:hi].tolist(),
        np.array(CHANNELS, dtype=object)[data.customer_channel[lo:hi]].tolist(),
        strict=True,
    )


def _request_rows(data: Dataset, lo: int, hi: int) -> Iterator[tuple[Any, ...]]:
    return zip(
        range(lo + 1, hi + 1),
        [WORKSPACE] * (hi - lo),
        data.request_customer[lo:hi].tolist(),
        data.request_asked_at[lo:hi].tolist(),
        np.array(REVIEW_STATUS, dtype=object)[data.request_status[lo:hi]].tolist(),
        np.array(REVIEW_VIA, dtype=object)[data.request_via[lo:hi]].tolist(),
        ["bench"] * (hi - lo),
        strict=True,
    )


CUSTOMER_COLS = "id, workspace_id, source_id, external_id, name, email, first_seen, channel"
EVENT_COLS = "id, workspace_id, customer_id, source_id, external_id, kind, occurred_at, channel, amount_cents"
REQUEST_COLS = "id, workspace_id, customer_id, asked_at, status, via, asked_by"
BULK_TABLES = ("customer", "journey_event", "review_request")


class Timer:
    """Phase timings, printed as they finish and kept for the JSON record."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}

    def run(self, name: str, fn: Any, *args: Any) -> Any:
        console.print(f"[bold]{name}[/bold] ...")
        t = time.perf_counter()
        result = fn(*args)
        self.phases[name] = round(time.perf_counter() - t, 2)
        console.print(f"  {name}: [green]{self.phases[name]:.2f} s[/green]")
        return result


def _progress() -> Progress:
    return Progress(
        TextColumn("  {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _log_progress(what: str, done: int, total: int) -> None:
    """A plain line per step when the output is a log file (rich draws no bar there)."""
    if not console.is_terminal:
        console.print(f"    {what}: {done:,} / {total:,}  ({time.strftime('%H:%M:%S')})")


def _workspace_and_source(engine: Engine) -> int:
    """The workspace and source rows go through journey's own helpers, as an import would."""
    with session_scope(engine) as session:
        ensure_workspace(session, WORKSPACE, "Benchmark shop")
        source = ensure_source(session, WORKSPACE, "demo", "bench generator")
        assert source.id is not None
        return source.id


def write_parquet(data: Dataset) -> None:
    """Raw events and customers for the DuckDB reference, written by DuckDB from numpy."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    kinds = "[" + ", ".join(f"'{k}'" for k in KINDS) + "]"
    channels = "[" + ", ".join(f"'{c}'" for c in CHANNELS) + "]"
    ev = {  # noqa: F841 (read by DuckDB's replacement scan)
        "id": np.arange(1, data.events + 1),
        "customer_id": data.event_customer,
        "occurred_at": data.event_ts,
        "kind": data.event_kind,
        "channel": data.event_channel,
        "amount_cents": data.event_amount,
    }
    con.execute(
        f"COPY (SELECT id, customer_id, {kinds}[kind + 1] AS kind, "
        f"occurred_at, CASE WHEN channel >= 0 THEN {channels}[channel + 1] END AS channel, "
        "CASE WHEN amount_cents >= 0 THEN amount_cents END AS amount_cents FROM ev) "
        f"TO '{EVENTS_PARQUET}' (FORMAT parquet)"
    )
    cu = {  # noqa: F841
        "id": np.arange(1, data.customers + 1),
        "first_seen": data.first_seen,
        "channel": data.customer_channel,
    }
    con.execute(
        f"COPY (SELECT id, first_seen, {channels}[channel + 1] AS channel FROM cu) "
        f"TO '{CUSTOMERS_PARQUET}' (FORMAT parquet)"
    )
    con.close()


# --------------------------------------------------------------------------- SQLite


def _sqlite_indexes(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """Explicit (non-constraint) indexes of the bulk tables, with the SQL that made them."""
    names = ", ".join(f"'{t}'" for t in BULK_TABLES)
    return conn.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        f"AND tbl_name IN ({names})"
    ).fetchall()


def load_sqlite(data: Dataset, path: Path, chunk: int) -> dict[str, float]:
    """Fresh SQLite file: schema, rows, indexes, journey state. Returns phase timings."""
    timer = Timer()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    timer.run("schema (alembic upgrade)", upgrade, engine)
    source_id = timer.run("workspace + source", _workspace_and_source, engine)

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    indexes = _sqlite_indexes(conn)
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")

    def insert(table: str, cols: str, total: int, rows: Any) -> None:
        marks = ", ".join("?" * len(cols.split(",")))
        sql = f"INSERT INTO {table} ({cols}) VALUES ({marks})"
        with _progress() as progress:
            task = progress.add_task(table, total=total)
            for lo in range(0, total, chunk):
                hi = min(total, lo + chunk)
                conn.execute("BEGIN")
                conn.executemany(sql, rows(lo, hi))
                conn.execute("COMMIT")
                progress.advance(task, hi - lo)
                _log_progress(table, hi, total)

    n, m, r = data.customers, data.events, data.requests
    timer.run(
        "customers",
        insert,
        "customer",
        CUSTOMER_COLS,
        n,
        lambda lo, hi: _customer_rows(data, source_id, lo, hi),
    )
    timer.run(
        "events",
        insert,
        "journey_event",
        EVENT_COLS,
        m,
        lambda lo, hi: _event_rows(data, source_id, lo, hi),
    )
    timer.run(
        "review requests",
        insert,
        "review_request",
        REQUEST_COLS,
        r,
        lambda lo, hi: _request_rows(data, lo, hi),
    )

    def build_indexes() -> None:
        for name, sql in indexes:
            t = time.perf_counter()
            conn.execute(sql)
            console.print(f"    {name}: {time.perf_counter() - t:.1f} s")

    timer.run("secondary indexes", build_indexes)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    timer.run("refresh_journeys (full rebuild)", _refresh, engine)
    engine.dispose()
    return timer.phases


def _refresh(engine: Engine) -> None:
    with session_scope(engine) as session:
        refresh_journeys(session, WORKSPACE)


# --------------------------------------------------------------------------- PostgreSQL


def _csv_via_duckdb(data: Dataset, source_id: int) -> dict[str, Path]:
    """CSV files for COPY, written by DuckDB (multi-threaded) from the numpy columns."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = true")
    kinds = "[" + ", ".join(f"'{k}'" for k in KINDS) + "]"
    channels = "[" + ", ".join(f"'{c}'" for c in CHANNELS) + "]"
    ev = {  # noqa: F841
        "id": np.arange(1, data.events + 1),
        "customer_id": data.event_customer,
        "occurred_at": data.event_ts,
        "kind": data.event_kind,
        "channel": data.event_channel,
        "amount_cents": data.event_amount,
    }
    cu = {  # noqa: F841
        "id": np.arange(1, data.customers + 1),
        "first_seen": data.first_seen,
        "channel": data.customer_channel,
    }
    rr = {  # noqa: F841
        "id": np.arange(1, data.requests + 1),
        "customer_id": data.request_customer,
        "asked_at": data.request_asked_at,
        "status": data.request_status,
        "via": data.request_via,
    }
    files = {t: DATA_DIR / f"load_{t}.csv" for t in BULK_TABLES}
    queries = {
        "customer": (
            f"SELECT id, '{WORKSPACE}', {source_id}, "
            "'cust-' || lpad(CAST(id AS VARCHAR), 8, '0'), 'Customer ' || CAST(id AS VARCHAR), "
            "'customer' || CAST(id AS VARCHAR) || '@example.com', "
            f"first_seen, {channels}[channel + 1] FROM cu"
        ),
        "journey_event": (
            f"SELECT id, '{WORKSPACE}', customer_id, {source_id}, "
            "'ev-' || lpad(CAST(id AS VARCHAR), 10, '0'), "
            f"{kinds}[kind + 1], occurred_at, "
            f"CASE WHEN channel >= 0 THEN {channels}[channel + 1] END, "
            "CASE WHEN amount_cents >= 0 THEN amount_cents END FROM ev"
        ),
        "review_request": (
            f"SELECT id, '{WORKSPACE}', customer_id, asked_at, "
            f"['asked', 'skipped'][status + 1], ['email', 'sms'][via + 1], 'bench' FROM rr"
        ),
    }
    for table, query in queries.items():
        con.execute(f"COPY ({query}) TO '{files[table]}' (FORMAT csv, HEADER false)")
    con.close()
    return files


def _pg_recreate_database(url: str) -> None:
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def load_postgres(data: Dataset, url: str) -> dict[str, float]:
    """Fresh database: schema, COPY, indexes, ANALYZE, journey state. Returns phase timings."""
    timer = Timer()
    timer.run("create database", _pg_recreate_database, url)
    engine = make_engine(url)
    timer.run("schema (alembic upgrade)", upgrade, engine)
    source_id = timer.run("workspace + source", _workspace_and_source, engine)
    files = timer.run("CSV for COPY (DuckDB)", _csv_via_duckdb, data, source_id)

    raw = engine.raw_connection()
    pg = raw.driver_connection
    assert pg is not None
    with pg.cursor() as cur:
        # Replica role skips the FK triggers for this connection only (rows are consistent).
        cur.execute("SET session_replication_role = replica")
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename = ANY(%s) AND indexname LIKE 'ix\\_%%'",
            (list(BULK_TABLES),),
        )
        indexes = cur.fetchall()
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
    pg.commit()

    def copy(table: str, cols: str) -> None:
        path = files[table]
        size = path.stat().st_size
        with _progress() as progress, pg.cursor() as cur, path.open("rb") as fh:
            task = progress.add_task(f"{table} (MB)", total=size // 2**20 + 1)
            done = 0
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT csv)") as cp:
                while block := fh.read(8 * 2**20):
                    cp.write(block)
                    progress.advance(task, len(block) / 2**20)
                    done += len(block)
                    if done % (128 * 2**20) < len(block):
                        _log_progress(f"{table} (MB)", done // 2**20, size // 2**20)
        pg.commit()
        path.unlink()

    timer.run("customers", copy, "customer", CUSTOMER_COLS)
    timer.run("events", copy, "journey_event", EVENT_COLS)
    timer.run("review requests", copy, "review_request", REQUEST_COLS)

    def build_indexes() -> None:
        with pg.cursor() as cur:
            for name, sql in indexes:
                t = time.perf_counter()
                cur.execute(sql)
                console.print(f"    {name}: {time.perf_counter() - t:.1f} s")
            for table in (*BULK_TABLES, "source"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
                )
        pg.commit()

    timer.run("secondary indexes", build_indexes)

    def analyze(tables: tuple[str, ...]) -> None:
        pg.autocommit = True
        with pg.cursor() as cur:
            for table in tables:
                cur.execute(f"VACUUM ANALYZE {table}")
        pg.autocommit = False

    timer.run("vacuum analyze (bulk tables)", analyze, BULK_TABLES)
    timer.run("refresh_journeys (full rebuild)", _refresh, engine)
    timer.run("vacuum analyze (customer_journey)", analyze, ("customer_journey",))
    raw.close()
    engine.dispose()
    return timer.phases


# --------------------------------------------------------------------------- main


def machine() -> dict[str, str]:
    """What the figures were measured on (shown in the README)."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = "unknown"
    for line in cpuinfo:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": str(sum(1 for line in cpuinfo if line.startswith("processor"))),
        "ram_gb": f"{mem_kb / 2**20:.1f}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "duckdb": duckdb.__version__,
        "numpy": np.__version__,
        "commit": commit,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events-per-customer", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=20261101)
    parser.add_argument("--sqlite", action="store_true", help="load SQLite (default: both)")
    parser.add_argument("--postgres", action="store_true", help="load PostgreSQL (default: both)")
    parser.add_argument("--sqlite-path", type=Path, default=SQLITE_PATH)
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--chunk", type=int, default=CHUNK, help="rows per SQLite transaction")
    args = parser.parse_args(argv)
    both = not (args.sqlite or args.postgres)

    timer = Timer()
    data: Dataset = timer.run(
        "generate (numpy)", generate, args.customers, args.events_per_customer, args.seed
    )
    console.print(json.dumps(data.summary, indent=2))
    timer.run("parquet for DuckDB", write_parquet, data)
    record: dict[str, Any] = {
        "dataset": data.summary,
        "machine": machine(),
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "phases": {"common": timer.phases},
    }
    if both or args.sqlite:
        console.rule("SQLite")
        record["phases"]["sqlite"] = load_sqlite(data, args.sqlite_path, args.chunk)
    if both or args.postgres:
        console.rule("PostgreSQL")
        record["phases"]["postgresql"] = load_postgres(data, args.postgres_url)
    previous = json.loads(META_JSON.read_text()) if META_JSON.exists() else {}
    if previous.get("dataset") == data.summary:  # keep the other database's timings
        for db, phases in previous.get("phases", {}).items():
            record["phases"].setdefault(db, phases)
    META_JSON.write_text(json.dumps(record, indent=2))
    for db, phases in record["phases"].items():
        console.print(f"{db}: total {sum(phases.values()):.1f} s  {phases}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
