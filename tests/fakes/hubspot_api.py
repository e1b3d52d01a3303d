"""A fake HubSpot CRM v3 API over real HTTP on 127.0.0.1, for the connector and sync tests.

It answers in the shapes HubSpot documents (developers.hubspot.com: CRM search,
objects, properties, pipelines, associations v4, usage details and error
handling; shapes not found in an authoritative text are noted in
/work/shared/notes/store-apis.md and kept tolerant here):

- `GET /crm/v3/objects/{contacts,deals}?limit=&after=&properties=a,b`: by id,
  `{"results": [{"id", "properties", "createdAt", "updatedAt", "archived"}],
  "paging": {"next": {"after", "link"}}}`, no `paging` on the last page.
  `archived=true` lists only the archived records (with `archivedAt`); without
  it they are left out, as they are from search and association reads.
- `archive(kind, id)` archives a record; `merge_contacts(primary, merged)`
  merges as HubSpot does: the merged contact is gone (in no list), its deal
  associations move to the primary, whose `hs_merged_object_ids` names it and
  which keeps the earliest date of each lifecycle stage. Neither touches the
  deals' modification time (nothing documents that it would).
- `POST /crm/v3/objects/{contacts,deals}/search` with `filterGroups` (groups ORed,
  filters ANDed; EQ NEQ GT GTE LT LTE BETWEEN IN NOT_IN HAS_PROPERTY
  NOT_HAS_PROPERTY; datetimes compared as epoch milliseconds), one `sorts` entry,
  `properties`, `limit` (1-200, else 400) and `after` (an offset). Answers add
  `total`. No query pages past `search_cap` results (10,000 at HubSpot; small
  in tests): `after` at or beyond it is a 400 VALIDATION_ERROR. Ties in the sort
  key come in an unstable order (shuffled per request), as nothing promises one.
- Property values are strings (datetimes ISO 8601 with milliseconds and `Z`);
  a requested property the account defines but the record lacks is null, one
  the account does not define is left out.
- `GET /crm/v3/properties/contacts/lifecyclestage`: the property with its
  `options` (`label`, `value`, `displayOrder`, `hidden`); custom stages have
  numeric internal values and `hs_v2_date_entered_<id>` date properties.
- `GET /crm/v3/pipelines/deals`: pipelines and stages, won stages with
  `metadata.probability` "1.0" and `isClosed` "true".
- `POST /crm/v4/associations/deals/contacts/batch/read` with `{"inputs": [{"id",
  "after"?}]}`: `{"status": "COMPLETE", "results": [{"from": {"id"}, "to":
  [{"toObjectId", "associationTypes"}], "paging"?}]}`, `association_page` per deal.
- Auth `Authorization: Bearer <token>`: missing, unknown or revoked: 401
  (`category` INVALID_AUTHENTICATION); a token without a scope an endpoint needs:
  403 `category` MISSING_SCOPES with `errors[].context.requiredGranularScopes`.
- Rate limits, enforced as HubSpot documents them (developers.hubspot.com, API
  usage guidelines; CRM search guide), per `Limits`: a rolling window per app
  (token) of `window` requests per `window_ms` (100 per 10 s on Free and
  Starter, 190 on Professional and Enterprise, 250 with the capacity pack), and
  `search` requests per `search_ms` (5 a second) per account for the search
  endpoints. A request past either is refused with 429 and HubSpot's body
  (`errorType` RATE_LIMIT, `policyName` TEN_SECONDLY_ROLLING or SECONDLY) and is
  not counted. Whether searches also count in the app's window is not
  documented: `Limits.search_in_window` (on by default, the stricter reading).
  Every answer but a search's carries `X-HubSpot-RateLimit-Max`, `-Remaining`
  (left in the window after this request), `-Interval-Milliseconds`, `-Daily`
  and `-Daily-Remaining`; search answers carry none (as documented). Each
  `Call` records its arrival time (`at`, by `clock`: time.monotonic, or a fake
  timer a test shares with the connector) for throughput checks.

Fault injection: `fail(kind, path=..., times=...)` queues faults for the next
matching requests; `fail_each_request_once(kinds)` fails the first attempt at
every distinct request (path and body). Kinds: "429-secondly" and "429-ten"
(`errorType` RATE_LIMIT with `policyName` SECONDLY / TEN_SECONDLY_ROLLING),
"429-plain" (the other shape: `category` RATE_LIMITS and a message only),
"429-daily" (policyName DAILY), "500", "502" (an HTML gateway page), "slow",
"drop", "truncate" (an injected fault counts in the window like any request;
an injected 429 reports the window as it stands). `between_pages(fake,
object_type, call)` runs after each search page is served, to change records
while a sync pages through them.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.fakes.http_fake import FakeHandler, FakeHttpServer, Fault, FaultQueue, json_bytes

DEFAULT_TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
ALL_SCOPES = frozenset(
    {
        "crm.objects.contacts.read",
        "crm.objects.deals.read",
        "crm.schemas.contacts.read",
        "crm.schemas.deals.read",
    }
)
DEFAULT_STAGES = (
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
    ("evangelist", "Evangelist"),
    ("other", "Other"),
)
CONTACT_BASE = (
    "email",
    "firstname",
    "lastname",
    "createdate",
    "lastmodifieddate",
    "lifecyclestage",
    "hs_analytics_source",
    "hs_object_id",
    "hs_merged_object_ids",
    # Default contact properties "Phone Number" and "Mobile Phone Number" (the labels the
    # contacts export writes as columns; tests/data/imports/hubspot_contacts_export.csv).
    "phone",
    "mobilephone",
)
CONTACT_DEFAULT = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)
DEAL_BASE = (
    "dealname",
    "amount",
    "dealstage",
    "pipeline",
    "closedate",
    "createdate",
    "hs_lastmodifieddate",
    "hs_is_closed_won",
    "hs_object_id",
)
DEAL_DEFAULT = ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate",
                "hs_object_id", "pipeline")  # fmt: skip
MODIFIED = {"contacts": "lastmodifieddate", "deals": "hs_lastmodifieddate"}
DATETIMES = {"createdate", "lastmodifieddate", "hs_lastmodifieddate", "closedate"}
FAULTS = ("429-secondly", "429-ten", "429-plain", "429-daily", "500", "502", "slow", "drop",
          "truncate")  # fmt: skip
ALL_FAULTS = tuple(f for f in FAULTS if f != "429-daily")  # the ones a sync rides out


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{ms % 1000:03d}Z"
    )


def parse_ms(value: Any) -> int | None:
    if value is None:
        return None
    text = str(value)
    if text.lstrip("-").isdigit():
        return int(text)
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _error(message: str, category: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }


def _rate_body(policy: str | None) -> dict[str, Any]:
    if policy is None:  # the shape without a policy name
        return _error("You have reached your secondly limit.", "RATE_LIMITS")
    word = {"SECONDLY": "secondly", "TEN_SECONDLY_ROLLING": "ten_secondly_rolling",
            "DAILY": "daily"}[policy]  # fmt: skip
    return {
        "status": "error",
        "message": f"You have reached your {word} limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy,
        "groupName": f"publicapi:private-app-{word}:12345678",
    }


@dataclass
class Call:
    method: str
    path: str
    params: list[tuple[str, str]]
    body: Any
    status: int
    fault: str | None = None
    at: float = 0.0  # arrival, by the fake's `clock`


@dataclass(frozen=True)
class Limits:
    """HubSpot's documented request limits (defaults: Professional / Enterprise)."""

    window: int = 190  # requests per app in any `window_ms` (100 on Free and Starter)
    window_ms: int = 10_000
    search: int = 5  # search requests per account in any `search_ms`
    search_ms: int = 1_000
    search_in_window: bool = True  # (unconfirmed) searches also count in the app's window
    daily: int = 650_000


