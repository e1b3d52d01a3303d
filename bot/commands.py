"""The `/journey` command language: words in, a typed Command out.

Shared by the Slack listener and the local console, so both understand exactly
the same sentences; the period words are journey's own (journey.periods).
"""

from __future__ import annotations

import difflib
import shlex
from dataclasses import dataclass, field

from journey.errors import JourneyError
from journey.periods import PERIOD_HELP

REPORTS = ("funnel", "retention", "churn", "reviews")
RESERVED = ("digest", "alerts", "connect", "sources", "sync")
WORDS = (*REPORTS, *RESERVED, "help")

EXAMPLES: tuple[tuple[str, str], ...] = (
    ("funnel [period] [by channel] [channel NAME]", "/journey funnel 30d by channel"),
    ("retention [period]", "/journey retention last-quarter"),
    ("churn [period]", "/journey churn 90d"),
    ("reviews", "/journey reviews"),
    ("digest weekly [DAY] [HH:MM] | digest off | digest now", "coming soon: weekly digests"),
    ("alerts [list|on|off]", "coming soon: retention and funnel alerts"),
    ("connect", "coming soon: connect Shopify, HubSpot, Stripe or WooCommerce"),
    ("sources", "coming soon: connected sources and their last sync"),
    ("sync", "coming soon: sync sources now"),
    ("help", "/journey help"),
)


@dataclass(frozen=True)
class Command:
    name: str  # one of WORDS
    period: str | None = None
    by_channel: bool = False
    channel: str | None = None
    args: tuple[str, ...] = field(default_factory=tuple)


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
        return Command("help")
    if head not in WORDS:
        guess = suggest(head)
        hint = f" Did you mean `/journey {guess}`?" if guess else ""
        raise CommandError(f"I don't know `{words[0]}`.{hint}", guess)
    if head in RESERVED:
        return Command(head, args=tuple(rest))
    if head == "reviews":
        if rest:
            raise CommandError("`/journey reviews` takes no options: try `/journey reviews`.")
        return Command(head)
    return _report_options(head, rest)


def _report_options(name: str, words: list[str]) -> Command:
    period: str | None = None
    by_channel = False
    channel: str | None = None
    i = 0
    while i < len(words):
        word = words[i].lower()
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
        _check_period(period)
    return Command(name, period=period, by_channel=by_channel, channel=channel)


def _check_period(word: str) -> None:
    from datetime import UTC, datetime

    from journey.periods import parse_period

    try:
        parse_period(word, datetime.now(UTC))
    except JourneyError as exc:
        raise CommandError(f"I don't understand the period `{word}`. {PERIOD_HELP}") from exc


def _usage(name: str) -> str:
    return next((usage for usage, _ in EXAMPLES if usage.split()[0] == name), name)
