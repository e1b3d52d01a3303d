"""alert acknowledgements: who acknowledged which alert notification, and when

Revision ID: 0005
Revises: 0004

A new table only, so upgrading keeps every row. One acknowledgement per
notification (the unique constraint makes the first click win on any replica);
times are epoch seconds (BIGINT) like the other schedule tables.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_ack",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("alert_state_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("acked_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["alert_state_id"], ["alert_state.id"]),
        sa.ForeignKeyConstraint(["notification_id"], ["alert_notification.id"]),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("notification_id", name="uq_alert_ack_notification"),
    )
    with op.batch_alter_table("alert_ack", schema=None) as batch_op:
        batch_op.create_index(
            "ix_alert_ack_state", ["workspace_id", "alert_state_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("alert_ack", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_ack_state")
    op.drop_table("alert_ack")
