"""Short outages ridden out: a database restart, a full disk, a read-only file.

Each case as a user and an operator meet it: the answer says what happened and
what to do (never "Something went wrong" with a reference), the log gets one
line per incident (not a traceback per request), reads are retried while the
database restarts, and the pool heals once the cause is gone.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest
from fakes.slack_api import FakeSlack
from fakes.tcp_proxy import CuttableProxy
from sqlalchemy import text

from bot.commands.language import parse
from bot.commands.service import ReportService
from journey.db import make_engine, session_scope, upgrade
from journey.demo import load_demo
from journey.outage import UNREACHABLE, OutageLog, classify


@pytest.fixture(scope="module")
def team() -> str:
    with FakeSlack() as fake:
        return fake.team_id


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory, team) -> Path:
    path = tmp_path_factory.mktemp("outages") / "demo.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with session_scope(engine) as session:
        load_demo(session, team)
    engine.dispose()
    return path


def _copy(demo_file: Path, tmp_path: Path) -> Path:
    path = tmp_path / "journey.db"
    shutil.copy(demo_file, path)
    return path


def _text(reply) -> str:
    return json.dumps(reply.message.payload(), ensure_ascii=False)


# --- a full disk ---------------------------------------------------------------------


def _limit_pages(monkeypatch, pages: int) -> None:
    """Every new SQLite connection may grow the file to `pages` pages only: SQLite's own
    way of saying the disk is full (SQLITE_FULL), as a full disk does."""
    import journey.db as db

    original = db._sqlite_pragmas

    def limited(*args, **kwargs):
        connected = original(*args, **kwargs)

        def hook(dbapi_connection, record):
            connected(dbapi_connection, record)
            dbapi_connection.execute(f"PRAGMA max_page_count={pages}")

        return hook

    monkeypatch.setattr(db, "_sqlite_pragmas", limited)


def _pages(path: Path) -> int:
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        count = conn.execute(text("PRAGMA page_count")).scalar_one()
    engine.dispose()
    return int(count)


def test_the_cli_says_the_disk_is_full_in_words(journey_cli, tmp_path, monkeypatch):
    code, _, err = journey_cli("demo", "--workspace", "one")
    assert code == 0, err
    _limit_pages(monkeypatch, _pages(tmp_path / "cli.db"))
    code, _, err = journey_cli("demo", "--workspace", "two")
    assert code == 2, err
    assert "disk holding the database is full" in err
    assert "unexpected error" not in err and "report it" not in err


def test_a_full_disk_is_told_to_the_slack_user_and_reads_still_answer(
    demo_file, tmp_path, monkeypatch, team, caplog
):
    path = _copy(demo_file, tmp_path)
    _limit_pages(monkeypatch, _pages(path) + 2)
    service = ReportService(make_engine(f"sqlite:///{path}"))
    # Channels set up digests until the file cannot grow any more.
    with caplog.at_level(logging.WARNING):
        replies = []
        for i in range(2000):
            reply = service.schedule_reply(
                team, parse("digest weekly monday 09:00"), f"C{i:08d}", "U0ADMIN", "UTC"
            )
            if "disk is full" in _text(reply):
                replies.append(reply)
                if len(replies) == 3:
                    break
        funnel = service.command_reply(team, parse("funnel"))
    assert len(replies) == 3
    for reply in replies:
        assert "The server's disk is full" in _text(reply) and "tell your admin" in _text(reply)
        assert "Something went wrong" not in _text(reply)
    assert "Funnel" in _text(funnel)
    assert "Traceback" not in caplog.text
    assert len([r for r in caplog.records if "database disk full" in r.getMessage()]) == 1


# --- a read-only file made writable again -------------------------------------------

_READ_ONLY_SCRIPT = """
import json, os, sys
from bot.commands.language import parse
from bot.commands.service import ReportService
from journey.db import make_engine

path, team = sys.argv[1], sys.argv[2]
service = ReportService(make_engine(f"sqlite:///{path}"))
def setting():
    reply = service.schedule_reply(
        team, parse("digest weekly monday 09:00"), "C0GENERAL", "U0ADMIN", "UTC"
    )
    return json.dumps(reply.message.payload())
files = [path + suffix for suffix in ("", "-wal", "-shm") if os.path.exists(path + suffix)]
for f in files:
    os.chmod(f, 0o444)
before = setting()
for f in [path + s for s in ("", "-wal", "-shm") if os.path.exists(path + s)]:
    os.chmod(f, 0o644)
