"""Digests and alerts, transport-agnostic: when they are due, what they say, and how
each is delivered exactly once by many replicas. The chat adapter (bot/) implements
`DeliveryPort` and calls `run_due` on a timer.

    calendar.py      next send time in the subscriber's timezone, DST-safe
    subscriptions.py subscribe, pause, resume
    digests.py       the Digest object
    alerts.py        rule evaluation, statistics and the alert lifecycle
    leases.py        claims and leases in the database (the exactly-once part)
    runner.py        run_due: one scheduler tick
    syncs.py         run_due_syncs: each connected source synced once per interval
"""

from journey.schedule.alerts import (
    AlertNotice,
    Transition,
    check_due_rules,
    ensure_default_rules,
    evaluate_rule,
    judge,
)
from journey.schedule.calendar import Schedule, Slot, next_send_after, slots_between
from journey.schedule.digests import Digest, Headline, build_digest, digest_for_subscription
from journey.schedule.runner import (
    Delivery,
    DeliveryPort,
    DeliveryResult,
    PauseNotice,
    RunReport,
    run_due,
)
from journey.schedule.subscriptions import (
    pause_subscription,
    resume_subscription,
    subscribe,
    subscriptions,
)

__all__ = [
    "AlertNotice",
    "Delivery",
    "DeliveryPort",
    "DeliveryResult",
    "Digest",
    "Headline",
    "PauseNotice",
    "RunReport",
    "Schedule",
    "Slot",
    "Transition",
    "build_digest",
    "check_due_rules",
    "digest_for_subscription",
    "ensure_default_rules",
    "evaluate_rule",
    "judge",
    "next_send_after",
    "pause_subscription",
    "resume_subscription",
    "run_due",
    "slots_between",
    "subscribe",
    "subscriptions",
]
