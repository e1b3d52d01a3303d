"""`file_shared`: someone dropped a file into their direct message with journey.

Why this event and not `message`: for a file shared in a DM Slack sends both a `message`
event (subtype `file_share`, with the file objects) and `file_shared`
(https://docs.slack.dev/reference/events/file_shared, whose own example is a file in a
`D…` channel). The message event needs `message.im` and the `im:history` scope, which
would let journey read every word people write to it; `file_shared` needs `files:read`,
which the download needs anyway. It carries ids only ("To obtain additional information
about the file, use the files.info API method"), so the file is looked up
(bot/files/download.py).

Only files in a direct message count: the event also comes for files shared in any
channel journey is in, and for the charts and CSVs journey uploads itself.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.commands.service import unexpected_message
from bot.deps import Deps
from bot.posting.import_progress import post, receive_file


def register(app: AsyncApp, deps: Deps) -> None:
    @app.event("file_shared")
    async def file_shared(
        event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        channel = str(event.get("channel_id") or "")
        user = str(event.get("user_id") or "")
        file_id = str(event.get("file_id") or (event.get("file") or {}).get("id") or "")
        if not channel.startswith("D") or not user or not file_id:
            return  # a file shared in a channel journey is in: not sent to journey
        if user == context.bot_user_id:
            return  # journey's own upload (a chart or a CSV export in someone's DM)
        try:
            await receive_file(deps, client, context, user, file_id, channel)
        except Exception as exc:  # the last line of defence: words and a reference
            await post(client, channel, unexpected_message(exc))
