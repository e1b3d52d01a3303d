"""Which row each stored secret belongs to, and rebinding secrets stored before binding.

Every encrypted value is sealed with the identity of the row that holds it
(journey.secrets): a source's credential with its workspace, kind and name; a
Slack installation's tokens with the installation's key and the column. The
identities are defined here, in one place, so the code that writes a secret and
the code that reads it can never disagree.

Values written by earlier versions carry no identity. They still open, and
`bind_legacy` (run by `journey db upgrade` and at the bot's start when
JOURNEY_SECRET_KEY is set) rewrites them bound, after which a blob moved to
another row no longer opens there.
"""

from __future__ import annotations

import logging
import os

from sqlalchemy import Engine, Table, select, update

from journey.models.installation import SlackInstallation
from journey.models.source import Source
from journey.secrets import SECRET_KEY_ENV, Cipher, SecretUnreadable

log = logging.getLogger(__name__)

SOURCES: Table = Source.__table__  # type: ignore[attr-defined]
INSTALLATIONS: Table = SlackInstallation.__table__  # type: ignore[attr-defined]
TOKEN_COLUMNS = ("bot_token", "bot_refresh_token")


def source_identity(workspace_id: str, kind: str, name: str) -> str:
    """The identity a source's credential is sealed with."""
    return f"source:{workspace_id}:{kind}:{name}"


def installation_identity(key: str, column: str) -> str:
    """The identity of a Slack installation's token (`column`: bot_token or
    bot_refresh_token, so the two cannot be swapped either)."""
    return f"slack_installation:{key}:{column}"


def bind_legacy(engine: Engine, cipher: Cipher) -> int:
    """Rewrite every unbound secret (the first format) bound to its row; returns how
    many were rewritten. Values that do not open (another key) are left alone and
    counted out in the log: they fail with their own error where they are used."""
    rebound = 0
    with engine.begin() as conn:
        rows = conn.execute(
            select(
                SOURCES.c.id,
                SOURCES.c.workspace_id,
                SOURCES.c.kind,
                SOURCES.c.name,
                SOURCES.c.credentials,
            ).where(SOURCES.c.credentials.is_not(None))
        ).all()
        for row in rows:
            identity = source_identity(row.workspace_id, row.kind, row.name)
            sealed = _rebound(cipher, bytes(row.credentials), identity)
            if sealed is not None:
                conn.execute(
                    update(SOURCES)
                    .where(SOURCES.c.id == row.id, SOURCES.c.credentials == row.credentials)
                    .values(credentials=sealed)
                )
                rebound += 1
        rows = conn.execute(
            select(INSTALLATIONS.c.id, *(INSTALLATIONS.c[c] for c in TOKEN_COLUMNS))
        ).all()
        for row in rows:
            for column in TOKEN_COLUMNS:
                value = row._mapping[column]
                if value is None:
                    continue
                identity = installation_identity(row.id, column)
                sealed = _rebound(cipher, bytes(value), identity)
                if sealed is not None:
                    conn.execute(
                        update(INSTALLATIONS)
                        .where(INSTALLATIONS.c.id == row.id, INSTALLATIONS.c[column] == value)
                        .values({column: sealed})
                    )
                    rebound += 1
    if rebound:
        log.info("bound %d stored secret(s) to their rows", rebound)
    return rebound


def bind_legacy_if_keyed(engine: Engine) -> int:
    """`bind_legacy` with JOURNEY_SECRET_KEY when it is set (0 when it is not: without
    the key nothing can be read, and nothing needs to be)."""
    if not os.environ.get(SECRET_KEY_ENV, "").strip():
        return 0
    return bind_legacy(engine, Cipher.from_env())


def _rebound(cipher: Cipher, blob: bytes, identity: str) -> bytes | None:
    """The value sealed to `identity`, or None if it is already bound or unreadable."""
    try:
        if cipher.is_bound(blob):
            return None
        return cipher.encrypt(cipher.decrypt(blob), bound_to=identity)
    except SecretUnreadable:
        log.warning("a stored secret (%s) could not be read to bind it", identity)
        return None
