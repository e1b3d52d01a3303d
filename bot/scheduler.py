"""The scheduler loop: every JOURNEY_SCHEDULER_INTERVAL seconds (60 by default), run
journey.schedule.run_due in a worker thread with this process's replica id.

Every replica (each Socket Mode process, each HTTP worker) runs the loop; the
core's leases in the database make each digest and each alert go out once.
A plain asyncio task rather than APScheduler: there is one job, at one fixed
interval, and the exactly-once part lives in the database, so a scheduler
library's job stores and misfire policies would add a dependency and no
guarantee. The tick runs on its own thread (not the report pool), so a slow
digest never delays a report, and a tick never overlaps the next one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine

from bot.config import BotSettings
from bot.delivery import (
    SlackDelivery,
    TokenLookup,
    async_token_lookup,
    authorize_lookup,
    static_token,
)
from journey.errors import JourneyError
from journey.schedule.runner import DeliveryPort, RunReport, run_due

log = logging.getLogger("journey.bot.scheduler")

DEFAULT_INTERVAL = 60.0


def scheduler_interval(env: dict[str, str] | None = None) -> float:
    """JOURNEY_SCHEDULER_INTERVAL in seconds; 0 turns the scheduler off."""
    raw = ((env if env is not None else os.environ).get("JOURNEY_SCHEDULER_INTERVAL") or "").strip()
    if not raw:
        return DEFAULT_INTERVAL
    try:
        value = float(raw)
    except ValueError as exc:
        raise JourneyError(
            f"JOURNEY_SCHEDULER_INTERVAL must be a number of seconds (0 turns it off), got {raw!r}."
        ) from exc
    if value < 0:
        raise JourneyError("JOURNEY_SCHEDULER_INTERVAL cannot be negative (0 turns it off).")
    return value


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
    from bot.authorize import DatabaseAuthorize
    from bot.installations import DatabaseInstallationStore
    from journey.secrets import Cipher

    store = DatabaseInstallationStore(engine, Cipher.from_env())
    authorize = DatabaseAuthorize(
        store,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        base_url=settings.api_url,
    )
    return async_token_lookup(authorize_lookup(authorize), loop)


def tick(
    engine: Engine, port: DeliveryPort, replica: str, now: datetime | None = None
) -> RunReport:
    report = run_due(engine, now or datetime.now(UTC), port, replica)
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
    while True:
        try:
            await asyncio.to_thread(tick, engine, port, replica, clock())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("scheduler tick failed; trying again in %ss", interval)
        await asyncio.sleep(interval)


def start_scheduler(settings: BotSettings, engine: Engine) -> asyncio.Task[None] | None:
    """Start the loop on the running event loop, unless JOURNEY_SCHEDULER_INTERVAL is 0."""
    interval = scheduler_interval()
    if interval <= 0:
        log.info("scheduler off (JOURNEY_SCHEDULER_INTERVAL=0): no digests or alerts from here")
        return None
    loop = asyncio.get_running_loop()
    port = SlackDelivery(token_lookup(settings, engine, loop), base_url=settings.api_url)
    return loop.create_task(run_scheduler(engine, port, interval), name="journey-scheduler")
