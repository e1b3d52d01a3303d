"""The bot in Socket Mode, end to end: a real WebSocket from Bolt's handler to a fake Slack.

The bot asks the fake Web API for a Socket Mode URL with its app-level token,
connects, acknowledges each envelope within Slack's 3 seconds, answers through
the response URL, and reconnects when Slack asks it to.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl

import pytest
from fakes.signing import app_home_opened, slash_command
from fakes.slack_api import DEFAULT_BOT_TOKEN, FakeSlack
from fakes.socket_mode import ACK_DEADLINE, FakeSocketMode
from sqlalchemy import Engine

from bot.app import build_app
from bot.config import BotSettings
from bot.run import serve_socket_mode
from journey.db import make_engine, session_scope, upgrade
from journey.demo import load_demo
from journey.errors import JourneyError

APP_TOKEN = "xapp-1-A0JOURNEY-1111-fakeapptoken"


@pytest.fixture(scope="module")
def demo_engine(tmp_path_factory) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('socket') / 'bot.db'}")
    upgrade(engine)
    with FakeSlack() as fake, session_scope(engine) as session:
        load_demo(session, fake.team_id)
    return engine


@asynccontextmanager
async def running_bot(
    fake: FakeSlack, engine: Engine, app_token: str = APP_TOKEN
) -> AsyncIterator[asyncio.Task[None]]:
    settings = BotSettings(bot_token=DEFAULT_BOT_TOKEN, app_token=app_token, api_url=fake.api_url)
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve_socket_mode(build_app(settings, engine, transport="socket"), settings, engine, stop)
    )
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def command(fake: FakeSlack, text: str, name: str) -> dict[str, str]:
    """A slash command's payload as Socket Mode carries it: the same fields, as JSON."""
    body, _ = slash_command(
        text,
        team_id=fake.team_id,
        user_id="U0ALICE",
        channel_id="C0GENERAL",
        response_url=fake.response_url(name),
    )
    return dict(parse_qsl(body.decode()))


async def responses(fake: FakeSlack, name: str, timeout: float = 20) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fake.responses.get(name):
            return fake.responses[name]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no answer at response URL {name}")


@pytest.fixture
def slack(monkeypatch) -> FakeSlack:
    monkeypatch.setenv("JOURNEY_SCHEDULER_INTERVAL", "0")
    with FakeSlack() as fake:
        fake.add_token(APP_TOKEN, scopes=("connections:write",))
        fake.add_user("U0ALICE", is_admin=False)
        yield fake


async def test_a_command_is_acknowledged_in_time_and_answered(slack, demo_engine):
    async with FakeSocketMode(slack) as sm, running_bot(slack, demo_engine):
        await sm.wait_connected()
        opened = [c for c in slack.calls if c.method == "apps.connections.open"]
        assert opened and opened[0].token == APP_TOKEN  # the app-level token, not the bot's

        envelope = await sm.send("slash_commands", command(slack, "funnel 30d", "funnel"))
        await sm.ack(envelope)
        assert sm.ack_seconds(envelope) < ACK_DEADLINE
        # the report first (its chart may follow at once: the same funnel is cached)
        answer = (await responses(slack, "funnel"))[0]
        text = json.dumps(answer.payload)
        assert "Funnel" in text and "awareness" in text.lower()
        assert "Traceback" not in text
        assert sm.unexpected == []


async def test_a_malformed_command_gets_help_not_an_error(slack, demo_engine):
    async with FakeSocketMode(slack) as sm, running_bot(slack, demo_engine):
        await sm.wait_connected()
        envelope = await sm.send("slash_commands", command(slack, "funnnel", "typo"))
        ack = await sm.ack(envelope)
        said = json.dumps(ack.get("payload") or [p.payload for p in await responses(slack, "typo")])
        assert "funnel" in said and "Traceback" not in said


async def test_the_bot_reconnects_when_slack_asks_and_keeps_answering(slack, demo_engine):
    async with FakeSocketMode(slack) as sm, running_bot(slack, demo_engine):
        await sm.wait_connected()
        await sm.disconnect("refresh_requested")
        await sm.wait_connected(count=2, timeout=20)
        assert len([c for c in slack.calls if c.method == "apps.connections.open"]) >= 2
        assert len(set(sm.tickets)) == len(sm.tickets)  # a fresh URL each time

        envelope = await sm.send("slash_commands", command(slack, "reviews", "after"))
        await sm.ack(envelope)
        assert await responses(slack, "after")


async def test_a_warning_disconnect_reconnects_and_keeps_answering(slack, demo_engine):
    async with FakeSocketMode(slack) as sm, running_bot(slack, demo_engine) as task:
        await sm.wait_connected()
        await sm.disconnect("warning")
        await sm.wait_connected(count=2, timeout=20)
        assert not task.done()
        envelope = await sm.send("slash_commands", command(slack, "reviews", "warned"))
        await sm.ack(envelope)
        assert await responses(slack, "warned")


async def test_socket_mode_switched_off_stops_the_bot_with_what_to_do(slack, demo_engine):
    """`link_disabled`: reconnecting cannot help, so the bot stops and says why."""
    async with FakeSocketMode(slack) as sm:
        with pytest.raises(JourneyError) as stopped:
            async with running_bot(slack, demo_engine) as task:
                await sm.wait_connected()
                opened = len(slack.calls_to("apps.connections.open"))
                await sm.disconnect("link_disabled")
                await asyncio.wait_for(task, 10)
        assert "Socket Mode was switched off in the app's settings" in str(stopped.value)
        assert "journey serve" in str(stopped.value)
        await asyncio.sleep(0.5)
        assert sm.connections == 1
        assert len(slack.calls_to("apps.connections.open")) == opened


async def test_events_arrive_over_the_socket_too(slack, demo_engine):
    async with FakeSocketMode(slack) as sm, running_bot(slack, demo_engine):
        await sm.wait_connected()
        event = {
            "type": "event_callback",
            "team_id": slack.team_id,
            "api_app_id": slack.app_id,
            "event": app_home_opened("U0ALICE"),
            "event_id": "Ev0SOCKET",
            "event_time": int(time.time()),
        }
        envelope = await sm.send("events_api", event)
        await sm.ack(envelope)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if any(c.method == "views.publish" for c in slack.calls):
                break
            await asyncio.sleep(0.05)
        [publish] = [c for c in slack.calls if c.method == "views.publish"]
        assert publish.params["user_id"] == "U0ALICE"


async def test_a_refused_app_token_stops_with_words_not_a_traceback(slack, demo_engine):
    slack.revoke(APP_TOKEN)
    async with FakeSocketMode(slack):
        with pytest.raises(JourneyError, match="SLACK_APP_TOKEN") as refused:
            async with running_bot(slack, demo_engine) as task:
                await asyncio.wait_for(task, 10)
    assert APP_TOKEN not in str(refused.value)
