"""Which checked file is being imported, so one import runs however many replicas the
bot has (journey/imports/claims.py).

A person's *Import* click may reach any replica; two clicks on the same checked file
(a double click, two people, a retry) reaching two replicas would otherwise both import
it. The row is keyed by the workspace, the Slack file id and the checked bytes'
SHA-256, and carries an expiry like the scheduled syncs' claims (source.
sync_claimed_until): a replica that dies mid-import leaves a claim that lapses. Like
every table with a workspace id, a purge empties it.
"""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel


class ImportClaim(SQLModel, table=True):
    __tablename__ = "import_claim"
    workspace_id: str = Field(primary_key=True, max_length=64)
    file_id: str = Field(primary_key=True, max_length=32)
    sha256: str = Field(primary_key=True, max_length=64)
    state: str = Field(max_length=16)  # importing | imported
    claimed_by: str = Field(max_length=64)  # the replica (hostname:pid), for the log
    expires_at: int = Field(sa_type=BigInteger)  # epoch seconds
