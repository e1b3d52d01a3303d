"""One read with the database's own driver (stdlib `sqlite3`, or `psycopg`), no SQLAlchemy.

For a command whose whole answer is one query and whose wait is Python's start-up:
`journey workspaces`. Importing SQLAlchemy alone takes longer than the 0.3 s the first-hour
issue allows a command over a bare interpreter (bench/README.md, "CLI start-up").

It reads only a database that is already current: when the file is missing, the URL has
anything this module does not parse as SQLAlchemy would, the schema is missing or behind
the migration files, or anything at all goes wrong, it answers None and the caller takes
the full path (`journey.db`: engine, `ensure_schema`, upgrade), which creates, upgrades
and reports errors in words. So a database is never read here in a shape the query does
not expect, and no error is worded twice.

Also home to what that full path shares with it without needing SQLAlchemy: the head
revision read from the migration files, and keeping a SQLite file private.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
from pathlib import Path
from typing import Any
from urllib.parse import unquote

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

log = logging.getLogger(__name__)

#: The SQLite file and its WAL companions hold every customer's name and email:
#: readable and writable by the service's own user only.
PRIVATE_FILE_MODE = 0o600
_SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")

_REVISION = re.compile(r'^(down_revision|revision)\b[^=]*=\s*(?:"([^"]*)"|None)', re.M)


def file_head() -> str | None:
    """The head revision read from the migration files' `revision` / `down_revision`
    lines, without importing alembic (a third of a second); None when the files do not
    give exactly one head, and then alembic decides."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict((k, v) for k, v in _REVISION.findall(path.read_text(encoding="utf-8")))
        if not found.get("revision"):
            return None
        revisions.add(found["revision"])
        if found.get("down_revision"):
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def make_private(path: Path) -> None:
    """Create `path` with mode 0600 if it is missing; take group and other access away
    from it and its -wal/-shm/-journal files if they have any. SQLite gives the WAL
    files the database file's mode, so a private database stays private; the chmod
    also mends databases created world-readable by earlier versions."""
    if not path.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    for suffix in _SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        try:
            mode = stat.S_IMODE(companion.stat().st_mode)
            if mode & 0o077:
                companion.chmod(mode & ~0o077 & 0o777)
        except FileNotFoundError:
            continue
        except PermissionError:
            log.warning("cannot make %s private (not its owner); chmod 600 it", companion)


def sqlite_file(url: str) -> Path | None:
    """The file of a plain SQLite URL, as SQLAlchemy reads it (`sqlite:///rel.db`,
    `sqlite:////abs.db`, percent-escapes decoded); None for anything else (in-memory,
    `file:` URIs, query options, other databases), which the full path handles."""
    for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(prefix):
            rest = url.removeprefix(prefix)
            if not rest or "?" in rest or "#" in rest:
                return None
            database = unquote(rest)
            if database == ":memory:" or database.startswith("file:"):
                return None
            return Path(database)
    return None


def _postgres_conninfo(url: str) -> str | None:
    """libpq's form of journey's PostgreSQL URL (settings write `postgresql+psycopg://`)."""
    for prefix in ("postgresql+psycopg://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql://" + url.removeprefix(prefix)
    return None


def read_current(url: str, sql: str) -> list[tuple[Any, ...]] | None:
    """`sql`'s rows, read with the driver itself from a database whose schema is at the
    migration files' head; None whenever the full path must answer instead (see the
    module's docstring). `sql` is a constant of the caller's, with no parameters."""
    head = file_head()
    if head is None:
        return None
    try:
        path = sqlite_file(url)
        if path is not None:
            return _read_sqlite(path, head, sql)
        conninfo = _postgres_conninfo(url)
        if conninfo is not None:
            return _read_postgres(conninfo, head, sql)
    except Exception as exc:  # the full path answers, and words any error
        log.debug("plain read of %s not possible (%s); taking the full path", sql[:40], exc)
    return None


def _read_sqlite(path: Path, head: str, sql: str) -> list[tuple[Any, ...]] | None:
    import sqlite3

    if not path.is_file():
        return None  # the full path creates it (private) and its schema
    make_private(path)  # as the full path does on every connection
    # mode=rw: never create a file here; timeout: as make_engine's busy_timeout.
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=30)
    try:
        if _revision(conn.execute("SELECT version_num FROM alembic_version").fetchall()) != head:
            return None
        return [tuple(row) for row in conn.execute(sql).fetchall()]
    finally:
        conn.close()
        make_private(path)  # the -wal and -shm files the connection may have made


def _read_postgres(conninfo: str, head: str, sql: str) -> list[tuple[Any, ...]] | None:
    import psycopg  # imported here: a SQLite user never pays for it

    # The session settings make_engine gives every connection (journey.db).
    with (
        psycopg.connect(conninfo, options="-c timezone=UTC -c jit=off") as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SELECT version_num FROM alembic_version")
        if _revision(cur.fetchall()) != head:
            return None
        cur.execute(sql)
        return [tuple(row) for row in cur.fetchall()]


def _revision(rows: list[Any]) -> str | None:
    return rows[0][0] if len(rows) == 1 else None
