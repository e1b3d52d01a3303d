"""When the database is out of reach, full, read-only or busy: words, retries, healing.

A ten-second PostgreSQL restart used to turn every command into "Something went
wrong on our side" with a 130-line traceback each; a full disk made the CLI ask
for a bug report; a read-only SQLite file made writable again kept failing until
a restart, because the pool kept the connections opened read-only. Here:

- `classify(exc)` names what happened (`Outage`): the database restarting or
  unreachable, the disk full, the file read-only, the database busy (a long
  write such as an import holds SQLite's lock), and says it in words for a
  user and for the CLI. Anything else is not an outage (a bug: None).
- `heal_on_outage(engine)` makes SQLAlchemy treat read-only and unreachable
  errors as disconnects, so the whole pool is dropped and the next checkout
  opens a fresh connection (which is writable again once the file is).
- `retry_reads(fn)` runs read-only work again, with backoff and jitter, while
  the database is restarting, up to a deadline, before any answer is given.
- `OUTAGES.seen(outage)` logs one line per incident and kind, at most once a
  minute while it lasts (with how many failures were folded in), and one line
  when the database answers again: not one traceback per request.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError

from journey.errors import JourneyError

log = logging.getLogger("journey.outage")
T = TypeVar("T")

UNREACHABLE = "unreachable"
DISK_FULL = "disk_full"
READ_ONLY = "read_only"
BUSY = "busy"

WORDS = {
    UNREACHABLE: (
        "The database is restarting or out of reach, so I could not answer just now. "
        "Please try again in a minute."
    ),
    DISK_FULL: (
        "The server's disk is full, so nothing could be saved: tell your admin. "
        "Nothing was changed."
    ),
    READ_ONLY: (
        "The database file is read-only, so nothing could be saved: tell your admin "
        "(journey needs write access to the file and its folder). Nothing was changed."
    ),
    BUSY: (
        "The database is busy (an import or a sync is writing to it), so this could not be "
        "saved: try again shortly. Nothing was changed."
    ),
}
# What the operator running the CLI can do about it.
CLI_WORDS = {
    UNREACHABLE: (
        "Cannot reach the database (it is restarting, stopped or out of reach): check that "
        "it is running and that DATABASE_URL points at it, then run the command again."
    ),
    DISK_FULL: (
        "The disk holding the database is full: free some space (or move the database), "
        "then run the command again. Nothing was half-written: the last step was rolled back."
    ),
    READ_ONLY: (
        "The database file is read-only: give this user write access to the file and its "
        "folder (SQLite writes -wal and -shm files beside it), then run the command again."
    ),
    BUSY: (
        "The database is locked by another writer (an import or a sync still running): "
        "wait for it to finish, then run the command again."
    ),
}

# PostgreSQL SQLSTATEs: class 08 connection exceptions, 57P01-57P03 admin shutdown,
# crash shutdown and cannot-connect-now (starting up or shutting down), 53100 disk
# full, 25006 read-only transaction (a standby after a failover). postgresql.org/docs/
# current/errcodes-appendix.html.
_PG_UNREACHABLE = ("08", "57P01", "57P02", "57P03")
_PG_DISK_FULL = ("53100",)
_PG_READ_ONLY = ("25006",)
# SQLite result codes by name (Python 3.11+ sets sqlite_errorname): sqlite.org/rescode.html.
_SQLITE = {
    "SQLITE_FULL": DISK_FULL,
    "SQLITE_READONLY": READ_ONLY,
    "SQLITE_READONLY_DBMOVED": READ_ONLY,
    "SQLITE_READONLY_DIRECTORY": READ_ONLY,
    "SQLITE_READONLY_RECOVERY": READ_ONLY,
    "SQLITE_READONLY_CANTINIT": READ_ONLY,
    "SQLITE_READONLY_CANTLOCK": READ_ONLY,
    "SQLITE_BUSY": BUSY,
    "SQLITE_LOCKED": BUSY,
    "SQLITE_CANTOPEN": UNREACHABLE,
    "SQLITE_IOERR": UNREACHABLE,
}
_MESSAGES = (
    ("database or disk is full", DISK_FULL),
    ("no space left on device", DISK_FULL),
    ("readonly database", READ_ONLY),
    ("read-only transaction", READ_ONLY),
    ("read-only file system", READ_ONLY),
    ("database is locked", BUSY),
    ("connection refused", UNREACHABLE),
    ("server closed the connection", UNREACHABLE),
    ("terminating connection", UNREACHABLE),
    ("the database system is", UNREACHABLE),  # starting up / shutting down / in recovery
    ("connection failed", UNREACHABLE),
    ("could not connect", UNREACHABLE),
    ("connection is closed", UNREACHABLE),
    ("consuming input failed", UNREACHABLE),
    ("unable to open database file", UNREACHABLE),
)


@dataclass(frozen=True)
class Outage:
    kind: str  # UNREACHABLE | DISK_FULL | READ_ONLY | BUSY
    detail: str  # the driver's first line, for the log (no SQL, no parameters)

    @property
    def words(self) -> str:
        return WORDS[self.kind]

    @property
    def cli_words(self) -> str:
        return CLI_WORDS[self.kind]

    @property
    def transient(self) -> bool:
        """Worth retrying a read for: the server comes back by itself."""
        return self.kind == UNREACHABLE


class StoreUnavailable(JourneyError):
    """An outage turned into a JourneyError (the CLI prints it as is)."""

    def __init__(self, outage: Outage) -> None:
        super().__init__(outage.cli_words)
        self.outage = outage


def classify(exc: BaseException) -> Outage | None:
    """What kind of outage `exc` is, or None when it is not one (a bug, bad input)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StoreUnavailable):
            return current.outage
        found = _one(current)
        if found is not None:
            return found
        current = current.__cause__ or current.__context__
    return None


