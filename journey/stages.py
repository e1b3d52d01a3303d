"""The stage model: which stages a workspace's journey has, and which events reach them.

Sources speak in their own terms (a Shopify checkout, a HubSpot lifecycle change,
a clinic's booking); each event keeps that `kind`, and this module maps kinds to
stages per workspace. Changing a workspace's stages therefore only rebuilds the
derived journey state, never the events.

Two rules are not a plain kind -> stage mapping, because they depend on a
customer's history rather than on one event:
- the `retention` stage is reached at the second distinct purchase day;
- a later stage implies the earlier ones (a direct purchase went through awareness).

Some kinds are defined by the source itself: a HubSpot account has its own
lifecycle stages (`hubspot_stage:<value>`), custom ones included, in its own
order. The HubSpot sync keeps the account's list (value, label, order) with the
source (`LIFECYCLE_RESOURCE`), and `hubspot_lifecycle` gives each stage a
default journey stage from HubSpot's meaning of the built-in ones, a custom
stage's label, or else its place in the list. Those defaults are the
`source_defaults` of the workspace's StageModel; the workspace's own map
(`journey stages set ... --map hubspot_stage:<value>=<stage>`) wins over them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlmodel import Session

from journey.errors import JourneyError
from journey.models import MAX_STAGES, Source, SyncCursor

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
    # contact entered. An account's custom stages (`hubspot_stage:<internal id>`) get
    # theirs from the account's list (`hubspot_lifecycle`), as source defaults.
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
    """An ordered set of stages and the kind -> stage mapping onto them.

    `overrides` are the workspace's own choices (kind -> one of `stages`).
    `source_defaults` are defaults that a source's own definitions imply (kind ->
    a default stage, one of DEFAULT_STAGES), such as an account's custom HubSpot
    lifecycle stages: they fall back like the built-in defaults in a shorter
    journey, and the overrides win over them.
    """

    stages: tuple[str, ...] = DEFAULT_STAGES
    overrides: dict[str, str] = field(default_factory=dict)
    source_defaults: dict[str, str] = field(default_factory=dict)

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
        cls,
        stages: list[str] | None,
        stage_map: dict[str, str] | None,
        source_defaults: Mapping[str, str] | None = None,
    ) -> StageModel:
        return cls(
            tuple(stages) if stages else DEFAULT_STAGES,
            dict(stage_map or {}),
            dict(source_defaults or {}),
        )

    def kind_positions(self) -> dict[str, int]:
        """Position of the stage each known kind reaches in this journey.

        A kind whose default stage is missing from a shorter journey falls back to
        the closest earlier default stage that is present (an order reaches
        `decision` in awareness/consideration/decision/retention); a kind with no
        such stage reaches none.
        """
        index = {name: i for i, name in enumerate(self.stages)}
        positions: dict[str, int] = {}
        defaults = {**self.source_defaults, **DEFAULT_KIND_STAGE, **{s: s for s in DEFAULT_STAGES}}
        for kind, default_stage in defaults.items():
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

    def stage_of(self, kind: str) -> str | None:
        """The stage an event of `kind` reaches in this journey (None: none)."""
        pos = self.kind_positions().get(kind)
        return None if pos is None else self.stages[pos]


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


# --- HubSpot lifecycle stages: an account's own list, with defaults ----------------

HUBSPOT_KIND = "hubspot_stage:"
# The SyncCursor row (per HubSpot source) holding the account's lifecycle stages as the
# last sync read them: {"stages": [[value, label], ...]} in the account's order.
LIFECYCLE_RESOURCE = "lifecycle_stages"

# HubSpot's built-in stages by internal value; `other` means no stage in particular.
HUBSPOT_BUILT_IN: dict[str, str | None] = {
    **{
        kind.removeprefix(HUBSPOT_KIND): stage
        for kind, stage in DEFAULT_KIND_STAGE.items()
        if kind.startswith(HUBSPOT_KIND)
    },
    "other": None,
}

# A custom stage whose label says what it is (compared in lower case, letters and
# digits only). Only names that leave no doubt; anything else goes by its place.
_LABEL_STAGE: dict[str, str | None] = {
    "subscriber": "awareness",
    "lead": "awareness",
    "newlead": "awareness",
    "marketingqualifiedlead": "consideration",
    "mql": "consideration",
    "salesqualifiedlead": "consideration",
    "sql": "consideration",
    "qualifiedlead": "consideration",
    "opportunity": "decision",
    "customer": "purchase",
    "client": "purchase",
    "repeatcustomer": "retention",
    "evangelist": "advocacy",
    "advocate": "advocacy",
    "promoter": "advocacy",
    "other": None,
    "churned": None,
    "lost": None,
    "disqualified": None,
    "unqualified": None,
    **{stage: stage for stage in DEFAULT_STAGES},
}


@dataclass(frozen=True)
class LifecycleStage:
    """One of an account's lifecycle stages and the journey stage it reaches by default.

    `why` says where the default comes from, for people reading `journey stages show`."""

    value: str
    label: str
    default: str | None
    why: str

    @property
    def kind(self) -> str:
        return f"{HUBSPOT_KIND}{self.value}"


def hubspot_lifecycle(options: Sequence[tuple[str, str]]) -> list[LifecycleStage]:
    """An account's lifecycle stages (value, label), in the account's order, with defaults.

    A built-in stage keeps HubSpot's meaning (subscriber and lead: awareness; MQL and
    SQL: consideration; opportunity: decision; customer: purchase; evangelist:
    advocacy; other: none). A custom stage whose label names a known stage
    ("MQL", "Client", "Churned", "Retention"...) takes that one. Any other custom
    stage takes the stage of the nearest stage before it that has one, since
    HubSpot's order is the order contacts move through (an "Onboarding" after
    Customer is still purchase); one before every such stage is awareness.
    """
    out: list[LifecycleStage] = []
    before: LifecycleStage | None = None
    for value, label in options:
        guess = re.sub(r"[^a-z0-9]", "", label.lower())
        if value in HUBSPOT_BUILT_IN:
            stage, why = HUBSPOT_BUILT_IN[value], "HubSpot's meaning"
        elif guess in _LABEL_STAGE:
            stage, why = _LABEL_STAGE[guess], "its label"
        elif before is not None:
            stage, why = before.default, f"follows {before.label}"
        else:
            stage, why = DEFAULT_STAGES[0], "comes first"
        item = LifecycleStage(value, label, stage, why)
        out.append(item)
        if stage is not None:
            before = item
    return out


def hubspot_accounts(session: Session, workspace_id: str) -> list[tuple[str, list[LifecycleStage]]]:
    """(source name, lifecycle stages with defaults) of each HubSpot source of the
    workspace that has been synced, as its last sync read them."""
    rows = session.execute(
        select(Source.name, SyncCursor.cursor)
        .join(SyncCursor, SyncCursor.source_id == Source.id)
        .where(
            Source.workspace_id == workspace_id,
            Source.kind == "hubspot",
            SyncCursor.resource == LIFECYCLE_RESOURCE,
        )
        .order_by(Source.id)
    ).all()
    accounts: list[tuple[str, list[LifecycleStage]]] = []
    for name, cursor in rows:
        try:
            stored = json.loads(cursor or "{}").get("stages") or []
        except (ValueError, AttributeError):
            continue  # unreadable: the next sync writes it again
        options = [
            (str(item[0]), str(item[1]))
            for item in stored
            if isinstance(item, list) and len(item) == 2
        ]
        accounts.append((name, hubspot_lifecycle(options)))
    return accounts


def source_stage_defaults(session: Session, workspace_id: str) -> dict[str, str]:
    """kind -> default stage for the kinds the workspace's sources define (HubSpot's
    custom lifecycle stages); the first source that names a kind decides it."""
    defaults: dict[str, str] = {}
    for _name, stages in hubspot_accounts(session, workspace_id):
        for stage in stages:
            if stage.default is not None and stage.value not in HUBSPOT_BUILT_IN:
                defaults.setdefault(stage.kind, stage.default)
    return defaults
