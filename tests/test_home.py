"""The App Home tab: the numbers, the sources, and the workspace's digests and alerts
(schedule, next send, paused and why; rules and thresholds; what is firing and who
acknowledged it), with the commands that change them, within Slack's limits.

Store tests run on SQLite and PostgreSQL (the `engine` fixture).
"""

from __future__ import annotations

import json
from datetime import timedelta

from builders import NOW, make_shop
from slack_sdk.models.views import View
from sqlalchemy import Engine
from sqlmodel import Session, select
from test_acks import Channel, deliver, judge_at, retention_rule
from test_alerts import FIRING

from bot.blocks.home import HOME_BLOCKS, home_view
from bot.blocks.message import SECTION_TEXT
from bot.commands.service import ReportService
from journey.models.schedule import AlertRule
from journey.schedule import pause_subscription, subscribe
from journey.schedule.acks import acknowledge
from journey.schedule.status import schedule_status

HOUR = timedelta(hours=1)


def texts(view: dict) -> str:
    """Every text of the view, joined (what a person reads on the tab)."""
    out: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                out.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(view["blocks"])
    return "\n".join(out)


def set_up(engine: Engine) -> int:
    """A shop with a weekly digest, a paused daily one, alert rules in #C0ALERTS (one
    off, one with a custom threshold) and a firing retention alert."""
    rule_id = retention_rule(engine)
    with Session(engine) as session:
        make_shop(session, "shop")
        subscribe(
            session,
            "shop",
            "C0WEEKLY",
            cadence="weekly",
            day_of_week=0,
            local_time="09:00",
            timezone="Europe/Paris",
            now=NOW,
        )
        daily = subscribe(
            session,
            "shop",
            "C0DAILY",
            cadence="daily",
            local_time="07:30",
            timezone="America/New_York",
            now=NOW,
        )
        assert daily.id is not None
        pause_subscription(session, "shop", daily.id, "the channel was archived", NOW)
        for rule in session.exec(select(AlertRule).where(AlertRule.workspace_id == "shop")):
            if rule.kind == "high_value_churn":
                rule.enabled, rule.disabled_reason = False, "turned off by <@U0ADMIN>"
            if rule.kind == "funnel_step_drop":
                rule.min_relative_drop = 0.2
            session.add(rule)
        session.commit()
    judge_at(engine, rule_id, FIRING, NOW)
    return rule_id


def test_the_home_shows_digests_rules_and_firing_alerts_with_their_acks(engine):
    rule_id = set_up(engine)
    chat = Channel()
    deliver(engine, chat, NOW)
    service = ReportService(engine)

    view = service.home("shop", now=NOW + HOUR)
    text = texts(view)
    assert len(view["blocks"]) <= HOME_BLOCKS
    # Digests: channel, cadence, local time and timezone, next send; paused with why.
    assert "<#C0WEEKLY>: every Monday at 09:00 (Europe/Paris); next Mon 22 Jun 2026, 09:00" in (
        text
    )
    assert "<#C0DAILY>: :pause_button: paused since 2026-06-15" in text
    assert "the channel was archived" in text and "`/journey digest daily 07:30`" in text
    # Rules: kind, on/off, channel, thresholds, cooldown.
    assert (
        "*retention (repeat purchases)*: on in <#C-ALERTS> (fires on a drop of 10% or more, "
        "with at least 50 in each group; cooldown 72 h)"
    ) in text
    assert "*funnel (a step's conversion)*: on in <#C-ALERTS> (fires on a drop of 20%" in text
    assert "*churn (valuable customers not coming back)*: off: turned off by <@U0ADMIN>" in text
    # Firing, not acknowledged yet; then acknowledged.
    assert "*Repeat purchases dropped* (retention) since 2026-06-15 in <#C-ALERTS>" in text
    assert "*not acknowledged yet*" in text
    # The commands that change them, and no stale "later release" text.
    for command in ("/journey digest off", "/journey alerts threshold", "/journey alerts channel"):
        assert command in text
    assert "later release" not in text

    acknowledge(
        engine,
        "shop",
        rule_id=rule_id,
        key="repeat_rate",
        user_id="U0ALICE",
        message_ref=chat.ts(0),
        now=NOW + HOUR,
    )
    text = texts(service.home("shop", now=NOW + 2 * HOUR))
    assert "acknowledged by <@U0ALICE> on 2026-06-15" in text
    assert "not acknowledged yet" not in text


