"""The local console: type `/journey funnel` and see the bot's reply, in a terminal.

It runs the same parser and the same report service as the Slack listeners on
the embedded default (SQLite + the demo store in workspace `local`), which is
what the README's main command starts when no Slack tokens are configured.

The console is also a channel, `#console`: `/journey digest weekly monday 09:00`
and `/journey alerts channel` subscribe it exactly as they would a Slack channel
(same parser, same journey.schedule core, the computer's timezone instead of the
user's Slack one). While the console runs, a thread ticks the same `run_due` as
the Slack scheduler, scoped to the console's workspace, with a delivery port that
prints into the terminal instead of calling Slack: the database leases make each
digest and alert appear once, across restarts too.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import select

from bot.blocks.digest import A_ALERT_ACK, A_OPEN_REPORT
from bot.blocks.help import command_error_message, error_message
from bot.blocks.reports import (
    A_BY_CHANNEL,
    A_COMPARE,
    A_EXPORT,
    A_REVIEW_ASKED,
    A_REVIEW_SKIP,
    A_SHARE,
)
from bot.blocks.terminal import render_terminal
from bot.commands.language import AlertsRequest, Command, CommandError, DigestRequest, parse
from bot.commands.service import ReportService
from bot.posting.loop import CONSOLE_CHANNEL, scheduler_interval, sync_interval, sync_tick
from journey.db import session_scope
from journey.errors import JourneyError
from journey.models import Customer, Workspace
from journey.periods import zone
from journey.render.text import sync_summary
from journey.schedule.leases import Scope
from journey.schedule.runner import Delivery, DeliveryResult, RunReport, run_due
from journey.schedule.syncs import PausedSource, SyncRun
from journey.sync import ConnectorFactory

log = logging.getLogger("journey.bot.console")

# The console's channel and user: lowercase words, so they can never be Slack ids.
CONSOLE_USER = "console"
PROMPT = "/journey> "
ZONE_WORDS = "this computer's timezone"

BANNER = """journey console: the Slack bot's replies, in your terminal, for workspace {ws}.
Type a command as you would in Slack, e.g. /journey funnel 30d by channel, /journey churn,
/journey reviews, /journey help churn. Buttons show what to type: [Label: /journey ...].
This console is the channel #{channel} (timezone {tz}): /journey digest weekly monday 09:00
sends it a digest, /journey alerts channel its alerts; they appear here while it runs.
Clear the screen with clear; quit with exit or Ctrl-D. (With Slack tokens in .env the same command connects to Slack.)
{own}"""

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def console_timezone() -> str:
    """The computer's IANA timezone (tzlocal reads TZ, then the system's setting), or UTC
    when it cannot be told: a digest at "09:00" must mean nine o'clock on this clock."""
    try:
        from tzlocal import get_localzone_name

        name = get_localzone_name()
    except Exception as exc:  # no zone configured, or one tzlocal cannot read
        log.info("could not read the computer's timezone (%s); using UTC", exc)
        return "UTC"
    if not name:
        return "UTC"
    try:
        zone(name)
    except Exception:
        return "UTC"
    return name


OWN_DATA = (
    "Your own data: journey import orders.csv --workspace myshop (columns "
    "order_id,email,ordered_at,amount), then JOURNEY_WORKSPACE=myshop python3 run.py."
)


def ensure_demo(engine: Engine, workspace: str, say: Callable[[str], None]) -> None:
    """Build the demo store the first time, so the console has something to show. A
    workspace emptied on purpose (`journey demo remove`) stays empty: it is told how to
    bring data instead."""
    with session_scope(engine) as session:
        exists = session.get(Workspace, workspace) is not None
        count = session.exec(
            select(func.count()).select_from(Customer).where(Customer.workspace_id == workspace)
        ).one()
    if count:
        return
    if exists:
        say(f"Workspace {workspace!r} is empty. {OWN_DATA}")
        return
    from journey.demo import load_demo

    say(
        f"Workspace {workspace!r} is new: building the demo store (a year of a small vet clinic)..."
    )
    with session_scope(engine) as session:
        load_demo(session, workspace)


def _command_text(line: str) -> str:
    text = line.strip()
    for prefix in ("/journey", "journey"):
        if text.lower().startswith(prefix):
            return text[len(prefix) :]
    return text


