"""The built-in demo store: a year of a believable small vet clinic.

Deterministic for a seed and an end date, so tests and screenshots agree. It is
shaped so every report has something true to say:

- six channels that convert differently (referrals and walk-ins convert best,
  social the worst) and some walk-ins who book directly without a recorded
  visit or inquiry (the funnel's inferred stages);
- spring-and-summer seasonality in new clients;
- one-time clients and loyal ones who come back for check-ups and vaccines;
- some refunds, review requests and the reviews and referrals that follow;
- a retention drop among new clients, and only there: of the clients who first
  came in the last four months far fewer become regulars, and in the last five
  weeks most new clients due back for their second visit do not come. Regulars
  keep their pace. That is one problem, so it raises one alert (retention): a
  drop that also hit the regulars would be true high-value churn as well, and
  the demo would raise two alerts for one story.

`generate(..., drop=False)` builds the same clinic without the drop: stable
data, on which the alerts should stay quiet.

The volume is chosen for the alerts, whatever the end date: the retention
rule compares the first buyers of a 28-day window with its baseline and needs
50 of them (its `min_sample`); at about 10 new clients a day, a quarter fewer
in the winter trough, every 28 days bring 55 or more first buyers (checked for
an end date every four days of 2026).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import delete, insert, select
from sqlmodel import Session

from journey.ingest import CustomerRecord, EventRecord, Ingestor, IngestStats
from journey.models import Customer, CustomerJourney, JourneyEvent, ReviewRequest, Source
from journey.workspaces import ensure_source, ensure_workspace

DEMO_SOURCE = "demo"
DEFAULT_SEED = 7
DAYS = 365
ARRIVALS_PER_DAY = 10.0  # new clients a day on average over the year
SEASONALITY = 0.25  # that many more in late spring and summer, fewer in winter
DROP_DAYS = 35  # the last five weeks, where new clients fall off
RECENT_COHORT_DAYS = 130  # first visits this recent rarely turn into regulars
RECENT_RATE_FACTOR = 0.3  # ...: they come back at this fraction of the usual pace
DROP_SHARE = 0.85  # share of second visits due in the last five weeks that never happen
MEAN_GAP_DAYS = 120.0  # a typical client's mean time between visits
LOYAL_GAP_DAYS = 75.0  # referrals and walk-ins come back sooner
RATE_SHAPE = 2.0  # gamma shape of the visit rate across clients (lower: more varied)
STOP_BETA = (1.5, 3.5)  # beta(a, b) of the chance to stop after a return visit (mean 30%)
MIN_GAP_DAYS = 3.0


@dataclass(frozen=True)
class Channel:
    name: str
    share: float
    p_inquiry: float  # awareness -> consideration
    p_booking: float  # consideration -> decision
    p_visit: float  # decision -> purchase (a paid visit)
    p_direct: float  # books without a recorded visit or inquiry


CHANNELS = (
    Channel("google_search", 0.30, 0.45, 0.55, 0.80, 0.05),
    Channel("google_maps", 0.20, 0.55, 0.60, 0.85, 0.10),
    Channel("facebook", 0.15, 0.25, 0.40, 0.70, 0.02),
    Channel("instagram", 0.10, 0.20, 0.35, 0.65, 0.02),
    Channel("referral", 0.15, 0.70, 0.75, 0.90, 0.30),
    Channel("walk_in", 0.10, 0.90, 0.90, 0.95, 0.70),
)
FIRST = (
    "Ava",
    "Liam",
    "Mia",
    "Noah",
    "Emma",
    "Lucas",
    "Zoe",
    "Omar",
    "Lena",
    "Ravi",
    "Sofia",
    "Mateo",
    "Hana",
    "Theo",
    "Nora",
    "Ivan",
    "Chloe",
    "Kofi",
    "Maya",
    "Jonas",
)
LAST = (
    "Smith",
    "Garcia",
    "Chen",
    "Okafor",
    "Novak",
    "Rossi",
    "Patel",
    "Kim",
    "Müller",
    "Dubois",
    "Silva",
    "Haddad",
    "Larsen",
    "Moreau",
    "Tanaka",
    "Brown",
    "Ivanova",
    "Nguyen",
)


@dataclass
class DemoData:
    customers: list[CustomerRecord] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    review_requests: list[tuple[str, datetime]] = field(default_factory=list)  # (customer, asked)


def _arrivals_per_day(day_of_year: int) -> float:
    # Peaks in late June, lowest in late December.
    season = math.sin(2 * math.pi * (day_of_year - 80) / 365)
    return ARRIVALS_PER_DAY * (1 + SEASONALITY * season)


def generate(end: date, seed: int = DEFAULT_SEED, drop: bool = True) -> DemoData:
    """The clinic's year up to `end` (exclusive), as records ready to ingest; without
    the retention drop when `drop` is False (the stable clinic)."""
    rng = random.Random(seed)
    end_at = datetime.combine(end, time(0), tzinfo=UTC)
    start_at = end_at - timedelta(days=DAYS)
    # Without the drop, its start lies past the end: nothing is ever dropped.
    drop_from = end_at - timedelta(days=DROP_DAYS) if drop else end_at + timedelta(days=1)
    recent_from = end_at - timedelta(days=RECENT_COHORT_DAYS) if drop else drop_from
    data = DemoData()
    n = 0
    for offset in range(DAYS):
        day_start = start_at + timedelta(days=offset)
        arrivals = rng.gauss(_arrivals_per_day(day_start.timetuple().tm_yday), 1.5)
        for _ in range(max(0, round(arrivals))):
            n += 1
            cid = f"C{n:05d}"
            # Each client draws from their own stream, so the stable clinic is the same
            # clinic (same clients, visits and spend) with only the drop taken out.
            _client(
                random.Random(f"{seed}:{cid}"),
                data,
                cid,
                day_start + timedelta(hours=rng.uniform(7, 20)),
                end_at,
                drop_from,
                recent_from,
            )
    return data


def _client(
    rng: random.Random,
    data: DemoData,
    cid: str,
    seen: datetime,
    end: datetime,
    drop_from: datetime,
    recent_from: datetime,
) -> None:
    ch = rng.choices(CHANNELS, weights=[c.share for c in CHANNELS])[0]
    first, last = rng.choice(FIRST), rng.choice(LAST)
    email = f"{first.lower()}.{last.lower().replace('ü', 'ue')}{cid[-3:]}@example.com"
    data.customers.append(CustomerRecord(cid, f"{first} {last}", email, None, ch.name))
    events = data.events
    t = seen
    direct = rng.random() < ch.p_direct
    if not direct:
        events.append(EventRecord(f"{cid}-visit", cid, "visit", t, ch.name))
        if rng.random() > ch.p_inquiry:
            return
        t += timedelta(hours=rng.expovariate(1 / 30))
        if t >= end:
            return
        events.append(EventRecord(f"{cid}-inquiry", cid, "inquiry", t, ch.name))
        if rng.random() > ch.p_booking:
            return
        t += timedelta(hours=rng.expovariate(1 / 40))
    if t >= end:
        return
    events.append(EventRecord(f"{cid}-booking", cid, "booking", t, ch.name))
    if rng.random() > ch.p_visit:
        return
    t += timedelta(days=rng.uniform(1, 6))
    # Coming back follows the "buy till you die" story the churn model assumes:
    # each client has their own pace (a gamma-distributed visit rate, faster for
    # referrals and walk-ins) and their own chance to stop coming after each
    # return visit (beta-distributed: they move, switch clinics, lose the pet).
    mean_gap = LOYAL_GAP_DAYS if ch.name in ("referral", "walk_in") else MEAN_GAP_DAYS
    rate = rng.gammavariate(RATE_SHAPE, 1 / (RATE_SHAPE * mean_gap))
    p_stop = rng.betavariate(*STOP_BETA)
    # The drop: clients whose first visit falls in the last four months come
    # back far less (the alerts' retention rule finds it).
    if t >= recent_from:
        rate *= RECENT_RATE_FACTOR
    visit = 0
    while t < end:
        visit += 1
        amount = round(rng.lognormvariate(math.log(140), 0.5) * 100)
        oid = f"{cid}-v{visit}"
        events.append(EventRecord(oid, cid, "order", t, ch.name, amount))
        if rng.random() < 0.03:
            refund_at = t + timedelta(days=rng.uniform(1, 7))
            if refund_at < end:
                events.append(
                    EventRecord(f"{oid}-refund", cid, "refund", refund_at, ch.name, amount)
                )
        elif rng.random() < 0.5:
            asked = t + timedelta(days=rng.uniform(3, 7))
            if asked < end:
                data.review_requests.append((cid, asked))
                if rng.random() < 0.3:
                    reviewed = asked + timedelta(days=rng.uniform(0.5, 10))
                    if reviewed < end:
                        events.append(
                            EventRecord(f"{oid}-review", cid, "review", reviewed, ch.name)
                        )
        if visit == 2 and rng.random() < 0.15:
            referred = t + timedelta(days=rng.uniform(1, 20))
            if referred < end:
                events.append(EventRecord(f"{cid}-referral", cid, "referral", referred, ch.name))
        if visit > 1 and rng.random() < p_stop:
            break
        t += timedelta(days=max(MIN_GAP_DAYS, rng.expovariate(rate)))
        # The drop, continued: from five weeks ago most new clients due back for
        # their second visit do not come (the insights find it). Only the second
        # visit: regulars keep coming, so the valuable customers' returns (the
        # high-value churn alert) are not part of this story. Drawn on every visit,
        # used or not, so the stable clinic's later draws stay the same.
        stays_away = rng.random() < DROP_SHARE
        if visit == 1 and t >= drop_from and stays_away:
            break


def load_demo(
    session: Session,
    workspace_id: str,
    end: date | None = None,
    seed: int = DEFAULT_SEED,
    progress: Callable[[int, int], None] | None = None,
    drop: bool = True,
) -> IngestStats:
    """Replace the workspace's demo data with a fresh year ending at `end` (default today);
    `drop=False` builds it without the retention drop."""
    end = end or datetime.now(UTC).date() + timedelta(days=1)
    ensure_workspace(session, workspace_id, name="Maple Street Vet (demo)")
    source = ensure_source(session, workspace_id, "demo", DEMO_SOURCE)
    _clear(session, workspace_id, source)
    data = generate(end, seed, drop)
    ingest = Ingestor(session, workspace_id, source.id or 0)
    stats = ingest.customers(data.customers)
    total = len(data.events)
    step = 2000
    for i in range(0, total, step):
        stats.add(ingest.events(data.events[i : i + step]))
        if progress:
            progress(min(i + step, total), total)
    ids = ingest.customer_ids(c for c, _ in data.review_requests)
    # One executemany rather than an ORM object per request: about a fifth of the build's
    # time went into constructing them, and tests build the demo for many end dates.
    if data.review_requests:
        session.execute(
            insert(ReviewRequest),
            [
                {
                    "workspace_id": workspace_id,
                    "customer_id": ids[c],
                    "asked_at": asked,
                    "status": "asked",
                    "via": "email",
                }
                for c, asked in data.review_requests
            ],
        )
    ingest.refresh(stats)
    return stats


def _clear(session: Session, workspace_id: str, source: Source) -> None:
    """Remove an earlier demo so re-running on another day does not stack two years."""
    demo_customers = select(Customer.id).where(
        Customer.workspace_id == workspace_id, Customer.source_id == source.id
    )
    for model in (ReviewRequest, CustomerJourney):
        session.execute(
            delete(model).where(
                model.workspace_id == workspace_id, model.customer_id.in_(demo_customers)
            )
        )
    session.execute(
        delete(JourneyEvent).where(
            JourneyEvent.workspace_id == workspace_id, JourneyEvent.source_id == source.id
        )
    )
    session.execute(
        delete(Customer).where(
            Customer.workspace_id == workspace_id, Customer.source_id == source.id
        )
    )
