"""Benchmark of people (issue 17 item 5): 1M records from three sources joined into people.

    .venv/bin/python -m bench.people generate                 # ~1M records, SQLite and PostgreSQL
    .venv/bin/python -m bench.people generate --humans 65000  # a quick one (~100k records)
    .venv/bin/python -m bench.people run --label after        # build, relink, reports
    .venv/bin/python -m bench.people run --label before --journey-path /tmp/old --only build,reports

What it measures and why (figures in bench/README.md, "People"):

- Data: `--humans` people (650,000 by default, giving about 1M records) of a small business
  with three tools: a CRM (`lead` events with the acquisition channel, some
  `consultation`s), a shop (orders, checkouts, refunds, reviews, review requests; 3 % guest
  orders without an email) and an email tool (`subscribe` and `visit` events). Each human is
  in one, two or all three (38 % in two or three); their address is written as each tool
  writes it (10 % of CRM records with capitals, some with surrounding spaces in the email
  tool). Shared addresses past the conflict threshold: 12,000 family addresses behind 2-4
  shop customers with different names and one CRM lead each, and 40 `info@` addresses with
  30 records each across the CRM and the email tool. Seed 20261208: same data every run.
- Store: a SQLite file (bench/data/people.db) and a PostgreSQL database
  (`journey_people_bench`), both dropped and made again by `generate`, schema by journey's
  migrations, rows loaded in bulk with `person_id` unset (as new records arrive).
- `build`: people from scratch (`journey.people.build_people` on records that have no person
  yet), then the full journey-state rebuild as a change of stage model runs it
  (`refresh_journeys(..., relink_people=False)`; before people existed, the per-record one).
- `relink`: a shop sync of 1,000 changed records through journey's own `Ingestor` (900
  renamed, 100 whose email changed to the address of a human known only to the CRM, so each
  moves to another person), then the relink and state refresh of the records it touched;
  checked (every moved record's person is the CRM lead's) and rolled back, so each of the
  `--runs` runs starts from the same store.
- `reports`: funnel (30 days, a year), retention, churn and reviews (90 days), value (two
  years), each in its own session; the first call and the median of the warm ones.
  `--journey-path` runs them (and `build`'s state rebuild) with another checkout of journey,
  e.g. the commit before people existed: the per-record reports on the same records.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data"
SQLITE_PATH = DATA_DIR / "people.db"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/journey_people_bench"
RESULTS = DATA_DIR / "people.json"
WS = "bench"
SEED = 20261208
END = datetime(2026, 11, 1, tzinfo=UTC)
DAY = 86400
CHANNELS = ("facebook", "google", "instagram", "referral", "newsletter", "direct")
CHANNEL_SHARE = (0.28, 0.30, 0.14, 0.10, 0.06, 0.12)
# Membership of each human: bits 1 = CRM, 2 = shop, 4 = email tool.
PATTERNS = (1, 2, 4, 3, 5, 6, 7)
PATTERN_SHARE = (0.25, 0.22, 0.15, 0.15, 0.08, 0.07, 0.08)
FAMILIES = 12_000
INFO_ADDRESSES = 40
INFO_RECORDS = 30
CHANGED = 1_000
MOVED = 100


def _log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def _load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --------------------------------------------------------------------------- data


class Data:
    """Rows of the three bulk tables, as lists (ids dense from 1)."""

    def __init__(self) -> None:
        self.customers: list[
            tuple[Any, ...]
        ] = []  # id, source, external_id, name, email, first_seen, channel
        self.events: list[
            tuple[Any, ...]
        ] = []  # customer, source, external_id, kind, ts, channel, cents
        self.requests: list[tuple[Any, ...]] = []  # customer, asked_at
        self.summary: dict[str, Any] = {}


def generate(humans: int, seed: int = SEED) -> Data:
    """Draw the three tools' records and events (sources are 1 CRM, 2 shop, 3 email tool)."""
    rng = np.random.default_rng(seed)
    end = int(END.timestamp())
    start = end - 365 * DAY
    pattern = np.array(PATTERNS)[rng.choice(len(PATTERNS), humans, p=PATTERN_SHARE)]
    t0 = start + rng.integers(0, 330 * DAY, humans)
    channel = rng.choice(len(CHANNELS), humans, p=CHANNEL_SHARE)
    data = Data()
    rows = data.customers
    # record: (human or -1, source, email, name, first_seen, channel)
    raw: list[tuple[int, int, str | None, str, int, str | None]] = []
    crm = np.flatnonzero(pattern & 1)
    caps = rng.random(len(crm)) < 0.10
    for h, cap in zip(crm.tolist(), caps.tolist(), strict=True):
        email = f"Person{h}@Example.COM" if cap else f"person{h}@example.com"
        raw.append((h, 1, email, f"Person {h}", int(t0[h]), CHANNELS[channel[h]]))
    shop = np.flatnonzero(pattern & 2)
    delay = rng.exponential(5 * DAY, len(shop)).astype(np.int64)
    guest = rng.random(len(shop)) < 0.03
    for h, d, g in zip(shop.tolist(), delay.tolist(), guest.tolist(), strict=True):
        later = int(pattern[h]) & 1
        raw.append(
            (
                h,
                2,
                None if g else f"person{h}@example.com",
                f"Person {h}",
                int(t0[h]) + (d if later else 0),
                None,
            )
        )
    mail = np.flatnonzero(pattern & 4)
    shift = rng.integers(-20 * DAY, 60 * DAY, len(mail))
    spaced = rng.random(len(mail)) < 0.05
    for h, s, sp in zip(mail.tolist(), shift.tolist(), spaced.tolist(), strict=True):
        email = f" person{h}@example.com " if sp else f"person{h}@example.com"
        raw.append(
            (h, 3, email, f"Person {h}", min(end - DAY, max(start, int(t0[h]) + s)), "newsletter")
        )
    family_t = start + rng.integers(0, 330 * DAY, FAMILIES)
    members = rng.integers(2, 5, FAMILIES)
    for j in range(FAMILIES):
        email = f"family{j}@example.net"
        t = int(family_t[j])
        raw.append((-1, 1, email, f"Family {j} parent", t, CHANNELS[j % len(CHANNELS)]))
        for m in range(int(members[j])):
            raw.append((-1, 2, email, f"Family {j} member {m}", t + (m + 1) * DAY, None))
    for j in range(INFO_ADDRESSES):
        for m in range(INFO_RECORDS):
            raw.append(
                (
                    -1,
                    1 if m % 2 else 3,
                    f"info@shop{j}.com",
                    f"Staff {j}.{m}",
                    start + (j * 97 + m) * DAY % (330 * DAY),
                    None,
                )
            )
    # Ids follow first-seen time, as records arriving over the year would.
    raw.sort(key=lambda r: (r[4], r[1], r[0]))
    human_ids: list[int] = []
    for i, (h, src, email, name, fs, ch) in enumerate(raw, start=1):
        ext = f"{('crm', 'shop', 'mail')[src - 1]}-{i:08d}"
        rows.append((i, src, ext, name, email, fs, ch))
        human_ids.append(h)

    # Events, per record by source.
    ev = data.events
    n = len(rows)
    src = np.array([r[1] for r in rows])
    fs = np.array([r[5] for r in rows], dtype=np.int64)
    ids = np.arange(1, n + 1)
    # CRM: a lead at first sight with the channel, a consultation for a quarter of them.
    crm_ids = ids[src == 1]
    for cid in crm_ids.tolist():
        ev.append((cid, 1, "lead", int(fs[cid - 1]), rows[cid - 1][6], None))
    consult = crm_ids[rng.random(len(crm_ids)) < 0.25]
    consult_ts = fs[consult - 1] + rng.integers(DAY, 10 * DAY, len(consult))
    for cid, t in zip(consult.tolist(), consult_ts.tolist(), strict=True):
        if t < end:
            ev.append((cid, 1, "consultation", t, None, None))
    # Shop: a checkout before the first order for half, orders with a buying rhythm,
    # refunds, reviews and review requests.
    shop_ids = ids[src == 2]
    n_orders = np.minimum(rng.geometric(0.55, len(shop_ids)), 20)
    for cid, k in zip(shop_ids.tolist(), n_orders.tolist(), strict=True):
        t = int(fs[cid - 1]) + 3600
        if rng.random() < 0.5:
            ev.append((cid, 2, "checkout", t - 1800, None, None))
        for _ in range(k):
            if t >= end:
                break
            cents = int(max(499, rng.lognormal(np.log(4500.0), 0.6)))
            ev.append((cid, 2, "order", t, None, cents))
            r = rng.random()
            if r < 0.04 and t + 6 * DAY < end:
                ev.append((cid, 2, "refund", t + 6 * DAY, None, cents))
            elif r < 0.07 and t + 9 * DAY < end:
                ev.append((cid, 2, "review", t + 9 * DAY, None, None))
            if r > 0.75 and t + 4 * DAY < end:
                data.requests.append((cid, t + 4 * DAY))
            t += int(rng.exponential(40 * DAY)) + DAY
    # Email tool: a subscription, then a few visits from its emails.
    mail_ids = ids[src == 3]
    visits = rng.poisson(1.5, len(mail_ids))
    for cid, k in zip(mail_ids.tolist(), visits.tolist(), strict=True):
        t = int(fs[cid - 1])
        ev.append((cid, 3, "subscribe", t, "newsletter", None))
        for _ in range(k):
            t += int(rng.exponential(20 * DAY)) + 3600
            if t >= end:
                break
            ev.append((cid, 3, "visit", t, "newsletter", None))
    ev.sort(key=lambda e: e[3])
    data.events = [
        (c, s, f"{('crm', 'shop', 'mail')[s - 1]}-ev-{i:09d}", k, t, ch, a)
        for i, (c, s, k, t, ch, a) in enumerate(ev, start=1)
    ]
    data.summary.update(
        {
            "humans": humans,
            "records": n,
            "records_by_source": {
                name: int((src == i + 1).sum()) for i, name in enumerate(("crm", "shop", "mail"))
            },
            "humans_in_2_or_3_sources": int(np.isin(pattern, (3, 5, 6, 7)).sum()),
            "family_addresses": FAMILIES,
            "info_addresses": INFO_ADDRESSES,
            "events": len(data.events),
            "review_requests": len(data.requests),
            "seed": seed,
        }
    )
    data.human = human_ids  # type: ignore[attr-defined]
    return data