def test_the_home_of_a_workspace_without_digests_or_data_says_how_to_start(engine):
    view = ReportService(engine).home("nobody", now=NOW)
    text = texts(view)
    assert "No data for this workspace yet" in text and "/journey connect" in text
    assert "None yet. An admin can connect Shopify, Stripe, HubSpot or WooCommerce" in text
    assert "No digests yet. `/journey digest weekly monday 09:00`" in text
    assert "Not set up yet. `/journey alerts channel`" in text


def test_the_home_shows_only_its_own_workspace(engine):
    set_up(engine)
    with Session(engine) as session:
        make_shop(session, "other")
        subscribe(session, "other", "C0OTHER", cadence="daily", now=NOW)
        session.commit()
        status = schedule_status(session, "other", NOW)
    assert [d.channel_id for d in status.digests] == ["C0OTHER"]
    assert status.rules == [] and status.firing == []
    text = texts(ReportService(engine).home("other", now=NOW))
    assert "C0WEEKLY" not in text and "Repeat purchases dropped" not in text


def test_a_busy_workspace_still_fits_slacks_home_limits(engine):
    set_up(engine)
    with Session(engine) as session:
        for i in range(120):
            subscribe(
                session,
                "shop",
                f"C{i:07d}",
                cadence="daily",
                local_time="08:00",
                timezone="Pacific/Chatham",
                now=NOW,
            )
        session.commit()
        status = schedule_status(session, "shop", NOW)
    assert status.digest_count == 122 and len(status.digests) == 50
    sources = [("stripe", f"store-{i}", None, "x" * 280) for i in range(40)]
    view = home_view(None, sources, status)
    View(**view).validate_json()  # slack_sdk's own checks (100 blocks, text sizes)
    assert len(view["blocks"]) <= HOME_BLOCKS
    for block in view["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= SECTION_TEXT
    text = texts(view)
    assert "…and 107 more: `/journey digest` in a channel" in text
    assert "…and 20 more: `/journey sources` lists them all." in text
    assert len(json.dumps(view)) < 50_000


def test_imported_sources_are_not_shown_as_never_synced():
    """The demo and CSV imports have no API to sync: "never synced" would read as broken."""
    view = home_view(
        None,
        [
            ("demo", "demo", None, None),
            ("csv", "csv", None, None),
            ("stripe", "shop", None, None),
        ],
    )
    text = json.dumps(view)
    assert "*demo*: the built-in demo store" in text
    assert "*csv*: imported from CSV files" in text
    assert "*shop* (stripe): never synced" in text


def test_the_home_shows_what_a_buyer_is_worth_and_the_channel_worth_most(engine):
    """The value headline: the value report's average buyer's 12-month value and, when its
    intervals separate one channel, that channel (escaped: a name like Slack markup pings
    nobody); when the models refuse, the reason instead of a number."""
    from test_value import build_store

    from journey.metrics.value import recent_window, value_report
    from journey.reporting import workspace_period
    from tests.slack_render import findings

    with Session(engine, expire_on_commit=False) as session:
        shop = build_store(
            session, {"<!channel> promo": (900, 0.9), "facebook": (900, 0.1)}, seed=2
        )
        session.commit()
        period = workspace_period(session, shop.workspace_id, None, now=NOW)
        report = value_report(session, shop.workspace_id, recent_window(period), now=NOW)
    assert report.best_channel == "<!channel> promo"
    best = next(c for c in report.channels if c.channel == report.best_channel)

    view = ReportService(engine).home(shop.workspace_id, now=NOW)
    assert findings(view) == []
    line = next(t for t in texts(view).splitlines() if t.startswith("*Customer value:*"))
    assert f"an average buyer is worth ${report.value_per_buyer_cents / 100:,.2f}" in line
    assert "over the next 12 months" in line
    assert (
        f"customers from &lt;!channel&gt; promo are worth most (${best.value_per_customer_cents / 100:,.2f} each"
        in line
    )
    assert "<!channel>" not in json.dumps(view)


def test_the_home_says_why_there_is_no_customer_value(engine):
    with Session(engine, expire_on_commit=False) as session:
        shop = make_shop(session, "few")
        shop.customer("c1", ("order", NOW - timedelta(days=20), 5000))
        session.commit()
    line = next(
        t
        for t in texts(ReportService(engine).home("few", now=NOW)).splitlines()
        if t.startswith("*Customer value:*")
    )
    assert line.startswith("*Customer value:* not available: ")
    assert "worth" not in line
