"""The buttons of a file sent for import: *Import* and *Cancel* under its dry run, and
the App Home's *Import a file*.

Every click asks the guard again (an admin demoted since the dry run can no longer
import). The entry's state (bot/files/pending.py) decides what a click still does, so a
second *Import*, a *Cancel* after *Import* or a click after the copy was deleted gets a
sentence saying what happened instead of a second import.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.imports import (
    A_CANCEL,
    A_IMPORT,
    A_OPEN,
    checking_modal,
    import_modal,
    note_message,
    notice_modal,
    result_message,
)
from bot.deps import Deps
from bot.files.pending import PENDING
from bot.listeners.actions.values import action_value, user_of
from bot.listeners.replies import safe_respond
from bot.posting.import_progress import (
    INTERVAL,
    claim_and_start,
    gate_for_import,
    import_elsewhere_checked,
    import_refusal,
    late_answer,
    show,
)

log = logging.getLogger("journey.bot")


def _entry_id(body: dict[str, Any]) -> str:
    return str(action_value(body).get("i") or "")


def _where(body: dict[str, Any]) -> tuple[str, str | None]:
    """The DM channel and the message the click came from."""
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id") or ""
    ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
    return str(channel), (str(ts) if ts else None)


def register(app: AsyncApp, deps: Deps) -> None:
    async def may_import(
        body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> str | None:
        """None when the clicker may import now, else the sentence saying why not."""
        viewer = await deps.guard.viewer(client, context, user_of(body))
        refusal = viewer.refusal()
        if refusal is None and not await deps.guard.may_export(client, viewer):
            refusal = import_refusal(bool(deps.settings.export_groups_of(viewer.workspace)))
        return refusal

    async def tell(respond: AsyncRespond, text: str) -> None:
        await safe_respond(respond, {**note_message(text).payload(), "replace_original": False})

    @app.action(A_IMPORT)
    async def import_clicked(
        ack: AsyncAck,
        body: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await ack()
        refusal = await may_import(body, client, context)
        if refusal is not None:
            await tell(respond, refusal)
            return
        entry_id, user = _entry_id(body), user_of(body)
        raw = deps.extra.get("import_progress_interval", INTERVAL)
        interval = float(raw) if isinstance(raw, int | float) else INTERVAL
        entry = PENDING.claim(entry_id, user)
        if entry is None:
            known = PENDING.get(entry_id)
            if known is not None or not entry_id:
                await tell(respond, late_answer(known))
                return
            # Checked by another replica, or before a restart: fetched again from Slack.
            channel, ts = _where(body)
            why = await import_elsewhere_checked(
                deps, client, context, action_value(body), user, channel, ts, interval
            )
            if why is not None:
                await tell(respond, why)
            return
        busy = gate_for_import(entry.workspace)
        if busy is not None:
            PENDING.release(entry)
            await tell(respond, busy)
            return
        # Another replica may hold the same file (a click that reached it): the
        # database decides (journey/imports/claims.py).
        why = await claim_and_start(deps, client, entry, interval)
        if why is not None:
            await tell(respond, why)

    @app.action(A_CANCEL)
    async def cancel_clicked(
        ack: AsyncAck,
        body: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await ack()
        entry_id = _entry_id(body)
        entry = PENDING.cancel(entry_id, user_of(body))
        if entry is None:
            await tell(respond, late_answer(PENDING.get(entry_id)))
            return
        text = f"Cancelled: nothing was imported, and journey deleted its copy of {entry.name}."
        await show(
            client,
            entry.channel,
            entry.ts,
            result_message(entry.name, False, text, header_text=f"{entry.name}: cancelled"),
        )

    @app.action(A_OPEN)
    async def open_clicked(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        """The modal opens first (a trigger lives 3 s), then becomes the file picker for
        those who may import, or the sentence saying why not."""
        await ack()
        try:
            opened = await client.views_open(trigger_id=body["trigger_id"], view=checking_modal())
        except SlackApiError as exc:
            log.warning("import: could not open the modal: %s", exc.response.get("error"))
            return
        view_id = str((opened.get("view") or {}).get("id") or "")
        refusal = await may_import(body, client, context)
        view = import_modal() if refusal is None else notice_modal(refusal)
        try:
            await client.views_update(view_id=view_id, view=view)
        except SlackApiError as exc:
            log.warning("import: could not show the modal: %s", exc.response.get("error"))
