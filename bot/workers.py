"""Where slow work runs: small thread pools, each for one kind of work, none shared.

Reports are CPU-bound Python (SQLAlchemy, rendering) holding the GIL. Run on
asyncio's default pool, six of them at once starve the event loop thread, and
with it every acknowledgement. A dedicated pool of few threads keeps the loop
responsive under load: acknowledgements stay fast, and reports queue (their
response URLs stay valid for 30 minutes).

The other pools keep slow outside servers away from everyone else:

- `CHECKS`: the key check at `/journey connect` waits on a store's server, which
  may answer a byte at a time until the check's deadline. On asyncio's default
  pool (where installation and token look-ups run, bot/installations.py) six such
  checks blocked every other workspace's requests; here they wait among
  themselves, and `Gate` refuses more than a few per workspace and in all.
- Syncs have their own pool (bot/sync_progress.py) and gate, and the scheduler's
  ticks their own thread (bot/scheduler.py).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")


def env_count(name: str, default: int) -> int:
    """A whole number >= 1 from the environment; `default` when unset or not one."""
    raw = os.environ.get(name, "").strip()
    try:
        return max(1, int(raw)) if raw else default
    except ValueError:
        return default


_WORKERS = env_count("JOURNEY_REPORT_WORKERS", 1)
_pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="journey-report")

CHECK_WORKERS = env_count("JOURNEY_CHECK_WORKERS", 4)
CHECKS = ThreadPoolExecutor(max_workers=CHECK_WORKERS, thread_name_prefix="journey-check")

# A shorter GIL switch interval (default 5 ms) lets the event loop thread take
# the GIL back sooner from a report thread, which bounds acknowledgement latency.
sys.setswitchinterval(0.001)


async def in_worker(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_pool, partial(fn, *args))


async def in_pool(pool: Executor, fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(pool, partial(fn, *args))


class Gate:
    """How many of one kind of job may run (or wait) at once: per workspace and in all.

    `enter` says yes or no at once, never waits: a person who asked is better told
    "one is already running, try again when it ends" than left waiting behind
    another workspace's slow store. Thread-safe (the event loop and worker threads
    both call it).
    """

    def __init__(self, per_workspace: int, total: int) -> None:
        self.per_workspace = per_workspace
        self.total = total
        self._lock = threading.Lock()
        self._by_workspace: Counter[str] = Counter()

    def enter(self, workspace_id: str) -> bool:
        with self._lock:
            if self._by_workspace[workspace_id] >= self.per_workspace:
                return False
            if sum(self._by_workspace.values()) >= self.total:
                return False
            self._by_workspace[workspace_id] += 1
            return True

    def leave(self, workspace_id: str) -> None:
        with self._lock:
            self._by_workspace[workspace_id] -= 1
            if self._by_workspace[workspace_id] <= 0:
                del self._by_workspace[workspace_id]

    def running(self, workspace_id: str) -> int:
        with self._lock:
            return self._by_workspace[workspace_id]


# Checks of one workspace at once, and in all (the pool's threads plus as many waiting).
CHECK_GATE = Gate(
    per_workspace=env_count("JOURNEY_CHECKS_PER_WORKSPACE", 2), total=2 * CHECK_WORKERS
)
