"""The Home tab, published each time someone opens it (so it is always current), with
the numbers only for those who may see customer data (bot/guard/access.py).

Its figures take the workspace's share of the report pool (bot/work/pool.py): when
the pool is full the tab shows a note saying so and to open it again in a minute,
rather than figures that arrive late or never."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.message import section
from bot.deps import Deps
from bot.listeners.replies import busy_message
from bot.work.pool import Busy, queued

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
            try:
                view = await queued(viewer.workspace, deps.service.home, viewer.workspace)
            except Busy as exc:
                note = busy_message("this tab shows no figures now", exc.why)
                view = {"type": "home", "blocks": [b.to_dict() for b in note.blocks]}
        else:
            # Guests and people of other organizations see why, and nothing else.
            view = {"type": "home", "blocks": [section(refusal).to_dict()]}
        try:
            await client.views_publish(user_id=event["user"], view=view)
        except SlackApiError as exc:
            log.warning("views.publish failed: %s", exc.response.get("error"))
