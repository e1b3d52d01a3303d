"""The /journey command language, as users type it."""

import pytest

from bot.commands.language import AlertsRequest, Command, CommandError, DigestRequest, parse


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
        ("churn last-month", Command("churn", period="last-month")),
        ("reviews", Command("reviews")),
        (
            "digest weekly monday 09:00",
            Command(
                "digest",
                args=("weekly", "monday", "09:00"),
                setting=DigestRequest("set", "weekly", day_of_week=0, local_time="09:00"),
            ),
        ),
        ("alerts", Command("alerts", setting=AlertsRequest("list"))),
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
        ("funnel fortnight", "I don't understand the period 'fortnight'", None),
        ("funnel 30d 90d", "I don't understand `90d`", None),
        ("funnel by", "`by` needs `channel`", None),
        ("funnel channel", "`channel` needs a name", None),
        ("reviews 30d", "I don't understand `30d` in `/journey reviews`", None),
        ("digest hourly", "I don't understand `digest hourly`", None),
        ("digest weekly blursday", "I don't understand `blursday`", None),
        ("digest daily 25:00", "`25:00` is not a time I can read", None),
        ("digest daily 9am", "`9am` is not a time I can read", None),
        ("digest monthly 32", "`32` is not a day of the month", None),
        ("digest off now", "takes nothing after it", None),
        ("alerts on sometimes", "There is no `sometimes` alert", None),
        ("alerts threshold retention", "needs a kind and a percentage", None),
        ("alerts threshold funnel lots", "`lots` is not a threshold", None),
        ("alerts threshold funnel 95", "from 1 to 90", None),
        ("alerts loud", "I don't understand `alerts loud`", None),
    ],
)
def test_bad_commands_say_what_to_do(text, message, suggestion):
    with pytest.raises(CommandError) as info:
        parse(text)
    assert message in str(info.value)
    assert info.value.suggestion == suggestion


def test_unbalanced_quotes_do_not_crash():
    assert parse('funnel channel "google').channel == '"google'


@pytest.mark.parametrize(
    ("text", "setting", "admin_only"),
    [
        ("digest", DigestRequest("show"), False),
        ("digest now", DigestRequest("now"), False),
        ("digest off", DigestRequest("off"), True),
        ("digest weekly", DigestRequest("set", "weekly", day_of_week=0), True),
        ("digest weekly fri 17:30", DigestRequest("set", "weekly", 4, None, "17:30"), True),
        ("digest Weekly 7:05 Sunday", DigestRequest("set", "weekly", 6, None, "07:05"), True),
        ("digest daily 8:30", DigestRequest("set", "daily", local_time="08:30"), True),
        ("digest monthly", DigestRequest("set", "monthly", day_of_month=1), True),
        ("digest monthly 15th 10:00", DigestRequest("set", "monthly", None, 15, "10:00"), True),
        ("alerts list", AlertsRequest("list"), False),
        ("alerts on", AlertsRequest("on"), True),
        ("alerts off churn", AlertsRequest("off", "high_value_churn"), True),
        ("alerts channel", AlertsRequest("channel"), True),
        ("alerts threshold funnel 15%", AlertsRequest("threshold", "funnel_step_drop", 15), True),
        ("alerts ack", AlertsRequest("ack"), False),
        ("alerts ack funnel", AlertsRequest("ack", "funnel_step_drop"), False),
    ],
)
def test_digest_and_alerts_forms(text, setting, admin_only):
    cmd = parse(text)
    assert cmd.setting == setting
    assert cmd.changes_settings is admin_only
