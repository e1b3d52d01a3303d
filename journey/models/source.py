"""Where a workspace's data comes from, and how far each sync got."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from journey.models.types import EpochDateTime


class Source(SQLModel, table=True):
    """A connection to a store or CRM, a CSV import or the demo generator.

    Customers and events point at their source so the same external id from two
    systems never collides, and so a source can be removed with its rows.
    `credentials` holds ciphertext only; the sources issue adds the encryption.
    """

    __tablename__ = "source"
    __table_args__ = (UniqueConstraint("workspace_id", "kind", "name", name="uq_source_name"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=64)
    kind: str = Field(max_length=32)
    name: str = Field(max_length=200)
    credentials: bytes | None = Field(default=None, sa_type=LargeBinary)
    status: str = Field(default="active", max_length=32)
    last_sync_at: datetime | None = Field(default=None, sa_type=EpochDateTime)
    last_error: str | None = None
    created_at: datetime = Field(sa_type=EpochDateTime)
    # The chat user who stored the credential last (a Slack user id), told when a
    # sync pauses the source; None for sources added from the CLI.
    added_by: str | None = Field(default=None, max_length=32)
    # A scheduled sync's claim (journey/schedule/syncs.py): until when, and which replica
    # (for the log). Expires by itself, so a sync killed mid-way is retried.
    sync_claimed_until: datetime | None = Field(default=None, sa_type=EpochDateTime)
    sync_claimed_by: str | None = Field(default=None, max_length=64)


class SyncCursor(SQLModel, table=True):
    """Resume point of one resource of one source (a watermark or an API cursor)."""

    __tablename__ = "sync_cursor"

    source_id: int = Field(foreign_key="source.id", primary_key=True)
    resource: str = Field(primary_key=True, max_length=64)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=64)
    cursor: str | None = None
    updated_at: datetime = Field(sa_type=EpochDateTime)