def typed_form(button: dict[str, Any]) -> str | None:
    """What to type for a button: the console's stand-in for clicking it."""
    action = str(button.get("action_id") or "")
    try:
        value = json.loads(button.get("value") or "{}")
    except ValueError:
        value = {}
    if not isinstance(value, dict):
        return None
    words = [w for w in (value.get("k"), value.get("p")) if isinstance(w, str) and w]
    if isinstance(value.get("c"), str) and value["c"]:
        words += ["channel", value["c"]]
    base = "/journey " + " ".join(words)
    if action == A_BY_CHANNEL:
        return f"{base} by channel"
    if action == A_COMPARE:
        return f"{base} compare"
    if action == A_EXPORT:
        return f"{base} csv"
    who = value.get("e") or value.get("n")
    if action in (A_REVIEW_ASKED, A_REVIEW_SKIP) and isinstance(who, str) and who:
        verb = "asked" if action == A_REVIEW_ASKED else "skip"
        return f"/journey reviews {verb} {who}"
    if action == A_SHARE:
        return "in Slack: posts this reply in the channel"
    if action == A_ALERT_ACK:
        return "/journey alerts ack"
    if action.startswith(A_OPEN_REPORT) and words:
        return base
    return None


def _render(payload: dict[str, Any]) -> str:
    return render_terminal(payload, typed_form)


def save_csv(service: ReportService, workspace: str, cmd: Command, now: datetime) -> str:
    """`/journey churn csv`: the file the export button sends in Slack, saved here."""
    body, rows = service.at_risk_csv(workspace, cmd.period, cmd.name)
    what = "at-risk" if cmd.name == "churn" else "overdue"
    path = Path.cwd() / f"journey-{workspace}-{what}-{now:%Y-%m-%d}.csv"
    path.write_text(body, encoding="utf-8")
    people = "customers at risk" if cmd.name == "churn" else "overdue customers"
    return f"Saved {rows} {people} to {path}"


def answer(
    service: ReportService,
    workspace: str,
    line: str,
    *,
    timezone: str = "UTC",
    now: datetime | None = None,
    chart: bool = True,
) -> str:
    """One console line in, the rendered reply out. Digest and alert commands act on the
    console's channel, with the console's timezone and clock. A report's chart (the one
    Slack shows) is saved as a PNG and its path printed, unless `chart` is False; so is a
    digest preview's (the funnel chart the posted digest carries in its thread)."""
    text = _command_text(line)
    try:
        cmd = parse(text)
    except CommandError as exc:
        head = text.split()[0].lower() if text.split() else ""
        return _render(command_error_message(str(exc), exc.suggestion or head).payload())
    if cmd.export:
        try:
            return save_csv(service, workspace, cmd, now or _utc_now())
        except JourneyError as exc:
            return _render(error_message(str(exc)).payload())
    if isinstance(cmd.setting, DigestRequest | AlertsRequest):
        reply = service.schedule_reply(
            workspace,
            cmd,
            CONSOLE_CHANNEL,
            CONSOLE_USER,
            timezone,
            zone_words=ZONE_WORDS,
            now=now,
        )
        text = _render(reply.message.payload())
        if chart and reply.report is not None and charts_on():  # `/journey digest now`
            text += "\n" + save_chart(reply.report, workspace, now or _utc_now(), "digest")
        return text
    # The console is the operator's own terminal: every button, exports included.
    reply = service.command_reply(workspace, cmd, exports=True)
    text = _render(reply.message.payload())
    if chart and reply.report is not None and charts_on():
        text += "\n" + save_chart(reply.report, workspace, now or _utc_now())
    return text


def charts_on() -> bool:
    """Charts are saved unless JOURNEY_CONSOLE_CHARTS=0 (each costs a moment of matplotlib)."""
    return os.environ.get("JOURNEY_CONSOLE_CHARTS", "1").strip() not in ("0", "off", "no")


def chart_dir() -> Path:
    """Where the console saves charts: JOURNEY_CHART_DIR, else journey-charts in the
    system's temporary folder (charts pile up; the working directory stays clean)."""
    import tempfile

    configured = os.environ.get("JOURNEY_CHART_DIR", "").strip()
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "journey-charts"


def save_chart(report: object, workspace: str, now: datetime, of: str = "") -> str:
    """The chart Slack would show under the reply, saved next to where the console runs,
    and where it is: a terminal cannot show the image itself."""
    try:
        from journey.render.charts import chart_for

        drawn = chart_for(report)
    except ImportError:  # matplotlib missing: the text is the reply
        return "  (no chart: matplotlib is not installed)"
    if drawn is None:
        return ""
    png, what = drawn
    folder = chart_dir()
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{of} {what}".strip().replace(" ", "-")  # `of`: whose chart, e.g. digest
    path = folder / f"journey-{workspace}-{name}-{now:%Y%m%d-%H%M%S}.png"
    path.write_bytes(png)
    return f"  (chart: {what}, saved to {path})"


