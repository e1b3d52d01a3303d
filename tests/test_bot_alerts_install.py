"""Default alert rules on install: created by the OAuth callback with a destination that
works at once (a digest channel, else a direct message with the installer), and given the
first digest's channel when they still have none."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

import httpx
from cryptography.fernet import Fernet
from fakes.slack_api import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FakeSlack
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.blocks.message import Message
from bot.commands.language import AlertsRequest, DigestRequest
from bot.commands.schedule_settings import alerts_reply, digest_reply
from bot.config import BotSettings
from bot.install.installations import INSTALL_DM_TEXT, install_default_alerts
from bot.install.oauth import oauth_app
from bot.server import asgi_app
from journey.db import make_engine, session_scope, upgrade
from journey.models.schedule import AlertRule
from journey.schedule import subscribe
from journey.secrets import Cipher
from journey.workspaces import ensure_workspace

NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)
TEAM = "T0NEWTEAM"


def _engine(tmp_path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'install.db'}")
    upgrade(engine)
    return engine


def _rules(engine: Engine, team: str = TEAM) -> dict[str, AlertRule]:
    with Session(engine) as session:
        return {
            r.kind: r for r in session.exec(select(AlertRule).where(AlertRule.workspace_id == team))
        }


def _said(message: Message) -> str:
    """Everything a reply shows: its text and its blocks (hints are context blocks)."""
    return json.dumps(message.payload())


async def _install(engine: Engine, fake: FakeSlack, team_id: str = TEAM) -> httpx.Response:
    """The OAuth flow as Slack drives it: install page, "Add to Slack", redirect back."""
    settings = BotSettings(
        signing_secret="install-signing-secret",
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
        api_url=fake.api_url,
    )
    app = oauth_app(settings, engine, Cipher([Fernet.generate_key()]))
    transport = httpx.ASGITransport(app=asgi_app(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://bot") as http:
        page = await http.get("/slack/install")
        link = re.search(r'href="(https://slack.com/oauth/v2/authorize[^"]+)"', page.text)
        assert link is not None
        state = parse_qs(urlparse(link.group(1).replace("&amp;", "&")).query)["state"][0]
        cookie = page.headers["set-cookie"].split(";")[0]
        code = fake.issue_code(team_id=team_id, user_id="U0INSTALLER")
        return await http.get(
            f"/slack/oauth_redirect?code={code}&state={state}", headers={"Cookie": cookie}
        )


async def test_install_sends_the_default_alerts_to_the_installer_when_no_digest_runs(tmp_path):
    engine = _engine(tmp_path)
    with session_scope(engine) as session:
        ensure_workspace(session, TEAM)  # data loaded before the install (journey import)
    with FakeSlack() as fake:
        fake.add_user("U0INSTALLER", team_id=TEAM, is_admin=True)
        done = await _install(engine, fake)
        assert done.status_code == 200, done.text
        (opened,) = fake.calls_to("conversations.open")
        assert opened.params["users"] == "U0INSTALLER"
        dm = opened.response["channel"]["id"]
        rules = _rules(engine)
        assert set(rules) == {"retention_drop", "funnel_step_drop", "high_value_churn"}
        assert {r.channel_id for r in rules.values()} == {dm}
        assert all(r.enabled for r in rules.values())
        # The installer is told where the alerts go and how to move them.
        (told,) = [c for c in fake.calls_to("chat.postMessage") if c.params["channel"] == dm]
        assert told.params["text"] == INSTALL_DM_TEXT
        assert "/journey alerts channel" in INSTALL_DM_TEXT


async def test_install_sends_the_default_alerts_to_a_running_digest(tmp_path):
    engine = _engine(tmp_path)
    with session_scope(engine) as session:
        ensure_workspace(session, TEAM)
        subscribe(session, TEAM, "C0DIGEST", cadence="weekly", timezone="UTC", now=NOW)
    with FakeSlack() as fake:
        fake.add_user("U0INSTALLER", team_id=TEAM)
        assert (await _install(engine, fake)).status_code == 200
        assert fake.calls_to("conversations.open") == []  # no DM needed
    assert {r.channel_id for r in _rules(engine).values()} == {"C0DIGEST"}


async def test_a_workspace_without_data_keeps_its_no_data_answer_and_gets_rules_later(tmp_path):
    """Rules belong to a workspace; one is not created empty on install (the bot's answers
    would then be empty reports instead of "no data yet, load some like this")."""
    engine = _engine(tmp_path)
    with FakeSlack() as fake:
        fake.add_user("U0INSTALLER", team_id=TEAM)
        assert (await _install(engine, fake)).status_code == 200
        assert fake.calls_to("conversations.open") == []
    assert _rules(engine) == {}


async def test_an_install_whose_direct_message_cannot_open_still_succeeds(tmp_path):
    engine = _engine(tmp_path)
    with session_scope(engine) as session:
        ensure_workspace(session, TEAM)
    with FakeSlack() as fake:
        # U0INSTALLER unknown to the fake: conversations.open answers user_not_found.
        assert (await _install(engine, fake)).status_code == 200
    rules = _rules(engine)
    assert len(rules) == 3 and {r.channel_id for r in rules.values()} == {None}


def test_a_reinstall_keeps_a_channel_someone_chose(tmp_path):
    engine = _engine(tmp_path)
    with session_scope(engine) as session:
        ensure_workspace(session, TEAM)
    alerts_reply(engine, TEAM, "C0CHOSEN", "U0ADMIN", AlertsRequest("channel"), now=NOW)
    assert install_default_alerts(engine, TEAM, direct_channel="D0INSTALLER", now=NOW) == (
        "D0INSTALLER"
    )
    assert {r.channel_id for r in _rules(engine).values()} == {"C0CHOSEN"}


def test_the_first_digest_gives_alerts_without_a_channel_its_channel(tmp_path):
    engine = _engine(tmp_path)
    with session_scope(engine) as session:
        ensure_workspace(session, TEAM)
    listed = alerts_reply(engine, TEAM, "C0ANY", "U0ALICE", AlertsRequest("list"), now=NOW)
    assert "no channel" in _said(listed)  # listing changes nothing

    weekly = DigestRequest("set", cadence="weekly", day_of_week=0)
    first = digest_reply(engine, TEAM, "C0SALES", "U0ADMIN", "UTC", weekly, now=NOW)
    assert "had no channel and now post here too" in _said(first)
    assert {r.channel_id for r in _rules(engine).values()} == {"C0SALES"}

    # A second digest elsewhere does not move them, and says where they are.
    second = digest_reply(engine, TEAM, "C0OPS", "U0ADMIN", "UTC", weekly, now=NOW)
    assert "Alerts post in <#C0SALES>" in _said(second)
    assert {r.channel_id for r in _rules(engine).values()} == {"C0SALES"}


def test_a_digest_leaves_alerts_someone_turned_off_without_news(tmp_path):
    engine = _engine(tmp_path)
    with session_scope(engine) as session:
        ensure_workspace(session, TEAM)
    alerts_reply(engine, TEAM, "C0ANY", "U0ADMIN", AlertsRequest("off"), now=NOW)
    weekly = DigestRequest("set", cadence="weekly", day_of_week=0)
    reply = digest_reply(engine, TEAM, "C0SALES", "U0ADMIN", "UTC", weekly, now=NOW)
    assert "now post here" not in _said(reply)
    assert not any(r.enabled for r in _rules(engine).values())
