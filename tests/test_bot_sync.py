"""`/journey sync` and a new connection's first sync: in the background, with the progress in
a DM edited in place, the result per source at the end, errors in plain words.

Driven by signed requests through the real ASGI app against the fake Slack, with the
store synced from the fake Stripe over real HTTP (slowed down so the sync outlasts a
few progress edits).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from fakes.signing import view_submission
from fakes.slack_api import DEFAULT_BOT_TOKEN, FakeSlack, Message
from slack_driver import SECRET, SignedBot, bot_client
from sqlalchemy import Engine, text

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
from journey.secrets import Cipher
from journey.sources.http import NO_WAIT, HttpOptions
from journey.sources.manage import Credential, add_source, find_source, remove_source
from tests.fakes.stripe_api import DEFAULT_KEY, FakeStripe, populate

FERNET_KEY = "6pSmCH4WSlNM3f2-6tVu8bYd7c4vNXYTmfJkA1XiF6k="
ADMIN = "U0ADMIN"
DM = "D0ADMIN"


@dataclass
class Bot(SignedBot):
    stripe: FakeStripe = field(kw_only=True)

    async def finished(self, timeout: float = 30) -> Message:
        """The DM whose text became the sync's result."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.fake.posted(DM):
                if message.text.startswith(("Sync finished", "Something went wrong")):
                    return message
            await asyncio.sleep(0.02)
        raise AssertionError(f"no final sync message: {[m.text for m in self.fake.posted(DM)]}")

    def add_stripe(self, name: str = "shop", key: str = DEFAULT_KEY) -> None:
        with session_scope(self.engine) as session:
            add_source(
                session,
                self.team,
                "stripe",
                name,
                Credential(key, base_url=self.stripe.url),
                Cipher([FERNET_KEY]),
            )


@pytest.fixture
async def bot(tmp_path, monkeypatch) -> Iterator[Bot]:
    monkeypatch.setenv("JOURNEY_SECRET_KEY", FERNET_KEY)
    engine = make_engine(f"sqlite:///{tmp_path / 'sync.db'}")
    upgrade(engine)
    with FakeSlack() as fake, FakeStripe(slow_seconds=0.3) as stripe:
        populate(stripe)
        fake.add_user("U0ALICE", is_admin=False)
        fake.add_user(ADMIN, is_admin=True)
        settings = BotSettings(
            bot_token=DEFAULT_BOT_TOKEN, signing_secret=SECRET, api_url=fake.api_url
        )
        deps = Deps(
            service=ReportService(engine),
            settings=settings,
            working_after=10,
            extra={
                "sync_progress_interval": 0.05,
                "connect_base_urls": {"stripe": stripe.url},
                "connect_http": HttpOptions(retry=NO_WAIT, timeout=httpx.Timeout(2)),
            },
        )
        app = build_app(settings, engine, deps=deps)
        async with bot_client(app) as http:
            b = Bot(fake, engine, http, fake.team_id, stripe=stripe)
            yield b
            await _settle(b)
    engine.dispose()


