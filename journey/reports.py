"""The report objects: plain typed data, no formatting.

Metrics build these; renderers (terminal text, JSON, later Slack blocks and
charts) only read them. Anything a renderer needs, including the caveats a
reader must see (inferred stages, heuristics), is a field here, so every
renderer can say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from journey.periods import Period
from journey.playbooks import Playbook
from journey.stats import Rate


@dataclass(frozen=True)
class PeopleCount:
    """How many records from how many sources are how many people (journey/people.py)."""

    records: int
    sources: int
    people: int


@dataclass(frozen=True)
class Business:
    """Whose numbers a report shows. `demo`: the workspace holds the built-in demo store;
    `mixed`: it also holds data of the business's own (imported with --into-demo). Every
    header says so, so nobody reads the demo clinic's figures as their own."""

    workspace_id: str
    name: str
    demo: bool = False
    mixed: bool = False


@dataclass(frozen=True)
class StageStep:
    """One stage of the funnel for the period's cohort."""

    stage: str
    reached: int
    # Customers counted at this stage only because they reached a later one.
    inferred: int
    overall: Rate  # reached / entered
    step: Rate | None  # reached / reached at the previous stage (None for the first)
    median_hours_from_previous: float | None


@dataclass(frozen=True)
class StepChange:
    """A step's conversion now against the previous period of equal length."""

    from_stage: str
    to_stage: str
    current: Rate
    previous: Rate
    delta_points: float | None
    p_value: float | None
    significant: bool


@dataclass(frozen=True)
class ChannelFunnel:
    channel: str
    entered: int
    reached: list[int]
    overall: Rate  # entered -> last stage reached by a purchase, or the final stage


@dataclass(frozen=True)
class Insight:
    """The weakest stage and what to do about it; the sentence is the renderer's job.

    reason: "largest_drop" (lowest step conversion), "largest_decline" (a step's
    conversion fell, significantly) or "returning_decline" (fewer customers came
    back than in the previous period, significantly; then `rate` is None and the
    counts say it).
    """

    stage: str
    reason: str
    from_stage: str | None
    rate: Rate | None
    previous: Rate | None
    delta_points: float | None
    lost: int
    playbook: Playbook | None
    current_count: int | None = None
    previous_count: int | None = None
    p_value: float | None = None


@dataclass(frozen=True)
class FunnelReport:
    workspace_id: str
    period: Period
    previous_period: Period
    channel_filter: str | None
    stages: list[StageStep]
    entered: int
    previous_entered: int
    biggest_drop: StepChange | None  # lowest conversion among the steps up to the purchase
    changes: list[StepChange]
    channels: list[ChannelFunnel]
    purchase_stage: str | None
    insight: Insight | None
    generated_at: datetime
    # 1: medians over every customer; k > 1: over an even 1-in-k sample (large cohorts).
    median_sample_every: int = 1
    business: Business | None = None  # set by journey.reporting
    people: PeopleCount | None = None  # the workspace's records joined into people


@dataclass(frozen=True)
class CohortRow:
    month: str  # YYYY-MM of the first purchase
    customers: int
    retained: list[Rate | None]  # month +1, +2, ...; None where the month has not happened yet
    # Index in `retained` of the month still under way at the report's end (its share
    # counts only the days so far, so it is not comparable with whole months), or None.
    partial: int | None = None


@dataclass(frozen=True)
class AtRiskCustomer:
    customer_id: int
    external_id: str
    name: str | None
    email: str | None
    last_purchase: datetime
    days_since_purchase: float
    usual_gap_days: float
    gap_is_typical: bool  # one-time buyer: the workspace's typical gap was used
    purchases: int
    revenue_cents: int
    value_at_risk_cents: int
    # The sources this person's records come from, by name (journey.reporting), when the
    # workspace has more than one source; () otherwise.
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class RetentionReport:
    workspace_id: str
    period: Period
    currency: str
    repeat_rate: Rate  # buyers with a second purchase day / buyers, as of the period end
    previous_repeat_rate: Rate
    cohorts: list[CohortRow]
    churn: Rate  # active customers at the start who lapsed during the period
    returning: int  # customers who bought again (not their first purchase day) in the period
    previous_returning: int  # the same in the previous period of equal length
    at_risk_count: int
    value_at_risk_cents: int
    at_risk: list[AtRiskCustomer]
    typical_gap_days: float | None
    at_risk_factor: float
    method: str = "heuristic"
    generated_at: datetime | None = None
    business: Business | None = None  # set by journey.reporting
    # The cohort matrix's month under way (YYYY-MM, UTC like the cohorts), its days so far
    # and its length; its cells are `CohortRow.partial`. None when the last month is whole.
    month_so_far: tuple[str, int, int] | None = None


@dataclass(frozen=True)
class ReviewCandidate:
    customer_id: int
    external_id: str
    name: str | None
    email: str | None
    last_purchase: datetime
    days_since_purchase: float
    purchases: int
    last_order_cents: int | None
    revenue_cents: int
    sources: tuple[str, ...] = ()  # as AtRiskCustomer.sources


@dataclass(frozen=True)
class ReviewTracking:
    asked: int
    skipped: int
    answered: int
    conversion: Rate  # answered / asked


