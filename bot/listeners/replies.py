"""Sending replies: the work after the acknowledgement, shared by commands and actions.

The slow part (queries, chart rendering) runs in worker threads; a short
"working on it" message appears only when a report takes longer than a moment,
and the final reply replaces it in place.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import threading
from collections import OrderedDict
from typing import Any

from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.help import busy_message as busy_note
from bot.blocks.help import error_message, working_message
from bot.blocks.message import Message, context
from bot.commands.service import Reply, unexpected_message
from bot.posting.respond import post_response
from bot.slack_errors import explain
from bot.work.inflight import INFLIGHT, RESTARTED, answered
from bot.work.pool import Busy, log_shed, pool
from journey.reports import FunnelReport, RetentionReport, ValueReport

log = logging.getLogger("journey.bot")
BUSY = (
    "journey is busy answering many requests right now, so I did not start this one: "
    "please try again in a minute."
)
CHART_SKIPPED = "Chart left out: journey is busy right now. Ask again later to see it."
CHARTS_HINT = (
    "Charts are off: add the `files:write` scope to the app (OAuth & Permissions) and reinstall "
    "it to get a chart with each report."
)


async def reply_when_ready(
    respond: AsyncRespond,
    work: Any,
    what: str,
    working_after: float,
    *,
    own_thread: bool = False,
    workspace: str | None = None,
    **extra: Any,
) -> tuple[Reply, bool]:
    """Run `work` in a thread; show a working state if it is slow; send the reply.

    Reports run in the bounded report pool (bot/work/pool.py): when it is full, or
    the report waited longer than a user should, the user reads "busy, try again
    in a minute" instead of an ever later answer; `workspace` is whose share of
    the queue it takes. `own_thread` is for long jobs (a sync that may take
    minutes) that must not hold the report pool up.
    Returns the reply and whether the working message was shown (then the reply
    replaced it).
    """
    if INFLIGHT.closing:
        # SIGTERM arrived: nothing new starts, the user hears why at once.
        await safe_respond(respond, error_message(RESTARTED.format(what=f"your {what}")).payload())
        answered()
        return Reply(error_message(RESTARTED.format(what=f"your {what}"))), False
    runner = asyncio.to_thread(work) if own_thread else pool().run(work, workspace=workspace)
    task = asyncio.ensure_future(runner)
    done, _ = await asyncio.wait({task}, timeout=working_after)
    working = not done
    if working:
        await safe_respond(respond, working_message(what).payload(), final=False)
    refused = False
    try:
        reply: Reply = await task
    except Busy as exc:
        log_shed(exc.why)
        reply, refused = Reply(error_message(BUSY)), True
    except Exception as exc:  # the service already catches; this is the last line of defence
        reply = Reply(unexpected_message(exc))
    payload = reply.message.payload()
    if working:
        payload["replace_original"] = True
    elif refused:
        # A button's report (By channel, Compare) would replace the report clicked on:
        # the refusal goes beside it, privately, and the report and its buttons stay.
        extra = {**extra, "response_type": "ephemeral", "replace_original": False}
    await safe_respond(respond, {**payload, **extra})
    answered()
    return reply, working


def busy_message(what: str, why: str) -> Message:
    """The polite refusal of work the pool turned away (`Busy.why`), saying `what` was
    not done; counted in the shed log line like refused reports."""
    log_shed(why)
    return busy_note(what)


async def refuse_busy(respond: AsyncRespond, what: str, exc: Busy) -> None:
    """Tell the person who clicked, privately and without touching the message they
    clicked on (its buttons stay, to click again), that `what` was not done."""
    message = busy_message(what, exc.why)
    await safe_respond(
        respond,
        {**message.payload(), "response_type": "ephemeral", "replace_original": False},
    )


async def safe_respond(
    respond: AsyncRespond, payload: dict[str, Any], *, final: bool = True
) -> bool:
    """Post to the response URL, retrying what is transient (bot/posting/respond.py), and
    log instead of raising: an expired response URL must not crash a listener. `final=False`
    for a note the answer will replace ("Working on…"): tried once, to keep the URL's uses
    for the answer."""
    if isinstance(respond, AsyncRespond):
        return await post_response(respond, payload, final=final)
    try:  # a respond without a URL of its own (tests' stand-ins): one try
        await respond(**payload)
        return True
    except Exception as exc:
        log.warning("could not send a response: %s", type(exc).__name__)
        return False


def can_upload(scopes: list[str] | None) -> bool:
    return scopes is None or "files:write" in scopes


def chart_png(reply: Reply) -> tuple[bytes, str] | None:
    """The chart for a report, rendered in a worker thread (matplotlib is slow to start)."""
    try:
        from journey.render import charts
    except ImportError:
        return None
    if isinstance(reply.report, FunnelReport) and reply.report.entered:
        return charts.funnel_chart(reply.report), "funnel"
    if isinstance(reply.report, RetentionReport) and reply.report.cohorts:
        return charts.cohort_heatmap(reply.report), "cohort retention"
    if isinstance(reply.report, ValueReport) and reply.report.method == "models":
        return charts.value_chart(reply.report), "value per channel"
    return None


async def chart_when_free(reply: Reply, workspace: str | None) -> tuple[bytes, str] | None:
    """The report's chart from the cache, else rendered on the report pool; raises Busy
    when reports are queueing (a chart costs about 250 ms of matplotlib: under load the
    text answers first, and the next report waits less)."""
    key = chart_key(reply, workspace)
    if key is not None and (cached := _charts.get(key)) is not None:
        return cached
    if pool().busy():
        raise Busy("charts left out while reports queue")
    rendered = await pool().run(chart_png, reply, workspace=workspace)
    if key is not None and rendered is not None:
        _charts.put(key, rendered)
    return rendered


_INSTANT = re.compile(r"datetime\.datetime\((\d+), (\d+), (\d+)[^)]*\)")


def chart_key(reply: Reply, workspace: str | None) -> str | None:
    """The chart cache's key: the workspace and everything the chart is drawn from. The
    report holds its period and every figure, so new data makes a new key; its instants
    count by the day (a rolling "last 30d" asked a second later, or the report's
    generated_at, draw the same chart)."""
    if reply.report is None:
        return None
    figures = _INSTANT.sub(r"day(\1,\2,\3)", repr(reply.report))
    digest = hashlib.sha256(figures.encode()).hexdigest()
    return f"{workspace or ''}:{type(reply.report).__name__}:{digest}"


class ChartCache:
    """The last few charts rendered, by chart_key (LRU, thread-safe)."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bytes, str] | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: str, item: tuple[bytes, str]) -> None:
        with self._lock:
            self._items[key] = item
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


