"""The /journey command language, as users type it."""

import pytest

from bot.commands import Command, CommandError, parse


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Command("help")),
        ("help", Command("help")),
        ("funnel", Command("funnel")),
        ("funnel 30d", Command("funnel", period="30d")),
        (
            "funnel last-quarter by channel",
            Command("funnel", period="last-quarter", by_channel=True),
        ),
        ("FUNNEL by channel 12w", Command("funnel", period="12w", by_channel=True)),
        ("funnel channel google_search", Command("funnel", channel="google_search")),
        (
            'funnel 2026-01-01..2026-03-31 channel "google maps"',
            Command("funnel", period="2026-01-01..2026-03-31", channel="google maps"),
        ),
        ("retention this-month", Command("retention", period="this-month")),
        ("churn 90d", Command("churn", period="90d")),
        ("reviews", Command("reviews")),
        ("digest weekly monday 09:00", Command("digest", args=("weekly", "monday", "09:00"))),
        ("alerts", Command("alerts")),
        ("sync", Command("sync")),
    ],
)
def test_parse(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message", "suggestion"),
    [
        ("fnnel", "Did you mean `/journey funnel`?", "funnel"),
        ("retension 30d", "Did you mean `/journey retention`?", "retention"),
        ("revews", "Did you mean `/journey reviews`?", "reviews"),
        ("xyzzy", "I don't know `xyzzy`.", None),
        ("funnel fortnight", "I don't understand the period `fortnight`", None),
        ("funnel 30d 90d", "I don't understand `90d`", None),
        ("funnel by", "`by` needs `channel`", None),
        ("funnel channel", "`channel` needs a name", None),
        ("reviews 30d", "takes no options", None),
    ],
)
def test_bad_commands_say_what_to_do(text, message, suggestion):
    with pytest.raises(CommandError) as info:
        parse(text)
    assert message in str(info.value)
    assert info.value.suggestion == suggestion


def test_unbalanced_quotes_do_not_crash():
    assert parse('funnel channel "google').channel == '"google'
