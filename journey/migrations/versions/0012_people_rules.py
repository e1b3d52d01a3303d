"""People rules: email normalisation, phone numbers, first or last touch, per workspace

Revision ID: 0012
Revises: 0011

Workspace settings for how records join into people (journey/matching.py):
`email_drop_tags` (ann+shop@x.com is ann@x.com), `email_ignore_dots` (Gmail addresses'
dots ignored), `match_phone` (join on the phone number in E.164) with `country` (the
ISO 3166 code numbers without a country code are read in), and `last_touch` (a person's
acquisition channel is their last touch before they first bought, instead of the first).
All off by default: upgrading changes no person.

`customer.phone` keeps the number as the source gave it (so a change of country re-reads
it) and `customer.phone_key` the E.164 form the rule matches on, indexed like email_key.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FLAGS = ("email_drop_tags", "email_ignore_dots", "match_phone", "last_touch")


def upgrade() -> None:
    for flag in _FLAGS:
        op.add_column(
            "workspace", sa.Column(flag, sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.add_column("workspace", sa.Column("country", sa.String(length=2), nullable=True))
    op.add_column("customer", sa.Column("phone", sa.String(length=64), nullable=True))
    op.add_column("customer", sa.Column("phone_key", sa.String(length=20), nullable=True))
    op.create_index("ix_customer_phone_key", "customer", ["workspace_id", "phone_key"])


def downgrade() -> None:
    op.drop_index("ix_customer_phone_key", "customer")
    op.drop_column("customer", "phone_key")
    op.drop_column("customer", "phone")
    op.drop_column("workspace", "country")
    for flag in reversed(_FLAGS):
        op.drop_column("workspace", flag)
