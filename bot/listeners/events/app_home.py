"""The Home tab, published each time someone opens it (so it is always current), with
the numbers only for those who may see customer data (bot/guard/access.py)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.message import section
from bot.deps import Deps
from bot.work.pool import in_worker

log = logging.getLogger("journey.bot")


def register(app: AsyncApp, deps: Deps) -> None:
    @app.event("app_home_opened")
    async def app_home_opened(
        event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        if event.get("tab") not in (None, "home"):
            return
        viewer = await deps.guard.viewer(client, context, str(event.get("user") or ""))
        refusal = viewer.refusal()
        if refusal is None:
            view = await in_worker(deps.service.home, viewer.workspace)
        else:
            # Guests and people of other organizations see why, and nothing else.
            view = {"type": "home", "blocks": [section(refusal).to_dict()]}
        try:
            await client.views_publish(user_id=event["user"], view=view)
        except SlackApiError as exc:
            log.warning("views.publish failed: %s", exc.response.get("error"))
