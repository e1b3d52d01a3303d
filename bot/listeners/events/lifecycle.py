"""Uninstalls and revoked tokens: stop what Slack says to stop, and only that.

`app_uninstalled`: the workspace removed journey. Its installation is marked
inactive (the token dropped), and journey.uninstall.stop_workspace pauses its
sources and deletes their keys, pauses its digests and disables its alerts; the
scheduler deletes its data after JOURNEY_PURGE_AFTER_DAYS (30). A reinstall
within that time resumes it (bot/install/installations.py, `resume_on_install`); a bot
with one fixed SLACK_BOT_TOKEN has no install event, so at start a token that
works (`auth.test`) resumes its workspace (`resume_token_workspace`).

`tokens_revoked` lists, per kind of token, the user ids whose tokens were
revoked: `{"tokens": {"oauth": ["U..."], "bot": ["U..."]}}`, "an array of user
IDs, not the actual token strings"
(https://docs.slack.dev/reference/events/tokens_revoked). journey holds one bot
token per installation and no user tokens, so the installation is deactivated
only when its own bot user is in `bot`; a revoked user token (`oauth`) changes
nothing it holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Engine

from bot.deps import Deps
from journey.db import session_scope
from journey.uninstall import Resumed, Stopped, resume_workspace, stop_workspace

log = logging.getLogger("journey.bot")


def stop_uninstalled(engine: Engine, workspace_id: str) -> Stopped:
    with session_scope(engine) as session:
        return stop_workspace(session, workspace_id, datetime.now(UTC))


async def resume_token_workspace(
    bot_token: str, api_url: str, engine: Engine, client: AsyncWebClient | None = None
) -> Resumed | None:
    """A single-token bot starting with a token that works is installed in its team: if
    that workspace was marked uninstalled (the app removed and added again, with a new
    token in the environment), resume it before the grace period deletes its data."""
    try:
        answer = await (client or AsyncWebClient(token=bot_token, base_url=api_url)).auth_test()
    except (SlackApiError, SlackClientError, OSError) as exc:
        log.warning("could not check the bot token at start: %s", type(exc).__name__)
        return None
    team = str(answer.get("team_id") or "")
    if not team:
        return None
    resumed = await asyncio.to_thread(resume_after_reinstall, engine, team)
    if resumed.was_uninstalled:
        log.info(
            "workspace %s was marked uninstalled; its token works again, so it is resumed "
            "(%d digests, %d alerts; sources needing keys: %s)",
            team,
            resumed.digests,
            resumed.alerts,
            len(resumed.need_keys),
        )
    return resumed


def resume_after_reinstall(engine: Engine, workspace_id: str) -> Resumed:
    with session_scope(engine) as session:
        return resume_workspace(session, workspace_id, datetime.now(UTC))


def register(app: AsyncApp, deps: Deps) -> None:
    deactivate: Callable[[str], Awaitable[None]] | None = deps.deactivate
    bot_user_of = deps.bot_user_of

    async def uninstalled(context: AsyncBoltContext) -> None:
        team = context.team_id or context.enterprise_id or ""
        if not team:
            return
        if deactivate is not None:
            await deactivate(team)
        stopped = await asyncio.to_thread(stop_uninstalled, deps.service.engine, team)
        log.info(
            "app uninstalled from %s: token dropped, %d sources paused (keys deleted), "
            "%d digests and %d alerts stopped; data deleted after %s",
            team,
            len(stopped.sources),
            stopped.digests,
            stopped.alerts,
            stopped.purge_at.date().isoformat() if stopped.purge_at else "(no data held)",
        )

    async def tokens_revoked(event: dict[str, Any], context: AsyncBoltContext) -> None:
        team = context.team_id or context.enterprise_id or ""
        tokens = event.get("tokens") or {}
        bots = {str(u) for u in tokens.get("bot") or []}
        if not team or not bots:
            log.info("tokens revoked for %s: user tokens only, none of which journey holds", team)
            return
        ours = await bot_user_of(team) if bot_user_of is not None else None
        if ours is not None and ours not in bots:
            log.info("tokens revoked for %s: not this installation's bot token; kept", team)
            return
        log.info("bot token of %s revoked: marking the installation inactive", team)
        if deactivate is not None:
            await deactivate(team)

    app.event("tokens_revoked")(tokens_revoked)
    app.event("app_uninstalled")(uninstalled)
