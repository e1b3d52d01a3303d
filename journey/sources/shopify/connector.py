"""Shopify (Admin GraphQL API): customers, orders with their customer journey, abandoned
checkouts. What each record becomes: journey/sources/shopify/mapping.py.

Requests. `POST https://{shop}.myshopify.com/admin/api/{version}/graphql.json`
with the Admin API access token in `X-Shopify-Access-Token`; every document is
in queries.py and is validated against Shopify's real schema by the tests.
Query cost is paced from the answers' throttleStatus (answers.py).

Incremental reads. Orders and customers are listed by `UPDATED_AT`, oldest
first. A record updated while a pass runs jumps to the end of that order, so
the pass does not follow Shopify's page cursor from page to page: each page is
a new query from the highest `updatedAt` read so far (`updated_at:>='...'`,
inclusive, skipping the ids already read at exactly that second), and Shopify's
`after` cursor only steps through a run of more than a page of records sharing
one second. The next sync starts 5 minutes below the watermark. Abandoned
checkouts cannot be sorted by update time: they are read by id (a stable order)
with `updated_at:>=` the time the previous pass began, less 5 minutes.

Late attribution. An order read before Shopify attributed its journey
(`customerJourneySummary.ready: false`) is asked for again by id
(`nodes(ids:)`) at the end of every orders pass, for up to three days, because
Shopify does not move `updatedAt` when it attributes one. The waiting ids are
part of the orders cursor, committed with each page of orders, so a sync killed
at any later point still has them.

First sync. When a resource has no cursor yet and holds at least
`bulk_threshold` records (`ordersCount` etc.), it is read through a bulk
operation (bulk.py) and then by pages from the operation's start; smaller
stores are read by pages at once.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from journey import logs
from journey.errors import JourneyError
from journey.sources import net
from journey.sources.base import Connector, Page, Raw, Records, Resource, Watermark
from journey.sources.http import BadRequest, HttpClient, HttpOptions, ScopeError, Unreachable
from journey.sources.shopify import bulk as bulk_ops
from journey.sources.shopify.answers import (
    REQUIRED_SCOPES,
    SERVICE,
    CostBucket,
    interpret,
    scope_error,
)
from journey.sources.shopify.mapping import MAPPERS, attribution_pending, epoch
from journey.sources.shopify.queries import (
    ATTRIBUTION,
    BULK_RUN,
    BULK_STATUS,
    CHECK,
    LISTS,
    ListQuery,
)

log = logging.getLogger(__name__)

DEFAULT_API_VERSION = "2026-10"
# Page sizes that keep one query's requested cost under the standard 1,000-point bucket.
PAGE_SIZES = {"customers": 250, "orders": 50, "abandoned_checkouts": 100}
# Requested cost of one node (Shopify charges about 1 a selected object): the first page of a
# list is paced with it, later ones with the cost Shopify reported.
NODE_COST = {"customers": 2, "orders": 13, "abandoned_checkouts": 4}
ATTRIBUTION_WAIT = 3 * 86400  # ask again for an order's journey for up to three days
ATTRIBUTION_BATCH = 50  # ids per query (about 650 points, like a page of orders)
MIN_PAGE = 5
# An incremental pass starts with small pages and grows them (x4) while they come back full:
# Shopify reserves a query's requested cost (`first` x the node's cost) before running it, so
# a full-size page for the two records that changed would cost as much as a full one.
FIRST_INCREMENTAL_PAGE = 10
BULK_THRESHOLD = 5000  # records; below it a first sync through pages is quicker
BULK_BATCH = 1000  # JSONL lines written per transaction
_HANDLE = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
_VERSION = re.compile(r"^(\d{4}-(01|04|07|10)|unstable)$")


def shop_domain(value: str) -> str:
    """The shop's myshopify.com domain from `my-store`, `my-store.myshopify.com` or
    `https://my-store.myshopify.com/admin`; a clear error for anything else."""
    text = (value or "").strip().lower()
    if "://" in text:
        text = urlsplit(text).hostname or ""
    text = text.split("/", 1)[0].strip(".")
    handle = text.removesuffix(".myshopify.com")
    if not text or not _HANDLE.match(handle) or "." in handle:
        raise JourneyError(
            "The Shopify shop is its myshopify.com name: my-store, my-store.myshopify.com or "
            f"https://my-store.myshopify.com (got {value.strip() or 'nothing'!r}; a custom "
            "domain will not do: Shopify admin > Settings > Domains shows the myshopify.com one)."
        )
    return f"{handle}.myshopify.com"


class ShopifyConnector(Connector):
    kind: ClassVar[str] = "shopify"
    service: ClassVar[str] = SERVICE
    default_base_url: ClassVar[str] = ""  # every shop has its own: the `shop` setting
    secret_prompt: ClassVar[str] = "Shopify Admin API access token (shpat_...)"
    settings: ClassVar[tuple[str, ...]] = ("shop",)
    resources: ClassVar[tuple[Resource, ...]] = (
        Resource("customers", "customers", cursor_field="updatedAt", paging="keyset"),
        Resource("orders", "orders", cursor_field="updatedAt", paging="keyset"),
        Resource(
            "abandoned_checkouts",
            "abandonedCheckouts",
            cursor_field="updatedAt",
            paging="endCursor",
        ),
        # Only drains ids an older version left in its cursor: the orders resource now asks
        # for the orders waiting for their journey itself (see `_orders`).
        Resource("late_attribution", "nodes", cursor_field="id", paging="ids"),
    )

    def __init__(
        self,
        secret: str,
        settings: Mapping[str, str] | None = None,
        *,
        base_url: str | None = None,
        http: HttpOptions | None = None,
        api_version: str | None = None,
        page_sizes: Mapping[str, int] | None = None,
        bulk: str = "auto",
        bulk_threshold: int = BULK_THRESHOLD,
        bulk_batch: int = BULK_BATCH,
        poll: bulk_ops.Poller | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(secret, settings, base_url=base_url, http=http)
        self.shop = shop_domain(self.config.get("shop", ""))
        self.base_url = (base_url or f"https://{self.shop}").rstrip("/")
        token = secret.strip()
        if not token or any(c.isspace() for c in token):
            raise JourneyError(
                "A Shopify Admin API access token is one word (shpat_...): paste it again."
            )
        version = api_version or self.config.get("api_version") or DEFAULT_API_VERSION
        if not _VERSION.match(version):
            raise JourneyError(
                f"{version!r} is not a Shopify API version: use one such as {DEFAULT_API_VERSION}."
            )
        if bulk not in {"auto", "always", "never"}:
            raise ValueError(bulk)
        self.api_version = version
        self.endpoint = f"/admin/api/{version}/graphql.json"
        self.page_sizes = {**PAGE_SIZES, **(page_sizes or {})}
        self.bulk_mode = bulk
        self.bulk_threshold = bulk_threshold
        self.bulk_batch = bulk_batch
        self.poller = poll or bulk_ops.Poller(sleep=sleep)
        self.clock = clock
        self.bucket = CostBucket(clock=monotonic, sleep=sleep)
        self.queries = 0  # GraphQL queries answered (for tests and the benchmark)
        self._costs: dict[tuple[str, int], float] = {}
        self.scopes: frozenset[str] | None = None
        self.http = HttpClient(
            self.service,
            self.base_url,
            headers={"X-Shopify-Access-Token": token},
            options=self.http_options,
            interpret=lambda response: interpret(response, self.bucket, self.shop),
        )
        self.downloads = httpx.Client(
            timeout=self.http_options.timeout,
            transport=self.http_options.make_transport(),
            mounts=self.http_options.make_mounts(),
            follow_redirects=True,
            headers={"User-Agent": "journey"},
            # The result URL's query is its signature: logged without it (journey.logs).
            event_hooks=logs.http_hooks(f"{self.service} bulk file"),
        )

    def close(self) -> None:
        self.http.close()
        self.downloads.close()

    # --- requests ---

    def graphql(
        self,
        document: str,
        variables: Mapping[str, Any] | None = None,
        *,
        estimate: float | None = None,
    ) -> dict[str, Any]:
        """The `data` of one query, paced so it is not throttled: it waits until the bucket
        holds the query's requested cost (as Shopify last reported it for this query and
        page size, else `estimate`)."""
        size = int((variables or {}).get("first") or 0)
        expected = self._costs.get((document, size), estimate)
        if expected is not None:
            self.bucket.pace(expected)
        body = self.http.request_json(
            "POST", self.endpoint, json={"query": document, "variables": dict(variables or {})}
        )
        self.queries += 1
        cost = (
            ((body or {}).get("extensions") or {}).get("cost") if isinstance(body, dict) else None
        )
        if isinstance(cost, dict) and isinstance(cost.get("requestedQueryCost"), int | float):
            self._costs[(document, size)] = float(cost["requestedQueryCost"])
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise Unreachable(
                "Shopify answered a query without data; try again later.", service=self.service
            )
        return data

    def check(self) -> list[str]:
        """The token works and has the scopes the sync needs; a note when it can only see
        the last 60 days of orders (no read_all_orders), which would cut every report's
        history short without an error anywhere."""
        data = self.graphql(CHECK)
        installation = data.get("currentAppInstallation") or {}
        handles = {
            str(s.get("handle"))
            for s in installation.get("accessScopes") or []
            if isinstance(s, dict)
        }
        self.scopes = frozenset(handles)
        # read_orders is implied by write_orders, and so on
        missing = [
            s
            for s in REQUIRED_SCOPES
            if s not in handles and s.replace("read_", "write_") not in handles
        ]
        if missing:
            raise scope_error(missing[0])
        if "read_all_orders" not in handles:
            return [
                "This token lacks the read_all_orders scope, so Shopify shows journey only "
                "the last 60 days of orders: first purchases, repeat rates and churn will "
                "miss older history. Add read_all_orders to the app's Admin API scopes, "
                "reinstall it, and store the new token."
            ]
        return []

    # --- reading ---

    def fetch(self, resource: Resource, cursor: str | None) -> Iterator[Page]:
        return self._fetch(resource, cursor)

    def _fetch(self, resource: Resource, cursor: str | None) -> Iterator[Page]:
        if resource.name == "late_attribution":
            yield from self._legacy_attribution(cursor)
        elif resource.name == "orders":
            yield from self._orders(resource, cursor)
        else:
            yield from self._list(resource, cursor)

    def _list(self, resource: Resource, cursor: str | None) -> Iterator[Page]:
        state = json.loads(cursor) if cursor else None
        lq = LISTS[resource.name]
        if isinstance(state, dict) and "bulk" in state:
            cursor = yield from self._bulk(lq, state["bulk"])
        elif cursor is None and self._wants_bulk(lq):
            cursor = yield from self._bulk(lq, None)
        if resource.name == "abandoned_checkouts":
            yield from self._by_id(resource, lq, cursor)
        else:
            yield from self._by_update(resource, lq, cursor)

    def _orders(self, resource: Resource, cursor: str | None) -> Iterator[Page]:
        """The orders list, then the orders still waiting for their journey, asked by id.

        Why the waiting ids live in the orders cursor (`"pending": {gid: first seen}`): the
        sync commits a resource's cursor in the same transaction as its page, and only its
        own. Kept anywhere else (in memory until a later step, or another resource's cursor
        written later), a sync killed between the two would have committed the orders and
        lost the ids, and Shopify attributes a journey without touching `updatedAt`, so no
        later pass would read the order again. Here every page's cursor carries the set as
        it stands after that page, so what is committed is always consistent.
        """
        state = json.loads(cursor) if cursor else {}
        now = int(self.clock())
        pending = {
            str(k): int(v)
            for k, v in (state.pop("pending", None) or {}).items()
            if now - int(v) < ATTRIBUTION_WAIT
        }
        inner: str | None = json.dumps(state, sort_keys=True) if state else None
        for page in self._list(resource, inner):
            now = int(self.clock())
            for order in page.records:
                if attribution_pending(order):
                    pending.setdefault(str(order["id"]), now)
                else:  # read again, now attributed (or never to be): its visit came with it
                    pending.pop(str(order["id"]), None)
            inner = page.cursor
            yield Page(page.records, _with_pending(inner, pending), page.reset, page.first_read)
        yield from self._ask_attribution(pending, lambda left: _with_pending(inner, left))

    def _legacy_attribution(self, cursor: str | None) -> Iterator[Page]:
        """Ids a version before the orders cursor carried them left in the
        `late_attribution` cursor: asked for until none is left, then nothing."""
        state = json.loads(cursor) if cursor else {}
        now = int(self.clock())
        pending = {
            str(k): int(v)
            for k, v in (state.get("pending") or {}).items()
            if now - int(v) < ATTRIBUTION_WAIT
        }
        if not pending:
            if state.get("pending"):  # only expired ids were left
                yield Page([], json.dumps({"pending": {}}))
            return
        yield from self._ask_attribution(
            pending, lambda left: json.dumps({"pending": left}, sort_keys=True)
        )

    def _ask_attribution(
        self, pending: dict[str, int], cursor: Callable[[dict[str, int]], str | None]
    ) -> Iterator[Page]:
        """Orders read before Shopify attributed their journey (`ready: false`), asked again
        by id (Shopify does not move `updatedAt` when it attributes one). `pending` (id ->
        when first seen) shrinks as they become ready or vanish; each page's cursor is
        `cursor(pending)` as it stands after that page, and the order mapping adds the first
        visit and channel it could not add before."""
        ids = sorted(pending)
        for start in range(0, len(ids), ATTRIBUTION_BATCH):
            chunk = ids[start : start + ATTRIBUTION_BATCH]
            data = self.graphql(
                ATTRIBUTION,
                {"ids": chunk},
                estimate=3 + len(chunk) * NODE_COST["orders"],
            )
            nodes = [n for n in data.get("nodes") or [] if isinstance(n, dict) and n.get("id")]
            waiting = {str(n["id"]) for n in nodes if attribution_pending(n)}
            for oid in chunk:  # ready, or gone from Shopify: no need to ask again
                if oid not in waiting:
                    pending.pop(oid, None)
            ready = [n for n in nodes if str(n["id"]) not in waiting]
            yield Page(ready, cursor(dict(pending)))

    def _wants_bulk(self, lq: ListQuery) -> bool:
        if self.bulk_mode != "auto":
            return self.bulk_mode == "always"
        data = self.graphql(lq.count(), {"limit": self.bulk_threshold})
        count = (data.get(lq.count_root) or {}).get("count")
        return isinstance(count, int) and count >= self.bulk_threshold

    def _page(
        self, resource: Resource, lq: ListQuery, variables: dict[str, Any], want: int | None = None
    ) -> tuple[list[Raw], bool, str | None]:
        """One page of at most `want` (default: the resource's page size): its nodes, whether
        more follow, and Shopify's cursor after it. A page whose cost is over the store's
        limit is asked again at half the size."""
        while True:
            size = min(want or self.page_sizes[resource.name], self.page_sizes[resource.name])
            estimate = 3 + size * NODE_COST.get(resource.name, 1)
            try:
                data = self.graphql(lq.page(), {**variables, "first": size}, estimate=estimate)
                break
            except BadRequest as exc:
                if exc.code != "MAX_COST_EXCEEDED" or size <= MIN_PAGE:
                    raise
                self.page_sizes[resource.name] = max(MIN_PAGE, size // 2)
        conn = data.get(lq.root)
        if not isinstance(conn, dict) or not isinstance(conn.get("nodes"), list):
            raise Unreachable(
                f"Shopify answered the {lq.root} list with something unexpected; try again later.",
                service=self.service,
            )
        info = conn.get("pageInfo") or {}
        nodes = [n for n in conn["nodes"] if isinstance(n, dict) and n.get("id")]
        return nodes, bool(info.get("hasNextPage")), info.get("endCursor")

    def _by_update(self, resource: Resource, lq: ListQuery, cursor: str | None) -> Iterator[Page]:
        """Keyset on updatedAt (see the module docstring); `position` holds the lower bound
        `lo`, Shopify's `after` within a run of ties, and the ids read at `lo`."""
        mark = Watermark.load(cursor)
        mark.begin(resource.overlap)
        size = FIRST_INCREMENTAL_PAGE if mark.floor is not None else None
        while True:
            pos = json.loads(mark.position) if mark.position else {"lo": mark.floor}
            lo: int | None = pos.get("lo")
            after: str | None = pos.get("after")
            seen = set(pos.get("seen") or [])
            variables: dict[str, Any] = {"after": after}
            if lo is not None:
                variables["query"] = f"updated_at:>='{_iso(lo)}'"
            nodes, more, end = self._page(resource, lq, variables, size)
            size = size * 4 if size else None
            fresh = [n for n in nodes if not (n["id"] in seen and epoch(n.get("updatedAt")) == lo)]
            mark.saw([epoch(n.get("updatedAt")) for n in fresh])
            keys = [k for k in (epoch(n.get("updatedAt")) for n in nodes) if k is not None]
            if not more or not keys:
                if mark.since is not None and (mark.high is None or mark.high < mark.since):
                    mark.high = mark.since
                yield Page(fresh, mark.end())
                return
            top = max(keys)
            at_top = sorted({n["id"] for n in nodes if epoch(n.get("updatedAt")) == top})
            if lo is not None and top <= lo:
                # A whole page within one second: step through the run with Shopify's cursor.
                nxt = {"lo": lo, "after": end, "seen": sorted(seen)}
            else:
                nxt = {"lo": top, "seen": at_top}
            yield Page(fresh, mark.step(json.dumps(nxt, separators=(",", ":"))))

    def _by_id(self, resource: Resource, lq: ListQuery, cursor: str | None) -> Iterator[Page]:
        """Abandoned checkouts by id (stable while they change), from `updated_at` the
        previous pass's start less the overlap; the watermark is this pass's start."""
        mark = Watermark.load(cursor)
        if not mark.in_pass:
            mark.begin(resource.overlap)
            mark.position = json.dumps({"started": int(self.clock()), "after": None})
        pos = json.loads(mark.position or "{}")
        started = int(pos.get("started") or self.clock())
        after: str | None = pos.get("after")
        size = FIRST_INCREMENTAL_PAGE if mark.floor is not None else None
        while True:
            variables: dict[str, Any] = {"after": after}
            if mark.floor is not None:
                variables["query"] = f"updated_at:>='{_iso(mark.floor)}'"
            nodes, more, end = self._page(resource, lq, variables, size)
            size = size * 4 if size else None
            if not more:
                mark.high = max(started, mark.since or 0)
                yield Page(nodes, mark.end())
                return
            after = end
            yield Page(nodes, mark.step(json.dumps({"started": started, "after": after})))

    # --- bulk operations ---

    def _bulk(
        self, lq: ListQuery, state: dict[str, Any] | None
    ) -> Generator[Page, None, str | None]:
        """Pages of the resource's bulk operation (bulk.py); returns the cursor the paged
        pass continues from, or None when no operation could start (then pages do it all)."""
        # The first operation of a first sync hands out each line once: first reads. A
        # resumed or restarted one may hand out lines written before, so it does not say so.
        fresh = state is None
        restarted = False
        while True:
            if state is None:
                op = self._start_bulk(lq)
                if op is None:
                    return None
                state = {"id": op["id"], "line": 0, "created": epoch(op.get("createdAt"))}
                yield Page([], json.dumps({"bulk": state}))  # a kill while it runs polls it again
            op = self._wait_bulk(state["id"])
            if op.get("status") == bulk_ops.DONE:
                url = op.get("url")
                if not url:  # nothing to export
                    return Watermark(since=state.get("created")).dump()
                try:
                    return (yield from self._read_bulk(url, state, fresh and not restarted))
                except bulk_ops.Expired:
                    pass
            elif op.get("errorCode") == "ACCESS_DENIED" or restarted:
                raise bulk_ops.failure(op)
            log.info(
                "Shopify bulk operation %s ended %s; starting it again",
                op.get("id"),
                op.get("status"),
            )
            restarted, state = True, None

    def _read_bulk(
        self, url: str, state: dict[str, Any], first_read: bool = False
    ) -> Generator[Page, None, str | None]:
        pending: list[Raw] | None = None
        for rows, line in bulk_ops.stream_lines(
            self.downloads,
            url,
            int(state.get("line") or 0),
            self.bulk_batch,
            self.http_options.retry,
            self.http_options.max_bytes,
        ):
            if pending is not None:
                yield Page(pending, json.dumps({"bulk": state}), first_read=first_read)
            state = {**state, "line": line}
            pending = rows
        done = Watermark(since=state.get("created")).dump()
        yield Page(pending or [], done, first_read=first_read)
        return done

    def _start_bulk(self, lq: ListQuery) -> dict[str, Any] | None:
        data = self.graphql(BULK_RUN, {"query": lq.bulk()})
        payload = data.get("bulkOperationRunQuery") or {}
        errors = [e for e in payload.get("userErrors") or [] if isinstance(e, dict)]
        op = payload.get("bulkOperation")
        if errors or not isinstance(op, dict) or not op.get("id"):
            codes = {e.get("code") for e in errors}
            text = "; ".join(str(e.get("message") or "") for e in errors)[:300]
            if codes & {"OPERATION_IN_PROGRESS", "LIMIT_REACHED"}:
                log.info("Shopify bulk operation not started (%s); reading pages instead", text)
                return None
            raise BadRequest(
                f"Shopify refused the bulk query: {text or 'no operation was created'}",
                status=200,
                code=",".join(sorted(str(c) for c in codes if c)) or None,
                service=self.service,
            )
        return op

    def _wait_bulk(self, op_id: str) -> dict[str, Any]:
        for wait in self.poller.waits():
            data = self.graphql(BULK_STATUS, {"id": op_id})
            op = data.get("bulkOperation")
            if not isinstance(op, dict):
                return {"id": op_id, "status": "EXPIRED"}  # unknown to Shopify now: start again
            if op.get("status") == bulk_ops.DONE or op.get("status") in bulk_ops.RESTART:
                return op
            left = net.remaining()
            if left is not None and left <= wait:
                # Out of the sync's time: the cursor holds the operation, the next sync
                # polls it again.
                raise Unreachable(
                    "Shopify's bulk export for the first sync is still running and this "
                    "sync is out of time; the next sync carries on with it.",
                    service=self.service,
                )
            if wait > 0:
                self.poller.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    # --- mapping ---

    def to_records(self, resource: Resource, raw: Sequence[Raw]) -> Records:
        mapper = MAPPERS[resource.name]
        records = Records(customer_fields=mapper({}).customer_fields)
        for obj in raw:
            records.extend(mapper(obj))
        return records


def _with_pending(cursor: str | None, pending: Mapping[str, int]) -> str | None:
    """An orders cursor (a watermark or a bulk state, both JSON objects) with the ids of the
    orders still waiting for their journey; without the key when none is."""
    if not pending:
        return cursor
    state = json.loads(cursor) if cursor else {}
    state["pending"] = dict(sorted(pending.items()))
    return json.dumps(state, sort_keys=True, separators=(",", ":"))


def _iso(epoch_seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))


__all__ = ["DEFAULT_API_VERSION", "ScopeError", "ShopifyConnector", "shop_domain"]
