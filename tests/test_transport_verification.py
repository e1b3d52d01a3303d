"""Verification follows the transport, never which variables are set (issue 16, item 1).

The attack: a `.env` kept from trying Socket Mode first still holds SLACK_APP_TOKEN;
under `journey serve` the bot used to turn request verification off, so an unsigned
`/journey churn` posted customer names to a response URL the sender chose. Here every
combination of tokens is served the way `journey serve` serves it (bot.run.http_app:
the guard, Bolt, the listeners) and sent an unsigned request, a stale one (1970, a
made-up signature) and a badly signed one: each gets 401 and nothing reaches Slack.
"""

from __future__ import annotations

import asyncio
import logging
import re
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from cryptography.fernet import Fernet
from fakes.signing import FORM, sign, signed_headers, slash_command
from fakes.slack_api import DEFAULT_BOT_TOKEN, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FakeSlack

from bot import run as bot_run
from bot.app import build_app
from bot.config import BotSettings, load_bot_settings
from bot.server import asgi_app
from journey.db import make_engine, upgrade
from journey.errors import JourneyError

SECRET = "transport-signing-secret"
APP_TOKEN = "xapp-1-A0JOURNEY-1-leftover"
ENV_NAMES = (
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_CLIENT_ID",
    "SLACK_CLIENT_SECRET",
    "SLACK_API_URL",
    "JOURNEY_SECRET_KEY",
)

