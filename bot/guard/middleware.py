"""The ASGI middleware in front of Bolt's handler: limits, then the signature, then shape.

Order matters, cheapest refusal first:

0. more requests in flight than `Limits.max_in_flight`: 503 at once (/healthz, answered
   before the guard, is never counted, so it stays 200 under a flood);
1. a declared `Content-Length` over the cap: 413 without reading a byte of the body;
2. no signature headers, or a timestamp outside Slack's five-minute window: 401, unread;
3. the body, read chunk by chunk up to the cap (413 as soon as it is passed)
   and within a deadline (408 when the sender is too slow);
4. the HMAC over the raw bytes: 401 if it does not match;
5. the body's shape, now that Slack signed it: a JSON object, or a form whose
   `payload` is a JSON object, as Bolt expects; anything else (`[1]`, `null`,
   JSON nested past Python's recursion limit, bytes that are not UTF-8) is a
   plain 400, never a 500.

Every refusal is one WARNING line (no body, no headers, no traceback) and a
short plain-text answer with `Connection: close`, so uvicorn drops the
connection instead of reading whatever the sender still pushes. Only then does
Bolt's handler get the request, replayed from the bytes already read; Bolt
checks the signature again, which costs one more HMAC over at most 1 MiB.

Only `POST` to the events path carries Slack's signed requests. Other paths
(`/slack/install`, `/slack/oauth_redirect`, anything unknown) are browser GETs
whose bodies Bolt never reads; they get the size check on `Content-Length` and
pass through.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from bot.guard.limits import DEFAULT_LIMITS, Limits
from bot.guard.signature import Signature

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("journey.bot.guard")

EVENTS_PATH = "/slack/events"


class Refused(Exception):
    """A request turned away before it reached Bolt: its status and a short reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class ClientGone(Exception):
    """The sender closed the connection before its body was complete."""


_ANSWERS = {
    400: b"bad request",
    401: b"invalid request",
    408: b"request body too slow",
    413: b"request body too large",
    503: b"busy, try again",
}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _declared_length(scope: Scope) -> int | None:
    raw = _header(scope, b"content-length")
    if raw is None:
        return None
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 15:
        raise Refused(400, "malformed Content-Length")
    return int(raw)


async def read_body(receive: Receive, limits: Limits) -> bytes:
    """The whole body, or Refused(413) past the cap / Refused(408) past the deadline."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(limits.body_seconds):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limits.max_body_bytes:
                    raise Refused(413, f"body over {limits.max_body_bytes} bytes")
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
    except TimeoutError:
        raise Refused(408, f"body not complete after {limits.body_seconds:g} s") from None


def shape_problem(body: bytes, content_type: str | None) -> str | None:
    """Why a signed body is not one Bolt can route (None: it is).

    Mirrors Bolt's own parsing (slack_bolt.request.internals.parse_body): JSON
    when the type says so or the body starts with `{`, else a form, whose
    `payload` field, when present, is JSON. Bolt needs a JSON object each time.
    """
    if not body:
        return None
    try:
        text = body.decode("utf-8")
        media = (content_type or "").split(";")[0].strip().lower()
        if media == "application/json" or text.startswith("{"):
            parsed: object = json.loads(text)
        elif "payload" in text:
            payload = dict(parse_qsl(text, keep_blank_values=True)).get("payload")
            parsed = {} if payload is None else json.loads(payload)
        else:
            parse_qsl(text, keep_blank_values=True)
            return None
    except UnicodeDecodeError:
        return "body is not UTF-8"
    except RecursionError:
        return "JSON nested too deeply"
    except ValueError:
        return "body does not parse"
    if not isinstance(parsed, dict):
        return f"JSON {type(parsed).__name__} where an object was expected"
    return None


async def refuse(send: Send, status: int) -> None:
    """A short plain-text answer that also closes the connection."""
    body = _ANSWERS.get(status, b"refused")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands over the body already read, then defers to the server."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def guard(
    app: ASGIApp,
    signing_secret: str,
    *,
    limits: Limits = DEFAULT_LIMITS,
    events_path: str = EVENTS_PATH,
    now: Callable[[], float] | None = None,
) -> ASGIApp:
    """`app` behind the limits and Slack's signature (see the module docstring)."""
    signature = Signature(signing_secret) if now is None else Signature(signing_secret, now)
    in_flight = 0

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal in_flight
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        if in_flight >= limits.max_in_flight:
            await _refuse(scope, send, Refused(503, f"{in_flight} requests already in flight"))
            return
        in_flight += 1
        try:
            await _guarded(scope, receive, send)
        finally:
            in_flight -= 1

    async def _guarded(scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope.get("method", ""), scope.get("path", "")
        try:
            declared = _declared_length(scope)
            if declared is not None and declared > limits.max_body_bytes:
                raise Refused(413, f"declared body of {declared} bytes")
            if method != "POST" or path != events_path:
                await app(scope, receive, send)
                return
            timestamp = _header(scope, b"x-slack-request-timestamp")
            signed = _header(scope, b"x-slack-signature")
            problem = signature.headers_problem(timestamp, signed)
            if problem is not None:
                raise Refused(401, problem)
            body = await read_body(receive, limits)
            if not signature.valid(body, timestamp or "", signed or ""):
                raise Refused(401, "signature does not match")
            problem = shape_problem(body, _header(scope, b"content-type"))
            if problem is not None:
                raise Refused(400, problem)
        except ClientGone:
            return
        except Refused as refused:
            await _refuse(scope, send, refused)
            return
        await app(scope, _replay(body, receive), send)

    return guarded


async def _refuse(scope: Scope, send: Send, refused: Refused) -> None:
    """The one log line and the short answer of a refusal."""
    client = (scope.get("client") or ("?",))[0]
    log.warning(
        "refused %s %s from %s with %s: %s",
        scope.get("method", ""),
        scope.get("path", ""),
        client,
        refused.status,
        refused.reason,
    )
    await refuse(send, refused.status)
