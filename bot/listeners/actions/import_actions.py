"""The buttons of a file sent for import: *Import* and *Cancel* under its dry run, and
the App Home's *Import a file*.

Every click asks the guard again (an admin demoted since the dry run can no longer
import). The entry's state (bot/files/pending.py) decides what a click still does, so a
second *Import*, a *Cancel* after *Import* or a click after the copy was deleted gets a
sentence saying what happened instead of a second import.
"""

from __future__ import annotations

import json
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
    A_DAY_FIRST,
    A_IMPORT,
    A_MAP,
    A_OPEN,
    A_OPTION,
    A_RATE,
    B_DAY_FIRST,
    B_MAP,
    B_RATE,
    CALLBACK_OPTIONS,
    LEAVE_OUT,
    checking_modal,
    import_modal,
    note_message,
    notice_modal,
    options_modal,
    result_message,
)
from bot.commands.service import unexpected_message
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
    post,
    receive_file,
    show,
)
from bot.posting.sync_progress import open_dm
from journey.imports.money import parse_rate
from journey.imports.service import ImportOptions

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


def _selected(state: dict[str, Any], block: str, action: str) -> str | None:
    picked = ((state.get(block) or {}).get(action) or {}).get("selected_option") or {}
    value = picked.get("value") if isinstance(picked, dict) else None
    return str(value) if value is not None else None


def answered_options(
    value: dict[str, Any], state: dict[str, Any]
) -> tuple[ImportOptions, dict[str, str]]:
    """The options of an earlier check plus this form's answer; errors by block id (the
    form's own words under the field) when an answer cannot be used."""
    options = ImportOptions.from_compact(value.get("o"))
    need = value.get("n")
    if need == "date_format":
        choice = _selected(state, B_DAY_FIRST, A_DAY_FIRST)
        if choice not in ("d", "m"):
            return options, {B_DAY_FIRST: "Choose how the file writes its dates."}
        return options.replace(day_first=choice == "d"), {}
    if need == "currency":
        raw = str(((state.get(B_RATE) or {}).get(A_RATE) or {}).get("value") or "").strip()
        try:
            code, rate = parse_rate(f"{value.get('k') or ''}={raw.replace(',', '.')}")
        except ValueError:
            return options, {B_RATE: "Write a number above 0, such as 1.08 (1 keeps them)."}
        return options.replace(currencies={**options.currencies, code: rate}), {}
    if need == "map":
        mapping = dict(options.mapping)
        errors: dict[str, str] = {}
        for i, column in enumerate(value.get("c") or []):
            field = _selected(state, f"{B_MAP}{i}", A_MAP)
            if field is None:
                errors[f"{B_MAP}{i}"] = "Choose what this column is, or Leave it out."
            else:
                mapping[str(column)] = "" if field == LEAVE_OUT else field
        return options.replace(mapping=mapping), errors
    return options, {}


def register_options(app: AsyncApp, deps: Deps) -> None:
    """The question a dry run asked (a date style, a rate, what columns are): its button
    opens the form, and the form's answer checks the file again."""

    @app.action(A_OPTION)
    async def option_clicked(
        ack: AsyncAck,
        body: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await ack()
        viewer = await deps.guard.viewer(client, context, user_of(body))
        refusal = viewer.refusal()
        if refusal is None and not await deps.guard.may_export(client, viewer):
            refusal = import_refusal(bool(deps.settings.export_groups_of(viewer.workspace)))
        if refusal is not None:
            await safe_respond(
                respond, {**note_message(refusal).payload(), "replace_original": False}
            )
            return
        value = action_value(body)
        try:
            await client.views_open(
                trigger_id=body["trigger_id"],
                view=options_modal(value, json.dumps(value, separators=(",", ":"))),
            )
        except SlackApiError as exc:
            log.warning("import: could not open the options form: %s", exc.response.get("error"))

    @app.view(CALLBACK_OPTIONS)
    async def options_submitted(
        ack: AsyncAck,
        body: dict[str, Any],
        view: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        try:
            value = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            value = {}
        if not isinstance(value, dict) or not value.get("f"):
            await ack()
            return
        state = (view.get("state") or {}).get("values") or {}
        options, errors = answered_options(value, state)
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        user = str((body.get("user") or {}).get("id") or "")
        channel = await open_dm(client, user)
        if channel is None:
            log.warning("import: no DM with the person who answered; nothing checked")
            return
        try:
            # Who may import is asked again there, as for a file dropped in the DM.
            await receive_file(deps, client, context, user, str(value["f"]), channel, options)
        except Exception as exc:  # the last line of defence: words and a reference
            await post(client, channel, unexpected_message(exc))
