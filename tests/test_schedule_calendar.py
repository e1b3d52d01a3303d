"""Send times in the subscriber's timezone: DST switch days never double or drop a send."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from journey.errors import JourneyError
from journey.schedule.calendar import (
    Schedule,
    local_instant,
    next_send_after,
    parse_local_time,
    slots_between,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def daily(at: str, tz: str) -> Schedule:
    return Schedule("daily", parse_local_time(at), tz)


def weekly(day: int, at: str, tz: str) -> Schedule:
    return Schedule("weekly", parse_local_time(at), tz, day_of_week=day)


def monthly(day: int, at: str, tz: str) -> Schedule:
    return Schedule("monthly", parse_local_time(at), tz, day_of_month=day)


def walk(schedule: Schedule, start: datetime, count: int) -> list:
    """Follow next_send_after from slot to slot, as the runner does over time."""
    out, at = [], start
    for _ in range(count):
        slot = next_send_after(schedule, at)
        out.append(slot)
        at = slot.at
    return out


def test_weekly_monday_nine_in_paris_follows_summer_and_winter_time():
    s = weekly(0, "09:00", "Europe/Paris")
    # Sunday 14 June 2026 (CEST, UTC+2) -> Monday 15 June 07:00 UTC.
    slot = next_send_after(s, utc(2026, 6, 14, 12))
    assert slot.at == utc(2026, 6, 15, 7) and slot.key == "2026-06-15T09:00"
    # In winter (CET, UTC+1) the same wall time is 08:00 UTC.
    assert next_send_after(s, utc(2026, 12, 1)).at == utc(2026, 12, 7, 8)


def test_next_send_is_strictly_after_the_instant():
    s = weekly(0, "09:00", "Europe/Paris")
    assert next_send_after(s, utc(2026, 6, 15, 7)).at == utc(2026, 6, 22, 7)
    assert next_send_after(s, utc(2026, 6, 15, 6, 59)).at == utc(2026, 6, 15, 7)


def test_weekday_is_the_subscribers_own():
    # Monday 09:00 in Sydney is still Sunday in UTC.
    slot = next_send_after(weekly(0, "09:00", "Australia/Sydney"), utc(2026, 6, 13))
    assert slot.at == utc(2026, 6, 14, 23)
    assert slot.at.astimezone(ZoneInfo("Australia/Sydney")).weekday() == 0


@pytest.mark.parametrize(
    "tz", ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "UTC", "Asia/Kolkata"]
)
@pytest.mark.parametrize("at", ["09:00", "02:30", "01:45", "00:00", "23:59"])
def test_a_year_of_daily_sends_is_one_per_local_day(tz, at):
    zone = ZoneInfo(tz)
    second = timedelta(seconds=1)
    year = (datetime(2026, 1, 1, tzinfo=zone) - second, datetime(2027, 1, 1, tzinfo=zone) - second)
    slots = slots_between(daily(at, tz), *year)
    local_days = [s.local.date() for s in slots]
    assert len(slots) == 365
    assert local_days == [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]
    assert all(b.at > a.at for a, b in pairwise(slots))
    for s in slots:
        wall = s.at.astimezone(zone).replace(tzinfo=None)
        # The wall time asked for, or (only in a spring-forward gap) a little after it.
        assert timedelta(0) <= wall - s.local <= timedelta(hours=1)
    assert len({s.key for s in slots}) == 365


@pytest.mark.parametrize("tz", ["Europe/Paris", "America/New_York", "Australia/Lord_Howe"])
def test_weekly_sends_across_a_year_keep_the_wall_time(tz):
    zone = ZoneInfo(tz)
    slots = walk(weekly(2, "09:00", tz), utc(2026, 1, 1), 52)
    assert [s.at.astimezone(zone).time() for s in slots] == [time(9, 0)] * 52
    assert {s.at.astimezone(zone).weekday() for s in slots} == {2}
    gaps = {round((b.at - a.at).total_seconds() / 3600, 1) for a, b in pairwise(slots)}
    # A week is 168 hours, or one DST shift more or less (half an hour on Lord Howe).
    assert gaps <= {168.0, 167.0, 169.0, 167.5, 168.5}


def test_paris_spring_forward_sends_a_missing_time_when_the_clock_jumps():
    s = daily("02:30", "Europe/Paris")
    # 29 March 2026: 02:00 CET -> 03:00 CEST; 02:30 does not exist.
    slots = slots_between(s, utc(2026, 3, 27, 12), utc(2026, 3, 30, 12))
    assert [x.key for x in slots] == ["2026-03-28T02:30", "2026-03-29T02:30", "2026-03-30T02:30"]
    assert [x.at for x in slots] == [
        utc(2026, 3, 28, 1, 30),
        utc(2026, 3, 29, 1),
        utc(2026, 3, 30, 0, 30),
    ]
    switch = slots[1].at.astimezone(ZoneInfo("Europe/Paris"))
    assert (switch.hour, switch.minute) == (3, 0)  # the first valid instant after 02:30


def test_paris_fall_back_sends_an_ambiguous_time_once_at_its_first_occurrence():
    s = daily("02:30", "Europe/Paris")
    # 25 October 2026: 03:00 CEST -> 02:00 CET; 02:30 happens twice.
    slots = slots_between(s, utc(2026, 10, 24, 12), utc(2026, 10, 26, 12))
    assert [x.at for x in slots] == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    # Walking from the first 02:30 does not find the second one.
    assert next_send_after(s, utc(2026, 10, 25, 0, 30)).at == utc(2026, 10, 26, 1, 30)


def test_new_york_switch_days():
    s = daily("02:30", "America/New_York")
    # 8 March 2026: 02:00 EST -> 03:00 EDT.
    assert next_send_after(s, utc(2026, 3, 8, 0)).at == utc(2026, 3, 8, 7)  # 03:00 EDT
    one_thirty = daily("01:30", "America/New_York")
    # 1 November 2026: 01:30 EDT (05:30 UTC) then 01:30 EST (06:30 UTC): sent at the first.
    assert [x.at for x in slots_between(one_thirty, utc(2026, 11, 1), utc(2026, 11, 2, 12))] == [
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 2, 6, 30),
    ]


def test_lord_howe_half_hour_dst():
    # Australia/Lord_Howe: UTC+10:30 in winter, +11 in summer, switching by 30 minutes at 02:00.
    tz = ZoneInfo("Australia/Lord_Howe")
    # 4 October 2026: 02:00 -> 02:30, so 02:15 does not exist: sent at 02:30 (+11).
    gap = next_send_after(daily("02:15", "Australia/Lord_Howe"), utc(2026, 10, 3))
    assert gap.key == "2026-10-04T02:15"
    assert gap.at == utc(2026, 10, 3, 15, 30)
    assert gap.at.astimezone(tz).strftime("%H:%M %z") == "02:30 +1100"
    # 5 April 2026: 02:00 -> 01:30, so 01:45 happens twice: once, at the first (+11).
    twice = slots_between(
        daily("01:45", "Australia/Lord_Howe"), utc(2026, 4, 3), utc(2026, 4, 5, 12)
    )
    assert [x.key for x in twice] == ["2026-04-04T01:45", "2026-04-05T01:45"]
    assert twice[1].at == utc(2026, 4, 4, 14, 45)
    # The day after, 01:45 is +10:30.
    assert next_send_after(daily("01:45", "Australia/Lord_Howe"), twice[1].at).at == utc(
        2026, 4, 5, 15, 15
    )


def test_local_instant_resolves_gaps_to_the_jump_and_overlaps_to_the_first():
    paris = ZoneInfo("Europe/Paris")
    assert local_instant(datetime(2026, 3, 29, 2, 0), paris) == utc(2026, 3, 29, 1)
    assert local_instant(datetime(2026, 3, 29, 2, 59), paris) == utc(2026, 3, 29, 1)
    assert local_instant(datetime(2026, 3, 29, 3, 0), paris) == utc(2026, 3, 29, 1)
    assert local_instant(datetime(2026, 10, 25, 2, 0), paris) == utc(2026, 10, 25, 0)


def test_monthly_day_31_falls_on_the_last_day_of_short_months():
    slots = walk(monthly(31, "08:00", "Europe/Paris"), utc(2026, 1, 1), 4)
    assert [s.local.date() for s in slots] == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
    ]
    assert [s.key for s in walk(monthly(15, "08:00", "UTC"), utc(2026, 6, 15, 8), 2)] == [
        "2026-07-15T08:00",
        "2026-08-15T08:00",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cadence": "hourly"}, "Unknown cadence"),
        ({"cadence": "weekly", "day_of_week": None}, "day of the week"),
        ({"cadence": "weekly", "day_of_week": 7}, "day of the week"),
        ({"cadence": "monthly", "day_of_month": 0}, "day of the month"),
        ({"timezone": "Mars/Olympus"}, "Unknown timezone"),
    ],
)
def test_bad_schedules_say_what_is_expected(kwargs, message):
    args = {"cadence": "daily", "local_time": time(9), "timezone": "UTC", **kwargs}
    with pytest.raises(JourneyError, match=message):
        Schedule(**args)


@pytest.mark.parametrize("bad", ["25:00", "9", "09:60", "nine", ""])
def test_bad_times_are_refused(bad):
    with pytest.raises(JourneyError, match="HH:MM"):
        parse_local_time(bad)


def test_describe():
    assert weekly(0, "09:00", "Europe/Paris").describe() == "every Monday at 09:00 (Europe/Paris)"
    assert daily("7:05", "UTC").describe() == "every day at 07:05 (UTC)"
