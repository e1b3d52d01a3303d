"""The bot in HTTP mode, driven by signed requests, answering into a fake Slack.

Requests go through the real ASGI app (signature check, Bolt routing, the
listeners); everything the bot says arrives at the fake Slack server over HTTP,
where Slack's block limits are checked. Only the transport to the bot is
in-process (httpx's ASGI transport) so tests need no free port.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fakes.signing import (
    app_home_opened,
    block_actions,
    event_callback,
    signed_headers,
    slash_command,
)
from fakes.slack_api import DEFAULT_BOT_TOKEN, RESPONSE_URL, FakeSlack
from slack_bolt.authorization import AuthorizeResult
from slack_driver import SECRET, SignedBot, bot_client
from sqlalchemy import Engine, func
from sqlmodel import select

from bot.app import build_app
from bot.commands.service import ReportService
from bot.config import BotSettings
from bot.deps import Deps
from bot.server import asgi_app
from journey.db import make_engine, session_scope, upgrade
from journey.demo import load_demo
from journey.ingest import CustomerRecord, EventRecord, Ingestor
from journey.models import ReviewRequest
from journey.workspaces import ensure_source, ensure_workspace

OTHER = "T0OTHERTEAM"


@dataclass
class Bot(SignedBot):
    async def click(
        self,
        action_id: str,
        value: dict | str,
        name: str,
        team: str | None = None,
        channel: str = "C0GENERAL",
        user: str = "U0ALICE",
    ) -> httpx.Response:
        raw = value if isinstance(value, str) else json.dumps(value)
        body, ctype = block_actions(
            action_id,
            raw,
            team_id=team or self.team,
            user_id=user,
            channel_id=channel,
            response_url=self.fake.response_url(name, channel=channel),
        )
        return await self.post(body, ctype)

    def rejected(self) -> list:
        """Anything the fake Slack refused (bad blocks, too long...)."""
        return [c for c in self.fake.calls if not c.ok and c.method == RESPONSE_URL]


def _other_workspace(engine: Engine) -> None:
    """A second business with three recent customers and made-up names."""
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        ensure_workspace(session, OTHER)
        source = ensure_source(session, OTHER, "csv", "csv")
        ingest = Ingestor(session, OTHER, source.id or 0)
        stats = ingest.customers(
            [
                CustomerRecord(f"C{i:05d}", f"Other Person {i}", channel="other_ads")
                for i in range(1, 4)
            ]
        )
        stats.add(
            ingest.events(
                [
                    EventRecord(
                        f"o{i}",
                        f"C{i:05d}",
                        "order",
                        now - timedelta(days=5 + i),
                        amount_cents=999_00,
                    )
                    for i in range(1, 4)
                ]
            )
        )
        ingest.refresh(stats)


@pytest.fixture(scope="module")
def data_engine(tmp_path_factory) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('bot') / 'bot.db'}")
    upgrade(engine)
    with FakeSlack() as fake, session_scope(engine) as session:
        load_demo(session, fake.team_id)
    _other_workspace(engine)
    yield engine
    engine.dispose()


OTHER_TOKEN = "xoxb-3333-4444-otherteam"
NOBODY = "T0NOBODY"


@pytest.fixture
async def tenants(data_engine):
    """Several workspaces on one bot, as with OAuth: each request is authorized for the
    team of its payload and answered with that team's own token."""
    with FakeSlack() as fake:
        fake.add_token(OTHER_TOKEN, OTHER, bot_id="B0OTHER", user_id="U0OTHERBOT")
        fake.add_token("xoxb-5555-nobody", NOBODY, bot_id="B0NOBODY", user_id="U0NOBODYBOT")
        fake.add_user("U0ALICE")
        fake.add_user("U0OTTO", team_id=OTHER)
        fake.add_user("U0NEWBIE", team_id=NOBODY)
        tokens = {fake.team_id: DEFAULT_BOT_TOKEN, OTHER: OTHER_TOKEN, NOBODY: "xoxb-5555-nobody"}

        async def authorize(enterprise_id, team_id, user_id):
            token = tokens.get(team_id)
            if token is None:
                return None
            return AuthorizeResult(
                enterprise_id=enterprise_id, team_id=team_id, bot_token=token, user_id=user_id
            )

        settings = BotSettings(signing_secret=SECRET, api_url=fake.api_url, client_id="1.2")
        deps = Deps(service=ReportService(data_engine), settings=settings, working_after=10)
        app = build_app(settings, data_engine, authorize=authorize, deps=deps)
        async with bot_client(app) as http:
            yield Bot(fake, data_engine, http, fake.team_id)


