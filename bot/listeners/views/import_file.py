"""The "Import a file" modal's submission: the file picked in its file_input is checked
like a file dropped into the DM, and the dry run goes to the person's DM with journey.

A file_input's value arrives in `view.state.values` as `{"type": "file_input", "files":
[file objects]}` (bolt-js src/types/view/index.ts, ViewStateValue `files`); only its id
is used: files.info is asked again, as for a dropped file, so both paths check the same
facts. The modal closes at once (Slack wants the answer within 3 seconds); the check
runs after.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.imports import A_FILE, B_FILE, CALLBACK_ID
from bot.commands.service import unexpected_message
from bot.deps import Deps
from bot.posting.import_progress import post, receive_file
from bot.posting.sync_progress import open_dm

log = logging.getLogger("journey.bot")


def picked_file(view: dict[str, Any]) -> str | None:
    """The id of the file picked in the modal, if one was."""
    value = ((view.get("state") or {}).get("values") or {}).get(B_FILE, {}).get(A_FILE) or {}
    files = value.get("files") if isinstance(value, dict) else None
    if not isinstance(files, list) or not files or not isinstance(files[0], dict):
        return None
    file_id = files[0].get("id")
    return str(file_id) if file_id else None


def register(app: AsyncApp, deps: Deps) -> None:
    async def submitted(
        ack: AsyncAck,
        body: dict[str, Any],
        view: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        file_id = picked_file(view)
        if file_id is None:
            await ack(response_action="errors", errors={B_FILE: "Pick a CSV file to import."})
            return
        await ack()
        user = (body.get("user") or {}).get("id") or ""
        channel = await open_dm(client, user)
        if channel is None:
            log.warning("import: no DM with the person who picked a file; nothing checked")
            return
        try:
            await receive_file(deps, client, context, user, file_id, channel)
        except Exception as exc:  # the last line of defence: words and a reference
            await post(client, channel, unexpected_message(exc))

    app.view(CALLBACK_ID)(submitted)
