"""A sync in the background, its progress in Slack as one message edited in place.

Used by `/journey sync` and by `/journey connect` (a new source's first sync).

Where the message goes: a direct message to the person who asked, posted with
chat.postMessage and then edited with chat.update. A response URL would keep
it in the channel but takes only 5 posts in 30 minutes, too few for progress,
and the bot may not be a member of the channel the command came from; a DM
always works (the connect flow already uses one) and keeps the business's
figures private. If the DM cannot be opened, the result still comes through
the response URL at the end.

Fair sharing. Every sync asked in Slack passes `admit` first: a source already
syncing (asked by someone else, or the scheduler's) is not synced beside it, and
a workspace runs at most JOURNEY_SYNCS_PER_WORKSPACE (1) such syncs at once, out
of JOURNEY_SYNC_WORKERS (4) threads for all workspaces; the person is told why
in words instead of waiting behind another tenant's store.

Why it never blocks anything: the sync runs in its own small thread pool (not
the event loop, not the report pool of bot/work/pool.py), and every page it reads
is committed as it lands, so a report asked meanwhile answers from what has
arrived. The sync thread only records progress in `SyncProgress`; a coroutine
on the event loop edits the message when something changed, at most once per
`interval` seconds (chat.update is Tier 3, about 50 calls a minute), then
replaces it with the result of each source. Errors are in plain words; an
unexpected one shows a reference, never a stack trace.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.help import in_dm, sync_message
from bot.blocks.message import Message
from bot.blocks.sync import SourceProgress, progress_message
from bot.commands.service import ReportService, SyncTarget, unexpected_message
from bot.work.inflight import INFLIGHT
from bot.work.pool import Gate, env_count
from journey.sync import SyncResult, is_running

log = logging.getLogger("journey.bot")
INTERVAL = 2.5  # seconds between edits of the progress message
SYNC_WORKERS = env_count("JOURNEY_SYNC_WORKERS", 4)
_pool = ThreadPoolExecutor(max_workers=SYNC_WORKERS, thread_name_prefix="journey-sync")
_running: set[asyncio.Task[Any]] = set()  # keeps background syncs referenced until done
SYNC_GATE = Gate(per_workspace=env_count("JOURNEY_SYNCS_PER_WORKSPACE", 1), total=2 * SYNC_WORKERS)
_admitted_sources: set[int] = set()  # sources of admitted syncs, waiting or running
_admitted_lock = threading.Lock()


@dataclass
class Admission:
    """A sync let in by `admit`: the sources it may sync, and words for the person about
    the ones left out. `release` (called when the sync ends) lets the next one in."""

    team_id: str
    targets: list[SyncTarget]
    note: str | None = None
    _released: bool = False

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        SYNC_GATE.leave(self.team_id)
        with _admitted_lock:
            _admitted_sources.difference_update(t.id for t in self.targets)


def admit(service: ReportService, team_id: str, targets: Sequence[SyncTarget]) -> Admission | str:
    """Let a sync of `targets` in, or say why not (the polite reply, in words)."""
    with _admitted_lock:
        busy = [t for t in targets if t.id in _admitted_sources or is_running(service.engine, t.id)]
        free = [t for t in targets if t not in busy]
        if not free:
            names = ", ".join(t.name for t in busy)
            return (
                f"A sync of {names} is already running; its result goes to whoever started "
                "it. Reports answer from what has arrived meanwhile; try again when it ends."
            )
        if not SYNC_GATE.enter(team_id):
            if SYNC_GATE.running(team_id):
                return (
                    "This workspace already has as many syncs running as it may at once "
                    f"({SYNC_GATE.per_workspace}); try again when the one running ends."
                )
            return (
                "Many workspaces are syncing right now, so this sync did not start. "
                "Please try again in a few minutes."
            )
        _admitted_sources.update(t.id for t in free)
    note = None
    if busy:
        names = ", ".join(t.name for t in busy)
        note = f"{names} {'is' if len(busy) == 1 else 'are'} already syncing, so left out here."
    return Admission(team_id, free, note)


@dataclass
class SyncProgress:
    """What the sync thread has done so far; read by the coroutine that edits the message."""

    sources: list[SourceProgress]
    version: int = 0
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _index: dict[int, int] = field(default_factory=dict)

    @classmethod
    def of(cls, targets: Sequence[SyncTarget]) -> SyncProgress:
        progress = cls([SourceProgress(t.name, t.kind) for t in targets])
        progress._index = {t.id: i for i, t in enumerate(targets)}
        return progress

    def page(self, source_id: int, resource: str, pages: int, records: int) -> None:
        with self._lock:
            i = self._index[source_id]
            self.sources[i] = replace(
                self.sources[i], state="running", resource=resource, pages=pages, records=records
            )
            self.version += 1

    def state(self, source_id: int, state: str) -> None:
        with self._lock:
            i = self._index[source_id]
            self.sources[i] = replace(self.sources[i], state=state)
            self.version += 1

    def snapshot(self) -> tuple[int, list[SourceProgress]]:
        with self._lock:
            return self.version, list(self.sources)

    def message(self) -> Message:
        _, sources = self.snapshot()
        return progress_message(sources, time.monotonic() - self.started)


def run_all(
    service: ReportService, targets: Sequence[SyncTarget], progress: SyncProgress
) -> list[SyncResult]:
    """The sync thread: each source in turn, reporting every committed page."""
    results = []
    for target in targets:
        progress.state(target.id, "running")
        results.append(service.sync_one(target.id, target.name, target.kind, progress.page))
        progress.state(target.id, "done")
    return results


async def open_dm(client: AsyncWebClient, user: str) -> str | None:
    try:
        dm = await client.conversations_open(users=user)
        return str(dm["channel"]["id"])
    except SlackApiError as exc:
        log.warning("sync: could not open a DM: %s", exc.response.get("error"))
        return None


async def sync_with_progress(
    client: AsyncWebClient,
    service: ReportService,
    targets: Sequence[SyncTarget],
    channel: str,
    *,
    interval: float = INTERVAL,
    fallback: Callable[[Message], Awaitable[Any]] | None = None,
) -> list[SyncResult]:
    """Post the progress message to `channel`, sync `targets` in the sync pool, edit the
    message as pages land, and end it with the result. `fallback` gets the final
    message when the progress message could not be posted or edited."""
    progress = SyncProgress.of(targets)
    ts = await _post(client, channel, progress.message()) if channel else None
    loop = asyncio.get_running_loop()
    work = loop.run_in_executor(_pool, run_all, service, targets, progress)
    shown = progress.version
    while True:
        done, _ = await asyncio.wait({work}, timeout=interval)
        if done:
            break
        version, _ = progress.snapshot()
        if ts is not None and version != shown:
            shown = version
            await _update(client, channel, ts, progress.message())
    try:
        results = work.result()
        final = sync_message(results)
    except Exception as exc:  # run_all does not raise; this is the last line of defence
        results = []
        final = unexpected_message(exc)
    if (ts is None or not await _update(client, channel, ts, final)) and fallback is not None:
        await fallback(final)
    return results


def start_sync(
    client: AsyncWebClient,
    service: ReportService,
    targets: Sequence[SyncTarget],
    channel: str,
    *,
    interval: float = INTERVAL,
    fallback: Callable[[Message], Awaitable[Any]] | None = None,
    admission: Admission | None = None,
) -> asyncio.Task[list[SyncResult]]:
    """`sync_with_progress` as a task of its own: the caller's listener returns at once.
    The `admission` (from `admit`) is released when the sync ends, however it ends."""
    task = asyncio.ensure_future(
        sync_with_progress(client, service, targets, channel, interval=interval, fallback=fallback)
    )
    _running.add(task)
    task.add_done_callback(_running.discard)
    INFLIGHT.adopt(task, "your sync", _farewell(client, channel, fallback), SYNC_CUT_SHORT)
    if admission is not None:
        task.add_done_callback(lambda _t: admission.release())
    return task


SYNC_CUT_SHORT = (
    "journey restarted before your sync finished. What arrived is kept; run `/journey sync` "
    "again to fetch the rest (it resumes where this one stopped)."
)


def _farewell(
    client: AsyncWebClient, channel: str, fallback: Callable[[Message], Awaitable[Any]] | None
) -> Callable[[str], Awaitable[Any]] | None:
    """How a sync cut short by a shutdown tells its user: in the DM, else the fallback."""
    from bot.blocks.help import error_message

    async def say(text: str) -> None:
        if channel and await _post(client, channel, error_message(text)) is not None:
            return
        if fallback is not None:
            await fallback(error_message(text))

    return say if channel or fallback is not None else None


def _for(channel: str, message: Message) -> Message:
    """In a DM (D...) the progress message says people can use `/journey` right there."""
    return in_dm(message) if channel.startswith("D") else message


async def _post(client: AsyncWebClient, channel: str, message: Message) -> str | None:
    try:
        answer = await client.chat_postMessage(channel=channel, **_for(channel, message).payload())
        return str(answer["ts"])
    except SlackApiError as exc:
        log.warning("sync: could not post the progress message: %s", exc.response.get("error"))
        return None


async def _update(client: AsyncWebClient, channel: str, ts: str, message: Message) -> bool:
    try:
        await client.chat_update(channel=channel, ts=ts, **_for(channel, message).payload())
        return True
    except SlackApiError as exc:
        log.warning("sync: could not update the progress message: %s", exc.response.get("error"))
        return False
