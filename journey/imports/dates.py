"""Dates as vendors write them: a format's own style, its time and zone columns.

Why a reader object rather than one parse function: a file's style is decided
once (day-first or month-first for `03/04/2026`, from the whole file; the zone
from `--timezone` or the workspace) and then every cell is read the same way,
fast. ISO 8601 stays the fast path (`datetime.fromisoformat`), because a
1M-line export has a date on most lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from journey.imports.common import NeedsOption

# Numeric day/month/year dates with a 4-digit year, optionally followed by a time.
_NUMERIC = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})(?:[ T,]+(.*))?$")
# `2026-05-01 10:00:00 +0200` (Shopify): ISO with a space before a colon-less offset.
_SPACED_OFFSET = re.compile(
    r"^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2})?)\s*([+-]\d{2}):?(\d{2})$"
)
_TIME_12H = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp])\.?[Mm]\.?$")
_TIME_24H = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$")
# `June 8, 2026 2:30 pm` (Acuity): a date in words, then a time.
_WORDS_TIME = re.compile(
    r"^([A-Za-z]+\.? \d{1,2},? \d{4}),?\s+(\d{1,2}:\d{2}(?::\d{2})?\s*(?:[AaPp]\.?[Mm]\.?)?)$"
)
_WORDS = ("%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%d %b %Y", "%B %d %Y", "%b %d %Y")

# Time zone names as Rails (and so Square's exports) write them, for the zones a
# small business in the Americas, Europe or Oceania uses; anything else is refused
# with the value named, and `--timezone` settles it.
RAILS_ZONES: dict[str, str] = {
    "Hawaii": "Pacific/Honolulu",
    "Alaska": "America/Juneau",
    "Pacific Time (US & Canada)": "America/Los_Angeles",
    "Arizona": "America/Phoenix",
    "Mountain Time (US & Canada)": "America/Denver",
    "Central Time (US & Canada)": "America/Chicago",
    "Eastern Time (US & Canada)": "America/New_York",
    "Atlantic Time (Canada)": "America/Halifax",
    "Newfoundland": "America/St_Johns",
    "Saskatchewan": "America/Regina",
    "Indiana (East)": "America/Indiana/Indianapolis",
    "Mexico City": "America/Mexico_City",
    "Puerto Rico": "America/Puerto_Rico",
    "UTC": "UTC",
    "London": "Europe/London",
    "Edinburgh": "Europe/London",
    "Dublin": "Europe/Dublin",
    "Lisbon": "Europe/Lisbon",
    "Madrid": "Europe/Madrid",
    "Paris": "Europe/Paris",
    "Amsterdam": "Europe/Amsterdam",
    "Brussels": "Europe/Brussels",
    "Berlin": "Europe/Berlin",
    "Rome": "Europe/Rome",
    "Vienna": "Europe/Vienna",
    "Stockholm": "Europe/Stockholm",
    "Copenhagen": "Europe/Copenhagen",
    "Sydney": "Australia/Sydney",
    "Melbourne": "Australia/Melbourne",
    "Brisbane": "Australia/Brisbane",
    "Perth": "Australia/Perth",
    "Auckland": "Pacific/Auckland",
    "Tokyo": "Asia/Tokyo",
}
_ABBREVIATIONS = {
    "PST": "America/Los_Angeles",
    "PDT": "America/Los_Angeles",
    "MST": "America/Denver",
    "MDT": "America/Denver",
    "CST": "America/Chicago",
    "CDT": "America/Chicago",
    "EST": "America/New_York",
    "EDT": "America/New_York",
    "GMT": "UTC",
    "UTC": "UTC",
}


def zone(name: str) -> tzinfo:
    """A time zone from an IANA name, a Rails name (Square) or a US abbreviation."""
    text = name.strip()
    mapped = RAILS_ZONES.get(text) or _ABBREVIATIONS.get(text.upper())
    key = mapped or text
    if key.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is not a time zone I know (use an IANA name such as Europe/Paris)"
        ) from None


def _time_of_day(text: str) -> tuple[int, int, int]:
    match = _TIME_24H.match(text)
    if match:
        hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    else:
        match = _TIME_12H.match(text)
        if not match:
            raise ValueError(f"{text!r} is not a time of day")
        hour, minute, second = int(match[1]) % 12, int(match[2]), int(match[3] or 0)
        if match[4] in "Pp":
            hour += 12
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"{text!r} is not a time of day")
    return hour, minute, second


@dataclass
class DateReader:
    """Reads one file's dates.

    `day_first`: how `03/04/2026` is read (None: the file has no such dates, or
    they have not been decided: reading one is then an error asking for
    `--date-format`). `fmt`: an explicit strptime format (`--date-format`),
    tried first. `tz`: the zone of times written without an offset.
    """

    tz: tzinfo = UTC
    day_first: bool | None = None
    fmt: str | None = None

    def read(self, value: str, time: str | None = None, tz: tzinfo | None = None) -> datetime:
        """`value` (a date, or a date and time), plus an optional separate time
        column and zone, as an aware UTC datetime."""
        text = value.strip()
        parsed = self._parse(text)
        if time:
            if parsed.hour or parsed.minute or parsed.second:
                raise ValueError(f"{value!r} already has a time, and the time column says {time!r}")
            hour, minute, second = _time_of_day(time.strip())
            parsed = parsed.replace(hour=hour, minute=minute, second=second)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=tz or self.tz)
        return parsed.astimezone(UTC)

    def _parse(self, text: str) -> datetime:
        if self.fmt is not None:
            try:
                return datetime.strptime(text, self.fmt)
            except ValueError:
                raise ValueError(f"{text!r} does not match --date-format {self.fmt}") from None
        if text[:4].isdigit() and len(text) >= 10 and text[4] == "-":
            try:
                return datetime.fromisoformat(text)
            except ValueError:
                pass
            match = _SPACED_OFFSET.match(text)
            if match:
                return datetime.fromisoformat(f"{match[1]}{match[2]}:{match[3]}")
            raise ValueError(f"{text!r} is not a date")
        match = _NUMERIC.match(text)
        if match:
            return self._numeric(text, match)
        words = _WORDS_TIME.match(text)
        for fmt in _WORDS:
            if words is not None:
                head, rest = words[1], words[2]
            else:
                head, _, rest = text.partition(" at ") if " at " in text else (text, "", "")
            try:
                day = datetime.strptime(head.strip(), fmt)
            except ValueError:
                continue
            if rest:
                hour, minute, second = _time_of_day(rest.strip())
                day = day.replace(hour=hour, minute=minute, second=second)
            return day
        raise ValueError(f"{text!r} is not a date")

    def _numeric(self, text: str, match: re.Match[str]) -> datetime:
        first, second, year = int(match[1]), int(match[2]), int(match[3])
        if first > 12 and second > 12:
            raise ValueError(f"{text!r} is not a date")
        if self.day_first is None:
            raise ValueError(
                f"{text!r} could be day/month or month/day; say which with "
                "--date-format %d/%m/%Y or --date-format %m/%d/%Y"
            )
        day, month = (first, second) if self.day_first else (second, first)
        try:
            parsed = datetime(year, month, day)
        except ValueError:
            raise ValueError(f"{text!r} is not a date") from None
        if match[4]:
            rest = match[4].strip()
            hour, minute, sec = _time_of_day(rest)
            parsed = parsed.replace(hour=hour, minute=minute, second=sec)
        return parsed


def decide_day_first(values: Iterable[str], file: str) -> bool | None:
    """Day-first or month-first for a whole file's numeric dates.

    A first number above 12 means day-first, a second number above 12
    month-first; a file with both is refused (two styles in one column is a
    corrupted export), one with neither is ambiguous. None: no numeric dates.
    """
    day_first = month_first = seen = False
    example_day = example_month = ""
    for value in values:
        match = _NUMERIC.match(value.strip())
        if not match:
            continue
        seen = True
        first, second = int(match[1]), int(match[2])
        if first > 12 and second <= 12:
            day_first, example_day = True, example_day or value
        elif second > 12 and first <= 12:
            month_first, example_month = True, example_month or value
    if not seen:
        return None
    if day_first and month_first:
        raise NeedsOption(
            f"{file}: the dates mix day/month ({example_day!r}) and month/day "
            f"({example_month!r}); fix the file, or say which with --date-format.",
            "date_format",
        )
    if day_first:
        return True
    if month_first:
        return False
    raise NeedsOption(
        f"{file}: every date such as 03/04/2026 could be day/month or month/day (no day "
        "above 12 decides it); say which with --date-format %d/%m/%Y or "
        "--date-format %m/%d/%Y.",
        "date_format",
    )
