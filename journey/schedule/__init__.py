"""Digests and alerts, transport-agnostic: when they are due, what they say, and how
each is delivered exactly once by many replicas.

    calendar.py      next send time in the subscriber's timezone, DST-safe
"""

from journey.schedule.calendar import Schedule, Slot, next_send_after, slots_between

__all__ = ["Schedule", "Slot", "next_send_after", "slots_between"]
