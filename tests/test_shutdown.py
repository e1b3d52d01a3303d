"""SIGTERM with work in flight: every acknowledged command still gets a final answer.

Before, the server exited within a second or two of SIGTERM, logging nothing:
Bolt runs the work after `ack()` as tasks nobody waited for, and uvicorn re-raises
the signal after `serve()` returns, which killed the report threads mid-task. Users
were left on "Working on your funnel..." for good.

The first test drives the drain itself (bot/work/inflight.py) with reports held
on purpose; the second runs `journey serve` as an operator does, sends it signed
commands over HTTP and a real SIGTERM.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fakes.signing import signed_headers, slash_command
from fakes.slack_api import DEFAULT_BOT_TOKEN, RESPONSE_URL, FakeSlack
from slack_driver import SECRET, SignedBot, bot_client

from bot.app import build_app
from bot.commands.language import Command
from bot.commands.service import Reply, ReportService
from bot.config import BotSettings
from bot.deps import Deps
from bot.work.inflight import INFLIGHT
from journey.db import make_engine, session_scope, upgrade
from journey.demo import load_demo


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("shutdown") / "bot.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with FakeSlack() as fake, session_scope(engine) as session:
        load_demo(session, fake.team_id)
    engine.dispose()
    return path


class HeldService(ReportService):
    """`reviews` waits until `release` is set, `retention` until `never` is (a report
    slower than the grace); everything else answers as usual."""

    release: threading.Event
    never: threading.Event

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
        if command.name == "retention":
            self.never.wait(30)
        return super().command_reply(workspace_id, command, view, shared, exports=exports)


def _final(posts: list) -> str:
    return json.dumps(posts[-1].payload, ensure_ascii=False)


async def test_drain_finishes_what_it_can_and_tells_the_others_to_run_it_again(
    demo_db, caplog, one_report_thread
):
    """One report thread: reviews (let go 0.3 s into the drain), a churn queued behind it,
    a retention slower than the grace, and a churn queued behind that. The first two
    finish within the grace; the last two are told to run their command again."""
    engine = make_engine(f"sqlite:///{demo_db}")
    service = HeldService(engine)
    service.release, service.never = threading.Event(), threading.Event()
    try:
        with FakeSlack() as fake:
            fake.add_user("U0ALICE")
            settings = BotSettings(
                bot_token=DEFAULT_BOT_TOKEN, signing_secret=SECRET, api_url=fake.api_url
            )
            deps = Deps(service=service, settings=settings, working_after=0.1)
            app = build_app(settings, engine, deps=deps)
            async with bot_client(app) as http:
                bot = SignedBot(fake, engine, http, fake.team_id)
                for name, text in [
                    ("rv", "reviews"),
                    ("c1", "churn"),
                    ("rt", "retention"),
                    ("c2", "churn"),
                ]:
                    assert (await bot.command(text, name)).status_code == 200
                    await bot.responses(name)  # acknowledged, and its working message is up
                threading.Timer(0.3, service.release.set).start()
                with caplog.at_level(logging.INFO, logger="journey.bot"):
                    report = await INFLIGHT.drain(2.0)
                # Work that arrives once the drain has begun is turned away in words.
                INFLIGHT.stopping.set()
                assert (await bot.command("churn", "late")).status_code == 200
                late = await bot.responses("late")
            answers = {name: fake.responses[name] for name in ("rv", "c1", "rt", "c2")}
    finally:
        service.release.set()
        service.never.set()
        engine.dispose()
    assert (report.in_flight, report.finished, report.abandoned) == (4, 2, 2)
    assert "shutting down: 4 in flight, 2 finished, 2 abandoned" in caplog.text
    for name in ("rv", "c1"):
        assert "Working on" in json.dumps(answers[name][0].payload)
        assert "Working on" not in _final(answers[name])
        assert "restarting" not in _final(answers[name])
    for name, word in (("rt", "retention"), ("c2", "churn")):
        posts = answers[name]
        assert "Working on" in json.dumps(posts[0].payload)
        assert posts[-1].replace_original  # the working message is replaced, not left up
        assert f"could not finish your `/journey {word}`" in _final(posts)
        assert "run it again in a minute" in _final(posts)
    assert "restarting" in _final(late)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_to_journey_serve_waits_for_acknowledged_commands(demo_db, tmp_path):
    """A real `journey serve`, real signed HTTP requests, a real SIGTERM: the answers are
    slow to reach Slack (1.5 s each), yet all five arrive before the process exits, and
    the log says so."""
    port = _free_port()
    with FakeSlack() as fake:
        fake.add_user("U0ALICE")
        fake.delay(RESPONSE_URL, 1.5)
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{demo_db}",
            "SLACK_BOT_TOKEN": DEFAULT_BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": fake.api_url,
            "JOURNEY_SCHEDULER_INTERVAL": "0",
            "JOURNEY_SYNC_INTERVAL": "0",
        }
        for name in ("SLACK_APP_TOKEN", "SLACK_CLIENT_ID", "JOURNEY_LOG_LEVEL"):
            env.pop(name, None)
        journey = Path(sys.executable).parent / "journey"
        proc = subprocess.Popen(
            [str(journey), "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, "did not start"
                time.sleep(0.1)
            for i in range(5):
                body, ctype = slash_command(
                    "churn",
                    team_id=fake.team_id,
                    user_id="U0ALICE",
                    channel_id="C0GENERAL",
                    response_url=fake.response_url(f"r{i}"),
                )
                ack = httpx.post(
                    f"{base}/slack/events",
                    content=body,
                    headers=signed_headers(body, ctype, SECRET),
                    timeout=5,
                )
                assert ack.status_code == 200
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=40)
        finally:
            if proc.poll() is None:
                proc.kill()
        answers = {f"r{i}": fake.responses.get(f"r{i}", []) for i in range(5)}
    assert "journey bot serving" in err
    assert "shutting down: 5 in flight, 5 finished, 0 abandoned" in err, err
    for name, posts in answers.items():
        assert posts and "Churn" in _final(posts), (name, posts)
    assert DEFAULT_BOT_TOKEN not in err


@pytest.fixture
def one_report_thread():
    """One report thread, no shedding: the drain test's queue order is then known."""
    from bot.work.pool import PoolLimits, ReportPool, use_pool

    old = use_pool(
        ReportPool(PoolLimits(threads=1, max_queue=16, max_queue_per_workspace=16, max_wait=60))
    )
    yield
    use_pool(old)


