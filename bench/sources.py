"""Benchmark the Shopify connector against the fake Shopify (tests/fakes/shopify_api.py).

    .venv/bin/python -m bench.sources                     # all three, 1M orders in bulk
    .venv/bin/python -m bench.sources --bulk-orders 100000 --paged-orders 300
    .venv/bin/python -m bench.sources --only bulk         # or: paged

What it measures, and why this way:

- bulk: a first sync of `--bulk-orders` orders (and a third as many customers, a tenth
  as many abandoned checkouts) through bulk operations, with journey.sync into a
  fresh SQLite database (PostgreSQL with --postgres-url): wall time and the sync
  process's peak RSS (ru_maxrss). The fake runs in a child process, so its memory
  and the time it takes to make the JSONL files (made before the clock starts,
  as Shopify makes them before the URL is given) are not counted. The target is
  peak memory under 300 MB for 1M orders: memory must stay flat as the file grows.
- paged: an incremental sync of `--paged-orders` orders through pages against the
  fake's bucket at Shopify's standard documented limit (1,000 points, 50 a second):
  points actually spent per second as a share of the restore rate (after the
  initial full bucket is used up, which is a burst, not a sustained rate), and the
  THROTTLED answers (the target is none: requests are paced from throttleStatus).
- re-sync: the same store synced again with nothing new: queries and points.

Results go to bench/data/sources.json (gitignored) and are printed as markdown.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import random
import resource
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from sqlmodel import Session

from journey.db import make_engine, upgrade
from journey.secrets import Cipher
from journey.sources.manage import Credential, add_source
from journey.sources.shopify import ShopifyConnector
from journey.sources.shopify.bulk import Poller
from journey.sync import sync_source
from tests.fakes.shopify_api import TOKEN  # the fake's test token, kept in one place

DATA_DIR = Path(__file__).resolve().parent / "data"
START = 1735689600  # 2025-01-01
MONEY = '{{"shopMoney":{{"amount":"{a}","currencyCode":"EUR"}}}}'


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def write_files(folder: Path, orders: int, seed: int = 5) -> dict[str, tuple[Path, int]]:
    """JSONL files with exactly the fields of the connector's bulk queries."""
    rng = random.Random(seed)
    customers = max(1, orders // 3)
    checkouts = max(1, orders // 10)
    files: dict[str, tuple[Path, int]] = {}
    path = folder / "customers.jsonl"
    with path.open("w") as out:
        for n in range(1, customers + 1):
            at = _iso(START + n * 30)
            out.write(
                f'{{"id":"gid://shopify/Customer/{n}","createdAt":"{at}","updatedAt":"{at}",'
                f'"firstName":"First{n}","lastName":"Last","defaultEmailAddress":'
                f'{{"emailAddress":"c{n}@example.com"}}}}\n'
            )
    files["customers"] = (path, customers)
    path = folder / "orders.jsonl"
    sources = ["google", "facebook", "direct", "newsletter", "instagram"]
    seen: set[int] = set()
    with path.open("w") as out:
        for n in range(1, orders + 1):
            cid = rng.randrange(1, customers + 1)
            index = 1 if cid not in seen else 2
            seen.add(cid)
            at = START + n * 25
            amount = f"{rng.randrange(5, 400)}.{rng.randrange(100):02d}"
            src = rng.choice(sources)
            visit = (
                f'{{"occurredAt":"{_iso(at - 86400)}","source":"{src}","sourceType":null,'
                f'"utmParameters":{{"source":"{src}","medium":"cpc","campaign":"c","content":null,'
                f'"term":null}}}}'
            )
            refunds = ""
            if rng.random() < 0.05:
                refunds = (
                    f'{{"id":"gid://shopify/Refund/{n}","createdAt":"{_iso(at + 86400)}",'
                    f'"totalRefundedSet":{MONEY.format(a="5.00")}}}'
                )
            out.write(
                f'{{"id":"gid://shopify/Order/{n}","createdAt":"{_iso(at)}","updatedAt":'
                f'"{_iso(at)}","processedAt":"{_iso(at)}","cancelledAt":null,"test":false,'
                f'"email":null,"displayFinancialStatus":"PAID","totalPriceSet":'
                f'{MONEY.format(a=amount)},"customer":{{"id":"gid://shopify/Customer/{cid}"}},'
                f'"refunds":[{refunds}],"customerJourneySummary":{{"ready":true,'
                f'"customerOrderIndex":{index},"daysToConversion":1,"firstVisit":{visit},'
                f'"lastVisit":{visit}}}}}\n'
            )
    files["orders"] = (path, orders)
    path = folder / "checkouts.jsonl"
    with path.open("w") as out:
        for n in range(1, checkouts + 1):
            at = _iso(START + n * 200)
            cid = rng.randrange(1, customers + 1)
            out.write(
                f'{{"id":"gid://shopify/AbandonedCheckout/{n}","createdAt":"{at}","updatedAt":'
                f'"{at}","completedAt":null,"customer":{{"id":"gid://shopify/Customer/{cid}"}},'
                f'"totalPriceSet":{MONEY.format(a="20.00")}}}\n'
            )
    files["abandonedCheckouts"] = (path, checkouts)
    return files


def _serve(orders: int, folder: str, ready: Any, stop: Any) -> None:
    """The fake Shopify in a child process (its memory is not the sync's)."""
    from tests.fakes.shopify_api import FakeShopify

    files = write_files(Path(folder), orders)
    with FakeShopify(maximum=1e9, restore_rate=1e9, bulk_files=files, bulk_polls=2) as fake:
        ready.put(fake.url)
        stop.wait()


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class MemorySampler(threading.Thread):
    """Peak of the process's anonymous memory (RssAnon: the Python heap, buffers) and of its
    file-backed memory (RssFile: SQLite maps its database file, mmap_size=1 GB, so those
    pages grow with the database, not with the sync), sampled every 50 ms on Linux."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_anon = self.peak_file = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        status = Path("/proc/self/status")
        while not self.done.wait(0.05):
            if not status.exists():
                return
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
            )
            for key, attr in (("RssAnon", "peak_anon"), ("RssFile", "peak_file")):
                if key in fields:
                    mb = int(fields[key].split()[0]) / 1024
                    setattr(self, attr, max(getattr(self, attr), mb))


def read_only(made: ShopifyConnector) -> tuple[int, int]:
    """Every resource through the connector and its mapping, written nowhere: the
    connector's own time and memory, without a database's."""
    pages = records = 0
    for res in made.resources:
        for page in made.fetch(res, None):
            pages += 1
            records += len(made.to_records(res, page.records))
    return pages, records


def bench_bulk(orders: int, db_url: str | None, sink: str = "db") -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    with tempfile.TemporaryDirectory(prefix="bench-shopify-") as folder:
        child = ctx.Process(target=_serve, args=(orders, folder, ready, stop), daemon=True)
        child.start()
        url = ready.get(timeout=3600)
        engine = make_engine(db_url or f"sqlite:///{Path(folder) / 'bench.db'}")
        upgrade(engine)
        cipher = Cipher([Cipher.generate_key()])
        with Session(engine) as session:
            source, _ = add_source(
                session, "bench-shopify", "shopify", "shop",
                Credential(TOKEN, {"shop": "bench"}, url),
                cipher,
            )  # fmt: skip
            session.commit()
            source_id = int(source.id or 0)
        before = rss_mb()
        made = ShopifyConnector(
            TOKEN, {"shop": "bench"}, base_url=url,
            bulk="always", poll=Poller(0.5, 2.0),
        )  # fmt: skip
        sampler = MemorySampler()
        sampler.start()
        started = time.perf_counter()
        if sink == "none":
            _, mapped = read_only(made)
            read, inserted = mapped, 0
        else:
            result = sync_source(engine, source_id, cipher=cipher, connector=made)
            assert result.ok, result.error
            read, inserted = result.fetched, result.inserted
        elapsed = time.perf_counter() - started
        sampler.done.set()
        stop.set()
        child.join(10)
        engine.dispose()
    return {
        "orders": orders,
        "sink": sink,
        "records_read": read,
        "rows_inserted": inserted,
        "seconds": round(elapsed, 1),
        "orders_per_second": round(orders / elapsed),
        "peak_rss_mb": round(rss_mb(), 1),
        "peak_rss_anon_mb": round(sampler.peak_anon, 1),
        "peak_rss_file_mb": round(sampler.peak_file, 1),
        "rss_before_mb": round(before, 1),
        "database": "postgresql" if db_url else "sqlite",
    }


def bench_paged(orders: int) -> dict[str, Any]:
    from tests.fakes.shopify_api import FakeShopify

    engine = make_engine("sqlite://")
    upgrade(engine)
    cipher = Cipher([Cipher.generate_key()])
    rng = random.Random(3)
    with FakeShopify(maximum=1000.0, restore_rate=50.0) as fake:
        now = int(time.time())
        for n in range(orders):  # one order a minute before now, its customer a day earlier
            at = now - (orders - n) * 60 - 600
            cus = fake.add_customer(at - 86400, first=f"F{n}", last="L", email=f"p{n}@x.io")
            visit = fake.visit(at - 7200, "google", utm_source="google")
            fake.add_order(
                at, f"{rng.randrange(5, 300)}.00", customer=cus, first_visit=visit,
                last_visit=visit, order_index=1,
            )  # fmt: skip
        with Session(engine) as session:
            source, _ = add_source(
                session, "bench-shopify", "shopify", "shop",
                Credential(TOKEN, {"shop": "bench"}, fake.url),
                cipher,
            )  # fmt: skip
            session.commit()
            source_id = int(source.id or 0)

        def sync() -> tuple[Any, ShopifyConnector, float]:
            made = ShopifyConnector(
                TOKEN, {"shop": "bench"}, base_url=fake.url,
                bulk="never",
            )  # fmt: skip
            started = time.perf_counter()
            result = sync_source(engine, source_id, cipher=cipher, connector=made)
            return result, made, time.perf_counter() - started

        result, made, elapsed = sync()
        assert result.ok, result.error
        refused = sum(1 for c in fake.calls if c.status != 200)
        sustained = (made.bucket.spent - fake.maximum) / elapsed
        first = {
            "orders": orders,
            "customers": orders,
            "seconds": round(elapsed, 1),
            "queries": made.queries,
            "points_spent": round(made.bucket.spent),
            "orders_per_second": round(orders / elapsed, 2),
            "throughput_share_of_restore_rate": round(sustained / fake.restore_rate, 3),
            "raw_share_including_initial_bucket": round(
                made.bucket.spent / elapsed / fake.restore_rate, 3
            ),
            "throttled_answers": made.bucket.throttled,
            "non_200_answers": refused,
            "seconds_paced": round(made.bucket.waited, 1),
        }
        again, made2, elapsed2 = sync()
        assert again.ok, again.error
        resync = {
            "queries": made2.queries,
            "points_spent": round(made2.bucket.spent),
            "seconds": round(elapsed2, 2),
            "records_read": again.fetched,
            "rows_changed": again.inserted + again.updated,
        }
    engine.dispose()
    return {"paged": first, "resync": resync}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bulk-orders", type=int, default=1_000_000)
    parser.add_argument("--paged-orders", type=int, default=800)
    parser.add_argument("--only", choices=["bulk", "paged"])
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument(
        "--sink", choices=["db", "none"], default="db",
        help="none: read and map the bulk files without writing them (the connector alone)",
    )  # fmt: skip
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": f"{platform.system()} {platform.machine()}, "
        f"{mp.cpu_count()} cpus, Python {platform.python_version()}"
    }
    if args.only in (None, "paged"):
        results.update(bench_paged(args.paged_orders))
        print(json.dumps({k: results[k] for k in ("paged", "resync")}, indent=2), flush=True)
    if args.only in (None, "bulk"):
        results["bulk"] = bench_bulk(args.bulk_orders, args.postgres_url, args.sink)
        print(json.dumps(results["bulk"], indent=2), flush=True)
    DATA_DIR.mkdir(exist_ok=True)
    (DATA_DIR / "sources.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
