"""The "Asked" and "Skip" buttons on review candidates.

A mark is a write and the refreshed list a report: both take the workspace's share of
the report pool (bot/work/pool.py). When it is full the clicker is told privately that
nothing was marked (the buttons stay, to click again); a mark recorded whose list
cannot be refreshed says so instead of the list.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.help import error_message
from bot.blocks.message import Message
from bot.blocks.message import context as context_block
from bot.blocks.mrkdwn import md, mention
from bot.blocks.reports import A_REVIEW_ASKED, A_REVIEW_SKIP
from bot.commands.language import Command
from bot.deps import Deps
from bot.listeners.actions.report_actions import admitted
from bot.listeners.actions.values import action_value
from bot.listeners.replies import busy_message, refuse_busy, safe_respond
from bot.work.pool import Busy, queued


def register(app: AsyncApp, deps: Deps) -> None:
    async def mark(
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
        value = action_value(body)
        status = "asked" if body["actions"][0]["action_id"] == A_REVIEW_ASKED else "skipped"
        customer = value.get("id")
        team, user = viewer.workspace, viewer.user_id
        if not isinstance(customer, int):
            await safe_respond(
                respond,
                error_message(
                    "This button is not valid any more; run `/journey reviews` again."
                ).payload(),
            )
            return
        name = str(value.get("n") or "the customer")
        try:
            recorded = await queued(
                team, deps.service.record_review_request, team, customer, status, user
            )
        except Busy as exc:
            await refuse_busy(respond, f"{name} was not marked", exc)
            return
        if not recorded:
            await safe_respond(
                respond, error_message("That customer is not in this workspace.").payload()
            )
            return
        done = md(
            ":white_check_mark: {}: {} (recorded by {}).",
            name,
            "asked for a review" if status == "asked" else "skipped",
            mention(user),
        )
        # The list without that customer, with a line saying what was recorded.
        exports = await deps.guard.may_export(client, viewer)
        try:
            reply = await queued(
                team,
                partial(deps.service.command_reply, team, Command("reviews"), exports=exports),
            )
        except Busy as exc:
            busy = busy_message("the list was not refreshed", exc.why)
            note = Message(done, [context_block(done), *busy.blocks])
            await safe_respond(
                respond,
                {**note.payload(), "response_type": "ephemeral", "replace_original": False},
            )
            return
        message = Message(
            reply.message.text, [context_block(done), *reply.message.blocks], reply.message.footer
        )
        await safe_respond(respond, {**message.payload(), "replace_original": True})

    app.action(A_REVIEW_ASKED)(mark)
    app.action(A_REVIEW_SKIP)(mark)