@dataclass(frozen=True)
class ReviewReport:
    workspace_id: str
    period: Period
    currency: str
    window_days: tuple[int, int]
    cooldown_days: int
    total_candidates: int
    candidates: list[ReviewCandidate]
    tracking: ReviewTracking
    generated_at: datetime
    notes: list[str] = field(default_factory=list)
    business: Business | None = None  # set by journey.reporting


@dataclass(frozen=True)
class ChurnCustomer:
    """A customer at risk of churning, with what the model (or the heuristic) says about them."""

    customer_id: int
    external_id: str
    name: str | None
    email: str | None
    last_purchase: datetime
    days_since_purchase: float
    purchases: int  # distinct purchase days
    revenue_cents: int
    # Expected revenue lost if they have gone: (1 - P(alive)) x a year of their purchases
    # were they still active, at their average order (the heuristic's value at risk otherwise).
    value_at_risk_cents: int
    p_alive: float | None = None  # None under the heuristic
    expected_purchases: float | None = None  # in the next `horizon_days`
    expected_value_cents: int | None = None  # revenue the model expects in the next `value_days`
    # Expected spend over the next 12 months, discounted (journey/metrics/clv.py): the value
    # report's number. None under the heuristic or when the spend model refused.
    value_12m_cents: int | None = None
    sources: tuple[str, ...] = ()  # as AtRiskCustomer.sources


@dataclass(frozen=True)
class ChurnReport:
    """Who is likely to have stopped buying, as of the period's end (or now, if earlier).

    method is "bg_nbd" (the fitted model, see journey/metrics/churn_model.py) or
    "heuristic" (the retention report's documented rule), with `fallback_reason`
    saying in words why the model was not used. r, alpha, a, b are the fitted
    BG/NBD parameters, alpha in `time_unit`.
    """

    workspace_id: str
    period: Period
    as_of: datetime
    currency: str
    method: str
    fallback_reason: str | None
    time_unit: str
    r: float | None
    alpha: float | None
    a: float | None
    b: float | None
    log_likelihood: float | None
    customers: int  # buyers before the as-of time
    repeat_buyers: int  # of those, buyers on two or more distinct days
    at_risk_count: int
    value_at_risk_cents: int
    likely_lost_count: (
        int | None
    )  # P(alive) below `lost_below` (not counted at risk); None: heuristic
    expected_active: float | None  # sum of P(alive) over the buyers
    expected_purchases: float | None  # all buyers, in the next `horizon_days`
    at_risk: list[ChurnCustomer]  # most value at risk first
    at_risk_below: float | None  # at risk: lost_below <= P(alive) < at_risk_below
    lost_below: float | None
    horizon_days: int = 90
    value_days: int = 365
    at_risk_factor: float | None = None  # the heuristic's k, when it was used
    generated_at: datetime | None = None
    discount_rate: float | None = None  # of the customers' 12-month value
    value_12m_reason: str | None = None  # why there is no 12-month value (spend model refused)
    business: Business | None = None  # set by journey.reporting


@dataclass(frozen=True)
class ChannelValue:
    """What the customers one acquisition channel brought in the period are worth.

    channel "other" groups the channels past the top five by customers; "unknown" is
    customers with no channel recorded. Values are None when the models could not be
    fitted; intervals are 95% bootstrap intervals over the channel's customers.
    """

    channel: str
    customers: int  # acquired (entered the journey) in the period
    buyers: int  # of those, bought before the as-of time
    conversion: Rate  # buyers / customers
    revenue_cents: int  # what they have spent so far
    value_per_customer_cents: int | None  # expected 12-month value per acquired customer
    value_per_customer_interval: tuple[int, int] | None
    value_per_buyer_cents: int | None  # the same per buyer
    value_per_buyer_interval: tuple[int, int] | None


@dataclass(frozen=True)
class ValueReport:
    """What a customer and an acquisition channel are worth over the next `horizon_months`.

    A buyer's value = expected purchases in the horizon (BG/NBD, as in the churn report)
    x expected spend per purchase (Gamma-Gamma), discounted at `discount_rate` a year.
    method "models" when both models were fitted, else "unavailable" with the reason in
    `fallback_reason`; channel counts, conversion and revenue are there either way.
    best_channel / worst_channel are set only when the intervals separate that channel
    from every other named channel.
    """

    workspace_id: str
    period: Period
    as_of: datetime
    currency: str
    method: str
    fallback_reason: str | None
    discount_rate: float
    horizon_months: int
    buyers: int  # every buyer before the as-of time (what the models were fitted on)
    repeat_buyers: int
    r: float | None
    alpha: float | None  # days
    a: float | None
    b: float | None
    p: float | None
    q: float | None
    gamma: float | None  # currency units
    spend_correlation: float | None  # repeat purchases vs their average value
    mean_spend_cents: int | None  # expected spend per purchase of a new buyer
    value_per_buyer_cents: int | None  # mean 12-month value over every buyer
    channels: list[ChannelValue]
    best_channel: str | None
    worst_channel: str | None
    bootstrap_samples: int
    generated_at: datetime | None = None
    business: Business | None = None  # set by journey.reporting
