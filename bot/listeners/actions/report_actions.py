"""Buttons on reports: by channel, compare with previous period, share, CSV of customers at risk.

Every button first asks the guard (bot/guard/access.py) who clicked: guests and people
of other organizations get one sentence instead of customer data; *Share* and the CSV
export are for admins (or JOURNEY_EXPORT_USERGROUP), Share never into a conversation
shared with another workspace, and every export and share is recorded (who, when, how
many rows). Reports a button runs, the shared report and the CSV take the workspace's
share of the report pool (bot/work/pool.py) and count against the clicker's rate limit
(bot/guard/fair.py): when the pool is full the clicker is told privately that nothing
was shared or sent, and the buttons stay. A shared report's chart is left out (with a
line to the sharer) while reports queue, as a private report's is.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.help import error_message
from bot.blocks.message import Message
from bot.blocks.mrkdwn import md, mention, mrkdwn
from bot.blocks.reports import A_BY_CHANNEL, A_COMPARE, A_EXPORT, A_SHARE
from bot.deps import Deps
from bot.guard.access import Viewer
from bot.listeners.actions.values import action_value, command_from, user_of
from bot.listeners.replies import (
    CHART_SKIPPED,
    CHARTS_HINT,
    can_upload,
    chart_when_free,
    refuse_busy,
    reply_when_ready,
    safe_respond,
    upload_chart,
)
from bot.slack_errors import explain
from bot.work.pool import Busy, in_worker, queued

log = logging.getLogger("journey.bot")
STALE = "This button is from an older message; run the command again."


def channel_of(body: dict[str, Any]) -> str:
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
        "channel_id"
    )
    return str(channel or "")


def customers_in(report: object) -> int:
    """How many customers a report lists (the at-risk or review candidates), 0 for one
    that only counts (funnel, retention's cohorts)."""
    listed = getattr(report, "at_risk", None) or getattr(report, "candidates", None) or []
    return len(listed)


async def admitted(
    deps: Deps,
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> Viewer | None:
    """The clicker, if they may see customer data now; else None, told why privately."""

    async def refuse(text: str) -> None:
        await safe_respond(respond, {**error_message(text).payload(), "replace_original": False})

    return await deps.guard.admit(client, context, user_of(body), refuse)


def register(app: AsyncApp, deps: Deps) -> None:
    async def change_view(
        ack: AsyncAck,
        body: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await ack()
        value = action_value(body)
        cmd = command_from(value)
        if cmd is None:
            await safe_respond(respond, error_message(STALE).payload())
            return
        viewer = await admitted(deps, body, respond, client, context)
        if viewer is None:
            return
        view = "by_channel" if body["actions"][0]["action_id"] == A_BY_CHANNEL else "compare"
        exports = await deps.guard.may_export(client, viewer)
        await reply_when_ready(
            respond,
            lambda: deps.service.command_reply(viewer.workspace, cmd, view=view, exports=exports),
            cmd.name,
            deps.working_after,
            workspace=viewer.workspace,
            replace_original=True,
        )

    async def share(
        ack: AsyncAck,
        body: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        """Post the same report in the channel, without buttons, through the response URL
        (which works in channels the bot has not joined); its chart, if it has one, is
        shared into the same conversation (or thread) after it. A chart that cannot be
        attached (bot not in the channel, no files:write, network) leaves the shared text
        as it is and tells the person who shared it, in one line. Admins (or the export
        group) only, never into a conversation shared with another workspace, recorded."""
        await ack()
        cmd = command_from(action_value(body))
        if cmd is None:
            await safe_respond(respond, error_message(STALE).payload())
            return
        viewer = await admitted(deps, body, respond, client, context)
        if viewer is None:
            return
        channel = channel_of(body)
        if not await deps.guard.may_export(client, viewer):
            problem = deps.guard.export_refusal(viewer)
        else:
            problem = await deps.guard.share_refusal(client, channel)
        if problem is not None:
            await safe_respond(
                respond, {**error_message(problem).payload(), "replace_original": False}
            )
            return
        try:
            reply = await queued(
                viewer.workspace, deps.service.command_reply, viewer.workspace, cmd, "", True
            )
        except Busy as exc:
            await refuse_busy(respond, "the report was not shared", exc)
            return
        user = viewer.user_id
        message = reply.message
        text = md("{} shared: {}", mention(user), message.text)
        payload = Message(text, message.blocks, message.footer).payload()
        shared = await safe_respond(
            respond, {**payload, "response_type": "in_channel", "replace_original": False}
        )
        if not shared:
            return
        await in_worker(
            deps.service.record_export,
            viewer.workspace,
            user,
            f"{cmd.name} report share" + (f" ({cmd.period})" if cmd.period else ""),
            customers_in(reply.report),
            channel or "channel",
        )
        scopes = context.authorize_result.bot_scopes if context.authorize_result else None
        try:
            rendered = await chart_when_free(reply, viewer.workspace)
        except Busy:
            await safe_respond(respond, {"text": CHART_SKIPPED, "replace_original": False})
            return
        if rendered is None:
            return
        png, title = rendered
        note = (
            CHARTS_HINT
            if not can_upload(scopes)
            else await upload_chart(
                client,
                png,
                title,
                channel,
                thread_ts=(body.get("container") or {}).get("thread_ts"),
                comment=md("The {} chart of the report {} shared.", title, mention(user)),
            )
        )
        if note is not None:
            await safe_respond(respond, {"text": note, "replace_original": False})

    async def export_csv(
        ack: AsyncAck,
        body: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        """Send every customer at risk as a CSV file in a direct message to the person who
        asked, if they may export; the export is recorded once the file is sent."""
        await ack()
        value = action_value(body)
        viewer = await admitted(deps, body, respond, client, context)
        if viewer is None:
            return
        if not await deps.guard.may_export(client, viewer):
            text = deps.guard.export_refusal(viewer)
            await safe_respond(
                respond, {**error_message(text).payload(), "replace_original": False}
            )
            return
        kind = value.get("k") if isinstance(value.get("k"), str) else None
        period = value.get("p") if isinstance(value.get("p"), str) else None
        try:
            csv_text, rows = await queued(
                viewer.workspace, deps.service.at_risk_csv, viewer.workspace, period, kind
            )
        except Busy as exc:
            await refuse_busy(respond, "no CSV was made", exc)
            return
        try:
            dm = await client.conversations_open(users=viewer.user_id)
            await client.files_upload_v2(
                channel=dm["channel"]["id"],
                content=csv_text.encode(),
                filename="customers-at-risk.csv",
                title="Customers at risk",
                initial_comment=str(
                    mrkdwn(
                        f"All {rows} customers at risk, most valuable first. You can type "
                        "`/journey help` here for more."
                    )
                ),
            )
        except SlackApiError as exc:
            text = f"I couldn't send you the file. {explain(exc)}"
            await safe_respond(respond, error_message(text).payload())
            return
        except Exception as exc:  # SlackRequestError, network: never escapes the listener
            log.warning("CSV upload failed: %s", type(exc).__name__)
            text = "I couldn't send you the file: Slack could not be reached. Please try again."
            await safe_respond(respond, error_message(text).payload())
            return
        await in_worker(
            deps.service.record_export,
            viewer.workspace,
            viewer.user_id,
            f"{kind or 'retention'} at-risk CSV" + (f" ({period})" if period else ""),
            rows,
            "dm",
        )
        await safe_respond(
            respond,
            {
                "text": str(
                    mrkdwn(f"Sent you {rows} customers at risk as a CSV file in a direct message.")
                ),
                "replace_original": False,
            },
        )

    app.action(A_BY_CHANNEL)(change_view)
    app.action(A_COMPARE)(change_view)
    app.action(A_SHARE)(share)
    app.action(A_EXPORT)(export_csv)
