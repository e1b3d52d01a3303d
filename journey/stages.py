"""The stage model: which stages a workspace's journey has, and which events reach them.

Sources speak in their own terms (a Shopify checkout, a HubSpot lifecycle change,
a clinic's booking); each event keeps that `kind`, and this module maps kinds to
stages per workspace. Changing a workspace's stages therefore only rebuilds the
derived journey state, never the events.

Two rules are not a plain kind -> stage mapping, because they depend on a
customer's history rather than on one event:
- the `retention` stage is reached at the second distinct purchase day;
- a later stage implies the earlier ones (a direct purchase went through awareness).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from journey.errors import JourneyError
from journey.models import MAX_STAGES

DEFAULT_STAGES: tuple[str, ...] = (
    "awareness",
    "consideration",
    "decision",
    "purchase",
    "retention",
    "advocacy",
)

# Kinds an event may carry and the default stage each one reaches. A stage name
# is always a valid kind of its own, so CSVs can say `stage` directly.
DEFAULT_KIND_STAGE: dict[str, str] = {
    "visit": "awareness",
    "first_visit": "awareness",
    "ad_click": "awareness",
    "page_view": "awareness",
    "signup": "consideration",
    "subscribe": "consideration",
    "lead": "consideration",
    "inquiry": "consideration",
    "consultation": "consideration",
    "add_to_cart": "decision",
    "checkout": "decision",
    "abandoned_checkout": "decision",
    "booking": "decision",
    "quote": "decision",
    "order": "purchase",
    "purchase": "purchase",
    "repeat_purchase": "retention",
    "renewal": "retention",
    "review": "advocacy",
    "referral": "advocacy",
    "advocacy": "advocacy",
    # HubSpot lifecycle stages (journey/sources/hubspot.py): one event per stage a
    # contact entered. Custom stages (`hubspot_stage:<internal id>`) reach no stage
    # until the workspace maps them (`journey stages set ... --map hubspot_stage:<id>=decision`).
    "hubspot_stage:subscriber": "awareness",
    "hubspot_stage:lead": "awareness",
    "hubspot_stage:marketingqualifiedlead": "consideration",
    "hubspot_stage:salesqualifiedlead": "consideration",
    "hubspot_stage:opportunity": "decision",
    "hubspot_stage:customer": "purchase",
    "hubspot_stage:evangelist": "advocacy",
}

# Kinds that are purchases (revenue, purchase days, retention). Refunds and
# cancellations are kept as facts but reach no stage.
PURCHASE_KINDS: frozenset[str] = frozenset({"order", "purchase", "repeat_purchase", "renewal"})
REFUND_KINDS: frozenset[str] = frozenset({"refund", "cancellation"})
REVIEW_KINDS: frozenset[str] = frozenset({"review"})
KNOWN_KINDS: frozenset[str] = frozenset(DEFAULT_KIND_STAGE) | REFUND_KINDS | set(DEFAULT_STAGES)

RETENTION = "retention"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True)
class StageModel:
    """An ordered set of stages and the kind -> stage mapping onto them."""

    stages: tuple[str, ...] = DEFAULT_STAGES
    overrides: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_stages(self.stages)
        for kind, stage in self.overrides.items():
            if stage not in self.stages:
                raise JourneyError(
                    f"The mapping {kind}={stage} names a stage that is not in this journey "
                    f"({', '.join(self.stages)})."
                )

    @classmethod
    def from_workspace(
        cls, stages: list[str] | None, stage_map: dict[str, str] | None
    ) -> StageModel:
        return cls(tuple(stages) if stages else DEFAULT_STAGES, dict(stage_map or {}))

    def kind_positions(self) -> dict[str, int]:
        """Position of the stage each known kind reaches in this journey.

        A kind whose default stage is missing from a shorter journey falls back to
        the closest earlier default stage that is present (an order reaches
        `decision` in awareness/consideration/decision/retention); a kind with no
        such stage reaches none.
        """
        index = {name: i for i, name in enumerate(self.stages)}
        positions: dict[str, int] = {}
        for kind, default_stage in {**DEFAULT_KIND_STAGE, **{s: s for s in DEFAULT_STAGES}}.items():
            pos = self._fallback(default_stage, index)
            if pos is not None:
                positions[kind] = pos
        for stage in self.stages:  # custom stage names are kinds too
            positions[stage] = index[stage]
        for kind, stage in self.overrides.items():
            positions[kind] = index[stage]
        return positions

    def _fallback(self, default_stage: str, index: dict[str, int]) -> int | None:
        if default_stage in index:
            return index[default_stage]
        if default_stage not in DEFAULT_STAGES:
            return None
        for earlier in reversed(DEFAULT_STAGES[: DEFAULT_STAGES.index(default_stage)]):
            if earlier in index:
                return index[earlier]
        return None

    @property
    def retention_position(self) -> int | None:
        return self.stages.index(RETENTION) if RETENTION in self.stages else None

    @property
    def purchase_position(self) -> int | None:
        return self.kind_positions().get("order")


def validate_stages(stages: tuple[str, ...] | list[str]) -> None:
    if not 2 <= len(stages) <= MAX_STAGES:
        raise JourneyError(f"A journey needs between 2 and {MAX_STAGES} stages, got {len(stages)}.")
    for name in stages:
        if not _NAME.match(name):
            raise JourneyError(
                f"Stage name {name!r} is not valid: use lowercase letters, digits and _ "
                "(for example `awareness`)."
            )
    if len(set(stages)) != len(stages):
        raise JourneyError("Each stage may appear only once in a journey.")
