"""Uninstalls and revoked tokens: stop using a workspace's installation at once."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from bot.deps import Deps

log = logging.getLogger("journey.bot")


def register(app: AsyncApp, deps: Deps) -> None:
    async def deactivate(context: AsyncBoltContext) -> None:
        team = context.team_id or context.enterprise_id or ""
        log.info("installation of %s revoked or uninstalled: marking it inactive", team)
        if deps.deactivate is not None:
            await deps.deactivate(team)

    app.event("tokens_revoked")(deactivate)
    app.event("app_uninstalled")(deactivate)
