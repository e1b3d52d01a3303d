"""Buttons on digests and alerts: acknowledge an alert, open the full report.

Acknowledging is recorded in the message itself: the core keeps no
acknowledgement state (an alert stays firing until the data says it resolved),
so the button is replaced, for everyone in the channel, by who acknowledged it
and when. "Open report" answers the person who clicked, privately, with the
funnel or retention report of the digest's period (or the last 90 days).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.blocks.digest import A_ALERT_ACK, A_OPEN_REPORT
from bot.blocks.help import error_message
from bot.blocks.message import MAX_BLOCKS, context
from bot.deps import Deps
from bot.listeners.actions.report_actions import STALE
from bot.listeners.actions.values import action_value, command_from, team_of, user_of
from bot.listeners.replies import reply_when_ready, safe_respond


def acknowledged_blocks(
    blocks: list[dict[str, Any]], user: str, when: datetime
) -> list[dict[str, Any]]:
    """The message's blocks without the Acknowledge button, plus who acknowledged it."""
    out: list[dict[str, Any]] = []
    for block in blocks:
        if block.get("type") == "actions":
            kept = [e for e in block.get("elements", []) if e.get("action_id") != A_ALERT_ACK]
            if not kept:
                continue
            block = {**block, "elements": kept}
        out.append(block)
    note = context(
        f":white_check_mark: Acknowledged by <@{user}> on {when.strftime('%Y-%m-%d %H:%M')} UTC."
    ).to_dict()
    return [*out[: MAX_BLOCKS - 1], note]


def register(app: AsyncApp, deps: Deps) -> None:
    async def acknowledge(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        message = body.get("message") or {}
        blocks = message.get("blocks")
        if not isinstance(blocks, list):
            await safe_respond(respond, error_message(STALE).payload())
            return
        user = user_of(body)
        payload = {
            "text": message.get("text") or "Alert acknowledged",
            "blocks": acknowledged_blocks(blocks, user, datetime.now(UTC)),
            "replace_original": True,
        }
        await safe_respond(respond, payload)

    async def open_report(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        cmd = command_from(action_value(body))
        if cmd is None:
            await safe_respond(respond, error_message(STALE).payload())
            return
        await reply_when_ready(
            respond,
            lambda: deps.service.command_reply(team_of(body), cmd),
            cmd.name,
            deps.working_after,
            replace_original=False,
            response_type="ephemeral",
        )

    app.action(A_ALERT_ACK)(acknowledge)
    app.action(re.compile(f"^{re.escape(A_OPEN_REPORT)}(:|$)"))(open_report)