def _one(exc: BaseException) -> Outage | None:
    orig: Any = exc.orig if isinstance(exc, DBAPIError) else exc
    detail = (str(orig).strip().splitlines() or [type(orig).__name__])[0][:200]
    name = getattr(orig, "sqlite_errorname", None)
    if isinstance(name, str):
        kind = _SQLITE.get(name) or next(
            (k for prefix, k in _SQLITE.items() if name.startswith(prefix + "_")), None
        )
        if kind is not None:
            return Outage(kind, detail)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(state, str):
        if state.startswith(_PG_UNREACHABLE) or state in _PG_UNREACHABLE:
            return Outage(UNREACHABLE, detail)
        if state in _PG_DISK_FULL:
            return Outage(DISK_FULL, detail)
        if state in _PG_READ_ONLY:
            return Outage(READ_ONLY, detail)
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return Outage(UNREACHABLE, detail)
    if isinstance(exc, DBAPIError) or type(orig).__module__.split(".")[0] in (
        "sqlite3",
        "psycopg",
        "psycopg2",
    ):
        text = detail.lower()
        for needle, kind in _MESSAGES:
            if needle in text:
                return Outage(kind, detail)
    if isinstance(exc, OSError) and exc.errno == 28:  # ENOSPC
        return Outage(DISK_FULL, detail)
    if isinstance(exc, OSError) and exc.errno == 30:  # EROFS
        return Outage(READ_ONLY, detail)
    return None


# Unreachable network or host, refused, timed out, and the resolver's "no such name" and
# "try again" (EAI_NONAME -2, EAI_AGAIN -3, EAI_NODATA -5 on Linux's getaddrinfo).
_NETWORK_ERRNOS = (101, 110, 111, 113, -2, -3, -5)


