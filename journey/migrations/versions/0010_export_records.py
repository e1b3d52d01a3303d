"""export records: who exported or shared customer data from a report, when, how many rows

Revision ID: 0010
Revises: 0009

A new table only, so upgrading keeps every row. No foreign key to workspace: a
record may be written for a workspace whose row was never created (a share of an empty
report); a purge deletes the records with the rest of the workspace's data.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "export_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("exported_at", sa.BigInteger(), nullable=False),
        sa.Column("report", sa.String(length=100), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("destination", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("export_record", schema=None) as batch_op:
        batch_op.create_index(
            "ix_export_record_workspace", ["workspace_id", "exported_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("export_record", schema=None) as batch_op:
        batch_op.drop_index("ix_export_record_workspace")
    op.drop_table("export_record")
