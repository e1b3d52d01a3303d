"""The period grammar: what `--period` means, down to the second."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from builders import NOW, utc

from journey.errors import JourneyError
from journey.periods import PERIOD_HELP, Period, parse_period, range_period, resolve_period

NY = ZoneInfo("America/New_York")

# NOW is Monday 2026-06-15 12:00 UTC.


def bounds(period: Period) -> tuple[datetime, datetime]:
    return period.start.astimezone(UTC), period.end.astimezone(UTC)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        # Today included, so 30d ends at tomorrow's midnight and starts 29 days
        # before today: June 15 - 29 days = May 17.
        ("30d", utc(2026, 5, 17), utc(2026, 6, 16)),
        ("1d", utc(2026, 6, 15), utc(2026, 6, 16)),
        # 12 weeks = 84 days ending today: June 15 - 83 days. June 15 -> May 15 is
        # 31 days, -> April 15 another 30 (61), then 22 more days -> March 24.
        ("12w", utc(2026, 3, 24), utc(2026, 6, 16)),
        # 6 months back from June 15 is December 15; the day after starts the period.
        ("6m", utc(2025, 12, 16), utc(2026, 6, 16)),
        ("1m", utc(2026, 5, 16), utc(2026, 6, 16)),
        ("today", utc(2026, 6, 15), utc(2026, 6, 16)),
        # June 15 2026 is a Monday, so this week starts today; a calendar period under
        # way ends with today (it is compared with the same days of the previous one).
        ("this-week", utc(2026, 6, 15), utc(2026, 6, 16)),
        ("last-week", utc(2026, 6, 8), utc(2026, 6, 15)),
        ("this-month", utc(2026, 6, 1), utc(2026, 6, 16)),
        ("last-month", utc(2026, 5, 1), utc(2026, 6, 1)),
        ("this-quarter", utc(2026, 4, 1), utc(2026, 6, 16)),
        ("last-quarter", utc(2026, 1, 1), utc(2026, 4, 1)),
        ("this-year", utc(2026, 1, 1), utc(2026, 6, 16)),
        ("last-year", utc(2025, 1, 1), utc(2026, 1, 1)),
        # Inclusive ISO range: March 31 is in, so the period ends at April 1 00:00.
        ("2026-01-01..2026-03-31", utc(2026, 1, 1), utc(2026, 4, 1)),
        ("2026-03-01", utc(2026, 3, 1), utc(2026, 3, 2)),
        ("2026-03-01..2026-03-01", utc(2026, 3, 1), utc(2026, 3, 2)),
        ("  This-Month ", utc(2026, 6, 1), utc(2026, 6, 16)),
    ],
)
def test_parse_period_in_utc(text, start, end):
    assert bounds(parse_period(text, NOW)) == (start, end)


def test_calendar_words_across_the_year_boundary():
    # February 10, 2026: this quarter is Q1 2026, so the last one is Q4 2025.
    feb = utc(2026, 2, 10, 9)
    assert bounds(parse_period("last-quarter", feb)) == (utc(2025, 10, 1), utc(2026, 1, 1))
    assert bounds(parse_period("this-quarter", feb)) == (utc(2026, 1, 1), utc(2026, 2, 11))
    jan = utc(2026, 1, 20)
    assert bounds(parse_period("last-month", jan)) == (utc(2025, 12, 1), utc(2026, 1, 1))
    # 3 months back from January 20 is October 20, 2025.
    assert bounds(parse_period("3m", jan)) == (utc(2025, 10, 21), utc(2026, 1, 21))


def test_a_calendar_period_under_way_is_compared_with_the_same_days_of_the_previous_one():
    # June 7: seven days of June's thirty, against May 1-7 (not the whole of May).
    june7 = utc(2026, 6, 7, 18)
    month = parse_period("this-month", june7)
    assert month.partial == (7, 30)
    assert bounds(month.previous()) == (utc(2026, 5, 1), utc(2026, 5, 8))
    assert month.previous().label == "the same 7 days of the previous month"
    # March 30 against February: the comparison stops at February's end.
    march30 = parse_period("this-month", utc(2026, 3, 30, 9))
    assert march30.partial == (30, 31)
    assert bounds(march30.previous()) == (utc(2026, 2, 1), utc(2026, 3, 1))
    # The last day of a month is the whole month, compared as any whole period is.
    june30 = parse_period("this-month", utc(2026, 6, 30, 9))
    assert june30.partial is None and bounds(june30) == (utc(2026, 6, 1), utc(2026, 7, 1))


@pytest.mark.parametrize(
    ("today", "text", "start"),
    [
        # One month before May 31 is April 30 (April has no 31st), so "the last
        # month, today included" is May 1 .. May 31, not a day of April.
        (date(2026, 5, 31), "1m", utc(2026, 5, 1)),
        (date(2026, 5, 30), "1m", utc(2026, 5, 1)),
        (date(2026, 5, 29), "1m", utc(2026, 4, 30)),
        # One month before March 31 clamps to February 28: the period is March.
        (date(2026, 3, 31), "1m", utc(2026, 3, 1)),
        # 12 months before 2026-01-31 is 2025-01-31: starts 2025-02-01.
        (date(2026, 1, 31), "12m", utc(2025, 2, 1)),
        # 3 months before August 31 is May 31: starts June 1.
        (date(2026, 8, 31), "3m", utc(2026, 6, 1)),
    ],
)
def test_months_back_from_the_end_of_a_month(today, text, start):
    now = datetime(today.year, today.month, today.day, 15, tzinfo=UTC)
    period = parse_period(text, now)
    assert period.start == start
    assert period.end == utc(today.year, today.month, today.day) + timedelta(days=1)


@pytest.mark.parametrize(
    "text", ["fortnight", "", "30x", "0d", "last-decade", "-5d", "2026/01/01", "12345d"]
)
def test_bad_period_raises_and_lists_the_grammar(text):
    with pytest.raises(JourneyError) as err:
        parse_period(text, NOW)
    message = str(err.value)
    assert PERIOD_HELP in message
    for example in ("30d", "12w", "6m", "this-month", "last-quarter", "2026-01-01..2026-03-31"):
        assert example in message


@pytest.mark.parametrize("text", ["2026-02-30", "2026-01-01..2026-13-01", "2026-01-01..soon"])
def test_bad_dates_say_which_format_to_use(text):
    with pytest.raises(JourneyError, match="YYYY-MM-DD"):
        parse_period(text, NOW)


def test_range_that_ends_before_it_starts():
    with pytest.raises(JourneyError, match="before it starts"):
        parse_period("2026-03-31..2026-03-01", NOW)


def test_timezone_shifts_the_boundaries_in_summer():
    # 02:00 UTC on June 15 is still 22:00 on June 14 in New York (EDT, UTC-4):
    # "today" is June 14 there, midnight to midnight local = 04:00 to 04:00 UTC.
    now = utc(2026, 6, 15, 2)
    assert bounds(parse_period("today", now, "America/New_York")) == (
        utc(2026, 6, 14, 4),
        utc(2026, 6, 15, 4),
    )
    assert bounds(parse_period("today", now)) == (utc(2026, 6, 15), utc(2026, 6, 16))
    # On July 1 at 02:00 UTC it is still June 30 in New York.
    july = utc(2026, 7, 1, 2)
    period = parse_period("this-month", july, "America/New_York")
    assert bounds(period) == (utc(2026, 6, 1, 4), utc(2026, 7, 1, 4))
    assert period.start.tzinfo == NY
    assert bounds(parse_period("this-month", july)) == (utc(2026, 7, 1), utc(2026, 7, 2))


def test_timezone_in_winter_and_across_daylight_saving():
    # EST is UTC-5 in January; the range's local midnights are 05:00 UTC.
    period = parse_period("2026-01-01..2026-01-31", NOW, "America/New_York")
    assert bounds(period) == (utc(2026, 1, 1, 5), utc(2026, 2, 1, 5))
    # March 2026 starts in EST (UTC-5) and ends in EDT (UTC-4, from March 8):
    # 31 local days that last one hour less than 31 * 24 hours.
    march = parse_period("2026-03-01..2026-03-31", NOW, "America/New_York")
    assert bounds(march) == (utc(2026, 3, 1, 5), utc(2026, 4, 1, 4))
    assert (march.end.timestamp() - march.start.timestamp()) / 3600 == 31 * 24 - 1


def test_previous_period_has_equal_length_and_ends_where_this_one_starts():
    period = parse_period("30d", NOW)  # May 17 .. June 16
    previous = period.previous()
    assert bounds(previous) == (utc(2026, 4, 17), utc(2026, 5, 17))
    assert previous.length == period.length
    assert previous.label == "previous 30 days"
    # A whole calendar month's previous period is the same number of days before it:
    # June has 30 days, so May 2 .. June 1 (not the calendar month of May). On June 15
    # this-month is under way: its first 15 days against May's first 15.
    june = parse_period("2026-06-01..2026-06-30", NOW).previous()
    assert bounds(june) == (utc(2026, 5, 2), utc(2026, 6, 1))
    assert bounds(parse_period("this-month", NOW).previous()) == (utc(2026, 5, 1), utc(2026, 5, 16))
    # Twice back from an ISO range.
    q = range_period(date(2026, 3, 1), date(2026, 3, 10))  # 10 days
    assert bounds(q.previous().previous()) == (utc(2026, 2, 9), utc(2026, 2, 19))


def test_previous_period_keeps_local_midnights():
    # In New York the previous of March 2026 (31 local days) starts at local
    # midnight on January 29 (05:00 UTC, EST) and ends at March 1 local midnight.
    march = parse_period("2026-03-01..2026-03-31", NOW, "America/New_York")
    previous = march.previous()
    assert previous.end == march.start
    assert bounds(previous) == (utc(2026, 1, 29, 5), utc(2026, 3, 1, 5))


def test_resolve_period_since_and_until():
    # Nothing given: the default period (30d).
    assert resolve_period(NOW) == parse_period("30d", NOW)
    # --since/--until win over --period, and are inclusive.
    both = resolve_period(NOW, period="6m", since="2026-02-01", until="2026-02-28")
    assert bounds(both) == (utc(2026, 2, 1), utc(2026, 3, 1))
    # A lone --until keeps the default 30 days ending that day: May 2 .. May 31.
    assert bounds(resolve_period(NOW, until="2026-05-31")) == (utc(2026, 5, 2), utc(2026, 6, 1))
    # A lone --since runs to today.
    assert bounds(resolve_period(NOW, since="2026-06-01")) == (utc(2026, 6, 1), utc(2026, 6, 16))
    with pytest.raises(JourneyError, match="--until"):
        resolve_period(NOW, until="yesterday")


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        # A year back from June 15 2026 is June 15 2025; the day after starts the period.
        ("1y", utc(2025, 6, 16), utc(2026, 6, 16)),
        ("2y", utc(2024, 6, 16), utc(2026, 6, 16)),
        # Year to date: January 1 to today, like this-year.
        ("ytd", utc(2026, 1, 1), utc(2026, 6, 16)),
        # The latest quarter of that name that has begun: Q1 and Q2 of 2026 (Q2 under
        # way, so to date), Q3 and Q4 of 2025.
        ("q1", utc(2026, 1, 1), utc(2026, 4, 1)),
        ("Q2", utc(2026, 4, 1), utc(2026, 6, 16)),
        ("q3", utc(2025, 7, 1), utc(2025, 10, 1)),
        ("q4", utc(2025, 10, 1), utc(2026, 1, 1)),
    ],
)
def test_year_and_quarter_words(text, start, end):
    assert bounds(parse_period(text, NOW)) == (start, end)


def test_year_words_equal_their_months_and_calendar_names():
    assert bounds(parse_period("1y", NOW)) == bounds(parse_period("12m", NOW))
    ytd, this_year = parse_period("ytd", NOW), parse_period("this-year", NOW)
    assert ytd == this_year and ytd.partial == (166, 365)
    q2 = parse_period("q2", NOW)
    assert q2.partial == (76, 91) and q2.previous().start.astimezone(UTC) == utc(2026, 1, 1)
    assert parse_period("q4", NOW).label == "Q4 2025"