def network_words(exc: BaseException) -> str | None:
    """Words for a network failure reaching a store or CRM (no DNS, no route, refused,
    timed out), or None when `exc` is something else."""
    import socket

    import httpx

    current: BaseException | None = exc
    while current is not None:
        host = ""
        if isinstance(current, httpx.TransportError):
            try:
                host = current.request.url.host
            except RuntimeError:  # no request attached
                host = ""
        if isinstance(current, httpx.TimeoutException):
            where = f" {host}" if host else ""
            return (
                f"No answer from{where} in time (the network or the service is slow or down): "
                "check this machine's connection, then run the command again."
            )
        if isinstance(current, httpx.TransportError | socket.gaierror) or (
            isinstance(current, OSError) and current.errno in _NETWORK_ERRNOS
        ):
            # aiohttp's connector errors (the Slack client's) are OSErrors that carry the host.
            host = host or str(getattr(current, "host", "") or "")
            if host == "slack.com" or host.endswith(".slack.com"):
                return (
                    "Cannot reach Slack (check the connection, and any proxy): this machine "
                    f"could not connect to {host}. Run the command again once it can."
                )
            where = host or "the service"
            return (
                f"Cannot reach {where} (no network, DNS or route from this machine): check the "
                "connection (and any proxy), then run the command again."
            )
        current = current.__cause__ or current.__context__
    return None


class OutageLog:
    """One log line per incident: the first failure of a kind, then at most one a
    minute while it lasts (saying how many failures it folded in), then one line when
    the database answers again."""

    def __init__(self, every: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._lock = threading.Lock()
        self._open: dict[str, tuple[float, float, int]] = {}  # kind -> (since, logged, folded)

    def seen(self, outage: Outage) -> None:
        now = self.clock()
        with self._lock:
            since, logged, folded = self._open.get(outage.kind, (now, -1e18, 0))
            if now - logged < self.every:
                self._open[outage.kind] = (since, logged, folded + 1)
                return
            self._open[outage.kind] = (since, now, 0)
        if folded:
            log.warning(
                "database still %s after %.0fs (%d more failures): %s",
                outage.kind.replace("_", " "),
                now - since,
                folded,
                outage.detail,
            )
        else:
            log.warning("database %s: %s", outage.kind.replace("_", " "), outage.detail)

    def answered(self) -> None:
        """A call went through: close any open incident with one line."""
        if not self._open:
            return
        now = self.clock()
        with self._lock:
            closed, self._open = self._open, {}
        for kind, (since, _logged, _folded) in closed.items():
            log.warning(
                "database answering again after %.0fs (%s)", now - since, kind.replace("_", " ")
            )


OUTAGES = OutageLog()


def retry_reads(
    fn: Callable[[], T],
    *,
    deadline: float = 20.0,
    first: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """`fn()` (read-only work), again after 0.5, 1, 2, 4... seconds (with jitter) while
    the database is unreachable, until `deadline` seconds have passed; then the last
    error is raised. Other errors are raised at once."""
    start = clock()
    delay = first
    while True:
        try:
            result = fn()
        except Exception as exc:
            outage = classify(exc)
            if outage is None:
                raise
            OUTAGES.seen(outage)
            wait = delay * random.uniform(0.5, 1.5)
            if not outage.transient or clock() - start + wait > deadline:
                raise
            sleep(wait)
            delay = min(delay * 2, 4.0)
            continue
        OUTAGES.answered()
        return result


def heal_on_outage(engine: Engine) -> None:
    """Drop the pool when a connection proves read-only or dead.

    SQLAlchemy drops the whole pool on a "disconnect"; its dialects recognise
    PostgreSQL's dropped connections, but a SQLite connection opened while the
    file was read-only stays read-only after the file is made writable, and was
    kept in the pool for good. Marked as a disconnect here, it is thrown away and
    the next checkout opens the file afresh."""

    @event.listens_for(engine, "handle_error")
    def _mark(context: Any) -> None:
        outage = _one(context.original_exception)
        if outage is not None and outage.kind in (READ_ONLY, UNREACHABLE):
            context.is_disconnect = True
