"""A first Shopify sync through bulk operations (journey/sources/shopify/bulk.py) against the
fake Shopify: the JSONL export, kills while the operation runs and while its file is
read, broken and expired downloads, changes made while it ran, and its refusals.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from graphql import parse
from sqlalchemy import delete
from sqlmodel import Session

from journey.models import SyncCursor
from journey.sources.http import RetryPolicy, Unreachable
from journey.sources.shopify.bulk import Poller, stream_lines
from journey.sources.shopify.queries import BULK_RUN, ORDERS
from journey.sync import sync_source
from tests import test_shopify as paged
from tests.fakes.shopify_api import DAY, ENDPOINT, TOKEN, FakeShopify, expected_store
from tests.source_store import Killed, assert_store_equals, kill_after, store
from tests.test_shopify import FAST, PAGES, connector, newest

# the paged tests' fixtures: the same fake shop and source
cipher = paged.cipher
fake = paged.fake
source_id = paged.source_id

BATCH = 10


def run(engine, source_id, cipher, fake, **kwargs: Any):
    options = {"bulk": "always", "bulk_batch": BATCH, **kwargs.pop("connector", {})}
    made = connector(fake, clock=fake.clock, **options)
    return sync_source(engine, source_id, cipher=cipher, connector=made, **kwargs), made


def bulk_runs(fake: FakeShopify) -> list[str]:
    return [c.variables["query"] for c in fake.calls if c.operation == "JourneyBulkRun"]


def downloads(fake: FakeShopify) -> list[Any]:
    return [c for c in fake.calls if c.path.startswith("/bulk-results/")]


def test_a_first_sync_reads_each_list_through_one_bulk_operation(engine, fake, source_id, cipher):
    result, _ = run(engine, source_id, cipher, fake)
    assert result.ok, result.error
    assert_store_equals(engine, source_id, expected_store(fake))
    assert len(bulk_runs(fake)) == 3 and len(downloads(fake)) == 3
    # no page of orders was read before the operation's file: only the pass after it
    assert len(fake.list_calls("orders")) == 1
    assert fake.list_calls("orders")[0].variables["query"].startswith("updated_at:>=")
    # the file came through in batches, one transaction each
    assert result.pages_by_resource["orders"] >= len(fake.orders) // BATCH
    # the signed URL (another host, in Shopify) never got the token
    assert downloads(fake) and not any(c.token_sent for c in downloads(fake))
    again, _ = run(engine, source_id, cipher, fake)  # later syncs are paged
    assert again.ok and len(bulk_runs(fake)) == 3


def test_auto_uses_bulk_only_for_a_large_list(engine, fake, source_id, cipher):
    threshold = len(fake.orders)  # orders reach it; customers and checkouts do not
    result, _ = run(
        engine, source_id, cipher, fake, connector={"bulk": "auto", "bulk_threshold": threshold}
    )
    assert result.ok, result.error
    (query,) = bulk_runs(fake)
    assert parse(query).definitions[0].selection_set.selections[0].name.value == "orders"
    assert_store_equals(engine, source_id, expected_store(fake))


def test_killed_while_the_file_is_read_resumes_at_the_line_it_reached(
    engine, fake, source_id, cipher
):
    def kill_in_orders(resource: str, pages: int, records: int) -> None:
        if resource == "orders" and pages == 3:  # the operation's start, then two batches
            raise Killed

    with pytest.raises(Killed):
        run(engine, source_id, cipher, fake, progress=kill_in_orders)
    with Session(engine) as session:
        saved = json.loads(session.get(SyncCursor, (source_id, "orders")).cursor)
    assert saved["bulk"]["line"] == 2 * BATCH
    result, _ = run(engine, source_id, cipher, fake)
    assert result.ok, result.error
    assert len(bulk_runs(fake)) == 3  # the orders operation was not run again
    orders_file = [c for c in downloads(fake) if c.status == 200]
    assert len(orders_file) == 4  # customers, orders (killed), orders again, checkouts
    assert_store_equals(engine, source_id, expected_store(fake))


def test_killed_while_shopify_runs_the_operation_polls_the_same_one(
    engine, fake, source_id, cipher
):
    fake.bulk_polls = 3
    with pytest.raises(Killed):
        run(engine, source_id, cipher, fake, progress=kill_after(1))  # right after it started
    assert len(bulk_runs(fake)) == 1
    result, _ = run(engine, source_id, cipher, fake)
    assert result.ok, result.error
    assert len(bulk_runs(fake)) == 3
    assert_store_equals(engine, source_id, expected_store(fake))


def test_broken_downloads_are_read_again_without_loss(engine, fake, source_id, cipher):
    fake.fail("truncate", path="/bulk-results/")  # cut mid-line
    fake.fail("drop", path="/bulk-results/")
    fake.fail("500", path="/bulk-results/")
    result, _ = run(engine, source_id, cipher, fake)
    assert result.ok, result.error
    assert [c.fault for c in downloads(fake)][:3] == ["truncate", "drop", "500"]
    assert_store_equals(engine, source_id, expected_store(fake))


def test_an_expired_file_runs_the_operation_again(engine, fake, source_id, cipher):
    with pytest.raises(Killed):
        run(engine, source_id, cipher, fake, progress=kill_after(3))
    fake.expire_bulk()  # a week later: the URL answers 403, the operation says EXPIRED
    fake.bulk_expired = False  # new operations get files again
    result, _ = run(engine, source_id, cipher, fake)
    assert result.ok, result.error
    assert len(bulk_runs(fake)) == 4
    assert_store_equals(engine, source_id, expected_store(fake))


def test_changes_made_while_the_operation_ran_are_read_by_pages(engine, fake, source_id, cipher):
    later = newest(fake) + DAY
    fake.clock = lambda: later
    made: list[str] = []

    def between(f: FakeShopify, root: str, call) -> None:
        pass

    original = fake._bulk_status

    def status(op_id: str):
        op = original(op_id)
        if op and op["status"] == "COMPLETED" and not made:
            # changed after the snapshot was taken: the file lacks it
            order = next(o for o in fake.orders.values() if o["displayFinancialStatus"] == "PAID")
            fake.refund(order, "2.00", later + 1)
            made.append(order["id"])
        return op

    fake._bulk_status = status  # type: ignore[method-assign]
    result, _ = run(engine, source_id, cipher, fake)
    assert result.ok, result.error
    assert made
    assert_store_equals(engine, source_id, expected_store(fake))


def test_a_busy_shop_falls_back_to_pages(engine, fake, source_id, cipher):
    fake.max_bulk = 0  # another app's operation is running
    result, _ = run(engine, source_id, cipher, fake)
    assert result.ok, result.error
    assert downloads(fake) == []
    assert len(fake.list_calls("orders")) > 1
    assert_store_equals(engine, source_id, expected_store(fake))


def test_a_bulk_operation_denied_for_a_scope_pauses_the_source(engine, fake, source_id, cipher):
    fake.tokens[TOKEN] = frozenset({"read_customers"})
    result, _ = run(engine, source_id, cipher, fake)
    assert result.paused, result.error
    assert "access scope" in (result.error or "")
    customers, _ = store(engine, source_id)
    assert len(customers) == len(fake.customers)  # what it could read is kept


def test_the_fake_refuses_an_invalid_bulk_query(fake):
    answer = httpx.post(
        f"{fake.url}{ENDPOINT}",
        headers={"X-Shopify-Access-Token": TOKEN},
        json={"query": BULK_RUN, "variables": {"query": "{ orders { edges { node { nope } } } }"}},
    ).json()
    errors = answer["data"]["bulkOperationRunQuery"]["userErrors"]
    assert errors[0]["code"] == "INVALID"
    assert "Cannot query field 'nope' on type 'Order'" in errors[0]["message"]
    ok = httpx.post(
        f"{fake.url}{ENDPOINT}",
        headers={"X-Shopify-Access-Token": TOKEN},
        json={"query": BULK_RUN, "variables": {"query": ORDERS.bulk()}},
    ).json()
    assert ok["data"]["bulkOperationRunQuery"]["userErrors"] == []
    assert ok["data"]["bulkOperationRunQuery"]["bulkOperation"]["status"] == "CREATED"


def test_jsonl_lines_carry_only_the_selected_fields(fake):
    made = connector(fake, bulk="always", bulk_batch=1000, poll=Poller(0.0, 0.0))
    pages = list(made.fetch(made.resource("customers"), None))
    rows = [r for p in pages for r in p.records]
    assert len(rows) == len(fake.customers)
    assert set(rows[0]) == {
        "id",
        "createdAt",
        "updatedAt",
        "firstName",
        "lastName",
        "defaultEmailAddress",
        "defaultPhoneNumber",  # people may join on it (journey/matching.py)
    }
    assert FAST is not None and PAGES  # shared settings with the paged tests


class _Breaking(httpx.SyncByteStream):
    """A JSONL body that stops with a dropped connection after `cut` lines."""

    def __init__(self, lines: list[bytes], cut: int | None) -> None:
        self.lines, self.cut = lines, cut

    def __iter__(self) -> Iterator[bytes]:
        for n, line in enumerate(self.lines):
            if self.cut is not None and n == self.cut:
                yield line[: len(line) // 2]  # half a line, then the connection drops
                raise httpx.ReadError("connection reset")
            yield line


def _file_host(answers: list[tuple[int, int | None]], lines: list[bytes]) -> httpx.Client:
    """A file host answering each GET with the next (status, cut after n lines) in `answers`,
    then the whole file."""
    served = iter(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        status, cut = next(served, (200, None))
        if status != 200:
            return httpx.Response(status, text="busy")
        return httpx.Response(200, stream=_Breaking(lines, cut))

    return httpx.Client(transport=httpx.MockTransport(handle))


def test_a_broken_download_is_retried_with_jittered_backoff_from_the_line_reached():
    lines = [json.dumps({"id": f"gid://shopify/Order/{n}"}).encode() + b"\n" for n in range(25)]
    sleeps: list[float] = []
    policy = RetryPolicy(attempts=3, initial=1.0, maximum=30.0, jitter=1.0, sleep=sleeps.append)
    # dropped in the second batch, then a 503, then dropped in the third batch
    client = _file_host([(200, 13), (503, None), (200, 22)], lines)
    got = list(stream_lines(client, "https://files.example/op.jsonl", 0, 10, policy))
    ids = [r["id"] for rows, _ in got for r in rows]
    assert ids == [f"gid://shopify/Order/{n}" for n in range(25)]  # nothing lost or repeated
    assert [line for _, line in got] == [10, 20, 25]
    # backoff with jitter, counted from the last batch that came through: 1-2 s, 2-3 s, 1-2 s
    assert len(sleeps) == 3
    assert 1.0 <= sleeps[0] <= 2.0 and 2.0 <= sleeps[1] <= 3.0 and 1.0 <= sleeps[2] <= 2.0
    assert len(set(sleeps)) == 3 and sleeps != [1.0, 2.0, 1.0]

    # a host that never gives a batch stops after `attempts` tries in a row
    sleeps.clear()
    client = _file_host([(500, None)] * 5, lines)
    with pytest.raises(Unreachable, match="could not be read whole after 3 tries"):
        list(stream_lines(client, "https://files.example/op.jsonl", 20, 10, policy))
    assert len(sleeps) == 2


def test_a_first_export_skips_the_retraction_look_up_only_when_it_is_safe(
    engine, fake, source_id, cipher, monkeypatch
):
    """The first operation of a first sync hands out each line once: its pages have nothing
    to take back and skip the look-up (it doubled a 1M-order first sync). A source that
    already holds events (removed with its data kept, then connected again) is checked."""
    from journey.ingest import Ingestor

    looked: list[int] = []
    real = Ingestor.retract

    def retract(self, **kwargs):
        looked.append(1)
        return real(self, **kwargs)

    monkeypatch.setattr(Ingestor, "retract", retract)
    result, _ = run(engine, source_id, cipher, fake)
    assert result.ok, result.error
    bulk_pages = result.pages_by_resource["orders"] - 1  # all but the paged pass after it
    assert bulk_pages > 1
    assert len(looked) <= 3  # the paged passes after the operations, not the export's pages
    assert_store_equals(engine, source_id, expected_store(fake))

    # the shop's cursors go (as `journey sources remove --keep-data` then `add` leaves them),
    # a refund is taken back meanwhile: the new first sync must still remove it
    with Session(engine) as session:
        session.execute(delete(SyncCursor))
        session.commit()
    order = next(o for o in fake.orders.values() if o.get("refunds"))
    order["refunds"] = []
    looked.clear()
    result, _ = run(engine, source_id, cipher, fake)
    assert result.ok, result.error
    assert len(looked) > bulk_pages
    assert_store_equals(engine, source_id, expected_store(fake))