after = setting()
print(json.dumps({"before": before, "after": after}))
"""


def test_a_read_only_file_made_writable_again_works_without_a_restart(demo_file, team):
    """Run as an unprivileged user (root writes to read-only files anyway). The
    connections opened while the file was read-only stay read-only in SQLite: the pool
    must throw them away."""
    folder = Path(tempfile.mkdtemp(prefix="journey-read-only-"))  # reachable by nobody
    try:
        path = _copy(demo_file, folder)
        command = [sys.executable, "-c", textwrap.dedent(_READ_ONLY_SCRIPT), str(path), team]
        if os.getuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running as root without setpriv: cannot make a file read-only")
            for owned in (folder, path):
                os.chown(owned, 65534, 65534)
            command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "The database file is read-only" in result["before"]
    assert "Something went wrong" not in result["before"]
    assert "This channel gets a digest every Monday" in result["after"]


# --- busy: an import holds the write lock -------------------------------------------


def test_a_write_behind_a_long_import_says_busy_after_a_short_wait(demo_file, tmp_path, team):
    path = _copy(demo_file, tmp_path)
    service = ReportService(make_engine(f"sqlite:///{path}"))
    importer = make_engine(f"sqlite:///{path}")
    with importer.connect() as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # what a long import's transaction holds
        started = time.monotonic()
        reply = service.schedule_reply(
            team, parse("digest weekly monday 09:00"), "C0GENERAL", "U0ADMIN", "UTC"
        )
        waited = time.monotonic() - started
        funnel = service.command_reply(team, parse("funnel"))  # reads do not wait (WAL)
        conn.exec_driver_sql("ROLLBACK")
    assert "busy" in _text(reply) and "try again shortly" in _text(reply)
    assert 4 <= waited < 15  # the short busy timeout, not SQLite's 30 s
    assert "Funnel" in _text(funnel)
    assert classify(Exception("x")) is None
    importer.dispose()


# --- a database restart (PostgreSQL) ------------------------------------------------


@pytest.fixture
def pg_through_proxy(pg_engine, team):
    """The test database, reached through a proxy that can play a restart."""
    url = pg_engine.url
    proxy = CuttableProxy(url.host or "127.0.0.1", url.port or 5432)
    engine = make_engine(
        url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    )
    with pg_engine.begin() as conn:
        conn.execute(text("TRUNCATE workspace RESTART IDENTITY CASCADE"))
    with session_scope(pg_engine) as session:
        load_demo(session, team)
    yield engine, proxy
    engine.dispose()
    proxy.close()


def test_reports_ride_out_a_database_restart(pg_through_proxy, team, caplog):
    engine, proxy = pg_through_proxy
    service = ReportService(engine)
    assert "Funnel" in _text(service.command_reply(team, parse("funnel")))  # pool warm
    proxy.cut()
    threading.Timer(3.0, proxy.restore).start()
    results: list[str] = []
    with caplog.at_level(logging.WARNING):
        threads = [
            threading.Thread(
                target=lambda: results.append(_text(service.command_reply(team, parse("churn"))))
            )
            for _ in range(5)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert len(results) == 5
    for result in results:
        assert "Churn" in result, result
    assert "Traceback" not in caplog.text
    unreachable = [r for r in caplog.records if "database unreachable" in r.getMessage()]
    assert len(unreachable) == 1
    assert any("answering again" in r.getMessage() for r in caplog.records)


def test_a_restart_longer_than_the_deadline_is_told_in_words(pg_through_proxy, team, caplog):
    engine, proxy = pg_through_proxy
    service = ReportService(engine, read_deadline=1.5)
    service.command_reply(team, parse("funnel"))
    proxy.cut()
    try:
        with caplog.at_level(logging.WARNING):
            replies = [service.command_reply(team, parse("funnel")) for _ in range(4)]
            setting = service.schedule_reply(
                team, parse("digest weekly monday 09:00"), "C0GENERAL", "U0ADMIN", "UTC"
            )
    finally:
        proxy.restore()
    for reply in [*replies, setting]:
        assert "The database is restarting" in _text(reply), _text(reply)
    assert "Traceback" not in caplog.text and "Something went wrong" not in caplog.text
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1
    assert "Funnel" in _text(service.command_reply(team, parse("funnel")))  # healed


def test_the_outage_log_is_one_line_per_incident_per_minute():
    from journey.outage import Outage

    now = [0.0]
    records: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Catch()
    logging.getLogger("journey.outage").addHandler(handler)
    try:
        log = OutageLog(every=60, clock=lambda: now[0])
        for second in range(0, 130):
            now[0] = float(second)
            log.seen(Outage(UNREACHABLE, "connection refused"))
        log.answered()
    finally:
        logging.getLogger("journey.outage").removeHandler(handler)
    assert records == [
        "database unreachable: connection refused",
        "database still unreachable after 60s (59 more failures): connection refused",
        "database still unreachable after 120s (59 more failures): connection refused",
        "database answering again after 129s (unreachable)",
    ]


def test_no_network_is_said_in_words_naming_the_host():
    """What the CLI prints (journey.cli.main) when a store cannot be reached at all."""
    import httpx

    from journey.outage import network_words

    request = httpx.Request("GET", "https://shop.example.com/admin/api/graphql.json")
    refused = httpx.ConnectError("[Errno 111] Connection refused", request=request)
    words = network_words(RuntimeError("sync failed").with_traceback(None))
    assert words is None
    try:
        try:
            raise refused
        except httpx.ConnectError as exc:
            raise RuntimeError("sync failed") from exc
    except RuntimeError as wrapped:
        words = network_words(wrapped)
    assert words is not None and "Cannot reach shop.example.com" in words
    timeout = httpx.ReadTimeout("timed out", request=request)
    assert "No answer from shop.example.com in time" in (network_words(timeout) or "")
    assert network_words(OSError(101, "Network is unreachable")) is not None
