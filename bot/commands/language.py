"""The `/journey` command language: words in, a typed Command out.

Shared by the Slack listener and the local console, so both understand exactly
the same sentences; the period words are journey's own (journey.periods).
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass, field

from journey.errors import JourneyError

REPORTS = ("funnel", "retention", "churn", "reviews", "value")
SCHEDULE_WORDS = ("digest", "alerts")
RESERVED = ("connect", "sources", "sync")
WORDS = (*REPORTS, *SCHEDULE_WORDS, *RESERVED, "customer", "help")

EXAMPLES: tuple[tuple[str, str], ...] = (
    ("funnel [period] [by channel] [channel NAME]", "/journey funnel 30d by channel"),
    (
        "funnel [period] compare",
        "/journey funnel last-month compare (each step against the period before)",
    ),
    ("retention [period] [csv]", "/journey retention last-quarter"),
    ("churn [DAY | finished period] [csv]", "/journey churn (who is at risk today)"),
    ("reviews", "/journey reviews"),
    ("reviews asked|skip EMAIL|NAME", "/journey reviews asked ana@example.com"),
    ("value [period]", "/journey value 90d (what customers from each channel are worth)"),
    (
        "customer EMAIL|NAME|#ID",
        "/journey customer ana@example.com (her records in each source and why they are one)",
    ),
    ("digest", "/journey digest (this channel's digest and its next send)"),
    (
        "digest weekly [DAY] [HH:MM] | daily [HH:MM] | monthly [DAY-OF-MONTH] [HH:MM]",
        "/journey digest weekly monday 09:00 (your Slack timezone)",
    ),
    ("digest off | digest now", "/journey digest now (a preview, only you see it)"),
    ("alerts", "/journey alerts (the rules and whether they are firing)"),
    (
        "alerts on|off [KIND] | alerts channel | "
        "alerts threshold KIND [PERCENT] [min N] [cooldown HOURSh|DAYSd]",
        "/journey alerts threshold retention 15% min 80 cooldown 48h",
    ),
    ("alerts ack [KIND]", "/journey alerts ack (you take on the alerts firing now)"),
    (
        "connect",
        "/journey connect (admins: a form to connect Stripe, HubSpot, WooCommerce or Shopify)",
    ),
    ("sources", "/journey sources (connected stores and CRMs, their last sync and errors)"),
    ("sync [NAME]", "/journey sync (admins: fetch what changed at every source now)"),
    ("help [COMMAND]", "/journey help churn"),
)

# What each report is, for `/journey help WORD`: one paragraph, the forms, an example.
TOPICS: dict[str, str] = {
    "funnel": (
        "Of the people who first showed up in the period, how many reached each stage and "
        "where most stopped. `by channel` splits it by where they came from, `channel NAME` "
        "keeps one channel, `compare` shows each step against the period before."
    ),
    "retention": (
        "Repeat buying: the repeat rate, returning customers against the period before, the "
        "monthly cohorts and who is overdue. `csv` saves every overdue customer to a file."
    ),
    "churn": (
        "Who is at risk of leaving for good, judged on one day (today, a DAY like 2026-06-30, "
        "or the last day of a finished period like last-month), most value at risk first. "
        "`csv` saves every customer at risk to a file."
    ),
    "reviews": (
        "Happy recent customers to ask for a review now. Once asked (or deliberately "
        "skipped), record it so they leave the list: `/journey reviews asked EMAIL|NAME` or "
        "`/journey reviews skip EMAIL|NAME`."
    ),
    "customer": (
        "A customer's Details: their records in each source (shop, CRM...) and why journey "
        "counts them as one person. Admins can unlink a record or link another one there; "
        "it holds through every later sync."
    ),
    "digest": "A summary posted on a schedule in this channel, or previewed with `digest now`.",
    "alerts": "Messages when repeat buying, a funnel step or your best customers' returns drop.",
    "connect": "A form (in Slack) where an admin connects Shopify, Stripe, HubSpot or WooCommerce.",
    "sources": "Where the data comes from: connected stores and CRMs, and imported files.",
    "sync": "Fetches what changed at every connected source now (admins).",
    "help": "Every command, or one: `/journey help churn`.",
}


ALERT_KINDS = ("retention_drop", "funnel_step_drop", "high_value_churn")
ALERT_ALIASES = {
    "retention": "retention_drop",
    "retention_drop": "retention_drop",
    "repeat": "retention_drop",
    "funnel": "funnel_step_drop",
    "funnel_step_drop": "funnel_step_drop",
    "step": "funnel_step_drop",
    "churn": "high_value_churn",
    "high_value_churn": "high_value_churn",
    "high-value": "high_value_churn",
    "valuable": "high_value_churn",
}
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class DigestRequest:
    """`/journey digest ...`: show, set (a cadence with its day and time), off or now."""

    action: str  # show | set | off | now
    cadence: str | None = None
    day_of_week: int | None = None  # weekly: 0 = Monday
    day_of_month: int | None = None  # monthly: 1..31
    local_time: str = "09:00"


@dataclass(frozen=True)
class AlertsRequest:
    """`/journey alerts ...`: list, on/off (one kind or all), channel, threshold.

    A threshold request carries only what was given; the rest of the rule stays."""

    action: str  # list | on | off | channel | threshold | ack
    kind: str | None = None  # one of ALERT_KINDS; None means all
    percent: float | None = None  # threshold: relative drop in percent
    min_sample: int | None = None  # threshold: customers (purchases) each group needs
    cooldown_hours: int | None = None  # threshold: quiet time before announcing again


@dataclass(frozen=True)
class Command:
    name: str  # one of WORDS
    period: str | None = None
    by_channel: bool = False
    channel: str | None = None
    args: tuple[str, ...] = field(default_factory=tuple)
    setting: DigestRequest | AlertsRequest | None = None
    view: str = ""  # funnel: "compare" (the typed form of the Compare button)
    export: bool = False  # churn, retention: the CSV the export button sends

    @property
    def changes_settings(self) -> bool:
        """Whether only admins and owners may run it (see bot/guard/access.py)."""
        if self.name == "connect":
            return True
        if isinstance(self.setting, DigestRequest):
            return self.setting.action in ("set", "off")
        if isinstance(self.setting, AlertsRequest):
            # Anyone may take on an alert, as anyone may click its Acknowledge button.
            return self.setting.action not in ("list", "ack")
        # A sync spends the source's API quota: admins decide when.
        return self.name == "sync"


class CommandError(JourneyError):
    """A command we could not understand; `suggestion` is the closest real subcommand."""

    def __init__(self, message: str, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.suggestion = suggestion


def suggest(word: str) -> str | None:
    match = difflib.get_close_matches(word.lower(), WORDS, n=1, cutoff=0.6)
    return match[0] if match else None


def parse(text: str) -> Command:
    """Parse the text after `/journey`. Empty text and `help` both mean help."""
    try:
        words = shlex.split(text.strip())
    except ValueError:
        words = text.strip().split()
    if not words:
        return Command("help")
    head, rest = words[0].lower(), words[1:]
    if head in ("help", "?", "-h", "--help"):
        topic = rest[0].lower().lstrip("/") if rest else None
        if topic is not None and topic not in TOPICS:
            guess = suggest(topic)
            hint = f" Did you mean `/journey help {guess}`?" if guess else ""
            raise CommandError(f"There is no command `{rest[0]}`.{hint}", guess)
        return Command("help", args=(topic,) if topic else ())
    if head not in WORDS:
        guess = suggest(head)
        hint = f" Did you mean `/journey {guess}`?" if guess else ""
        raise CommandError(f"I don't know `{words[0]}`.{hint}", guess)
    if head == "digest":
        return Command(head, args=tuple(rest), setting=parse_digest(rest))
    if head == "alerts":
        return Command(head, args=tuple(rest), setting=parse_alerts(rest))
    if head in RESERVED:
        return Command(head, args=tuple(rest))
    if head == "reviews":
        return _reviews(rest)
    if head == "customer":
        if not rest:
            raise CommandError(
                "`/journey customer` needs the customer's email, name or record id, "
                "e.g. `/journey customer ana@example.com`."
            )
        return Command(head, args=(" ".join(rest),))
    return _report_options(head, rest)


DIGEST_USAGE = (
    "`/journey digest weekly [DAY] [HH:MM]`, `/journey digest daily [HH:MM]`, "
    "`/journey digest monthly [DAY-OF-MONTH] [HH:MM]`, `/journey digest off` or "
    "`/journey digest now`"
)
ALERTS_USAGE = (
    "`/journey alerts`, `/journey alerts on|off [KIND]`, `/journey alerts channel`, "
    "`/journey alerts threshold KIND [PERCENT] [min N] [cooldown 48h]` or "
    "`/journey alerts ack [KIND]` "
    "(KIND: retention, funnel or churn)"
)


def _time(word: str) -> str | None:
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", word)
    return f"{int(match.group(1)):02d}:{match.group(2)}" if match else None


def _weekday(word: str) -> int | None:
    w = word.lower()
    if len(w) < 3:
        return None
    return next((i for i, name in enumerate(WEEKDAY_NAMES) if name.startswith(w)), None)


def _day_of_month(word: str) -> int | None:
    w = word.lower()
    for suffix in ("st", "nd", "rd", "th"):
        w = w.removesuffix(suffix)
    return int(w) if w.isdigit() else None


def parse_digest(words: list[str]) -> DigestRequest:
    """The words after `/journey digest`, or a CommandError that shows the usage."""
    if not words:
        return DigestRequest("show")
    head, rest = words[0].lower(), words[1:]
    if head in ("off", "now", "show", "status"):
        if rest:
            raise CommandError(f"`/journey digest {head}` takes nothing after it.")
        return DigestRequest("show" if head == "status" else head)
    if head not in ("daily", "weekly", "monthly"):
        raise CommandError(f"I don't understand `digest {words[0]}`. Use {DIGEST_USAGE}.")
    at: str | None = None
    dow: int | None = None
    dom: int | None = None
    for word in rest:
        if (t := _time(word)) is not None and at is None:
            at = t
        elif ":" in word or word.lower().endswith(("am", "pm")):
            raise CommandError(
                f"`{word}` is not a time I can read: use HH:MM, 24-hour, e.g. 09:00 or 17:30."
            )
        elif head == "weekly" and dow is None and (d := _weekday(word)) is not None:
            dow = d
        elif head == "monthly" and dom is None and (m := _day_of_month(word)) is not None:
            if not 1 <= m <= 31:
                raise CommandError(
                    f"`{word}` is not a day of the month: use 1 to 31 (31 means the last day "
                    "in shorter months)."
                )
            dom = m
        else:
            what = {
                "weekly": "a day (monday to sunday) and a time HH:MM",
                "daily": "a time HH:MM",
                "monthly": "a day of the month (1 to 31) and a time HH:MM",
            }[head]
            raise CommandError(
                f"I don't understand `{word}` in `/journey digest {head}`: it takes {what}, "
                f"e.g. `/journey digest {_digest_example(head)}`."
            )
    return DigestRequest(
        "set",
        head,
        day_of_week=(0 if dow is None else dow) if head == "weekly" else None,
        day_of_month=(1 if dom is None else dom) if head == "monthly" else None,
        local_time=at or "09:00",
    )


def _digest_example(cadence: str) -> str:
    return {"weekly": "weekly monday 09:00", "daily": "daily 08:30", "monthly": "monthly 1 09:00"}[
        cadence
    ]


def alert_kind(word: str) -> str:
    kind = ALERT_ALIASES.get(word.lower().replace("-", "_")) or ALERT_ALIASES.get(word.lower())
    if kind is None:
        raise CommandError(
            f"There is no `{word}` alert: the kinds are retention (repeat purchases), "
            "funnel (a step's conversion) and churn (valuable customers not coming back)."
        )
    return kind


def parse_alerts(words: list[str]) -> AlertsRequest:
    """The words after `/journey alerts`, or a CommandError that shows the usage."""
    if not words:
        return AlertsRequest("list")
    head, rest = words[0].lower(), words[1:]
    if head in ("list", "status", "channel"):
        if rest:
            raise CommandError(f"`/journey alerts {head}` takes nothing after it.")
        return AlertsRequest("list" if head == "status" else head)
    if head in ("on", "off", "ack"):
        if len(rest) > 1:
            raise CommandError(
                f"`/journey alerts {head}` takes at most one kind. Use {ALERTS_USAGE}."
            )
        return AlertsRequest(head, alert_kind(rest[0]) if rest else None)
    if head == "threshold":
        return _parse_threshold(rest)
    raise CommandError(f"I don't understand `alerts {words[0]}`. Use {ALERTS_USAGE}.")


# Bounds of what a workspace may set. Below 20 customers a group is too small for the
# alerts' z-test (a normal approximation) to keep its false-alarm rate; above 30 days of
# cooldown a recurring problem would go unannounced for most of a month.
MIN_SAMPLE_RANGE = (20, 100_000)
COOLDOWN_HOURS_RANGE = (1, 30 * 24)
THRESHOLD_EXAMPLE = "`/journey alerts threshold retention 15% min 80 cooldown 48h`"


def _percent(word: str) -> float:
    try:
        percent = float(word.removesuffix("%"))
    except ValueError:
        percent = -1.0
    if not 1 <= percent <= 90:
        raise CommandError(
            f"`{word}` is not a threshold I can use: give a percentage from 1 to 90, "
            "e.g. 15 for a drop of 15% or more."
        )
    return percent


def _min_sample(word: str | None) -> int:
    low, high = MIN_SAMPLE_RANGE
    if word is None or not word.isdigit() or not low <= int(word) <= high:
        shown = f"`{word}` is not" if word is not None else "Nothing after `min` is"
        raise CommandError(
            f"{shown} a minimum sample I can use: give a whole number from {low} to {high:,}, "
            "the customers (for churn, purchases) each group, recent and baseline, needs, "
            "e.g. `min 80`."
        )
    return int(word)


def _cooldown_hours(word: str | None) -> int:
    low, high = COOLDOWN_HOURS_RANGE
    raw = (word or "").lower()
    unit = 24 if raw.endswith("d") else 1
    number = raw.removesuffix("d").removesuffix("h")
    if not number.isdigit() or not low <= int(number) * unit <= high:
        shown = f"`{word}` is not" if word is not None else "Nothing after `cooldown` is"
        raise CommandError(
            f"{shown} a cooldown I can use: give hours or days from {low}h to "
            f"{high // 24}d, e.g. `cooldown 48h` or `cooldown 2d`."
        )
    return int(number) * unit


def _parse_threshold(rest: list[str]) -> AlertsRequest:
    """`KIND [PERCENT] [min N] [cooldown 48h]`, in any order after the kind, each once."""
    if len(rest) < 2:
        raise CommandError(
            "`/journey alerts threshold` needs a kind and a percentage, a minimum sample or "
            f"a cooldown, e.g. {THRESHOLD_EXAMPLE} (alert when repeat purchases drop 15% or "
            "more, with at least 80 customers in each group, at most once every 48 hours)."
        )
    kind = alert_kind(rest[0])
    percent: float | None = None
    min_sample: int | None = None
    cooldown: int | None = None
    i = 1
    while i < len(rest):
        word = rest[i].lower()
        following = rest[i + 1] if i + 1 < len(rest) else None
        if word in ("min", "minimum", "sample"):
            if min_sample is not None:
                raise CommandError("`min` is given twice: give it once.")
            min_sample, i = _min_sample(following), i + 2
        elif word == "cooldown":
            if cooldown is not None:
                raise CommandError("`cooldown` is given twice: give it once.")
            cooldown, i = _cooldown_hours(following), i + 2
        elif percent is None:
            percent, i = _percent(rest[i]), i + 1
        else:
            raise CommandError(
                f"I don't understand `{rest[i]}` in `/journey alerts threshold`: give a "
                f"percentage, `min N` and `cooldown 48h` (each once), e.g. {THRESHOLD_EXAMPLE}."
            )
    return AlertsRequest("threshold", kind, percent, min_sample, cooldown)


def _reviews(words: list[str]) -> Command:
    """`/journey reviews`, or `reviews asked|skip WHO`: the typed form of the Asked and
    Skip buttons, naming the customer by email or name as the reply shows them."""
    if not words:
        return Command("reviews")
    action = {"asked": "asked", "ask": "asked", "skip": "skipped", "skipped": "skipped"}.get(
        words[0].lower()
    )
    if action is None:
        raise CommandError(
            f"I don't understand `{words[0]}` in `/journey reviews`: use `/journey reviews`, "
            "`/journey reviews asked EMAIL|NAME` or `/journey reviews skip EMAIL|NAME`."
        )
    if len(words) < 2:
        raise CommandError(
            f"`/journey reviews {words[0]}` needs the customer's email or name, as the list "
            "shows it, e.g. `/journey reviews asked ana@example.com`."
        )
    return Command("reviews", args=(action, " ".join(words[1:])))


# Two-word periods people type ("last month") and their one-word form.
_PERIOD_PAIRS = {
    (a, b): f"{a}-{b}" for a in ("this", "last") for b in ("week", "month", "quarter", "year")
}


# "30 days", "12 weeks", "6 months", "1 year": the number and unit people type apart.
_UNITS = {
    **{w: "d" for w in ("day", "days")},
    **{w: "w" for w in ("week", "weeks")},
    **{w: "m" for w in ("month", "months")},
    **{w: "y" for w in ("year", "years")},
}


def _report_options(name: str, words: list[str]) -> Command:
    period: str | None = None
    by_channel = False
    channel: str | None = None
    view = ""
    export = False
    words = list(words)
    for i in range(len(words) - 1):
        pair = (words[i].lower(), words[i + 1].lower())
        if pair in _PERIOD_PAIRS:
            words[i : i + 2] = [_PERIOD_PAIRS[pair]]
            break
        if pair[0].isdigit() and pair[1] in _UNITS:  # "30 days" is 30d
            words[i : i + 2] = [pair[0] + _UNITS[pair[1]]]
            break
    i = 0
    while i < len(words):
        word = words[i].lower()
        if word == "compare" and name == "funnel":
            view, i = "compare", i + 1
            continue
        if word == "csv" and name in ("churn", "retention"):
            export, i = True, i + 1
            continue
        if word == "by" and name == "funnel":
            if i + 1 >= len(words) or words[i + 1].lower() not in ("channel", "channels"):
                raise CommandError("`by` needs `channel`: try `/journey funnel 30d by channel`.")
            by_channel, i = True, i + 2
            continue
        if word == "channel" and name == "funnel":
            if i + 1 >= len(words):
                raise CommandError(
                    "`channel` needs a name: try `/journey funnel channel google_search`."
                )
            channel, i = words[i + 1], i + 2
            continue
        if period is not None:
            raise CommandError(
                f"I don't understand `{words[i]}` in `/journey {name}`. "
                f"Usage: `/journey {_usage(name)}`."
            )
        period, i = words[i], i + 1
    if period is not None:
        if name == "churn":
            from journey.periods import refuse_churn_period

            try:
                refuse_churn_period(period, "/journey churn", "/journey churn 2026-06-30")
            except JourneyError as exc:
                raise CommandError(str(exc)) from None
        _check_period(period)
    return Command(
        name, period=period, by_channel=by_channel, channel=channel, view=view, export=export
    )


def _check_period(word: str) -> None:
    from datetime import UTC, datetime

    from journey.periods import parse_period

    try:
        parse_period(word, datetime.now(UTC))
    except JourneyError as exc:
        raise CommandError(str(exc)) from exc


def _usage(name: str) -> str:
    return next((usage for usage, _ in EXAMPLES if usage.split()[0] == name), name)
