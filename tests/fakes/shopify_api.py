"""A fake Shopify Admin GraphQL API over real HTTP on 127.0.0.1, for the connector tests
and the benchmark.

It follows Shopify's documented behaviour where the connector depends on it:

- `POST /admin/api/<version>/graphql.json` with `X-Shopify-Access-Token`; a wrong or
  revoked token gets 401 `{"errors": "[API] Invalid API key or access token
  (unrecognized login or wrong password)"}`; another version or path gets 404.
- Every query is parsed and validated against Shopify's real Admin schema
  (tests/fakes/shopify_schema.py) and refused with graphql-core's validation
  messages (Shopify's say the same: "Cannot query field 'x' on type 'Order'"), then
  executed by graphql-core against the fake's records, so only selected fields come back.
- Access scopes per token: `orders`, `abandonedCheckouts` and their counts need
  read_orders, `customers` read_customers; a missing one is an ACCESS_DENIED error
  naming it. Without read_all_orders only orders of the last 60 days are listed.
- Query cost: 1 point per object, 2 per connection, a connection's nodes counted
  `first` times (requested) or as returned (actual); a query over `maximum` is
  refused with MAX_COST_EXCEEDED. A leaky bucket (`maximum`, `restore_rate`, real
  time) refuses a query costing more than is available with a THROTTLED body and
  no data (HTTP `throttled_status`, 200 by default). Every answer carries
  `extensions.cost` with `throttleStatus`.
- Lists: `first`/`after` keyset cursors (base64 JSON of the last sort value and id,
  as Shopify's), `sortKey` (UPDATED_AT, CREATED_AT, ID, PROCESSED_AT), `reverse`,
  and a search `query` of `updated_at`, `created_at`, `processed_at` and `id` terms
  (`:>=`, `:>`, `:<=`, `:<`, `:`; quoted or not), joined by spaces or AND.
- Bulk operations: `bulkOperationRunQuery` validates the bulk query (userErrors
  INVALID), allows `max_bulk` running at once (OPERATION_IN_PROGRESS), snapshots the
  rows at creation and serves them as JSONL (one line per node, only the selected
  fields) at an unauthenticated URL on the fake; `bulkOperation(id:)` answers
  CREATED/RUNNING for `bulk_polls` polls, then COMPLETED with the url. `expire_bulk()`
  makes every file answer 403 and every finished operation EXPIRED.

Faults as in the other fakes: `fail(kind, path=..., times=...)` and
`fail_each_request_once(kinds)`. Kinds: "throttled" (a THROTTLED body), "429"
(HTTP 429 with Retry-After), "500", "slow", "drop" (closes the connection without
answering), "truncate" (a 200 whose body is cut in half; on a JSONL download, the
body is cut mid-line). `between_pages` is called after each list page is served,
to change records while a sync pages.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    graphql_sync,
    parse,
    validate,
)

from tests.fakes.http_fake import FakeHandler, FakeHttpServer, Fault, FaultQueue, json_bytes
from tests.fakes.shopify_schema import API_VERSION, admin_schema

TOKEN = "shpat_0123456789abcdef0123456789abcdef"
ALL_SCOPES = frozenset({"read_customers", "read_orders", "read_all_orders"})
FAULTS = ("throttled", "429", "500", "slow", "drop", "truncate")
ENDPOINT = f"/admin/api/{API_VERSION}/graphql.json"
BULK_PATH = "/bulk-results/"
SIXTY_DAYS = 60 * 86400
ROOT_SCOPES = {
    "orders": "read_orders",
    "ordersCount": "read_orders",
    "abandonedCheckouts": "read_orders",
    "abandonedCheckoutsCount": "read_orders",
    "customers": "read_customers",
    "customersCount": "read_customers",
}
SORT_FIELDS = {
    "UPDATED_AT": "updatedAt",
    "CREATED_AT": "createdAt",
    "PROCESSED_AT": "processedAt",
    "ID": None,
}
FILTER_FIELDS = {
    "updated_at": "updatedAt",
    "created_at": "createdAt",
    "processed_at": "processedAt",
}
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> int:
    moment = datetime.fromisoformat(value.strip("'\"").replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def number(gid_value: str) -> int:
    return int(gid_value.rsplit("/", 1)[-1])


@dataclass
class Call:
    operation: str | None
    roots: list[str]
    variables: dict[str, Any]
    status: int
    path: str = ENDPOINT
    fault: str | None = None
    cost: float | None = None
    errors: list[str] = field(default_factory=list)
    token_sent: bool = False  # an X-Shopify-Access-Token header came with it


# --- cost -------------------------------------------------------------------------------


def _named(t: Any) -> Any:
    return get_named_type(t)


def _is_list(t: Any) -> bool:
    while isinstance(t, GraphQLNonNull):
        t = t.of_type
    return isinstance(t, GraphQLList)


def _args(node: FieldNode, variables: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for arg in node.arguments or ():
        value = arg.value
        if value.kind == "variable":
            out[arg.name.value] = variables.get(value.name.value)  # type: ignore[attr-defined]
        elif hasattr(value, "value"):
            out[arg.name.value] = value.value  # type: ignore[attr-defined]
    return out


def requested_cost(
    schema: GraphQLSchema, op: OperationDefinitionNode, variables: dict[str, Any]
) -> int:
    """Shopify's documented rule of thumb: 1 per object, 2 per connection, nodes x `first`."""
    root = schema.mutation_type if op.operation.value == "mutation" else schema.query_type
    base = 10 if op.operation.value == "mutation" else 0
    return base + _selection_cost(op.selection_set, root, variables, 1)


