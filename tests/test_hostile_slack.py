"""The hostile store (tests/hostile_store.py) through the running bot, end to end.

Signed slash commands, buttons and the App Home event go into the real ASGI app;
whatever the bot sends arrives at the fake Slack (responses, posts, file comments,
views), and tests/slack_render.py reads all of it as Slack would: no mention, broadcast
or link may come from the data, and the names must still be there, readable.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fakes.signing import app_home_opened, block_actions, event_callback
from fakes.slack_api import DEFAULT_BOT_TOKEN, FakeSlack
from hostile_store import (
    BUSINESS_NAME,
    CHANNELS,
    DIGEST_CHANNEL,
    NAMES,
    OWN_USER,
    build_hostile_store,
    digest_subscription,
    hostile_alert,
)
from slack_driver import SECRET, SignedBot, bot_client
from slack_render import all_findings, findings, sent, visible_texts
from sqlalchemy import Engine

from bot.app import build_app
from bot.commands.service import ReportService
from bot.config import BotSettings
from bot.deps import Deps
from bot.posting.delivery import Pacer, SlackDelivery, static_token
from journey.db import make_engine, session_scope, upgrade
from journey.schedule import Schedule, next_send_after
from journey.schedule.runner import Delivery, run_due

TEAM = "T0JOURNEY"  # the fake Slack's default team
# The references the bot itself makes: the person who asked, the channel they asked in,
# and the conversations of the store's digests and alerts.
OWN = [OWN_USER, "U0ADMIN", "C0GENERAL", "C0DIGEST", "C0PAUSED"]


@pytest.fixture(scope="module")
def hostile_engine(tmp_path_factory) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'bot.db'}")
    upgrade(engine)
    with FakeSlack() as fake, session_scope(engine) as session:
        assert fake.team_id == TEAM
        build_hostile_store(session, TEAM, datetime.now(UTC))
    yield engine
    engine.dispose()


@pytest.fixture
async def bot(hostile_engine):
    with FakeSlack() as fake:
        fake.add_user(OWN_USER, is_admin=False)
        fake.add_user("U0ADMIN", is_admin=True)
        settings = BotSettings(
            bot_token=DEFAULT_BOT_TOKEN, signing_secret=SECRET, api_url=fake.api_url
        )
        deps = Deps(service=ReportService(hostile_engine), settings=settings, working_after=10)
        app = build_app(settings, hostile_engine, deps=deps)
        async with bot_client(app) as http:
            yield SignedBot(fake, hostile_engine, http, fake.team_id)


async def _click(
    bot: SignedBot, action_id: str, value: dict | str, name: str, user: str = OWN_USER
) -> None:
    raw = value if isinstance(value, str) else json.dumps(value)
    body, ctype = block_actions(
        action_id,
        raw,
        team_id=bot.team,
        user_id=user,
        channel_id="C0GENERAL",
        response_url=bot.fake.response_url(name),
    )
    assert (await bot.post(body, ctype)).status_code == 200


async def test_commands_buttons_and_home_post_nothing_live(bot):
    acks = []
    commands = (
        "reviews",
        "funnel 365d by channel",
        f'funnel 365d channel "{CHANNELS["mallory"]}"',
        "retention 365d",
        "churn",
        "value 365d",
        "sources",
        "alerts",
        "funnel <!channel>",  # a parse error echoes what was typed (in the ack)
        "<@U0123ABCD>",  # an unknown word: "did you mean" (in the ack)
    )
    for i, text in enumerate(commands):
        name = f"cmd-{i}"
        response = await bot.command(text, name)
        assert response.status_code == 200
        if response.content not in (b"", b"{}"):
            acks.append((text, response.json()))
        else:
            await bot.responses(name)
    # The two echoes are answered in the acknowledgement itself (the others may be too).
    assert {"funnel <!channel>", "<@U0123ABCD>"} <= {text for text, _ in acks}
    # An admin's sync of a source that does not exist echoes the name typed.
    await bot.command('sync "<!here> x"', "sync", user="U0ADMIN")
    await bot.responses("sync")
    # Buttons: share a report in the channel, mark a review candidate, export the CSV.
    # Share and the CSV are for admins (bot/guard/access.py).
    share = {"k": "reviews", "p": None, "c": None, "v": ""}
    await _click(bot, "journey_share", share, "share", user="U0ADMIN")
    (review,) = await bot.responses("cmd-0")
    asked = next(
        e["value"]
        for b in review.blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "journey_review_asked"
    )
    await _click(bot, "journey_review_asked", asked, "mark")
    csv = {"k": "churn", "p": "365d", "c": None, "v": ""}
    await _click(bot, "journey_export_csv", csv, "csv", user="U0ADMIN")
    await bot.responses("share")
    await bot.responses("mark")
    await bot.responses("csv")
    body, ctype = event_callback(app_home_opened(OWN_USER), bot.team)
    assert (await bot.post(body, ctype)).status_code == 200
    deadline = time.monotonic() + 15
    while not bot.fake.calls_to("views.publish") and time.monotonic() < deadline:
        await asyncio.sleep(0.05)

    problems = all_findings(bot.fake, OWN)
    problems += [f"ack of {text!r}: {f}" for text, body in acks for f in findings(body, OWN)]
    assert problems == [], "\n".join(problems)

    # Not vacuous: the names went to Slack, and read as typed.
    payloads = [p for _, p in sent(bot.fake)] + [body for _, body in acks]
    shown = "\n".join(t for p in payloads for t in visible_texts(p))
    for name in NAMES.values():
        assert name in shown, name
    for channel in CHANNELS.values():
        assert channel in shown, channel
    for typed in ("<!channel>", "<@U0123ABCD>", "<!here> x"):
        assert typed in shown, typed
    methods = {label.split(" ")[0] for label, _ in sent(bot.fake)}
    assert {"response_url", "views.publish", "files.completeUploadExternal"} <= methods
    raw = json.dumps(payloads, ensure_ascii=False)
    assert "Tom &amp; Jerry" in raw and "&amp;amp;" not in raw
    # The share names who shared it, live (the bot's own mention).
    (share,) = bot.fake.responses["share"]
    assert share.text.startswith("<@U0ADMIN> shared: ")


def test_scheduled_digest_and_alert_post_nothing_live(hostile_engine):
    """What the bot posts unasked, through the real delivery port: the hostile store's
    digest when it is due, and an alert listing hostile names. (The pause notice, whose
    reason is stored text, is checked with a hostile reason in test_hostile_data.)"""
    with session_scope(hostile_engine) as session:
        sub = digest_subscription(session, TEAM)
        due = next_send_after(Schedule.of(sub), datetime.now(UTC)).at
    with FakeSlack() as fake:
        fake.add_user(OWN_USER)
        port = SlackDelivery(
            static_token(DEFAULT_BOT_TOKEN),
            base_url=fake.api_url,
            pacer=Pacer(sleep=lambda _: None),
        )
        report = run_due(hostile_engine, due + timedelta(seconds=30), port, "r1")
        assert report.sent, report
        alert = Delivery(
            kind="alert",
            idempotency_key="alert:hostile",
            workspace_id=fake.team_id,
            channel_id="C0ALERTS",
            attempt=1,
            may_have_been_sent=False,
            late=False,
            scheduled_at=due,
            alert=hostile_alert(fake.team_id, due),
        )
        assert port(alert).status == "ok"
        posted = [m for m in fake.posted() if not m.files]
        assert {m.channel for m in posted} >= {DIGEST_CHANNEL, "C0ALERTS"}
        problems = all_findings(fake, [*OWN, "C0ALERTS"])
        assert problems == [], "\n".join(problems)
        shown = "\n".join(t for _, p in sent(fake) for t in visible_texts(p))
        for name in NAMES.values():
            assert name in shown, name  # the alert lists every one of them
        assert BUSINESS_NAME in shown  # the digest's header and text name the business
