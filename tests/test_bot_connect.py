"""`/journey connect`: the modal, its validation, and the key checked and stored encrypted.

Driven by signed requests through the real ASGI app, as in test_bot_http.py; the
key is checked against the fake Stripe over real HTTP, and everything the bot
says to Slack is recorded by the fake Slack, where the key must never appear.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from fakes.signing import view_submission
from fakes.slack_api import DEFAULT_BOT_TOKEN, FakeSlack
from slack_driver import SECRET, SignedBot, bot_client
from sqlalchemy import text

from bot.app import build_app
from bot.blocks.connect import (
    A_KIND,
    A_NAME,
    A_SECRET,
    A_SETTING,
    B_KIND,
    B_NAME,
    B_SECRET,
    CALLBACK_ID,
    setting_block,
)
from bot.commands.service import ReportService
from bot.config import BotSettings
from bot.deps import Deps
from journey.db import make_engine, session_scope, upgrade
from journey.secret_rows import source_identity
from journey.secrets import Cipher
from journey.sources.http import NO_WAIT, HttpOptions
from journey.sources.manage import Credential, api_sources
from tests.fakes.stripe_api import DEFAULT_KEY, FakeStripe

FERNET_KEY = "6pSmCH4WSlNM3f2-6tVu8bYd7c4vNXYTmfJkA1XiF6k="
FAST = HttpOptions(retry=NO_WAIT, timeout=httpx.Timeout(0.5))


@dataclass
class Bot(SignedBot):
    stripe: FakeStripe = field(kw_only=True)

    async def connect(self, name: str, user: str) -> tuple[httpx.Response, str]:
        """`/journey connect`; returns the answer and the trigger id a modal would use."""
        trigger = self.fake.issue_trigger()
        return await self.command("connect", name, user=user, trigger_id=trigger), trigger

    async def modal_shown(self, count: int = 1, timeout: float = 10) -> dict:
        """The view the modal shows once the bot has opened and then updated it."""
        deadline = time.monotonic() + timeout
        while len(self.fake.calls_to("views.update")) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        call = self.fake.calls_to("views.update")[count - 1]
        assert call.ok, call.response
        view = call.params["view"]
        return json.loads(view) if isinstance(view, str) else view

    async def submit(
        self,
        kind: str | None,
        name: str,
        secret: str,
        url: str = "",
        user: str = "U0ADMIN",
        team: str | None = None,
    ) -> httpx.Response:
        values: dict = {
            B_KIND: {
                A_KIND: {
                    "type": "static_select",
                    "selected_option": (
                        {"text": {"type": "plain_text", "text": kind}, "value": kind}
                        if kind
                        else None
                    ),
                }
            },
            B_NAME: {A_NAME: {"type": "plain_text_input", "value": name}},
            setting_block("url"): {A_SETTING: {"type": "plain_text_input", "value": url or None}},
            B_SECRET: {A_SECRET: {"type": "plain_text_input", "value": secret}},
        }
        body, ctype = view_submission(CALLBACK_ID, values, team_id=team or self.team, user_id=user)
        return await self.post(body, ctype)

    async def dms(self, user: str, count: int = 1, timeout: float = 15) -> list:
        return await self.posted("D" + user.removeprefix("U"), count, timeout)


@pytest.fixture
async def bot(tmp_path, monkeypatch) -> Iterator[Bot]:
    monkeypatch.setenv("JOURNEY_SECRET_KEY", FERNET_KEY)
    engine = make_engine(f"sqlite:///{tmp_path / 'connect.db'}")
    upgrade(engine)
    with FakeSlack() as fake, FakeStripe() as stripe:
        fake.add_user("U0ALICE", is_admin=False)
        fake.add_user("U0ADMIN", is_admin=True)
        settings = BotSettings(
            bot_token=DEFAULT_BOT_TOKEN, signing_secret=SECRET, api_url=fake.api_url
        )
        deps = Deps(
            service=ReportService(engine),
            settings=settings,
            working_after=10,
            extra={"connect_base_urls": {"stripe": stripe.url}, "connect_http": FAST},
        )
        app = build_app(settings, engine, deps=deps)
        async with bot_client(app) as http:
            yield Bot(fake, engine, http, fake.team_id, stripe=stripe)
    engine.dispose()


async def test_non_admin_sees_the_modal_turn_into_the_refusal(bot):
    response, trigger = await bot.connect("connect-alice", "U0ALICE")
    assert response.status_code == 200
    view = await bot.modal_shown()
    (opened,) = bot.fake.calls_to("views.open")
    assert opened.ok and opened.params["trigger_id"] == trigger
    assert "Only workspace admins and owners can connect a source" in json.dumps(view)
    assert "callback_id" not in view and "submit" not in view  # no form to fill in
    assert not bot.fake.responses.get("connect-alice")


async def test_the_modal_opens_before_a_slow_users_info_and_becomes_the_form(bot):
    """The trigger lives 3 s: views.open must not wait for the admin check."""
    bot.fake.delay("users.info", 3.5, times=1)
    response, _ = await bot.connect("connect-slow", "U0ADMIN")
    assert response.status_code == 200
    view = await bot.modal_shown(timeout=15)
    (opened,) = bot.fake.calls_to("views.open")
    (looked_up,) = bot.fake.calls_to("users.info")
    assert opened.ok and opened.time < looked_up.time + 0.5
    assert view["callback_id"] == CALLBACK_ID


async def test_a_trigger_used_after_three_seconds_is_expired_and_said_so(bot):
    trigger = bot.fake.issue_trigger()
    bot.fake.expire_trigger(trigger)
    await bot.command("connect", "connect-late", user="U0ADMIN", trigger_id=trigger)
    (post,) = await bot.responses("connect-late")
    assert "took too long to open the form" in post.text
    assert bot.fake.calls_to("views.open")[0].error == "expired_trigger_id"


async def test_admin_gets_the_modal_opened_with_the_commands_trigger(bot):
    response, trigger = await bot.connect("connect-admin", "U0ADMIN")
    assert response.status_code == 200
    view = await bot.modal_shown()
    (call,) = bot.fake.calls_to("views.open")
    assert call.ok, call.response
    assert call.params["trigger_id"] == trigger
    assert view["type"] == "modal" and view["callback_id"] == CALLBACK_ID
    by_id = {b.get("block_id"): b for b in view["blocks"]}
    kinds = [o["value"] for o in by_id[B_KIND]["element"]["options"]]
    assert by_id[B_KIND]["element"]["type"] == "static_select"
    assert sorted(kinds) == ["hubspot", "shopify", "stripe", "woocommerce"]
    assert by_id[B_SECRET]["element"]["type"] == "plain_text_input"
    assert by_id[B_NAME]["element"]["type"] == "plain_text_input"
    assert setting_block("url") in by_id
    assert "secret" not in view["private_metadata"]
    assert not bot.fake.responses.get("connect-admin")  # no "not available" reply


async def test_bad_url_and_missing_fields_come_back_as_field_errors(bot):
    response = await bot.submit("woocommerce", "shop", "ck_1:cs_2", url="not a url")
    assert response.status_code == 200
    body = response.json()
    assert body["response_action"] == "errors"
    assert set(body["errors"]) == {setting_block("url")}
    assert "https://" in body["errors"][setting_block("url")]
    response = await bot.submit("woocommerce", "shop", "ck_1:cs_2")
    assert setting_block("url") in response.json()["errors"]
    response = await bot.submit(None, "", "")
    assert set(response.json()["errors"]) == {B_KIND}
    response = await bot.submit("stripe", "", "")
    assert set(response.json()["errors"]) == {B_NAME, B_SECRET}
    assert api_sources_of(bot) == []


def api_sources_of(bot: Bot) -> list:
    with session_scope(bot.engine) as session:
        return [(s.kind, s.name, s.credentials) for s in api_sources(session, bot.team)]


async def test_stripe_key_is_checked_stored_encrypted_and_success_is_dmed(bot, caplog):
    caplog.set_level(logging.DEBUG)
    response = await bot.submit("stripe", "shop", DEFAULT_KEY)
    assert response.status_code == 200
    assert response.content in (b"", b"{}") or "errors" not in response.json()
    dm, *_ = await bot.dms("U0ADMIN")  # then the first sync's progress (test_bot_sync.py)
    assert "Connected Stripe source shop" in dm.text and "encrypted" in dm.text
    assert bot.stripe.calls, "the key was not checked with the API"
    ((kind, name, blob),) = api_sources_of(bot)
    assert (kind, name) == ("stripe", "shop")
    assert DEFAULT_KEY.encode() not in blob
    bound = source_identity(bot.team, kind, name)
    credential = Credential.open(Cipher([FERNET_KEY]), blob, bound_to=bound)
    assert credential.secret == DEFAULT_KEY and credential.base_url == bot.stripe.url
    with bot.engine.connect() as conn:
        raw = json.dumps([list(r) for r in conn.execute(text("SELECT * FROM source"))], default=str)
    assert DEFAULT_KEY not in raw
    assert DEFAULT_KEY not in bot.recorded()
    assert DEFAULT_KEY not in caplog.text


async def test_revoked_key_dms_a_clear_error_and_stores_nothing(bot, caplog):
    caplog.set_level(logging.DEBUG)
    revoked = "sk_test_revokedkey000000099"
    bot.stripe.keys.add(revoked)
    bot.stripe.revoked.add(revoked)
    await bot.submit("stripe", "shop", revoked)
    (dm,) = await bot.dms("U0ADMIN")
    assert "refused the key" in dm.text and "wrong, expired or was revoked" in dm.text
    assert "Nothing was stored" in dm.text
    assert api_sources_of(bot) == []
    assert revoked not in bot.recorded() and revoked[-8:] not in bot.recorded()
    assert revoked not in caplog.text


async def test_non_admin_submission_is_refused_in_a_dm(bot):
    await bot.submit("stripe", "shop", DEFAULT_KEY, user="U0ALICE")
    (dm,) = await bot.dms("U0ALICE")
    assert "Only workspace admins and owners" in dm.text
    assert api_sources_of(bot) == [] and bot.stripe.calls == []
    assert DEFAULT_KEY not in bot.recorded()


async def test_unreachable_api_is_said_in_words(bot):
    bot.stripe.fail("drop", times=50)
    await bot.submit("stripe", "shop", DEFAULT_KEY)
    (dm,) = await bot.dms("U0ADMIN")
    assert "couldn't reach Stripe" in dm.text
    assert api_sources_of(bot) == []


async def test_a_source_named_with_slack_markup_is_shown_as_text_in_every_dm(bot):
    """The name typed in the modal is data: the result DM and the first sync's progress
    DM show it as typed and ping nobody (tests/slack_render.py reads them as Slack would)."""
    from slack_render import all_findings, sent, visible_texts

    await bot.submit("stripe", "<!channel>", DEFAULT_KEY)
    await bot.dms("U0ADMIN", count=2)  # the result, then the first sync's progress
    shown = "\n".join(t for _, p in sent(bot.fake) for t in visible_texts(p))
    assert "Connected Stripe source <!channel>" in shown
    problems = all_findings(bot.fake, ["U0ADMIN"])
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("url", ["http://127.0.0.1:5432/", "http://169.254.169.254/latest"])
async def test_a_store_address_on_the_servers_own_network_is_refused(bot, url):
    """Issue 11, item 9: the address typed in the modal must lead to the public internet."""
    await bot.submit("woocommerce", "shop", "ck_1:cs_2", url=url)
    (dm,) = await bot.dms("U0ADMIN")
    assert "public internet addresses" in dm.text and "not stored" in dm.text
    assert api_sources_of(bot) == []


async def test_a_third_key_check_at_once_from_one_workspace_is_refused_politely(bot):
    """Issue 16, item 4: key checks have their own pool and at most 2 per workspace run
    at once; the next one is told to try again instead of waiting behind them."""
    bot.stripe.fail("slow", times=50)  # every check waits on a slow Stripe
    await asyncio.gather(*(bot.submit("stripe", f"shop{i}", DEFAULT_KEY) for i in range(3)))
    dms = await bot.dms("U0ADMIN", count=3, timeout=30)
    busy = [m for m in dms if "Too many keys are being checked right now" in m.text]
    assert len(busy) == 1 and "for this workspace" in busy[0].text
    assert "nothing was stored" in busy[0].text


async def test_a_source_connected_from_a_slack_connect_payload_lands_in_the_authorized_workspace(
    bot,
):
    """The submission's `team` names the partner organization of a Slack Connect channel;
    the admin check held for the workspace Bolt authorized, so the source goes there."""
    await bot.submit("stripe", "shop", DEFAULT_KEY, team="T0PARTNER")
    dm, *_ = await bot.dms("U0ADMIN")
    assert "Connected Stripe source shop" in dm.text
    assert [(kind, name) for kind, name, _ in api_sources_of(bot)] == [("stripe", "shop")]
    with session_scope(bot.engine) as session:
        assert api_sources(session, "T0PARTNER") == []


async def test_a_guest_cannot_connect_even_with_a_forged_submission(bot):
    bot.fake.add_user("U0GUEST", is_restricted=True, is_admin=True)
    await bot.submit("stripe", "shop", DEFAULT_KEY, user="U0GUEST")
    (dm,) = await bot.dms("U0GUEST")
    assert "guest" in dm.text
    assert api_sources_of(bot) == [] and bot.stripe.calls == []


async def test_a_workspace_holding_the_demo_is_told_how_to_keep_its_data_apart(bot):
    """Issue 19: as `journey sources add` does, `/journey connect` does not put a store's
    customers among the demo clinic's; it says so, and what to do, and that works."""
    from datetime import date

    from journey.demo import load_demo
    from journey.workspaces import remove_demo

    with session_scope(bot.engine) as session:  # the operator's `journey demo -w T...`
        load_demo(session, bot.team, date(2026, 6, 15))
    await bot.connect("connect-demo", "U0ADMIN")
    view = await bot.modal_shown()
    shown = json.dumps(view)
    assert "This workspace holds journey's demo store (Maple Street Vet)" in shown
    assert f"`journey demo remove --workspace {bot.team}`" in shown
    assert "Slack workspace of its own" in shown
    assert "callback_id" not in view and "submit" not in view  # no form to fill in

    # A form opened before the demo was built, submitted after: refused before the key
    # leaves for the API.
    await bot.submit("stripe", "shop", DEFAULT_KEY)
    (dm,) = await bot.dms("U0ADMIN")
    assert "holds journey's demo store (Maple Street Vet)" in dm.text
    assert "Nothing was stored." in dm.text
    assert api_sources_of(bot) == [] and bot.stripe.calls == []

    with session_scope(bot.engine) as session:  # what the refusal says to do
        remove_demo(session, bot.team)
    await bot.connect("connect-after", "U0ADMIN")
    assert (await bot.modal_shown(count=2))["callback_id"] == CALLBACK_ID
    await bot.submit("stripe", "shop", DEFAULT_KEY)
    dms = await bot.dms("U0ADMIN", count=2)
    assert "Connected Stripe source shop" in dms[1].text
