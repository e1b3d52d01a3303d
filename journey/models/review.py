"""Review requests: who was asked (or deliberately skipped), and when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from journey.models.customer import BigId
from journey.models.types import EpochDateTime


class ReviewRequest(SQLModel, table=True):
    """Answers are not stored here: a review event from the customer after the
    request counts as the answer, so the tracking stays true to the source data."""

    __tablename__ = "review_request"
    __table_args__ = (Index("ix_review_customer", "workspace_id", "customer_id", "asked_at"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=64)
    customer_id: int = Field(foreign_key="customer.id", sa_type=BigId)
    asked_at: datetime = Field(sa_type=EpochDateTime)
    status: str = Field(default="asked", max_length=16)  # asked | skipped
    via: str | None = Field(default=None, max_length=64)
    asked_by: str | None = Field(default=None, max_length=64)