def _selection_cost(
    selection: SelectionSetNode | None, parent: Any, variables: dict[str, Any], size: int
) -> int:
    if selection is None or not isinstance(parent, GraphQLObjectType):
        return 0
    total = 0
    for node in selection.selections:
        if not isinstance(node, FieldNode) or node.name.value.startswith("__"):
            continue
        definition = parent.fields.get(node.name.value)
        if definition is None:
            continue
        named = _named(definition.type)
        if not isinstance(named, GraphQLObjectType) and not hasattr(named, "fields"):
            continue
        if named.name.endswith("Connection"):
            args = _args(node, variables)
            n = int(args.get("first") or args.get("last") or 250)
            inner = 0
            for child in node.selection_set.selections if node.selection_set else []:
                if not isinstance(child, FieldNode):
                    continue
                child_type = named.fields[child.name.value].type
                if child.name.value in ("nodes", "edges"):
                    inner += n * _selection_cost_object(child, _named(child_type), variables)
                else:
                    inner += _selection_cost_object(child, _named(child_type), variables)
            total += 2 + inner
        else:
            total += _selection_cost_object(node, named, variables)
    return total * size


def _selection_cost_object(node: FieldNode, named: Any, variables: dict[str, Any]) -> int:
    if not isinstance(named, GraphQLObjectType):
        return 0
    return 1 + _selection_cost(node.selection_set, named, variables, 1)


def actual_cost(data: Any) -> int:
    """The same rule over what was returned: connections 2, other objects 1."""
    if isinstance(data, list):
        return sum(actual_cost(v) for v in data)
    if not isinstance(data, dict):
        return 0
    own = 2 if ("pageInfo" in data or "nodes" in data or "edges" in data) else 1
    return own + sum(actual_cost(v) for v in data.values())


# --- search syntax ------------------------------------------------------------------------


def _terms(query: str | None) -> list[tuple[str, str, str]]:
    if not query:
        return []
    out = []
    for token in _tokens(query):
        if token.upper() == "AND":
            continue
        name, sep, rest = token.partition(":")
        if not sep:
            raise GraphQLError(f"the fake Shopify does not understand the search term {token!r}")
        for op in (">=", "<=", ">", "<"):
            if rest.startswith(op):
                out.append((name, op, rest[len(op) :].strip("'\"")))
                break
        else:
            out.append((name, "=", rest.strip("'\"")))
    return out


def _tokens(query: str) -> Iterator[str]:
    token, quote = "", ""
    for char in query:
        if quote:
            token += char
            if char == quote:
                quote = ""
        elif char in "'\"":
            token += char
            quote = char
        elif char.isspace():
            if token:
                yield token
            token = ""
        else:
            token += char
    if token:
        yield token


def _matches(obj: dict[str, Any], terms: list[tuple[str, str, str]]) -> bool:
    for name, op, raw in terms:
        if name == "id":
            have: float = number(obj["id"])
            want: float = int(raw)
        elif name in FILTER_FIELDS:
            value = obj.get(FILTER_FIELDS[name])
            if value is None:
                return False
            have, want = parse_time(value), parse_time(raw)
        else:
            raise GraphQLError(f"the fake Shopify does not filter on {name!r}")
        ok = {
            ">=": have >= want,
            "<=": have <= want,
            ">": have > want,
            "<": have < want,
            "=": have == want,
        }[op]
        if not ok:
            return False
    return True


def encode_cursor(last_id: int, last_value: Any) -> str:
    raw = json.dumps({"last_id": last_id, "last_value": last_value}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, Any]:
    try:
        data = json.loads(base64.b64decode(cursor))
        return int(data["last_id"]), data["last_value"]
    except (ValueError, KeyError, TypeError):
        raise GraphQLError("Invalid cursor for current pagination sort.") from None


# --- bulk JSONL -----------------------------------------------------------------------------


def project(obj: Any, selection: SelectionSetNode | None) -> Any:
    """`obj` cut down to the selected fields (the shape of a JSONL line)."""
    if selection is None or obj is None:
        return obj
    if isinstance(obj, list):
        return [project(v, selection) for v in obj]
    out: dict[str, Any] = {}
    for node in selection.selections:
        if not isinstance(node, FieldNode):
            raise NotImplementedError("the fake's bulk export takes plain fields only")
        key = node.alias.value if node.alias else node.name.value
        out[key] = project(obj.get(node.name.value), node.selection_set)
    return out


