"""The tenant. Every other row carries a workspace id, and every query filters on it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from journey.models.types import EpochDateTime


class Workspace(SQLModel, table=True):
    """One business: a Slack team id, or `local` for the CLI user.

    The per-workspace knobs live here rather than in the environment because a
    hosted bot serves many businesses with different journeys and buying rhythms.
    """

    __tablename__ = "workspace"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(default="", max_length=200)
    timezone: str = Field(default="UTC", max_length=64)
    currency: str = Field(default="USD", max_length=3)
    # None means the default six stages and the default event mapping.
    stages: list[str] | None = Field(default=None, sa_type=JSON)
    stage_map: dict[str, str] | None = Field(default=None, sa_type=JSON)
    review_min_days: int = 3
    review_max_days: int = 14
    review_cooldown_days: int = 90
    at_risk_factor: float = 2.0
    # Yearly rate future revenue is discounted at in customer value (10%: a common cost
    # of capital for a small business; Fader, Hardie & Lee use 15% for CDNOW).
    discount_rate: float = 0.10
    # Records joined into people (journey/people.py). False only for workspaces that
    # predate people (migration 0011), until `journey.db.upgrade` builds them.
    people_built: bool = True
    # How records join into people (journey/matching.py; `journey settings`): all off by
    # default, since a joined pair is harder to notice than a missed one.
    email_drop_tags: bool = False
    email_ignore_dots: bool = False  # Gmail addresses only
    match_phone: bool = False
    # ISO 3166 code phone numbers without a country code are read in (FR, US, GB...).
    country: str | None = Field(default=None, max_length=2)
    # A person's acquisition channel: their last touch before they first bought, instead
    # of their first touch (journey/state.py).
    last_touch: bool = False
    created_at: datetime = Field(sa_type=EpochDateTime)
    # When the chat app was removed from the workspace: its sources, digests and alerts
    # are stopped, and its data is deleted a grace period later (journey/uninstall.py).
    uninstalled_at: datetime | None = Field(default=None, sa_type=EpochDateTime)