@pytest.fixture
async def bot(data_engine):
    with FakeSlack() as fake:
        fake.add_user("U0ALICE", is_admin=False)
        fake.add_user("U0ADMIN", is_admin=True)
        settings = BotSettings(
            bot_token=DEFAULT_BOT_TOKEN, signing_secret=SECRET, api_url=fake.api_url
        )
        deps = Deps(service=ReportService(data_engine), settings=settings, working_after=10)
        app = build_app(settings, data_engine, deps=deps)
        async with bot_client(app) as http:
            yield Bot(fake, data_engine, http, fake.team_id)


def _text(posts) -> str:
    return json.dumps([p.payload for p in posts], ensure_ascii=False)


async def test_help_and_empty_command_are_answered_in_the_acknowledgement(bot):
    for text in ("help", ""):
        response = await bot.command(text, f"help-{text}")
        assert response.status_code == 200
        body = response.json()
        assert "/journey funnel" in json.dumps(body["blocks"])
        assert body["text"]


async def test_misspelt_subcommand_gets_did_you_mean(bot):
    response = await bot.command("fnnel 30d", "typo")
    assert response.status_code == 200
    assert "Did you mean `/journey funnel`?" in json.dumps(response.json())


async def test_bad_period_is_explained_not_a_traceback(bot):
    response = await bot.command("funnel fortnight", "badperiod")
    body = json.dumps(response.json())
    assert "I don't understand the period 'fortnight'" in body and "Traceback" not in body


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("funnel", ["Funnel ·", "awareness", "By channel"]),  # a member: no Share
        ("funnel 90d by channel", ["By acquisition channel", "google_search"]),
        ("funnel channel referral", ["· referral"]),
        ("retention last-quarter", ["Cohort retention", "Repeat rate"]),
        ("churn last-month", ["Churn ·", "At risk now"]),
        ("reviews", ["Whom to ask for a review"]),
        ("sources", ["Connected sources", "*demo* (demo): demo data, built on ", "customers"]),
    ],
)
async def test_every_report_command_answers_after_the_ack(bot, text, expected):
    name = "cmd-" + text.replace(" ", "-")
    response = await bot.command(text, name)
    assert response.status_code == 200
    assert response.content in (b"", b"{}") or "blocks" not in response.json()
    posts = await bot.answer(name)  # the answer, after "Working on…" when the machine is slow
    answer = posts[-1]
    dumped = _text([answer])
    for fragment in expected:
        assert fragment in dumped, fragment
    # A holding reply shown first is replaced in place, not left above the answer.
    assert answer.replace_original == (len(posts) > 1)
    assert all(p.response_type == "ephemeral" for p in posts)
    assert not bot.rejected()


async def test_a_report_reaches_its_user_through_a_failing_response_url(bot):
    """Issue 18: the answer's post is retried after a 503 and a 429 (its Retry-After
    waited), and the user sees one answer."""
    bot.fake.server_error(RESPONSE_URL, 503)
    bot.fake.rate_limit(RESPONSE_URL, retry_after=1)
    await bot.command("funnel", "flaky")
    posts = await bot.answer("flaky")
    await asyncio.sleep(0.5)
    assert "Funnel ·" in _text(posts) and len(posts) == 1
    # Anything after the answer (its chart's note) replaces it: one message on screen.
    assert all(p.replace_original for p in bot.fake.responses["flaky"][1:])
    assert [c.status for c in bot.fake.calls_to(RESPONSE_URL)][:3] == [503, 429, 200]
    assert all(c.status in (429, 503) for c in bot.rejected())  # only the injected faults


# The DM between U0ALICE and the bot, as conversations.open names it in the fake.
ALICE_DM = "D0ALICE"
ADMIN_DM = "D0ADMIN"


async def test_a_private_reports_chart_goes_to_the_requesters_dm_and_the_reply_says_so(bot):
    await bot.command("funnel 90d", "chart")
    posts = await bot.responses("chart", count=2)
    assert posts[-1].replace_original
    assert not [b for b in posts[-1].blocks if b["type"] == "image"]
    assert "direct messages with journey" in _text(posts[-1:])
    (upload,) = bot.fake.calls_to("files.completeUploadExternal")
    assert upload.params["channel_id"] == ALICE_DM  # shared where Alice can see it
    (chart,) = bot.fake.posted(ALICE_DM)
    assert bot.fake.files[chart.files[0]].data.startswith(b"\x89PNG")
    assert not bot.rejected()