class ConsoleDelivery:
    """journey.schedule's DeliveryPort for the terminal: print the digest, alert or pause
    notice as Slack would show it (bot/posting/delivery.py's messages, text-rendered).

    Printing cannot fail the way a Slack post can (no archived channel, no rate
    limit), so every delivery is ok, unless writing to the terminal itself fails,
    which is retried by the core like a timeout.
    """

    def __init__(self, say: Callable[[str], None], timezone: str = "UTC") -> None:
        self.say = say
        self.timezone = timezone
        self.printed: list[str] = []  # idempotency keys, for tests and the curious

    def __call__(self, delivery: Delivery) -> DeliveryResult:
        from bot.blocks.digest import local_time
        from bot.posting.delivery import message_for

        text = _render(message_for(delivery).payload())
        if delivery.kind == "digest":
            text += self._chart(delivery)
        where = "to you" if delivery.kind == "pause_notice" else f"in #{delivery.channel_id}"
        tz = delivery.digest.timezone if delivery.digest is not None else self.timezone
        what = {"digest": "digest", "alert": "alert", "pause_notice": "notice"}[delivery.kind]
        banner = f"--- {what} {where}, due {local_time(delivery.scheduled_at, tz)} ---"
        try:
            self.say(f"\n{banner}\n{text}\n{'-' * len(banner)}")
        except Exception as exc:
            return DeliveryResult.retryable(f"could not print: {type(exc).__name__}", posted=None)
        self.printed.append(delivery.idempotency_key)
        return DeliveryResult.ok(f"console:{delivery.idempotency_key}"[:100])

    @staticmethod
    def _chart(delivery: Delivery) -> str:
        """The funnel chart Slack uploads into the digest's thread (bot/posting/delivery.py),
        saved, as a line for the digest; best effort, as in Slack: the digest is the text."""
        digest = delivery.digest
        if digest is None or digest.funnel is None or not charts_on():
            return ""
        try:
            line = save_chart(digest.funnel, delivery.workspace_id, delivery.scheduled_at, "digest")
        except Exception as exc:
            log.warning("digest chart not saved: %s", type(exc).__name__)
            return f"\n  (the chart could not be saved: {type(exc).__name__})"
        return f"\n{line}" if line else ""


def console_replica() -> str:
    return f"console:{socket.gethostname()}:{os.getpid()}"[-64:]


