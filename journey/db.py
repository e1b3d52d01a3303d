"""Engine, sessions and the migrations entry point.

The schema is owned by Alembic (journey/migrations), never by `create_all`, so a
database made by any earlier version is brought forward with `journey db upgrade`
without losing rows. Commands call `ensure_schema` first, which makes a fresh
SQLite file usable at once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, OperationalError

from journey.errors import JourneyError
from journey.plain_sql import MIGRATIONS, file_head, make_private

if TYPE_CHECKING:  # alembic and sqlmodel load only when needed: a fast `journey workspaces`
    from alembic.config import Config
    from sqlmodel import Session

log = logging.getLogger(__name__)


def _megabytes(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise JourneyError(f"{name} must be a whole number of megabytes, got {raw!r}.") from None
    if value < 0:
        raise JourneyError(f"{name} cannot be negative (0 turns it off).")
    return value


def _sqlite_pragmas() -> Callable[[Any, Any], None]:
    """The connect hook setting journey's pragmas on every SQLite connection.

    The page cache and the memory map make the 1M-customer reports fast; a small
    machine, or a process that only syncs, can trade that speed for memory with
    JOURNEY_SQLITE_CACHE_MB and JOURNEY_SQLITE_MMAP_MB (bench/README.md has figures).
    Read once, here, so a bad value fails when the engine is made, in words.
    """
    cache_kib = _megabytes("JOURNEY_SQLITE_CACHE_MB", 200) * 1000
    mmap_bytes = _megabytes("JOURNEY_SQLITE_MMAP_MB", 1024) * 1024 * 1024

    def connected(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets reports read while an import writes; foreign keys are off by default.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA cache_size=-{cache_kib}")
        cursor.execute(f"PRAGMA mmap_size={mmap_bytes}")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()

    return connected


def _sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (None for an in-memory database)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _kept_private(path: Path) -> Callable[[Any, Any], None]:
    """The connect hook keeping the database file and its WAL files 0600 (registered
    after the pragmas, once journal_mode=WAL has made the -wal and -shm files)."""
    if path.parent.is_dir():
        make_private(path)  # before the first connection creates it with the umask's mode

    def connected(_dbapi_connection: Any, _record: Any) -> None:
        make_private(path)

    return connected


def make_engine(url: str, *, busy_timeout: float = 30) -> Engine:
    """Create an engine for SQLite or PostgreSQL with the settings journey relies on.

    `busy_timeout`: how long a SQLite write waits for another writer's lock (an
    import) before "database is locked"; the bot's writes made while a user waits
    use a short one (bot.commands.service). Read-only and dropped connections are thrown
    out of the pool when they fail, so the pool heals (journey.outage).

    A SQLite file is created 0600 and kept so on every connection (with its -wal
    and -shm files), whatever the umask: another local user must not read it."""
    from journey.outage import heal_on_outage

    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": busy_timeout})
            event.listen(engine, "connect", _sqlite_pragmas())
            path = _sqlite_path(url)
            if path is not None:
                event.listen(engine, "connect", _kept_private(path))
            heal_on_outage(engine)
            return engine
        # Times are epoch integers, but keep the session in UTC for anyone reading raw SQL.
        # JIT compilation costs 50-220 ms per report query here and never pays back on
        # queries that already run in well under a second (bench/README.md).
        engine = create_engine(
            url, pool_pre_ping=True, connect_args={"options": "-c timezone=UTC -c jit=off"}
        )
        heal_on_outage(engine)
        return engine
    except ArgumentError as exc:
        raise JourneyError(
            f"DATABASE_URL is not a database URL I understand: {exc}. "
            "Use sqlite:///path/to/journey.db or postgresql+psycopg://user@host/db."
        ) from exc
    except ModuleNotFoundError as exc:
        raise JourneyError(f"The database driver is missing ({exc.name}); run `uv sync`.") from exc


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def _stored_revision(engine: Engine) -> str | None:
    """alembic_version's row, read with one query (None: a new database)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    except Exception:  # no table yet, or no database: alembic's own path says which
        return None
    return rows[0][0] if len(rows) == 1 else None


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    try:
        command.upgrade(alembic_config(engine), revision)
    except OperationalError as exc:
        raise JourneyError(
            f"Cannot reach the database ({str(exc.orig).strip().splitlines()[0]}). "
            "Check DATABASE_URL and that the server is running."
        ) from exc
    if revision == "head":
        build_missing_people(engine)


def build_missing_people(engine: Engine) -> None:
    """Join records into people in workspaces that predate people (migration 0011), with
    the application's own rules, and rebuild the journey state where anything joined.

    Not in the migration itself: the rules live in journey/people.py and a migration must
    not import code that changes after it."""
    from sqlalchemy import text
    from sqlmodel import Session

    from journey.state import refresh_journeys

    with Session(engine) as session:
        pending = [
            str(r[0])
            for r in session.execute(
                text("SELECT id FROM workspace WHERE people_built = :f"), {"f": False}
            ).all()
        ]
    for workspace_id in pending:
        with Session(engine) as session, session.begin():
            refresh_journeys(session, workspace_id)


def ensure_schema(engine: Engine) -> None:
    """Upgrade to head if the database is behind (cheap when it is current: one query
    and the migration files' headers, alembic itself only when there is work)."""
    try:
        stored = _stored_revision(engine)
        if stored is not None and stored == file_head():
            return
        current = current_revision(engine)
    except OperationalError as exc:
        raise JourneyError(
            f"Cannot reach the database ({str(exc.orig).strip().splitlines()[0]}). "
            "Check DATABASE_URL and that the server is running."
        ) from exc
    if current != head_revision(engine):
        upgrade(engine)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    from sqlmodel import Session

    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def fetch_rows(
    session: Session, sql: str, params: dict[str, Any], binary: bool = False
) -> list[tuple[Any, ...]]:
    """Every row of a read-only query as plain tuples, through the driver's own fetchall.

    Why: iterating a SQLAlchemy result makes a Row per row through a Python-level fetch
    loop; for the models' million-row reads (the buyer summary, the value report's
    cohort) that loop cost more than the query itself. The statement is compiled by the
    session's dialect (same `:name` parameters as `text()`, same bind processing) and run
    on the session's own connection and transaction. `binary` asks psycopg for PostgreSQL's
    binary result format (a bytea arrives as its bytes, not as hex text to decode); other
    drivers ignore it.
    """
    connection = session.connection()
    compiled = text(sql).compile(dialect=connection.dialect)
    values = compiled.construct_params(params)
    args: Any = (
        tuple(values[name] for name in compiled.positiontup or ())
        if compiled.positional
        else values
    )
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if binary and connection.dialect.driver == "psycopg":
            cursor.execute(compiled.string, args, binary=True)
        else:
            cursor.execute(compiled.string, args)
        return list(cursor.fetchall())
    finally:
        cursor.close()