async def test_a_report_asked_in_the_dm_gets_its_chart_right_there(bot):
    await bot.command("retention 90d", "dmchart", channel=ALICE_DM)
    posts = await bot.responses("dmchart", count=2)
    assert "follows in this conversation" in _text(posts[-1:])
    (chart,) = bot.fake.posted(ALICE_DM)
    assert chart.files


async def test_journey_and_its_buttons_work_in_the_dm_with_the_bot(bot):
    """The Messages tab is on (manifest.yml): a command typed in the DM with journey and
    the buttons of its reply work there like anywhere else."""
    response = await bot.command("reviews", "dm-cmd", channel=ALICE_DM)
    assert response.status_code == 200
    (post,) = await bot.responses("dm-cmd")
    assert "journey_review_asked" in _text([post])
    value = {"k": "funnel", "p": "90d", "c": None, "v": ""}
    assert (await bot.click("journey_by_channel", value, "dm-btn", channel=ALICE_DM)).is_success
    (post,) = await bot.responses("dm-btn")
    assert post.replace_original and "By acquisition channel" in _text([post])
    # Share is for admins (bot/guard/access.py): an admin shares in their own DM.
    await bot.click("journey_share", value, "dm-share", channel=ADMIN_DM, user="U0ADMIN")
    (post,) = await bot.responses("dm-share")
    assert post.response_type == "in_channel" and "shared" in post.text
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not bot.fake.posted(ADMIN_DM):
        await asyncio.sleep(0.05)
    (chart,) = bot.fake.posted(ADMIN_DM)  # the shared report's chart, in the same DM
    assert chart.files and bot.fake.files[chart.files[0]].channels == [ADMIN_DM]
    assert not bot.rejected()


async def test_a_shared_reports_chart_goes_into_that_channel_or_says_why_not(bot):
    value = {"k": "funnel", "p": "90d", "c": None, "v": ""}
    # journey not invited to #general; Share is for admins (bot/guard/access.py)
    await bot.click("journey_share", value, "share-out", user="U0ADMIN")
    posts = await bot.responses("share-out", count=2)
    assert posts[0].response_type == "in_channel" and "Funnel ·" in _text(posts[:1])
    assert posts[1].response_type == "ephemeral"
    assert "could not be attached" in posts[1].text and "/invite @journey" in posts[1].text
    bot.fake.add_channel("C0GENERAL")  # now invited
    await bot.click("journey_share", value, "share-in", user="U0ADMIN")
    (shared,) = await bot.responses("share-in")  # no "could not be attached" line
    assert shared.response_type == "in_channel"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not bot.fake.posted("C0GENERAL"):
        await asyncio.sleep(0.05)
    (chart,) = bot.fake.posted("C0GENERAL")
    assert bot.fake.files[chart.files[0]].channels == ["C0GENERAL"]


@pytest.mark.parametrize("failure", ["refused", "upload_fails", "network"])
async def test_a_failed_chart_leaves_the_reply_with_one_line_saying_so(bot, failure):
    if failure == "refused":
        bot.fake.fail("files.completeUploadExternal", "not_allowed_token_type")
    elif failure == "upload_fails":
        bot.fake.server_error("upload", status=500, times=5)
    else:
        bot.fake.drop("files.getUploadURLExternal", times=5)
    await bot.command("funnel 90d", f"chartfail-{failure}")
    posts = await bot.responses(f"chartfail-{failure}", count=2)
    last = posts[-1]
    assert last.replace_original and "Funnel ·" in _text([last])
    lines = [b for b in last.blocks if "could not be attached" in json.dumps(b)]
    assert len(lines) == 1
    assert not bot.fake.posted(ALICE_DM)


async def test_without_files_write_the_reply_is_text_and_says_how_to_enable_charts(bot):
    bot.fake.add_token(
        DEFAULT_BOT_TOKEN,
        team_id=bot.team,
        scopes=["commands", "chat:write", "users:read"],
        bot_id="B0JBOT",
        user_id="U0JBOT",
    )
    await bot.command("funnel 90d", "nocharts")
    posts = await bot.responses("nocharts", count=2)
    assert "files:write" in _text(posts[-1:])
    assert not bot.fake.calls_to("files.getUploadURLExternal")


async def test_by_channel_and_compare_buttons_replace_the_report(bot):
    value = {"k": "funnel", "p": "90d", "c": None, "v": ""}
    assert (await bot.click("journey_by_channel", value, "bychan")).status_code == 200
    (post,) = await bot.responses("bychan")
    assert post.replace_original and "By acquisition channel" in _text([post])
    await bot.click("journey_compare", value, "compare")
    (post,) = await bot.responses("compare")
    assert "Against the previous period" in _text([post])


