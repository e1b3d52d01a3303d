"""Logging for every entry point: one handler on the root logger, a level that can be raised.

`logging.basicConfig` does nothing once the root logger has a handler, so the CLI's
WARNING default (set first, in `journey.cli.main`) used to silence the bot's later
INFO request: `journey serve` logged nothing at all. Here the handler is installed
once and each call only sets the level, so `journey serve`, `journey
bot`, uvicorn's worker processes (`bot.server.asgi_from_env`) and the tests all get
the same format and the level their mode asks for. JOURNEY_LOG_LEVEL overrides it.

Secrets never reach the log: the handler's filter blanks anything shaped like a
Slack token, a Shopify/Stripe key, a bearer token or a password in a database URL,
whatever a message or an exception text carries.
"""

from __future__ import annotations

import logging
import os
import re

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


def redact(text: str) -> str:
    """`text` with every secret-shaped part replaced by [redacted]."""
    return _URL_PASSWORD.sub(r"\1[redacted]@", _SECRETS.sub("[redacted]", text))


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
