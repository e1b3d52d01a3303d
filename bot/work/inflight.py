"""In-flight work: what was acknowledged and is not answered yet, drained on shutdown.

Bolt answers Slack as soon as a listener calls `ack()` and runs the rest of the
listener as an asyncio task nobody keeps: at SIGTERM the server stopped, the
process exited, and acknowledged commands were never answered (users were left
on "Working on your funnel..." for good). Here every listener is wrapped so its
task is registered while it runs (`track_listeners`), and background syncs are
registered by hand (`adopt`).

`drain(grace)` is the shutdown: from then on `closing` is set (the report pool
refuses new work, the scheduler loops stop after their current tick), it waits
up to `grace` seconds for everything registered, cancels what is left, and each
cancelled listener that had not answered yet tells its user, in place of the
working message, that journey restarted and to run the command again. One log
line says how it went: "shutting down: N in flight, M finished, K abandoned".
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("journey.bot")

FAREWELL_SECONDS = 3.0  # how long cancelled work gets to send its "run it again"
RESTARTED = (
    "journey is restarting and could not finish {what}. Nothing was changed by it: "
    "please run it again in a minute."
)

Farewell = Callable[[str], Awaitable[Any]]


@dataclass
class Entry:
    """One piece of acknowledged work: what it is (in words) and how to tell its user."""

    what: str
    farewell: Farewell | None = None
    answered: bool = False
    # Set for tasks registered with `adopt`: the drain itself sends their farewell.
    farewell_text: str | None = None

    @property
    def goodbye(self) -> str:
        return self.farewell_text or RESTARTED.format(what=self.what)


@dataclass(frozen=True)
class DrainReport:
    in_flight: int
    finished: int
    abandoned: int


_current: contextvars.ContextVar[Entry | None] = contextvars.ContextVar(
    "journey_inflight", default=None
)


def answered() -> None:
    """The running listener has sent its final answer: if it is cancelled from now on
    (a chart still uploading), its user already has what they asked for."""
    entry = _current.get()
    if entry is not None:
        entry.answered = True


@dataclass
class InFlight:
    """The registry of this process's acknowledged work."""

    _tasks: dict[asyncio.Task[Any], Entry] = field(default_factory=dict)
    # Set while draining; a threading.Event because worker threads read it too.
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def closing(self) -> bool:
        return self.stopping.is_set()

    def __len__(self) -> int:
        return len(self._tasks)

    def reopen(self) -> None:
        """A server (re)starting in this process accepts work again."""
        self.stopping.clear()

    def adopt(
        self, task: asyncio.Task[Any], what: str, farewell: Farewell | None, text: str
    ) -> None:
        """Register a task started elsewhere (a background sync) until it ends; if the
        drain has to cancel it, `farewell(text)` tells its user."""
        self._tasks[task] = Entry(what, farewell, farewell_text=text)
        task.add_done_callback(lambda t: self._tasks.pop(t, None))

    def track(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """`fn` as a listener whose run is registered; the signature is kept (Bolt picks
        the arguments to pass by the names it finds through `inspect.unwrap`)."""

        @functools.wraps(fn)
        async def tracked(*args: Any, **kwargs: Any) -> Any:
            task = asyncio.current_task()
            entry = Entry(_describe(kwargs), _farewell(kwargs.get("respond")))
            token = _current.set(entry)
            if task is not None:
                self._tasks[task] = entry
            try:
                return await fn(*args, **kwargs)
            except asyncio.CancelledError:
                if self.closing and not entry.answered and entry.farewell is not None:
                    await _say_farewell(entry)
                raise
            finally:
                _current.reset(token)
                if task is not None:
                    self._tasks.pop(task, None)

        return tracked

    async def drain(
        self, grace: float, background: list[asyncio.Task[Any]] | None = None
    ) -> DrainReport:
        """Stop taking work, wait up to `grace` seconds, cancel and tell the rest."""
        self.stopping.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        seen: set[asyncio.Task[Any]] = set(self._tasks)
        log.info(
            "shutting down: %d in flight, waiting up to %.0fs for them to finish (process %d)",
            len(seen),
            grace,
            os.getpid(),
        )
        others = [t for t in background or [] if not t.done()]
        while True:
            seen |= set(self._tasks)  # work acknowledged while draining counts too
            waiting = [t for t in (*self._tasks, *others) if not t.done()]
            left = deadline - loop.time()
            if not waiting or left <= 0:
                break
            await asyncio.wait(waiting, timeout=min(left, 0.25))
        abandoned = [t for t in self._tasks if not t.done()]
        goodbyes = []
        for task in abandoned:
            entry = self._tasks[task]
            task.cancel()
            if entry.farewell_text is not None and entry.farewell is not None:
                goodbyes.append(asyncio.ensure_future(_say_farewell(entry)))
        for task in others:
            if not task.done():
                log.warning("background task %s did not stop in time: cancelled", task.get_name())
                task.cancel()
        rest = [*abandoned, *others, *goodbyes]
        if rest:
            await asyncio.wait(rest, timeout=FAREWELL_SECONDS)
        report = DrainReport(len(seen), len(seen) - len(abandoned), len(abandoned))
        # The process id tells the workers of `journey serve --workers N` apart: each
        # drains on its own and writes its own line.
        log.info(
            "shutting down: %d in flight, %d finished, %d abandoned (process %d)",
            report.in_flight,
            report.finished,
            report.abandoned,
            os.getpid(),
        )
        # The process exits next; one that goes on (a test, a Socket Mode reconnect loop
        # stopped by hand) starts its next server with nothing left registered.
        self.stopping.clear()
        return report


def _describe(kwargs: dict[str, Any]) -> str:
    """What the user asked for, in words that echo nothing they typed beyond a known word."""
    from bot.commands.language import WORDS

    command = kwargs.get("command")
    if isinstance(command, dict):
        word = ((command.get("text") or "").split() or ["help"])[0].lower()
        return f"your `/journey {word}`" if word in WORDS else "your `/journey` command"
    return "what you asked for"


def _farewell(respond: Any) -> Farewell | None:
    if respond is None:
        return None

    async def say(text: str) -> None:
        from bot.blocks.help import error_message

        await respond(**error_message(text).payload(), replace_original=True)

    return say


async def _say_farewell(entry: Entry) -> None:
    assert entry.farewell is not None
    started = time.monotonic()
    try:
        await asyncio.wait_for(entry.farewell(entry.goodbye), timeout=FAREWELL_SECONDS)
    except Exception as exc:  # Slack unreachable: the log still counts it as abandoned
        log.warning(
            "could not tell a user to run %s again (%s after %.1fs)",
            entry.what,
            type(exc).__name__,
            time.monotonic() - started,
        )


INFLIGHT = InFlight()
DEFAULT_GRACE = 25.0


def shutdown_grace(env: dict[str, str] | None = None) -> float:
    """JOURNEY_SHUTDOWN_GRACE: seconds a SIGTERM waits for acknowledged work (25 by
    default: under the 30 s most process managers, Kubernetes included, give before
    SIGKILL)."""
    import os

    from journey.errors import JourneyError

    raw = ((env if env is not None else os.environ).get("JOURNEY_SHUTDOWN_GRACE") or "").strip()
    if not raw:
        return DEFAULT_GRACE
    try:
        value = float(raw)
    except ValueError:
        raise JourneyError(
            f"JOURNEY_SHUTDOWN_GRACE must be a number of seconds, got {raw!r}."
        ) from None
    if value < 0:
        raise JourneyError("JOURNEY_SHUTDOWN_GRACE cannot be negative (0: do not wait).")
    return value


def track_listeners(app: Any, inflight: InFlight = INFLIGHT) -> None:
    """Wrap every listener registered on `app` so its run is tracked.

    Bolt keeps them in `AsyncApp._async_listeners`, each an AsyncCustomListener whose
    `ack_function` is called with the arguments named in `arg_names` (read from the
    function when it was registered): slack_bolt/listener/async_listener.py, 1.30.
    Wrapping after registration leaves the listener modules and Bolt's argument
    matching untouched."""
    for listener in getattr(app, "_async_listeners", []):
        fn = getattr(listener, "ack_function", None)
        if fn is not None and not getattr(fn, "_journey_tracked", False):
            wrapped = inflight.track(fn)
            wrapped._journey_tracked = True  # type: ignore[attr-defined]
            listener.ack_function = wrapped
