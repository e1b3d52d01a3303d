"""When a digest is due: wall-clock times in the subscriber's timezone, DST-safe.

A subscription says "09:00 on Mondays, Europe/Paris". Adding 7 days of
seconds to the last send would drift by an hour at every DST switch, so each
send is computed from the local calendar instead: one slot per scheduled local
date, at the local wall time, turned into an instant with zoneinfo.

Two wall times need a rule, and the rule is the same everywhere:

- a time that does not exist that day (spring forward: 02:30 in Paris on the last
  Sunday of March) is sent at the first valid instant after it, the moment the
  clock jumps (03:00 local);
- a time that happens twice (fall back: 02:30 on the last Sunday of October) is
  sent once, at its first occurrence.

Because slots are indexed by local date, a switch day can neither double a
send nor drop one. A slot's key is the local wall time as scheduled
(`2026-03-29T02:30`), which is what the delivery rows are unique on.
"""

from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from journey.errors import JourneyError
from journey.models.schedule import CADENCES, DigestSubscription
from journey.periods import zone

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_local_time(text: str) -> time:
    """`HH:MM` (24-hour) to a time, or a JourneyError saying what is expected."""
    match = _HHMM.match(text.strip())
    if not match:
        raise JourneyError(f"{text!r} is not a time of day: use HH:MM, 24-hour, e.g. 09:00.")
    return time(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True)
class Schedule:
    """A subscription's calendar, validated. Weekday 0 is Monday."""

    cadence: str
    local_time: time
    timezone: str
    day_of_week: int | None = None
    day_of_month: int | None = None

    def __post_init__(self) -> None:
        if self.cadence not in CADENCES:
            raise JourneyError(f"Unknown cadence {self.cadence!r}: use {', '.join(CADENCES)}.")
        if self.cadence == "weekly" and (
            self.day_of_week is None or not 0 <= self.day_of_week <= 6
        ):
            raise JourneyError("A weekly digest needs a day of the week (Monday to Sunday).")
        if self.cadence == "monthly" and (
            self.day_of_month is None or not 1 <= self.day_of_month <= 31
        ):
            raise JourneyError("A monthly digest needs a day of the month from 1 to 31.")
        zone(self.timezone)  # raises a JourneyError naming the bad timezone

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)

    @classmethod
    def of(cls, subscription: DigestSubscription) -> Schedule:
        return cls(
            cadence=subscription.cadence,
            local_time=parse_local_time(subscription.local_time),
            timezone=subscription.timezone,
            day_of_week=subscription.day_of_week,
            day_of_month=subscription.day_of_month,
        )

    def describe(self) -> str:
        """Plain words, e.g. "every Monday at 09:00 (Europe/Paris)"."""
        at = self.local_time.strftime("%H:%M")
        if self.cadence == "daily":
            when = "every day"
        elif self.cadence == "weekly":
            when = f"every {WEEKDAYS[self.day_of_week or 0].capitalize()}"
        else:
            when = f"on day {self.day_of_month} of every month (or its last day)"
        return f"{when} at {at} ({self.timezone})"


@dataclass(frozen=True)
class Slot:
    """One scheduled send: the wall time asked for, and the instant it happens."""

    local: datetime  # naive local wall time, as scheduled
    at: datetime  # aware UTC instant of the send

    @property
    def key(self) -> str:
        """The period key the delivery rows are unique on: the scheduled local time."""
        return self.local.strftime("%Y-%m-%dT%H:%M")


def local_instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of a naive local wall time, by the rules in the module docstring."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first  # exists; fold=0 is the earlier of the two when it is ambiguous
    # In a gap, fold=0 reads the wall time with the offset from before the jump
    # (an instant after it) and fold=1 with the one after (an instant before).
    # The first instant whose wall time is at or past `wall` is the jump itself.
    lo = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = first
    if lo > hi:  # pragma: no cover - zoneinfo always brackets the gap this way
        lo, hi = hi, lo
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _dates(schedule: Schedule, start: date) -> Iterator[date]:
    """The scheduled local dates from `start` on, in order (an endless generator)."""
    if schedule.cadence == "daily":
        day = start
        while True:
            yield day
            day += timedelta(days=1)
    if schedule.cadence == "weekly":
        day = start + timedelta(days=((schedule.day_of_week or 0) - start.weekday()) % 7)
        while True:
            yield day
            day += timedelta(days=7)
    month = start.replace(day=1)
    while True:
        last = monthrange(month.year, month.month)[1]
        day = month.replace(day=min(schedule.day_of_month or 1, last))
        if day >= start:
            yield day
        month = _add_months(month, 1)


def slots_from(schedule: Schedule, start: date) -> Iterator[Slot]:
    """The slots on or after the local date `start`, in strictly increasing instants.

    A slot whose instant does not move past the previous one is dropped: that only
    happens when a zone skips a whole day (Samoa, 2011-12-30) and two wall times
    resolve to the same jump, which must still be one send.
    """
    tz = schedule.tz
    previous: datetime | None = None
    for day in _dates(schedule, start):
        wall = datetime.combine(day, schedule.local_time)
        at = local_instant(wall, tz)
        if previous is not None and at <= previous:
            continue
        previous = at
        yield Slot(wall, at)


def next_send_after(schedule: Schedule | DigestSubscription, after: datetime) -> Slot:
    """The first slot strictly after the instant `after`."""
    schedule = schedule if isinstance(schedule, Schedule) else Schedule.of(schedule)
    # Start a day early: a wall time in a gap near midnight resolves into the next date.
    start = after.astimezone(schedule.tz).date() - timedelta(days=1)
    for slot in slots_from(schedule, start):
        if slot.at > after:
            return slot
    raise AssertionError("unreachable: slots_from never ends")  # pragma: no cover


def slots_between(
    schedule: Schedule | DigestSubscription, after: datetime, until: datetime
) -> list[Slot]:
    """Every slot with after < instant <= until, oldest first."""
    schedule = schedule if isinstance(schedule, Schedule) else Schedule.of(schedule)
    out: list[Slot] = []
    start = after.astimezone(schedule.tz).date() - timedelta(days=1)
    for slot in slots_from(schedule, start):
        if slot.at > until:
            break
        if slot.at > after:
            out.append(slot)
    return out
