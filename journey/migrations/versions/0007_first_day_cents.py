"""customer_journey.first_day_cents and workspace.discount_rate, for customer value

Revision ID: 0007
Revises: 0006

The spend model (journey/metrics/gamma_gamma.py) learns from repeat purchases only, as
Fader, Hardie & Lee do: the first purchase is often a different kind of purchase. Repeat
spend is then revenue minus this column, read from the state row rather than from a scan
of every buyer's events at report time. Filled for existing rows from their events.
workspace.discount_rate is the yearly rate future value is discounted at (default 10%).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# journey.stages.PURCHASE_KINDS when this revision was written.
_BUY = "'order', 'purchase', 'renewal', 'repeat_purchase'"


def upgrade() -> None:
    op.add_column(
        "workspace",
        sa.Column("discount_rate", sa.Float(), nullable=False, server_default="0.1"),
    )
    op.add_column("customer_journey", sa.Column("first_day_cents", sa.BigInteger(), nullable=True))
    op.execute(
        f"""
        UPDATE customer_journey SET first_day_cents = (
          SELECT SUM(COALESCE(e.amount_cents, 0)) FROM journey_event e
          WHERE e.workspace_id = customer_journey.workspace_id
            AND e.customer_id = customer_journey.customer_id
            AND e.kind IN ({_BUY})
            AND e.occurred_at / 86400 = customer_journey.first_purchase_at / 86400)
        WHERE first_purchase_at IS NOT NULL
        """
    )


def downgrade() -> None:
    op.drop_column("workspace", "discount_rate")
    op.drop_column("customer_journey", "first_day_cents")
