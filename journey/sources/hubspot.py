"""HubSpot CRM: contacts and their lifecycle stages, closed-won deals as orders.

How HubSpot records become store records (docs/connectors.md, "HubSpot: what becomes what"):

| HubSpot record | journey record |
| --- | --- |
| contact | a customer (its HubSpot id): name = firstname lastname, email, first seen = `createdate`, channel = `hs_analytics_source` in lower case (`organic_search`, `paid_social`...) |
| each lifecycle stage date of a contact (`hs_lifecyclestage_<stage>_date`, or `hs_v2_date_entered_<stage>`) | an event `lifecycle:<contact>:<stage>` of kind `hubspot_stage:<stage>` at that date |
| deal in a closed-won stage, with associated contacts | an `order` event `deal:<deal>:<contact>` per associated contact at `closedate`; `amount` (a decimal string) in cents, split evenly among the contacts so the deal's money is counted once |

Lifecycle stages. The account's own list is read from
`GET /crm/v3/properties/contacts/lifecyclestage` at every sync, first, as the
resource `lifecycle_stages`: its cursor keeps the list (value and label, in the
account's order) with the source, so stages an account added (whose internal
ids are numbers such as `1234567`) are read too and can be shown with their
labels (`journey stages show`). Each stage is a kind of its own, and
journey.stages (`hubspot_lifecycle`) gives each a default journey stage:
HubSpot's meaning for the built-in ones (subscriber and lead: awareness;
marketing and sales qualified lead: consideration; opportunity: decision;
customer: purchase; evangelist: advocacy; `other`: no stage), a custom stage's
label when it names a known stage, else the stage of the nearest stage before
it in the account's order. The workspace changes any of them with
`journey stages set <stages> --map hubspot_stage:1234567=decision`.

What takes records away (the store stays equal to the account): every contact
and deal read says which events it implies now (`Records.families`), so a deal
moved out of closed won loses its orders, and a contact's lifecycle events
follow its dates. Archived contacts and deals are read from the archived lists
(`GET /crm/v3/objects/{contacts,deals}?archived=true`, every sync, from the
archive time of the last one on): an archived contact is removed with all its
events (deal shares included), an archived deal loses its orders. A merged
contact's primary lists the merged ids in `hs_merged_object_ids`: those
contacts are removed with their events the same way. A won deal whose contacts
changed is split again when the deal itself is modified.

Closed won. A deal counts when its stage is a won stage of its pipeline
(`GET /crm/v3/pipelines/deals`: a stage with probability 1.0, HubSpot's mark of
a won stage, which custom pipelines keep) or its `hs_is_closed_won` is true.

Incremental reads. Both lists come from the search API (`POST
/crm/v3/objects/{contacts,deals}/search`), sorted by last-modified time
ascending. Search paging (`after`) is an offset: a record changed while a pass
runs moves to the end and shifts every later page, so offset paging skips
records; and a query can never page past its 10,000th result (HTTP 400). So no
request here pages with `after`: every page is a new query from the highest
modification time read so far (`>= high`, skipping the ids already read at
exactly that time), bounded above by the time the pass began. A result set of
any size is read in windows that each start at offset 0, so the cap is never
reached; a run of more than a page of records sharing one millisecond (a bulk
import) is read by id (`hs_object_id > last`) within that millisecond. A pass
starts 10 minutes below the previous watermark, because search lags writes by
a few seconds; re-read records are upserts.

Rate limits, paced ahead of time rather than discovered by 429s. HubSpot
counts a private app's requests in a rolling window (10 s: 100 requests on
Free and Starter, 190 on Professional and Enterprise, 250 with the API limit
increase) and every answer but a search's says where the window stands
(`X-HubSpot-RateLimit-Max`, `-Remaining`, `-Interval-Milliseconds`). Every
request, first attempts and retries alike, waits in `RateWindow` until the
window has room: our own requests of the last interval stay below Max less a
4 % reserve, and so does the latest `Remaining` (which also counts the app's
other clients). Search has its own limit, 5 requests a second per account,
and its answers carry no rate headers, so searches are started at fixed
start-to-start intervals of 1/(5 x 0.93) s (about 4.65 a second; start to
start, so the time a search takes is not added to the pause). A 429 that
still comes (another client of the account took the room) is retried: with
`policyName` SECONDLY or TEN_SECONDLY_ROLLING (or only `"category":
"RATE_LIMITS"` and a message) after the interval HubSpot names in
`X-HubSpot-RateLimit-Interval-Milliseconds`, else 1 s or 10 s. DAILY means the
account's daily allowance is spent: the sync stops at once, says so, and
resumes where it stopped on the next sync. 401: the token is wrong or was
deleted or rotated; 403 `MISSING_SCOPES`: the private app lacks the scopes
named in the answer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, ClassVar

import httpx

from journey.ingest import CustomerRecord, EventFamily, EventRecord
from journey.matching import MAX_PHONE
from journey.sources.base import Connector, Page, Raw, Records, Resource, Watermark
from journey.sources.http import (
    AuthError,
    BadRequest,
    HttpClient,
    HttpOptions,
    RateLimited,
    Retryable,
    ScopeError,
    Unreachable,
)
from journey.stages import LIFECYCLE_RESOURCE

log = logging.getLogger(__name__)

PAGE_SIZE = 200  # the search API's maximum
ASSOCIATION_BATCH = 100
SEARCH_LIMIT = 5.0  # search requests a second, per account (HubSpot's CRM search guide)
# Share of it used: the rest absorbs the jitter between our start times and HubSpot's
# arrival times (5 intervals span 1.075 s, so one search may arrive 75 ms late).
SEARCH_SHARE = 0.93
SEARCH_INTERVAL = 1 / (SEARCH_LIMIT * SEARCH_SHARE)  # seconds from one search's start to the next
WINDOW_LIMIT = 100  # requests per window assumed until an answer's headers say (the lowest tier)
WINDOW_SECONDS = 10.0
MAX_WINDOW_SECONDS = 60.0
WINDOW_RESERVE = 0.04  # share of the window left unused (at least one request)
WINDOW_MARGIN = 0.01  # a request counts as gone from the window only this much (of it) later
DEFAULT_LIFECYCLE = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
CONTACT_PROPERTIES = (
    "email",
    "firstname",
    "lastname",
    "createdate",
    "lastmodifieddate",
    "lifecyclestage",
    "hs_analytics_source",
    "hs_merged_object_ids",
    "phone",
    "mobilephone",
)
DEAL_PROPERTIES = (
    "dealname",
    "amount",
    "dealstage",
    "pipeline",
    "closedate",
    "createdate",
    "hs_lastmodifieddate",
    "hs_is_closed_won",
)
SCOPES = (
    "crm.objects.contacts.read",
    "crm.objects.deals.read",
    "crm.schemas.contacts.read",
)
STAGE_KIND = "hubspot_stage:"
MAX_KIND = 64
MAX_NAME, MAX_EMAIL, MAX_CHANNEL, MAX_LABEL = 300, 320, 100, 100
_TOKEN = re.compile(r"\bpat-[A-Za-z0-9-]+")


class HubSpotConnector(Connector):
    kind: ClassVar[str] = "hubspot"
    service: ClassVar[str] = "HubSpot"
    default_base_url: ClassVar[str] = "https://api.hubapi.com"
    secret_prompt: ClassVar[str] = "HubSpot private app access token (pat-...)"
    resources: ClassVar[tuple[Resource, ...]] = (
        # The account's lifecycle stages: no records, the list itself is the cursor.
        Resource(
            LIFECYCLE_RESOURCE,
            "/crm/v3/properties/contacts/lifecyclestage",
            cursor_field="options",
            paging="none",
            defines_stages=True,
        ),
        Resource(
            "contacts",
            "/crm/v3/objects/contacts/search",
            cursor_field="lastmodifieddate",
            paging="keyset",
            overlap=timedelta(minutes=10),
        ),
        Resource(
            "deals",
            "/crm/v3/objects/deals/search",
            cursor_field="hs_lastmodifieddate",
            paging="keyset",
            overlap=timedelta(minutes=10),
        ),
        Resource(
            "archived_contacts",
            "/crm/v3/objects/contacts",
            cursor_field="archivedAt",
            paging="after",
            overlap=timedelta(minutes=10),
            params={"archived": "true"},
        ),
        Resource(
            "archived_deals",
            "/crm/v3/objects/deals",
            cursor_field="archivedAt",
            paging="after",
            overlap=timedelta(minutes=10),
            params={"archived": "true"},
        ),
    )

    def __init__(
        self,
        secret: str,
        settings: Mapping[str, str] | None = None,
        *,
        base_url: str | None = None,
        http: HttpOptions | None = None,
        page_size: int = PAGE_SIZE,
        search_interval: float = SEARCH_INTERVAL,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        """`clock` (epoch seconds) bounds search passes; `timer` and `sleep` pace the
        requests (tests pass a fake pair); `search_interval` 0 turns search spacing off."""
        super().__init__(secret, settings, base_url=base_url, http=http)
        self.page_size = page_size
        self.search_interval = search_interval
        self.clock = clock
        self.sleep = sleep
        self.timer = timer
        self.window = RateWindow(timer=timer, sleep=sleep)
        self._last_search: float | None = None
        self._searching = False
        self._stages: tuple[tuple[str, str], ...] | None = None
        self._won: set[str] | None = None
        options = self.http_options
        # A retry is a request too: after the retry's own wait it is paced like any other.
        retry = replace(options.retry, sleep=self._paced_retry(options.retry.sleep))
        self.http = HttpClient(
            self.service,
            self.base_url,
            headers={"Authorization": f"Bearer {secret}"},
            options=replace(options, retry=retry),
            interpret=self._interpret,
        )

    def close(self) -> None:
        self.http.close()

    def check(self) -> None:
        """The token works and can read contacts, their lifecycle stages and deals."""
        self._call("GET", "/crm/v3/objects/contacts", params={"limit": 1})
        self.lifecycle_stages()
        self.won_stages()

    # --- pacing ---

    def _interpret(self, response: httpx.Response) -> Exception | None:
        """Every answer (429s and retried ones included) tells the window where it stands."""
        self.window.observe(response.headers)
        return interpret(response)

    def _paced_retry(self, sleep: Callable[[float], None]) -> Callable[[float], None]:
        def pause(seconds: float) -> None:
            sleep(seconds)
            self._pace()

        return pause

    def _pace(self) -> None:
        """Wait until this request may go: a search's start-to-start interval, then the window."""
        if self._searching and self.search_interval > 0 and self._last_search is not None:
            wait = self._last_search + self.search_interval - self.timer()
            if wait > 0:
                self.sleep(wait)
        sent = self.window.acquire()
        if self._searching:
            self._last_search = sent

    def _call(self, method: str, path: str, *, params: Any = None, json: Any = None) -> Any:
        self._pace()
        return self.http.request_json(method, path, params=params, json=json)

    # --- the account's definitions ---

    def lifecycle_stages(self) -> tuple[str, ...]:
        """Internal values of the account's lifecycle stages, in the account's order."""
        return tuple(value for value, _label in self.lifecycle_options())

    def lifecycle_options(self) -> tuple[tuple[str, str], ...]:
        """(internal value, label) of the account's lifecycle stages, in its order."""
        if self._stages is None:
            body = self._call("GET", "/crm/v3/properties/contacts/lifecyclestage")
            options = body.get("options") if isinstance(body, dict) else None
            if not isinstance(options, list):
                raise Unreachable(
                    "HubSpot answered the lifecycle stage definition with something unexpected; "
                    "try again later.",
                    service=self.service,
                )
            ordered = sorted(
                (o for o in options if isinstance(o, dict) and isinstance(o.get("value"), str)),
                key=lambda o: (
                    o.get("displayOrder") if isinstance(o.get("displayOrder"), int) else 0
                ),
            )
            self._stages = tuple(
                (o["value"], _text(o.get("label"), MAX_LABEL) or o["value"])
                for o in ordered
                if o["value"].strip()
            )
        return self._stages

    def won_stages(self) -> set[str]:
        """Ids of the deal stages that mean closed won, across every deal pipeline."""
        if self._won is None:
            body = self._call("GET", "/crm/v3/pipelines/deals")
            won: set[str] = set()
            for pipeline in _results(body, "/crm/v3/pipelines/deals"):
                for stage in pipeline.get("stages") or []:
                    if isinstance(stage, dict) and _won(stage.get("metadata")):
                        won.add(str(stage.get("id")))
            self._won = won
        return self._won

    def _contact_properties(self) -> list[str]:
        props = list(CONTACT_PROPERTIES)
        for stage in self.lifecycle_stages():
            props += [f"hs_lifecyclestage_{stage}_date", f"hs_v2_date_entered_{stage}"]
        return props

    # --- reading ---

    def fetch(self, resource: Resource, cursor: str | None) -> Iterator[Page]:
        if resource.name == LIFECYCLE_RESOURCE:
            return self._definitions()
        if resource.name.startswith("archived_"):
            return self._archived(resource, cursor)
        if resource.name == "contacts":
            properties = self._contact_properties()
        else:
            self.won_stages()
            properties = list(DEAL_PROPERTIES)
        return self._search(resource, properties, cursor)

    def _definitions(self) -> Iterator[Page]:
        """The account's lifecycle stages, kept with the source as this resource's cursor
        (journey.stages reads them back for the stage defaults and `journey stages show`)."""
        stages = [[value, label] for value, label in self.lifecycle_options()]
        yield Page([], json.dumps({"stages": stages}, separators=(",", ":")))

    def _search(
        self, resource: Resource, properties: list[str], cursor: str | None
    ) -> Iterator[Page]:
        """Pages of one object type in last-modified order, by keyset (see the module docstring).

        Watermark keys are epoch milliseconds; `position` holds the pass's upper
        bound, the ids read at exactly `high`, and the last id of a tie run read by id.
        """
        key = resource.cursor_field
        mark = Watermark.load(cursor)
        if not mark.in_pass:
            mark.in_pass = True
            overlap = int(resource.overlap.total_seconds() * 1000)
            mark.floor = None if mark.since is None else mark.since - overlap
            mark.high = mark.floor
            mark.position = json.dumps({"until": int(self.clock() * 1000), "seen": []})
        state = json.loads(mark.position or "{}")
        until = int(state.get("until") or self.clock() * 1000)
        seen: list[str] = list(state.get("seen") or [])
        tie_after: str | None = state.get("tie_after")
        while True:
            if tie_after is not None and mark.high is not None:
                filters = [
                    _filter(key, "EQ", mark.high),
                    _filter("hs_object_id", "GT", tie_after),
                ]
                sort = "hs_object_id"
            else:
                filters = [_filter(key, "LTE", until)]
                if mark.high is not None:
                    filters.insert(0, _filter(key, "GTE", mark.high))
                sort = key
            body = {
                "filterGroups": [{"filters": filters}],
                "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
                "properties": properties,
                "limit": self.page_size,
            }
            answer = self._post_search(resource.path, body)
            rows = _results(answer, resource.path)
            total = answer.get("total")
            # More match than this page holds (`total` also covers a page cut short by the cap).
            full = len(rows) >= self.page_size or (isinstance(total, int) and total > len(rows))
            if tie_after is not None:
                # A run of records sharing `high`, read by id; then on past it.
                pages = self._with_associations(resource, rows)
                if full:
                    tie_after = str(rows[-1]["id"])
                    yield Page(pages, mark.step(_state(until, [], tie_after)))
                    continue
                tie_after, seen = None, []
                assert mark.high is not None
                mark.high += 1  # everything at the tied millisecond is read
                yield Page(pages, mark.step(_state(until, seen, None)))
                continue
            times = [_millis(_prop(r, key)) for r in rows]
            if full and times and times[0] is not None and times[0] == times[-1]:
                # A whole page at one millisecond: keyset on time cannot move past it.
                mark.high = times[0]
                tie_after = "0"
                yield Page(
                    self._with_associations(resource, rows),
                    mark.step(_state(until, [], tie_after)),
                )
                continue
            # `seen` holds the ids read at exactly `high`; one modified since sits later.
            fresh = [
                r
                for r, t in zip(rows, times, strict=True)
                if not (t == mark.high and str(r["id"]) in seen)
            ]
            before = mark.high
            mark.saw([_millis(_prop(r, key)) for r in fresh])
            at_high = [str(r["id"]) for r in fresh if _millis(_prop(r, key)) == mark.high]
            seen = seen + at_high if mark.high == before else at_high
            records = self._with_associations(resource, fresh)
            if not full:
                if mark.since is not None and (mark.high is None or mark.high < mark.since):
                    mark.high = mark.since  # a pass that read nothing new keeps its watermark
                yield Page(records, mark.end())
                return
            yield Page(records, mark.step(_state(until, seen, None)))

    def _archived(self, resource: Resource, cursor: str | None) -> Iterator[Page]:
        """Archived records, from the archive time of the last pass on (less the overlap).

        The list endpoint has no time filter, so every pass pages through the whole
        archived list (`after`, stable: ordered by id) and keeps only the records
        archived since; HubSpot empties it 90 days after archiving.
        """
        mark = Watermark.load(cursor)
        mark.begin(resource.overlap)  # floor in milliseconds: the overlap is scaled below
        if mark.floor is not None and mark.since is not None:
            mark.floor = mark.since - int(resource.overlap.total_seconds() * 1000)
        while True:
            params: list[tuple[str, Any]] = [("limit", 100), *resource.params.items()]
            if mark.position:
                params.append(("after", mark.position))
            body = self._call("GET", resource.path, params=params)
            rows = _results(body, resource.path)
            fresh = [
                r
                for r in rows
                if mark.floor is None or (_millis(r.get("archivedAt")) or 0) >= mark.floor
            ]
            mark.saw([_millis(r.get("archivedAt")) for r in rows])
            after = (((body.get("paging") or {}).get("next") or {}).get("after")) or None
            if after and rows:
                yield Page(fresh, mark.step(str(after)))
            else:
                yield Page(fresh, mark.end())
                return

    def _post_search(self, path: str, body: dict[str, Any]) -> Any:
        """A search, started no sooner than `search_interval` after the previous one
        started (start to start, so the time a search takes is not lost on top)."""
        self._searching = True
        try:
            return self._call("POST", path, json=body)
        finally:
            self._searching = False

    def _with_associations(self, resource: Resource, rows: list[Raw]) -> list[Raw]:
        """Deals get `_won` and `_contacts`, the ids of their associated contacts: a won
        deal's buyers, and for any other deal the contacts whose orders it takes back."""
        if resource.name != "deals":
            return rows
        contacts = self._deal_contacts([str(r["id"]) for r in rows])
        for deal in rows:
            deal["_won"] = self._is_won(deal)
            deal["_contacts"] = contacts.get(str(deal["id"]), [])
        return rows

    def _is_won(self, deal: Raw) -> bool:
        props = deal.get("properties") or {}
        if str(props.get("hs_is_closed_won") or "").lower() == "true":
            return True
        return str(props.get("dealstage") or "") in (self._won or set())

    def _deal_contacts(self, deal_ids: list[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {d: [] for d in deal_ids}
        path = "/crm/v4/associations/deals/contacts/batch/read"
        pending: list[dict[str, str]] = [{"id": d} for d in deal_ids]
        while pending:
            batch, pending = pending[:ASSOCIATION_BATCH], pending[ASSOCIATION_BATCH:]
            body = self._call("POST", path, json={"inputs": batch})
            for result in _results(body, path):
                deal = str((result.get("from") or {}).get("id") or "")
                if deal not in found:
                    continue
                for to in result.get("to") or []:
                    if isinstance(to, dict) and to.get("toObjectId") is not None:
                        found[deal].append(str(to["toObjectId"]))
                after = ((result.get("paging") or {}).get("next") or {}).get("after")
                if after:
                    pending.append({"id": deal, "after": str(after)})
        return {d: sorted(set(c), key=_id_order) for d, c in found.items()}

    # --- mapping ---

    def to_records(self, resource: Resource, raw: Sequence[Raw]) -> Records:
        records = Records()
        for obj in raw:
            if resource.name in ("contacts", "archived_contacts"):
                records.extend(contact_records(obj, self.lifecycle_stages()))
            elif resource.name == "archived_deals" or obj.get("archived"):
                records.families.append(EventFamily(f"deal:{obj['id']}", anywhere=True))
            elif "_contacts" in obj:
                records.extend(deal_records(obj))
        return records


# --- the rolling window ------------------------------------------------------------


class RateWindow:
    """HubSpot's rolling request window, kept ahead of time from its answers' headers.

    Why not wait for the 429: every refused request costs a retry and a pause of
    a whole interval, and a 429 counts against the app in HubSpot's logs. Why
    not a plain token bucket: the app's window is shared with its other clients
    (another sync, a second process), which only HubSpot's `Remaining` can show,
    and the limit depends on the account's tier, which only `Max` says.

    `acquire()` returns once a request may go (its send time). It waits while
    either count is spent: our own requests sent in the last interval (kept
    below Max less a reserve of 4 %, at least one), or the latest `Remaining`
    less our requests since and plus those of ours that left the window since
    (kept above the same reserve). The reserve absorbs the jitter between our
    send times and HubSpot's arrival times. Waits end when our oldest request
    leaves the window (a request counts as gone 1 % of an interval late); an
    observation older than an interval is forgotten, so a window spent by
    others costs at most one interval. `observe()` reads every answer's headers;
    answers without them (searches) change nothing.

    One per connector, used from one thread. Until the first answer with
    headers, the lowest tier is assumed (100 per 10 s).
    """

    def __init__(
        self,
        limit: int = WINDOW_LIMIT,
        interval: float = WINDOW_SECONDS,
        *,
        timer: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = limit
        self.interval = interval
        self.timer = timer
        self.sleep = sleep
        self.waited = 0.0  # seconds spent waiting, for logs and tests
        self._sent: deque[float] = deque()
        self._remaining: int | None = None
        self._seen_at = 0.0
        self._counted: list[float] = []  # our send times inside HubSpot's window at `_seen_at`

    @property
    def reserve(self) -> int:
        return max(1, math.ceil(self.limit * WINDOW_RESERVE))

    @property
    def span(self) -> float:
        """How long one of our requests is taken to stay in HubSpot's window."""
        return self.interval * (1 + WINDOW_MARGIN)

    def acquire(self) -> float:
        while True:
            now = self.timer()
            wait = self.wait_at(now)
            if wait <= 0:
                self._sent.append(now)
                return now
            self.waited += wait
            log.debug("HubSpot's request window is nearly spent; waiting %.2f s", wait)
            self.sleep(wait)

    def wait_at(self, now: float) -> float:
        """Seconds until a request may go at `now` (0: at once)."""
        span = self.span
        while self._sent and self._sent[0] <= now - span:
            self._sent.popleft()
        waits: list[float] = []
        budget = max(1, self.limit - self.reserve)
        if len(self._sent) >= budget:
            waits.append(self._sent[len(self._sent) - budget] + span - now)
        if self._remaining is not None and now >= self._seen_at + span:
            self._remaining = None  # the whole window has rolled since that answer
        if self._remaining is not None:
            since = sum(1 for s in self._sent if s > self._seen_at)
            left = [s + span for s in self._counted if s + span > now]
            estimate = self._remaining - since + (len(self._counted) - len(left))
            if estimate <= self.reserve:
                waits.append(min([*left, self._seen_at + span]) - now)
        return max(waits, default=0.0)

    def observe(self, headers: Mapping[str, str]) -> None:
        maximum = _header_int(headers, "X-HubSpot-RateLimit-Max")
        interval = _header_int(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
        remaining = _header_int(headers, "X-HubSpot-RateLimit-Remaining")
        if maximum is not None and maximum > 0:
            self.limit = maximum
        if interval is not None and interval > 0:
            # HubSpot documents 10 s; a garbled header must not stall a sync for long.
            self.interval = min(interval / 1000.0, MAX_WINDOW_SECONDS)
        if remaining is not None and remaining >= 0:
            now = self.timer()
            self._remaining = remaining
            self._seen_at = now
            self._counted = [s for s in self._sent if s > now - self.span]


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


# --- HTTP answers ------------------------------------------------------------------


def interpret(response: httpx.Response) -> Exception | None:
    """HubSpot's rules for an answer, before the generic ones (see the module docstring)."""
    status = response.status_code
    if status < 400:
        return None
    body = _body(response)
    category = str(body.get("category") or "")
    message = str(body.get("message") or "")
    if status == 429 or category == "RATE_LIMITS" or body.get("errorType") == "RATE_LIMIT":
        policy = str(body.get("policyName") or "").upper()
        if policy == "DAILY" or (not policy and "daily" in message.lower()):
            return RateLimited(
                "HubSpot's daily API limit for this account is used up (it resets at midnight "
                "in the account's time zone). The sync stopped where it was and resumes from "
                "there on the next sync after the reset.",
                retry_after=None,
                service="HubSpot",
            )
        interval = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
        if policy == "TEN_SECONDLY_ROLLING" or "ten_secondly" in message.lower():
            wait = 10.0
        else:
            wait = 1.0
        with contextlib.suppress(ValueError):
            wait = max(0.0, min(float(interval) / 1000.0, wait)) if interval else wait
        return Retryable("said too many requests", kind="rate_limit", retry_after=wait)
    if status == 401:
        return AuthError(
            "HubSpot refused the access token: it is wrong, or the private app was deleted or "
            "its token rotated (HubSpot: Settings > Integrations > Private apps).",
            service="HubSpot",
            status=401,
        )
    if status == 403:
        scopes = _missing_scopes(body)
        if category == "MISSING_SCOPES" or scopes:
            named = ", ".join(scopes) if scopes else "a scope this sync needs"
            return ScopeError(
                f"The HubSpot private app lacks the scope {named}. Give it "
                f"{', '.join(SCOPES)} (Settings > Integrations > Private apps > Scopes), "
                "then store its token again.",
                scope=scopes[0] if scopes else None,
                service="HubSpot",
            )
        return AuthError(
            "HubSpot refused access for this token (HTTP 403); check the private app.",
            service="HubSpot",
            status=403,
        )
    if 400 <= status < 500 and status != 408:
        text = _TOKEN.sub("[token]", message or f"HTTP {status}")
        return BadRequest(
            f"HubSpot rejected a request: {text}",
            status=status,
            code=category or None,
            service="HubSpot",
        )
    return None  # 5xx and 408: the generic rules retry them


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _missing_scopes(body: dict[str, Any]) -> list[str]:
    scopes: list[str] = []
    for error in body.get("errors") or []:
        context = error.get("context") if isinstance(error, dict) else None
        if not isinstance(context, dict):
            continue
        for key in ("requiredGranularScopes", "requiredScopes", "missingScopes"):
            values = context.get(key)
            if isinstance(values, list):
                scopes += [str(v) for v in values if str(v) not in scopes]
    return scopes


def _results(body: Any, path: str) -> list[Raw]:
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise Unreachable(
            f"HubSpot answered {path} with something that is not a list; try again later.",
            service="HubSpot",
        )
    return [r for r in body["results"] if isinstance(r, dict) and ("id" in r or "from" in r)]


def _filter(name: str, operator: str, value: int | str) -> dict[str, str]:
    return {"propertyName": name, "operator": operator, "value": str(value)}


def _state(until: int, seen: list[str], tie_after: str | None) -> str:
    state: dict[str, Any] = {"until": until, "seen": seen}
    if tie_after is not None:
        state["tie_after"] = tie_after
    return json.dumps(state, separators=(",", ":"))


def _won(metadata: Any) -> bool:
    if not isinstance(metadata, dict):
        return False
    try:
        return float(metadata.get("probability")) >= 1.0
    except (TypeError, ValueError):
        return False


def _id_order(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (0, value)


# --- records to store records ------------------------------------------------------


def _prop(obj: Raw, name: str) -> Any:
    props = obj.get("properties")
    return props.get(name) if isinstance(props, dict) else None


def _millis(value: Any) -> int | None:
    """A HubSpot datetime (ISO 8601, or epoch milliseconds as text) in epoch milliseconds."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip()
    if not text:
        return None
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def _when(value: Any) -> datetime | None:
    ms = _millis(value)
    return None if ms is None else datetime.fromtimestamp(ms // 1000, tz=UTC)


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:limit]


def _cents(value: Any) -> int | None:
    """A deal amount ("1500", "1499.99", "1,500.00") in cents; None when absent or not a number."""
    if value is None:
        return None
    try:
        amount = Decimal(str(value).replace(",", "").strip())
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def contact_records(obj: Raw, stages: Sequence[str] = DEFAULT_LIFECYCLE) -> Records:
    """A contact and one event per lifecycle stage it has a date for."""
    cid = str(obj.get("id") or "")
    if not cid:
        return Records()
    if obj.get("archived"):
        return Records(forgotten=[cid])
    props = obj.get("properties") or {}
    merged = [
        m.strip()
        for m in str(props.get("hs_merged_object_ids") or "").split(";")
        if m.strip() and m.strip() != cid
    ]
    name = " ".join(
        p for p in (_text(props.get("firstname"), 150), _text(props.get("lastname"), 150)) if p
    )
    source = _text(props.get("hs_analytics_source"), MAX_CHANNEL)
    customer = CustomerRecord(
        external_id=cid,
        name=name[:MAX_NAME] or None,
        email=_text(props.get("email"), MAX_EMAIL),
        first_seen=_when(props.get("createdate")) or _when(obj.get("createdAt")),
        channel=source.lower() if source else None,
        phone=_text(props.get("phone"), MAX_PHONE) or _text(props.get("mobilephone"), MAX_PHONE),
    )
    events: list[EventRecord] = []
    for stage in stages:
        kind = f"{STAGE_KIND}{stage}"
        if len(kind) > MAX_KIND:
            continue
        at = _when(props.get(f"hs_lifecyclestage_{stage}_date")) or _when(
            props.get(f"hs_v2_date_entered_{stage}")
        )
        if at is not None:
            events.append(EventRecord(f"lifecycle:{cid}:{stage}", cid, kind, at))
    return Records(
        customers=[customer],
        events=events,
        families=[EventFamily(f"lifecycle:{cid}", (cid,))],
        forgotten=merged,
    )


def deal_records(obj: Raw) -> Records:
    """A closed-won deal (with `_contacts`): an order per associated contact, the amount split.

    Any other deal implies no order (any more)."""
    contacts = [str(c) for c in obj.get("_contacts") or []]
    props = obj.get("properties") or {}
    closed = _when(props.get("closedate"))
    family = EventFamily(f"deal:{obj['id']}", tuple(contacts), anywhere=bool(obj.get("archived")))
    if not contacts or closed is None or obj.get("archived") or not obj.get("_won", True):
        return Records(families=[family])
    total = _cents(props.get("amount"))
    shares: list[int | None]
    if total is None:
        shares = [None] * len(contacts)
    else:
        base, extra = divmod(total, len(contacts))
        shares = [base + (1 if i < extra else 0) for i in range(len(contacts))]
    did = str(obj["id"])
    return Records(
        events=[
            EventRecord(f"deal:{did}:{cid}", cid, "order", closed, None, share)
            for cid, share in zip(contacts, shares, strict=True)
        ],
        families=[family],
    )