async def test_share_posts_the_same_report_in_the_channel_without_buttons(bot):
    value = {"k": "churn", "p": "30d", "c": None, "v": ""}
    await bot.click("journey_share", value, "share", user="U0ADMIN")
    (post,) = await bot.responses("share")
    assert post.response_type == "in_channel" and not post.replace_original
    assert "shared" in post.text and "Churn ·" in _text([post])
    assert not any(b["type"] == "actions" for b in post.blocks)


async def test_csv_of_customers_at_risk_arrives_in_a_direct_message(bot):
    value = {"k": "retention", "p": "30d", "c": None, "v": ""}
    await bot.click("journey_export_csv", value, "csv", user="U0ADMIN")
    (post,) = await bot.responses("csv")
    assert "CSV file" in post.text
    (upload,) = bot.fake.calls_to("files.completeUploadExternal")
    assert upload.params["channel_id"].startswith("D")
    (file,) = bot.fake.files.values()
    lines = file.data.decode().splitlines()
    assert lines[0].startswith("customer_id,name,email")
    assert len(lines) > 26  # more than the 25 the message shows


async def test_marking_a_candidate_asked_records_it_and_removes_them(bot):
    await bot.command("reviews", "rev")
    (post,) = await bot.responses("rev")
    asked = next(
        e
        for b in post.blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "journey_review_asked"
    )
    customer = json.loads(asked["value"])["id"]
    with session_scope(bot.engine) as session:
        before = session.exec(select(func.count()).select_from(ReviewRequest)).one()
    await bot.click("journey_review_asked", asked["value"], "mark")
    (post,) = await bot.responses("mark")
    assert post.replace_original and "asked for a review" in post.blocks[0]["elements"][0]["text"]
    with session_scope(bot.engine) as session:
        rows = session.exec(
            select(ReviewRequest).where(ReviewRequest.customer_id == customer)
        ).all()
        after = session.exec(select(func.count()).select_from(ReviewRequest)).one()
    assert after == before + 1
    assert rows[-1].workspace_id == bot.team and rows[-1].asked_by == "U0ALICE"
    assert f'"id":{customer},' not in json.dumps(post.blocks).replace(" ", "")


async def test_a_button_cannot_touch_another_workspaces_customer(tenants):
    bot = tenants
    await bot.command("reviews", "rev-b", team=OTHER, user="U0OTTO")
    (post,) = await bot.responses("rev-b")
    other_customer = next(
        json.loads(e["value"])["id"]
        for b in post.blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "journey_review_skip"
    )
    await bot.click("journey_review_asked", {"id": other_customer, "n": "x"}, "cross")
    (post,) = await bot.responses("cross")
    assert "not in this workspace" in post.text


async def test_workspace_b_never_sees_workspace_a(tenants):
    bot = tenants
    await bot.command("reviews", "iso-a")
    await bot.command("reviews", "iso-b", team=OTHER, user="U0OTTO")
    a = _text(await bot.responses("iso-a"))
    b = _text(await bot.responses("iso-b"))
    assert "Other Person" in b and "Other Person" not in a
    assert "@example.com" in a and "@example.com" not in b  # the demo's emails
    assert "3* customers bought" in b


async def test_unknown_workspace_is_told_how_to_load_data(tenants):
    bot = tenants
    await bot.command("funnel", "nodata", team=NOBODY, user="U0NEWBIE")
    (post,) = await bot.responses("nodata")
    assert "no data for this workspace yet" in post.text.lower() and "journey import" in post.text


async def test_settings_words_are_for_admins(bot):
    await bot.command("alerts on", "alerts-user", user="U0ALICE")
    (post,) = await bot.responses("alerts-user")
    assert "Only workspace admins and owners" in post.text
    await bot.command("alerts on", "alerts-admin", user="U0ADMIN")
    (post,) = await bot.responses("alerts-admin")
    assert "Alerts on:" in post.text


