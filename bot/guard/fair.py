"""Fair sharing per person: a rate limit on the commands and report buttons one user
may use per minute, with the polite sentence that goes with it.

The report pool (bot/work/pool.py) already bounds what one workspace may queue; this
bounds one person clicking fast inside a workspace, so a colleague's report is not
queued behind twenty of theirs. The bot counts in the database (`SharedRateLimit`,
journey/command_use.py), so several replicas share one count per person; `RateLimit`
counts in this process's memory, for a bot without a database to hand (tests) and as
the fallback when the database cannot be written in time.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable

from sqlalchemy import Engine

from journey.command_use import take

log = logging.getLogger("journey.bot")


def too_many_message(seconds: float) -> str:
    wait = max(1, math.ceil(seconds))
    unit = "second" if wait == 1 else "seconds"
    return f"You've run a lot of reports in the last minute; try again in {wait} {unit}."


class RateLimit:
    """At most `per_minute` events per key in any 60 seconds (a sliding window)."""

    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        window: float = 60.0,
        max_keys: int = 10_000,
    ) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self.window = window
        self.max_keys = max_keys
        self._seen: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, workspace: str, user: str) -> float:
        """0 and the event counted if it is within the limit; else the seconds until it
        would be (nothing counted, so retrying early does not push the wait out)."""
        now = self.clock()
        key = (workspace, user)
        with self._lock:
            times = self._seen.setdefault(key, deque())
            while times and now - times[0] >= self.window:
                times.popleft()
            if len(times) >= self.per_minute:
                return self.window - (now - times[0])
            times.append(now)
            if len(self._seen) > self.max_keys:
                self._forget_idle(now)
            return 0.0

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, t in self._seen.items() if not t or now - t[-1] >= self.window]:
            del self._seen[key]


class SharedRateLimit:
    """`RateLimit`'s rule, counted in the database every replica shares.

    `clock` is the wall clock (epoch seconds): replicas compare their times. If the
    database cannot count (an outage, SQLite's write lock held by a long import past
    the engine's busy timeout), this process's own count decides, with one log line:
    a person is never refused because the database is unwell."""

    def __init__(
        self,
        engine: Engine,
        per_minute: int,
        clock: Callable[[], float] = time.time,
        window: float = 60.0,
    ) -> None:
        self.engine = engine
        self.per_minute = per_minute
        self.clock = clock
        self.window = window
        self.local = RateLimit(per_minute, clock=clock, window=window)

    def wait(self, workspace: str, user: str) -> float:
        """0 and the use counted, or the seconds until it may be (nothing counted)."""
        try:
            return take(self.engine, workspace, user, self.clock(), self.per_minute, self.window)
        except Exception as exc:  # the database is unwell: count here instead
            log.warning("rate limit counted in this process: %s", type(exc).__name__)
            return self.local.wait(workspace, user)
