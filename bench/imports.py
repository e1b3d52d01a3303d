"""Benchmark `journey import` on a Shopify orders export, beside a plain bulk load.

    .venv/bin/python -m bench.imports generate --lines 1000000     # bench/data/shopify_orders_1M.csv
    .venv/bin/python -m bench.imports run --lines 1000000 --sqlite  # first import, re-import, ceiling
    .venv/bin/python -m bench.imports run --lines 1000000 --postgres

Why it is built this way:

- The file is a Shopify orders export as Shopify writes it (journey/imports/
  shopify_orders.py): the full header, one line per line item (1 to 4 per
  order), the order's columns on its first line only, a year of orders from
  customers who come back, refunds, partial refunds, cancellations, pending,
  voided and test orders, guests without email; 60 % of orders come from a new
  customer, the rest from one who bought before. Fixed seed: every run is the
  same file.
- Each measurement runs in a fresh process so its peak memory (ru_maxrss) is
  its own: the first import into an empty database, the re-import of the same
  file (nothing changed), and the ceiling: the same orders, customers and
  events written with one executemany per table, no checks, no journey state,
  from rows already parsed by the csv module (what a hand-written loader would do).
- journey's import is measured as a user runs it: `import_csv` with a commit
  per batch (the CLI's path), the journey state of every customer refreshed
  (once, at the end, committed in steps).
- The machine is shared: each measurement records the load average before and
  after it, and the ceiling is measured in the same run, so the two compare.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

DATA_DIR = Path(__file__).resolve().parent / "data"
RESULTS = DATA_DIR / "imports.json"
WORKSPACE = "bench_import"
SQLITE_URL = f"sqlite:///{DATA_DIR / 'imports.db'}"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/journey_bench_import"

HEADER = [
    "Name",
    "Email",
    "Financial Status",
    "Paid at",
    "Fulfillment Status",
    "Fulfilled at",
    "Accepts Marketing",
    "Currency",
    "Subtotal",
    "Shipping",
    "Taxes",
    "Total",
    "Discount Code",
    "Discount Amount",
    "Shipping Method",
    "Created at",
    "Lineitem quantity",
    "Lineitem name",
    "Lineitem price",
    "Lineitem compare at price",
    "Lineitem sku",
    "Lineitem requires shipping",
    "Lineitem taxable",
    "Lineitem fulfillment status",
    "Billing Name",
    "Billing Street",
    "Billing Address1",
    "Billing Address2",
    "Billing Company",
    "Billing City",
    "Billing Zip",
    "Billing Province",
    "Billing Country",
    "Billing Phone",
    "Shipping Name",
    "Shipping Street",
    "Shipping Address1",
    "Shipping Address2",
    "Shipping Company",
    "Shipping City",
    "Shipping Zip",
    "Shipping Province",
    "Shipping Country",
    "Shipping Phone",
    "Notes",
    "Note Attributes",
    "Cancelled at",
    "Payment Method",
    "Payment Reference",
    "Refunded Amount",
    "Vendor",
    "Outstanding Balance",
    "Employee",
    "Location",
    "Device ID",
    "Id",
    "Tags",
    "Risk Level",
    "Source",
    "Lineitem discount",
    "Tax 1 Name",
    "Tax 1 Value",
    "Tax 2 Name",
    "Tax 2 Value",
    "Tax 3 Name",
    "Tax 3 Value",
    "Tax 4 Name",
    "Tax 4 Value",
    "Tax 5 Name",
    "Tax 5 Value",
    "Phone",
    "Receipt Number",
    "Duties",
    "Billing Province Name",
    "Shipping Province Name",
    "Payment ID",
    "Payment Terms Name",
    "Next Payment Due At",
    "Payment References",
]
START = datetime(2025, 11, 1, tzinfo=UTC)
ITEMS = [("Dog food 5kg", 42.5), ("Leash", 18.0), ("Collar", 24.0), ("Bed", 65.0), ("Toy", 9.5)]


def data_file(lines: int) -> Path:
    label = f"{lines // 1_000_000}M" if lines % 1_000_000 == 0 else f"{lines // 1000}k"
    return DATA_DIR / f"shopify_orders_{label}.csv"


def generate(lines: int) -> Path:
    """Write the export: about `lines` lines (line items), ~2.3 per order."""
    rng = random.Random(20261208)
    path = data_file(lines)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    next_customer = 0
    index = {h: i for i, h in enumerate(HEADER)}
    written = 0
    number = 1000
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("\ufeff")
        out = csv.writer(handle, lineterminator="\r\n")
        out.writerow(HEADER)
        while written < lines:
            number += 1
            # 60 % of orders from a new customer, the rest from one who bought before.
            if next_customer == 0 or rng.random() < 0.6:
                who, next_customer = next_customer, next_customer + 1
            else:
                who = rng.randrange(next_customer)
            guest = rng.random() < 0.02
            email = "" if guest else f"customer{who}@example.com"
            when = START + timedelta(seconds=rng.randrange(365 * 86400))
            stamp = when.strftime("%Y-%m-%d %H:%M:%S +0000")
            count = min(1 + int(rng.expovariate(0.8)), 4, lines - written)
            items = [ITEMS[rng.randrange(len(ITEMS))] for _ in range(count)]
            total = sum(price for _, price in items)
            roll = rng.random()
            status, refunded, cancelled, method = "paid", 0.0, "", "Shopify Payments"
            if roll < 0.03:
                status, refunded = "refunded", total
            elif roll < 0.05:
                status, refunded = "partially_refunded", round(total / 2, 2)
            elif roll < 0.06:
                status, refunded, cancelled = "refunded", total, stamp
            elif roll < 0.09:
                status = "pending"
            elif roll < 0.11:
                status = "voided"
            elif roll < 0.115:
                method = "bogus"
            for i, (name, price) in enumerate(items):
                row = [""] * len(HEADER)
                row[index["Name"]] = f"#{number}"
                row[index["Email"]] = email
                row[index["Lineitem quantity"]] = "1"
                row[index["Lineitem name"]] = name
                row[index["Lineitem price"]] = f"{price:.2f}"
                row[index["Lineitem sku"]] = name[:3].upper()
                row[index["Lineitem requires shipping"]] = "true"
                row[index["Lineitem taxable"]] = "true"
                if i == 0:
                    for column, value in (
                        ("Financial Status", status),
                        ("Paid at", stamp if status != "pending" else ""),
                        ("Fulfillment Status", "fulfilled"),
                        ("Accepts Marketing", "no"),
                        ("Currency", "USD"),
                        ("Subtotal", f"{total:.2f}"),
                        ("Shipping", "0.00"),
                        ("Taxes", "0.00"),
                        ("Total", f"{total:,.2f}"),
                        ("Discount Amount", "0.00"),
                        ("Created at", stamp),
                        ("Billing Name", f"Customer {who}"),
                        ("Billing Street", "1 Main St, Apt 2"),
                        ("Billing City", "Springfield"),
                        ("Billing Country", "US"),
                        ("Cancelled at", cancelled),
                        ("Payment Method", method),
                        ("Refunded Amount", f"{refunded:.2f}"),
                        ("Outstanding Balance", "0.00"),
                        ("Id", str(5_000_000_000 + number)),
                        ("Risk Level", "Low"),
                        ("Source", "web"),
                    ):
                        row[index[column]] = value
                out.writerow(row)
                written += 1
    return path


def _engine_url(database: str) -> str:
    return SQLITE_URL if database == "sqlite" else POSTGRES_URL


def _reset(database: str) -> None:
    from journey.db import make_engine, upgrade

    if database == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(str(DATA_DIR / "imports.db") + suffix).unlink(missing_ok=True)
    else:
        admin = create_engine(
            "postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS journey_bench_import WITH (FORCE)"))
            conn.execute(text("CREATE DATABASE journey_bench_import"))
        admin.dispose()
    upgrade(make_engine(_engine_url(database)))


def _journey_import(database: str, path: Path) -> dict[str, Any]:
    from journey.db import make_engine, session_scope
    from journey.imports import import_csv
    from journey.workspaces import ensure_workspace

    engine = make_engine(_engine_url(database))
    started = time.perf_counter()
    # Each batch's transaction runs from one commit to the next: SQLite's write lock
    # is held at most that long (it is taken at the batch's first write).
    spans: list[float] = []
    with session_scope(engine) as session:
        ensure_workspace(session, WORKSPACE)
        session.commit()
        last = time.perf_counter()

        def commit() -> None:
            nonlocal last
            session.commit()
            now = time.perf_counter()
            spans.append(now - last)
            last = now

        result = import_csv(session, WORKSPACE, path, commit=commit)
    seconds = time.perf_counter() - started
    # spans[0] ends the caller's transaction (ensure_workspace); spans[1] is the check
    # pass, which holds no transaction open; from spans[2] on, each span is one batch
    # (or one step of the final state refresh) from its first statement to its commit.
    write_spans = spans[2:] if len(spans) > 2 else spans
    assert result.ok, result.errors[:3]
    return {
        "seconds": seconds,
        "lines": result.lines,
        "orders_rows": result.rows,
        "inserted": result.inserted,
        "unchanged": result.unchanged,
        "orders": result.tally.kinds["order"],
        "buyers": result.tally.buyers,
        "batches": len(spans),
        "batch_max_s": max(write_spans, default=0.0),
        "batch_median_s": sorted(write_spans)[len(write_spans) // 2] if write_spans else 0.0,
    }


def _bulk_load(database: str, path: Path) -> dict[str, Any]:
    """The ceiling: the same customers and events, parsed with the csv module and
    written with one executemany per table (no checks, no journey state)."""
    from journey.db import make_engine, session_scope
    from journey.models.types import to_epoch
    from journey.workspaces import ensure_source, ensure_workspace

    engine = make_engine(_engine_url(database))
    started = time.perf_counter()
    with session_scope(engine) as session:
        ensure_workspace(session, WORKSPACE)
        source = ensure_source(session, WORKSPACE, "csv", "bulk")
    customers: dict[str, int] = {}
    events: list[dict[str, Any]] = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        col = {h: i for i, h in enumerate(header)}
        previous = None
        for row in reader:
            name = row[col["Name"]]
            if name == previous:
                continue
            previous = name
            status = row[col["Financial Status"]]
            if status in ("pending", "voided") or row[col["Payment Method"]] == "bogus":
                continue
            email = row[col["Email"]] or f"guest:{name}"
            customer = customers.setdefault(email, len(customers) + 1)
            when = to_epoch(datetime.strptime(row[col["Created at"]], "%Y-%m-%d %H:%M:%S %z"))
            total = round(float(row[col["Total"]].replace(",", "")) * 100)
            events.append((name, customer, "order", when, total))
            refunded = round(float(row[col["Refunded Amount"]] or 0) * 100)
            if refunded:
                events.append((f"{name}:refund", customer, "refund", when, refunded))
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO customer (id, workspace_id, source_id, external_id) "
                "VALUES (:id, :ws, :source, :external)"
            ),
            [
                {"id": i, "ws": WORKSPACE, "source": source.id, "external": e}
                for e, i in customers.items()
            ],
        )
        conn.execute(
            text(
                "INSERT INTO journey_event (workspace_id, source_id, external_id, customer_id, "
                "kind, occurred_at, amount_cents) VALUES (:ws, :source, :e, :c, :k, :t, :a)"
            ),
            [
                {"ws": WORKSPACE, "source": source.id, "e": e, "c": c, "k": k, "t": t, "a": a}
                for e, c, k, t, a in events
            ],
        )
    return {"seconds": time.perf_counter() - started, "events": len(events)}


def _measure(step: str, database: str, path: str) -> None:
    """One measurement in this process; prints JSON with its peak memory."""
    if step == "reset":
        _reset(database)
        print(json.dumps({}))
        return
    run = {"import": _journey_import, "bulk": _bulk_load}[step]
    load_before = os.getloadavg()[0]
    result = run(database, Path(path))
    result["load"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["peak_mb"] = usage.ru_maxrss / 1024
    # This process's CPU (parsing, Python, and SQLite, which runs in-process; not the
    # PostgreSQL server's): less sensitive than wall time to the machine's load.
    result["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 1)
    print(json.dumps(result))


def _child(step: str, database: str, path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.imports", "_measure", step, database, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(lines: int, databases: list[str]) -> dict[str, Any]:
    path = data_file(lines)
    if not path.exists():
        generate(lines)
    results: dict[str, Any] = {
        "file": path.name,
        "lines": lines,
        "bytes": path.stat().st_size,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    for database in databases:
        _child("reset", database, path)
        first = _child("import", database, path)
        again = _child("import", database, path)
        _child("reset", database, path)
        bulk = _child("bulk", database, path)
        results[database] = {"first": first, "again": again, "bulk": bulk}
        for label, value in (("first import", first), ("re-import", again), ("bulk load", bulk)):
            rate = lines / value["seconds"]
            print(
                f"{database}: {label}: {value['seconds']:.1f} s, {rate:,.0f} lines/s, "
                f"peak {value['peak_mb']:.0f} MB, load {value['load'][0]}-{value['load'][1]}"
            )
    stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    stored[path.name] = {**stored.get(path.name, {}), **results}
    RESULTS.write_text(json.dumps(stored, indent=2))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.imports")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate")
    gen.add_argument("--lines", type=int, default=1_000_000)
    go = sub.add_parser("run")
    go.add_argument("--lines", type=int, default=1_000_000)
    go.add_argument("--sqlite", action="store_true")
    go.add_argument("--postgres", action="store_true")
    measure = sub.add_parser("_measure")
    measure.add_argument("step")
    measure.add_argument("database")
    measure.add_argument("path")
    args = parser.parse_args()
    if args.command == "generate":
        print(generate(args.lines))
    elif args.command == "_measure":
        _measure(args.step, args.database, args.path)
    else:
        databases = [d for d, on in (("sqlite", args.sqlite), ("postgresql", args.postgres)) if on]
        run(args.lines, databases or ["sqlite", "postgresql"])


if __name__ == "__main__":
    main()
