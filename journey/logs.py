"""Logging for every entry point: one handler on the root logger, a level that can be raised.

`logging.basicConfig` does nothing once the root logger has a handler, so the CLI's
WARNING default (set first, in `journey.cli.main`) used to silence the bot's later
INFO request: `journey serve` logged nothing at all. Here the handler is installed
once and each call only sets the level, so `journey serve`, `journey
bot`, uvicorn's worker processes (`bot.run.asgi_from_env`) and the tests all get
the same format and the level their mode asks for. JOURNEY_LOG_LEVEL overrides it.

Secrets never reach the log: the handler's filter blanks anything shaped like a
Slack token, a Shopify/Stripe key, a bearer token, a password in a database URL or
a URL's query string (signed download links carry their signature there: Shopify's
bulk result URL opens the whole store for days), whatever a message or an exception
text carries.

Libraries that log what they send are capped whatever the level: httpx logs every
request's full URL at INFO (and httpcore its headers at DEBUG), so both stay at
WARNING and journey's HTTP clients log their own line instead (`http_hooks`: method,
URL without its query, status, at DEBUG); slack_sdk and Bolt log request parameters
(client secrets, refresh tokens) and whole response bodies (customers' names and
emails) at DEBUG, so they stay at INFO.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_NAME = "journey"

# Token shapes: Slack (xoxb-, xoxp-, xapp-, xoxe-...), Shopify (shpat_, shpss_...),
# Stripe (sk_live_, rk_test_...), HubSpot private apps (pat-na1-...), bearer headers, and
# the password part of a URL (postgresql://user:secret@host).
_SECRETS = re.compile(
    r"(xox[abposre]-[A-Za-z0-9-]{6,}|xapp-[A-Za-z0-9-]{6,}|shp[a-z]{2}_[A-Za-z0-9]{8,}"
    r"|[sr]k_(?:live|test)_[A-Za-z0-9]{6,}|pat-[a-z]{2}\d-[A-Za-z0-9-]{8,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,})"
)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
# A URL's query string, up to whitespace, a quote or a bracket (how URLs end in messages).
_URL_QUERY = re.compile(r"""(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?#"'<>]*)\?[^\s#"'<>]*""")

# Loggers whose own lines carry secrets below this level (see the module docstring).
LIBRARY_FLOORS = {
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "hpack": logging.WARNING,
    "slack_sdk": logging.INFO,
    # Its "A retry handler found: ... Cannot connect to host" repeats, at INFO with the
    # URL, the retry line journey logs itself (bot/retries.py: "retry 1 of 2").
    "slack_sdk.web.async_base_client": logging.WARNING,
    "slack_bolt": logging.INFO,
}

http_log = logging.getLogger("journey.http")


def redact(text: str) -> str:
    """`text` with every secret-shaped part replaced by [redacted]."""
    text = _URL_QUERY.sub(r"\1?[redacted]", text)
    return _URL_PASSWORD.sub(r"\1[redacted]@", _SECRETS.sub("[redacted]", text))


def safe_url(url: object) -> str:
    """`url` as it may be logged: scheme, host, port and path; no user, password,
    query or fragment."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def http_hooks(service: str) -> dict[str, list[Callable[[Any], None]]]:
    """httpx event hooks that log each response as one safe DEBUG line (httpx's own
    line, with the full URL, is silenced by `configure`)."""

    def response(answer: Any) -> None:
        request = answer.request
        http_log.debug(
            "%s %s %s -> %s",
            service,
            request.method,
            safe_url(request.url),
            answer.status_code,
        )

    return {"response": [response]}


class RedactSecrets(logging.Filter):
    """Formats the record's message (and its exception text) once and blanks secrets in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def _level(default: int) -> int:
    raw = os.environ.get("JOURNEY_LOG_LEVEL", "").strip().upper()
    if raw and isinstance(logging.getLevelName(raw), int):
        return int(logging.getLevelName(raw))
    return default


def configure(level: int = logging.WARNING) -> None:
    """Install journey's handler on the root logger (once) and set the level; call it
    again to change the level (the bot asks for INFO after the CLI's WARNING).

    JOURNEY_LOG_LEVEL (DEBUG, INFO, WARNING...) wins over `level`."""
    root = logging.getLogger()
    if not any(h.get_name() == _HANDLER_NAME for h in root.handlers):
        handler = logging.StreamHandler()
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(RedactSecrets())
        root.addHandler(handler)
    root.setLevel(_level(level))
    for name, floor in LIBRARY_FLOORS.items():
        logging.getLogger(name).setLevel(floor)
