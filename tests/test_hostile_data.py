"""A store full of Slack markup, through every report, digest, alert, Home tab, modal,
sync message, echoed error and CSV: nothing live reaches Slack, nothing is escaped
twice, and every name still reads as typed (in Slack and in the console).

tests/hostile_store.py builds the data; tests/slack_render.py renders payloads as
Slack would and reports live markup (`findings`).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hostile_store import (
    BUSINESS_NAME,
    CHANNELS,
    DIGEST_CHANNEL,
    NAMES,
    OWN_USER,
    PAUSE_REASON,
    PAUSED_CHANNEL,
    SOURCE_ERROR,
    SOURCE_NAME,
    build_hostile_store,
    digest_subscription,
    hostile_alert,
)
from slack_render import findings, visible_texts

from bot.blocks.connect import connect_modal
from bot.blocks.digest import alert_message, digest_message, pause_notice_message
from bot.blocks.help import error_message, help_message, sources_message, sync_message
from bot.blocks.sync import SourceProgress, progress_message, source_paused_message
from bot.blocks.terminal import render_terminal
from bot.commands.language import Command, CommandError, parse
from bot.commands.service import ReportService
from bot.listeners.views.connect import result_message
from journey.db import session_scope
from journey.schedule import digest_for_subscription
from journey.schedule.runner import PauseNotice
from journey.sources.manage import source_health
from journey.sync import SyncResult

TEAM = "T0HOSTILE"
OWN = [OWN_USER, DIGEST_CHANNEL, PAUSED_CHANNEL, "C0ALERTS"]
HOSTILE_INPUT = ["<!channel>", "<https://evil.example|click>", "<@U0123ABCD>", "Tom & Jerry"]
# The service reads the wall clock (report periods end now), so the store is built
# relative to it too.
NOW = datetime.now(UTC)


def _surfaces(engine: Any) -> dict[str, dict[str, Any]]:
    """Every Slack payload the bot can build from the hostile store, by name."""
    service = ReportService(engine)
    out: dict[str, dict[str, Any]] = {}
    commands = {
        "funnel": (Command("funnel", period="30d"), ""),
        "funnel by channel": (Command("funnel", period="30d", by_channel=True), ""),
        "funnel compare": (Command("funnel", period="30d"), "compare"),
        "funnel of one channel": (
            Command("funnel", period="30d", channel=CHANNELS["mallory"]),
            "",
        ),
        "retention": (Command("retention", period="365d"), ""),
        "churn": (Command("churn", period="365d"), ""),
        "reviews": (Command("reviews"), ""),
        "value": (Command("value", period="365d"), ""),
        "sources": (Command("sources"), ""),
    }
    for label, (command, view) in commands.items():
        out[label] = service.command_message(TEAM, command, view).payload()
        out[f"{label} (shared)"] = service.command_message(TEAM, command, view, True).payload()
    for typed in HOSTILE_INPUT:
        try:
            parse(f"funnel {typed}")
        except CommandError as exc:
            out[f"parse error echoing {typed}"] = help_message(prefix=str(exc)).payload()
        out[f"no such source {typed}"] = error_message(
            f"There is no connected source named {typed!r}: see `/journey sources`."
        ).payload()
    with session_scope(engine) as session:
        sub = digest_subscription(session, TEAM)
        digest = digest_for_subscription(session, sub, NOW, now=NOW)
        out["sources health"] = sources_message(source_health(session, TEAM)).payload()
    out["digest"] = digest_message(digest).payload()
    out["digest late preview"] = digest_message(digest, late=True, preview=True).payload()
    out["alert"] = alert_message(hostile_alert(TEAM, NOW)).payload()
    out["pause notice"] = pause_notice_message(
        PauseNotice(1, PAUSED_CHANNEL, PAUSE_REASON, "every Monday at 09:00 (UTC)")
    ).payload()
    out["alerts list"] = service.schedule_reply(
        TEAM, parse("alerts"), "C0ALERTS", OWN_USER, now=NOW
    ).message.payload()
    out["digest show (paused)"] = service.schedule_reply(
        TEAM, parse("digest"), PAUSED_CHANNEL, OWN_USER, now=NOW
    ).message.payload()
    out["home"] = {"view": service.home(TEAM, now=NOW)}
    out["connect modal"] = {"view": connect_modal("C0GENERAL")}
    out["sync progress"] = progress_message(
        [
            SourceProgress(SOURCE_NAME, "csv", "running", "<!channel>_orders", 2, 40),
            SourceProgress(NAMES["tom"], "csv", "done", records=3),
        ],
        12.0,
    ).payload()
    out["source paused"] = source_paused_message(SOURCE_NAME, "Shopify", SOURCE_ERROR).payload()
    out["sync finished"] = sync_message(
        [
            SyncResult(SOURCE_NAME, "csv", ok=False, error=SOURCE_ERROR),
            SyncResult(NAMES["tom"], "csv", ok=True, inserted=1),
            SyncResult(NAMES["mallory"], "csv", paused=True, error=PAUSE_REASON),
        ]
    ).payload()
    out["connected"] = result_message(
        True, f"Connected Shopify source *{NAMES['mallory']}*: the key was checked."
    ).payload()
    out["connect refused"] = result_message(False, f"I couldn't reach {SOURCE_ERROR}").payload()
    return out


@pytest.fixture
def surfaces(engine) -> dict[str, dict[str, Any]]:
    with session_scope(engine) as session:
        build_hostile_store(session, TEAM, NOW)
    return _surfaces(engine)


def test_no_live_markup_from_data_reaches_slack(surfaces):
    problems = [f"{label}: {f}" for label, p in surfaces.items() for f in findings(p, OWN)]
    assert problems == [], "\n".join(problems)


def test_hostile_names_read_as_typed_where_people_look_for_them(surfaces):
    """Not a vacuous pass: the names are there, readable, in the reports that list them."""
    seen = {label: "\n".join(visible_texts(p)) for label, p in surfaces.items()}
    for name in NAMES.values():
        for report in ("reviews", "churn", "retention", "alert"):
            assert name in seen[report], (report, name)
    for label in ("funnel by channel", "funnel by channel (shared)", "value"):
        for channel in CHANNELS.values():
            assert channel in seen[label], (label, channel)
    # plain_text header: the channel filter as typed, not escaped.
    assert f"· {CHANNELS['mallory']}" in seen["funnel of one channel"]
    assert SOURCE_NAME in seen["home"] and SOURCE_ERROR in seen["home"]
    assert SOURCE_NAME in seen["sources"] and PAUSE_REASON in seen["home"]
    assert PAUSE_REASON in seen["alerts list"] and PAUSE_REASON in seen["digest show (paused)"]
    assert PAUSE_REASON in seen["pause notice"]
    for label in ("funnel", "churn", "reviews", "digest", "home"):
        assert BUSINESS_NAME in seen[label], label
    newly = [n for n in NAMES.values() if n in seen["digest"]]
    assert newly, seen["digest"]
    for typed in HOSTILE_INPUT:
        assert typed in seen[f"no such source {typed}"]


def test_escaped_once_in_mrkdwn_and_as_typed_in_plain_text(surfaces):
    raw = json.dumps(surfaces, ensure_ascii=False)
    assert "Tom &amp; Jerry" in raw and "&amp;amp;" not in raw
    headers = [
        b["text"]["text"]
        for p in surfaces.values()
        for b in p.get("blocks", [])
        if b["type"] == "header"
    ]
    assert any(h.endswith(f"· {CHANNELS['mallory']}") for h in headers), headers
    assert any(BUSINESS_NAME in h for h in headers), headers
    # plain_text shows as typed: `Tom & Jerry` there, never an entity.
    assert any("Tom & Jerry" in h for h in headers) and not any("&amp;" in h for h in headers)


def test_the_bots_own_mentions_and_channel_links_stay_live(surfaces):
    alerts = json.dumps(surfaces["alerts list"])
    assert f"<#{DIGEST_CHANNEL}>" in alerts
    home = json.dumps(surfaces["home"])
    assert f"<#{DIGEST_CHANNEL}>" in home and f"<#{PAUSED_CHANNEL}>" in home
    assert f"<#{PAUSED_CHANNEL}>" in json.dumps(surfaces["pause notice"])


def test_the_console_shows_hostile_names_as_typed(surfaces):
    for label in ("reviews", "churn", "funnel by channel", "home", "alert"):
        payload = surfaces[label]
        out = render_terminal(payload.get("view", payload))
        assert "&amp;" not in out and "&lt;" not in out, label
    out = render_terminal(surfaces["reviews"])
    assert "<!channel> Mallory" in out and "Tom & Jerry" in out


def test_the_csv_neutralises_formulas_from_the_hostile_store(engine):
    with session_scope(engine) as session:
        build_hostile_store(session, TEAM, NOW)
    service = ReportService(engine)
    for kind in ("retention", "churn"):
        text, count = service.at_risk_csv(TEAM, "365d", kind)
        rows = list(csv.DictReader(io.StringIO(text)))
        assert count == len(rows) > 0
        names = {r["name"] for r in rows}
        assert "'" + NAMES["formula"] in names and NAMES["formula"] not in names
        assert NAMES["tom"] in names and NAMES["mallory"] in names
        assert {r["email"] for r in rows} >= {"'@evil.example", "tom&jerry@example.com"}
        for row in rows:
            for key, cell in row.items():
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (kind, key, cell)


def test_the_cli_progress_lines_show_source_and_file_names_as_typed():
    """A source name set from Slack (`[/]`, `[link=...]`) is not rich markup in the CLI:
    rich would raise MarkupError on `[/]` and the sync or import would stop."""
    from journey import cli, cli_sources

    typed = "Syncing [/][link=https://evil.example]shop"
    for progress in (cli._progress(), cli_sources._sync_progress()):
        task_id = progress.add_task(typed, pages=0)
        task = next(t for t in progress.tasks if t.id == task_id)
        (column,) = [
            c for c in progress.columns if getattr(c, "text_format", "") == "{task.description}"
        ]
        assert column.render(task).plain == typed
