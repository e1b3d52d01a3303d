"""One import per checked file, whichever replica each *Import* click reaches.

The Slack bot keeps each checked file in its own process (bot/files/pending.py), which
stops a double click on one replica; two clicks landing on two replicas (a double click
behind a load balancer, a retry, two admins) would each import the file. Before an
import starts, its replica claims it here, in the database every replica shares:

- The claim is a row of `import_claim` keyed by the workspace, the Slack file id and
  the SHA-256 of the bytes that were checked (the button carries them), INSERTed in
  state `importing` with an expiry CLAIM seconds ahead. Of any number of replicas
  racing, exactly one INSERT succeeds (the primary key; PostgreSQL makes the second
  wait for the first's commit and then fail, SQLite serialises writers); the others
  read the row and tell the person it is being imported, or was.
- While the import runs the claim is extended (`extend`, about once a minute), so a
  long import keeps it. A replica killed mid-import leaves a claim that lapses after
  CLAIM seconds, like the scheduled syncs' claims (source.sync_claimed_until,
  journey/schedule/syncs.py); the next click then claims it again and the import
  resumes after its last committed batch (journey/imports/run.py's marker).
- A finished import keeps its row as `imported` for REMEMBER seconds, so a late click
  elsewhere says it was imported; a failed one deletes its row, so the file can be
  tried again. Lapsed rows of the workspace are deleted by the next claim.

`holder` (hostname:pid) is only for the log and for extending and ending one's own
claim. Every statement is scoped to one workspace.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

CLAIM = 10 * 60  # seconds a claim lives without being extended
REMEMBER = 24 * 3600  # seconds a finished import is remembered
IMPORTING, IMPORTED = "importing", "imported"


def claim(
    engine: Engine,
    workspace_id: str,
    file_id: str,
    sha256: str,
    holder: str,
    now: float | None = None,
) -> str | None:
    """None when this replica won the import of the file; else the state of the claim
    that holds it (`importing` or `imported`)."""
    at = int(time.time() if now is None else now)
    key = {"ws": workspace_id, "file": file_id[:32], "sha": sha256[:64]}
    with engine.begin() as conn:
        conn.execute(
            text("DELETE FROM import_claim WHERE workspace_id = :ws AND expires_at <= :now"),
            {"ws": workspace_id, "now": at},
        )
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO import_claim "
                    "(workspace_id, file_id, sha256, state, claimed_by, expires_at) "
                    "VALUES (:ws, :file, :sha, :state, :holder, :until)"
                ),
                {**key, "state": IMPORTING, "holder": holder[:64], "until": at + CLAIM},
            )
        return None
    except IntegrityError:
        with engine.connect() as conn:
            state = conn.execute(
                text(
                    "SELECT state FROM import_claim "
                    "WHERE workspace_id = :ws AND file_id = :file AND sha256 = :sha"
                ),
                key,
            ).scalar()
        return str(state or IMPORTING)  # a row gone since: someone just finished or failed


def extend(
    engine: Engine,
    workspace_id: str,
    file_id: str,
    sha256: str,
    holder: str,
    now: float | None = None,
) -> bool:
    """Move this replica's claim CLAIM seconds ahead; False when it no longer holds it."""
    at = int(time.time() if now is None else now)
    with engine.begin() as conn:
        moved = conn.execute(
            text(
                "UPDATE import_claim SET expires_at = :until "
                "WHERE workspace_id = :ws AND file_id = :file AND sha256 = :sha "
                "AND claimed_by = :holder AND state = :importing"
            ),
            {
                "ws": workspace_id,
                "file": file_id[:32],
                "sha": sha256[:64],
                "holder": holder[:64],
                "importing": IMPORTING,
                "until": at + CLAIM,
            },
        ).rowcount
    return moved == 1


def finish(
    engine: Engine,
    workspace_id: str,
    file_id: str,
    sha256: str,
    holder: str,
    imported: bool,
    now: float | None = None,
) -> None:
    """End this replica's claim: remembered as imported, or deleted after a failure."""
    at = int(time.time() if now is None else now)
    params = {
        "ws": workspace_id,
        "file": file_id[:32],
        "sha": sha256[:64],
        "holder": holder[:64],
    }
    where = (
        "WHERE workspace_id = :ws AND file_id = :file AND sha256 = :sha AND claimed_by = :holder"
    )
    with engine.begin() as conn:
        if imported:
            conn.execute(
                text(f"UPDATE import_claim SET state = :imported, expires_at = :until {where}"),
                {**params, "imported": IMPORTED, "until": at + REMEMBER},
            )
        else:
            conn.execute(text(f"DELETE FROM import_claim {where}"), params)