_charts = ChartCache()


async def upload_chart(
    client: AsyncWebClient,
    png: bytes,
    title: str,
    channel: str,
    *,
    thread_ts: str | None = None,
    comment: str | None = None,
) -> str | None:
    """Share a chart INTO `channel` (or its thread); None when done, else the one line
    saying it could not be attached.

    Shared into the conversation, never uploaded on its own: a file uploaded without a
    channel is visible to its uploader only, and an image block pointing at it is refused
    (`invalid_blocks`, "invalid slack file"). The file message is the chart, so no block
    ever references a file that may not be usable yet. Never raises: a refused upload
    (missing files:write, not_in_channel), a failed transfer (SlackRequestError) or a
    network error leaves the text reply as it is.
    """
    try:
        await client.files_upload_v2(
            channel=channel,
            thread_ts=thread_ts,
            content=png,
            filename=f"{title.replace(' ', '-')}.png",
            title=title.capitalize(),
            alt_txt=f"{title.capitalize()} chart",
            initial_comment=comment,
        )
    except Exception as exc:
        log.warning("chart upload to %s failed: %s", channel, chart_failure(exc))
        return chart_not_attached(exc)
    return None


async def attach_chart(
    client: AsyncWebClient,
    respond: AsyncRespond,
    reply: Reply,
    scopes: list[str] | None,
    *,
    user: str,
    channel: str,
    workspace: str | None = None,
) -> None:
    """Send the chart of a private (ephemeral) report where its reader can see it.

    Nobody else can see an ephemeral reply, and Slack cannot attach a file to one, so
    the chart goes to the requester's DM with the bot (the same conversation when the
    command was typed there), and the reply gains one line saying where it is, or that
    it could not be attached. Without files:write the reply says how to turn charts on.
    """
    if reply.report is None or not isinstance(
        reply.report, FunnelReport | RetentionReport | ValueReport
    ):
        return
    message = reply.message
    if not can_upload(scopes):
        await safe_respond(respond, _with(message, context(CHARTS_HINT), replace=True))
        return
    try:
        rendered = await chart_when_free(reply, workspace)
    except Busy:
        await safe_respond(respond, _with(message, context(CHART_SKIPPED), replace=True))
        return
    if rendered is None:
        return
    png, title = rendered
    try:
        dm = str((await client.conversations_open(users=user))["channel"]["id"])
    except Exception as exc:
        note = chart_not_attached(exc)
    else:
        note = await upload_chart(
            client, png, title, dm, comment=f"The {title} chart of the report you asked for."
        )
        if note is None:
            note = (
                f":bar_chart: The {title} chart follows in this conversation."
                if dm == channel
                else f":bar_chart: The {title} chart is in your direct messages with journey "
                "(Apps > journey > Messages)."
            )
    await safe_respond(respond, _with(message, context(note), replace=True))


def chart_failure(exc: BaseException) -> str:
    """The error code Slack answered, or the kind of network failure, for logs."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or "unknown_error")
    return type(exc).__name__


def chart_not_attached(exc: BaseException) -> str:
    """The one line a reply gains when its chart could not be attached."""
    if isinstance(exc, SlackApiError):
        if exc.response.get("error") == "missing_scope":
            return CHARTS_HINT
        return f"The chart could not be attached: {explain(exc)}"
    return "The chart could not be attached: Slack could not be reached. Please try again."


def _with(message: Message, block: Any, replace: bool) -> dict[str, Any]:
    extended = Message(message.text, [*message.blocks, block], message.footer)
    payload = extended.payload()
    if replace:
        payload["replace_original"] = True
    return payload
