"""The per-customer journey state every report reads.

Counting stages from raw events means scanning millions of rows per report; this
table keeps one row per customer with what the reports ask for (first time at
each stage, purchases, last purchase...) and is refreshed for the customers an
import or sync touched (see `journey.state`). Times are epoch seconds.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index
from sqlmodel import Field, SQLModel

from journey.models.customer import BigId

MAX_STAGES = 8


class CustomerJourney(SQLModel, table=True):
    __tablename__ = "customer_journey"
    __table_args__ = (
        Index("ix_cj_entered", "workspace_id", "reached_0"),
        Index("ix_cj_first_purchase", "workspace_id", "first_purchase_at"),
        Index("ix_cj_last_purchase", "workspace_id", "last_purchase_at"),
        # Covers the funnel's per-channel counts, so SQLite groups a year's cohort
        # from the index instead of sorting table rows (2.4 s -> 0.5 s at 1M customers).
        Index(
            "ix_cj_channel_funnel",
            "workspace_id",
            "channel",
            "reached_0",
            "reached_1",
            "reached_2",
            "reached_3",
            "reached_4",
            "reached_5",
            "reached_6",
            "reached_7",
            "recorded_mask",
        ),
        # Covers the value report's read of buyers and the channel cohort, in channel
        # order, so SQLite groups it by channel from the index alone (journey/metrics/
        # buyers.py; migration 0014).
        Index(
            "ix_cj_value",
            "workspace_id",
            "channel",
            "customer_id",
            "reached_0",
            "first_purchase_at",
            "last_purchase_at",
            "purchase_days",
            "revenue_cents",
            "first_day_cents",
        ),
    )

    workspace_id: str = Field(primary_key=True, foreign_key="workspace.id", max_length=64)
    customer_id: int = Field(primary_key=True, foreign_key="customer.id", sa_type=BigId)
    channel: str | None = Field(default=None, max_length=100)
    # reached_i: first time the customer reached stage i *or any later stage*, so
    # a direct purchase counts as having passed awareness; recorded_mask has bit i
    # set when stage i itself was seen, which lets reports say how much is inferred.
    reached_0: int | None = Field(default=None, sa_type=BigInteger)
    reached_1: int | None = Field(default=None, sa_type=BigInteger)
    reached_2: int | None = Field(default=None, sa_type=BigInteger)
    reached_3: int | None = Field(default=None, sa_type=BigInteger)
    reached_4: int | None = Field(default=None, sa_type=BigInteger)
    reached_5: int | None = Field(default=None, sa_type=BigInteger)
    reached_6: int | None = Field(default=None, sa_type=BigInteger)
    reached_7: int | None = Field(default=None, sa_type=BigInteger)
    recorded_mask: int = 0
    first_purchase_at: int | None = Field(default=None, sa_type=BigInteger)
    second_purchase_at: int | None = Field(default=None, sa_type=BigInteger)
    last_purchase_at: int | None = Field(default=None, sa_type=BigInteger)
    purchase_days: int = 0
    revenue_cents: int = Field(default=0, sa_type=BigInteger)
    # Gross purchases on the first purchase day: repeat spend is revenue minus this
    # (the spend model learns from repeat purchases only, see metrics/gamma_gamma.py).
    first_day_cents: int | None = Field(default=None, sa_type=BigInteger)
    last_order_cents: int | None = Field(default=None, sa_type=BigInteger)
    # Month index (year*12 + month-1, UTC) of the first purchase, and a bit per
    # later month (bit k = bought in first month + k): the cohort matrix is then
    # one scan with bit tests instead of a join over all orders.
    first_purchase_month: int | None = None
    purchase_month_mask: int = Field(default=0, sa_type=BigInteger)
    last_refund_at: int | None = Field(default=None, sa_type=BigInteger)
    last_review_at: int | None = Field(default=None, sa_type=BigInteger)
