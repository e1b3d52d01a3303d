"""`/journey ...`: acknowledge at once, answer after.

Help and parse errors need no database and go out with the acknowledgement
itself; reports are computed after it, in a worker thread. `/journey sync` runs
in the background with its progress in a DM edited in place (bot/posting/sync_progress.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.help import (
    command_error_message,
    error_message,
    help_message,
    sync_message,
    topic_message,
)
from bot.blocks.message import Message, context
from bot.commands import people
from bot.commands.language import (
    SCHEDULE_WORDS,
    AlertsRequest,
    Command,
    CommandError,
    DigestRequest,
    parse,
)
from bot.commands.service import Reply, unexpected_message
from bot.deps import Deps
from bot.guard.access import SETTINGS_REFUSAL, authorized_workspace
from bot.listeners.replies import attach_chart, busy_message, reply_when_ready, safe_respond
from bot.listeners.views.connect import demo_in, open_connect_modal
from bot.posting.sync_progress import INTERVAL, admit, open_dm, start_sync
from bot.work.pool import Busy, queued


def posts_here(cmd: Command) -> bool:
    """Whether the command makes digests or alerts post in the channel it was typed in:
    `digest` with a schedule, `alerts channel`, and `alerts on` (rules without a channel
    take this one)."""
    setting = cmd.setting
    if isinstance(setting, DigestRequest):
        return setting.action == "set"
    if isinstance(setting, AlertsRequest):
        return setting.action in ("on", "channel")
    return False


def make_journey_command(deps: Deps) -> Callable[..., Awaitable[None]]:
    async def journey_command(
        ack: AsyncAck,
        command: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        # The authorized workspace, never the payload's team_id (bot/guard/access.py).
        team_id = authorized_workspace(context)
        try:
            cmd = parse(command.get("text") or "")
        except CommandError as exc:
            words = (command.get("text") or "").split()
            head = words[0].lower() if words else ""
            await ack(**command_error_message(str(exc), exc.suggestion or head).payload())
            return
        if cmd.name == "help":
            message = topic_message(cmd.args[0]) if cmd.args else help_message()
            await ack(**message.payload())
            return
        await ack()
        user = command.get("user_id") or ""
        if cmd.name == "connect":
            # The modal first, within the trigger's 3 seconds; who may connect is checked
            # after, and a non-admin sees the modal turn into the refusal.
            problem = await open_connect_modal(
                client,
                command.get("trigger_id") or "",
                command.get("channel_id") or "",
                lambda: deps.guard.viewer(client, context, user),
                # Bounded like a report; refused (Busy), the form shows and the
                # submission looks for the demo again before any key is checked.
                lambda: queued(team_id, demo_in, deps.service.engine, team_id),
            )
            if problem:
                await safe_respond(respond, error_message(problem).payload())
            return

        async def refuse(text: str) -> None:
            await safe_respond(respond, error_message(text).payload())

        viewer = await deps.guard.admit(client, context, user, refuse)
        if viewer is None:
            return
        if cmd.changes_settings and not viewer.is_admin:
            await refuse(SETTINGS_REFUSAL)
            return
        if cmd.name in SCHEDULE_WORDS:
            channel = command.get("channel_id") or ""
            if posts_here(cmd):
                # Digests and alerts name customers: never set up where another workspace
                # or organization reads (checked again before every post).
                problem = await deps.guard.schedule_refusal(client, channel)
                if problem is not None:
                    await refuse(problem)
                    return
            timezone = "UTC"
            if isinstance(cmd.setting, DigestRequest) and cmd.setting.action in ("set", "now"):
                timezone = viewer.tz  # from the same users.info look-up
            await reply_when_ready(
                respond,
                lambda: deps.service.schedule_reply(team_id, cmd, channel, user, timezone),
                cmd.name,
                deps.working_after,
                workspace=team_id,
            )
            return
        if cmd.name == "sync":
            await _sync_in_background(deps, respond, client, team_id, user, cmd.args)
            return
        if cmd.name == "customer":
            # Details depend on who asks: admins get Unlink and Link buttons.
            admin = viewer.is_admin
            await reply_when_ready(
                respond,
                lambda: Reply(people.details(deps.service.engine, team_id, cmd.args[0], admin)),
                "customer details",
                deps.working_after,
                workspace=team_id,
            )
            return
        # The *CSV* and *Share* buttons only for who may use them (checked again on click).
        exports = await deps.guard.may_export(client, viewer)
        reply, _ = await reply_when_ready(
            respond,
            lambda: deps.service.command_reply(team_id, cmd, exports=exports),
            cmd.name,
            deps.working_after,
            workspace=team_id,
        )
        scopes = context.authorize_result.bot_scopes if context.authorize_result else None
        await attach_chart(
            client,
            respond,
            reply,
            scopes,
            user=user,
            channel=command.get("channel_id") or "",
            workspace=team_id,
        )

    return journey_command


async def _sync_in_background(
    deps: Deps,
    respond: AsyncRespond,
    client: AsyncWebClient,
    team_id: str,
    user: str,
    args: tuple[str, ...] | list[str],
) -> None:
    """Say where the progress shows, then sync without holding this listener up."""
    name = args[0] if args else None
    try:
        targets = await queued(team_id, deps.service.sources_to_sync, team_id, name)
    except Busy as exc:
        await safe_respond(respond, busy_message("the sync did not start", exc.why).payload())
        return
    except Exception as exc:
        await safe_respond(respond, unexpected_message(exc).payload())
        return
    if not targets:
        if name is not None:
            message = error_message(
                f"There is no connected source named {name!r}: see `/journey sources`."
            )
        else:
            message = sync_message([])
        await safe_respond(respond, message.payload())
        return

    admission = admit(deps.service, team_id, targets)
    if isinstance(admission, str):
        await safe_respond(respond, error_message(admission).payload())
        return
    targets = admission.targets

    async def fallback(final: Message) -> None:
        await safe_respond(respond, final.payload())

    dm = await open_dm(client, user)
    interval = deps.extra.get("sync_progress_interval", INTERVAL)
    names = ", ".join(t.name for t in targets)
    if dm is None:
        note = f"Syncing {names} in the background; I'll answer here when it is done."
    else:
        note = f"Syncing {names} in the background: I'm keeping a message up to date in our DM."
    note += " Reports answer from what has arrived meanwhile."
    if admission.note:
        note += f" {admission.note}"
    await safe_respond(
        respond, Message(note, [context(f":arrows_counterclockwise: {note}")]).payload()
    )
    start_sync(
        client,
        deps.service,
        targets,
        dm or "",
        interval=float(interval) if isinstance(interval, int | float) else INTERVAL,
        fallback=fallback,
        admission=admission,
    )
