"""An index covering the value report's read of customer_journey

Revision ID: 0014
Revises: 0013

The value report (and the churn report's buyer summary) reads, per workspace, every
buyer's first and last purchase, purchase days, revenue and first-day spend, and each
customer's channel and journey entry, grouped by channel (journey/metrics/buyers.py). On
SQLite this index holds all of those columns in channel order, so the read is one walk of
the index: no table row is visited and the grouping needs no sort (bench/VALUE.md).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VALUE_COLUMNS = [
    "workspace_id",
    "channel",
    "customer_id",
    "reached_0",
    "first_purchase_at",
    "last_purchase_at",
    "purchase_days",
    "revenue_cents",
    "first_day_cents",
]


def upgrade() -> None:
    with op.batch_alter_table("customer_journey", schema=None) as batch_op:
        batch_op.create_index("ix_cj_value", VALUE_COLUMNS, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("customer_journey", schema=None) as batch_op:
        batch_op.drop_index("ix_cj_value")