async def _settle(bot: Bot) -> None:
    """Let a background sync end before the database goes away."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(m.text.startswith("Sync finished") for m in bot.fake.posted(DM)) or not any(
            m.text.startswith("Syncing") for m in bot.fake.posted(DM)
        ):
            return
        await asyncio.sleep(0.05)


def customers(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM customer")).scalar_one())


async def test_progress_is_edited_in_place_then_the_result_per_source(bot):
    bot.add_stripe()
    bot.stripe.fail("slow", path="/v1/charges", times=2)  # the sync outlasts a few edits
    bot.stripe.fail("slow", path="/v1/invoices", times=2)
    response = await bot.command("sync", "sync-1", user=ADMIN)
    assert response.status_code == 200
    (note,) = await bot.responses("sync-1")
    assert "in the background" in json.dumps(note.payload) and "DM" in json.dumps(note.payload)

    final = await bot.finished()
    # one message, edited in place: progress with records arriving, then the result
    assert [m.ts for m in bot.fake.posted(DM)] == [final.ts]
    assert final.updates >= 2
    assert final.revisions[0].startswith("Syncing")
    assert any("records so far, now reading" in r for r in final.revisions[1:])
    assert "Sync finished" in final.text and "shop (stripe)" in final.text
    assert " new, " in final.text and "pages" in final.text
    # a DM: it says /journey works right there (the Messages tab is on)
    assert "type `/journey help` here" in json.dumps(final.blocks)
    assert customers(bot.engine) > 40
    assert DEFAULT_KEY not in bot.recorded()


async def test_reports_answer_while_a_sync_runs(bot):
    bot.add_stripe()
    bot.stripe.fail("slow", path="/v1/", times=8)
    await bot.command("sync", "sync-2", user=ADMIN)
    await bot.responses("sync-2")
    await bot.command("funnel", "funnel-1", user=ADMIN)
    (reply,) = await bot.responses("funnel-1", timeout=5)
    assert reply.payload.get("text")
    # the sync was still running when the report came back
    (progress,) = bot.fake.posted(DM)
    assert progress.text.startswith("Syncing")
    final = await bot.finished()
    assert final.text.startswith("Sync finished")


async def test_errors_are_plain_words_and_no_stack_trace(bot, monkeypatch):
    revoked = "sk_test_revokedkey000000099"
    bot.stripe.keys.add(revoked)
    bot.stripe.revoked.add(revoked)
    bot.add_stripe("old", key=revoked)
    bot.add_stripe("shop")

    import bot.commands.service as service

    real = service.sync_source

    def broken(engine, source_id, **kw):
        with session_scope(engine) as session:
            from journey.models import Source

            if session.get(Source, source_id).name == "shop":
                raise RuntimeError("boom at /secret/path.py line 3")
        return real(engine, source_id, **kw)

    monkeypatch.setattr(service, "sync_source", broken)
    await bot.command("sync", "sync-3", user=ADMIN)
    final = await bot.finished()
    assert "old (stripe) is paused" in final.text
    assert "Stripe refused the API key" in final.text
    assert "shop (stripe)" in final.text and "unexpected error (reference" in final.text
    assert "what arrived before it is kept" in final.text
    for word in ("Traceback", "RuntimeError", "boom", "/secret/path.py"):
        assert word not in bot.recorded()


async def test_an_unknown_source_or_none_at_all_is_said_at_once(bot):
    await bot.command("sync", "sync-4", user=ADMIN)
    (reply,) = await bot.responses("sync-4")
    assert "no connected store or CRM" in json.dumps(reply.payload)
    bot.add_stripe()
    await bot.command("sync nosuch", "sync-5", user=ADMIN)
    (reply,) = await bot.responses("sync-5")
    assert "no connected source named 'nosuch'" in json.dumps(reply.payload)
    assert bot.fake.posted(DM) == []


async def test_a_removed_source_is_left_out_of_a_sync(bot):
    bot.add_stripe("old")
    bot.add_stripe("shop")
    with session_scope(bot.engine) as session:
        old = find_source(session, bot.team, "old")
        remove_source(session, old, keep_data=True)
    await bot.command("sync", "sync-7", user=ADMIN)
    final = await bot.finished()
    assert "shop (stripe)" in final.text and "old" not in final.text
    with session_scope(bot.engine) as session:
        assert find_source(session, bot.team, "old").last_error is None


async def test_only_admins_sync(bot):
    bot.add_stripe()
    await bot.command("sync", "sync-6", user="U0ALICE")
    (reply,) = await bot.responses("sync-6")
    assert "Only workspace admins and owners" in json.dumps(reply.payload)
    assert bot.stripe.calls == []


async def test_connect_starts_the_first_sync_with_its_progress(bot):
    bot.stripe.fail("slow", path="/v1/charges", times=2)
    values: dict = {
        B_KIND: {
            A_KIND: {
                "type": "static_select",
                "selected_option": {
                    "text": {"type": "plain_text", "text": "stripe"},
                    "value": "stripe",
                },
            }
        },
        B_NAME: {A_NAME: {"type": "plain_text_input", "value": "shop"}},
        setting_block("url"): {A_SETTING: {"type": "plain_text_input", "value": None}},
        B_SECRET: {A_SECRET: {"type": "plain_text_input", "value": DEFAULT_KEY}},
    }
    body, ctype = view_submission(CALLBACK_ID, values, team_id=bot.team, user_id=ADMIN)
    assert (await bot.post(body, ctype)).status_code == 200
    final = await bot.finished()
    connected, progress = bot.fake.posted(DM)
    assert (
        "Connected Stripe source shop" in connected.text and "being imported now" in connected.text
    )
    assert progress.ts == final.ts and final.updates >= 2
    assert "Sync finished" in final.text and "shop (stripe)" in final.text
    assert customers(bot.engine) > 40
    assert DEFAULT_KEY not in bot.recorded()


async def test_a_second_sync_of_a_running_source_gets_a_polite_reply(bot):
    """Issue 16, item 4: one sync per source at a time, said in words, not queued."""
    bot.add_stripe()
    bot.stripe.fail("slow", path="/v1/", times=8)
    await bot.command("sync", "sync-a", user=ADMIN)
    await bot.responses("sync-a")
    await bot.command("sync shop", "sync-b", user=ADMIN)
    (reply,) = await bot.responses("sync-b", timeout=5)
    assert "A sync of shop is already running" in json.dumps(reply.payload)
    final = await bot.finished()
    assert final.text.startswith("Sync finished")
    # Once it ended, the next one is let in.
    await bot.command("sync shop", "sync-c", user=ADMIN)
    (note,) = await bot.responses("sync-c", timeout=5)
    assert "in the background" in json.dumps(note.payload)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # let it end before the database goes away
        done = [m for m in bot.fake.posted(DM) if m.text.startswith("Sync finished")]
        if len(done) == 2:
            break
        await asyncio.sleep(0.05)
