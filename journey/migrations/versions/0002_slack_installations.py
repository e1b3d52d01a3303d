"""slack installations and oauth states

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 10:00:00.000000

Written by hand: two new tables, nothing existing changes, so upgrading keeps
every row. Times are epoch seconds (BIGINT) like the rest of the schema; the
token columns hold Fernet ciphertext only.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slack_installation",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("enterprise_id", sa.String(length=32), nullable=True),
        sa.Column("enterprise_name", sa.String(length=200), nullable=True),
        sa.Column("team_id", sa.String(length=32), nullable=True),
        sa.Column("team_name", sa.String(length=200), nullable=True),
        sa.Column("is_enterprise_install", sa.Boolean(), nullable=False),
        sa.Column("app_id", sa.String(length=32), nullable=True),
        sa.Column("bot_id", sa.String(length=32), nullable=True),
        sa.Column("bot_user_id", sa.String(length=32), nullable=True),
        sa.Column("bot_scopes", sa.String(length=2000), nullable=False),
        sa.Column("bot_token", sa.LargeBinary(), nullable=True),
        sa.Column("bot_refresh_token", sa.LargeBinary(), nullable=True),
        sa.Column("bot_token_expires_at", sa.BigInteger(), nullable=True),
        sa.Column("installer_user_id", sa.String(length=32), nullable=True),
        sa.Column("installed_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("token_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "slack_oauth_state",
        sa.Column("state", sa.String(length=100), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("state"),
    )
    with op.batch_alter_table("slack_oauth_state", schema=None) as batch_op:
        batch_op.create_index("ix_slack_oauth_state_expires", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("slack_oauth_state", schema=None) as batch_op:
        batch_op.drop_index("ix_slack_oauth_state_expires")

    op.drop_table("slack_oauth_state")
    op.drop_table("slack_installation")
