"""Refreshes the per-customer journey state (table `customer_journey`) from events.

Reports never aggregate raw events: they read one row per customer. This module
recomputes those rows in SQL, either for the customers an import or sync just
touched, or for a whole workspace (after its stage model changed). The work runs
inside the database, so even the 10M-event rebuild never pulls events into Python.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from itertools import islice

from sqlalchemy import bindparam, text
from sqlmodel import Session

from journey.models import MAX_STAGES
from journey.people import build_people, relink
from journey.stages import PURCHASE_KINDS, REFUND_KINDS, REVIEW_KINDS, StageModel
from journey.workspaces import stage_model

_CHUNK = 500
# A large refresh (after an import): persons per statement (PostgreSQL plans 500 best,
# SQLite runs fewer, larger statements faster), and per transaction when the caller
# commits between steps (the write lock is then held for one step, not the whole).
_BIG_CHUNK = {"postgresql": 500}
_STEP = 20_000
# Relinking the whole workspace in one pass is several times faster than looking each
# record's neighbours up, but holds every record in memory (about 1 KB each with the
# updates): above this many records, the touched ones are relinked in slices.
_RELINK_WHOLE = 100_000


def _month_index(dialect: str, column: str) -> str:
    """SQL for the UTC calendar month of an epoch column, as year * 12 + month - 1."""
    if dialect == "postgresql":
        ts = f"(to_timestamp({column}) AT TIME ZONE 'UTC')"
        return f"(CAST(EXTRACT(YEAR FROM {ts}) AS INTEGER) * 12 + CAST(EXTRACT(MONTH FROM {ts}) AS INTEGER) - 1)"
    return (
        f"(CAST(strftime('%Y', {column}, 'unixepoch') AS INTEGER) * 12"
        f" + CAST(strftime('%m', {column}, 'unixepoch') AS INTEGER) - 1)"
    )


def _in_list(values: Collection[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in sorted(values))


def _first_touch_sql(only_m: str) -> str:
    """The `first_touch` table (person -> channel): of the person's records, the one seen
    first (its first-seen date, else its first event) that has a channel (its own, else
    its first event's)."""
    return f"""touch AS (
  SELECT m.person_id AS pid, m.id AS mid,
    COALESCE(m.channel, (
      SELECT x.channel FROM journey_event x
      WHERE x.workspace_id = :ws AND x.customer_id = m.id AND x.channel IS NOT NULL
      ORDER BY x.occurred_at, x.id LIMIT 1)) AS ch,
    COALESCE(m.first_seen, (
      SELECT MIN(x.occurred_at) FROM journey_event x
      WHERE x.workspace_id = :ws AND x.customer_id = m.id)) AS ts
  FROM customer m WHERE m.workspace_id = :ws{only_m}
),
first_touch AS (
  -- Grouped so both databases keep it as a keyed table for the join below (a bare
  -- window subquery was scanned once per person: quadratic). `rn <= 1`, not `rn = 1`:
  -- PostgreSQL guesses 0.5 % of the rows for the equality (a third for this), so it saw a
  -- table of a few rows and joined it by a nested loop that compared every person with
  -- every other (3.4 s instead of 0.15 s for the demo's 3,600 people).
  SELECT pid, MIN(ch) AS ch FROM (
    SELECT pid, ch, ROW_NUMBER() OVER (
      PARTITION BY pid ORDER BY CASE WHEN ts IS NULL THEN 1 ELSE 0 END, ts, mid) AS rn
    FROM touch WHERE ch IS NOT NULL
  ) z WHERE rn <= 1 GROUP BY pid
),"""


def _last_touch_sql(buy: str, only_m: str, only_p: str) -> str:
    """The `first_touch` table (person -> channel) when the workspace counts last touch:
    of the person's touches (each record's own channel at its first-seen date, else its
    first event's; every event that carries a channel, at its time), the latest at or
    before their first purchase, or the latest of all when they never bought. A touch
    of unknown time (a record with a channel but no date and no event) counts only when
    none is dated."""
    return f"""lt_buy AS (
  SELECT pc.person_id AS pid, MIN(e.occurred_at) AS ts
  FROM journey_event e JOIN customer pc ON pc.id = e.customer_id
  WHERE e.workspace_id = :ws AND e.kind IN ({buy}){only_p}
  GROUP BY pc.person_id
),
lt_touch AS (
  SELECT m.person_id AS pid, m.channel AS ch, 0 AS eid,
    COALESCE(m.first_seen, (
      SELECT MIN(x.occurred_at) FROM journey_event x
      WHERE x.workspace_id = :ws AND x.customer_id = m.id)) AS ts
  FROM customer m WHERE m.workspace_id = :ws AND m.channel IS NOT NULL{only_m}
  UNION ALL
  SELECT pc.person_id, e.channel, e.id, e.occurred_at
  FROM journey_event e JOIN customer pc ON pc.id = e.customer_id
  WHERE e.workspace_id = :ws AND e.channel IS NOT NULL{only_p}
),
first_touch AS (
  -- The acquisition touch, named as in the first-touch SQL: here the last one.
  SELECT pid, MIN(ch) AS ch FROM (
    SELECT t.pid, t.ch, ROW_NUMBER() OVER (
      PARTITION BY t.pid ORDER BY CASE WHEN t.ts IS NULL THEN 1 ELSE 0 END, t.ts DESC,
        t.eid DESC) AS rn
    FROM lt_touch t LEFT JOIN lt_buy b ON b.pid = t.pid
    WHERE b.ts IS NULL OR t.ts IS NULL OR t.ts <= b.ts
  ) z WHERE rn <= 1 GROUP BY pid
),"""


def _refresh_sql(model: StageModel, dialect: str, subset: bool, last_touch: bool = False) -> str:
    positions = model.kind_positions()
    pos_case = " ".join(
        f"WHEN '{kind}' THEN {pos}" for kind, pos in sorted(positions.items()) if "'" not in kind
    )
    retention = model.retention_position
    buy = _in_list(PURCHASE_KINDS)
    # Events by their record: the (workspace, customer, kind, time) index finds them, where
    # a filter on the joined person id would read every event of the workspace.
    only_p = (
        " AND e.customer_id IN (SELECT pm.id FROM customer pm"
        " WHERE pm.workspace_id = :ws AND pm.person_id IN :ids)"
        if subset
        else ""
    )
    only_m = " AND m.person_id IN :ids" if subset else ""
    only_c = " AND c.id IN :ids" if subset else ""
    second_point = (
        f"UNION ALL SELECT customer_id, {retention} AS pos, second_ts AS ts, 1 AS rec FROM second"
        if retention is not None
        else ""
    )
    reached = ", ".join(f"r.reached_{i}" for i in range(MAX_STAGES))
    reached_cols = ",\n    ".join(
        (
            f"MIN(CASE WHEN pos >= {i} THEN ts END) AS reached_{i}"
            if i < len(model.stages)
            else f"CAST(NULL AS BIGINT) AS reached_{i}"
        )
        for i in range(MAX_STAGES)
    )
    one = "CAST(1 AS BIGINT)"
    touch = _last_touch_sql(buy, only_m, only_p) if last_touch else _first_touch_sql(only_m)
    month_ts = _month_index(dialect, "ev.ts")
    month_first = _month_index(dialect, "b.first_ts")
    return f"""
INSERT INTO customer_journey (
  workspace_id, customer_id, channel,
  {", ".join(f"reached_{i}" for i in range(MAX_STAGES))},
  recorded_mask, first_purchase_at, second_purchase_at, last_purchase_at, purchase_days,
  revenue_cents, first_day_cents, last_order_cents, first_purchase_month, purchase_month_mask,
  last_refund_at, last_review_at
)
WITH ev AS (
  SELECT pc.person_id AS customer_id, e.occurred_at AS ts, e.kind, e.amount_cents,
         CASE e.kind {pos_case} ELSE NULL END AS pos,
         CASE WHEN e.kind IN ({buy}) THEN 1 ELSE 0 END AS is_buy
  FROM journey_event e JOIN customer pc ON pc.id = e.customer_id
  WHERE e.workspace_id = :ws{only_p}
),
{touch}
buys AS (
  SELECT customer_id, MIN(ts) AS first_ts, MAX(ts) AS last_ts,
         COUNT(DISTINCT ts / 86400) AS days
  FROM ev WHERE is_buy = 1 GROUP BY customer_id
),
second AS (
  SELECT ev.customer_id, MIN(ev.ts) AS second_ts
  FROM ev JOIN buys b ON b.customer_id = ev.customer_id
  WHERE ev.is_buy = 1 AND ev.ts / 86400 > b.first_ts / 86400
  GROUP BY ev.customer_id
),
first_day AS (
  SELECT ev.customer_id, SUM(COALESCE(ev.amount_cents, 0)) AS cents
  FROM ev JOIN buys b ON b.customer_id = ev.customer_id
  WHERE ev.is_buy = 1 AND ev.ts / 86400 = b.first_ts / 86400
  GROUP BY ev.customer_id
),
months AS (
  SELECT customer_id, SUM(bit) AS mask FROM (
    SELECT DISTINCT ev.customer_id, {one} << ({month_ts} - {month_first}) AS bit
    FROM ev JOIN buys b ON b.customer_id = ev.customer_id
    WHERE ev.is_buy = 1 AND {month_ts} - {month_first} BETWEEN 0 AND 62
  ) m GROUP BY customer_id
),
facts AS (
  SELECT customer_id,
         SUM(CASE WHEN is_buy = 1 THEN COALESCE(amount_cents, 0)
                  WHEN kind IN ({_in_list(REFUND_KINDS)}) THEN -ABS(COALESCE(amount_cents, 0))
                  ELSE 0 END) AS revenue,
         MAX(CASE WHEN kind IN ({_in_list(REFUND_KINDS)}) THEN ts END) AS last_refund,
         MAX(CASE WHEN kind IN ({_in_list(REVIEW_KINDS)}) THEN ts END) AS last_review
  FROM ev GROUP BY customer_id
),
points AS (
  SELECT customer_id, pos, ts, 1 AS rec FROM ev WHERE pos IS NOT NULL
  {second_point}
  UNION ALL SELECT m.person_id AS customer_id, 0 AS pos, m.first_seen AS ts, 0 AS rec
  FROM customer m WHERE m.workspace_id = :ws AND m.first_seen IS NOT NULL{only_m}
),
firsts AS (
  SELECT customer_id, pos, MIN(ts) AS ts, MAX(rec) AS rec FROM points GROUP BY customer_id, pos
),
r AS (
  SELECT customer_id,
    {reached_cols},
    SUM(CASE WHEN rec = 1 THEN {one} << pos ELSE 0 END) AS recorded_mask
  FROM firsts GROUP BY customer_id
)
SELECT c.workspace_id, c.id,
  ft.ch,
  {reached},
  COALESCE(r.recorded_mask, 0), b.first_ts, s.second_ts, b.last_ts, COALESCE(b.days, 0),
  COALESCE(f.revenue, 0), fd.cents,
  (SELECT x.amount_cents FROM customer xm CROSS JOIN journey_event x
   WHERE xm.workspace_id = :ws AND xm.person_id = c.id
     AND x.workspace_id = :ws AND x.customer_id = xm.id AND x.kind IN ({buy})
   ORDER BY x.occurred_at DESC, x.id DESC LIMIT 1),
  {_month_index(dialect, "b.first_ts")}, COALESCE(m.mask, 0),
  f.last_refund, f.last_review
FROM customer c
LEFT JOIN r ON r.customer_id = c.id
LEFT JOIN buys b ON b.customer_id = c.id
LEFT JOIN second s ON s.customer_id = c.id
LEFT JOIN first_day fd ON fd.customer_id = c.id
LEFT JOIN months m ON m.customer_id = c.id
LEFT JOIN facts f ON f.customer_id = c.id
LEFT JOIN first_touch ft ON ft.pid = c.id
WHERE c.workspace_id = :ws AND c.person_id <= c.id AND c.person_id >= c.id{only_c}
"""


def _chunks(ids: Collection[int]) -> Iterator[list[int]]:
    it = iter(sorted(set(ids)))
    while chunk := list(islice(it, _CHUNK)):
        yield chunk


def _last_touch(session: Session, workspace_id: str) -> bool:
    """Whether the workspace counts a person's last touch as their channel (a setting)."""
    row = session.execute(
        text("SELECT last_touch FROM workspace WHERE id = :ws"), {"ws": workspace_id}
    ).first()
    return bool(row and row[0])


def _people_built(session: Session, workspace_id: str) -> bool:
    row = session.execute(
        text("SELECT people_built FROM workspace WHERE id = :ws"), {"ws": workspace_id}
    ).first()
    return bool(row and row[0])


def refresh_journeys(
    session: Session,
    workspace_id: str,
    customer_ids: Collection[int] | None = None,
    *,
    relink_people: bool = True,
) -> None:
    """Recompute the journey state of some customers (or all, when `customer_ids` is None).

    The state is kept per person (journey/people.py): the records around these customers
    are relinked first, and every person they left or joined is recomputed from all of
    its records' events. Runs in the caller's transaction, so an import and the state it
    implies commit together.

    `relink_people=False` skips relinking the whole workspace before a full rebuild, for
    a change that cannot move a record (the stage model): people are kept current by
    every sync, import and decision, and relinking 1M records costs 15-20 s of CPU.
    """
    model = stage_model(session, workspace_id)
    dialect = session.get_bind().dialect.name
    last = _last_touch(session, workspace_id)
    if customer_ids is None:
        if relink_people or not _people_built(session, workspace_id):
            build_people(session, workspace_id)
        session.execute(
            text("DELETE FROM customer_journey WHERE workspace_id = :ws"), {"ws": workspace_id}
        )
        session.execute(text(_refresh_sql(model, dialect, False, last)), {"ws": workspace_id})
        return
    delete = text(
        "DELETE FROM customer_journey WHERE workspace_id = :ws AND customer_id IN :ids"
    ).bindparams(bindparam("ids", expanding=True))
    insert = text(_refresh_sql(model, dialect, True, last)).bindparams(
        bindparam("ids", expanding=True)
    )
    persons = relink(session, workspace_id, customer_ids)
    for chunk in _chunks(persons):
        session.execute(delete, {"ws": workspace_id, "ids": chunk})
        session.execute(insert, {"ws": workspace_id, "ids": chunk})


def refresh_in_steps(
    session: Session,
    workspace_id: str,
    customer_ids: Collection[int],
    commit: Callable[[], None] | None = None,
) -> None:
    """Recompute the journey state of many customers at once, committing between steps.

    Why: an import refreshed its customers after every batch of 5,000 records, so
    relinking and recomputing took most of a large import's time (and grew with the
    store). It now refreshes once, at the end, for every customer it touched. When
    those are most of the workspace's records (up to `_RELINK_WHOLE`), the people are
    relinked over the whole workspace in one pass (a fraction of the time of looking each
    one's neighbours up; above it, `_STEP` records at a time, for memory),
    and every person is recomputed (on PostgreSQL in one statement); otherwise as
    `refresh_journeys` does. With `commit`, SQLite's recomputation commits every
    `_STEP` persons, so its write lock is never held for the whole refresh (issue 18).
    """
    ids = set(customer_ids)
    if not ids:
        return
    total = session.execute(
        text("SELECT COUNT(*) FROM customer WHERE workspace_id = :ws"), {"ws": workspace_id}
    ).scalar_one()
    whole = 2 * len(ids) >= total
    if whole and total <= _RELINK_WHOLE:
        persons = relink(session, workspace_id, None)
    else:
        persons = set()
        ordered_ids = sorted(ids)
        for start in range(0, len(ordered_ids), _STEP):
            persons |= relink(session, workspace_id, ordered_ids[start : start + _STEP])
            if commit is not None:
                commit()
    if commit is not None:
        commit()
    model = stage_model(session, workspace_id)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql" and len(persons) > _STEP:
        # An import's batches grew these tables since the planner last sampled them (its
        # ANALYZE schedule runs at 4x steps): 3x faster statements on a fresh import.
        for table in ("customer", "journey_event", "customer_journey"):
            session.execute(text(f"ANALYZE {table}"))
    if whole and dialect == "postgresql":
        # One statement over the workspace, planned with hash joins: in chunks, each
        # statement scanned the workspace's customers (quadratic at 1M lines). PostgreSQL's
        # readers see the previous state until it commits; no lock stops the bot.
        session.execute(
            text("DELETE FROM customer_journey WHERE workspace_id = :ws"), {"ws": workspace_id}
        )
        session.execute(text(_refresh_sql(model, dialect, subset=False)), {"ws": workspace_id})
        return
    delete = text(
        "DELETE FROM customer_journey WHERE workspace_id = :ws AND customer_id IN :ids"
    ).bindparams(bindparam("ids", expanding=True))
    insert = text(_refresh_sql(model, dialect, subset=True)).bindparams(
        bindparam("ids", expanding=True)
    )
    done = 0
    ordered = sorted(persons)
    size = _BIG_CHUNK.get(dialect, 2000)
    for start in range(0, len(ordered), size):
        chunk = ordered[start : start + size]
        session.execute(delete, {"ws": workspace_id, "ids": chunk})
        session.execute(insert, {"ws": workspace_id, "ids": chunk})
        done += len(chunk)
        if commit is not None and done >= _STEP:
            commit()
            done = 0
