"""People: one person per human across a workspace's sources

Revision ID: 0011
Revises: 0010

customer.person_id is the id of the record that stands for the person (the smallest id
among the records joined into one person; a record alone is its own person), with
link_rule and link_value saying why it belongs there (journey/people.py).
customer.email_key is the normalised email the rule matches on, kept so matching is an
index look-up. person_decision keeps the manual links and unlinks, which beat the rules
through every later sync.

Every record starts as its own person, so upgrading changes no number; the people are
built (records joined) by `journey.db.upgrade` right after this revision, with the
application's own matching rules, and the journey state rebuilt for the workspaces where
anything joined.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.add_column("customer", sa.Column("person_id", big, nullable=True))
    op.add_column("customer", sa.Column("email_key", sa.String(length=320), nullable=True))
    op.add_column("customer", sa.Column("link_rule", sa.String(length=16), nullable=True))
    op.add_column("customer", sa.Column("link_value", sa.String(length=320), nullable=True))
    op.execute("UPDATE customer SET person_id = id")
    op.create_index("ix_customer_person", "customer", ["workspace_id", "person_id"])
    op.create_index("ix_customer_email_key", "customer", ["workspace_id", "email_key"])
    op.add_column(
        "workspace",
        sa.Column("people_built", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "person_decision",
        sa.Column("id", big, primary_key=True, autoincrement=True),
        sa.Column(
            "workspace_id", sa.String(length=64), sa.ForeignKey("workspace.id"), nullable=False
        ),
        sa.Column("customer_id", big, sa.ForeignKey("customer.id"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("other_id", big, sa.ForeignKey("customer.id"), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_person_decision_customer", "person_decision", ["workspace_id", "customer_id"]
    )
    op.create_index("ix_person_decision_other", "person_decision", ["workspace_id", "other_id"])


def downgrade() -> None:
    op.drop_index("ix_person_decision_other", "person_decision")
    op.drop_index("ix_person_decision_customer", "person_decision")
    op.drop_table("person_decision")
    op.drop_column("workspace", "people_built")
    op.drop_index("ix_customer_email_key", "customer")
    op.drop_index("ix_customer_person", "customer")
    op.drop_column("customer", "link_value")
    op.drop_column("customer", "link_rule")
    op.drop_column("customer", "email_key")
    op.drop_column("customer", "person_id")
