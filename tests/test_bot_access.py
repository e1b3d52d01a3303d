"""Who may see what: guests, other organizations' users, members, admins and the export
group, each driven by signed requests against the fake Slack, whose users.info answers
as Slack documents (tests/fakes/slack_api.py, FakeUser).

Also the per-user rate limit, and where the workspace comes from (the installation Bolt authorized,
never the payload's `team`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import httpx
import pytest
from fakes.signing import app_home_opened, block_actions, event_callback, slash_command
from fakes.slack_api import DEFAULT_BOT_TOKEN, FakeSlack
from slack_bolt.authorization import AuthorizeResult
from slack_driver import SECRET, SignedBot, bot_client
from sqlalchemy import Engine
from sqlmodel import select

from bot.app import build_app
from bot.commands.service import ReportService
from bot.config import BotSettings, load_bot_settings
from bot.deps import Deps
from bot.guard.access import (
    EXTERNAL_CHANNEL_REFUSAL,
    EXTERNAL_REFUSAL,
    GUEST_REFUSAL,
    Guard,
    Role,
    role_of,
)
from journey.db import make_engine, session_scope, upgrade
from journey.demo import load_demo
from journey.models import CommandUse, ExportRecord

PARTNER = "T0PARTNER"
DEMO_EMAIL = "@example.com"  # every demo customer's email ends so
CHURN = {"k": "churn", "p": "90d", "c": None, "v": ""}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Bot(SignedBot):
    async def click(
        self, action_id: str, value: dict, name: str, user: str, channel: str = "C0GENERAL"
    ) -> httpx.Response:
        body, ctype = block_actions(
            action_id,
            json.dumps(value),
            team_id=self.team,
            user_id=user,
            channel_id=channel,
            response_url=self.fake.response_url(name),
        )
        return await self.post(body, ctype)

    async def one(self, name: str) -> str:
        (post,) = await self.responses(name)
        return json.dumps(post.payload, ensure_ascii=False)

    def exports(self) -> list[ExportRecord]:
        with session_scope(self.engine) as session:
            return list(session.exec(select(ExportRecord).order_by(ExportRecord.id)).all())


@pytest.fixture(scope="module")
def demo_engine(tmp_path_factory) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('access') / 'access.db'}")
    upgrade(engine)
    with session_scope(engine) as session:
        load_demo(session, FakeSlack().team_id)
    yield engine
    engine.dispose()


def _people(fake: FakeSlack) -> None:
    fake.add_user("U0MEMBER")
    fake.add_user("U0ADMIN", is_admin=True)
    fake.add_user("U0OWNER", is_owner=True, is_primary_owner=True)
    fake.add_user("U0GUEST1", is_restricted=True, is_ultra_restricted=True)
    fake.add_user("U0GUESTN", is_restricted=True)
    fake.add_user("U0PARTNER", team_id=PARTNER)
    fake.add_user("U0GONE", deleted=True)
    fake.add_user("U0EXPORTER")
    fake.add_usergroup("S0EXPORT", ["U0EXPORTER"])


def _bot(fake: FakeSlack, engine: Engine, clock: Clock | None = None, **settings_kw) -> Deps:
    """A bot on `engine`; with a `clock`, its rate limit is counted in the database (as
    the bot's own Deps do), from a table emptied here (the engine is shared by the module)."""
    if clock is not None:
        with session_scope(engine) as session:
            for row in session.exec(select(CommandUse)).all():
                session.delete(row)
    settings = BotSettings(
        bot_token=DEFAULT_BOT_TOKEN, signing_secret=SECRET, api_url=fake.api_url, **settings_kw
    )
    guard = Guard(settings, clock=clock, engine=engine) if clock is not None else None
    return Deps(service=ReportService(engine), settings=settings, working_after=10, guard=guard)


@pytest.fixture
async def bot(demo_engine) -> Iterator[Bot]:
    with session_scope(demo_engine) as session:
        for row in session.exec(select(ExportRecord)).all():
            session.delete(row)
    with FakeSlack() as fake:
        _people(fake)
        deps = _bot(fake, demo_engine, export_usergroups=frozenset({f"{fake.team_id}:S0EXPORT"}))
        app = build_app(deps.settings, demo_engine, deps=deps)
        async with bot_client(app) as http:
            yield Bot(fake, demo_engine, http, fake.team_id)


# ----------------------------------------------------------------- who sees customers


@pytest.mark.parametrize(
    ("user", "sentence"),
    [
        ("U0GUEST1", GUEST_REFUSAL),
        ("U0GUESTN", GUEST_REFUSAL),
        ("U0PARTNER", EXTERNAL_REFUSAL),
        ("U0GONE", "deactivated"),
    ],
)
async def test_guests_other_orgs_and_deactivated_accounts_get_one_sentence_and_no_data(
    bot, user, sentence
):
    for text in ("churn", "reviews", "funnel", "sources", "alerts"):
        name = f"{user}-{text.split()[0]}"
        await bot.command(text, name, user=user)
        dumped = await bot.one(name)
        assert sentence in dumped, text
        assert DEMO_EMAIL not in dumped and "At risk" not in dumped and "Funnel ·" not in dumped
    for action in ("journey_by_channel", "journey_share", "journey_export_csv"):
        await bot.click(action, CHURN, f"{user}-{action}", user=user)
        dumped = await bot.one(f"{user}-{action}")
        assert sentence in dumped and DEMO_EMAIL not in dumped, action
    assert not bot.fake.files and not bot.exports()
    assert not [
        p for ps in bot.fake.responses.values() for p in ps if p.response_type == "in_channel"
    ]


async def test_the_home_tab_of_a_guest_says_why_and_shows_no_numbers(bot):
    for user in ("U0GUESTN", "U0MEMBER"):
        body, ctype = event_callback(app_home_opened(user), bot.team)
        assert (await bot.post(body, ctype)).status_code == 200
    deadline = time.monotonic() + 15
    while len(bot.fake.home_views) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    guest = json.dumps(bot.fake.home_views["U0GUESTN"])
    assert GUEST_REFUSAL in guest and "Funnel:" not in guest
    assert "Funnel:" in json.dumps(bot.fake.home_views["U0MEMBER"])


async def test_members_see_reports_with_names_but_may_not_export_or_share(bot):
    await bot.command("reviews", "member-reviews", user="U0MEMBER")
    assert DEMO_EMAIL in await bot.one("member-reviews")
    await bot.click("journey_export_csv", CHURN, "member-csv", user="U0MEMBER")
    assert "Exports and sharing are for workspace admins, owners" in await bot.one("member-csv")
    await bot.click("journey_share", CHURN, "member-share", user="U0MEMBER")
    assert "Exports and sharing are for" in await bot.one("member-share")
    assert not bot.fake.files and not bot.exports()
    assert not bot.fake.calls_to("conversations.open")


def _action_ids(payload: dict) -> set[str]:
    """Every button's action_id in a message or view payload."""
    return {
        element["action_id"]
        for block in payload.get("blocks") or []
        if block.get("type") == "actions"
        for element in block.get("elements") or []
    }


EXPORT_BUTTONS = {"journey_export_csv", "journey_share"}


@pytest.mark.parametrize(
    ("user", "offered"),
    [
        ("U0ADMIN", True),
        ("U0EXPORTER", True),  # JOURNEY_EXPORT_USERGROUP
        ("U0MEMBER", False),
        ("U0GUESTN", False),
    ],
)
async def test_csv_and_share_are_offered_only_to_who_may_use_them(bot, user, offered):
    """The buttons are built per viewer: an admin and the export group get *CSV* and
    *Share* on every report, a command's by-channel view and a report opened from a
    digest or alert; a member gets the same reports without them; a guest gets none."""
    opened = {"k": "retention", "p": "90d"}
    names = []
    for text in ("churn", "retention", "funnel", "value", "reviews"):
        await bot.command(text, f"{user}-{text}", user=user)
        names.append(f"{user}-{text}")
    await bot.click("journey_by_channel", {**CHURN, "k": "funnel"}, f"{user}-view", user=user)
    await bot.click("journey_open_report:retention", opened, f"{user}-open", user=user)
    names += [f"{user}-view", f"{user}-open"]
    for name in names:
        posts = await bot.responses(name)
        buttons = set().union(*(_action_ids(p.payload) for p in posts))
        if offered:
            assert "journey_share" in buttons, name
        else:
            assert not buttons & EXPORT_BUTTONS, name
    csv_on = [n for n in names if "churn" in n or "retention" in n or "open" in n]
    for name in csv_on:
        buttons = set().union(*(_action_ids(p.payload) for p in await bot.responses(name)))
        assert ("journey_export_csv" in buttons) is offered, name
    if user == "U0MEMBER":
        dumped = await bot.one(f"{user}-churn")
        assert "At risk now" in dumped and DEMO_EMAIL in json.dumps(
            [p.payload for p in await bot.responses(f"{user}-reviews")]
        )
        assert "All customers at risk (CSV)* below" not in dumped


async def test_the_home_tab_offers_no_export_to_anyone(bot):
    """The App Home shows numbers, never the *CSV* or *Share* buttons (they live on the
    reports, where the viewer is known)."""
    for user in ("U0ADMIN", "U0MEMBER"):
        body, ctype = event_callback(app_home_opened(user), bot.team)
        assert (await bot.post(body, ctype)).status_code == 200
    deadline = time.monotonic() + 15
    while len(bot.fake.home_views) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for user in ("U0ADMIN", "U0MEMBER"):
        assert not _action_ids(bot.fake.home_views[user]) & EXPORT_BUTTONS


async def test_a_forwarded_export_button_is_still_refused_on_click(bot):
    """A member who clicks an admin's *CSV* or *Share* (a replayed or forwarded payload)
    is refused at click time: hiding the buttons is not the check."""
    await bot.command("churn", "admin-churn", user="U0ADMIN")
    (post,) = await bot.responses("admin-churn")
    assert _action_ids(post.payload) >= EXPORT_BUTTONS
    for action in sorted(EXPORT_BUTTONS):
        await bot.click(action, CHURN, f"replayed-{action}", user="U0MEMBER")
        assert "Exports and sharing are for" in await bot.one(f"replayed-{action}")
    assert not bot.fake.files and not bot.exports()


@pytest.mark.parametrize("user", ["U0ADMIN", "U0OWNER", "U0EXPORTER"])
async def test_admins_owners_and_the_export_group_export_and_each_export_is_recorded(bot, user):
    await bot.click("journey_export_csv", CHURN, f"csv-{user}", user=user)
    assert "CSV file in a direct message" in await bot.one(f"csv-{user}")
    (file,) = bot.fake.files.values()
    rows = len(file.data.decode().splitlines()) - 1
    (record,) = bot.exports()
    assert (record.workspace_id, record.user_id, record.rows) == (bot.team, user, rows)
    assert record.destination == "dm" and "churn" in record.report and rows > 0


async def test_share_is_recorded_and_never_goes_into_a_channel_shared_with_another_org(bot):
    bot.fake.add_channel("C0CONNECT", is_ext_shared=True)
    bot.fake.add_channel("C0SISTER", is_shared=True)
    for channel in ("C0CONNECT", "C0SISTER"):
        await bot.click("journey_share", CHURN, f"share-{channel}", "U0ADMIN", channel=channel)
        assert EXTERNAL_CHANNEL_REFUSAL in await bot.one(f"share-{channel}")
    assert not bot.exports()
    await bot.click("journey_share", CHURN, "share-ok", "U0ADMIN", channel="C0GENERAL")
    (post,) = await bot.responses("share-ok")
    assert post.response_type == "in_channel" and "Churn ·" in json.dumps(
        post.payload, ensure_ascii=False
    )
    (record,) = bot.exports()
    assert (record.user_id, record.destination) == ("U0ADMIN", "C0GENERAL")
    assert record.report.startswith("churn report share")


async def test_share_works_in_a_private_channel_and_fails_closed_without_the_scope(bot):
    bot.fake.add_channel("G0PRIVATE", is_private=True)
    await bot.click("journey_share", CHURN, "share-private", "U0ADMIN", channel="G0PRIVATE")
    (post,) = await bot.responses("share-private")
    assert post.response_type == "in_channel"
    # A token without groups:read cannot tell who reads a private channel: no share.
    scopes = [s for s in bot.fake.tokens[DEFAULT_BOT_TOKEN].scopes if s != "groups:read"]
    bot.fake.tokens[DEFAULT_BOT_TOKEN].scopes = scopes
    await bot.click("journey_share", CHURN, "share-noscope", "U0ADMIN", channel="G0PRIVATE")
    refused = await bot.one("share-noscope")
    assert "couldn't check who can read this conversation" in refused
    assert "`groups:read` permission" in refused  # what the admin adds
    assert [r.destination for r in bot.exports()] == ["G0PRIVATE"]


async def test_a_failed_user_look_up_shows_nothing_and_says_what_to_do(bot):
    await bot.command("churn", "unknown-user", user="U0NOBODY")  # users.info: user_not_found
    dumped = await bot.one("unknown-user")
    assert "couldn't check your Slack account" in dumped and DEMO_EMAIL not in dumped


async def test_each_user_is_looked_up_once_then_again_after_five_minutes(demo_engine):
    clock = Clock()
    with FakeSlack() as fake:
        _people(fake)
        deps = _bot(fake, demo_engine, clock=clock)
        async with bot_client(build_app(deps.settings, demo_engine, deps=deps)) as http:
            bot = Bot(fake, demo_engine, http, fake.team_id)
            for i in range(3):
                await bot.command("reviews", f"cached-{i}", user="U0MEMBER")
                await bot.responses(f"cached-{i}")
            assert len(fake.calls_to("users.info")) == 1
            clock.now += 301
            fake.add_user("U0MEMBER", is_restricted=True)  # made a guest meanwhile
            await bot.command("reviews", "after", user="U0MEMBER")
            assert GUEST_REFUSAL in await bot.one("after")
            assert len(fake.calls_to("users.info")) == 2


# ----------------------------------------------------------------- the workspace


async def test_a_slack_connect_payload_is_answered_from_the_authorized_workspace(bot):
    """The payload's `team` names the partner organization; the data is still (and only)
    that of the workspace whose token Bolt authorized the request with."""
    await bot.command("reviews", "slack-connect", team=PARTNER, user="U0ADMIN")
    dumped = await bot.one("slack-connect")
    assert DEMO_EMAIL in dumped and "no data for this workspace" not in dumped


def test_role_of_reads_slack_users_as_documented():
    team, org = "T0JOURNEY", "E0ORG"
    user = {"id": "U1", "team_id": team, "deleted": False}
    assert role_of(user, team, None) is Role.MEMBER
    assert role_of({**user, "is_owner": True}, team, None) is Role.ADMIN
    assert role_of({**user, "is_restricted": True}, team, None) is Role.GUEST
    assert role_of({**user, "is_restricted": True, "is_admin": True}, team, None) is Role.GUEST
    assert role_of({**user, "team_id": "T0OTHER"}, team, None) is Role.EXTERNAL
    assert role_of({**user, "is_stranger": True}, team, None) is Role.EXTERNAL
    assert role_of({**user, "deleted": True, "is_admin": True}, team, None) is Role.DEACTIVATED
    # Enterprise Grid: another workspace of the same org is not a stranger; an org-wide
    # install has no team, only the enterprise.
    grid = {**user, "team_id": "T0SISTER", "enterprise_user": {"enterprise_id": org}}
    assert role_of(grid, team, org) is Role.MEMBER
    assert role_of(grid, None, org) is Role.MEMBER
    assert role_of(grid, team, "E0ELSE") is Role.EXTERNAL
    assert role_of(user, None, org) is Role.EXTERNAL


# ----------------------------------------------------------------- admins per team


async def test_admin_ids_count_only_in_their_own_team(demo_engine):
    with FakeSlack() as fake:
        _people(fake)
        ids = frozenset({f"{fake.team_id}:U0MEMBER", "T0ELSE:U0EXPORTER"})
        deps = _bot(fake, demo_engine, admin_user_ids=ids)
        async with bot_client(build_app(deps.settings, demo_engine, deps=deps)) as http:
            bot = Bot(fake, demo_engine, http, fake.team_id)
            await bot.command("alerts channel", "listed", user="U0MEMBER")
            assert "Only workspace admins" not in await bot.one("listed")
            await bot.command("alerts channel", "elsewhere", user="U0EXPORTER")
            assert "Only workspace admins" in await bot.one("elsewhere")


def test_bare_admin_ids_work_with_one_token_and_are_refused_with_oauth(
    monkeypatch, tmp_path, caplog
):
    single = BotSettings(bot_token="xoxb-1", admin_user_ids=frozenset({"U0BOSS", "T1:U0T1"}))
    assert single.admins_of("T1") == {"U0BOSS", "U0T1"}
    assert single.admins_of("T2") == {"U0BOSS"}
    oauth = replace(single, client_id="1.2", bot_token=None)
    assert oauth.admins_of("T1") == {"U0T1"} and oauth.admins_of("T2") == frozenset()

    monkeypatch.chdir(tmp_path)
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLACK_CLIENT_ID", "1.2")
    monkeypatch.setenv("SLACK_CLIENT_SECRET", "s")
    monkeypatch.setenv("JOURNEY_ADMIN_USER_IDS", "U0BOSS, T1:U0T1")
    monkeypatch.setenv("JOURNEY_EXPORT_USERGROUP", "T1:S0EXPORT")
    with caplog.at_level(logging.WARNING, logger="journey.bot"):
        loaded = load_bot_settings(tmp_path / "none.env")
    assert loaded.admin_user_ids == {"T1:U0T1"}
    assert loaded.export_groups_of("T1") == {"S0EXPORT"}
    assert "U0BOSS ignored" in caplog.text and "TEAM_ID:ID" in caplog.text


# ----------------------------------------------------------------- fair sharing


async def test_a_user_over_the_rate_limit_is_told_when_to_try_again(demo_engine):
    clock = Clock()
    with FakeSlack() as fake:
        _people(fake)
        deps = _bot(fake, demo_engine, clock=clock, commands_per_minute=2)
        async with bot_client(build_app(deps.settings, demo_engine, deps=deps)) as http:
            bot = Bot(fake, demo_engine, http, fake.team_id)
            for i in range(2):
                await bot.command("reviews", f"ok-{i}", user="U0MEMBER")
                await bot.responses(f"ok-{i}")
                clock.now += 10
            await bot.command("reviews", "third", user="U0MEMBER")
            assert "You've run a lot of reports in the last minute; try again in 40 seconds" in (
                await bot.one("third")
            )
            await bot.command("reviews", "someone-else", user="U0ADMIN")
            assert "Whom to ask for a review" in await bot.one("someone-else")
            clock.now += 41
            await bot.command("reviews", "later", user="U0MEMBER")
            assert "Whom to ask for a review" in await bot.one("later")


def test_the_bots_own_deps_count_the_rate_limit_in_the_database(demo_engine):
    from bot.guard.fair import SharedRateLimit

    settings = BotSettings(bot_token=DEFAULT_BOT_TOKEN, signing_secret=SECRET)
    deps = Deps(service=ReportService(demo_engine), settings=settings, shared_limits=True)
    assert isinstance(deps.guard.rate, SharedRateLimit)


async def test_the_rate_limit_is_one_count_across_replicas(demo_engine):
    """Two bot processes (replicas) on one database: what a person ran on one counts on
    the other, and the rows older than the minute are deleted as it goes."""
    clock = Clock()
    clock.now = 2_000_000_000.0  # a wall-clock time: replicas compare theirs
    with FakeSlack() as fake:
        _people(fake)
        replicas = []
        for _ in range(2):
            deps = _bot(fake, demo_engine, clock=clock, commands_per_minute=2)
            http = bot_client(build_app(deps.settings, demo_engine, deps=deps))
            replicas.append(http)
        async with replicas[0] as one, replicas[1] as two:
            first = Bot(fake, demo_engine, one, fake.team_id)
            second = Bot(fake, demo_engine, two, fake.team_id)
            await first.command("reviews", "r1-a", user="U0MEMBER")
            await first.responses("r1-a")
            clock.now += 10
            await second.command("reviews", "r2-a", user="U0MEMBER")
            await second.responses("r2-a")
            clock.now += 10
            await first.command("reviews", "r1-b", user="U0MEMBER")
            assert "try again in 40 seconds" in await first.one("r1-b")
            await second.command("reviews", "r2-b", user="U0MEMBER")
            assert "try again in 40 seconds" in await second.one("r2-b")
            clock.now += 41
            await second.command("reviews", "r2-c", user="U0MEMBER")
            assert "Whom to ask for a review" in await second.one("r2-c")
    with session_scope(demo_engine) as session:
        left = session.exec(select(CommandUse)).all()
    # The first use (61 s old) is gone; the second and the last remain.
    assert [(r.user_id, r.used_at_ms) for r in left] == [
        ("U0MEMBER", 2_000_000_010_000),
        ("U0MEMBER", 2_000_000_061_000),
    ]


async def test_an_org_wide_install_keys_the_workspace_by_its_enterprise(demo_engine):
    """With an org-wide install the installation has no team: the workspace is the
    enterprise, whichever of the org's workspaces (the payload's team) the command came
    from, and a member of a sister workspace of the org is no stranger."""
    with FakeSlack() as fake:
        fake.add_token("xoxb-org", "E0ORG", bot_id="B0ORG", user_id="U0ORGBOT")
        fake.add_user("W0GRID", team_id="T0SISTER", enterprise_id="E0ORG")

        async def authorize(enterprise_id, team_id, user_id):
            if enterprise_id != "E0ORG":
                return None
            return AuthorizeResult(
                enterprise_id="E0ORG", team_id=None, bot_token="xoxb-org", user_id=user_id
            )

        settings = BotSettings(signing_secret=SECRET, api_url=fake.api_url, client_id="1.2")
        deps = Deps(service=ReportService(demo_engine), settings=settings, working_after=10)
        app = build_app(settings, demo_engine, authorize=authorize, deps=deps)
        async with bot_client(app) as http:
            bot = Bot(fake, demo_engine, http, "T0SISTER")
            body, ctype = slash_command(
                "funnel",
                team_id="T0SISTER",
                enterprise_id="E0ORG",
                user_id="W0GRID",
                channel_id="C0GENERAL",
                response_url=fake.response_url("org"),
            )
            assert (await bot.post(body, ctype)).status_code == 200
            dumped = await bot.one("org")
    assert "journey import --workspace E0ORG" in dumped  # keyed by the org, not T0SISTER
    assert "couldn't check your Slack account" not in dumped
