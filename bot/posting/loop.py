"""The scheduler loop: every JOURNEY_SCHEDULER_INTERVAL seconds (60 by default), run
journey.schedule.run_due in a worker thread with this process's replica id.

Every replica (each Socket Mode process, each HTTP worker) runs the loop; the
core's leases in the database make each digest and each alert go out once.
A plain asyncio task rather than APScheduler: there is one job, at one fixed
interval, and the exactly-once part lives in the database, so a scheduler
library's job stores and misfire policies would add a dependency and no
guarantee. The tick runs on its own thread (not the report pool), so a slow
digest never delays a report, and a tick never overlaps the next one.

Beside it, every JOURNEY_SYNC_INTERVAL seconds (3600 by default, 0 turns it off)
a second loop runs journey.schedule.syncs.run_due_syncs: each active connected
source not synced within the interval is claimed by one replica and synced.
It has its own loop and thread so that a long sync never delays a digest.
Both loops live in the one task `start_scheduler` returns. At shutdown neither is
cancelled mid-tick: they stop after the tick under way has recorded what it sent
(bot/work/inflight.py waits for that, up to JOURNEY_SHUTDOWN_GRACE).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Engine

from bot.config import BotSettings
from bot.listeners.events.lifecycle import resume_token_workspace
from bot.posting.delivery import (
    PauseTeller,
    SlackDelivery,
    TokenLookup,
    async_token_lookup,
    authorize_lookup,
    static_token,
)
from bot.work.inflight import INFLIGHT
from bot.work.pool import in_pool
from journey.errors import JourneyError
from journey.schedule.leases import Scope
from journey.schedule.runner import DeliveryPort, RunReport, run_due
from journey.schedule.syncs import PausedSource, SyncRun, pause_notices, run_due_syncs
from journey.sync import ConnectorFactory
from journey.uninstall import purge_due

log = logging.getLogger("journey.bot.scheduler")

DEFAULT_INTERVAL = 60.0
# Each loop's tick on a thread of its own: a tick is sequential, and a slow store in a
# scheduled sync must not hold a thread of asyncio's default pool (installation look-ups).
_TICKS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journey-tick")
_startup: set[asyncio.Task[Any]] = set()  # keeps start-up tasks referenced until done
_SYNC_TICKS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journey-sync-tick")
DEFAULT_SYNC_INTERVAL = 3600.0


def _seconds(name: str, default: float, env: dict[str, str] | None) -> float:
    raw = ((env if env is not None else os.environ).get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise JourneyError(
            f"{name} must be a number of seconds (0 turns it off), got {raw!r}."
        ) from exc
    if value < 0:
        raise JourneyError(f"{name} cannot be negative (0 turns it off).")
    return value


def scheduler_interval(env: dict[str, str] | None = None) -> float:
    """JOURNEY_SCHEDULER_INTERVAL in seconds; 0 turns the scheduler off."""
    return _seconds("JOURNEY_SCHEDULER_INTERVAL", DEFAULT_INTERVAL, env)


def sync_interval(env: dict[str, str] | None = None) -> float:
    """JOURNEY_SYNC_INTERVAL in seconds (an hour by default); 0 turns scheduled syncs off."""
    return _seconds("JOURNEY_SYNC_INTERVAL", DEFAULT_SYNC_INTERVAL, env)


def replica_id() -> str:
    """hostname:pid, at most 64 characters (the lease column's size)."""
    return f"{socket.gethostname()}:{os.getpid()}"[-64:]


def token_lookup(
    settings: BotSettings, engine: Engine, loop: asyncio.AbstractEventLoop
) -> TokenLookup:
    """SLACK_BOT_TOKEN in single-workspace mode; the installation store in OAuth mode."""
    if not settings.client_id:
        if not settings.bot_token:
            raise JourneyError("the scheduler needs SLACK_BOT_TOKEN or an OAuth setup")
        return static_token(settings.bot_token)
    from bot.install.authorize import DatabaseAuthorize
    from bot.install.installations import DatabaseInstallationStore
    from journey.secrets import Cipher

    store = DatabaseInstallationStore(engine, Cipher.from_env())
    authorize = DatabaseAuthorize(
        store,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        base_url=settings.api_url,
    )
    return async_token_lookup(authorize_lookup(authorize), loop)


# The local console's channel (bot/console.py): no Slack channel, so the Slack
# scheduler leaves its digests and alerts to the console.
CONSOLE_CHANNEL = "console"


def slack_scope() -> Scope:
    """Everything but what the local console delivers: its channel (`#console`) is no Slack
    channel, so a Slack bot started on the console's database must leave it alone."""
    return Scope(exclude_channel=CONSOLE_CHANNEL)


def tick(
    engine: Engine,
    port: DeliveryPort,
    replica: str,
    now: datetime | None = None,
    scope: Scope | None = None,
) -> RunReport:
    report = run_due(engine, now or datetime.now(UTC), port, replica, scope=scope or slack_scope())
    if report.sent or report.skipped or report.paused or report.retrying or report.alerts:
        log.info(
            "scheduler: %d sent, %d skipped, %d retrying, %d paused, %d alert changes",
            len(report.sent),
            len(report.skipped),
            len(report.retrying),
            len(report.paused),
            len(report.alerts),
        )
    return report


async def run_scheduler(
    engine: Engine,
    port: DeliveryPort,
    interval: float,
    replica: str | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Tick forever (until cancelled); a failed tick is logged and the loop goes on."""
    replica = replica or replica_id()
    log.info("scheduler running every %ss as %s", interval, replica)
    while not INFLIGHT.closing:
        try:
            await in_pool(_TICKS, tick, engine, port, replica, clock())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("scheduler tick failed; trying again in %ss", interval)
        try:
            # Workspaces uninstalled longer than JOURNEY_PURGE_AFTER_DAYS ago are deleted.
            await in_pool(_TICKS, purge_due, engine, clock())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("deleting uninstalled workspaces failed; trying again in %ss", interval)
        await nap(interval)


def sync_tick(
    engine: Engine,
    interval: float,
    replica: str,
    now: datetime | None = None,
    connector: ConnectorFactory | None = None,
    tell: Callable[[PausedSource], object] | None = None,
    workspace_id: str | None = None,
) -> SyncRun:
    run = run_due_syncs(
        engine,
        now or datetime.now(UTC),
        timedelta(seconds=interval),
        replica,
        connector=connector,
        workspace_id=workspace_id,
    )
    if tell is not None and run.newly_paused:
        for notice in pause_notices(engine, run):
            tell(notice)
    if run.results or run.failed:
        log.info(
            "scheduled sync: %d synced, %d failed, %d taken by another replica",
            len(run.synced),
            len(run.results) - len(run.synced) + len(run.failed),
            len(run.lost),
        )
    return run


async def run_sync_loop(
    engine: Engine,
    interval: float,
    replica: str | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    connector: ConnectorFactory | None = None,
    tell: Callable[[PausedSource], object] | None = None,
) -> None:
    """Sync due sources every `interval` seconds (until cancelled); a failed tick is logged.
    A source a sync pauses is announced once through `tell` (bot.posting.delivery.PauseTeller).

    The sleep comes after the tick, so a source synced by this replica at one tick
    (its last_sync_at is the sync's finish) is due again at the next."""
    replica = replica or replica_id()
    log.info("scheduled syncs every %ss as %s", interval, replica)
    while not INFLIGHT.closing:
        try:
            await in_pool(
                _SYNC_TICKS, sync_tick, engine, interval, replica, clock(), connector, tell
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("scheduled sync tick failed; trying again in %ss", interval)
        await nap(interval)


async def nap(seconds: float, step: float = 0.25) -> None:
    """Sleep `seconds`, or less when a shutdown starts: the loops then end after their
    current tick has recorded what it did (rather than being cancelled mid-tick)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not INFLIGHT.closing and (left := end - loop.time()) > 0:
        await asyncio.sleep(min(left, step))


async def _run_all(*loops: Callable[[], Coroutine[Any, Any, None]]) -> None:
    # Coroutines made here, not by the caller: a task cancelled before it starts
    # then leaves no coroutine never awaited.
    await asyncio.gather(*(start() for start in loops))


def start_scheduler(settings: BotSettings, engine: Engine) -> asyncio.Task[None] | None:
    """Start the digests-and-alerts loop and the sync loop on the running event loop, in
    one task; each is off when its interval is 0 (None when both are)."""
    interval, syncs = scheduler_interval(), sync_interval()
    loops: list[Callable[[], Coroutine[Any, Any, None]]] = []
    loop = asyncio.get_running_loop()
    if settings.bot_token and not settings.client_id:
        # One fixed token has no install event: a token that works resumes its workspace.
        task = loop.create_task(
            resume_token_workspace(settings.bot_token, settings.api_url, engine)
        )
        _startup.add(task)
        task.add_done_callback(_startup.discard)
    if interval <= 0:
        log.info("scheduler off (JOURNEY_SCHEDULER_INTERVAL=0): no digests or alerts from here")
    else:
        port = SlackDelivery(token_lookup(settings, engine, loop), base_url=settings.api_url)
        loops.append(partial(run_scheduler, engine, port, interval))
    if syncs <= 0:
        log.info("scheduled syncs off (JOURNEY_SYNC_INTERVAL=0)")
    else:
        teller = PauseTeller(token_lookup(settings, engine, loop), base_url=settings.api_url)
        loops.append(partial(run_sync_loop, engine, syncs, tell=teller))
    if not loops:
        return None
    return loop.create_task(_run_all(*loops), name="journey-scheduler")
