"""A customer's *Details* (its button on the review list, `/journey customer WHO`) and the
admin's *Unlink* and *Link another record…* on it (bot/blocks/people.py).

Who may do what is decided on every click, never from what the message showed: a member
sees Details without buttons, and a forged Unlink click or Link submission from anyone but
an admin is refused in words. The decisions are journey.people's, through
bot/commands/people.py, the same as `journey people link|unlink`. Each takes the
workspace's share of the report pool (bot/work/pool.py): past its bounds a click is
told "busy, try again in a minute" (beside the message, or in the Link modal).
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.help import BUSY_NOT_DONE, error_message
from bot.blocks.people import (
    A_PERSON_DETAILS,
    A_PERSON_LINK,
    A_PERSON_UNLINK,
    B_OTHER,
    LINK_CALLBACK,
    PEOPLE_REFUSAL,
    checking_modal,
    link_modal,
    notice_modal,
    read_other,
)
from bot.commands import people
from bot.commands.service import Reply
from bot.deps import Deps
from bot.guard.access import authorized_workspace
from bot.listeners.actions.report_actions import STALE, admitted
from bot.listeners.actions.values import action_value, user_of
from bot.listeners.replies import reply_when_ready, safe_respond
from bot.slack_errors import explain
from bot.work.pool import Busy, log_shed, queued


def register(app: AsyncApp, deps: Deps) -> None:
    async def details(
        ack: AsyncAck,
        body: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await ack()
        record = action_value(body).get("id")
        if not isinstance(record, int):
            await safe_respond(respond, error_message(STALE).payload())
            return
        viewer = await admitted(deps, body, respond, client, context)
        if viewer is None:
            return
        await reply_when_ready(
            respond,
            lambda: Reply(
                people.details(deps.service.engine, viewer.workspace, record, viewer.is_admin)
            ),
            "customer details",
            deps.working_after,
            workspace=viewer.workspace,
            replace_original=False,
        )

    async def unlink(
        ack: AsyncAck,
        body: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await ack()
        record = action_value(body).get("id")
        if not isinstance(record, int):
            await safe_respond(respond, error_message(STALE).payload())
            return
        viewer = await admitted(deps, body, respond, client, context)
        if viewer is None:
            return
        if not viewer.is_admin:
            message = error_message(PEOPLE_REFUSAL)
            await safe_respond(respond, {**message.payload(), "replace_original": False})
            return
        await reply_when_ready(
            respond,
            lambda: Reply(
                people.unlink(
                    deps.service.engine,
                    deps.service.write_engine,
                    viewer.workspace,
                    record,
                    viewer.user_id,
                )
            ),
            "unlink",
            deps.working_after,
            workspace=viewer.workspace,
            replace_original=True,
        )

    async def open_link(
        ack: AsyncAck,
        body: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        """The modal opens first, inside the trigger's 3 seconds; who clicked is checked
        after, and anyone but an admin sees it turn into the refusal."""
        await ack()
        value = action_value(body)
        person = value.get("id")
        if not isinstance(person, int):
            await safe_respond(respond, error_message(STALE).payload())
            return
        try:
            opened = await client.views_open(
                trigger_id=str(body.get("trigger_id") or ""), view=checking_modal()
            )
        except SlackApiError as exc:
            words = f"I couldn't open the form. {explain(exc)}"
            if exc.response.get("error") in ("expired_trigger_id", "exchanged_trigger_id"):
                words = "Slack took too long to open the form; please click the button again."
            await safe_respond(
                respond, {**error_message(words).payload(), "replace_original": False}
            )
            return
        view_id = str((opened.get("view") or {}).get("id") or "")
        viewer = await deps.guard.viewer(client, context, user_of(body))
        if viewer.is_admin:
            view = link_modal(person, str(value.get("n") or f"#{person}"))
        else:
            view = notice_modal(viewer.refusal() or PEOPLE_REFUSAL)
        try:
            await client.views_update(view_id=view_id, view=view)
        except SlackApiError:
            return  # the person closed the modal meanwhile: nothing to tell

    async def link_submitted(
        ack: AsyncAck,
        body: dict[str, Any],
        view: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        person, other = read_other(view)
        if not other:
            await ack(
                response_action="errors",
                errors={B_OTHER: "Type the other record's email, its id (#123) or SOURCE:ID."},
            )
            return
        await ack(response_action="update", view=notice_modal("Linking…"))
        view_id = str(view.get("id") or "")
        team_id = authorized_workspace(context)
        user = (body.get("user") or {}).get("id") or ""
        viewer = await deps.guard.viewer(client, context, user)
        if not viewer.is_admin:
            words = viewer.refusal() or PEOPLE_REFUSAL
        elif person is None:
            words = STALE
        else:
            try:
                done, words = await queued(
                    team_id, people.link, deps.service.write_engine, team_id, person, other, user
                )
            except Busy as exc:  # the report pool is full (bot/work/pool.py): at once, in words
                log_shed(exc.why)
                done, words = True, BUSY_NOT_DONE.format(what="nothing was linked")
            if not done:
                words += " Nothing was changed; click Link another record… to try again."
        try:
            await client.views_update(view_id=view_id, view=notice_modal(words))
        except SlackApiError:
            return  # closed meanwhile; the decision (if any) is stored all the same

    app.action(A_PERSON_DETAILS)(details)
    app.action(A_PERSON_UNLINK)(unlink)
    app.action(A_PERSON_LINK)(open_link)
    app.view(LINK_CALLBACK)(link_submitted)
