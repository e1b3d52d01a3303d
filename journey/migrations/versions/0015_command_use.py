"""command_use: each person's commands in the last minute, for a rate limit every replica shares

Revision ID: 0015
Revises: 0014

A new table only, so upgrading keeps every row. Rows live one minute (the limit's
window) and are deleted by the next count after that (bot/guard/fair.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "command_use",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("used_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("command_use", schema=None) as batch_op:
        batch_op.create_index(
            "ix_command_use_user", ["workspace_id", "user_id", "used_at_ms"], unique=False
        )
        batch_op.create_index("ix_command_use_time", ["used_at_ms"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("command_use", schema=None) as batch_op:
        batch_op.drop_index("ix_command_use_time")
        batch_op.drop_index("ix_command_use_user")
    op.drop_table("command_use")
