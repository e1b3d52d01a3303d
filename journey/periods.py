"""The period grammar shared by the CLI and (later) the Slack commands.

    30d, 12w, 6m          the last N days / weeks / months, today included
    today, this-week, this-month, this-quarter, this-year
    last-week, last-month, last-quarter, last-year
    2026-01-01..2026-03-31  an inclusive range of ISO dates
    2026-03-01             a single ISO date is a one-day period

Calendar words follow the workspace's timezone; periods are half-open
[start, end) internally, so inclusive user dates end at the next midnight.
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from journey.errors import JourneyError

PERIOD_HELP = (
    "Use a number of days, weeks, months or years (30d, 12w, 6m, 1y), a calendar word "
    "(today, this-week, this-month, this-quarter, this-year, ytd, last-week, last-month, "
    "last-quarter, last-year), a quarter (q1..q4: the latest one begun), a month (november), an ISO date "
    "(2026-03-01) or a range (2026-01-01..2026-03-31)."
)
DEFAULT_PERIOD = "30d"
_RELATIVE = re.compile(r"^(\d{1,4})([dwmy])$")
# "30 days", "12 weeks", "6 months", "1 year": the same lengths, spelled out.
_SPELLED = re.compile(
    r"^(\d{1,4})\s*(d)ays?$|^(\d{1,4})\s*(w)eeks?$|^(\d{1,4})\s*(m)onths?$|^(\d{1,4})\s*(y)ears?$"
)
_QUARTER = re.compile(r"^q([1-4])$")
# Words people type for a period that already has a name here.
_SYNONYMS = {"ytd": "this-year", "year-to-date": "this-year"}


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime  # exclusive
    label: str
    # A calendar period still under way (this-month on the 7th): (days so far, days in
    # all), and the same days of the one before it, which is what it is compared with;
    # a whole previous month against seven days would read as a collapse.
    partial: tuple[int, int] | None = None
    compare: Period | None = None
    unit: str | None = None  # week, month, quarter or year, for a partial period

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def previous(self) -> Period:
        """What this period is compared with: the period of equal length just before it,
        or, for a calendar period under way, the same elapsed days of the previous one."""
        if self.compare is not None:
            return self.compare
        return Period(self.start - self.length, self.start, f"previous {self.length.days} days")


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise JourneyError(
            f"Unknown timezone {name!r}: use an IANA name such as Europe/Paris or America/New_York."
        ) from exc


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def parse_date(text: str, what: str = "date") -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise JourneyError(
            f"{what} {text!r} is not a date: use YYYY-MM-DD, e.g. 2026-03-31."
        ) from exc


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def parse_period(text: str, now: datetime, timezone: str = "UTC") -> Period:
    """Turn the user's words into a Period, or raise a JourneyError that lists the grammar."""
    tz = zone(timezone)
    today = now.astimezone(tz).date()
    tomorrow = _midnight(today + timedelta(days=1), tz)
    word = text.strip().lower()
    word = _SYNONYMS.get(word, word)
    if spelled := _SPELLED.match(word):
        word = "".join(g for g in spelled.groups() if g)
    if match := _RELATIVE.match(word):
        n, unit = int(match.group(1)), match.group(2)
        if n == 0:
            raise JourneyError(f"Period {text!r} is empty. {PERIOD_HELP}")
        if unit == "y":  # a year is twelve months, so 1y and 12m are the same period
            n, unit = n * 12, "m"
            if n > 9999:
                raise JourneyError(f"Period {text!r} is too long. {PERIOD_HELP}")
        if unit == "m":
            back = _add_months(today.replace(day=1), -n)
            last_day = monthrange(back.year, back.month)[1]
            start = _midnight(back.replace(day=min(today.day, last_day)) + timedelta(days=1), tz)
        else:
            days = n * (7 if unit == "w" else 1)
            start = _midnight(today - timedelta(days=days - 1), tz)
        return Period(start, tomorrow, f"last {text.strip().lower()}")
    if match := _QUARTER.match(word):
        # The latest such quarter that has begun: q4 in February is last year's.
        q = int(match.group(1))
        year = today.year if 3 * (q - 1) + 1 <= today.month else today.year - 1
        first = date(year, 3 * (q - 1) + 1, 1)
        after = _add_months(first, 3)
        if first <= today < after:  # the quarter under way, compared like this-quarter
            return _to_date("this-quarter", first, after, today, _add_months(first, -3), tz)
        return Period(_midnight(first, tz), _midnight(after, tz), f"Q{q} {year}")
    month_start = today.replace(day=1)
    quarter_start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    week_start = today - timedelta(days=today.weekday())
    calendar: dict[str, tuple[date, date]] = {
        "today": (today, today + timedelta(days=1)),
        "this-week": (week_start, week_start + timedelta(days=7)),
        "last-week": (week_start - timedelta(days=7), week_start),
        "this-month": (month_start, _add_months(month_start, 1)),
        "last-month": (_add_months(month_start, -1), month_start),
        "this-quarter": (quarter_start, _add_months(quarter_start, 3)),
        "last-quarter": (_add_months(quarter_start, -3), quarter_start),
        "this-year": (date(today.year, 1, 1), date(today.year + 1, 1, 1)),
        "last-year": (date(today.year - 1, 1, 1), date(today.year, 1, 1)),
    }
    if word in calendar:
        first, after = calendar[word]
        if word.startswith("this-") and today + timedelta(days=1) < after:
            return _to_date(word, first, after, today, calendar[f"last-{word[5:]}"][0], tz)
        return Period(_midnight(first, tz), _midnight(after, tz), word)
    if ".." in word:
        left, _, right = word.partition("..")
        first, last = parse_date(left, "Start date"), parse_date(right, "End date")
        return range_period(first, last, timezone)
    if re.match(r"^\d{4}-\d{2}-\d{2}$", word):
        day = parse_date(word)
        return range_period(day, day, timezone)
    if (month := _month_number(word)) is not None:
        # The latest such month: this one (so far) or the one that has passed.
        year = today.year if month <= today.month else today.year - 1
        if (year, month) == (today.year, today.month):
            return parse_period("this-month", now, timezone)
        first = date(year, month, 1)
        return Period(_midnight(first, tz), _midnight(_add_months(first, 1), tz), word)
    raise JourneyError(f"I don't understand the period {text!r}.{_suggestion(word)} {PERIOD_HELP}")


