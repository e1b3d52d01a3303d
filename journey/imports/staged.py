"""An import batch's events written set-based: staged in a temporary table, then merged.

Why: the Ingestor (journey.ingest) compares every record with the stored one in
Python, after look-ups by 1,000-id IN lists that SQLAlchemy compiles anew each time
(four per chunk for the customers alone). That is right for a sync's pages and was
most of a large import's write time. Here a batch of 5,000 events is loaded into a
temporary table in one call (PostgreSQL: COPY; SQLite: the driver's executemany) and
merged with a handful of statements that run inside the database:

1. the customers the events name: missing ones created as stubs in one INSERT ...
   SELECT ... ON CONFLICT DO NOTHING, ids read back with one join;
2. which staged events are new or changed (one join with the stored events: the
   counts the summary prints, and the customers whose state needs refreshing);
3. one INSERT ... SELECT ... ON CONFLICT DO UPDATE ... WHERE the row differs, so an
   unchanged row is not rewritten.

The semantics are the Ingestor's: keyed on (workspace, source, external id), the last
event with an id in a batch wins, counted as inserted, updated or unchanged. Temporary
tables belong to the connection, so the batch's transaction is the only reader, and
SQLite keeps them out of the database file (no write lock is taken to stage).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from journey.ingest import Ingestor, IngestStats

_KEYS = "journey_import_keys"
_STAGE = "journey_import_events"
# (external_id, customer external id, kind, occurred_at epoch, channel, amount_cents)
StagedEvent = tuple[str, str, str, int, str | None, int | None]


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _prepare(session: Session, table: str, columns: str) -> None:
    """The temporary table, created once per connection, emptied for this batch."""
    pg = _dialect(session) == "postgresql"
    suffix = " ON COMMIT DELETE ROWS" if pg else ""
    session.execute(text(f"CREATE TEMPORARY TABLE IF NOT EXISTS {table} ({columns}){suffix}"))
    session.execute(text(f"DELETE FROM {table}"))


def _load(
    session: Session, table: str, names: Sequence[str], rows: Iterable[tuple[Any, ...]]
) -> None:
    """Rows into a temporary table in one driver call: COPY on PostgreSQL, executemany on
    SQLite (no per-row SQLAlchemy parameter processing)."""
    raw: Any = session.connection().connection.dbapi_connection
    if _dialect(session) == "postgresql":
        with raw.cursor() as cursor:
            with cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            # Autovacuum never analyzes temporary tables: without statistics the
            # planner guesses their size, and joined with a large store, guesses wrong.
            cursor.execute(f"ANALYZE {table}")
        return
    marks = ", ".join("?" for _ in names)
    cursor = raw.cursor()
    try:
        cursor.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", rows)
    finally:
        cursor.close()


def customer_ids(ingestor: Ingestor, keys: Iterable[str]) -> dict[str, int]:
    """Ids of these customers of the ingestor's source, creating stubs for the missing ones
    (not counted as inserted records, as the Ingestor does not: the events are)."""
    session = ingestor.session
    params = {"ws": ingestor.workspace_id, "src": ingestor.source_id}
    _prepare(session, _KEYS, "k VARCHAR(200) PRIMARY KEY")
    wanted = sorted(set(keys))
    _load(session, _KEYS, ["k"], ((k,) for k in wanted))
    created = session.execute(
        text(
            "INSERT INTO customer (workspace_id, source_id, external_id) "
            f"SELECT :ws, :src, k FROM {_KEYS} WHERE true "
            "ON CONFLICT (workspace_id, source_id, external_id) DO NOTHING"
        ),
        params,
    ).rowcount
    rows = session.execute(
        text(
            f"SELECT k.k, c.id FROM {_KEYS} k JOIN customer c ON c.workspace_id = :ws "
            "AND c.source_id = :src AND c.external_id = k.k"
        ),
        params,
    ).all()
    if created and created > 0:
        ingestor._wrote(created)  # the statistics schedule of this write
    return {str(k): int(i) for k, i in rows}


def upsert_events(ingestor: Ingestor, events: Sequence[StagedEvent]) -> IngestStats:
    """Upsert one batch of events (see the module docstring); their customers are
    created as stubs when the source has not named them yet."""
    session = ingestor.session
    params = {"ws": ingestor.workspace_id, "src": ingestor.source_id}
    latest = {e[0]: e for e in events}  # the last one wins within a batch
    ids = customer_ids(ingestor, (e[1] for e in latest.values()))
    stats = IngestStats()
    _prepare(
        session,
        _STAGE,
        "external_id VARCHAR(200) PRIMARY KEY, customer_id BIGINT NOT NULL, "
        "kind VARCHAR(64) NOT NULL, occurred_at BIGINT NOT NULL, channel VARCHAR(100), "
        "amount_cents BIGINT",
    )
    _load(
        session,
        _STAGE,
        ["external_id", "customer_id", "kind", "occurred_at", "channel", "amount_cents"],
        ((e[0], ids[e[1]], e[2], e[3], e[4], e[5]) for e in latest.values()),
    )
    differs = _differs(_dialect(session), "e", "s")
    changed = session.execute(
        text(
            f"SELECT s.customer_id, e.customer_id FROM {_STAGE} s LEFT JOIN journey_event e "
            "ON e.workspace_id = :ws AND e.source_id = :src AND e.external_id = s.external_id "
            f"WHERE e.id IS NULL OR {differs}"
        ),
        params,
    ).all()
    for new_customer, old_customer in changed:
        stats.touched_customers.add(int(new_customer))
        if old_customer is None:
            stats.inserted += 1
        else:
            stats.updated += 1
            stats.touched_customers.add(int(old_customer))
    stats.unchanged += len(latest) - len(changed)
    if changed:
        update = _differs(_dialect(session), "journey_event", "excluded")
        session.execute(
            text(
                "INSERT INTO journey_event (workspace_id, source_id, external_id, customer_id, "
                "kind, occurred_at, channel, amount_cents) "
                "SELECT :ws, :src, external_id, customer_id, kind, occurred_at, channel, "
                f"amount_cents FROM {_STAGE} WHERE true "
                "ON CONFLICT (workspace_id, source_id, external_id) DO UPDATE SET "
                "customer_id = excluded.customer_id, kind = excluded.kind, "
                "occurred_at = excluded.occurred_at, channel = excluded.channel, "
                f"amount_cents = excluded.amount_cents WHERE {update}"
            ),
            params,
        )
        ingestor._wrote(len(changed))
    return stats


def _differs(dialect: str, old: str, new: str) -> str:
    """SQL: the stored event `old` differs from the staged one `new` (NULLs equal)."""
    same = "IS NOT DISTINCT FROM" if dialect == "postgresql" else "IS"
    return (
        f"NOT ({old}.customer_id = {new}.customer_id AND {old}.kind = {new}.kind"
        f" AND {old}.occurred_at = {new}.occurred_at AND {old}.channel {same} {new}.channel"
        f" AND {old}.amount_cents {same} {new}.amount_cents)"
    )
