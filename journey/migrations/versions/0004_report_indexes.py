"""Indexes for reports at 1M customers / 10M events (see bench/README.md).

- journey_event (workspace, customer, kind, time) replaces (workspace, customer,
  time): the "answered review" check walked every review of a 30-day window per
  request without the kind (42 s -> 0.1 s on SQLite);
- journey_event (workspace, kind, time, customer) replaces (workspace, kind,
  time): returning customers are counted from the index alone;
- customer_journey (workspace, channel, reached_*, recorded_mask) covers the
  funnel's per-channel counts.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNNEL_COLUMNS = [
    "workspace_id",
    "channel",
    *(f"reached_{i}" for i in range(8)),
    "recorded_mask",
]


def upgrade() -> None:
    with op.batch_alter_table("journey_event", schema=None) as batch_op:
        batch_op.drop_index("ix_event_customer_time")
        batch_op.drop_index("ix_event_kind_time")
        batch_op.create_index(
            "ix_event_customer_kind_time",
            ["workspace_id", "customer_id", "kind", "occurred_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_event_kind_time_customer",
            ["workspace_id", "kind", "occurred_at", "customer_id"],
            unique=False,
        )
    with op.batch_alter_table("customer_journey", schema=None) as batch_op:
        batch_op.create_index("ix_cj_channel_funnel", FUNNEL_COLUMNS, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("customer_journey", schema=None) as batch_op:
        batch_op.drop_index("ix_cj_channel_funnel")
    with op.batch_alter_table("journey_event", schema=None) as batch_op:
        batch_op.drop_index("ix_event_kind_time_customer")
        batch_op.drop_index("ix_event_customer_kind_time")
        batch_op.create_index(
            "ix_event_kind_time", ["workspace_id", "kind", "occurred_at"], unique=False
        )
        batch_op.create_index(
            "ix_event_customer_time", ["workspace_id", "customer_id", "occurred_at"], unique=False
        )
