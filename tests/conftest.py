"""Shared fixtures: every store test runs on SQLite and, when
JOURNEY_TEST_DATABASE_URL is set, on PostgreSQL too.

For PostgreSQL a throw-away database is created once per test session (so the
server's own `test` database is never altered), migrated with Alembic, and
emptied between tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from journey.db import make_engine, upgrade

PG_ENV = "JOURNEY_TEST_DATABASE_URL"
# The report pool refuses work that waited 4 s (bot/work/pool.py). On a test machine shared
# with other runs, a report can wait that long behind the previous test's chart; tests of
# the refusal build a pool of their own (tests/test_workload.py).
os.environ.setdefault("JOURNEY_REPORT_MAX_WAIT", "120")
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
TABLES = (
    "command_use",
    "import_claim",
    "export_record",
    "alert_notification",
    "alert_state",
    "alert_rule",
    "digest_delivery",
    "digest_subscription",
    "slack_installation",
    "slack_oauth_state",
    "review_request",
    "customer_journey",
    "journey_event",
    "customer",
    "sync_cursor",
    "source",
    "workspace",
)


def _pg_url() -> str | None:
    url = os.environ.get(PG_ENV, "").strip()
    if not url:
        return None
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[Engine]:
    url = _pg_url()
    if url is None:
        pytest.skip(
            f"PostgreSQL tests need {PG_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test)"
        )
    admin_url = make_url(url)
    name = f"journey_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(admin_url.set(database=name).render_as_string(hide_password=False))
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'journey.db'}")
        upgrade(eng)
        yield eng
        eng.dispose()
        return
    eng = request.getfixturevalue("pg_engine")
    with eng.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    yield eng


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as s:
        yield s


# --- the command line, run in-process ----------------------------------------------------

#: The JOURNEY_SECRET_KEY `sources_cli` runs with (tests that open the CLI's database
#: with a Cipher use it too).
CLI_SECRET_KEY = "6pSmCH4WSlNM3f2-6tVu8bYd7c4vNXYTmfJkA1XiF6k="

CliRun = Callable[..., tuple[int, str, str]]


@pytest.fixture
def journey_cli(tmp_path, monkeypatch, capsys) -> Iterator[CliRun]:
    """`journey ARGS...` in this process, in tmp_path against tmp_path/cli.db, as
    (exit code, stdout, stderr). Settings and engine are read afresh on every call, as
    separate runs of the command would."""
    from journey import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.delenv("JOURNEY_WORKSPACE", raising=False)
    monkeypatch.delenv("JOURNEY_DEBUG", raising=False)

    def invoke(*args: str) -> tuple[int, str, str]:
        cli._state.settings = None
        cli._state.engine = None
        monkeypatch.setattr("sys.argv", ["journey", *args])
        code = 0
        try:
            cli.main()
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    yield invoke
    if cli._state.engine is not None:
        cli._state.engine.dispose()


@pytest.fixture
def sources_cli(journey_cli, monkeypatch) -> CliRun:
    """`journey_cli` set up for `journey sources ...`: an encryption key in the environment,
    and no terminal (a missing key is an error, not a hidden prompt)."""
    monkeypatch.setenv("JOURNEY_SECRET_KEY", CLI_SECRET_KEY)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    return journey_cli


# The scope check (tests/test_slack_scopes.py::test_every_call_the_suite_made_is_covered)
# reads what every other test called through the fake Slack, so it runs last.
LAST = "test_every_call_the_suite_made_is_covered"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.name == LAST)
    config.stash[_COLLECTED] = {item.path.name for item in items}


_COLLECTED = pytest.StashKey[set]()


@pytest.fixture
def collected_modules(request: pytest.FixtureRequest) -> set[str]:
    """The test files this session runs (the scope check asks whether it saw them all)."""
    return request.config.stash.get(_COLLECTED, set())