# --------------------------------------------------------------------------- loading


def _engine(url: str) -> Any:
    from journey.db import make_engine

    return make_engine(url)


def _schema(url: str) -> dict[str, int]:
    """Schema by journey's migrations, the workspace and its three sources."""
    from journey.db import session_scope, upgrade
    from journey.workspaces import ensure_source, ensure_workspace

    engine = _engine(url)
    upgrade(engine)
    ids = {}
    with session_scope(engine) as session:
        ensure_workspace(session, WS, "People benchmark")
        for kind, name in (("csv", "crm"), ("csv", "shop"), ("csv", "mail")):
            source = ensure_source(session, WS, kind, name)
            assert source.id is not None
            ids[name] = source.id
    engine.dispose()
    return ids


def _rows(data: Data, sources: dict[str, int]) -> dict[str, Iterator[tuple[Any, ...]]]:
    sid = {1: sources["crm"], 2: sources["shop"], 3: sources["mail"]}
    return {
        "customer (id, workspace_id, source_id, external_id, name, email, first_seen, channel)": (
            (i, WS, sid[s], ext, name, email, fs, ch)
            for i, s, ext, name, email, fs, ch in data.customers
        ),
        "journey_event (workspace_id, customer_id, source_id, external_id, kind, occurred_at, "
        "channel, amount_cents)": (
            (WS, c, sid[s], ext, k, t, ch, a) for c, s, ext, k, t, ch, a in data.events
        ),
        "review_request (workspace_id, customer_id, asked_at, status, via, asked_by)": (
            (WS, c, t, "asked", "email", "bench") for c, t in data.requests
        ),
    }


