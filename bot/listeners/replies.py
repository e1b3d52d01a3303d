"""Sending replies: the work after the acknowledgement, shared by commands and actions.

The slow part (queries, chart rendering) runs in worker threads; a short
"working on it" message appears only when a report takes longer than a moment,
and the final reply replaces it in place.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import ImageBlock
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.help import error_message, working_message
from bot.blocks.message import Message, context
from bot.service import Reply, unexpected_message
from bot.work.inflight import INFLIGHT, RESTARTED, answered
from bot.workers import in_worker
from journey.reports import FunnelReport, RetentionReport, ValueReport

log = logging.getLogger("journey.bot")
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
    **extra: Any,
) -> tuple[Reply, bool]:
    """Run `work` in a thread; show a working state if it is slow; send the reply.

    Reports run in the small report pool; `own_thread` is for long jobs (a sync
    that may take minutes) that must not hold the report pool up.
    Returns the reply and whether the working message was shown (then the reply
    replaced it).
    """
    if INFLIGHT.closing:
        # SIGTERM arrived: nothing new starts, the user hears why at once.
        await safe_respond(respond, error_message(RESTARTED.format(what=f"your {what}")).payload())
        answered()
        return Reply(error_message(RESTARTED.format(what=f"your {what}"))), False
    runner = asyncio.to_thread(work) if own_thread else in_worker(work)
    task = asyncio.ensure_future(runner)
    done, _ = await asyncio.wait({task}, timeout=working_after)
    working = not done
    if working:
        await safe_respond(respond, working_message(what).payload())
    try:
        reply: Reply = await task
    except Exception as exc:  # the service already catches; this is the last line of defence
        reply = Reply(unexpected_message(exc))
    payload = reply.message.payload()
    if working:
        payload["replace_original"] = True
    await safe_respond(respond, {**payload, **extra})
    answered()
    return reply, working


async def safe_respond(respond: AsyncRespond, payload: dict[str, Any]) -> bool:
    """respond() that logs instead of raising: an expired response URL must not crash a listener."""
    try:
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


async def attach_chart(
    client: AsyncWebClient, respond: AsyncRespond, reply: Reply, scopes: list[str] | None
) -> None:
    """Upload the report's chart privately and show it under the same reply.

    The file is uploaded without a channel (so an ephemeral report stays
    private) and referenced from an image block. Without files:write the reply
    stays text-only and says how to turn charts on.
    """
    if reply.report is None or not isinstance(
        reply.report, FunnelReport | RetentionReport | ValueReport
    ):
        return
    message = reply.message
    if not can_upload(scopes):
        await safe_respond(respond, _with(message, context(CHARTS_HINT), replace=True))
        return
    rendered = await in_worker(chart_png, reply)
    if rendered is None:
        return
    png, title = rendered
    try:
        upload = await client.files_upload_v2(
            content=png, filename=f"{title.replace(' ', '-')}.png", title=title
        )
    except SlackApiError as exc:
        error = exc.response.get("error")
        if error == "missing_scope":
            await safe_respond(respond, _with(message, context(CHARTS_HINT), replace=True))
        else:
            log.warning("chart upload failed: %s", error)
        return
    file_id = (upload.get("file") or {}).get("id") or (upload.get("files") or [{}])[0].get("id")
    if not file_id:
        return
    image = ImageBlock(
        alt_text=f"{title} chart", slack_file={"id": file_id}, title=title.capitalize()
    )
    await safe_respond(respond, _with(message, image, replace=True))


def _with(message: Message, block: Any, replace: bool) -> dict[str, Any]:
    extended = Message(message.text, [*message.blocks, block], message.footer)
    payload = extended.payload()
    if replace:
        payload["replace_original"] = True
    return payload