@pytest.fixture(autouse=True)
def _reopen():
    """Whatever a test did, the next one starts with a process taking work."""
    yield
    INFLIGHT.reopen()


class HeldSync(ReportService):
    """A sync slower than the grace: it waits for `release`."""

    release: threading.Event

    def sync_one(self, source_id, name, kind, progress=None):
        from journey.sync import SyncResult

        self.release.wait(30)
        return SyncResult(source=name, kind=kind)


async def test_a_background_sync_cut_short_by_a_shutdown_tells_its_user(demo_db):
    """A `/journey sync` still running when the grace ends: its progress DM gets a line
    saying the sync was cut short, that what arrived is kept, and to run it again."""
    from bot.commands.service import SyncTarget
    from bot.posting.sync_progress import open_dm, start_sync

    engine = make_engine(f"sqlite:///{demo_db}")
    service = HeldSync(engine)
    service.release = threading.Event()
    try:
        with FakeSlack() as fake:
            fake.add_user("U0ADMIN", is_admin=True)
            client = fake.async_web_client(DEFAULT_BOT_TOKEN)
            dm = await open_dm(client, "U0ADMIN")
            assert dm
            start_sync(client, service, [SyncTarget(1, "shop", "stripe")], dm, interval=0.1)
            report = await INFLIGHT.drain(0.5)
            said = [json.dumps(m.to_api()) for m in fake.posted(dm)]
    finally:
        service.release.set()
        engine.dispose()
    assert (report.in_flight, report.abandoned) == (1, 1)
    assert any("journey restarted before your sync finished" in s for s in said), said
    assert any("run `/journey sync` again" in s for s in said)
