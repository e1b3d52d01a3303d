"""import_claim: one import of a checked file across replicas

Revision ID: 0016
Revises: 0015

A new table only, so upgrading keeps every row. A row per file being imported from
Slack (workspace, Slack file id, SHA-256 of the checked bytes), with an expiry like the
scheduled syncs' claims (0008): journey/imports/claims.py.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "import_claim",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("file_id", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "file_id", "sha256"),
    )


def downgrade() -> None:
    op.drop_table("import_claim")
