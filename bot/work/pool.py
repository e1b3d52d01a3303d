"""Where slow work runs: one bounded, fair pool of report threads per process.

Reports are CPU-bound Python (SQLAlchemy, rendering) holding the GIL. Run on
asyncio's default pool, six of them at once starve the event loop thread, and
with it every acknowledgement. A dedicated pool of few threads keeps the loop
responsive under load: acknowledgements stay fast.

But a pool alone queues without limit: at 30 commands a second, replies came
minutes late and the queue grew until the response URLs (30 minutes) expired.
So the queue is bounded, per process and per workspace, in depth and in age:

- `JOURNEY_REPORT_WORKERS` threads (default: the machine's cores less one, 1 to 4:
  one core stays for the event loop). More threads do not make CPU-bound Python
  faster; they let database waits overlap (SQLite and psycopg release the GIL) at
  the price of acknowledgement latency. Measured on 2 cores at 30 commands/s
  (bench/README.md): 2 threads answered 11% more reports than 1, but with ack p99
  0.76 s against 0.16 s and reply p99 3.6 s against 1.3 s.
- At most `JOURNEY_REPORT_QUEUE` reports waiting (default 16 per thread), of which
  at most half from any one workspace, so one busy workspace cannot take every
  place in the queue from the others.
- A report that waited longer than `JOURNEY_REPORT_MAX_WAIT` seconds (default 4)
  is not started: it would answer later than a user waits for.

Past a bound the work is refused with `Busy`, and the user reads a polite "busy,
try again in a minute" at once instead of an ever later answer (bot/listeners/
replies.py). That holds for everything a person asks for, not only reports: a
button's work (a review mark, an alert acknowledgement, Share, the CSV), the App
Home and `/journey sync`'s look-up go through `queued` and are refused the same way,
each with an answer that fits where it was asked (an ephemeral line, a Home note).
Before, they queued without bound behind the reports. `in_worker` (never refused)
is only for bookkeeping that follows work already admitted, such as recording an
export once the file was sent: there is at most one per admitted piece of work,
so the queue stays bounded, and refusing it would lose the record.

The other pools keep slow outside servers away from everyone else:

- `CHECKS`: the key check at `/journey connect` waits on a store's server, which
  may answer a byte at a time until the check's deadline. On asyncio's default
  pool (where installation and token look-ups run, bot/install/installations.py) six such
  checks blocked every other workspace's requests; here they wait among
  themselves, and `Gate` refuses more than a few per workspace and in all.
- Syncs have their own pool (bot/posting/sync_progress.py) and gate, and the scheduler's
  ticks their own thread (bot/posting/loop.py).
- Files sent in Slack are downloaded, checked and imported on `IMPORTS`, one per
  workspace at a time (`IMPORT_GATE`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from journey.errors import JourneyError

T = TypeVar("T")
log = logging.getLogger("journey.bot")


def env_count(name: str, default: int) -> int:
    """A whole number >= 1 from the environment; `default` when unset or not one."""
    raw = os.environ.get(name, "").strip()
    try:
        return max(1, int(raw)) if raw else default
    except ValueError:
        return default


CHECK_WORKERS = env_count("JOURNEY_CHECK_WORKERS", 4)
CHECKS = ThreadPoolExecutor(max_workers=CHECK_WORKERS, thread_name_prefix="journey-check")

# A shorter GIL switch interval (default 5 ms) lets the event loop thread take
# the GIL back sooner from a report thread, which bounds acknowledgement latency.
sys.setswitchinterval(0.001)


class Busy(Exception):
    """The report pool refused the work (queue full, or it waited too long)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass(frozen=True)
class PoolLimits:
    threads: int
    max_queue: int
    max_queue_per_workspace: int
    max_wait: float


