"""Loading /slack/install writes nothing; the state it hands out works once (issue 16).

The attack: every anonymous GET of the public install page inserted an OAuth state
row, so a loop of GETs kept SQLite's write lock busy. States are now signed and
expiring (bot/install/oauth_state.py); the database sees only a state that comes back from
Slack valid, once.
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from cryptography.fernet import Fernet
from fakes.slack_api import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FakeSlack
from sqlalchemy import event, text

from bot.config import BotSettings
from bot.install.installations import utcnow
from bot.install.oauth import oauth_app
from bot.install.oauth_state import SignedOAuthStateStore
from bot.server import asgi_app
from journey.db import make_engine, upgrade
from journey.secrets import Cipher

SECRET = "oauth-state-signing-secret"
WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER)\b", re.I)


@pytest.fixture
def engine(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'oauth.db'}")
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def writes(engine) -> list[str]:
    """Every statement that would change the database, as it is executed."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if WRITES.match(statement):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
async def http(engine):
    with FakeSlack() as fake:
        settings = BotSettings(
            signing_secret=SECRET,
            client_id=DEFAULT_CLIENT_ID,
            client_secret=DEFAULT_CLIENT_SECRET,
            api_url=fake.api_url,
        )
        app = oauth_app(settings, engine, Cipher([Fernet.generate_key()]))
        transport = httpx.ASGITransport(app=asgi_app(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
            client.fake = fake  # type: ignore[attr-defined]
            yield client


async def _start(http: httpx.AsyncClient) -> tuple[str, str]:
    page = await http.get("/slack/install")
    assert page.status_code == 200
    link = re.search(r'href="(https://slack.com/oauth/v2/authorize[^"]+)"', page.text).group(1)
    state = parse_qs(urlparse(link.replace("&amp;", "&")).query)["state"][0]
    return state, page.headers["set-cookie"].split(";")[0]


async def test_loading_the_install_page_writes_nothing(http, engine, writes):
    states = {(await _start(http))[0] for _ in range(50)}
    assert len(states) == 50  # each visit its own state
    assert writes == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM slack_oauth_state")).scalar_one() == 0


async def test_a_state_is_accepted_once_then_refused(http, engine):
    state, cookie = await _start(http)
    code = http.fake.issue_code(team_id="T0ONCE")
    first = await http.get(
        f"/slack/oauth_redirect?code={code}&state={state}", headers={"Cookie": cookie}
    )
    assert first.status_code == 200, first.text
    code = http.fake.issue_code(team_id="T0ONCE")
    again = await http.get(
        f"/slack/oauth_redirect?code={code}&state={state}", headers={"Cookie": cookie}
    )
    assert again.status_code != 200
    assert len(http.fake.calls_to("oauth.v2.access")) == 1


@pytest.mark.parametrize("tamper", ["signature", "expiry", "nonce", "garbage"])
async def test_a_forged_state_is_refused_without_a_write(http, writes, tamper):
    state, cookie = await _start(http)
    nonce, expires, signature = state.split(".")

    def other(c: str) -> str:  # a different character, so the forgery never equals the state
        return "y" if c == "x" else "x"

    forged = {
        "signature": f"{nonce}.{expires}.{signature[:-1]}{other(signature[-1])}",
        "expiry": f"{nonce}.{int(expires) + 3600}.{signature}",
        "nonce": f"{other(nonce[0])}{nonce[1:]}.{expires}.{signature}",
        "garbage": "not-a-state",
    }[tamper]
    # Bolt compares the cookie with the state first: give it the forged value in both.
    code = http.fake.issue_code(team_id="T0FORGED")
    response = await http.get(
        f"/slack/oauth_redirect?code={code}&state={forged}",
        headers={"Cookie": f"{cookie.split('=')[0]}={forged}"},
    )
    assert response.status_code != 200
    assert not http.fake.calls_to("oauth.v2.access")
    assert writes == []


async def test_a_state_from_another_browser_is_refused(http):
    state, _ = await _start(http)
    _, other_cookie = await _start(http)
    code = http.fake.issue_code(team_id="T0OTHER")
    response = await http.get(
        f"/slack/oauth_redirect?code={code}&state={state}", headers={"Cookie": other_cookie}
    )
    assert response.status_code != 200
    assert not http.fake.calls_to("oauth.v2.access")


async def test_an_expired_state_is_refused(engine):
    now = utcnow()
    store = SignedOAuthStateStore(engine, DEFAULT_CLIENT_SECRET, clock=lambda: now)
    state = await store.async_issue()
    later = SignedOAuthStateStore(
        engine, DEFAULT_CLIENT_SECRET, clock=lambda: now + timedelta(seconds=601)
    )
    assert not await later.async_consume(state)
    assert await store.async_consume(state)
    other_app = SignedOAuthStateStore(engine, "another-client-secret", clock=lambda: now)
    assert not await other_app.async_consume(await store.async_issue())