_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_WORDS = (
    "today",
    "ytd",
    *(f"{w}-{u}" for w in ("this", "last") for u in ("week", "month", "quarter", "year")),
    *_MONTHS,
)


def _month_number(word: str) -> int | None:
    """`november`, `nov` or `nov.`: the month's number; None for anything else."""
    w = word.rstrip(".")
    if len(w) < 3 or not w.isalpha():
        return None
    return next((i + 1 for i, name in enumerate(_MONTHS) if name.startswith(w)), None)


def _suggestion(word: str) -> str:
    """` Did you mean last-month?` for a near miss (`lastmonth`, `last_month`, `novembre`)."""
    import difflib

    guess = difflib.get_close_matches(word.replace("_", "-").replace(" ", "-"), _WORDS, n=1)
    return f" Did you mean {guess[0]}?" if guess else ""


def _to_date(
    word: str, first: date, after: date, today: date, previous_first: date, tz: ZoneInfo
) -> Period:
    """A calendar period under way: from its first day to today, compared with the same
    number of days from the start of the previous one (cut at that one's end)."""
    elapsed = (today - first).days + 1
    total = (after - first).days
    compare_after = min(previous_first + timedelta(days=elapsed), first)
    compare = Period(
        _midnight(previous_first, tz),
        _midnight(compare_after, tz),
        f"the same {elapsed} days of the previous {word[5:]}",
    )
    return Period(
        _midnight(first, tz),
        _midnight(today + timedelta(days=1), tz),
        word,
        partial=(elapsed, total),
        compare=compare,
        unit=word[5:],
    )


def range_period(first: date, last: date, timezone: str = "UTC") -> Period:
    """An inclusive range of dates as a half-open Period."""
    if last < first:
        raise JourneyError(f"The period ends ({last}) before it starts ({first}).")
    tz = zone(timezone)
    return Period(_midnight(first, tz), _midnight(last + timedelta(days=1), tz), f"{first}..{last}")


def resolve_period(
    now: datetime,
    timezone: str = "UTC",
    period: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> Period:
    """Combine the CLI's --period / --since / --until into one Period.

    --since/--until win over --period; a lone --until keeps the default length
    ending on that date, a lone --since runs to today.
    """
    if since is None and until is None:
        return parse_period(period or DEFAULT_PERIOD, now, timezone)
    tz = zone(timezone)
    last = parse_date(until, "--until") if until else now.astimezone(tz).date()
    first = parse_date(since, "--since") if since else last - timedelta(days=29)
    return range_period(first, last, timezone)


def refuse_churn_period(word: str, command: str, date_example: str) -> None:
    """The churn report judges who is at risk on one day (a period's end), so a length
    of time ending today (`90d`, `this-month`) would answer exactly what no period
    answers: refused, with what a period does there. A finished period (`last-month`)
    or a date moves that day."""
    w = word.strip().lower()
    if _RELATIVE.match(w) or w == "today" or w.startswith("this-"):
        raise JourneyError(
            f"`{command} {word}` would show the same as no period: churn judges who is at "
            "risk on one day, and a period only chooses that day (its last). Leave it out for "
            f"today, or give a day (`{date_example}`) or a finished period (`last-month`)."
        )
