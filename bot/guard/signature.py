"""Slack's request signature, checked on the raw bytes.

Slack signs `v0:{X-Slack-Request-Timestamp}:{raw body}` with HMAC-SHA256 and
the app's signing secret, and sends `X-Slack-Signature: v0=<hex>`; a request
whose timestamp is more than five minutes from now is a replay
(https://docs.slack.dev/authentication/verifying-requests-from-slack/).

slack_sdk's SignatureVerifier decodes the body as UTF-8 before hashing it, so a
body that is not UTF-8 raises instead of failing the check; this module hashes
the bytes as received. The timestamp is checked first, from the headers alone,
so an unsigned or stale request is refused before its body is read.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

#: Slack's replay window.
MAX_AGE_SECONDS = 5 * 60


class Signature:
    """Checks requests against one signing secret (never logged, never in repr)."""

    __slots__ = ("_now", "_secret")

    def __init__(self, signing_secret: str, now: Callable[[], float] = time.time) -> None:
        if not signing_secret.strip():
            raise ValueError("a signing secret is required to verify Slack's requests")
        self._secret = signing_secret.encode("utf-8")
        self._now = now

    def headers_problem(self, timestamp: str | None, signature: str | None) -> str | None:
        """Why the headers alone already fail (None: the body decides)."""
        if not timestamp or not signature:
            return "unsigned"
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            return "malformed timestamp"
        if abs(self._now() - int(timestamp)) > MAX_AGE_SECONDS:
            return "stale timestamp"
        if not signature.startswith("v0="):
            return "malformed signature"
        return None

    def valid(self, body: bytes, timestamp: str, signature: str) -> bool:
        """True if `signature` is Slack's for exactly these bytes and this timestamp."""
        if self.headers_problem(timestamp, signature) is not None:
            return False
        base = b"v0:" + timestamp.encode("ascii") + b":" + body
        expected = "v0=" + hmac.new(self._secret, base, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace"))

    def __repr__(self) -> str:
        return "Signature(<secret>)"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("Signature holds the signing secret and cannot be pickled")
