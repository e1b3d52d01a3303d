"""Signed requests as Slack sends them to an app in HTTP mode.

Why: in HTTP mode every request Bolt receives must carry a valid
`X-Slack-Signature` (HMAC-SHA256 of `v0:{timestamp}:{raw body}` with the signing
secret) and a fresh `X-Slack-Request-Timestamp`, and its body must be shaped exactly
as Slack shapes it (slash commands form-encoded; interactions as a form field
`payload=<json>`; events as JSON). These builders produce those bodies with Slack's
documented field names, so tests drive the bot's real request parsing and
signature checking rather than calling listeners directly.

Each builder returns `(body, content_type)`; sign it with `signed_headers(body,
content_type, secret)` and send both (over HTTP, or as `AsyncBoltRequest(body=...,
headers=...)`).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from fakes.slack_api import DEFAULT_APP_ID, DEFAULT_BOT_ID, DEFAULT_BOT_USER_ID

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
#: The legacy verification token Slack still includes; Bolt ignores it unless configured.
VERIFICATION_TOKEN = "fake-verification-token"

_seq = itertools.count(1)


def sign(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's signature headers for `body`: `X-Slack-Request-Timestamp` (now unless
    given; Bolt rejects ones over 5 minutes old) and `X-Slack-Signature` (`v0=<hex>`)."""
    ts = int(time.time()) if timestamp is None else timestamp
    base = b"v0:" + str(ts).encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}


def signed_headers(
    body: bytes, content_type: str, secret: str, timestamp: int | None = None
) -> dict[str, str]:
    """`sign()` plus the `Content-Type` Slack sends with that body."""
    return {"Content-Type": content_type, **sign(body, secret, timestamp)}


def new_trigger_id() -> str:
    """A fresh, unique trigger id shaped like Slack's (`<digits>.<digits>.<hex>`)."""
    return f"{next(_seq)}.{int(time.time())}.{secrets.token_hex(16)}"


def _user(user_id: str, team_id: str, user_name: str) -> dict[str, Any]:
    return {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id}


def slash_command(
    text: str,
    *,
    team_id: str,
    user_id: str,
    channel_id: str,
    response_url: str,
    command: str = "/journey",
    trigger_id: str | None = None,
    team_domain: str = "journey-test",
    channel_name: str = "general",
    user_name: str = "alice",
    api_app_id: str = DEFAULT_APP_ID,
    enterprise_id: str | None = None,
    enterprise_name: str | None = None,
) -> tuple[bytes, str]:
    """A slash command invocation, form-encoded with Slack's fields and order."""
    fields: dict[str, str] = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": team_domain,
    }
    if enterprise_id is not None:
        fields["enterprise_id"] = enterprise_id
        fields["enterprise_name"] = enterprise_name or enterprise_id
    fields.update(
        {
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": api_app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id or new_trigger_id(),
        }
    )
    return urlencode(fields).encode(), FORM