def _bulk_root(document: Any) -> tuple[str, SelectionSetNode | None, dict[str, Any]]:
    """(root connection, the selection of its nodes, its arguments) of a bulk query."""
    op = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    roots = [s for s in op.selection_set.selections if isinstance(s, FieldNode)]
    if len(roots) != 1 or roots[0].selection_set is None:
        raise GraphQLError("Bulk queries must contain at least one connection.")
    root = roots[0]
    for child in root.selection_set.selections:  # type: ignore[union-attr]
        if isinstance(child, FieldNode) and child.name.value == "nodes":
            return root.name.value, child.selection_set, _args(root, {})
        if isinstance(child, FieldNode) and child.name.value == "edges":
            for inner in child.selection_set.selections if child.selection_set else []:
                if isinstance(inner, FieldNode) and inner.name.value == "node":
                    return root.name.value, inner.selection_set, _args(root, {})
    raise GraphQLError("Bulk queries must contain at least one connection.")


# --- the fake -------------------------------------------------------------------------------


@dataclass
class FakeShopify(FakeHttpServer):
    tokens: dict[str, frozenset[str]] = field(default_factory=lambda: {TOKEN: ALL_SCOPES})
    maximum: float = 1000.0  # the bucket
    restore_rate: float = 50.0
    max_query_cost: float = 1000.0  # one query's limit (MAX_COST_EXCEEDED), whatever the bucket
    throttled_status: int = 200
    slow_seconds: float = 0.4
    clock: Callable[[], float] = (
        time.time
    )  # the store's clock: updatedAt of changes, bulk createdAt
    bulk_polls: int = 1
    max_bulk: int = 1
    customers: dict[int, dict[str, Any]] = field(default_factory=dict)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    checkouts: dict[int, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    between_pages: Callable[[FakeShopify, str, Call], None] | None = None
    # The benchmark's way to export a million rows without holding them: root -> (a JSONL
    # file already made with the bulk query's fields, its number of lines).
    bulk_files: dict[str, tuple[Path, int]] | None = None

    def __post_init__(self) -> None:
        self.schema = admin_schema()
        self.revoked: set[str] = set()
        self.lock = threading.RLock()
        self._ids = itertools.count(1001)
        self._faults = FaultQueue(FAULTS, self.lock, each_retry_after={"429": "0"})
        self._available = self.maximum
        self._at = time.monotonic()
        self.bulk_ops: dict[int, dict[str, Any]] = {}
        self.bulk_expired = False
        self._dir = Path(tempfile.mkdtemp(prefix="fake-shopify-"))
        self.request_bodies: list[str] = []  # raw queries, to check nothing secret is sent

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    # --- faults ---

    def fail(
        self, kind: str, *, path: str | None = None, times: int = 1, retry_after: str | None = None
    ) -> None:
        self._faults.add(kind, path, times, retry_after)

    def fail_each_request_once(self, kinds: tuple[str, ...] = FAULTS) -> None:
        self._faults.each_request_once(kinds)

    def expire_bulk(self) -> None:
        with self.lock:
            self.bulk_expired = True
            for op in self.bulk_ops.values():
                if op["status"] == "COMPLETED":
                    op["status"], op["url"] = "EXPIRED", None

    # --- data ---

    def now(self) -> int:
        return int(self.clock())

    def add_customer(
        self, created: int, *, first: str | None, last: str | None, email: str | None
    ) -> dict[str, Any]:
        with self.lock:
            n = next(self._ids)
            obj = {
                "id": gid("Customer", n),
                "createdAt": iso(created),
                "updatedAt": iso(created),
                "firstName": first,
                "lastName": last,
                "displayName": " ".join(p for p in (first, last) if p) or (email or ""),
                "defaultEmailAddress": {"emailAddress": email} if email else None,
            }
            self.customers[n] = obj
            return obj

    def add_order(
        self,
        created: int,
        amount: str,
        *,
        customer: dict[str, Any] | None,
        status: str = "PAID",
        currency: str = "EUR",
        email: str | None = None,
        first_visit: dict[str, Any] | None = None,
        last_visit: dict[str, Any] | None = None,
        order_index: int | None = None,
        ready: bool = True,
        test: bool = False,
        updated: int | None = None,
    ) -> dict[str, Any]:
        with self.lock:
            n = next(self._ids)
            journey = None
            if first_visit is not None or last_visit is not None or not ready:
                journey = {
                    "ready": ready,
                    "customerOrderIndex": order_index,
                    "daysToConversion": 0,
                    "firstVisit": first_visit,
                    "lastVisit": last_visit,
                    "momentsCount": {"count": 1, "precision": "EXACT"},
                }
            obj = {
                "id": gid("Order", n),
                "name": f"#{n}",
                "createdAt": iso(created),
                "processedAt": iso(created),
                "updatedAt": iso(updated if updated is not None else created),
                "cancelledAt": None,
                "test": test,
                "email": email,
                "displayFinancialStatus": status,
                "displayFulfillmentStatus": "UNFULFILLED",
                "totalPriceSet": {"shopMoney": {"amount": amount, "currencyCode": currency}},
                "customer": {"id": customer["id"]} if customer else None,
                "refunds": [],
                "customerJourneySummary": journey,
            }
            self.orders[n] = obj
            return obj

    def visit(
        self, at: int, source: str, *, utm_source: str | None = None, kind: str | None = None
    ) -> dict[str, Any]:
        utm = None
        if utm_source is not None:
            utm = {
                "source": utm_source,
                "medium": "cpc",
                "campaign": "spring",
                "content": None,
                "term": None,
            }
        return {
            "id": gid("CustomerVisit", next(self._ids)),
            "occurredAt": iso(at),
            "source": source,
            "sourceType": kind,
            "utmParameters": utm,
            "landingPage": None,
            "referrerUrl": None,
            "referralCode": None,
        }

    def refund(self, order: dict[str, Any], amount: str, at: int) -> dict[str, Any]:
        with self.lock:
            currency = order["totalPriceSet"]["shopMoney"]["currencyCode"]
            refund = {
                "id": gid("Refund", next(self._ids)),
                "createdAt": iso(at),
                "updatedAt": iso(at),
                "totalRefundedSet": {"shopMoney": {"amount": amount, "currencyCode": currency}},
            }
            order["refunds"].append(refund)
            total = sum(
                float(r["totalRefundedSet"]["shopMoney"]["amount"]) for r in order["refunds"]
            )
            full = total >= float(order["totalPriceSet"]["shopMoney"]["amount"])
            order["displayFinancialStatus"] = "REFUNDED" if full else "PARTIALLY_REFUNDED"
            order["updatedAt"] = iso(max(at, parse_time(order["updatedAt"])))
            return refund

    def cancel(self, order: dict[str, Any], at: int) -> None:
        with self.lock:
            order["cancelledAt"] = iso(at)
            order["updatedAt"] = iso(at)

    def touch(self, order: dict[str, Any], at: int | None = None, **fields: Any) -> None:
        with self.lock:
            order.update(fields)
            order["updatedAt"] = iso(self.now() if at is None else at)

    def add_checkout(
        self,
        created: int,
        amount: str,
        *,
        customer: dict[str, Any] | None,
        completed: int | None = None,
        currency: str = "EUR",
    ) -> dict[str, Any]:
        with self.lock:
            n = next(self._ids)
            obj = {
                "id": gid("AbandonedCheckout", n),
                "name": f"#{n}",
                "abandonedCheckoutUrl": f"https://example.myshopify.com/checkouts/{n}/recover",
                "createdAt": iso(created),
                "updatedAt": iso(completed or created),
                "completedAt": iso(completed) if completed else None,
                "customer": {"id": customer["id"]} if customer else None,
                "totalPriceSet": {"shopMoney": {"amount": amount, "currencyCode": currency}},
            }
            self.checkouts[n] = obj
            return obj

    # --- the bucket ---

    def _take(self, cost: float) -> tuple[bool, dict[str, Any]]:
        """Take `cost` points if available; the throttle status either way."""
        with self.lock:
            now = time.monotonic()
            self._available = min(
                self.maximum, self._available + (now - self._at) * self.restore_rate
            )
            self._at = now
            ok = cost <= self._available
            if ok:
                self._available -= cost
            return ok, self._status()

    def _refund_points(self, points: float) -> dict[str, Any]:
        with self.lock:
            self._available = min(self.maximum, self._available + points)
            return self._status()

    def _status(self) -> dict[str, Any]:
        return {
            "maximumAvailable": self.maximum,
            "currentlyAvailable": round(self._available, 1),
            "restoreRate": self.restore_rate,
        }

    # --- lists ---

    def _records(self, root: str) -> dict[int, dict[str, Any]]:
        return {
            "orders": self.orders,
            "customers": self.customers,
            "abandonedCheckouts": self.checkouts,
        }[root]

    def _visible(self, root: str, scopes: frozenset[str]) -> list[dict[str, Any]]:
        items = list(self._records(root).values())
        if root == "orders" and "read_all_orders" not in scopes:
            since = self.now() - SIXTY_DAYS
            items = [o for o in items if parse_time(o["createdAt"]) >= since]
        return items

    def _list(self, root: str, scopes: frozenset[str], args: dict[str, Any]) -> dict[str, Any]:
        if args.get("last") is not None or args.get("before") is not None:
            raise GraphQLError("the fake Shopify pages forwards only (first/after)")
        first = args.get("first")
        if first is None:
            raise GraphQLError("you must provide one of first or last")
        if not 0 < first <= 250:
            raise GraphQLError("The first argument must be between 1 and 250.")
        sort = args.get("sortKey") or "ID"
        if sort not in SORT_FIELDS:
            raise GraphQLError(f"the fake Shopify does not sort by {sort}")
        key = SORT_FIELDS[sort]
        terms = _terms(args.get("query"))
        reverse = bool(args.get("reverse"))

        def sort_key(o: dict[str, Any]) -> tuple[Any, int]:
            return ((o.get(key) or "") if key else 0, number(o["id"]))

        after = args.get("after")
        mark = None
        if after:
            last_id, last_value = decode_cursor(after)
            mark = (last_value if key else 0, last_id)
        with self.lock:
            items = [o for o in self._visible(root, scopes) if _matches(o, terms)]
            items.sort(key=sort_key, reverse=reverse)
            if mark is not None:
                items = [
                    o for o in items if (sort_key(o) < mark if reverse else sort_key(o) > mark)
                ]
            page = json.loads(json.dumps(items[:first]))  # a snapshot: later changes don't leak in
            more = len(items) > first

        def cursor(o: dict[str, Any]) -> str:
            return encode_cursor(number(o["id"]), o.get(key) if key else number(o["id"]))

        return {
            "nodes": page,
            "edges": [{"cursor": cursor(o), "node": o} for o in page],
            "pageInfo": {
                "hasNextPage": more,
                "hasPreviousPage": bool(after),
                "startCursor": cursor(page[0]) if page else None,
                "endCursor": cursor(page[-1]) if page else None,
            },
        }

    def _count(self, root: str, scopes: frozenset[str], args: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            items = [
                o for o in self._visible(root, scopes) if _matches(o, _terms(args.get("query")))
            ]
        limit = args.get("limit")
        if limit is not None and len(items) > limit:
            return {"count": limit, "precision": "AT_LEAST"}
        return {"count": len(items), "precision": "EXACT"}

    # --- bulk operations ---

    def _run_bulk(self, scopes: frozenset[str], query: str) -> dict[str, Any]:
        try:
            document = parse(query)
            problems = [e.message for e in validate(self.schema, document)]
            if not problems:
                root, selection, args = _bulk_root(document)
        except GraphQLError as exc:
            problems = [exc.message]
        if problems:
            return {
                "bulkOperation": None,
                "userErrors": [
                    {
                        "field": ["query"],
                        "message": f"Invalid bulk query: {problems[0]}",
                        "code": "INVALID",
                    }
                ],
            }
        with self.lock:
            running = [o for o in self.bulk_ops.values() if o["status"] in ("CREATED", "RUNNING")]
            if len(running) >= self.max_bulk:
                return {
                    "bulkOperation": None,
                    "userErrors": [
                        {
                            "field": None,
                            "message": "A bulk query operation for this app and shop is already "
                            f"in progress: {running[0]['id'] if running else gid('BulkOperation', 1)}.",
                            "code": "OPERATION_IN_PROGRESS",
                        }
                    ],
                }
            n = next(self._ids)
            path = self._dir / f"{n}.jsonl"
            denied = ROOT_SCOPES.get(root) not in scopes | {None}
            lines = 0
            if self.bulk_files is not None and root in self.bulk_files:
                path, lines = self.bulk_files[root]
            else:
                with path.open("wb") as out:
                    if not denied:
                        for line in self._export(root, scopes, selection, args):
                            out.write(line)
                            lines += 1
            op = {
                "id": gid("BulkOperation", n),
                "status": "CREATED",
                "type": "QUERY",
                "query": query,
                "createdAt": iso(self.now()),
                "completedAt": None,
                "errorCode": "ACCESS_DENIED" if denied else None,
                "objectCount": "0",
                "rootObjectCount": "0",
                "fileSize": None,
                "url": None,
                "partialDataUrl": None,
                "_polls": 0,
                "_lines": lines,
                "_path": path,
            }
            self.bulk_ops[n] = op
            return {"bulkOperation": dict(op), "userErrors": []}

    def _export(
        self,
        root: str,
        scopes: frozenset[str],
        selection: SelectionSetNode | None,
        args: dict[str, Any],
    ) -> Iterable[bytes]:
        terms = _terms(args.get("query"))
        items = [o for o in self._visible(root, scopes) if _matches(o, terms)]
        for obj in sorted(items, key=lambda o: number(o["id"])):
            yield json.dumps(project(obj, selection), separators=(",", ":")).encode() + b"\n"

    def _bulk_status(self, op_id: str) -> dict[str, Any] | None:
        with self.lock:
            try:
                op = self.bulk_ops.get(number(op_id))
            except ValueError:
                return None
            if op is None:
                return None
            if op["status"] in ("CREATED", "RUNNING"):
                op["_polls"] += 1
                if op["_polls"] > self.bulk_polls:
                    if op["errorCode"]:
                        op["status"] = "FAILED"
                    else:
                        op["status"] = "COMPLETED"
                        op["completedAt"] = iso(self.now())
                        op["objectCount"] = op["rootObjectCount"] = str(op["_lines"])
                        op["fileSize"] = str(op["_path"].stat().st_size)
                        n = number(op["id"])
                        op["url"] = (
                            f"{self.url}{BULK_PATH}{n}.jsonl?X-Goog-Signature=fake{n}"
                            if op["_lines"]
                            else None
                        )
                else:
                    op["status"] = "RUNNING"
            return {k: v for k, v in op.items() if not k.startswith("_")}

    def bulk_file(self, path: str) -> Path | None:
        name = path.removeprefix(BULK_PATH).removesuffix(".jsonl")
        with self.lock:
            op = self.bulk_ops.get(int(name)) if name.isdigit() else None
            if op is None or op["status"] != "COMPLETED" or self.bulk_expired:
                return None
            return op["_path"]

    # --- one GraphQL request ---

    def root_value(self, scopes: frozenset[str]) -> dict[str, Any]:
        def lister(root: str) -> Callable[..., Any]:
            return lambda _info, **args: self._list(root, scopes, args)

        def counter(root: str) -> Callable[..., Any]:
            return lambda _info, **args: self._count(root, scopes, args)

        return {
            "orders": lister("orders"),
            "customers": lister("customers"),
            "abandonedCheckouts": lister("abandonedCheckouts"),
            "ordersCount": counter("orders"),
            "customersCount": counter("customers"),
            "abandonedCheckoutsCount": counter("abandonedCheckouts"),
            "shop": {"name": "Example", "myshopifyDomain": "example.myshopify.com"},
            "currentAppInstallation": {
                "accessScopes": [{"handle": s, "description": s} for s in sorted(scopes)]
            },
            "nodes": lambda _info, ids: [self._node(i, scopes) for i in ids],
            "bulkOperation": lambda _info, id: self._bulk_status(id),
            "bulkOperationRunQuery": lambda _info, query, groupObjects=False: self._run_bulk(
                scopes, query
            ),
        }

    def _node(self, gid_: str, scopes: frozenset[str]) -> dict[str, Any] | None:
        """`nodes(ids:)`: an order by its gid (None, as Shopify answers, when there is none
        or the token may not see it)."""
        with self.lock:
            for order in self._visible("orders", scopes):
                if order["id"] == gid_:
                    return {**order, "__typename": "Order"}
        return None

    def attribute(self, order: dict[str, Any], first_visit: dict[str, Any]) -> None:
        """Shopify finishing an order's attribution: the journey becomes ready with its
        visits. `updatedAt` does not move (journey must not rely on it)."""
        with self.lock:
            journey = order["customerJourneySummary"]
            journey.update(
                ready=True, firstVisit=first_visit, lastVisit=first_visit, customerOrderIndex=1
            )

    def answer(self, token: str | None, body: Any, call: Call) -> tuple[int, Any]:
        """(HTTP status, JSON body) for one request to the GraphQL endpoint."""
        if not token or token not in self.tokens or token in self.revoked:
            return 401, {"errors": INVALID_TOKEN}
        scopes = self.tokens[token]
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return 400, {"errors": {"query": "Required parameter missing or invalid"}}
        variables = body.get("variables") or {}
        call.variables = dict(variables)
        try:
            document = parse(body["query"])
        except GraphQLError as exc:
            return 200, {"errors": [exc.formatted]}
        ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if ops:
            call.operation = ops[0].name.value if ops[0].name else None
            call.roots = [
                s.name.value for s in ops[0].selection_set.selections if isinstance(s, FieldNode)
            ]
        problems = validate(self.schema, document)
        if problems:
            call.errors = [e.message for e in problems]
            return 200, {"errors": [e.formatted for e in problems]}
        denied = [r for r in call.roots if r in ROOT_SCOPES and ROOT_SCOPES[r] not in scopes]
        if denied:
            scope = ROOT_SCOPES[denied[0]]
            return 200, {
                "errors": [
                    {
                        "message": f"Access denied for {denied[0]} field. Required access: "
                        f"`{scope}` access scope.",
                        "locations": [{"line": 1, "column": 1}],
                        "path": [denied[0]],
                        "extensions": {
                            "code": "ACCESS_DENIED",
                            "documentation": "https://shopify.dev/api/usage/access-scopes",
                            "requiredAccess": f"`{scope}` access scope.",
                        },
                    }
                ],
                "data": None,
            }
        requested = requested_cost(self.schema, ops[0], variables)
        call.cost = requested
        if requested > self.max_query_cost:
            return 200, {
                "errors": [
                    {
                        "message": f"Query cost is {requested}, which exceeds the single query "
                        f"max cost limit ({int(self.max_query_cost)}).",
                        "extensions": {
                            "code": "MAX_COST_EXCEEDED",
                            "cost": requested,
                            "maxCost": int(self.max_query_cost),
                        },
                    }
                ],
                "extensions": {"cost": self._cost(requested, None, self._status())},
            }
        ok, status = self._take(requested)
        if not ok:
            return self.throttled_status, self.throttled_body(requested, status)
        result = graphql_sync(
            self.schema,
            body["query"],
            root_value=self.root_value(scopes),
            variable_values=variables,
            operation_name=body.get("operationName"),
        )
        actual = min(requested, actual_cost(result.data)) if result.data else requested
        status = self._refund_points(requested - actual)
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            call.errors = [e.message for e in result.errors]
            out["errors"] = [e.formatted for e in result.errors]
        out["extensions"] = {"cost": self._cost(requested, actual, status)}
        return 200, out

    @staticmethod
    def _cost(requested: float, actual: float | None, status: dict[str, Any]) -> dict[str, Any]:
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": status,
        }

    def throttled_body(self, requested: float, status: dict[str, Any]) -> dict[str, Any]:
        return {
            "errors": [
                {
                    "message": "Throttled",
                    "extensions": {
                        "code": "THROTTLED",
                        "documentation": "https://shopify.dev/api/usage/rate-limits",
                    },
                }
            ],
            "extensions": {"cost": self._cost(requested, None, status)},
        }

    # --- what a test compares with ---

    def list_calls(self, root: str) -> list[Call]:
        return [c for c in self.calls if root in c.roots and c.status == 200 and not c.errors]


class _Handler(FakeHandler):
    fake: FakeShopify

    def do_GET(self) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        call = Call(None, [], {}, 0, path=parts.path)
        call.token_sent = self.headers.get("X-Shopify-Access-Token") is not None
        with fake.lock:
            fake.calls.append(call)
        if not parts.path.startswith(BULK_PATH):
            call.status = 404
            self._send(404, {"errors": "Not Found"})
            return
        fault = fake._faults.next_for(parts.path, self.path)
        if fault is not None:
            call.fault = fault.kind
            if fault.kind in ("drop", "slow") and self.transport_fault(fault, call):
                return
            if fault.kind in ("500", "429", "throttled"):
                call.status = 500
                self.write_answer(500, b"Internal Server Error", "text/plain", [])
                return
        path = fake.bulk_file(parts.path)
        if path is None:
            call.status = 403
            self.write_answer(
                403,
                b"<?xml version='1.0'?><Error><Code>ExpiredToken</Code></Error>",
                "application/xml",
                [],
            )
            return
        call.status = 200
        size = path.stat().st_size
        truncate = fault is not None and fault.kind == "truncate"
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/jsonl")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            with path.open("rb") as source:
                if truncate:  # cut mid-line, then drop the connection
                    self.wfile.write(source.read(max(1, size // 2 - 3)))
                    self.close_connection = True
                    return
                shutil.copyfileobj(source, self.wfile, 1 << 20)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_POST(self) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        call = Call(None, [], {}, 0, path=parts.path)
        with fake.lock:
            fake.calls.append(call)
            fake.request_bodies.append(raw.decode(errors="replace"))
        if parts.path != ENDPOINT:
            call.status = 404
            self._send(404, {"errors": "Not Found"})
            return
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        token = self.headers.get("X-Shopify-Access-Token")
        if token in fake.tokens and token not in fake.revoked:
            fault = fake._faults.next_for(parts.path, raw.decode(errors="replace"))
        else:
            fault = None
        if fault is not None:
            call.fault = fault.kind
            if self._fault(fault, call):
                return
        status, answer = fake.answer(token, body, call)
        call.status = status
        truncate = fault is not None and fault.kind == "truncate"
        self._send(status, answer, truncate=truncate)
        if (
            status == 200
            and not call.errors
            and fake.between_pages is not None
            and any(r in ("orders", "customers", "abandonedCheckouts") for r in call.roots)
        ):
            fake.between_pages(fake, call.roots[0], call)

    def _fault(self, fault: Fault, call: Call) -> bool:
        if fault.kind == "throttled":
            call.status = self.fake.throttled_status
            status = self.fake._status()
            body = self.fake.throttled_body(
                self.fake.maximum, {**status, "currentlyAvailable": 0.0}
            )
            self._send(call.status, body)
            return True
        if fault.kind == "429":
            call.status = 429
            headers = {"Retry-After": fault.retry_after or "2.0"}
            self._send(429, {"errors": "Too Many Requests"}, headers=headers)
            return True
        if fault.kind == "500":
            call.status = 500
            self._send(
                500,
                {"errors": "Internal Server Error: an unexpected error occurred (request id: x)"},
            )
            return True
        return self.transport_fault(fault, call)  # drop, slow, truncate

    def _send(
        self,
        status: int,
        body: Any,
        *,
        headers: dict[str, str] | None = None,
        truncate: bool = False,
    ) -> None:
        extra = [("X-Request-Id", "fake"), *(headers or {}).items()]
        self.write_answer(
            status, json_bytes(body, truncate), "application/json; charset=utf-8", extra
        )


FakeShopify.handler = _Handler


# --- a store to sync ---------------------------------------------------------------------

DAY = 86400
START = 1767225600  # 2026-01-01
CHANNELS = [
    ("Google", "google", "AD"),
    ("Instagram", None, "POST"),
    ("direct", None, None),
    ("Newsletter", "newsletter", "NEWSLETTER"),
    ("unknown", None, None),
]


def populate(fake: FakeShopify, *, seed: int = 11, customers: int = 30, start: int = START) -> None:
    """A small, varied shop: customers (some without a name or an email), first and repeat
    orders with journeys (UTM sources, plain sources, unknown, not ready yet), unpaid,
    partially and fully refunded and cancelled orders, a test order, an order of an
    erased customer (guest), abandoned and recovered checkouts, and a run of orders
    updated in the same second. Deterministic per seed."""
    rng = random.Random(seed)
    statuses = ["PAID"] * 6 + ["PARTIALLY_PAID", "PENDING", "AUTHORIZED", "VOIDED"]
    for n in range(customers):
        created = start + n * DAY // 2 + rng.randrange(3600)
        cus = fake.add_customer(
            created,
            first=f"Person{n}" if n % 7 else None,
            last="Example" if n % 3 else None,
            email=f"person{n}@example.com" if n % 11 else None,
        )
        for k in range(rng.randrange(0, 5)):
            at = created + (k + 1) * DAY * rng.randrange(2, 30)
            source, utm, tactic = rng.choice(CHANNELS)
            first = fake.visit(at - rng.randrange(1, 10) * DAY, source, utm_source=utm, kind=tactic)
            last = fake.visit(at - 600, rng.choice(["direct", "google"]))
            order = fake.add_order(
                at,
                f"{rng.randrange(5, 300)}.{rng.randrange(100):02d}",
                customer=cus,
                status=rng.choice(statuses),
                first_visit=first if k == 0 or rng.random() < 0.5 else None,
                last_visit=last if rng.random() < 0.7 else None,
                order_index=k + 1,
                updated=at + rng.randrange(0, 3) * DAY,
            )
            if order["displayFinancialStatus"] == "PAID" and rng.random() < 0.25:
                amount = order["totalPriceSet"]["shopMoney"]["amount"]
                fake.refund(order, amount if rng.random() < 0.4 else "5.00", at + 2 * DAY)
            if rng.random() < 0.1:
                fake.cancel(order, at + DAY)
        if rng.random() < 0.5:
            done = created + 2 * DAY if rng.random() < 0.3 else None
            fake.add_checkout(
                created + DAY, f"{rng.randrange(10, 90)}.00", customer=cus, completed=done
            )
    fake.add_checkout(start + 2 * DAY, "12.00", customer=None)  # no customer: nothing to map
    pending = fake.add_order(start + 40 * DAY, "30.00", customer=fake.customers[1001], ready=False)
    assert pending["customerJourneySummary"]["ready"] is False
    fake.add_order(start + 41 * DAY, "99.00", customer=fake.customers[1001], test=True)
    fake.add_order(start + 42 * DAY, "15.50", customer=None, email="Guest@Example.com")
    fake.add_order(start + 43 * DAY, "7.00", customer=None)  # no customer, no email: skipped
    fake.add_order(start + 44 * DAY, "9000", currency="JPY", customer=fake.customers[1001])
    tie = start + 30 * DAY  # a bulk edit: many orders updated in one second
    for oid in sorted(fake.orders)[:70]:
        fake.touch(fake.orders[oid], tie)


@pytest.fixture
def fake_shopify() -> Iterator[FakeShopify]:
    with FakeShopify() as fake:
        yield fake


# --- what the store should hold (the README's mapping, derived independently) ---------------

PAID = {"PAID", "PARTIALLY_PAID", "PARTIALLY_REFUNDED", "REFUNDED"}


def cents(amount: str, currency: str) -> int:
    return round(float(amount) * (1 if currency == "JPY" else 100))


def _channel(visit: dict[str, Any] | None) -> str | None:
    if not visit:
        return None
    utm = (visit.get("utmParameters") or {}).get("source")
    value = (utm or visit.get("source") or "").strip().lower()
    return None if value in ("", "unknown") else value


def expected_store(fake: FakeShopify) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """(customers, events) journey should hold for this shop.

    customers: external id -> (name, email, first_seen epoch, channel)
    events: external id -> (customer external id, kind, occurred_at epoch, amount)
    """
    customers: dict[str, tuple] = {}
    for c in fake.customers.values():
        name = " ".join(p for p in (c["firstName"], c["lastName"]) if p) or None
        email = (c["defaultEmailAddress"] or {}).get("emailAddress")
        customers[str(number(c["id"]))] = (name, email, parse_time(c["createdAt"]), None)
    events: dict[str, tuple] = {}
    channels: dict[str, str] = {}
    for o in fake.orders.values():
        oid = number(o["id"])
        if o["test"]:
            continue
        if o["customer"]:
            who = str(number(o["customer"]["id"]))
        elif o.get("email"):
            who = f"guest:{o['email'].lower()}"
        else:
            continue
        cur = o["totalPriceSet"]["shopMoney"]["currencyCode"]
        journey = o["customerJourneySummary"] or {}
        if not journey.get("ready", True):
            journey = {}
        first = journey.get("firstVisit")
        if first and journey.get("customerOrderIndex") in (None, 1):
            events[f"visit:{oid}"] = (who, "first_visit", parse_time(first["occurredAt"]), None)
            if _channel(first):
                channels[who] = _channel(first)  # type: ignore[assignment]
            customers.setdefault(who, (None, None, None, None))
        if o["displayFinancialStatus"] in PAID:
            events[f"order:{oid}"] = (
                who,
                "order",
                parse_time(o["processedAt"]),
                cents(o["totalPriceSet"]["shopMoney"]["amount"], cur),
            )
            customers.setdefault(who, (None, None, None, None))
        for r in o["refunds"]:
            events[f"order:{oid}:refund:{number(r['id'])}"] = (
                who,
                "refund",
                parse_time(r["createdAt"]),
                cents(r["totalRefundedSet"]["shopMoney"]["amount"], cur),
            )
            customers.setdefault(who, (None, None, None, None))
        if o["cancelledAt"]:
            events[f"order:{oid}:cancellation"] = (
                who,
                "cancellation",
                parse_time(o["cancelledAt"]),
                None,
            )
            customers.setdefault(who, (None, None, None, None))
    for x in fake.checkouts.values():
        if not x["customer"]:
            continue
        who = str(number(x["customer"]["id"]))
        kind = "checkout" if x["completedAt"] else "abandoned_checkout"
        cur = x["totalPriceSet"]["shopMoney"]["currencyCode"]
        events[f"checkout:{number(x['id'])}"] = (
            who,
            kind,
            parse_time(x["createdAt"]),
            cents(x["totalPriceSet"]["shopMoney"]["amount"], cur),
        )
    for who, ch in channels.items():
        name, email, seen, _ = customers[who]
        customers[who] = (name, email, seen, ch)
    return customers, events
