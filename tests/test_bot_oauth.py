"""Multi-workspace installs: the OAuth flow end to end, tokens encrypted at rest,
each workspace answered from its own data with its own token."""

from __future__ import annotations

import asyncio
import json
import re
import time
from urllib.parse import parse_qs, urlparse

import httpx
from cryptography.fernet import Fernet
from fakes.signing import event_callback, signed_headers, slash_command
from fakes.slack_api import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FakeSlack
from sqlalchemy import text

from bot.config import BotSettings
from bot.install.oauth import oauth_app
from bot.server import asgi_app
from journey.db import make_engine, upgrade
from journey.secrets import Cipher

SECRET = "oauth-signing-secret"


async def _install(http: httpx.AsyncClient, fake: FakeSlack, team_id: str) -> httpx.Response:
    """Open the install page, follow "Add to Slack" as Slack would, come back with a code."""
    page = await http.get("/slack/install")
    assert page.status_code == 200
    link = re.search(r'href="(https://slack.com/oauth/v2/authorize[^"]+)"', page.text).group(1)
    state = parse_qs(urlparse(link.replace("&amp;", "&")).query)["state"][0]
    # The state cookie is Secure; the test talks plain HTTP, so hand it over explicitly.
    cookie = page.headers["set-cookie"].split(";")[0]
    code = fake.issue_code(team_id=team_id)
    return await http.get(
        f"/slack/oauth_redirect?code={code}&state={state}", headers={"Cookie": cookie}
    )


async def _wait_for(fake: FakeSlack, name: str, timeout: float = 15) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fake.responses.get(name):
            return fake.responses[name]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no response at {name}")


async def test_install_stores_an_encrypted_token_and_serves_that_workspace(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'oauth.db'}")
    upgrade(engine)
    cipher = Cipher([Fernet.generate_key()])
    with FakeSlack() as fake:
        fake.add_user("U0INSTALLER", team_id="T0NEWTEAM")  # a member of the new workspace
        settings = BotSettings(
            signing_secret=SECRET,
            client_id=DEFAULT_CLIENT_ID,
            client_secret=DEFAULT_CLIENT_SECRET,
            api_url=fake.api_url,
        )
        app = oauth_app(settings, engine, cipher)
        transport = httpx.ASGITransport(app=asgi_app(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://bot") as http:
            done = await _install(http, fake, "T0NEWTEAM")
            assert done.status_code == 200, done.text
            (exchange,) = fake.calls_to("oauth.v2.access")
            assert exchange.ok

            with engine.connect() as conn:
                row = conn.execute(text("SELECT * FROM slack_installation")).mappings().one()
            token = exchange.response["access_token"]
            raw = json.dumps({k: (v.hex() if isinstance(v, bytes) else v) for k, v in row.items()})
            assert token not in raw and token.encode().hex() not in raw

            # A command from the new workspace is answered with its own token.
            body, ctype = slash_command(
                "help",
                team_id="T0NEWTEAM",
                user_id="U0INSTALLER",
                channel_id="C1",
                response_url=fake.response_url("x"),
            )
            ack = await http.post(
                "/slack/events", content=body, headers=signed_headers(body, ctype, SECRET)
            )
            assert ack.status_code == 200 and "/journey funnel" in ack.text

            body, ctype = slash_command(
                "funnel",
                team_id="T0NEWTEAM",
                user_id="U0INSTALLER",
                channel_id="C1",
                response_url=fake.response_url("nodata"),
            )
            await http.post(
                "/slack/events", content=body, headers=signed_headers(body, ctype, SECRET)
            )
            (post,) = await _wait_for(fake, "nodata")
            assert "journey import --workspace T0NEWTEAM" in post.text

            # A team that never installed is told to install the app, and sees no data.
            body, ctype = slash_command(
                "funnel",
                team_id="T0STRANGER",
                user_id="U1",
                channel_id="C1",
                response_url=fake.response_url("stranger"),
            )
            refused = await http.post(
                "/slack/events", content=body, headers=signed_headers(body, ctype, SECRET)
            )
            assert refused.status_code in (200, 401)
            posts = await _wait_for(fake, "stranger")
            assert "reinstall" in json.dumps([p.payload for p in posts])
            assert "Funnel" not in json.dumps([p.payload for p in posts])

            # tokens_revoked names revoked tokens by their user id ("an array of user IDs",
            # https://docs.slack.dev/reference/events/tokens_revoked). A user token of the
            # workspace, which journey never holds, changes nothing...
            bot_user = exchange.response["bot_user_id"]
            body, ctype = event_callback(
                {"type": "tokens_revoked", "tokens": {"oauth": ["U0INSTALLER"]}},
                "T0NEWTEAM",
            )
            await http.post(
                "/slack/events", content=body, headers=signed_headers(body, ctype, SECRET)
            )
            await asyncio.sleep(0.3)
            with engine.connect() as conn:
                still = conn.execute(text("SELECT is_active FROM slack_installation")).scalar_one()
            assert still, "a revoked user token deactivated the bot's installation"
            # ...and the bot token, named by the bot user, marks the installation inactive:
            # later requests are refused.
            body, ctype = event_callback(
                {"type": "tokens_revoked", "tokens": {"bot": [bot_user]}, "event_ts": "1.0"},
                "T0NEWTEAM",
            )
            assert (
                await http.post(
                    "/slack/events", content=body, headers=signed_headers(body, ctype, SECRET)
                )
            ).status_code == 200
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    active = conn.execute(
                        text("SELECT is_active FROM slack_installation")
                    ).scalar_one()
                if not active:
                    break
                await asyncio.sleep(0.05)
            assert not active