def load_sqlite(data: Data, path: Path) -> float:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    sources = _schema(f"sqlite:///{path}")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    for table, rows in _rows(data, sources).items():
        marks = ", ".join("?" * len(table.split("(")[1].split(",")))
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
        conn.execute("COMMIT")
        _log(f"sqlite: {table.split()[0]} loaded")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return round(time.perf_counter() - t, 1)


def load_postgres(data: Data, url: str) -> float:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    t = time.perf_counter()
    sources = _schema(url)
    engine = _engine(url)
    raw = engine.raw_connection()
    pg = raw.driver_connection
    with pg.cursor() as cur:
        cur.execute("SET session_replication_role = replica")
        for table, rows in _rows(data, sources).items():
            with cur.copy(f"COPY {table} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            _log(f"postgresql: {table.split()[0]} loaded")
        for table in ("customer", "journey_event", "review_request"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
            )
    pg.commit()
    pg.autocommit = True
    with pg.cursor() as cur:
        for table in ("customer", "journey_event", "review_request"):
            cur.execute(f"VACUUM ANALYZE {table}")
    raw.close()
    engine.dispose()
    return round(time.perf_counter() - t, 1)


# --------------------------------------------------------------------------- runs


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    result = fn()
    return round(time.perf_counter() - t, 3), result


def _cpu(session: Any | None) -> float:
    """CPU seconds used so far by this process and, on PostgreSQL, by the session's
    server process: on a machine shared by many, wall time mostly measures the others."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    own = usage.ru_utime + usage.ru_stime
    if session is None or session.get_bind().dialect.name != "postgresql":
        return own
    from sqlalchemy import text

    pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return own + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measured(fn: Callable[[], Any], session: Any) -> tuple[float, float, Any]:
    """Wall seconds, CPU seconds (see _cpu; PostgreSQL's parallel workers not counted)."""
    c = _cpu(session)
    t, result = _timed(fn)
    return t, round(_cpu(session) - c, 3), result


def _analyze(session: Any) -> None:
    from sqlalchemy import text

    if session.get_bind().dialect.name == "postgresql":
        for table in ("customer", "journey_event", "customer_journey"):
            session.execute(text(f"ANALYZE {table}"))


def run_build(url: str, has_people: bool) -> dict[str, Any]:
    """People from scratch, then the full journey-state rebuild."""
    from sqlalchemy import text

    from journey.db import session_scope
    from journey.state import refresh_journeys

    engine = _engine(url)
    out: dict[str, Any] = {"load_before": _load_avg()}
    with session_scope(engine) as session:
        session.execute(text("DELETE FROM customer_journey WHERE workspace_id = :ws"), {"ws": WS})
        if has_people:
            session.execute(
                text(
                    "UPDATE customer SET person_id = NULL, email_key = NULL, link_rule = NULL, "
                    "link_value = NULL WHERE workspace_id = :ws"
                ),
                {"ws": WS},
            )
    with session_scope(engine) as session:
        _analyze(session)
    if has_people:
        from journey.people import build_people

        with session_scope(engine) as session:
            out["build_people_s"], out["build_people_cpu_s"], _ = _measured(
                lambda: build_people(session, WS), session
            )
            _log(f"build_people: {out['build_people_s']} s, CPU {out['build_people_cpu_s']} s")
        with session_scope(engine) as session:
            row = session.execute(
                text(
                    "SELECT COUNT(*), COUNT(DISTINCT person_id), "
                    "SUM(CASE WHEN link_rule = 'conflict' THEN 1 ELSE 0 END) "
                    "FROM customer WHERE workspace_id = :ws"
                ),
                {"ws": WS},
            ).one()
            out["records"], out["people"], out["conflict_records"] = (int(x or 0) for x in row)
            _analyze(session)
    with session_scope(engine) as session:
        # As a change of stage model rebuilds it (the people were just built above).
        kwargs = {"relink_people": False} if has_people else {}
        out["state_rebuild_s"], out["state_rebuild_cpu_s"], _ = _measured(
            lambda: refresh_journeys(session, WS, **kwargs), session
        )
    _log(f"full refresh_journeys: {out['state_rebuild_s']} s, CPU {out['state_rebuild_cpu_s']} s")
    with session_scope(engine) as session:
        _analyze(session)
    out["load_after"] = _load_avg()
    engine.dispose()
    return out


def _changes(session: Any) -> tuple[int, list[Any], dict[str, int]]:
    """1,000 shop records: 900 renamed, 100 moved to the address of a CRM-only human."""
    from sqlalchemy import text

    from journey.ingest import CustomerRecord

    shop = session.execute(
        text("SELECT id FROM source WHERE workspace_id = :ws AND name = 'shop'"), {"ws": WS}
    ).scalar_one()
    rows = session.execute(
        text(
            "SELECT external_id, name, email, id FROM customer WHERE workspace_id = :ws "
            "AND source_id = :s AND email LIKE 'person%' ORDER BY id"
        ),
        {"ws": WS, "s": shop},
    ).all()
    step = max(1, len(rows) // CHANGED)
    picked = rows[::step][:CHANGED]
    # CRM records whose person is that record alone (a human only the CRM knows).
    targets = session.execute(
        text(
            "SELECT c.email, c.person_id FROM customer c JOIN source s ON s.id = c.source_id "
            "WHERE c.workspace_id = :ws AND s.name = 'crm' AND c.email LIKE 'person%' "
            "AND c.link_rule IS NULL ORDER BY c.id"
        ),
        {"ws": WS},
    ).all()
    t_step = max(1, len(targets) // MOVED)
    moved_to = targets[::t_step][:MOVED]
    records = []
    expect: dict[str, int] = {}
    for i, (ext, name, email, cid) in enumerate(picked):
        if i % (CHANGED // MOVED) == 0 and moved_to:
            new_email, person = moved_to.pop()
            records.append(CustomerRecord(ext, name=name, email=new_email))
            expect[ext] = min(int(person), int(cid))  # a person is its smallest record id
        else:
            records.append(CustomerRecord(ext, name=f"{name} (renamed)", email=email))
    return int(shop), records, expect


def run_relink(url: str, runs: int) -> dict[str, Any]:
    """A sync of 1,000 changed records: upsert, relink + state refresh; rolled back."""
    from sqlalchemy import text
    from sqlmodel import Session

    from journey.ingest import Ingestor
    from journey.people import relink
    from journey.state import refresh_journeys

    engine = _engine(url)
    upserts, refreshes, relinks, checks = [], [], [], []
    cpus: list[tuple[float, float]] = []
    for _ in range(runs):
        with Session(engine) as session:
            shop, records, expect = _changes(session)
            ingest = Ingestor(session, WS, shop)
            up, stats = _timed(lambda: ingest.customers(records, fields={"name", "email"}))  # noqa: B023
            touched = set(stats.touched_customers)
            ref, ref_cpu, _ = _measured(lambda: refresh_journeys(session, WS, touched), session)  # noqa: B023
            moved = session.execute(
                text(
                    "SELECT external_id, person_id FROM customer WHERE workspace_id = :ws AND source_id = :s"
                ),
                {"ws": WS, "s": shop},
            ).all()
            person = {str(e): int(p) for e, p in moved if str(e) in expect}
            checks.append(person == expect and len(touched) == CHANGED)
            session.rollback()
        with Session(engine) as session:
            shop, records, _expect = _changes(session)
            ingest = Ingestor(session, WS, shop)
            stats = ingest.customers(records, fields={"name", "email"})
            rl, rl_cpu, persons = _measured(
                lambda: relink(session, WS, stats.touched_customers),  # noqa: B023
                session,
            )
            session.rollback()
        upserts.append(up)
        refreshes.append(ref)
        relinks.append(rl)
        cpus.append((rl_cpu, ref_cpu))
        _log(
            f"relink run: upsert {up} s, relink {rl} s (CPU {rl_cpu}), "
            f"relink + state refresh {ref} s (CPU {ref_cpu})"
        )
    engine.dispose()
    return {
        "load": _load_avg(),
        "changed": CHANGED,
        "moved": MOVED,
        "persons_refreshed": len(persons),
        "correct": all(checks),
        "upsert_s": upserts,
        "relink_s": relinks,
        "relink_and_state_s": refreshes,
        "cpu_s": cpus,
        "median_relink_s": statistics.median(relinks),
        "median_relink_and_state_s": statistics.median(refreshes),
    }


def _reports() -> dict[str, Callable[[Any], Any]]:
    from journey.metrics.churn import churn_report
    from journey.metrics.funnel import funnel_report
    from journey.metrics.retention import retention_report
    from journey.metrics.reviews import review_report
    from journey.metrics.value import value_report
    from journey.periods import Period, parse_period

    now = END - timedelta(seconds=1)
    p30, p90, year = (parse_period(p, now) for p in ("30d", "90d", "365d"))
    two_years = Period(END - timedelta(days=732), END, "2y")
    return {
        "funnel 30d": lambda s: funnel_report(s, WS, p30),
        "funnel year": lambda s: funnel_report(s, WS, year),
        "retention 90d": lambda s: retention_report(s, WS, p90, now=now),
        "churn 90d": lambda s: churn_report(s, WS, p90, now=now),
        "reviews 90d": lambda s: review_report(s, WS, p90, now=now),
        "value 2y": lambda s: value_report(s, WS, two_years, now=END),
    }


def run_reports(url: str, runs: int) -> dict[str, Any]:
    from sqlmodel import Session

    engine = _engine(url)
    out: dict[str, Any] = {"load_before": _load_avg(), "cases": {}}
    for name, report in _reports().items():
        engine.dispose()
        times: list[float] = []
        cpus: list[float] = []
        for i in range(runs + 1):
            with Session(engine) as session:
                t, c, result = _measured(lambda: report(session), session)  # noqa: B023
            times.append(t)
            cpus.append(c)
            if i == 0 and t > 20:
                break
        warm = times[1:] or times
        out["cases"][name] = {
            "first": times[0],
            "median": statistics.median(warm),
            "runs": warm,
            "median_cpu": statistics.median(cpus[1:] or cpus),
        }
        headline = getattr(result, "entered", None) or getattr(result, "cohort", None)
        _log(
            f"{name}: first {times[0]} s, median {statistics.median(warm)} s, "
            f"CPU {statistics.median(cpus[1:] or cpus)} s ({headline})"
        )
    out["load_after"] = _load_avg()
    engine.dispose()
    return out


def machine() -> dict[str, str]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version, "commit": commit}


_RESULTS = [RESULTS]


def _save(key: list[str], value: Any) -> None:
    path = _RESULTS[0]
    record = json.loads(path.read_text()) if path.exists() else {}
    node = record
    for k in key[:-1]:
        node = node.setdefault(k, {})
    node[key[-1]] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("generate", "run"))
    parser.add_argument("--humans", type=int, default=650_000)
    parser.add_argument("--sqlite", action="store_true", help="only SQLite (default: both)")
    parser.add_argument("--postgres", action="store_true", help="only PostgreSQL (default: both)")
    parser.add_argument("--sqlite-path", type=Path, default=SQLITE_PATH)
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--label", default="after", help="where results go in people.json")
    parser.add_argument("--journey-path", help="another checkout of journey to run with")
    parser.add_argument("--only", default="build,relink,reports")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON file to add to")
    args = parser.parse_args(argv)
    if args.journey_path:
        sys.path.insert(0, args.journey_path)
    _RESULTS[0] = args.results
    both = not (args.sqlite or args.postgres)
    dbs = {}
    if both or args.sqlite:
        dbs["sqlite"] = f"sqlite:///{args.sqlite_path}"
    if both or args.postgres:
        dbs["postgresql"] = args.postgres_url
    if args.command == "generate":
        t, data = _timed(lambda: generate(args.humans))
        _log(f"generated in {t} s: {json.dumps(data.summary)}")
        _save(["dataset"], data.summary)
        for db in dbs:
            secs = (
                load_sqlite(data, args.sqlite_path)
                if db == "sqlite"
                else load_postgres(data, args.postgres_url)
            )
            _log(f"{db} loaded in {secs} s")
            _save(["load", db], {"seconds": secs, "load_avg": _load_avg()})
        return 0
    import journey

    try:
        import journey.people  # absent before people existed

        has_people = True
    except ImportError:
        has_people = False
    where = str(Path(journey.__file__).parent)
    _log(f"journey from {where}")
    steps = args.only.split(",")
    if has_people:  # the store as this journey expects it (columns added since it was made)
        from journey.db import upgrade

        for url in dbs.values():
            engine = _engine(url)
            upgrade(engine)
            engine.dispose()
    for db, url in dbs.items():
        key = [args.label, db]
        _save([*key, "machine"], {**machine(), "journey": where})
        if "build" in steps:
            _save([*key, "build"], run_build(url, has_people))
        if "relink" in steps and has_people:
            _save([*key, "relink"], run_relink(url, args.runs))
        if "reports" in steps:
            _save([*key, "reports"], run_reports(url, args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
