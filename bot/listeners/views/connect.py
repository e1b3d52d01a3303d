"""`/journey connect`: the modal's submission, checked and stored off the event loop.

The command listener opens the modal (bot.blocks.connect). On submission the
fields are validated within Slack's 3 seconds (field errors go back with
`response_action: errors`), then a thread checks the key against the API and
stores it encrypted, exactly as `journey sources add` does, and the person is
told the outcome in a direct message. The key is never logged, posted or
stored in plain text: only `Credential` carries it, and only
`journey.sources.manage.add_source` writes it, sealed. A source stored this way
gets its first sync at once, in the background, with its progress in a second
DM edited in place (bot/posting/sync_progress.py).

Bounds. The check runs on its own small pool (bot/work/pool.CHECKS), never on
asyncio's default one where installation look-ups run, within a total deadline
(`CHECK_HTTP.deadline`, retries included), and at most a few at once per
workspace and in all (`CHECK_GATE`): a store answering a byte at a time holds
up only its own check, for seconds.

Addresses typed in the modal (the WooCommerce store's) must lead to a public
internet address: checked before the key check, and again at every connection
of every later sync (the credential is stored `guarded`; journey/sources/net.py).

Tests point a connector at a fake API through `deps.extra["connect_base_urls"]`
({kind: base URL}, the operator's choice, so not guarded) and
`deps.extra["connect_http"]` (HttpOptions).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Engine

from bot.blocks.connect import (
    CALLBACK_ID,
    LABELS,
    Submission,
    checking_modal,
    connect_modal,
    demo_refusal,
    notice_modal,
    read_submission,
)
from bot.blocks.help import error_message, in_dm
from bot.blocks.message import Message, section
from bot.commands.service import unexpected_message
from bot.deps import Deps
from bot.guard.access import CONNECT_REFUSAL, Viewer, authorized_workspace
from bot.listeners.replies import busy_message
from bot.posting.sync_progress import INTERVAL, admit, open_dm, start_sync
from bot.slack_errors import explain
from bot.work.pool import CHECK_GATE, CHECKS, Busy, in_pool, queued
from journey.db import session_scope
from journey.errors import JourneyError
from journey.secrets import Cipher
from journey.sources import connector_class, net
from journey.sources.http import (
    AddressBlocked,
    AuthError,
    HttpOptions,
    RateLimited,
    RetryPolicy,
    ScopeError,
    SourceError,
    Unreachable,
)
from journey.sources.manage import Credential, add_source
from journey.workspaces import demo_source

log = logging.getLogger("journey.bot")
CHECK_HTTP = HttpOptions(retry=RetryPolicy(attempts=3, total=20.0), deadline=30.0)
BUSY = (
    "Too many keys are being checked right now{where}, so this one was not: nothing was "
    "stored. Run `/journey connect` again in a minute."
)


async def open_connect_modal(
    client: AsyncWebClient,
    trigger_id: str,
    channel_id: str,
    who: Callable[[], Awaitable[Viewer]],
    demo_here: Callable[[], Awaitable[str | None]] | None = None,
) -> str | None:
    """Open the modal, then decide what it shows; None when that worked, else what went
    wrong in words.

    A trigger id opens a modal only within 3 seconds of the command, so `views.open`
    comes first, with a "Checking…" modal; `who()` (users.info, which a slow Slack can
    make take seconds) comes after, and `views.update` turns the modal into the form for
    an admin, or into one sentence for anyone else, or for an admin of a workspace that
    holds the demo store (`demo_here` gives that sentence, None when there is no demo)."""
    try:
        opened = await client.views_open(trigger_id=trigger_id, view=checking_modal())
    except SlackApiError as exc:
        if exc.response.get("error") in (
            "expired_trigger_id",
            "exchanged_trigger_id",
            "invalid_trigger_id",
        ):
            return "Slack took too long to open the form; please run `/journey connect` again."
        return f"I couldn't open the form. {explain(exc)}"
    view_id = str((opened.get("view") or {}).get("id") or "")
    viewer = await who()
    refusal = None
    if viewer.is_admin and demo_here is not None:
        try:
            refusal = await demo_here()
        except Exception as exc:  # the submission looks again, before the key is checked
            log.warning("connect: could not look for the demo store: %s", type(exc).__name__)
    if viewer.is_admin and refusal is None:
        view = connect_modal(channel_id)
    else:
        view = notice_modal(refusal or viewer.refusal() or CONNECT_REFUSAL)
    try:
        await client.views_update(view_id=view_id, view=view)
    except SlackApiError as exc:
        return f"I couldn't show the form. {explain(exc)}"
    return None


def demo_in(engine: Engine, team_id: str) -> str | None:
    """The sentence refusing a source for a workspace that holds the demo store, or None.
    Runs in a thread."""
    with session_scope(engine) as session:
        held = demo_source(session, team_id) is not None
    return demo_refusal(team_id) if held else None


def connect_source(
    engine: Engine,
    team_id: str,
    kind: str,
    name: str,
    credential: Credential,
    base_url: str | None = None,
    http: HttpOptions | None = None,
    added_by: str | None = None,
) -> tuple[bool, str]:
    """Check the credential with the API, then store it encrypted. Returns (ok, words).
    Runs in a thread. The words never contain the credential. `added_by` is told if a
    scheduled sync later pauses the source."""
    label = LABELS.get(kind, kind)
    try:
        cipher = Cipher.from_env()
    except JourneyError:
        return False, (
            f"The {label} key was not stored: the journey server has no encryption key "
            "(JOURNEY_SECRET_KEY). Ask your journey operator to set it, then try again."
        )
    try:  # before the key leaves for the API, as `journey sources add` does
        if demo_in(engine, team_id) is not None:
            return False, demo_refusal(team_id, submitted=True)
    except Exception:
        ref = uuid.uuid4().hex[:8]
        log.error("connect: looking for the demo store failed (ref %s)", ref)
        return False, f"Something went wrong before checking the key (reference `{ref}`)."
    options = http or CHECK_HTTP
    if base_url:  # the operator's (or a test's) address for this kind: not from Slack
        credential = Credential(credential.secret, credential.settings, base_url)
    else:  # every address in it was typed in Slack: public ones only, now and later
        credential = Credential(credential.secret, credential.settings, guarded=True)
        options = replace(options, guard=True)
    cls = connector_class(kind)
    try:
        if credential.guarded and credential.settings.get("url"):
            net.check_address(str(credential.settings["url"]))
        with cls(
            credential.secret,
            credential.settings,
            base_url=credential.base_url,
            http=options,
        ) as connector:
            notes = connector.check() or []
    except (net.AddressRefused, AddressBlocked) as exc:
        return False, f"The {label} source was not stored: {exc}"
    except ScopeError as exc:
        scope = f" It needs the `{exc.scope}` permission." if exc.scope else ""
        return False, (
            f"The {label} key works but is missing a permission (scope), so it was not "
            f"stored.{scope} Give the key read access and connect again."
        )
    except AuthError as exc:
        if exc.status == 403:
            return False, (
                f"{label} refused access with this key: it lacks a permission (scope) or was "
                "revoked. Nothing was stored; check the key's permissions and connect again."
            )
        return False, (
            f"{label} refused the key: it is wrong, expired or was revoked. Nothing was "
            "stored; copy the key again from its dashboard and connect again."
        )
    except (Unreachable, RateLimited) as exc:
        return False, f"I couldn't reach {label}, so nothing was stored. {exc}"
    except SourceError as exc:
        return False, f"{label} did not accept the check, so nothing was stored. {exc}"
    except Exception:
        ref = uuid.uuid4().hex[:8]
        # No exc_info: a connector's traceback could carry the credential in its locals' reprs.
        log.error("connect: checking a %s key failed unexpectedly (ref %s)", kind, ref)
        return False, f"Something went wrong checking the key (reference `{ref}`); nothing stored."
    try:
        with session_scope(engine) as session:
            _, created = add_source(
                session, team_id, kind, name, credential, cipher, added_by=added_by
            )
    except JourneyError as exc:
        return False, f"The {label} source was not stored: {exc}"
    except Exception:
        ref = uuid.uuid4().hex[:8]
        log.error("connect: storing a %s source failed (ref %s)", kind, ref)
        return False, f"Something went wrong storing the source (reference `{ref}`)."
    verb = "Connected" if created else "Updated the key of"
    return True, (
        f"{verb} {label} source *{name}*: the key was checked and is stored encrypted. "
        "Its data is being imported now (progress below); `/journey sync "
        f"{name}` imports what is new at any time."
        + "".join(f"\n:warning: {note}" for note in notes)
    )


def result_message(ok: bool, text: str) -> Message:
    if not ok:
        return error_message(text)
    return Message(text.replace("*", ""), [section(f":white_check_mark: {text}")])


async def _dm(client: AsyncWebClient, user: str, message: Message) -> None:
    try:
        dm = await client.conversations_open(users=user)
        await client.chat_postMessage(channel=dm["channel"]["id"], **in_dm(message).payload())
    except SlackApiError as exc:
        log.warning("connect: could not DM the result: %s", exc.response.get("error"))


async def _first_sync(
    deps: Deps, client: AsyncWebClient, team_id: str, user: str, kind: str, name: str
) -> None:
    """Start the new source's first sync in the background, its progress in a DM."""
    try:
        targets = await queued(team_id, deps.service.sources_to_sync, team_id, name)
    except Busy as exc:
        what = "the first import did not start (`/journey sync` starts it)"
        await _dm(client, user, busy_message(what, exc.why))
        return
    except Exception as exc:
        await _dm(client, user, unexpected_message(exc))
        return
    targets = [t for t in targets if t.kind == kind]
    channel = await open_dm(client, user)
    if not targets or channel is None:
        return
    admission = admit(deps.service, team_id, targets)
    if isinstance(admission, str):
        await _dm(
            client,
            user,
            error_message(
                f"The first import did not start now: {admission} `/journey sync` starts it."
            ),
        )
        return
    interval = deps.extra.get("sync_progress_interval", INTERVAL)
    start_sync(
        client,
        deps.service,
        admission.targets,
        channel,
        interval=float(interval) if isinstance(interval, int | float) else INTERVAL,
        admission=admission,
    )


