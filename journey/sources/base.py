"""What a connector is: its resources, how each one pages, and how its records map to the store.

A connector module (stripe.py, and later shopify.py, hubspot.py, woocommerce.py)
holds one `Connector` subclass and nothing else that a sync needs. It:

- declares its `kind` (the Source.kind it serves), the `secret` it needs (one
  string: an API key or token; a connector needing two, such as a key and a
  secret, asks for them joined as "key:secret") and the `settings` it needs
  (non-secret, such as a shop's domain), and its `default_base_url`;
- declares its `resources`, in the order a sync reads them: each names its API
  path, the field its incremental cursor follows, how it pages, and whether it
  is a change feed (read first and again last, see `Resource.changes`);
- implements `fetch(resource, cursor)`: yields `Page`s of raw API records, each
  with the cursor that resumes *after* it (an opaque string the sync stores in
  SyncCursor in the same transaction as the page's records);
- implements `to_records(resource, raw)`: maps raw records to the CustomerRecord
  and EventRecord that journey.ingest upserts (keyed on the API's own ids, so
  reading a record twice changes nothing), and says what the page retracts
  (`Records.families`, `retracted`, `forgotten`, `erased`): a sync must leave
  the store equal to the source, so a record that stopped implying an event
  (a refund that failed, a deal archived) takes the event away. A connector
  that says nothing retracts nothing;
- implements `check()`: one cheap authenticated call, so `journey sources add`
  can refuse a wrong credential at once.

Everything else (retries, backoff, rate limits, error words) is in
journey/sources/http.py, and running, batching, cursors, transactions and the
source's health are in journey/sync.py.

Paging safely while records change. Two shapes cover the APIs journey reads:

- Lists ordered by creation time, newest first, with a keyset cursor (Stripe's
  `starting_after`). Paging is stable (new records appear ahead of the cursor),
  but a pass can only move its watermark when it ends: the newest record comes
  first, so saving it as the watermark mid-pass would skip the unread older
  ones after a crash. `Watermark` keeps the pass's floor, its highest key and
  its API position separately. Changes to records created long ago are not in
  these lists at all; the connector reads them from a change feed (Stripe's
  events) declared with `changes=True`.
- Lists ordered by update time, oldest first (Shopify `UPDATED_AT`, WooCommerce
  `modified_after`, HubSpot search on `lastmodifieddate`). A record updated
  while the pass runs jumps to the end, so *offset* paging (page=2, 3...)
  silently skips the record that slid back into an already-read page. Page by
  the key instead: ask for `updated >= high` (the highest update time read so
  far, inclusive, so ties are re-read and upserts absorb them) and use the API's
  own position only to step through a run of records sharing one timestamp.
  When the pass ends, the next sync starts again from `since - overlap`.
  `Watermark` holds that state too; test_sync.py shows the pattern against an
  in-memory API that changes a record between pages.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

from journey.ingest import CustomerRecord, EventFamily, EventRecord
from journey.sources.http import HttpOptions

Raw = dict[str, Any]


@dataclass(frozen=True)
class Resource:
    """One list a connector reads, as a Singer-style stream declaration.

    `name` keys its SyncCursor row. `path` is the API path. `cursor_field` is the
    record field the incremental watermark follows (`created`, `updated_at`...).
    `paging` names the API's paging style (informational: "starting_after",
    "page", "after", "endCursor"). `overlap` is how far behind the watermark a
    new pass starts, for clocks that disagree, records committed late and equal
    timestamps; re-reading is harmless because every write is an upsert.
    `changes`: a change feed (records changed since the last sync), which the
    sync reads before the other resources and once more after them, so changes
    made while the lists were paged land in the same sync.
    `defines_stages`: its cursor holds the source's own definitions that the stage
    model reads (an account's lifecycle stages): when they change, the sync rebuilds
    the workspace's journey state in the same transaction, since customers stored
    earlier were placed by the old definitions and may never be read again.
    """

    name: str
    path: str
    cursor_field: str = "created"
    paging: str = "starting_after"
    overlap: timedelta = timedelta(minutes=5)
    params: Mapping[str, str] = field(default_factory=dict)
    changes: bool = False
    defines_stages: bool = False


@dataclass
class Page:
    """Raw records of one API page and the cursor that resumes after them.

    `reset` names resources whose cursors must be dropped (read again in full)
    in the same transaction: a change feed that has a gap asks for this.
    `first_read`: the connector vouches that no record on the page was read before
    (the first bulk export of a first sync, each line handed out once), so none can
    have stored events to take back. The sync then skips that look-up when the source
    held no events at all when it began: on a 1M-order first sync the look-up re-read
    every customer's events at random and doubled the time, to find nothing.
    """

    records: list[Raw]
    cursor: str | None
    reset: tuple[str, ...] = ()
    first_read: bool = False


@dataclass
class Records:
    """What one page becomes in the store.

    `customer_fields` limits which of name, email, first_seen and channel the
    customer records carry (the others keep their stored values), as in
    `Ingestor.customers`; None means all of them.

    What the page takes away, in the same transaction as what it writes (see
    `journey.ingest.Ingestor.retract`):

    - `families`: records whose events the page carries in full ("this charge
      now implies exactly these events"): the record's other stored events go.
      The usual way: every record read declares its family, even when it now
      implies nothing.
    - `retracted`: event ids the source no longer implies, outright.
    - `forgotten`: customers the source deleted with everything it knew of them.
    - `erased`: customers the source deleted while it keeps the records that
      imply their events: the profile goes, the events stay.
    - `derived`: customers that exist only through their events (a guest made
      from an order's email): removed once no event refers to them.
    """

    customers: list[CustomerRecord] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    customer_fields: frozenset[str] | None = None
    families: list[EventFamily] = field(default_factory=list)
    retracted: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    erased: list[str] = field(default_factory=list)
    derived: list[str] = field(default_factory=list)

    def extend(self, other: Records) -> None:
        self.customers.extend(other.customers)
        self.events.extend(other.events)
        self.families.extend(other.families)
        self.retracted.extend(other.retracted)
        self.forgotten.extend(other.forgotten)
        self.erased.extend(other.erased)
        self.derived.extend(other.derived)

    @property
    def retracts(self) -> bool:
        return bool(
            self.families or self.retracted or self.forgotten or self.erased or self.derived
        )

    def __len__(self) -> int:
        return len(self.customers) + len(self.events)


@dataclass
class Watermark:
    """Resume state of an incremental list read in passes over a time key (epoch seconds).

    `since`: every record with a key at or below it was read by a finished pass.
    A pass in progress reads keys >= `floor` (since - overlap, or everything on
    the first pass), has seen keys up to `high`, and stands at the API's own
    `position` (an id, page token or page number). Serialised as JSON into
    SyncCursor.cursor.
    """

    since: int | None = None
    floor: int | None = None
    high: int | None = None
    position: str | None = None
    in_pass: bool = False
    checked_at: int | None = None  # wall clock of the last finished pass (change feeds)

    @classmethod
    def load(cls, text: str | None) -> Watermark:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    def begin(self, overlap: timedelta) -> None:
        """Start a pass, unless one is in progress (then resume it where it stood)."""
        if self.in_pass:
            return
        self.in_pass = True
        self.floor = None if self.since is None else self.since - int(overlap.total_seconds())
        self.high = self.since
        self.position = None

    def saw(self, keys: Sequence[int | None]) -> None:
        for key in keys:
            if key is not None and (self.high is None or key > self.high):
                self.high = key

    def step(self, position: str | None) -> str:
        """The cursor after a page, with more pages to come in this pass."""
        self.position = position
        return self.dump()

    def end(self, now: int | None = None) -> str:
        """The cursor after the pass's last page: the watermark moves to the highest key."""
        self.since = self.high
        self.floor = None
        self.position = None
        self.in_pass = False
        if now is not None:
            self.checked_at = now
        return self.dump()


class Connector:
    """Base class of every store and CRM connector. See the module docstring."""

    kind: ClassVar[str]
    service: ClassVar[str]  # the API's name in messages ("Stripe")
    default_base_url: ClassVar[str]
    secret_prompt: ClassVar[str] = "API key"
    settings: ClassVar[tuple[str, ...]] = ()  # non-secret settings it needs (e.g. "shop")
    resources: ClassVar[tuple[Resource, ...]]

    def __init__(
        self,
        secret: str,
        settings: Mapping[str, str] | None = None,
        *,
        base_url: str | None = None,
        http: HttpOptions | None = None,
    ) -> None:
        self.secret = secret
        self.config = dict(settings or {})
        self.base_url = base_url or self.default_base_url
        self.http_options = http or HttpOptions()

    def resource(self, name: str) -> Resource:
        for resource in self.resources:
            if resource.name == name:
                return resource
        raise KeyError(name)

    def check(self) -> list[str] | None:
        """One cheap authenticated request; raises AuthError/ScopeError/Unreachable.

        May return notes in words about a credential that works but will not give the
        whole picture (Shopify without read_all_orders sees 60 days of orders): the
        credential is stored, and whoever added it is told.
        """
        raise NotImplementedError

    def fetch(self, resource: Resource, cursor: str | None) -> Iterator[Page]:
        """Pages of `resource` from `cursor` on (None: from the beginning)."""
        raise NotImplementedError

    def to_records(self, resource: Resource, raw: Sequence[Raw]) -> Records:
        raise NotImplementedError

    def close(self) -> None:
        """Release the HTTP client."""

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never the secret
        return f"{type(self).__name__}(base_url={self.base_url!r})"