class ConsoleScheduler:
    """The Slack scheduler's tick for the console: `run_due` for one workspace, printing.

    `step()` runs one tick at the clock's time; `start(interval)` runs it in a
    daemon thread every `interval` seconds until `stop()`.
    """

    def __init__(
        self,
        engine: Engine,
        workspace: str,
        say: Callable[[str], None],
        clock: Clock = _utc_now,
        replica: str | None = None,
        timezone: str = "UTC",
    ) -> None:
        self.engine = engine
        self.workspace = workspace
        self.say = say
        self.clock = clock
        self.replica = replica or console_replica()
        self.port = ConsoleDelivery(say, timezone)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> RunReport:
        return run_due(
            self.engine,
            self.clock(),
            self.port,
            self.replica,
            scope=Scope(workspace_id=self.workspace),
        )

    def _safe_step(self) -> None:
        try:
            report = self.step()
        except Exception as exc:
            log.debug("console scheduler tick failed", exc_info=exc)
            self.say(
                f"(digests and alerts could not be checked just now: {type(exc).__name__}; "
                "trying again at the next tick)"
            )
            return
        for key, note in report.skipped:
            if key.startswith("digest:"):
                self.say(f"(a digest was not shown: {note})")

    def start(self, interval: float) -> None:
        def loop() -> None:
            while not self._stop.wait(interval):
                self._safe_step()

        self._thread = threading.Thread(target=loop, name="journey-console-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class ConsoleSyncs:
    """The bot's scheduled sync, for the console's own workspace: sources connected with
    `journey sources add` stay current while the console is open, as they would under a
    Slack bot. Same claim as the bot's loop (journey.schedule.syncs), so a bot on the same
    database never syncs a source twice with it. What a sync brought or why it failed is
    printed in one line; a source it pauses is told once.
    """

    def __init__(
        self,
        engine: Engine,
        workspace: str,
        say: Callable[[str], None],
        interval: float,
        clock: Clock = _utc_now,
        replica: str | None = None,
        connector: ConnectorFactory | None = None,
    ) -> None:
        self.engine = engine
        self.workspace = workspace
        self.say = say
        self.interval = interval
        self.clock = clock
        self.replica = replica or console_replica()
        self.connector = connector
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> SyncRun:
        run = sync_tick(
            self.engine,
            self.interval,
            self.replica,
            self.clock(),
            self.connector,
            tell=self._paused,
            workspace_id=self.workspace,
        )
        for result in run.results:
            if result.paused:
                continue  # told by _paused, once
            if not result.ok or result.inserted or result.updated or result.deleted:
                label = f"{result.source} ({result.kind})"
                self.say(f"(scheduled sync) {sync_summary(label, result)}")
        return run

    def _paused(self, notice: PausedSource) -> None:
        self.say(f"(scheduled sync) {notice.name} ({notice.kind}) is paused: {notice.reason}")

    def _safe_step(self) -> None:
        try:
            self.step()
        except Exception as exc:
            log.debug("console sync tick failed", exc_info=exc)
            self.say(f"(scheduled sync failed: {type(exc).__name__}; trying again later)")

    def start(self) -> None:
        def loop() -> None:
            self._safe_step()
            while not self._stop.wait(self.interval):
                self._safe_step()

        self._thread = threading.Thread(target=loop, name="journey-console-syncs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class TerminalOutput:
    """Prints replies, and prints scheduled messages above the prompt while the user is
    typing: the prompt and what was typed so far (readline's buffer) are drawn again
    below, so a digest arriving mid-command garbles nothing."""

    def __init__(self, write: Callable[[str], None] | None = None) -> None:
        self._lock = threading.Lock()
        self.waiting = False  # True while input() is waiting at the prompt
        self._write = write

    def say(self, text: str) -> None:
        with self._lock:
            if self._write is not None:
                self._write(text)
                return
            if not (self.waiting and sys.stdout.isatty()):
                print(text, flush=True)
                return
            try:
                import readline

                typed = readline.get_line_buffer()
            except Exception:
                typed = ""
            # Clear the prompt line, print above it, then draw prompt + typed text again.
            sys.stdout.write(f"\r\x1b[2K{text}\n{PROMPT}{typed}")
            sys.stdout.flush()


def run_console(
    engine: Engine,
    workspace: str,
    read: Callable[[str], str] = input,
    say: Callable[[str], None] | None = None,
    *,
    clock: Clock = _utc_now,
    timezone: str | None = None,
    interval: float | None = None,
) -> None:
    """The console loop. `interval` is the scheduler's (JOURNEY_SCHEDULER_INTERVAL by
    default, 0 turns it off); the first tick runs before the prompt, so what fell due
    while the console was closed (less than a day ago) is shown first, marked late.
    Connected sources are synced every JOURNEY_SYNC_INTERVAL in the background."""
    out = TerminalOutput(say)
    tz = timezone or console_timezone()
    ensure_demo(engine, workspace, out.say)
    service = ReportService(engine)
    out.say(BANNER.format(ws=workspace, channel=CONSOLE_CHANNEL, tz=tz, own=OWN_DATA))
    # The opening funnel without its chart: the first chart loads matplotlib (a second or
    # two), which the prompt should not wait for.
    out.say(answer(service, workspace, "/journey funnel", timezone=tz, now=clock(), chart=False))
    every = scheduler_interval() if interval is None else interval
    scheduler = ConsoleScheduler(engine, workspace, out.say, clock, timezone=tz)
    if every > 0:
        scheduler._safe_step()
        scheduler.start(every)
    syncs = ConsoleSyncs(engine, workspace, out.say, sync_interval(), clock)
    if syncs.interval > 0:
        syncs.start()
    try:
        while True:
            try:
                out.waiting = True
                line = read("\n" + PROMPT)
            except (EOFError, KeyboardInterrupt):
                out.say("")
                return
            finally:
                out.waiting = False
            if line.strip().lower() in ("exit", "quit", "q"):
                return
            if line.strip().lower() in ("clear", "cls"):
                out.say("\x1b[2J\x1b[H" if sys.stdout.isatty() else "")
                continue
            if not line.strip():
                continue
            out.say(answer(service, workspace, line, timezone=tz, now=clock()))
    finally:
        syncs.stop()
        scheduler.stop()
