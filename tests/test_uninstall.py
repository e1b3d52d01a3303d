"""Uninstall means stop (issue 16, item 6): sources paused with their keys deleted, digests
and alerts stopped, scheduled syncs skipped; the data deleted after the grace period by
the scheduler or at once with `journey workspaces purge`; a reinstall within the period
resumes, and says which sources need their keys again."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select, text
from sqlmodel import Session

from journey.ingest import CustomerRecord, Ingestor
from journey.models import Customer, Source, Workspace
from journey.models.installation import SlackInstallation
from journey.models.schedule import AlertRule, DigestSubscription
from journey.schedule.alerts import ensure_default_rules
from journey.schedule.subscriptions import subscribe
from journey.schedule.syncs import due_sources
from journey.secrets import Cipher
from journey.sources.manage import ACTIVE, PAUSED, Credential, add_source
from journey.uninstall import (
    SOURCE_STOPPED,
    UNINSTALLED,
    purge_due,
    purge_workspace,
    resume_workspace,
    stop_workspace,
)
from journey.workspaces import ensure_workspace

FERNET_KEY = "6pSmCH4WSlNM3f2-6tVu8bYd7c4vNXYTmfJkA1XiF6k="
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
GONE, STAYS = "T0GONE", "T0STAYS"


def populate(session: Session, workspace_id: str, cipher: Cipher) -> None:
    ensure_workspace(session, workspace_id)
    add_source(session, workspace_id, "stripe", "shop", Credential("sk_test_key_0001", {}), cipher)
    source = session.exec(select(Source).where(Source.workspace_id == workspace_id)).scalar_one()
    ingestor = Ingestor(session, workspace_id, int(source.id or 0))
    ingestor.customers([CustomerRecord(external_id="c1", name="Ann", email="ann@example.com")])
    subscribe(session, workspace_id, "C0DIGEST", now=NOW - timedelta(days=40))
    paused_by_hand = subscribe(session, workspace_id, "C0QUIET", now=NOW - timedelta(days=40))
    paused_by_hand.status, paused_by_hand.pause_reason = "paused", "paused by U1"
    session.add(paused_by_hand)
    ensure_default_rules(session, workspace_id, now=NOW - timedelta(days=40))
    session.flush()


@pytest.fixture
def cipher() -> Cipher:
    return Cipher([FERNET_KEY])


@pytest.fixture
def two(engine: Engine, cipher: Cipher) -> Engine:
    with Session(engine) as session:
        populate(session, GONE, cipher)
        populate(session, STAYS, cipher)
        session.commit()
    return engine


def counts(engine: Engine, workspace_id: str) -> dict[str, int]:
    from sqlmodel import SQLModel

    found = {}
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if "workspace_id" in table.c:
                n = conn.execute(
                    select(func.count())
                    .select_from(table)
                    .where(table.c.workspace_id == workspace_id)
                ).scalar_one()
                if n:
                    found[table.name] = n
        found["workspace"] = conn.execute(
            select(func.count()).select_from(Workspace).where(Workspace.id == workspace_id)
        ).scalar_one()
    return found


def test_uninstall_pauses_sources_drops_keys_and_stops_digests_and_alerts(two):
    with Session(two) as session:
        stopped = stop_workspace(session, GONE, NOW, grace=timedelta(days=30))
        session.commit()
    assert stopped.sources == ["shop"] and stopped.digests == 1 and stopped.alerts >= 1
    assert stopped.purge_at == NOW + timedelta(days=30)
    with Session(two) as session:
        source = session.exec(select(Source).where(Source.workspace_id == GONE)).scalar_one()
        assert source.credentials is None and source.status == PAUSED
        assert source.last_error == SOURCE_STOPPED
        subs = session.exec(
            select(DigestSubscription).where(DigestSubscription.workspace_id == GONE)
        ).scalars()
        assert {(s.channel_id, s.status) for s in subs} == {
            ("C0DIGEST", "paused"),
            ("C0QUIET", "paused"),
        }
        rules = session.exec(select(AlertRule).where(AlertRule.workspace_id == GONE)).scalars()
        assert all(not r.enabled and r.disabled_reason == UNINSTALLED for r in rules)
        # The other workspace is untouched.
        other = session.exec(select(Source).where(Source.workspace_id == STAYS)).scalar_one()
        assert other.credentials is not None and other.status == ACTIVE
        assert session.get(Workspace, STAYS).uninstalled_at is None
        due = {s.workspace_id for s in due_sources(session, NOW, timedelta(hours=1))}
    assert due == {STAYS}, "an uninstalled workspace's sources are still synced"


def test_scheduled_syncs_need_an_active_installation(two):
    """A workspace whose installation was left inactive (its bot token revoked) is not
    synced; one without any installation row (a single-token bot, the console) is."""
    with Session(two) as session:
        session.add(
            SlackInstallation(
                id=GONE,
                team_id=GONE,
                installed_at=NOW,
                updated_at=NOW,
                is_active=False,
            )
        )
        session.commit()
        due = {s.workspace_id for s in due_sources(session, NOW, timedelta(hours=1))}
    assert due == {STAYS}


def test_a_reinstall_within_the_grace_period_resumes_and_names_the_sources_needing_keys(two):
    with Session(two) as session:
        stop_workspace(session, GONE, NOW)
        session.commit()
    later = NOW + timedelta(days=3)
    with Session(two) as session:
        resumed = resume_workspace(session, GONE, later)
        session.commit()
    assert resumed.was_uninstalled and resumed.need_keys == ["shop"]
    assert resumed.digests == 1 and resumed.alerts >= 1
    with Session(two) as session:
        subs = {
            s.channel_id: s
            for s in session.exec(
                select(DigestSubscription).where(DigestSubscription.workspace_id == GONE)
            ).scalars()
        }
        assert subs["C0DIGEST"].status == "active"
        assert subs["C0DIGEST"].resumed_at is not None  # missed digests are not replayed
        assert subs["C0QUIET"].status == "paused"  # paused by a person: stays paused
        rules = session.exec(select(AlertRule).where(AlertRule.workspace_id == GONE)).scalars()
        assert all(r.enabled for r in rules)
        assert session.get(Workspace, GONE).uninstalled_at is None
        source = session.exec(select(Source).where(Source.workspace_id == GONE)).scalar_one()
        assert source.status == PAUSED and source.credentials is None  # keys re-entered later


def test_the_scheduler_deletes_a_workspace_after_the_grace_period_only(two, monkeypatch):
    before = counts(two, STAYS)
    with Session(two) as session:
        stop_workspace(session, GONE, NOW)
        session.commit()
    monkeypatch.delenv("JOURNEY_PURGE_AFTER_DAYS", raising=False)
    assert purge_due(two, NOW + timedelta(days=29)) == []
    assert counts(two, GONE)["customer"] == 1
    (purged,) = purge_due(two, NOW + timedelta(days=30, seconds=1))
    assert purged.workspace_id == GONE and purged.rows["customer"] == 1
    assert counts(two, GONE) == {"workspace": 0}
    assert counts(two, STAYS) == before, "another workspace lost rows"


def test_the_grace_period_follows_the_setting(two, monkeypatch):
    with Session(two) as session:
        stop_workspace(session, GONE, NOW)
        session.commit()
    monkeypatch.setenv("JOURNEY_PURGE_AFTER_DAYS", "2")
    assert purge_due(two, NOW + timedelta(days=1)) == []
    assert [p.workspace_id for p in purge_due(two, NOW + timedelta(days=2, seconds=1))] == [GONE]


def test_a_reinstalled_workspace_is_never_purged(two):
    with Session(two) as session:
        stop_workspace(session, GONE, NOW)
        session.commit()
    with Session(two) as session:
        resume_workspace(session, GONE, NOW + timedelta(days=1))
        session.commit()
    assert purge_due(two, NOW + timedelta(days=90)) == []
    assert counts(two, GONE)["customer"] == 1


def test_purge_deletes_the_installation_row_and_no_other(two):
    with Session(two) as session:
        for team in (GONE, STAYS):
            session.add(SlackInstallation(id=team, team_id=team, installed_at=NOW, updated_at=NOW))
        session.commit()
    with Session(two) as session:
        purge_workspace(session, GONE)
        session.commit()
    with two.connect() as conn:
        left = conn.execute(text("SELECT id FROM slack_installation")).scalars().all()
    assert left == [STAYS]


def test_cli_purge_asks_first_and_touches_no_other_workspace(journey_cli, monkeypatch, cipher):
    from journey.db import make_engine, upgrade

    code, _, _ = journey_cli("db", "upgrade")
    assert code == 0
    engine = make_engine(monkeypatch_url(monkeypatch))
    upgrade(engine)
    with Session(engine) as session:
        populate(session, GONE, cipher)
        populate(session, STAYS, cipher)
        session.commit()
    before = counts(engine, STAYS)
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    code, out, _ = journey_cli("workspaces", "purge", GONE)
    assert code == 1 and "Nothing deleted" in out
    assert counts(engine, GONE)["customer"] == 1
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    code, out, _ = journey_cli("workspaces", "purge", GONE)
    assert code == 0 and f"Deleted workspace {GONE}" in out
    assert counts(engine, GONE) == {"workspace": 0}
    assert counts(engine, STAYS) == before
    code, out, err = journey_cli("workspaces", "purge", "T0NOBODY", "--yes")
    assert code != 0 and "There is no workspace 'T0NOBODY'" in out + err
    code, out, _ = journey_cli("workspaces")
    assert code == 0 and STAYS in out and GONE not in out
    engine.dispose()


def monkeypatch_url(monkeypatch: pytest.MonkeyPatch) -> str:
    import os

    return os.environ["DATABASE_URL"]


def test_cli_workspaces_lists_when_the_data_of_a_removed_app_goes(journey_cli, monkeypatch, cipher):
    from journey.db import make_engine, upgrade

    engine = make_engine(monkeypatch_url(monkeypatch))
    upgrade(engine)
    with Session(engine) as session:
        populate(session, GONE, cipher)
        stop_workspace(session, GONE, NOW, grace=timedelta(days=30))
        session.commit()
    monkeypatch.setenv("JOURNEY_PURGE_AFTER_DAYS", "30")
    code, out, _ = journey_cli("workspaces")
    assert code == 0 and "app removed; data deleted on 2026-04-01" in out
    engine.dispose()


def test_counts_helper_sees_customers(two):
    """The helper above must see rows, or the 'untouched' checks could not fail."""
    with Session(two) as session:
        assert session.exec(select(func.count()).select_from(Customer)).scalar_one() == 2


# --- through the bot, as Slack sends the events -------------------------------------------


async def test_app_uninstalled_event_stops_the_workspace(tmp_path, monkeypatch, cipher):
    """`app_uninstalled` from Slack (a signed event) stops the workspace at once."""
    import asyncio
    import time

    from fakes.signing import event_callback, signed_headers
    from fakes.slack_api import DEFAULT_BOT_TOKEN, FakeSlack
    from slack_driver import SECRET, bot_client

    from bot.app import build_app
    from bot.commands.service import ReportService
    from bot.config import BotSettings
    from bot.deps import Deps
    from journey.db import make_engine, upgrade

    monkeypatch.setenv("JOURNEY_SECRET_KEY", FERNET_KEY)
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    upgrade(engine)
    with FakeSlack() as fake:
        with Session(engine) as session:
            populate(session, fake.team_id, cipher)
            populate(session, STAYS, cipher)
            session.commit()
        settings = BotSettings(
            bot_token=DEFAULT_BOT_TOKEN, signing_secret=SECRET, api_url=fake.api_url
        )
        deps = Deps(service=ReportService(engine), settings=settings)
        app = build_app(settings, engine, deps=deps)
        async with bot_client(app) as http:
            body, ctype = event_callback({"type": "app_uninstalled"}, fake.team_id)
            answer = await http.post(
                "/slack/events", content=body, headers=signed_headers(body, ctype, SECRET)
            )
            assert answer.status_code == 200
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with Session(engine) as session:
                    if session.get(Workspace, fake.team_id).uninstalled_at is not None:
                        break
                await asyncio.sleep(0.05)
    with Session(engine) as session:
        source = session.exec(
            select(Source).where(Source.workspace_id == fake.team_id)
        ).scalar_one()
        assert source.credentials is None and source.status == PAUSED
        other = session.exec(select(Source).where(Source.workspace_id == STAYS)).scalar_one()
        assert other.credentials is not None
    engine.dispose()


async def test_a_reinstall_tells_the_installer_which_sources_need_keys(tmp_path, cipher):
    from fakes.slack_api import DEFAULT_BOT_TOKEN, FakeSlack
    from slack_sdk.oauth.installation_store import Installation
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.install.installations import resume_on_install
    from journey.db import make_engine, upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'again.db'}")
    upgrade(engine)
    with FakeSlack() as fake:
        fake.add_user("U0INSTALLER", is_admin=True)
        with Session(engine) as session:
            populate(session, fake.team_id, cipher)
            stop_workspace(session, fake.team_id, NOW)
            session.commit()
        installation = Installation(
            team_id=fake.team_id, bot_token=DEFAULT_BOT_TOKEN, user_id="U0INSTALLER"
        )
        resumed = await resume_on_install(
            engine, installation, AsyncWebClient(base_url=fake.api_url)
        )
        assert resumed is not None and resumed.need_keys == ["shop"]
        (dm,) = fake.posted("D0INSTALLER")
        assert "Welcome back" in dm.text and "shop" in dm.text
        assert "/journey connect" in dm.text
    engine.dispose()


def test_a_sync_ending_after_the_uninstall_does_not_bring_the_source_back(two, cipher):
    """A sync that was running when the app was removed ends after the keys were deleted:
    the source stays paused, still saying why."""
    from journey.sources.base import Connector, Page, Records, Resource

    with Session(two) as session:
        source_id = int(
            session.exec(select(Source.id).where(Source.workspace_id == GONE)).scalar_one()
        )

    class Uninstalled(Connector):
        kind, service, default_base_url = "stripe", "Stripe", ""
        resources = (Resource("customers", "/customers", cursor_field="id"),)

        def check(self) -> None:
            return None

        def fetch(self, resource, cursor):
            with Session(two) as session:  # the app is removed mid-sync
                stop_workspace(session, GONE, NOW)
                session.commit()
            yield Page([], None)

        def to_records(self, resource, raw):
            return Records()

    from journey.sync import sync_source

    sync_source(two, source_id, cipher=cipher, connector=Uninstalled("x"))
    with Session(two) as session:
        source = session.get(Source, source_id)
        assert source.status == PAUSED and source.last_error == SOURCE_STOPPED
        assert source.credentials is None


async def test_a_single_token_bot_starting_with_a_working_token_resumes_its_workspace(
    tmp_path, cipher
):
    """No install event without OAuth: a bot whose SLACK_BOT_TOKEN works at start is
    installed, so a workspace marked uninstalled is resumed rather than deleted later."""
    from fakes.slack_api import DEFAULT_BOT_TOKEN, FakeSlack

    from bot.listeners.events.lifecycle import resume_token_workspace
    from journey.db import make_engine, upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'token.db'}")
    upgrade(engine)
    with FakeSlack() as fake:
        with Session(engine) as session:
            populate(session, fake.team_id, cipher)
            stop_workspace(session, fake.team_id, NOW)
            session.commit()
        refused = await resume_token_workspace("xoxb-not-a-token", fake.api_url, engine)
        assert refused is None
        with Session(engine) as session:
            assert session.get(Workspace, fake.team_id).uninstalled_at is not None
        resumed = await resume_token_workspace(DEFAULT_BOT_TOKEN, fake.api_url, engine)
        assert resumed is not None and resumed.was_uninstalled
        assert resumed.need_keys == ["shop"]
    with Session(engine) as session:
        assert session.get(Workspace, fake.team_id).uninstalled_at is None
    assert purge_due(engine, NOW + timedelta(days=90)) == []
    engine.dispose()
