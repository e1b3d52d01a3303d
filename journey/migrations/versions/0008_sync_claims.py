"""source.sync_claimed_until and sync_claimed_by: a scheduled sync's claim, with an expiry

Revision ID: 0008
Revises: 0007

A scheduled sync used to claim its source by moving `last_sync_at` forward. A
process killed mid-sync (or a database outage that stopped it from undoing the
claim) left the source looking freshly synced when no sync had finished, and it
waited a whole interval for the next try. The claim now has columns of its own,
like the digest leases: `last_sync_at` only ever records a finished sync, and a
claim nobody released expires (bot scheduled syncs retry at the next tick after
it). Two nullable columns, so upgrading keeps every row; plain ALTER TABLE on
both databases (see 0006 on why not a batch copy of `source`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("source", sa.Column("sync_claimed_until", sa.BigInteger(), nullable=True))
    op.add_column("source", sa.Column("sync_claimed_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("source", "sync_claimed_by")
    op.drop_column("source", "sync_claimed_until")