def _number(name: str, default: float, env: dict[str, str] | None, minimum: float) -> float:
    raw = ((env if env is not None else os.environ).get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise JourneyError(f"{name} must be a number, got {raw!r}.") from None
    if value < minimum:
        raise JourneyError(f"{name} must be at least {minimum:g}, got {raw!r}.")
    return value


def limits_from_env(env: dict[str, str] | None = None) -> PoolLimits:
    """The pool's size and bounds from the environment (see the module docstring)."""
    cores = os.cpu_count() or 2
    threads = int(_number("JOURNEY_REPORT_WORKERS", max(1, min(4, cores - 1)), env, 1))
    queue = int(_number("JOURNEY_REPORT_QUEUE", 16 * threads, env, 1))
    wait = _number("JOURNEY_REPORT_MAX_WAIT", 4.0, env, 0.1)
    return PoolLimits(threads, queue, max(1, queue // 2), wait)


class ReportPool:
    """Threads with a bounded, per-workspace-fair queue in front of them."""

    def __init__(self, limits: PoolLimits) -> None:
        self.limits = limits
        self._executor = ThreadPoolExecutor(
            max_workers=limits.threads, thread_name_prefix="journey-report"
        )
        self._lock = threading.Lock()
        self._waiting = 0
        self._waiting_by: dict[str, int] = {}
        self.running = 0
        self.shed = 0  # refused since start, for the log and the benchmark

    @property
    def waiting(self) -> int:
        return self._waiting

    def busy(self) -> bool:
        """Whether new work would wait: every thread taken and some already queued."""
        return self.running >= self.limits.threads and self._waiting > 0

    async def run(
        self, fn: Callable[..., T], *args: Any, workspace: str | None = None, shed: bool = True
    ) -> T:
        """`fn(*args)` on a report thread; raises Busy when `shed` and a bound is passed."""
        key = workspace or ""
        with self._lock:
            if shed and self._waiting >= self.limits.max_queue:
                self.shed += 1
                raise Busy("queue full")
            if (
                shed
                and workspace is not None
                and self._waiting_by.get(key, 0) >= self.limits.max_queue_per_workspace
            ):
                self.shed += 1
                raise Busy("workspace queue full")
            self._waiting += 1
            self._waiting_by[key] = self._waiting_by.get(key, 0) + 1
        queued_at = time.monotonic()
        left = False

        def leave() -> None:  # once, from whichever side gets there first (under the lock)
            nonlocal left
            if not left:
                left = True
                self._leave(key)

        def start() -> T:
            with self._lock:
                leave()
                self.running += 1
            try:
                if shed and time.monotonic() - queued_at > self.limits.max_wait:
                    with self._lock:
                        self.shed += 1
                    raise Busy("waited too long")
                return fn(*args)
            finally:
                with self._lock:
                    self.running -= 1

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, start)
        finally:
            with self._lock:  # cancelled (a shutdown) before a thread took it
                leave()

    def _leave(self, key: str) -> None:
        self._waiting -= 1
        left = self._waiting_by.get(key, 1) - 1
        if left:
            self._waiting_by[key] = left
        else:
            self._waiting_by.pop(key, None)


_shed = {"since": 0.0, "count": 0}


def log_shed(why: str, every: float = 10.0) -> None:
    """At most one line per `every` seconds for refused work (`Busy.why`), however many."""
    _shed["count"] += 1
    now = time.monotonic()
    if now - _shed["since"] >= every:
        log.warning(
            "report pool full: %d request(s) refused with 'busy, try again' (latest: %s)",
            _shed["count"],
            why,
        )
        _shed["since"], _shed["count"] = now, 0


_pool: ReportPool | None = None


def pool() -> ReportPool:
    """This process's report pool, made on first use from the environment."""
    global _pool
    if _pool is None:
        _pool = ReportPool(limits_from_env())
    return _pool


def use_pool(new: ReportPool | None) -> ReportPool | None:
    """Replace this process's pool (tests pin its size); returns the one it replaced."""
    global _pool
    old, _pool = _pool, new
    return old


async def queued(workspace: str | None, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` on the report threads, for `workspace`: raises Busy past the bounds
    (per process and per workspace, in depth and in age), like a report."""
    return await pool().run(fn, *args, workspace=workspace)


async def in_worker(fn: Callable[..., T], *args: Any) -> T:
    """Bookkeeping that follows admitted work on the report threads, never refused."""
    return await pool().run(fn, *args, shed=False)


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

# Files imported from Slack (bot/posting/import_progress.py): their download, dry run and
# import run here, never on the report threads (an import reads a file twice and writes
# for minutes) nor on the event loop. One file per workspace at a time, and at most
# twice the threads in all; past that the person is told to try again.
IMPORT_WORKERS = env_count("JOURNEY_IMPORT_WORKERS", 2)
IMPORTS = ThreadPoolExecutor(max_workers=IMPORT_WORKERS, thread_name_prefix="journey-import")
IMPORT_GATE = Gate(
    per_workspace=env_count("JOURNEY_IMPORTS_PER_WORKSPACE", 1), total=2 * IMPORT_WORKERS
)
