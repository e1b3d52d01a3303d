"""`/journey ...`: acknowledge at once, answer after.

Help and parse errors need no database and go out with the acknowledgement
itself; reports are computed after it, in a worker thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.help import error_message, help_message
from bot.commands import SCHEDULE_WORDS, CommandError, DigestRequest, parse
from bot.deps import Deps
from bot.listeners.replies import attach_chart, reply_when_ready
from bot.listeners.views.connect import open_connect_modal
from bot.permissions import REFUSAL, may_change_settings, user_timezone


def make_journey_command(deps: Deps) -> Callable[..., Awaitable[None]]:
    async def journey_command(
        ack: AsyncAck,
        command: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        team_id = context.team_id or command.get("team_id") or ""
        try:
            cmd = parse(command.get("text") or "")
        except CommandError as exc:
            await ack(**help_message(prefix=str(exc)).payload())
            return
        if cmd.name == "help":
            await ack(**help_message().payload())
            return
        await ack()
        user = command.get("user_id") or ""
        if cmd.changes_settings and not await may_change_settings(
            client, user, deps.settings.admin_user_ids
        ):
            await respond(**error_message(REFUSAL).payload())
            return
        if cmd.name == "connect":
            # Right after the ack: the trigger id expires 3 seconds after the command.
            problem = await open_connect_modal(
                client, command.get("trigger_id") or "", command.get("channel_id") or ""
            )
            if problem:
                await respond(**error_message(problem).payload())
            return
        if cmd.name in SCHEDULE_WORDS:
            channel = command.get("channel_id") or ""
            timezone = "UTC"
            if isinstance(cmd.setting, DigestRequest) and cmd.setting.action in ("set", "now"):
                timezone = await user_timezone(client, user)
            await reply_when_ready(
                respond,
                lambda: deps.service.schedule_reply(team_id, cmd, channel, user, timezone),
                cmd.name,
                deps.working_after,
            )
            return
        reply, _ = await reply_when_ready(
            respond,
            lambda: deps.service.command_reply(team_id, cmd),
            cmd.name,
            deps.working_after,
            own_thread=cmd.name == "sync",
        )
        scopes = context.authorize_result.bot_scopes if context.authorize_result else None
        await attach_chart(client, respond, reply, scopes)

    return journey_command