# Each way a deployer's .env can look when they run `journey serve`.
COMBINATIONS = {
    "bot token": {"SLACK_BOT_TOKEN": DEFAULT_BOT_TOKEN},
    "bot token + leftover app token": {
        "SLACK_BOT_TOKEN": DEFAULT_BOT_TOKEN,
        "SLACK_APP_TOKEN": APP_TOKEN,
    },
    "oauth": {"SLACK_CLIENT_ID": DEFAULT_CLIENT_ID, "SLACK_CLIENT_SECRET": DEFAULT_CLIENT_SECRET},
    "oauth + leftover app token": {
        "SLACK_CLIENT_ID": DEFAULT_CLIENT_ID,
        "SLACK_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        "SLACK_APP_TOKEN": APP_TOKEN,
    },
    "oauth + bot token + leftover app token": {
        "SLACK_BOT_TOKEN": DEFAULT_BOT_TOKEN,
        "SLACK_CLIENT_ID": DEFAULT_CLIENT_ID,
        "SLACK_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        "SLACK_APP_TOKEN": APP_TOKEN,
    },
}


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A clean environment (no .env, no Slack variables) the test fills in."""
    monkeypatch.chdir(tmp_path)
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'journey.db'}")
    monkeypatch.setenv("JOURNEY_SCHEDULER_INTERVAL", "0")

    def fill(values: dict[str, str]) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return fill


@pytest.fixture
def engine(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'journey.db'}")
    upgrade(eng)
    yield eng
    eng.dispose()


def _forgeries(body: bytes, ctype: str) -> dict[str, dict[str, str]]:
    stale = {"X-Slack-Request-Timestamp": "0", "X-Slack-Signature": "v0=" + "0" * 64}
    return {
        "unsigned": {"Content-Type": ctype},
        "stale": {"Content-Type": ctype, **stale},
        "wrong secret": {"Content-Type": ctype, **sign(body, "not-the-secret")},
        "replayed": signed_headers(body, ctype, SECRET, timestamp=0),
    }


async def _send_forgeries(http: httpx.AsyncClient, fake: FakeSlack, team: str) -> None:
    """/journey churn as an attacker would send it: every variant must get 401."""
    for name, build in (("churn", "churn 90d"), ("alerts", "alerts channel")):
        body, ctype = slash_command(
            build,
            team_id=team,
            user_id="U0ADMIN",
            channel_id="C0ATTACKER",
            response_url=fake.response_url(f"forged-{name}"),
        )
        for problem, headers in _forgeries(body, ctype).items():
            response = await http.post("/slack/events", content=body, headers=headers)
            assert response.status_code == 401, (problem, response.text)
            assert "Traceback" not in response.text
    await asyncio.sleep(0.3)  # anything started in the background would have called by now
    assert not [n for n in fake.responses if n.startswith("forged")]
    assert not [c for c in fake.calls if c.method not in ("auth.test",)]


@pytest.mark.parametrize("combination", list(COMBINATIONS))
async def test_journey_serve_verifies_every_request_whatever_tokens_are_set(
    env, engine, combination
):
    with FakeSlack() as fake:
        fake.add_user("U0ADMIN", is_admin=True)
        env(
            {
                **COMBINATIONS[combination],
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": fake.api_url,
                "JOURNEY_SECRET_KEY": Fernet.generate_key().decode(),
            }
        )
        served = bot_run.http_app(load_bot_settings(), engine)
        transport = httpx.ASGITransport(app=served)
        async with httpx.AsyncClient(transport=transport, base_url="http://bot") as http:
            await _send_forgeries(http, fake, fake.team_id)
            # The same request, signed, is served: the 401s were the signature's doing.
            body, ctype = slash_command(
                "help",
                team_id=fake.team_id,
                user_id="U0ADMIN",
                channel_id="C0GENERAL",
                response_url=fake.response_url("signed"),
            )
            signed = await http.post(
                "/slack/events", content=body, headers=signed_headers(body, ctype, SECRET)
            )
            assert signed.status_code == 200


@pytest.mark.parametrize("combination", list(COMBINATIONS))
def test_journey_serve_refuses_to_start_without_a_signing_secret(env, engine, combination):
    env({**COMBINATIONS[combination], "JOURNEY_SECRET_KEY": Fernet.generate_key().decode()})
    with pytest.raises(JourneyError, match="SLACK_SIGNING_SECRET") as refused:
        bot_run.run("http")
    assert "Socket Mode is the easier path" in str(refused.value)
    with pytest.raises(JourneyError, match="SLACK_SIGNING_SECRET"):
        bot_run.http_app(load_bot_settings(), engine)


def test_a_leftover_app_token_under_journey_serve_is_named_in_a_warning(env, monkeypatch, caplog):
    env(
        {
            "SLACK_BOT_TOKEN": DEFAULT_BOT_TOKEN,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
        }
    )
    served: list = []
    monkeypatch.setattr("bot.server.serve_http", lambda app, port: served.append(port))
    with caplog.at_level(logging.WARNING, logger="journey.bot"):
        bot_run.run("http", port=3999)
    assert served == [3999]
    (warning,) = [r for r in caplog.records if "SLACK_APP_TOKEN" in r.getMessage()]
    assert warning.levelno == logging.WARNING and "not used" in warning.getMessage()
    assert APP_TOKEN not in caplog.text


def test_without_a_leftover_app_token_there_is_no_warning(env, monkeypatch, caplog):
    env({"SLACK_BOT_TOKEN": DEFAULT_BOT_TOKEN, "SLACK_SIGNING_SECRET": SECRET})
    monkeypatch.setattr("bot.server.serve_http", lambda app, port: None)
    with caplog.at_level(logging.WARNING, logger="journey.bot"):
        bot_run.run("http", port=3999)
    assert "SLACK_APP_TOKEN" not in caplog.text


@pytest.mark.parametrize("signing_secret", [None, SECRET])
async def test_a_socket_mode_app_never_accepts_an_unverified_http_request(engine, signing_secret):
    """Only requests that came over the Socket Mode connection skip the check (Bolt's
    own rule); an HTTP request reaching a Socket Mode app is verified like any other
    (without a signing secret, against a random one, so nothing passes)."""
    with FakeSlack() as fake:
        settings = BotSettings(
            bot_token=DEFAULT_BOT_TOKEN,
            app_token=APP_TOKEN,
            signing_secret=signing_secret,
            api_url=fake.api_url,
        )
        app = build_app(settings, engine, transport="socket")
        transport = httpx.ASGITransport(app=asgi_app(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://bot") as http:
            await _send_forgeries(http, fake, fake.team_id)


def test_the_http_transport_cannot_be_built_without_a_signing_secret(engine):
    settings = BotSettings(bot_token=DEFAULT_BOT_TOKEN, app_token=APP_TOKEN)
    with pytest.raises(JourneyError, match="Socket Mode is the easier path"):
        build_app(settings, engine, transport="http")


async def test_oauth_a_forged_team_id_cannot_pick_a_tenant(env, engine):
    """In OAuth mode the payload's team_id chooses whose token answers. An installed
    victim workspace exists; requests naming it without Slack's signature get 401, and
    its token is never used."""
    with FakeSlack() as fake:
        env(
            {
                **COMBINATIONS["oauth + leftover app token"],
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": fake.api_url,
                "JOURNEY_SECRET_KEY": Fernet.generate_key().decode(),
            }
        )
        served = bot_run.http_app(load_bot_settings(), engine)
        transport = httpx.ASGITransport(app=served)
        async with httpx.AsyncClient(transport=transport, base_url="http://bot") as http:
            page = await http.get("/slack/install")
            link = re.search(r'href="(https://slack.com/oauth/v2/authorize[^"]+)"', page.text)
            state = parse_qs(urlparse(link.group(1).replace("&amp;", "&")).query)["state"][0]
            cookie = page.headers["set-cookie"].split(";")[0]
            code = fake.issue_code(team_id="T0VICTIM")
            done = await http.get(
                f"/slack/oauth_redirect?code={code}&state={state}", headers={"Cookie": cookie}
            )
            assert done.status_code == 200
            victim_token = fake.calls_to("oauth.v2.access")[0].response["access_token"]
            fake.reset()

            await _send_forgeries(http, fake, "T0VICTIM")
            assert not [c for c in fake.calls if c.token == victim_token]

            # Signed, the same team is served with its own token.
            body, ctype = slash_command(
                "help",
                team_id="T0VICTIM",
                user_id="U0VICTIM",
                channel_id="C1",
                response_url=fake.response_url("victim"),
            )
            ok = await http.post(
                "/slack/events", content=body, headers=signed_headers(body, ctype, SECRET)
            )
            assert ok.status_code == 200 and "/journey funnel" in ok.text


async def test_forged_form_bodies_of_any_shape_get_401_not_500(engine):
    with FakeSlack() as fake:
        settings = BotSettings(
            bot_token=DEFAULT_BOT_TOKEN, signing_secret=SECRET, api_url=fake.api_url
        )
        transport = httpx.ASGITransport(app=asgi_app(build_app(settings, engine)))
        async with httpx.AsyncClient(transport=transport, base_url="http://bot") as http:
            for body in (b"[1]", b"null", b"[" * 50_000, b"payload=%7B", b"\xff\xfe"):
                for ctype in ("application/json", FORM):
                    response = await http.post(
                        "/slack/events", content=body, headers={"Content-Type": ctype}
                    )
                    assert response.status_code == 401
