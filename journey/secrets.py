"""Encryption of secrets at rest (Slack tokens, source credentials).

A database dump or backup must not hand out working Slack tokens, so every
secret is stored as Fernet ciphertext (AES-128-CBC + HMAC-SHA256, with a
timestamp) and only the running process, which holds the key, can read it.

The key comes from JOURNEY_SECRET_KEY. It may hold several comma-separated
Fernet keys to rotate keys without downtime: the first one encrypts, all of
them decrypt. To rotate, put a new key first and keep the old one after it
(`JOURNEY_SECRET_KEY=new,old`); once everything has been re-encrypted with
`Cipher.rotate` (or rewritten by a normal token refresh), drop the old key.

A secret is bound to the row that holds it: `encrypt(value, bound_to=identity)`
seals the row's identity (for example `source:W1:stripe:shop`) together with the
value, and `decrypt(blob, bound_to=identity)` refuses a value sealed for another
row with SecretMisplaced. Fernet authenticates the whole plaintext, so the
identity cannot be changed without the key: a blob copied from one workspace's
row into another's no longer opens. Values written before binding existed (the
first format: the bare secret) still decrypt; `journey.secret_rows.bind_legacy`
rewrites them bound, and every new write is bound.

Nothing in this module logs or repeats a key or a plaintext, not even in
error messages or reprs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from journey.errors import JourneyError

SECRET_KEY_ENV = "JOURNEY_SECRET_KEY"
# Runs in the project's environment, where cryptography is installed (a bare python3 -c
# one-liner failed on a fresh Python without it).
MAKE_KEY_COMMAND = "python3 run.py journey secret-key"

log = logging.getLogger(__name__)


#: Marks the bound format inside the ciphertext: the marker, the row's identity,
#: NUL, the secret. The first format (the bare secret) has no marker.
BOUND_MARKER = b"journey-bound-v2\x00"


class SecretUnreadable(JourneyError):
    """A stored secret cannot be used: the key changed, or it belongs to another row."""


class SecretKeyChanged(SecretUnreadable):
    """Stored ciphertext does not open with any configured key.

    A subclass so callers can tell "the key is wrong" (operator must restore the
    key or re-enter the secret) apart from other JourneyErrors.
    """


class SecretMisplaced(SecretUnreadable):
    """Stored ciphertext opens, but was sealed for another row (copied or moved in the
    database): it is not used."""


class Cipher:
    """Encrypts and decrypts short secrets with the configured Fernet key(s).

    Build it with `Cipher.from_env()` in the application, or `Cipher([key])`
    in tests. The object is immutable and safe to share between threads.
    """

    __slots__ = ("_fernet", "_key_count")

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if not keys:
            raise JourneyError(_missing_key_message())
        fernets: list[Fernet] = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip()))
            except (ValueError, TypeError):
                # Never echo the key itself: a near-miss may still be a real secret.
                which = f"key {position} of {len(keys)}" if len(keys) > 1 else "the key"
                raise JourneyError(
                    f"{SECRET_KEY_ENV} is malformed ({which} is not a Fernet key: it must be "
                    f"32 url-safe base64-encoded bytes). Make a new one with:\n  {MAKE_KEY_COMMAND}"
                ) from None
        self._fernet = MultiFernet(fernets)
        self._key_count = len(fernets)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, allow_ephemeral: bool = False
    ) -> Cipher:
        """The cipher for JOURNEY_SECRET_KEY (comma-separated keys, first one encrypts).

        Without a key this raises a JourneyError that says how to make one,
        because anything encrypted with a made-up key is lost at the next restart
        (and other replicas could never read it). `allow_ephemeral=True` is for
        throw-away local runs and tests only: it then uses a random per-process
        key and logs a warning. The bot never passes it when it stores tokens.

        `environ` defaults to `os.environ`; call `journey.config.load_settings()`
        first if the key lives in `.env`.
        """
        env = os.environ if environ is None else environ
        raw = env.get(SECRET_KEY_ENV, "")
        keys = [part.strip() for part in raw.split(",") if part.strip()]
        if not keys:
            if allow_ephemeral:
                log.warning(
                    "%s is not set: using a throw-away key, so secrets stored now "
                    "cannot be read after this process exits",
                    SECRET_KEY_ENV,
                )
                return cls([Fernet.generate_key()])
            raise JourneyError(_missing_key_message())
        return cls(keys)

    @staticmethod
    def generate_key() -> str:
        """A fresh random key, in the form JOURNEY_SECRET_KEY expects."""
        return Fernet.generate_key().decode()

    def encrypt(self, plaintext: str, *, bound_to: str | None = None) -> bytes:
        """Ciphertext for `plaintext`, always with the first (newest) key; with
        `bound_to`, sealed together with that row identity (see the module docstring)."""
        data = plaintext.encode("utf-8")
        if bound_to is not None:
            data = BOUND_MARKER + _identity(bound_to) + b"\x00" + data
        return self._fernet.encrypt(data)

    def decrypt(self, ciphertext: bytes, *, bound_to: str | None = None) -> str:
        """The plaintext; SecretKeyChanged if no configured key opens it, SecretMisplaced
        if it was sealed for another row than `bound_to`. A value of the first, unbound
        format opens for any row (see `is_bound`)."""
        data = self._open(ciphertext)
        if not data.startswith(BOUND_MARKER):
            return data.decode("utf-8")
        identity, _, secret = data[len(BOUND_MARKER) :].partition(b"\x00")
        if bound_to is None or identity != _identity(bound_to):
            raise _misplaced(bound_to)
        return secret.decode("utf-8")

    def is_bound(self, ciphertext: bytes) -> bool:
        """Whether the value is sealed to a row (False: the first format, to be rebound)."""
        return self._open(ciphertext).startswith(BOUND_MARKER)

    def _open(self, ciphertext: bytes) -> bytes:
        try:
            return self._fernet.decrypt(bytes(ciphertext))
        except InvalidToken:
            raise _key_changed() from None

    def rotate(self, ciphertext: bytes) -> bytes:
        """Re-encrypt `ciphertext` with the first key (for retiring an old key)."""
        try:
            return self._fernet.rotate(bytes(ciphertext))
        except InvalidToken:
            raise _key_changed() from None

    def __repr__(self) -> str:
        return f"Cipher(keys={self._key_count})"

    def __reduce__(self) -> str | tuple[object, ...]:
        # Refuse pickling: a pickled cipher would carry the keys to wherever it goes.
        raise TypeError("Cipher holds secret keys and cannot be pickled")


def _identity(bound_to: str) -> bytes:
    data = bound_to.encode("utf-8")
    if b"\x00" in data:
        raise ValueError("a row identity cannot contain NUL")
    return data


def _misplaced(bound_to: str | None) -> SecretMisplaced:
    where = f" ({bound_to})" if bound_to else ""
    return SecretMisplaced(
        f"A stored secret was sealed for another row than the one holding it{where}: it was "
        "copied or moved in the database, so it is not used. Enter the credential again "
        "(`journey sources add`, or /journey connect) or reinstall the Slack app."
    )


def _key_changed() -> SecretKeyChanged:
    return SecretKeyChanged(
        "Cannot decrypt a stored secret: the secret key changed (none of the keys in "
        f"{SECRET_KEY_ENV} is the one it was encrypted with). Put the old key back, or "
        f"list it after the new one ({SECRET_KEY_ENV}=new,old) so old secrets still "
        "decrypt; otherwise reinstall the Slack app or enter the credentials again."
    )


def _missing_key_message() -> str:
    return (
        f"{SECRET_KEY_ENV} is not set. journey encrypts Slack tokens and credentials with it. "
        f"Make one with:\n  {MAKE_KEY_COMMAND}\n"
        f"and put it in the environment or .env as {SECRET_KEY_ENV}=<the key>. Keep it "
        "secret and keep it safe: without it the stored tokens cannot be read."
    )
