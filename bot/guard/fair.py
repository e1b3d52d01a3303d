"""Fair sharing per person: a rate limit on the commands and report buttons one user
may use per minute, with the polite sentence that goes with it.

The report pool (bot/work/pool.py) already bounds what one workspace may queue; this
bounds one person clicking fast inside a workspace, so a colleague's report is not
queued behind twenty of theirs. In memory, per process: with several replicas each
enforces its own share, which is enough to keep one person from stalling a replica.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


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