RELAXED = Limits(window=100_000, search=100_000)  # for tests about something else


@dataclass
class FakeHubSpot(FakeHttpServer):
    tokens: dict[str, frozenset[str]] = field(default_factory=lambda: {DEFAULT_TOKEN: ALL_SCOPES})
    search_cap: int = 10_000
    association_page: int = 500
    slow_seconds: float = 0.4
    calls: list[Call] = field(default_factory=list)
    between_pages: Callable[[FakeHubSpot, str, Call], None] | None = None
    limits: Limits = field(default_factory=Limits)
    clock: Callable[[], float] = time.monotonic  # the limits' clock (tests may share a fake one)

    def __post_init__(self) -> None:
        self.revoked: set[str] = set()
        self._windows: dict[str, deque[float]] = {}  # token -> arrival times counted
        self._searches: deque[float] = deque()  # the account's search arrivals
        self._daily: dict[str, int] = {}
        self.objects: dict[str, dict[str, dict[str, Any]]] = {"contacts": {}, "deals": {}}
        self.associations: dict[str, list[str]] = {}  # deal id -> contact ids
        self.stages: list[tuple[str, str]] = list(DEFAULT_STAGES)
        self.pipelines: list[dict[str, Any]] = [
            _pipeline("default", "Sales Pipeline", [
                ("appointmentscheduled", "Appointment Scheduled", 0.2, False),
                ("qualifiedtobuy", "Qualified To Buy", 0.4, False),
                ("contractsent", "Contract Sent", 0.9, False),
                ("closedwon", "Closed Won", 1.0, True),
                ("closedlost", "Closed Lost", 0.0, True),
            ]),
        ]  # fmt: skip
        self._ids = itertools.count(101)
        self._last_ms = 0
        self._rng = random.Random(5)
        self.lock = threading.RLock()
        self._faults = FaultQueue(FAULTS, self.lock)

    # --- faults ---

    def fail(self, kind: str, *, path: str | None = None, times: int = 1) -> None:
        self._faults.add(kind, path, times)

    def fail_each_request_once(self, kinds: tuple[str, ...] = ALL_FAULTS) -> None:
        self._faults.each_request_once(kinds)

    def _fault_for(self, path: str, key: str) -> Fault | None:
        return self._faults.next_for(path, key)

    # --- data ---

    def now_ms(self) -> int:
        """Modification times: the wall clock, strictly increasing."""
        with self.lock:
            self._last_ms = max(self._last_ms + 1, int(time.time() * 1000))
            return self._last_ms

    def add_stage(self, value: str, label: str, *, after: str | None = None) -> None:
        """A custom lifecycle stage (HubSpot gives those numeric internal values), after
        the stage `after`, else just before `other` (where HubSpot's settings add one)."""
        with self.lock:
            values = [v for v, _ in self.stages]
            at = values.index(after) + 1 if after is not None else len(self.stages) - 1
            self.stages.insert(at, (value, label))

    # --- rate limits ---

    def admit(self, token: str, search: bool, now: float) -> tuple[str | None, dict[str, str]]:
        """Count a request arriving at `now` against the limits: (the policy it broke or
        None, the rate headers its answer carries)."""
        lim = self.limits
        with self.lock:
            window = self._windows.setdefault(token, deque())
            while window and window[0] <= now - lim.window_ms / 1000:
                window.popleft()
            while self._searches and self._searches[0] <= now - lim.search_ms / 1000:
                self._searches.popleft()
            counts = not search or lim.search_in_window
            broke = None
            if search and len(self._searches) >= lim.search:
                broke = "SECONDLY"
            elif counts and len(window) >= lim.window:
                broke = "TEN_SECONDLY_ROLLING"
            else:
                if search:
                    self._searches.append(now)
                if counts:
                    window.append(now)
                self._daily[token] = self._daily.get(token, 0) + 1
            if search:
                return broke, {}  # search answers carry no rate headers
            return broke, self.rate_headers(token)

    def rate_headers(self, token: str) -> dict[str, str]:
        lim = self.limits
        with self.lock:
            used = len(self._windows.get(token, ()))
            return {
                "X-HubSpot-RateLimit-Max": str(lim.window),
                "X-HubSpot-RateLimit-Remaining": str(max(0, lim.window - used)),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(lim.window_ms),
                "X-HubSpot-RateLimit-Daily": str(lim.daily),
                "X-HubSpot-RateLimit-Daily-Remaining": str(
                    max(0, lim.daily - self._daily.get(token, 0))
                ),
            }

    def stage_date_property(self, stage: str) -> str:
        if stage in dict(DEFAULT_STAGES):
            return f"hs_lifecyclestage_{stage}_date"
        return f"hs_v2_date_entered_{stage}"

    def contact_properties(self) -> set[str]:
        return set(CONTACT_BASE) | {self.stage_date_property(s) for s, _ in self.stages}

    def add_contact(
        self,
        created: int,
        *,
        email: str | None = None,
        firstname: str | None = None,
        lastname: str | None = None,
        source: str | None = None,
        stages: dict[str, int] | None = None,
        modified: int | None = None,
        phone: str | None = None,
        mobilephone: str | None = None,
    ) -> dict[str, Any]:
        """`created`, `stages` (stage -> entered at) and `modified` in epoch milliseconds."""
        with self.lock:
            cid = str(next(self._ids))
            props: dict[str, str | None] = {
                "email": email,
                "firstname": firstname,
                "lastname": lastname,
                "createdate": iso(created),
                "hs_analytics_source": source,
                "hs_object_id": cid,
                "phone": phone,
                "mobilephone": mobilephone,
            }
            obj = {"id": cid, "properties": props, "createdAt": iso(created), "archived": False}
            self.objects["contacts"][cid] = obj
            for stage, at in (stages or {}).items():
                props[self.stage_date_property(stage)] = iso(at)
                props["lifecyclestage"] = stage
            self._touch("contacts", cid, modified if modified is not None else created)
            return obj

    def update_contact(self, cid: str, *, at: int | None = None, **props: str | None) -> None:
        with self.lock:
            self.objects["contacts"][cid]["properties"].update(props)
            self._touch("contacts", cid, at)

    def enter_stage(self, cid: str, stage: str, at: int | None = None) -> None:
        with self.lock:
            at = at if at is not None else self.now_ms()
            props = self.objects["contacts"][cid]["properties"]
            props[self.stage_date_property(stage)] = iso(at)
            props["lifecyclestage"] = stage
            self._touch("contacts", cid, None)

    def add_deal(
        self,
        amount: str | None,
        stage: str,
        *,
        contacts: list[str],
        created: int,
        closed: int | None = None,
        pipeline: str = "default",
        name: str = "Deal",
        modified: int | None = None,
    ) -> dict[str, Any]:
        with self.lock:
            did = str(next(self._ids))
            props = {
                "dealname": name,
                "amount": amount,
                "dealstage": stage,
                "pipeline": pipeline,
                "createdate": iso(created),
                "closedate": iso(closed) if closed is not None else None,
                "hs_object_id": did,
            }
            obj = {"id": did, "properties": props, "createdAt": iso(created), "archived": False}
            self.objects["deals"][did] = obj
            self.associations[did] = list(contacts)
            self._touch("deals", did, modified if modified is not None else created)
            self._won_flag(did)
            return obj

    def move_deal(self, did: str, stage: str, *, closed: int | None = None) -> None:
        with self.lock:
            props = self.objects["deals"][did]["properties"]
            props["dealstage"] = stage
            if closed is not None:
                props["closedate"] = iso(closed)
            self._won_flag(did)
            self._touch("deals", did, None)

    def _won_flag(self, did: str) -> None:
        props = self.objects["deals"][did]["properties"]
        props["hs_is_closed_won"] = "true" if props["dealstage"] in self.won_stages() else "false"

    def won_stages(self) -> set[str]:
        return {
            s["id"]
            for p in self.pipelines
            for s in p["stages"]
            if float(s["metadata"]["probability"]) >= 1.0
        }

    def archive(self, kind: str, oid: str, at: int | None = None) -> None:
        with self.lock:
            obj = self.objects[kind][oid]
            obj["archived"] = True
            obj["archivedAt"] = iso(at if at is not None else self.now_ms())

    def merge_contacts(self, primary: str, merged: str, at: int | None = None) -> None:
        with self.lock:
            gone = self.objects["contacts"].pop(merged)
            props = self.objects["contacts"][primary]["properties"]
            for stage, _label in self.stages:
                name = self.stage_date_property(stage)
                dates = [d for d in (props.get(name), gone["properties"].get(name)) if d]
                if dates:
                    props[name] = min(dates, key=lambda d: parse_ms(d) or 0)
            ids = [i for i in (props.get("hs_merged_object_ids") or "").split(";") if i]
            props["hs_merged_object_ids"] = ";".join([*ids, merged])
            for contacts in self.associations.values():
                if merged in contacts:
                    contacts[:] = [c for c in contacts if c != merged]
                    if primary not in contacts:
                        contacts.append(primary)
            self._touch("contacts", primary, at)

    def _touch(self, kind: str, oid: str, at: int | None) -> None:
        at = at if at is not None else self.now_ms()
        obj = self.objects[kind][oid]
        obj["properties"][MODIFIED[kind]] = iso(at)
        obj["updatedAt"] = iso(at)

    # --- HTTP semantics ---

    def auth(self, header: str | None, scope: str) -> tuple[int, dict[str, Any]] | None:
        token = header.removeprefix("Bearer ").strip() if header else ""
        if not token or token not in self.tokens or token in self.revoked:
            return 401, _error(
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION",
            )
        if scope not in self.tokens[token]:
            return 403, _error(
                "This app hasn't been granted all required scopes to make this call. Read more "
                "about required scopes here: https://developers.hubspot.com/scopes.",
                "MISSING_SCOPES",
                errors=[
                    {
                        "message": "One or more of the following scopes are required.",
                        "context": {"requiredGranularScopes": [scope]},
                    }
                ],
                links={"scopes": "https://developers.hubspot.com/scopes"},
            )
        return None

    def _render(self, kind: str, obj: dict[str, Any], wanted: list[str] | None) -> dict[str, Any]:
        defined = self.contact_properties() if kind == "contacts" else set(DEAL_BASE)
        names = wanted if wanted else list(CONTACT_DEFAULT if kind == "contacts" else DEAL_DEFAULT)
        props = {n: obj["properties"].get(n) for n in names if n in defined}
        out = {
            "id": obj["id"],
            "properties": props,
            "createdAt": obj["createdAt"],
            "updatedAt": obj["updatedAt"],
            "archived": obj["archived"],
        }
        if obj["archived"]:
            out["archivedAt"] = obj["archivedAt"]
        return out

    def list_objects(self, kind: str, params: list[tuple[str, str]]) -> tuple[int, Any]:
        one = dict(params)
        limit = int(one.get("limit", "10"))
        if not 1 <= limit <= 100:
            return 400, _error("limit must be between 1 and 100", "VALIDATION_ERROR")
        wanted = [p for v in (v for k, v in params if k == "properties") for p in v.split(",") if p]
        with self.lock:
            archived = one.get("archived", "false").lower() == "true"
            items = sorted(
                (o for o in self.objects[kind].values() if o["archived"] == archived),
                key=lambda o: int(o["id"]),
            )
            after = one.get("after")
            if after:
                items = [o for o in items if int(o["id"]) > int(after)]
            page = [self._render(kind, o, wanted) for o in items[:limit]]
        body: dict[str, Any] = {"results": page}
        if len(items) > limit:
            nxt = page[-1]["id"]
            body["paging"] = {"next": {"after": nxt, "link": f"/crm/v3/objects/{kind}?after={nxt}"}}
        return 200, body

    def search(self, kind: str, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            return 400, _error("Invalid input JSON", "VALIDATION_ERROR")
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or not 1 <= limit <= 200:
            return 400, _error("limit must be between 1 and 200", "VALIDATION_ERROR")
        after = int(body.get("after") or 0)
        if after >= self.search_cap:
            return 400, _error(
                f"There was a problem with the request. Paging beyond {self.search_cap} "
                "results is not supported.",
                "VALIDATION_ERROR",
            )
        sorts = body.get("sorts") or []
        if len(sorts) > 1:
            return 400, _error("Only one sort is allowed.", "VALIDATION_ERROR")
        with self.lock:
            items = [
                o for o in self.objects[kind].values() if not o["archived"] and _matches(o, body)
            ]
            self._rng.shuffle(items)  # ties come in no promised order
            if sorts:
                sort = sorts[0]
                name = sort["propertyName"] if isinstance(sort, dict) else sort.lstrip("-")
                desc = (sort.get("direction") == "DESCENDING") if isinstance(sort, dict) else (
                    sort.startswith("-"))  # fmt: skip
                items.sort(key=lambda o: _sort_key(o, name), reverse=desc)
            else:
                items.sort(key=lambda o: int(o["id"]))
            total = len(items)
            window = items[: self.search_cap]
            page = [self._render(kind, o, body.get("properties")) for o in window[after:after + limit]]  # fmt: skip
        answer: dict[str, Any] = {"total": total, "results": page}
        if after + limit < len(window):
            answer["paging"] = {"next": {"after": str(after + limit), "link": None}}
        return 200, answer

    def associations_read(self, body: Any) -> tuple[int, Any]:
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list):
            return 400, _error("Invalid input JSON", "VALIDATION_ERROR")
        results = []
        with self.lock:
            for item in inputs:
                did = str(item.get("id"))
                if did not in self.objects["deals"] or self.objects["deals"][did]["archived"]:
                    continue
                start = int(item.get("after") or 0)
                contacts = [
                    c
                    for c in self.associations.get(did, [])
                    if c in self.objects["contacts"] and not self.objects["contacts"][c]["archived"]
                ]
                chunk = contacts[start : start + self.association_page]
                result: dict[str, Any] = {
                    "from": {"id": did},
                    "to": [
                        {
                            "toObjectId": int(c),
                            "associationTypes": [
                                {"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None}
                            ],
                        }
                        for c in chunk
                    ],
                }
                if start + self.association_page < len(contacts):
                    nxt = str(start + self.association_page)
                    result["paging"] = {"next": {"after": nxt, "link": None}}
                if chunk or start == 0:
                    results.append(result)
        now = iso(int(time.time() * 1000))
        return 200, {"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now}

    def lifecycle_property(self) -> dict[str, Any]:
        return {
            "name": "lifecyclestage",
            "label": "Lifecycle Stage",
            "type": "enumeration",
            "fieldType": "radio",
            "groupName": "contactinformation",
            "options": [
                {"label": label, "value": value, "displayOrder": i, "hidden": False}
                for i, (value, label) in enumerate(self.stages)
            ],
            "calculated": False,
            "hasUniqueValue": False,
            "hidden": False,
        }

    # --- what a test compares with ---

    def all(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(json.dumps(o)) for o in self.objects[kind].values()]

    def searches(self, kind: str) -> list[Call]:
        path = f"/crm/v3/objects/{kind}/search"
        return [c for c in self.calls if c.path == path and c.status == 200 and not c.fault]


def _pipeline(pid: str, label: str, stages: list[tuple[str, str, float, bool]]) -> dict[str, Any]:
    return {
        "id": pid,
        "label": label,
        "displayOrder": 0,
        "archived": False,
        "stages": [
            {
                "id": sid,
                "label": slabel,
                "displayOrder": i,
                "archived": False,
                "metadata": {
                    "isClosed": "true" if closed else "false",
                    "probability": f"{probability:.1f}",
                },
            }
            for i, (sid, slabel, probability, closed) in enumerate(stages)
        ],
    }


def _value(obj: dict[str, Any], name: str) -> Any:
    if name == "hs_object_id":
        return int(obj["id"])
    raw = obj["properties"].get(name)
    if raw is None:
        return None
    if name in DATETIMES or name.startswith(("hs_lifecyclestage_", "hs_v2_date_entered_")):
        return parse_ms(raw)
    if name == "amount":
        return Decimal(raw)
    return raw


def _sort_key(obj: dict[str, Any], name: str) -> tuple[int, Any]:
    value = _value(obj, name)
    return (1, 0) if value is None else (0, value)


def _coerce(sample: Any, value: Any) -> Any:
    if isinstance(sample, int):
        return parse_ms(value) if not str(value).lstrip("-").isdigit() else int(value)
    if isinstance(sample, Decimal):
        return Decimal(str(value))
    return str(value)


def _matches(obj: dict[str, Any], body: dict[str, Any]) -> bool:
    groups = body.get("filterGroups") or []
    if not groups:
        return True
    return any(all(_test(obj, f) for f in g.get("filters") or []) for g in groups)


def _test(obj: dict[str, Any], flt: dict[str, Any]) -> bool:
    value = _value(obj, flt["propertyName"])
    op = flt.get("operator", "EQ")
    if op == "HAS_PROPERTY":
        return value is not None
    if op == "NOT_HAS_PROPERTY":
        return value is None
    if value is None:
        return op in {"NEQ", "NOT_IN"}
    if op in {"IN", "NOT_IN"}:
        inside = value in {_coerce(value, v) for v in flt.get("values") or []}
        return inside if op == "IN" else not inside
    target = _coerce(value, flt.get("value"))
    if op == "BETWEEN":
        return target <= value <= _coerce(value, flt.get("highValue"))
    return {
        "EQ": value == target,
        "NEQ": value != target,
        "GT": value > target,
        "GTE": value >= target,
        "LT": value < target,
        "LTE": value <= target,
    }[op]


ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/crm/v3/objects/contacts"): "crm.objects.contacts.read",
    ("GET", "/crm/v3/objects/deals"): "crm.objects.deals.read",
    ("POST", "/crm/v3/objects/contacts/search"): "crm.objects.contacts.read",
    ("POST", "/crm/v3/objects/deals/search"): "crm.objects.deals.read",
    ("GET", "/crm/v3/properties/contacts/lifecyclestage"): "crm.schemas.contacts.read",
    ("GET", "/crm/v3/pipelines/deals"): "crm.objects.deals.read",
    ("POST", "/crm/v4/associations/deals/contacts/batch/read"): "crm.objects.deals.read",
}


class _Handler(FakeHandler):
    fake: FakeHubSpot

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    rate_headers: dict[str, str]

    def _handle(self, method: str) -> None:
        arrived = self.fake.clock()
        fake = self.fake
        parts = urlsplit(self.path)
        params = parse_qsl(parts.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self._send(400, _error("Invalid input JSON on line 1", "VALIDATION_ERROR"))
            return
        scope = ROUTES.get((method, parts.path))
        call = Call(method, parts.path, params, body, 0, at=arrived)
        self.rate_headers = {}
        with fake.lock:
            fake.calls.append(call)
        if scope is None:
            call.status = 404
            self._send(404, _error(f"Unable to route {method} {parts.path}", "OBJECT_NOT_FOUND"))
            return
        denied = fake.auth(self.headers.get("Authorization"), scope)
        if denied is not None:
            call.status = denied[0]
            self._send(*denied)
            return
        token = str(self.headers.get("Authorization")).removeprefix("Bearer ").strip()
        broke, self.rate_headers = fake.admit(token, parts.path.endswith("/search"), arrived)
        if broke is not None:
            call.status = 429
            headers = {"X-HubSpot-RateLimit-Remaining": "0"} if self.rate_headers else {}
            self._send(429, _rate_body(broke), headers=headers)
            return
        fault = fake._fault_for(parts.path, f"{method} {self.path} {raw.decode()}")
        if fault is not None:
            call.fault = fault.kind
            if self._fault(fault, call):
                return
        if parts.path.endswith("/search"):
            kind = parts.path.split("/")[4]
            status, answer = fake.search(kind, body)
        elif parts.path.startswith("/crm/v3/objects/"):
            status, answer = fake.list_objects(parts.path.split("/")[4], params)
        elif parts.path.endswith("lifecyclestage"):
            status, answer = 200, fake.lifecycle_property()
        elif parts.path.endswith("/pipelines/deals"):
            status, answer = 200, {"results": json.loads(json.dumps(fake.pipelines))}
        else:
            status, answer = fake.associations_read(body)
        call.status = status
        self._send(status, answer, truncate=fault is not None and fault.kind == "truncate")
        if status == 200 and parts.path.endswith("/search") and fake.between_pages is not None:
            fake.between_pages(fake, parts.path.split("/")[4], call)

    def _fault(self, fault: Fault, call: Call) -> bool:
        policy = {"429-secondly": "SECONDLY", "429-ten": "TEN_SECONDLY_ROLLING",
                  "429-daily": "DAILY", "429-plain": None}  # fmt: skip
        if fault.kind in policy:
            call.status = 429
            interval = "10000" if fault.kind == "429-ten" else "1000"
            self._send(429, _rate_body(policy[fault.kind]),
                       headers={"X-HubSpot-RateLimit-Interval-Milliseconds": interval})  # fmt: skip
        elif fault.kind == "500":
            call.status = 500
            self._send(500, _error("internal error", "INTERNAL_ERROR"))
        elif fault.kind == "502":
            call.status = 502
            self._send_raw(502, b"<html><body>502 Bad Gateway</body></html>", "text/html")
        else:  # drop, slow, truncate
            return self.transport_fault(fault, call)
        return True

    def _send(
        self,
        status: int,
        body: Any,
        *,
        headers: dict[str, str] | None = None,
        truncate: bool = False,
    ) -> None:
        self._send_raw(
            status, json_bytes(body, truncate), "application/json;charset=utf-8", headers
        )

    def _send_raw(
        self, status: int, data: bytes, ctype: str, headers: dict[str, str] | None = None
    ) -> None:
        rate = {**getattr(self, "rate_headers", {}), **(headers or {})}
        extra = [("X-HubSpot-Correlation-Id", str(uuid.uuid4())), *rate.items()]
        self.write_answer(status, data, ctype, extra)


FakeHubSpot.handler = _Handler


# --- an account to sync --------------------------------------------------------------------

DAY_MS = 86_400_000
START_MS = 1_767_225_600_000  # 2026-01-01
SOURCES = ("ORGANIC_SEARCH", "PAID_SOCIAL", "EMAIL_MARKETING", "DIRECT_TRAFFIC", None)
PATH = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
        "customer", "evangelist")  # fmt: skip


def populate(
    fake: FakeHubSpot, *, seed: int = 11, contacts: int = 40, start: int = START_MS
) -> None:
    """A small, varied account: contacts at every point of the lifecycle (some skipping
    stages, some with nothing filled in), deals open, won and lost, with one, two or no
    contacts, amounts with cents or none. Deterministic per seed."""
    rng = random.Random(seed)
    ids: list[str] = []
    for n in range(contacts):
        created = start + n * DAY_MS // 2 + rng.randrange(3_600_000)
        reach = rng.randrange(0, len(PATH))
        first = rng.choice([0, 0, 1])
        stages = {}
        at = created
        for stage in PATH[first : reach + 1]:
            if rng.random() < 0.15 and stage not in ("customer",):
                continue  # stages get skipped
            at += rng.randrange(1, 10) * DAY_MS
            stages[stage] = at
        c = fake.add_contact(
            created,
            email=f"person{n}@example.com" if n % 9 else None,
            firstname=f"Person{n}" if n % 7 else None,
            lastname=f"Last{n}" if n % 5 else None,
            source=rng.choice(SOURCES),
            stages=stages,
            modified=max([created, *stages.values()]),
        )
        ids.append(c["id"])
    for n in range(contacts // 2):
        who = rng.sample(ids, rng.choice([1, 1, 1, 2]))
        stage = rng.choice(["closedwon", "closedwon", "closedlost", "qualifiedtobuy"])
        created = start + n * DAY_MS
        closed = created + rng.randrange(1, 30) * DAY_MS if stage.startswith("closed") else None
        amount = rng.choice(["1500", "1499.99", "250.5", None, "10000.00"])
        fake.add_deal(amount, stage, contacts=who, created=created, closed=closed,
                      name=f"Deal {n}", modified=(closed or created) + 1000)  # fmt: skip
    fake.add_deal("99.00", "closedwon", contacts=[], created=start, closed=start + DAY_MS,
                  name="No contact")  # fmt: skip


@pytest.fixture
def fake_hubspot() -> Iterator[FakeHubSpot]:
    with FakeHubSpot() as fake:
        yield fake


# --- what the store should hold (the README's mapping, derived independently) ---------------


def expected_store(fake: FakeHubSpot) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """customers: id -> (name, email, first_seen epoch s, channel);
    events: external id -> (customer id, kind, occurred_at epoch s, amount cents)."""
    customers: dict[str, tuple] = {}
    events: dict[str, tuple] = {}
    live = {c["id"] for c in fake.all("contacts") if not c["archived"]}
    for c in fake.all("contacts"):
        if c["archived"]:
            continue
        p = c["properties"]
        name = " ".join(x for x in (p.get("firstname"), p.get("lastname")) if x) or None
        source = p.get("hs_analytics_source")
        customers[c["id"]] = (
            name,
            p.get("email"),
            parse_ms(p["createdate"]) // 1000,
            source.lower() if source else None,
        )
        for stage, _label in fake.stages:
            at = p.get(fake.stage_date_property(stage))
            if at:
                events[f"lifecycle:{c['id']}:{stage}"] = (
                    c["id"],
                    f"hubspot_stage:{stage}",
                    parse_ms(at) // 1000,
                    None,
                )
    won = fake.won_stages()
    for d in fake.all("deals"):
        if d["archived"]:
            continue
        p = d["properties"]
        who = sorted((c for c in fake.associations[d["id"]] if c in live), key=int)
        if p["dealstage"] not in won or not who or not p.get("closedate"):
            continue
        cents = None if p["amount"] is None else int(Decimal(p["amount"]) * 100)
        for i, cid in enumerate(who):
            share = None
            if cents is not None:
                share = cents // len(who) + (1 if i < cents % len(who) else 0)
            events[f"deal:{d['id']}:{cid}"] = (
                cid,
                "order",
                parse_ms(p["closedate"]) // 1000,
                share,
            )
            customers.setdefault(cid, (None, None, None, None))
    return customers, events