@pytest.mark.parametrize("problem", ["wrong_secret", "replayed", "unsigned", "tampered"])
async def test_forged_unsigned_or_replayed_requests_get_401_and_do_nothing(bot, problem):
    body, ctype = slash_command(
        "funnel",
        team_id=bot.team,
        user_id="U0ALICE",
        channel_id="C0GENERAL",
        response_url=bot.fake.response_url("forged"),
    )
    if problem == "wrong_secret":
        response = await bot.post(body, ctype, secret="not-the-secret")
    elif problem == "replayed":
        response = await bot.post(body, ctype, timestamp=int(time.time()) - 6 * 60)
    elif problem == "unsigned":
        response = await bot.http.post(
            "/slack/events", content=body, headers={"Content-Type": ctype}
        )
    else:
        headers = signed_headers(body, ctype, SECRET)
        response = await bot.http.post(
            "/slack/events", content=body.replace(b"funnel", b"churn"), headers=headers
        )
    assert response.status_code == 401
    await asyncio.sleep(0.3)
    assert "forged" not in bot.fake.responses
    assert not [c for c in bot.fake.calls if c.method != "auth.test"]


async def test_malformed_bodies_do_not_crash_the_bot(bot):
    for body in (b"", b"payload=not-json", b"payload=%7B%7D", b"garbage=%ZZ"):
        response = await bot.post(body, "application/x-www-form-urlencoded")
        assert response.status_code in (200, 400, 404)
    forged_value = await bot.click("journey_by_channel", "{not json", "stale")
    assert forged_value.status_code == 200
    (post,) = await bot.responses("stale")
    assert "older message" in post.text


async def test_app_home_shows_the_workspace_at_a_glance(bot):
    body, ctype = event_callback(app_home_opened("U0ALICE"), bot.team)
    assert (await bot.post(body, ctype)).status_code == 200
    deadline = time.monotonic() + 15
    while not bot.fake.calls_to("views.publish") and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    view = bot.fake.home_views["U0ALICE"]
    dumped = json.dumps(view)
    assert "Funnel:" in dumped and "Connected sources" in dumped and "Digests and alerts" in dumped


async def test_slow_reports_show_working_then_replace_it(bot, monkeypatch):
    service = ReportService(bot.engine)
    original = service.command_reply

    def slow(*args, **kwargs):
        time.sleep(0.6)
        return original(*args, **kwargs)

    monkeypatch.setattr(service, "command_reply", slow)
    settings = BotSettings(
        bot_token=DEFAULT_BOT_TOKEN, signing_secret=SECRET, api_url=bot.fake.api_url
    )
    app = build_app(
        settings, bot.engine, deps=Deps(service=service, settings=settings, working_after=0.1)
    )
    transport = httpx.ASGITransport(app=asgi_app(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://bot") as http:
        bot.http = http
        await bot.command("retention", "slow")
        posts = await bot.responses("slow", count=2)
    assert "Working on your retention" in posts[0].text
    assert posts[1].replace_original and "Retention ·" in _text(posts[1:2])


async def test_missing_scope_for_the_csv_is_explained_with_the_scope_name(bot):
    bot.fake.add_token(
        DEFAULT_BOT_TOKEN,
        team_id=bot.team,
        scopes=["commands", "chat:write", "files:write", "users:read"],
        bot_id="B0JBOT",
        user_id="U0JBOT",
    )
    await bot.click(
        "journey_export_csv",
        {"k": "retention", "p": "30d", "c": None, "v": ""},
        "csv-scope",
        user="U0ADMIN",
    )
    (post,) = await bot.responses("csv-scope")
    assert "`im:write" in post.text and "reinstall" in post.text


async def test_a_revoked_token_answers_with_reinstall_and_no_data(data_engine):
    with FakeSlack() as fake:
        fake.revoke(DEFAULT_BOT_TOKEN)
        settings = BotSettings(
            bot_token=DEFAULT_BOT_TOKEN, signing_secret=SECRET, api_url=fake.api_url
        )
        app = build_app(settings, data_engine)
        transport = httpx.ASGITransport(app=asgi_app(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://bot") as http:
            harness = Bot(fake, data_engine, http, fake.team_id)
            response = await harness.command("funnel", "revoked")
            await asyncio.sleep(0.3)
    # Bolt answers in the acknowledgement itself; nothing else is sent.
    assert response.status_code == 200
    assert "reinstall" in response.text.lower() and "Traceback" not in response.text
    assert "revoked" not in fake.responses


async def test_sync_is_for_admins_and_says_when_there_is_nothing_to_sync(bot):
    await bot.command("sync", "sync-user", user="U0ALICE")
    (post,) = await bot.responses("sync-user")
    assert "Only workspace admins and owners" in post.text
    await bot.command("sync", "sync-admin", user="U0ADMIN")
    (post,) = await bot.responses("sync-admin")
    assert "no connected store or CRM to sync" in post.text
