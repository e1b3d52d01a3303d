"""Buttons on digests and alerts: acknowledge an alert, open the full report.

Acknowledging is stored (journey.schedule.acks: who, when, for which announcement)
and shown in the message itself: the button is replaced, for everyone in the
channel, by who acknowledged it and when. A second click (someone who still saw the
button) is told privately who had already acknowledged it. The alert itself stays
firing until the data says it resolved. "Open report" answers the person who
clicked, privately, with the funnel or retention report of the digest's period
(or the last 90 days). Both take the workspace's share of the report pool
(bot/work/pool.py): when it is full the clicker is told privately that nothing was
acknowledged, and the button stays.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.digest import A_ALERT_ACK, A_OPEN_REPORT
from bot.blocks.help import error_message
from bot.blocks.message import MAX_BLOCKS, Message
from bot.blocks.message import context as context_block
from bot.blocks.mrkdwn import md, mention
from bot.deps import Deps
from bot.listeners.actions.report_actions import STALE, admitted
from bot.listeners.actions.values import action_value, command_from
from bot.listeners.replies import refuse_busy, reply_when_ready, safe_respond
from bot.work.pool import Busy, queued

ACK_BLOCK = "journey_acknowledged"
NOT_FOUND = (
    "I can't find this alert in journey's records (it may come from another installation "
    "of journey), so the acknowledgement was not stored. `/journey alerts` shows what is "
    "firing now."
)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def acknowledged_blocks(
    blocks: list[dict[str, Any]], user: str, when: datetime, resolved: bool = False
) -> list[dict[str, Any]]:
    """The message's blocks without the Acknowledge button, plus who acknowledged it."""
    out: list[dict[str, Any]] = []
    for block in blocks:
        if block.get("block_id") == ACK_BLOCK:
            continue
        if block.get("type") == "actions":
            kept = [e for e in block.get("elements", []) if e.get("action_id") != A_ALERT_ACK]
            if not kept:
                continue
            block = {**block, "elements": kept}
        out.append(block)
    since = " It has resolved since (or fired again: see the newer alert)." if resolved else ""
    note = context_block(
        md(":white_check_mark: Acknowledged by {} on {} UTC.{}", mention(user), _when(when), since)
    )
    note.block_id = ACK_BLOCK
    return [*out[: MAX_BLOCKS - 1], note.to_dict()]


def register(app: AsyncApp, deps: Deps) -> None:
    async def acknowledge(
        ack: AsyncAck,
        body: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await ack()
        viewer = await admitted(deps, body, respond, client, context)
        if viewer is None:
            return
        message = body.get("message") or {}
        blocks = message.get("blocks")
        value = action_value(body)
        rule_id, key = value.get("r"), value.get("key")
        if not isinstance(blocks, list) or not isinstance(rule_id, int) or not key:
            await safe_respond(respond, error_message(STALE).payload())
            return
        ts = (body.get("container") or {}).get("message_ts") or message.get("ts")
        try:
            outcome = await queued(
                viewer.workspace,
                deps.service.acknowledge_alert,
                viewer.workspace,
                rule_id,
                str(key),
                viewer.user_id,
                ts,
            )
        except Busy as exc:
            await refuse_busy(respond, "the alert was not acknowledged", exc)
            return
        if isinstance(outcome, Message):
            await safe_respond(respond, {**outcome.payload(), "replace_original": False})
            return
        if outcome.status == "not_found" or outcome.ack is None:
            await safe_respond(
                respond, {**error_message(NOT_FOUND).payload(), "replace_original": False}
            )
            return
        first = outcome.ack
        payload = {
            # The text Slack holds for our own message: escaped when we posted it, so it
            # goes back as it is (escaping it again would show `&amp;`).
            "text": message.get("text") or "Alert acknowledged",
            "blocks": acknowledged_blocks(blocks, first.user_id, first.acked_at, outcome.resolved),
            "replace_original": True,
        }
        await safe_respond(respond, payload)
        if outcome.status == "already":
            text = md(
                "{} already acknowledged this alert on {} UTC.",
                mention(first.user_id),
                _when(first.acked_at),
            )
            await safe_respond(
                respond,
                {"text": str(text), "response_type": "ephemeral", "replace_original": False},
            )

    async def open_report(
        ack: AsyncAck,
        body: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await ack()
        cmd = command_from(action_value(body))
        if cmd is None:
            await safe_respond(respond, error_message(STALE).payload())
            return
        viewer = await admitted(deps, body, respond, client, context)
        if viewer is None:
            return
        exports = await deps.guard.may_export(client, viewer)
        await reply_when_ready(
            respond,
            lambda: deps.service.command_reply(viewer.workspace, cmd, exports=exports),
            cmd.name,
            deps.working_after,
            workspace=viewer.workspace,
            replace_original=False,
            response_type="ephemeral",
        )

    app.action(A_ALERT_ACK)(acknowledge)
    app.action(re.compile(f"^{re.escape(A_OPEN_REPORT)}(:|$)"))(open_report)
