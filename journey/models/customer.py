"""Customers and the raw journey events they leave behind."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from journey.models.types import EpochDateTime

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Customer(SQLModel, table=True):
    __tablename__ = "customer"
    __table_args__ = (
        UniqueConstraint("workspace_id", "source_id", "external_id", name="uq_customer_external"),
        Index("ix_customer_person", "workspace_id", "person_id"),
        Index("ix_customer_email_key", "workspace_id", "email_key"),
        Index("ix_customer_phone_key", "workspace_id", "phone_key"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=64)
    source_id: int = Field(foreign_key="source.id")
    external_id: str = Field(max_length=200)
    name: str | None = Field(default=None, max_length=300)
    email: str | None = Field(default=None, max_length=320)
    first_seen: datetime | None = Field(default=None, sa_type=EpochDateTime)
    channel: str | None = Field(default=None, max_length=100)
    # The person this record belongs to (journey/people.py): the id of the record that
    # stands for them; why (rule, and the value it matched on); the normalised email.
    person_id: int | None = Field(default=None, sa_type=BigId)
    email_key: str | None = Field(default=None, max_length=320)
    link_rule: str | None = Field(default=None, max_length=16)
    link_value: str | None = Field(default=None, max_length=320)
    # The phone number as the source gave it, and in E.164 when the workspace joins
    # people on phone numbers (journey/matching.py), else None.
    phone: str | None = Field(default=None, max_length=64)
    phone_key: str | None = Field(default=None, max_length=20)


class PersonDecision(SQLModel, table=True):
    """A manual link (`kind` "link": this record and `other_id` are one person) or unlink
    (`kind` "unlink": this record is a person of its own), beating the matching rules."""

    __tablename__ = "person_decision"
    __table_args__ = (
        Index("ix_person_decision_customer", "workspace_id", "customer_id"),
        Index("ix_person_decision_other", "workspace_id", "other_id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=64)
    customer_id: int = Field(foreign_key="customer.id", sa_type=BigId)
    kind: str = Field(max_length=16)
    other_id: int | None = Field(default=None, foreign_key="customer.id", sa_type=BigId)
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: int = Field(sa_type=BigInteger)


class JourneyEvent(SQLModel, table=True):
    """Something a customer did: a visit, an inquiry, an order, a refund, a review...

    `kind` is what happened in the source's terms; the workspace's stage model
    maps kinds onto stages, so changing the stages never rewrites events.
    `external_id` is the source's own id, which makes every re-import an upsert.
    """

    __tablename__ = "journey_event"
    __table_args__ = (
        UniqueConstraint("workspace_id", "source_id", "external_id", name="uq_event_external"),
        # One customer's events of a kind in time order: the state refresh, the
        # "answered review" check and the per-customer look-ups.
        Index("ix_event_customer_kind_time", "workspace_id", "customer_id", "kind", "occurred_at"),
        # Events of a kind in a period, covering the customer id so "who bought in
        # this period" never reads the table itself.
        Index("ix_event_kind_time_customer", "workspace_id", "kind", "occurred_at", "customer_id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=64)
    customer_id: int = Field(foreign_key="customer.id", sa_type=BigId)
    source_id: int = Field(foreign_key="source.id")
    external_id: str = Field(max_length=200)
    kind: str = Field(max_length=64)
    occurred_at: datetime = Field(sa_type=EpochDateTime)
    channel: str | None = Field(default=None, max_length=100)
    amount_cents: int | None = Field(default=None, sa_type=BigInteger)
