"""alert_rule.set_by: who last pointed an alert at a channel, to tell them when it stops

Revision ID: 0013
Revises: 0012

One nullable column, like source.added_by (0006): rules set before it, or by the
console, have no one to tell; a stopped rule still says why in `/journey alerts` and
the App Home. Plain ALTER TABLE on both databases.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("alert_rule", sa.Column("set_by", sa.String(length=32), nullable=True))


def downgrade() -> None:
    op.drop_column("alert_rule", "set_by")