def block_actions(
    action_id: str,
    value: str,
    *,
    team_id: str,
    user_id: str,
    channel_id: str | None,
    response_url: str | None,
    block_id: str = "journey",
    message: dict[str, Any] | None = None,
    view: dict[str, Any] | None = None,
    action_type: str = "button",
    text: str = "Button",
    trigger_id: str | None = None,
    team_domain: str = "journey-test",
    channel_name: str = "general",
    user_name: str = "alice",
    api_app_id: str = DEFAULT_APP_ID,
) -> tuple[bytes, str]:
    """A `block_actions` interaction as form field `payload=<json>`.

    With `message` (its `ts` is used) the click came from that message; with a
    `channel_id` but no message, from an ephemeral message; with `channel_id=None`,
    from a view such as the Home tab (`view`), which carries no response URL.
    """
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id,
        "type": action_type,
        "action_ts": f"{time.time():.6f}",
    }
    if action_type == "button":
        action["text"] = {"type": "plain_text", "text": text, "emoji": True}
        action["value"] = value
    else:
        action["selected_option"] = {"text": {"type": "plain_text", "text": text}, "value": value}
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(user_id, team_id, user_name),
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id or new_trigger_id(),
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
    }
    if channel_id is None:
        view = view or {"id": "V0FAKEHOME", "type": "home", "blocks": []}
        payload["container"] = {"type": "view", "view_id": view.get("id", "V0FAKEHOME")}
        payload["view"] = view
    else:
        ts = (message or {}).get("ts") or f"{time.time():.6f}"
        payload["container"] = {
            "type": "message",
            "message_ts": ts,
            "channel_id": channel_id,
            "is_ephemeral": message is None,
        }
        payload["channel"] = {"id": channel_id, "name": channel_name}
        if message is not None:
            payload["message"] = message
    payload["state"] = {"values": {}}
    if response_url is not None:
        payload["response_url"] = response_url
    payload["actions"] = [action]
    return urlencode({"payload": json.dumps(payload)}).encode(), FORM


def view_submission(
    callback_id: str,
    values: dict[str, dict[str, dict[str, Any]]],
    *,
    team_id: str,
    user_id: str,
    private_metadata: str = "",
    view_id: str = "V0FAKEMODAL",
    blocks: list[dict[str, Any]] | None = None,
    response_urls: list[dict[str, Any]] | None = None,
    trigger_id: str | None = None,
    team_domain: str = "journey-test",
    user_name: str = "alice",
    api_app_id: str = DEFAULT_APP_ID,
) -> tuple[bytes, str]:
    """A modal's `view_submission` as form field `payload=<json>`.

    `values` is the view state: `{block_id: {action_id: {"type": ..., "value": ...}}}`.
    """
    payload = {
        "type": "view_submission",
        "team": {"id": team_id, "domain": team_domain},
        "user": _user(user_id, team_id, user_name),
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id or new_trigger_id(),
        "view": {
            "id": view_id,
            "team_id": team_id,
            "type": "modal",
            "blocks": blocks or [],
            "private_metadata": private_metadata,
            "callback_id": callback_id,
            "state": {"values": values},
            "hash": f"{int(time.time())}.fakehash",
            "title": {"type": "plain_text", "text": "Journey"},
            "clear_on_close": False,
            "notify_on_close": False,
            "close": None,
            "submit": {"type": "plain_text", "text": "Save"},
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": api_app_id,
            "external_id": "",
            "app_installed_team_id": team_id,
            "bot_id": DEFAULT_BOT_ID,
        },
        "response_urls": response_urls or [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return urlencode({"payload": json.dumps(payload)}).encode(), FORM


def event_callback(
    event: dict[str, Any],
    team_id: str,
    *,
    api_app_id: str = DEFAULT_APP_ID,
    bot_user_id: str = DEFAULT_BOT_USER_ID,
    event_id: str | None = None,
    event_time: int | None = None,
) -> tuple[bytes, str]:
    """An Events API `event_callback` envelope around `event`, as JSON."""
    now = int(time.time()) if event_time is None else event_time
    envelope = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_seq):010d}",
        "event_time": now,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-fake-{next(_seq)}",
    }
    return json.dumps(envelope).encode(), JSON


def app_home_opened(
    user_id: str,
    *,
    tab: str = "home",
    channel: str | None = None,
    view: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `app_home_opened` event (wrap it with `event_callback`)."""
    event: dict[str, Any] = {
        "type": "app_home_opened",
        "user": user_id,
        "channel": channel or "D" + user_id[1:],
        "tab": tab,
        "event_ts": f"{time.time():.6f}",
    }
    if view is not None:
        event["view"] = view
    return event


def url_verification(challenge: str) -> tuple[bytes, str]:
    """The handshake Slack sends when the Events request URL is saved."""
    body = {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}
    return json.dumps(body).encode(), JSON
