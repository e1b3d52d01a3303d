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
import re
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


DRAINED = re.compile(
    r"shutting down: (\d+) in flight, (\d+) finished, (\d+) abandoned \(process (\d+)\)"
)


class Serve:
    """`journey serve` as an operator runs it, its stderr read line by line as it comes."""

    def __init__(self, fake: FakeSlack, db: Path, cwd: Path, *args: str, **env: str) -> None:
        self.port = _free_port()
        full = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{db}",
            "SLACK_BOT_TOKEN": DEFAULT_BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": fake.api_url,
            "JOURNEY_SCHEDULER_INTERVAL": "0",
            "JOURNEY_SYNC_INTERVAL": "0",
            # These tests send bursts from one user into one module-wide database, and the
            # per-user limit is counted in that database across workers and tests: it is
            # not what is tested here (tests/test_bot_access.py and tests/test_guard.py test it).
            "JOURNEY_COMMANDS_PER_MINUTE": "1000",
            **env,
        }
        for name in ("SLACK_APP_TOKEN", "SLACK_CLIENT_ID", "JOURNEY_LOG_LEVEL"):
            full.pop(name, None)
        journey = Path(sys.executable).parent / "journey"
        self.fake = fake
        self.proc = subprocess.Popen(
            [str(journey), "serve", "--port", str(self.port), *args],
            env=full,
            cwd=cwd,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    @property
    def err(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, count: int = 1, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while sum(text in line for line in self.lines) < count:
            assert self.proc.poll() is None, f"exited early:\n{self.err}"
            assert time.monotonic() < deadline, f"no {count} x {text!r} in:\n{self.err}"
            time.sleep(0.05)

    def command(self, text: str, name: str) -> None:
        """One signed `/journey <text>`, on a connection of its own; acknowledged."""
        body, ctype = slash_command(
            text,
            team_id=self.fake.team_id,
            user_id="U0ALICE",
            channel_id="C0GENERAL",
            response_url=self.fake.response_url(name),
        )
        ack = httpx.post(
            f"http://127.0.0.1:{self.port}/slack/events",
            content=body,
            headers=signed_headers(body, ctype, SECRET),
            timeout=10,
        )
        assert ack.status_code == 200

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then the exit status once the process ended."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        self._reader.join(5)
        return code


def test_sigterm_to_journey_serve_waits_for_acknowledged_commands(demo_db, tmp_path):
    """A real `journey serve`, real signed HTTP requests, a real SIGTERM: the answers are
    slow to reach Slack (1.5 s each), yet all five arrive before the process exits, the
    log says so, and the exit status is 0 (a clean stop for systemd, Docker and
    Kubernetes; uvicorn's re-raised SIGTERM would have made it 143)."""
    with FakeSlack() as fake:
        fake.add_user("U0ALICE")
        fake.delay(RESPONSE_URL, 1.5)
        serve = Serve(fake, demo_db, tmp_path)
        try:
            serve.wait_for("ready to serve")
            for i in range(5):
                serve.command("churn", f"r{i}")
            code = serve.stop()
        finally:
            if serve.proc.poll() is None:
                serve.proc.kill()
        answers = {f"r{i}": fake.responses.get(f"r{i}", []) for i in range(5)}
    err = serve.err
    assert "journey bot serving" in err
    assert "shutting down: 5 in flight, 5 finished, 0 abandoned" in err, err
    for name, posts in answers.items():
        assert posts and "Churn" in _final(posts), (name, posts)
    assert DEFAULT_BOT_TOKEN not in err
    assert code == 0, err


def _burst(serve: Serve, names: list[str]) -> None:
    """Send one command per name, all at once, each on its own connection: uvicorn's
    workers accept from one shared socket, so concurrent connections spread over them."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(len(names)) as senders:
        list(senders.map(lambda name: serve.command("churn", name), names))


def test_each_worker_of_journey_serve_drains_on_its_own(demo_db, tmp_path):
    """`journey serve --workers 2`: SIGTERM goes to uvicorn's parent, which passes it to
    each worker. Both hold acknowledged commands: some slow to reach Slack (1.5 s per
    answer), finished within the grace; some stuck longer than the grace (users.info
    held 10 s), whose users are told to run the command again. Every command gets a
    final answer, each worker logs its own "shutting down" line, and the process exits
    with status 0."""
    with FakeSlack() as fake:
        fake.add_user("U0ALICE")
        fake.delay(RESPONSE_URL, 1.5)
        serve = Serve(fake, demo_db, tmp_path, "--workers", "2", JOURNEY_SHUTDOWN_GRACE="4")
        try:
            serve.wait_for("ready to serve", count=2)
            # The first users.info calls (each worker's first commands: the look-up is
            # cached per process) are held past the grace.
            fake.delay("users.info", 10, times=2)
            names = [f"w{i}" for i in range(16)]
            _burst(serve, names[:8])
            time.sleep(0.3)
            _burst(serve, names[8:])
            stopping = time.monotonic()
            code = serve.stop()
            stopped = time.monotonic() - stopping
        finally:
            if serve.proc.poll() is None:
                serve.proc.kill()
        answers = {name: fake.responses.get(name, []) for name in names}
    err = serve.err
    drained = [tuple(int(g) for g in m.groups()) for m in DRAINED.finditer(err)]
    assert len(drained) == 2, err  # one line per worker
    assert len({pid for *_, pid in drained}) == 2
    for in_flight, finished, abandoned, _pid in drained:
        assert in_flight >= 1, err  # both workers had work in flight
        assert in_flight == finished + abandoned
    told = []
    for name, posts in answers.items():
        assert posts, (name, err)
        final = _final(posts)
        assert "Working on" not in final
        if "restarting" in final:
            assert "could not finish your `/journey churn`" in final
            assert "run it again in a minute" in final
            told.append(name)
        else:
            assert "Churn" in final, (name, final)
    assert sum(a for _, _, a, _ in drained) == len(told) >= 1
    assert sum(f for _, f, _, _ in drained) >= 1
    assert code == 0, err
    assert stopped < 4 + 3 + 10  # the grace, the farewells' 3 s, the exits (under load)


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


APP_TOKEN = "xapp-1-A0JOURNEY-2222-fakeapptoken"


async def test_sigterm_in_socket_mode_disconnects_then_drains(demo_db, tmp_path):
    """`journey bot` in Socket Mode, connected to the fake Socket Mode endpoint over a
    real WebSocket, five commands acknowledged as envelopes, then a real SIGTERM: the
    bot closes its connection first (Slack sends what it has not acknowledged to
    another connection), then drains. Four answers reach Slack slowly (1.5 s each) and
    arrive; the fifth is stuck in its users.info look-up past the 3 s grace, and its
    user is told to run the command again. The log says so; the exit status is 0."""
    import asyncio

    from fakes.socket_mode import ACK_DEADLINE, FakeSocketMode
    from test_bot_socket_mode import command

    with FakeSlack() as fake:
        fake.add_token(APP_TOKEN, scopes=("connections:write",))
        fake.add_user("U0ALICE")
        fake.delay(RESPONSE_URL, 1.5)
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{demo_db}",
            "SLACK_BOT_TOKEN": DEFAULT_BOT_TOKEN,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_API_URL": fake.api_url,
            "JOURNEY_SCHEDULER_INTERVAL": "0",
            "JOURNEY_SYNC_INTERVAL": "0",
            "JOURNEY_SHUTDOWN_GRACE": "3",
            "JOURNEY_COMMANDS_PER_MINUTE": "1000",  # as in Serve: not the rate limit's test
        }
        for name in ("SLACK_SIGNING_SECRET", "SLACK_CLIENT_ID", "JOURNEY_LOG_LEVEL"):
            env.pop(name, None)
        async with FakeSocketMode(fake) as sm:
            proc = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "journey"),
                "bot",
                env=env,
                cwd=tmp_path,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                await sm.wait_connected(timeout=90)
                fake.delay("users.info", 10, times=1)
                envelopes = [await sm.send("slash_commands", command(fake, "churn", "held"))]
                deadline = time.monotonic() + 10
                while not fake.calls_to("users.info"):
                    assert time.monotonic() < deadline, "the held command never asked"
                    await asyncio.sleep(0.02)
                for i in range(4):
                    envelopes.append(
                        await sm.send("slash_commands", command(fake, "churn", f"s{i}"))
                    )
                for envelope in envelopes:
                    await sm.ack(envelope)
                    assert sm.ack_seconds(envelope) < ACK_DEADLINE
                await asyncio.sleep(0.3)  # past users.info: the four are answering
                proc.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + 10
                while sm._sockets:  # the bot closes its connection first...
                    assert time.monotonic() < deadline, "still connected after SIGTERM"
                    await asyncio.sleep(0.02)
                assert proc.returncode is None  # ...and is still draining then
                assert proc.stderr is not None
                err = (await asyncio.wait_for(proc.stderr.read(), 60)).decode()
                code = await asyncio.wait_for(proc.wait(), 10)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        answers = {name: fake.responses.get(name, []) for name in ["held", "s0", "s1", "s2", "s3"]}
    assert "connecting to Slack in Socket Mode" in err
    assert "shutting down: 5 in flight, 4 finished, 1 abandoned" in err, err
    for name in ("s0", "s1", "s2", "s3"):
        assert answers[name] and "Churn" in _final(answers[name]), (name, answers[name])
    held = _final(answers["held"])
    assert "could not finish your `/journey churn`" in held and "run it again" in held
    assert sm.connections == 1  # no reconnect after the SIGTERM
    assert APP_TOKEN not in err and DEFAULT_BOT_TOKEN not in err
    assert code == 0, err
