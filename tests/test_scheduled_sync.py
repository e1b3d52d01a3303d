"""Scheduled syncs (journey/schedule/syncs.py, bot/posting/loop.py): which sources are due,
each claimed by one replica however many race, failures undone, and the bot's loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from fakes.slack_api import DEFAULT_BOT_TOKEN, FakeSlack
from sqlalchemy import Engine
from sqlmodel import Session

from bot.config import BotSettings
from bot.posting.delivery import PauseTeller, static_token
from bot.posting.loop import run_sync_loop, start_scheduler, sync_interval, sync_tick
from journey.db import make_engine
from journey.errors import JourneyError
from journey.ingest import CustomerRecord
from journey.models import Source
from journey.schedule.alerts import ensure_default_rules
from journey.schedule.syncs import PausedSource, due_sources, pause_notices, run_due_syncs
from journey.secrets import Cipher
from journey.sources.base import Connector, Page, Raw, Records, Resource
from journey.sources.http import AuthError, SourceError
from journey.sources.manage import Credential, add_source
from journey.workspaces import ensure_workspace
from tests.conftest import NOW

KEY = Cipher.generate_key()
HOUR = timedelta(hours=1)


@pytest.fixture
def cipher() -> Cipher:
    return Cipher([KEY])


class FakeConnector(Connector):
    """One page of one customer per sync; `fail` raises instead."""

    kind = "toy"
    service = "Toy"
    default_base_url = "memory://"
    resources = (Resource("customers", "/customers"),)

    def __init__(self, name: str, fail: Exception | None = None, pause: float = 0.0) -> None:
        super().__init__("secret")
        self.name, self.fail, self.pause = name, fail, pause

    def fetch(self, resource: Resource, cursor: str | None) -> Iterator[Page]:
        if self.pause:
            time.sleep(self.pause)
        if self.fail is not None:
            raise self.fail
        yield Page([{"id": f"{self.name}-1"}], "done")

    def to_records(self, resource: Resource, raw: Sequence[Raw]) -> Records:
        return Records(customers=[CustomerRecord(r["id"], name=r["id"]) for r in raw])


class Factory:
    """The connector factory run_due_syncs passes on to sync_source; records every sync."""

    def __init__(self, fail: dict[str, Exception] | None = None, pause: float = 0.0) -> None:
        self.fail, self.pause = fail or {}, pause
        self.synced: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, source: Source, credential: Credential) -> Connector:
        with self.lock:
            self.synced.append(source.name)
        return FakeConnector(source.name, self.fail.get(source.name), self.pause)


def connected(
    engine: Engine,
    cipher: Cipher,
    name: str,
    *,
    workspace: str = "acme",
    last_sync_at: datetime | None = None,
    status: str = "active",
    kind: str = "stripe",
) -> int:
    with Session(engine, expire_on_commit=False) as session:
        source, _ = add_source(session, workspace, kind, name, Credential("sk_test"), cipher)
        source.last_sync_at = last_sync_at
        source.status = status
        session.add(source)
        session.commit()
        return int(source.id or 0)


def imported(engine: Engine, name: str, kind: str, workspace: str = "acme") -> None:
    with Session(engine) as session:
        ensure_workspace(session, workspace)
        session.add(Source(workspace_id=workspace, kind=kind, name=name, created_at=NOW))
        session.commit()


def last_sync(engine: Engine, source_id: int) -> datetime | None:
    with Session(engine) as session:
        source = session.get(Source, source_id)
        assert source is not None
        return source.last_sync_at


# --- which sources are due -----------------------------------------------------------


def test_due_sources_are_the_active_connected_ones_not_synced_within_the_interval(engine, cipher):
    connected(engine, cipher, "never")
    connected(engine, cipher, "stale", last_sync_at=NOW - 2 * HOUR)
    connected(engine, cipher, "just-due", last_sync_at=NOW - HOUR)
    connected(engine, cipher, "fresh", last_sync_at=NOW - timedelta(minutes=59))
    connected(engine, cipher, "paused", status="paused")
    connected(engine, cipher, "removed", status="removed")
    connected(engine, cipher, "crm", kind="hubspot", workspace="globex")
    imported(engine, "orders.csv", "csv")
    imported(engine, "demo", "demo")

    with Session(engine) as session:
        due = due_sources(session, NOW, HOUR)
    # never-synced ones first (any workspace), then the longest waiting
    assert [s.name for s in due][:2] in (["never", "crm"], ["crm", "never"])
    assert [s.name for s in due][2:] == ["stale", "just-due"]

    with Session(engine) as session:
        assert [s.name for s in due_sources(session, NOW, 3 * HOUR)] in (
            ["never", "crm"],
            ["crm", "never"],
        )


def test_a_workspace_scoped_tick_syncs_only_that_workspaces_sources(engine, cipher):
    connected(engine, cipher, "shop", workspace="local")
    other = connected(engine, cipher, "crm", kind="hubspot", workspace="globex")
    with Session(engine) as session:
        assert [s.name for s in due_sources(session, NOW, HOUR, "local")] == ["shop"]
    factory = Factory()
    run_due_syncs(engine, NOW, HOUR, "r1", cipher=cipher, connector=factory, workspace_id="local")
    assert factory.synced == ["shop"] and last_sync(engine, other) is None


def test_the_console_syncs_its_sources_and_says_what_came(engine, cipher, monkeypatch):
    from bot.console import ConsoleSyncs

    monkeypatch.setenv("JOURNEY_SECRET_KEY", KEY)
    connected(engine, cipher, "shop", workspace="local")
    connected(engine, cipher, "old", workspace="local")
    connected(engine, cipher, "crm", kind="hubspot", workspace="globex")
    factory = Factory(fail={"old": AuthError("Stripe refused the API key (HTTP 401).")})
    said: list[str] = []
    syncs = ConsoleSyncs(engine, "local", said.append, 3600, lambda: NOW, connector=factory)

    syncs.step()
    assert sorted(factory.synced) == ["old", "shop"]  # not globex's
    assert any(line.startswith("(scheduled sync) shop (stripe): 1 records read") for line in said)
    paused = [line for line in said if "old (stripe) is paused" in line]
    assert len(paused) == 1 and "refused the API key" in paused[0]
    # nothing new and the paused source skipped: nothing more is said
    said.clear()
    syncs.clock = lambda: NOW + 2 * HOUR
    syncs.step()
    assert said == []


def test_a_tick_syncs_the_due_sources_and_leaves_them_fresh(engine, cipher):
    never = connected(engine, cipher, "never")
    stale = connected(engine, cipher, "stale", last_sync_at=NOW - 2 * HOUR)
    fresh = connected(engine, cipher, "fresh", last_sync_at=NOW - timedelta(minutes=5))
    connected(engine, cipher, "paused", status="paused")
    imported(engine, "orders.csv", "csv")
    factory = Factory()

    run = run_due_syncs(engine, NOW, HOUR, "r1", cipher=cipher, connector=factory)

    assert sorted(factory.synced) == ["never", "stale"]
    assert [r.ok for r in run.results] == [True, True] and not run.lost and not run.failed
    # a success records its finish time (the real clock here) as the last sync
    for source_id in (never, stale):
        at = last_sync(engine, source_id)
        assert at is not None and at > NOW - HOUR
    assert last_sync(engine, fresh) == NOW - timedelta(minutes=5)
    # the synced ones are not due again within the interval
    factory.synced.clear()
    later = datetime.now(UTC) + timedelta(minutes=30)
    run_due_syncs(engine, later, HOUR, "r1", cipher=cipher, connector=factory)
    assert "never" not in factory.synced and "stale" not in factory.synced


def test_a_failed_sync_gives_its_claim_back_and_the_others_still_run(engine, cipher):
    before = NOW - 2 * HOUR
    down = connected(engine, cipher, "down", last_sync_at=before)
    refused = connected(engine, cipher, "refused", last_sync_at=before)
    broken = connected(engine, cipher, "broken")
    fine = connected(engine, cipher, "fine", last_sync_at=before)
    factory = Factory(
        fail={
            "down": SourceError("Toy is down (HTTP 503)."),
            "refused": AuthError("Toy refused the key."),
            "broken": RuntimeError("a bug"),
        }
    )

    run = run_due_syncs(engine, NOW, HOUR, "r1", cipher=cipher, connector=factory)

    assert sorted(factory.synced) == ["broken", "down", "fine", "refused"]
    assert run.failed == [broken]
    assert [r.source for r in run.synced] == ["fine"]
    # the failures' last success is what it was, not the claim
    assert last_sync(engine, down) == before
    assert last_sync(engine, refused) == before
    assert last_sync(engine, broken) is None
    assert last_sync(engine, fine) != before
    # still due: the next tick tries the outage again; the refused credential is paused
    factory.synced.clear()
    run_due_syncs(engine, NOW, HOUR, "r1", cipher=cipher, connector=factory)
    assert sorted(factory.synced) == ["broken", "down"]


# --- replicas racing -----------------------------------------------------------------


def test_two_replicas_racing_sync_each_source_once(engine, cipher):
    ids = {
        connected(engine, cipher, f"shop{i}", last_sync_at=None if i % 2 else NOW - 2 * HOUR): i
        for i in range(6)
    }
    factory = Factory(pause=0.05)  # syncs overlap the other replica's claims
    other = make_engine(engine.url.render_as_string(hide_password=False))
    barrier = threading.Barrier(2)
    runs: dict[str, object] = {}

    def replica(name: str, eng: Engine) -> None:
        barrier.wait()
        runs[name] = run_due_syncs(eng, NOW, HOUR, name, cipher=cipher, connector=factory)

    try:
        threads = [
            threading.Thread(target=replica, args=("r1", engine)),
            threading.Thread(target=replica, args=("r2", other)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    finally:
        other.dispose()

    assert Counter(factory.synced) == {f"shop{i}": 1 for i in range(6)}
    r1, r2 = runs["r1"], runs["r2"]
    assert len(r1.synced) + len(r2.synced) == 6  # type: ignore[attr-defined]
    # the race was real: claims were lost (a replica that read the due list late
    # may not even see the sources the other already claimed)
    lost = r1.lost + r2.lost  # type: ignore[attr-defined]
    assert lost and len(lost) == len(set(lost)) and set(lost) <= set(ids)
    assert not r1.failed and not r2.failed  # type: ignore[attr-defined]


# --- the bot's loop ------------------------------------------------------------------


def test_sync_interval_comes_from_the_environment():
    assert sync_interval({}) == 3600
    assert sync_interval({"JOURNEY_SYNC_INTERVAL": "0"}) == 0
    assert sync_interval({"JOURNEY_SYNC_INTERVAL": "900"}) == 900
    with pytest.raises(JourneyError, match="JOURNEY_SYNC_INTERVAL"):
        sync_interval({"JOURNEY_SYNC_INTERVAL": "hourly"})
    with pytest.raises(JourneyError, match="negative"):
        sync_interval({"JOURNEY_SYNC_INTERVAL": "-1"})


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[float, timedelta, str]] = []

    def __call__(self, engine, now, interval, replica, **kwargs):  # type: ignore[no-untyped-def]
        from journey.schedule.syncs import SyncRun

        self.calls.append((time.monotonic(), interval, replica))
        return SyncRun()


async def test_the_sync_loop_runs_at_its_interval(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr("bot.posting.loop.run_due_syncs", recorder)
    task = asyncio.create_task(run_sync_loop(None, 0.05, "loop"))  # type: ignore[arg-type]
    await asyncio.sleep(0.33)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 3 <= len(recorder.calls) <= 8
    assert {(interval, replica) for _, interval, replica in recorder.calls} == {
        (timedelta(seconds=0.05), "loop")
    }
    gaps = [b[0] - a[0] for a, b in zip(recorder.calls, recorder.calls[1:], strict=False)]
    assert min(gaps) >= 0.045


async def test_the_sync_loop_syncs_a_due_source(engine, cipher, monkeypatch):
    source_id = connected(engine, cipher, "shop")
    factory = Factory()
    monkeypatch.setenv("JOURNEY_SECRET_KEY", KEY)
    task = asyncio.create_task(run_sync_loop(engine, 3600, "loop", connector=factory))
    deadline = time.monotonic() + 10
    # The claim alone no longer looks like a sync: wait for the sync's own finish.
    while last_sync(engine, source_id) is None and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    task.cancel()
    assert factory.synced == ["shop"]
    assert last_sync(engine, source_id) is not None


async def test_the_bot_starts_the_sync_loop_on_its_own_interval(monkeypatch, demo_settings):
    recorder = Recorder()
    monkeypatch.setattr("bot.posting.loop.run_due_syncs", recorder)
    monkeypatch.setenv("JOURNEY_SCHEDULER_INTERVAL", "0")
    monkeypatch.setenv("JOURNEY_SYNC_INTERVAL", "0.05")
    task = start_scheduler(demo_settings, None)  # type: ignore[arg-type]
    assert task is not None
    await asyncio.sleep(0.18)
    task.cancel()
    assert len(recorder.calls) >= 2

    monkeypatch.setenv("JOURNEY_SYNC_INTERVAL", "0")
    assert start_scheduler(demo_settings, None) is None  # type: ignore[arg-type]


@pytest.fixture
def demo_settings() -> BotSettings:
    return BotSettings(bot_token="xoxb-test", signing_secret="secret")


# --- a refused credential is told once ----------------------------------------------


def test_a_source_paused_by_a_scheduled_sync_is_told_once_to_who_stored_its_key(
    engine, cipher, monkeypatch
):
    monkeypatch.setenv("JOURNEY_SECRET_KEY", KEY)  # the bot's loop reads it from the environment
    with Session(engine) as session:
        add_source(
            session, "acme", "stripe", "shop", Credential("sk_test"), cipher, added_by="U0ADMIN"
        )
        session.commit()
    connected(engine, cipher, "fine")
    factory = Factory(fail={"shop": AuthError("Stripe refused the API key (HTTP 401).")})
    told: list[PausedSource] = []

    sync_tick(engine, 3600, "r1", NOW, connector=factory, tell=told.append)
    [notice] = told
    assert (notice.workspace_id, notice.name, notice.kind) == ("acme", "shop", "stripe")
    assert notice.user_id == "U0ADMIN" and notice.channel_id is None
    assert "refused the API key" in notice.reason and "paused" in notice.reason
    assert "sk_test" not in repr(notice)

    # Later ticks skip the paused source without calling Stripe, and say nothing more.
    sync_tick(engine, 3600, "r1", NOW + 2 * HOUR, connector=factory, tell=told.append)
    assert len(told) == 1 and factory.synced.count("shop") == 1


def test_without_who_stored_the_key_the_alerts_channel_is_told(engine, cipher):
    connected(engine, cipher, "shop")  # from the CLI: nobody to DM
    with Session(engine) as session:
        ensure_default_rules(session, "acme", channel_id="C0ALERTS")
        session.commit()
    factory = Factory(fail={"shop": AuthError("Stripe refused the API key (HTTP 401).")})
    run = run_due_syncs(engine, NOW, HOUR, "r1", cipher=cipher, connector=factory)
    [notice] = pause_notices(engine, run)
    assert notice.user_id is None and notice.channel_id == "C0ALERTS"


def test_the_pause_notice_reaches_slack_as_a_direct_message(engine, cipher):
    notice = PausedSource(
        "T0JOURNEY", "shop", "stripe", "Stripe refused the API key (HTTP 401).", "U0ADMIN", None
    )
    with FakeSlack() as fake:
        fake.add_user("U0ADMIN", is_admin=True)
        teller = PauseTeller(static_token(DEFAULT_BOT_TOKEN), base_url=fake.api_url)
        assert teller(notice)
        [post] = [c for c in fake.calls if c.method == "chat.postMessage"]
        text = str(post.params)
        assert "paused the Stripe source *shop*" in text and "/journey connect" in text
        assert post.params["channel"].startswith("D")
        # A workspace the bot cannot reach: logged, not raised.
        fake.revoke(DEFAULT_BOT_TOKEN)
        assert teller(notice) is False


def test_a_pause_notice_for_the_alerts_channel_joins_it_first(engine, cipher):
    """Slack never adds the bot to a channel: a public alerts channel is joined once."""
    notice = PausedSource(
        "T0JOURNEY", "shop", "stripe", "Stripe refused the API key (HTTP 401).", None, "C0ALERTS"
    )
    with FakeSlack() as fake:
        teller = PauseTeller(static_token(DEFAULT_BOT_TOKEN), base_url=fake.api_url)
        assert teller(notice)
        assert [c.error for c in fake.calls_to("chat.postMessage")] == ["not_in_channel", None]
        assert fake.last("conversations.join").params["channel"] == "C0ALERTS"
        (post,) = fake.posted("C0ALERTS")
        assert "paused the Stripe source" in post.text
        fake.add_channel("G0PRIVATE", is_private=True, is_member=False)
        private = PausedSource("T0JOURNEY", "shop", "stripe", "401", None, "G0PRIVATE")
        assert teller(private) is False  # cannot join a private channel: logged, not raised


# --- a sync killed mid-way: its claim expires, it never looks synced ------------------


class Killed(BaseException):
    """The process dying mid-sync (SIGKILL, an OOM kill): nothing after it runs, not even
    the release of the claim. A BaseException, so no `except Exception` catches it."""


def claim_of(engine: Engine, source_id: int) -> tuple[datetime | None, str | None]:
    with Session(engine) as session:
        source = session.get(Source, source_id)
        assert source is not None
        return source.sync_claimed_until, source.sync_claimed_by


def test_a_sync_killed_mid_way_never_looks_synced_and_is_retried_once_its_claim_expires(
    engine, cipher
):
    from journey.schedule.syncs import CLAIM

    before = NOW - 2 * HOUR
    shop = connected(engine, cipher, "shop", last_sync_at=before)
    with pytest.raises(Killed):
        run_due_syncs(engine, NOW, HOUR, "r1", cipher=cipher, connector=Factory({"shop": Killed()}))
    # the source does not look synced, and its claim says by whom, until when
    assert last_sync(engine, shop) == before
    assert claim_of(engine, shop) == (NOW + CLAIM, "r1")
    # another replica's tick while the claim lives leaves it alone (the sync may be running)
    factory = Factory()
    run = run_due_syncs(engine, NOW + CLAIM / 2, HOUR, "r2", cipher=cipher, connector=factory)
    assert factory.synced == [] and not run.results
    # the first tick after the expiry syncs it, and releases the claim
    run = run_due_syncs(
        engine, NOW + CLAIM + timedelta(seconds=1), HOUR, "r2", cipher=cipher, connector=factory
    )
    assert factory.synced == ["shop"] and [r.ok for r in run.results] == [True]
    assert last_sync(engine, shop) != before
    assert claim_of(engine, shop) == (None, None)


def test_a_database_outage_during_a_scheduled_sync_is_retried_at_the_next_tick(pg_engine, cipher):
    """PostgreSQL goes away in the middle of a sync (a restart, played by a proxy): the
    sync can record neither its pages nor its error nor the release of its claim. The
    tick survives; the source keeps its last real sync, and is synced once the database
    is back and the claim has expired."""
    from fakes.tcp_proxy import CuttableProxy
    from sqlalchemy import text

    from journey.schedule.syncs import CLAIM

    with pg_engine.begin() as conn:
        conn.execute(text("TRUNCATE workspace RESTART IDENTITY CASCADE"))
    url = pg_engine.url
    proxy = CuttableProxy(url.host or "127.0.0.1", url.port or 5432)
    engine = make_engine(
        url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    )
    try:
        before = NOW - 2 * HOUR
        shop = connected(engine, cipher, "shop", last_sync_at=before)

        class CutMidSync(Factory):
            def __call__(self, source: Source, credential: Credential) -> Connector:
                connector = super().__call__(source, credential)
                if len(self.synced) == 1:
                    proxy.cut()  # the database restarts while the first sync runs
                return connector

        factory = CutMidSync()
        run = run_due_syncs(engine, NOW, HOUR, "r1", cipher=cipher, connector=factory)
        assert run.failed == [shop] and not run.synced
        proxy.restore()
        assert last_sync(engine, shop) == before  # no success that never happened
        run = run_due_syncs(
            engine, NOW + CLAIM + timedelta(seconds=1), HOUR, "r1", cipher=cipher, connector=factory
        )
        assert [r.ok for r in run.results] == [True]
        assert last_sync(engine, shop) != before
    finally:
        proxy.close()
        engine.dispose()
