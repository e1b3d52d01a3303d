"""OAuth `state` values that cost nothing to hand out: signed, expiring, used once.

`/slack/install` is public: anyone may load it as often as they like. A state
kept in the database (as journey did before) made every
such GET an INSERT, a write-lock contender on SQLite. Here issuing writes
nothing: the state is `nonce.expiry.signature`, an HMAC-SHA256 over the nonce
and expiry with a key derived from the app's client secret (which every replica
has), so any replica can check it on the redirect. Bolt also binds the state to
the browser with its state cookie and refuses a redirect whose cookie does not
match.

Only a state that passes the signature and expiry checks reaches the database,
on the redirect back from Slack: its nonce is recorded in `slack_oauth_state`,
and a second use of the same state (a replayed redirect, on any replica) finds
it there and is refused. Expired nonces are swept on the same write.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
from datetime import UTC, datetime
from typing import Any

from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import IntegrityError

from bot.install.installations import STATES, Clock, utcnow

#: Bolt's own default lifetime of an OAuth state.
EXPIRATION_SECONDS = 600
_MAX_STATE = 200


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class SignedOAuthStateStore(AsyncOAuthStateStore):
    """Bolt's state store: nothing stored when issuing, the nonce recorded once used."""

    def __init__(
        self,
        engine: Engine,
        client_secret: str,
        *,
        expiration_seconds: int = EXPIRATION_SECONDS,
        clock: Clock = utcnow,
        logger: logging.Logger | None = None,
    ) -> None:
        if not client_secret:
            raise ValueError("signing OAuth states needs the app's client secret")
        self.engine = engine
        self.expiration_seconds = expiration_seconds
        self.clock = clock
        self._logger = logger or logging.getLogger(__name__)
        # A key of its own, derived from the client secret, so a state signature can
        # never stand in for anything else signed with that secret.
        self._key = hashlib.sha256(b"journey oauth state\x00" + client_secret.encode()).digest()

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    def _signature(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest())

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        """A fresh state; no I/O at all."""
        expires = int(self.clock().timestamp()) + self.expiration_seconds
        body = f"{secrets.token_urlsafe(18)}.{expires}"
        return f"{body}.{self._signature(body)}"

    async def async_consume(self, state: str) -> bool:
        """True once for a state this app signed and that has not expired."""
        nonce = self._verified_nonce(state)
        if nonce is None:
            return False
        return await asyncio.to_thread(self._record_once, nonce)

    def _verified_nonce(self, state: str) -> str | None:
        if not state or len(state) > _MAX_STATE or not state.isascii():
            self._logger.info("OAuth state rejected: malformed")
            return None
        body, _, signature = state.rpartition(".")
        nonce, _, expires = body.partition(".")
        if not hmac.compare_digest(signature.encode(), self._signature(body).encode()):
            self._logger.info("OAuth state rejected: not signed by this app")
            return None
        if not expires.isdigit() or int(expires) <= self.clock().timestamp():
            self._logger.info("OAuth state rejected: expired")
            return None
        return nonce

    def _record_once(self, nonce: str) -> bool:
        now = self.clock()
        expires_at = datetime.fromtimestamp(now.timestamp() + self.expiration_seconds, UTC)
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(STATES).where(STATES.c.expires_at <= now))
                conn.execute(insert(STATES).values(state=nonce, expires_at=expires_at))
        except IntegrityError:
            self._logger.info("OAuth state rejected: already used")
            return False
        return True
