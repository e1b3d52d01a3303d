"""workspace.uninstalled_at: when the chat app was removed, for the grace period before deletion

Revision ID: 0009
Revises: 0008

Removing the app stops the workspace's sources, digests and alerts at once and
deletes its data a grace period later (journey/uninstall.py); this column says
when the period started. One nullable column, so upgrading keeps every row;
plain ALTER TABLE on both databases (see 0006 on why not a batch copy).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("workspace", sa.Column("uninstalled_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("workspace", "uninstalled_at")