def register(app: AsyncApp, deps: Deps) -> None:
    raw_urls = deps.extra.get("connect_base_urls")
    base_urls: dict[str, str] = dict(raw_urls) if isinstance(raw_urls, dict) else {}
    http = deps.extra.get("connect_http")
    http_options = http if isinstance(http, HttpOptions) else None

    async def connect_submitted(
        ack: AsyncAck,
        body: dict[str, Any],
        view: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        submission: Submission = read_submission(view)
        if submission.errors:
            await ack(response_action="errors", errors=submission.errors)
            return
        await ack()
        # The workspace Bolt authorized: under Slack Connect the payload's team may be
        # another organization's, and the source must land where the admin check held.
        team_id = authorized_workspace(context)
        user = (body.get("user") or {}).get("id") or ""
        viewer = await deps.guard.viewer(client, context, user)
        if not viewer.is_admin:
            await _dm(client, user, error_message(viewer.refusal() or CONNECT_REFUSAL))
            return
        assert submission.credential is not None
        if not CHECK_GATE.enter(team_id):
            where = " for this workspace" if CHECK_GATE.running(team_id) else ""
            await _dm(client, user, error_message(BUSY.format(where=where)))
            return
        try:
            ok, text = await in_pool(
                CHECKS,
                connect_source,
                deps.service.engine,
                team_id,
                submission.kind,
                submission.name,
                submission.credential,
                base_urls.get(submission.kind),
                http_options,
                user or None,
            )
        finally:
            CHECK_GATE.leave(team_id)
        log.info(
            "connect: %s source for team %s: %s",
            submission.kind,
            team_id,
            "ok" if ok else "refused",
        )
        await _dm(client, user, result_message(ok, text))
        if ok:
            await _first_sync(deps, client, team_id, user, submission.kind, submission.name)

    app.view(CALLBACK_ID)(connect_submitted)
