"""source.added_by: who stored the source's credential, to tell them when it stops working

Revision ID: 0006
Revises: 0005

One nullable column, so upgrading keeps every row (sources added before it, or
from the CLI, have no one to tell; their pause notice goes to the alerts
channel, as documented in the README). Plain ALTER TABLE on both databases:
SQLite adds and (since 3.35) drops a column in place, where a batch "move and
copy" of `source` would trip the foreign keys that point at it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("source", sa.Column("added_by", sa.String(length=32), nullable=True))


def downgrade() -> None:
    op.drop_column("source", "added_by")
