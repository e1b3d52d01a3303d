"""Bounded, fair work: past the report pool's bounds a user is told "busy, try again in a
minute" at once, instead of an answer that comes ever later (bot/work/pool.py); the same
chart is rendered once (bot/listeners/replies.py).

Before, every report queued on one thread without limit: at 30 commands a second
replies came minutes late and the queue grew until response URLs expired.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from fakes.signing import app_home_opened, block_actions, event_callback
from fakes.slack_api import DEFAULT_BOT_TOKEN, FakeSlack
from slack_driver import SECRET, SignedBot, bot_client

from bot.app import build_app
from bot.commands.language import Command
from bot.commands.service import Reply, ReportService
from bot.config import BotSettings
from bot.deps import Deps
from bot.work.pool import Busy, PoolLimits, ReportPool, limits_from_env, use_pool
from journey.db import make_engine, session_scope, upgrade
from journey.demo import load_demo
from journey.errors import JourneyError


def _pool(threads: int = 1, queue: int = 4, per_workspace: int = 2, wait: float = 60) -> ReportPool:
    return ReportPool(PoolLimits(threads, queue, per_workspace, wait))


async def _started(pool: ReportPool, count: int) -> None:
    deadline = time.monotonic() + 10
    while pool.running < count and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert pool.running == count


async def test_a_full_queue_refuses_at_once_and_a_workspace_gets_only_its_share():
    pool = _pool(threads=1, queue=4, per_workspace=2)
    gate = threading.Event()
    running = asyncio.ensure_future(pool.run(gate.wait, 10, workspace="A"))
    await _started(pool, 1)
    queued = [asyncio.ensure_future(pool.run(lambda: "a", workspace="A")) for _ in range(2)]
    await asyncio.sleep(0)
    # workspace A has its two places; a third waits for nobody: refused at once
    with pytest.raises(Busy, match="workspace"):
        await pool.run(lambda: "a", workspace="A")
    # B still gets in, until the whole queue (4) is full
    queued += [asyncio.ensure_future(pool.run(lambda: "b", workspace="B")) for _ in range(2)]
    await asyncio.sleep(0)
    started = time.monotonic()
    with pytest.raises(Busy, match="queue full"):
        await pool.run(lambda: "c", workspace="C")
    assert time.monotonic() - started < 0.5
    gate.set()
    assert await running is True
    assert [await q for q in queued] == ["a", "a", "b", "b"]
    assert pool.waiting == 0 and pool.shed == 2
    # small work (no report) is never refused, even past the bounds
    gate.clear()
    running = asyncio.ensure_future(pool.run(gate.wait, 10))
    await _started(pool, 1)
    extra = [asyncio.ensure_future(pool.run(lambda: 1, shed=False)) for _ in range(6)]
    gate.set()
    assert [await e for e in extra] == [1] * 6
    await running


async def test_a_report_that_waited_too_long_is_not_started():
    pool = _pool(threads=1, queue=10, per_workspace=10, wait=0.2)
    gate = threading.Event()
    ran: list[str] = []
    running = asyncio.ensure_future(pool.run(gate.wait, 10))
    await _started(pool, 1)
    late = asyncio.ensure_future(pool.run(ran.append, "late", workspace="A"))
    await asyncio.sleep(0.4)
    gate.set()
    with pytest.raises(Busy, match="waited too long"):
        await late
    await running
    assert ran == []


def test_pool_settings_from_the_environment_fail_in_words():
    limits = limits_from_env({"JOURNEY_REPORT_WORKERS": "3", "JOURNEY_REPORT_MAX_WAIT": "2.5"})
    assert limits == PoolLimits(3, 48, 24, 2.5)
    assert 1 <= limits_from_env({}).threads <= 4
    with pytest.raises(JourneyError, match="JOURNEY_REPORT_WORKERS must be at least 1"):
        limits_from_env({"JOURNEY_REPORT_WORKERS": "0"})
    with pytest.raises(JourneyError, match="JOURNEY_REPORT_QUEUE must be a number"):
        limits_from_env({"JOURNEY_REPORT_QUEUE": "lots"})


# --- through Slack --------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_engine(tmp_path_factory):
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('workload') / 'bot.db'}")
    upgrade(engine)
    with FakeSlack() as fake, session_scope(engine) as session:
        load_demo(session, fake.team_id)
    yield engine
    engine.dispose()


class HeldService(ReportService):
    """`reviews` waits for `release` (a slow report holding the only thread)."""

    release: threading.Event

    def command_reply(
        self,
        workspace_id: str,
        command: Command,
        view: str = "",
        shared: bool = False,
        *,
        exports: bool = False,
    ) -> Reply:
        if command.name == "reviews":
            self.release.wait(30)
        return super().command_reply(workspace_id, command, view, shared, exports=exports)


@pytest.fixture
def small_pool():
    pool = _pool(threads=1, queue=3, per_workspace=3, wait=60)
    old = use_pool(pool)
    yield pool
    use_pool(old)


async def test_past_the_bound_every_command_still_gets_a_final_answer(demo_engine, small_pool):
    service = HeldService(demo_engine)
    service.release = threading.Event()
    try:
        with FakeSlack() as fake:
            fake.add_user("U0ALICE")  # a member: users.info knows who asks (bot/guard/access.py)
            settings = BotSettings(
                bot_token=DEFAULT_BOT_TOKEN, signing_secret=SECRET, api_url=fake.api_url
            )
            deps = Deps(service=service, settings=settings, working_after=0.2)
            app = build_app(settings, demo_engine, deps=deps)
            async with bot_client(app) as http:
                bot = SignedBot(fake, demo_engine, http, fake.team_id)
                assert (await bot.command("reviews", "held")).status_code == 200
                await _started(small_pool, 1)
                names = [f"churn-{i}" for i in range(6)]
                for name in names:
                    assert (await bot.command("churn", name)).status_code == 200
                # three wait their turn; the others are told at once, before the release
                for name in names[3:]:
                    (busy,) = await bot.responses(name)
                    assert "busy" in json.dumps(busy.payload) and "try again in a minute" in (
                        json.dumps(busy.payload)
                    )
                service.release.set()
                for name in names[:3]:
                    posts = await bot.responses(name, count=2)  # working, then the report
                    assert "Churn" in json.dumps(posts[-1].payload)
                    assert posts[-1].replace_original
                await bot.responses("held", count=2)
    finally:
        service.release.set()
    assert small_pool.shed == 3


async def test_the_same_funnel_chart_is_rendered_once(demo_engine, monkeypatch):
    """A funnel's chart costs about 250 ms of matplotlib; asked again with the same data
    (same workspace, period and figures) it comes from the cache."""
    from journey.render import charts

    rendered: list[str] = []
    real = charts.funnel_chart

    def counting(report, *args, **kwargs):
        rendered.append(report.period.label)
        return real(report, *args, **kwargs)

    monkeypatch.setattr(charts, "funnel_chart", counting)
    # An empty cache: another test module's funnel of the same demo data may be in it.
    from bot.listeners import replies

    monkeypatch.setattr(replies, "_charts", replies.ChartCache())
    with FakeSlack() as fake:
        fake.add_user("U0ALICE")
        settings = BotSettings(
            bot_token=DEFAULT_BOT_TOKEN, signing_secret=SECRET, api_url=fake.api_url
        )
        deps = Deps(service=ReportService(demo_engine), settings=settings, working_after=10)
        app = build_app(settings, demo_engine, deps=deps)
        async with bot_client(app) as http:
            bot = SignedBot(fake, demo_engine, http, fake.team_id)
            for i, text in enumerate(["funnel 30d", "funnel 30d", "funnel 90d"]):
                await bot.command(text, f"f{i}")
                posts = await bot.responses(f"f{i}", count=2)  # the report, then its chart
                assert "The funnel chart is in your direct messages" in json.dumps(
                    posts[-1].payload
                )
        uploads = [c for c in fake.calls if c.method == "files.completeUploadExternal"]
    assert len(uploads) == 3  # every report gets its chart...
    assert len(rendered) == 2  # ...drawn once for 30d, once for 90d


# --- buttons and the Home tab are bounded too ------------------------------------------


class Clicks(SignedBot):
    async def click(self, action_id: str, value: dict | str, name: str, user: str = "U0ALICE"):
        raw = value if isinstance(value, str) else json.dumps(value)
        body, ctype = block_actions(
            action_id,
            raw,
            team_id=self.team,
            user_id=user,
            channel_id="C0GENERAL",
            response_url=self.fake.response_url(name, channel="C0GENERAL"),
        )
        assert (await self.post(body, ctype)).status_code == 200


@pytest.fixture
async def clicks(demo_engine):
    with FakeSlack() as fake:
        fake.add_user("U0ALICE")
        fake.add_user("U0ADMIN", is_admin=True)
        settings = BotSettings(
            bot_token=DEFAULT_BOT_TOKEN, signing_secret=SECRET, api_url=fake.api_url
        )
        deps = Deps(service=ReportService(demo_engine), settings=settings, working_after=10)
        app = build_app(settings, demo_engine, deps=deps)
        async with bot_client(app) as http:
            yield Clicks(fake, demo_engine, http, fake.team_id)


class Filled:
    """The only report thread held and `count` more pieces of work waiting for
    `workspace`: what a burst of reports leaves behind."""

    def __init__(self, pool: ReportPool, workspace: str, count: int) -> None:
        self.pool, self.workspace, self.count = pool, workspace, count
        self.gate = threading.Event()
        self.tasks: list[asyncio.Future] = []

    async def __aenter__(self) -> Filled:
        self.tasks.append(asyncio.ensure_future(self.pool.run(self.gate.wait, 30)))
        await _started(self.pool, 1)
        for _ in range(self.count):
            self.tasks.append(
                asyncio.ensure_future(self.pool.run(lambda: None, workspace=self.workspace))
            )
        await asyncio.sleep(0)
        assert self.pool.waiting == self.count
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.gate.set()
        await asyncio.gather(*self.tasks)


def _busy_aside(post) -> None:
    """A polite refusal beside the message clicked on: private, the message untouched."""
    dumped = json.dumps(post.payload)
    assert "busy" in dumped and "try again in a minute" in dumped
    assert post.replace_original is False and post.response_type == "ephemeral"


def _count(engine, model) -> int:
    from sqlalchemy import func
    from sqlmodel import select

    with session_scope(engine) as session:
        return session.exec(select(func.count()).select_from(model)).one()


async def test_buttons_are_refused_in_words_when_the_pool_is_full(clicks, small_pool):
    """Review marks, Share, the CSV and By channel no longer queue without bound behind
    reports: past the pool's bounds each is refused at once, privately, nothing is
    written or posted, and the buttons stay on the message to click again."""
    from journey.models.export import ExportRecord
    from journey.models.review import ReviewRequest

    bot = clicks
    await bot.command("reviews", "rev")
    (post,) = await bot.responses("rev")
    asked = next(
        e
        for b in post.blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "journey_review_asked"
    )
    reviews, exports = _count(bot.engine, ReviewRequest), _count(bot.engine, ExportRecord)
    report = {"k": "retention", "p": "30d", "c": None, "v": ""}
    async with Filled(small_pool, bot.team, small_pool.limits.max_queue):
        started = time.monotonic()
        await bot.click("journey_review_asked", asked["value"], "mark")
        await bot.click("journey_share", report, "share", user="U0ADMIN")
        await bot.click("journey_export_csv", report, "csv", user="U0ADMIN")
        await bot.click("journey_by_channel", report, "bychan")
        (mark,) = await bot.responses("mark")
        (share,) = await bot.responses("share")
        (csv,) = await bot.responses("csv")
        (bychan,) = await bot.responses("bychan")
        assert time.monotonic() - started < 10  # at once, not after the held work
        for post, words in [
            (mark, "was not marked"),
            (share, "the report was not shared"),
            (csv, "no CSV was made"),
            (bychan, "did not start this one"),
        ]:
            _busy_aside(post)
            assert words in json.dumps(post.payload)
    assert _count(bot.engine, ReviewRequest) == reviews
    assert _count(bot.engine, ExportRecord) == exports
    assert not bot.fake.calls_to("files.completeUploadExternal")
    assert small_pool.shed == 4

    # Once the pool has room the same button works.
    await bot.click("journey_review_asked", asked["value"], "mark-again")
    (post,) = await bot.responses("mark-again")
    assert post.replace_original and "asked for a review" in json.dumps(post.blocks)
    assert _count(bot.engine, ReviewRequest) == reviews + 1


async def test_the_home_tab_says_busy_instead_of_waiting(clicks, small_pool):
    bot = clicks
    async with Filled(small_pool, bot.team, small_pool.limits.max_queue):
        body, ctype = event_callback(app_home_opened("U0ALICE"), bot.team)
        assert (await bot.post(body, ctype)).status_code == 200
        deadline = time.monotonic() + 10
        while not bot.fake.calls_to("views.publish") and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        dumped = json.dumps(bot.fake.home_views["U0ALICE"])
        assert "busy" in dumped and "this tab shows no figures now" in dumped
        assert "Funnel:" not in dumped
    # Opened again with room, it shows the figures.
    body, ctype = event_callback(app_home_opened("U0ALICE"), bot.team)
    await bot.post(body, ctype)
    deadline = time.monotonic() + 15
    while len(bot.fake.calls_to("views.publish")) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert "Funnel:" in json.dumps(bot.fake.home_views["U0ALICE"])


async def test_a_sync_asked_while_the_pool_is_full_is_refused_in_words(clicks, small_pool):
    bot = clicks
    async with Filled(small_pool, bot.team, small_pool.limits.max_queue):
        await bot.command("sync", "sync", user="U0ADMIN")
        (post,) = await bot.responses("sync")
        assert "the sync did not start" in json.dumps(post.payload)
    assert not bot.fake.calls_to("conversations.open")  # no progress DM was started


async def test_a_buttons_work_takes_only_its_workspaces_share(clicks):
    """Per workspace: another workspace's queue does not refuse this one's click (it waits
    its turn), and this workspace's full share refuses it though the queue has room."""
    from journey.models.review import ReviewRequest

    pool = _pool(threads=1, queue=4, per_workspace=2)
    old = use_pool(pool)
    try:
        bot = clicks
        await bot.command("reviews", "rev")
        (post,) = await bot.responses("rev")
        values = [
            e["value"]
            for b in post.blocks
            if b["type"] == "actions"
            for e in b["elements"]
            if e["action_id"] == "journey_review_skip"
        ]
        before = _count(bot.engine, ReviewRequest)
        async with Filled(pool, "T0SOMEONEELSE", 2):
            await bot.click("journey_review_skip", values[0], "skip-1")
            await asyncio.sleep(0.3)
            assert not bot.fake.responses.get("skip-1")  # waiting its turn, not refused
        (post,) = await bot.responses("skip-1")
        assert post.replace_original and "skipped" in json.dumps(post.blocks)
        async with Filled(pool, bot.team, 2):
            await bot.click("journey_review_skip", values[1], "skip-2")
            (post,) = await bot.responses("skip-2")
            _busy_aside(post)
        assert _count(bot.engine, ReviewRequest) == before + 1
        assert pool.shed == 1
    finally:
        use_pool(old)
