"""One store cannot stall the others: answers capped in bytes, requests and syncs bounded
in time, key checks on their own pool (issue 16, item 4).

The hostile stores are the fake WooCommerce's "huge" fault (an answer larger than the
cap, streamed without a length) and its "drip" fault (a whole answer sent one byte at a
time, headers included), over real HTTP.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections.abc import Iterator

import httpx
import pytest

from bot.install.installations import DatabaseInstallationStore
from bot.listeners.views.connect import connect_source
from journey.db import make_engine, session_scope, upgrade
from journey.secrets import Cipher
from journey.sources.http import (
    MB,
    HttpClient,
    HttpOptions,
    RetryPolicy,
    TooLarge,
    Unreachable,
)
from journey.sources.manage import Credential, add_source
from journey.sources.woocommerce import WooCommerceConnector
from journey.sync import sync_source
from tests.fakes.woocommerce_api import KEY, SECRET, FakeWoo, populate

FERNET_KEY = "6pSmCH4WSlNM3f2-6tVu8bYd7c4vNXYTmfJkA1XiF6k="
QUICK = RetryPolicy(attempts=3, initial=0.05, maximum=0.1, jitter=0.0)


@pytest.fixture
def woo() -> Iterator[FakeWoo]:
    with FakeWoo() as fake:
        populate(fake, customers=5)
        yield fake


def connector(fake: FakeWoo, **options: object) -> WooCommerceConnector:
    return WooCommerceConnector(
        f"{KEY}:{SECRET}", {"url": fake.url}, http=HttpOptions(retry=QUICK, **options)
    )


def test_an_answer_past_the_cap_is_refused_naming_the_store_with_bounded_memory(woo):
    woo.huge_bytes = 12 * MB
    woo.fail("huge", times=5)
    tracemalloc.start()
    try:
        with connector(woo, max_bytes=1 * MB) as conn, pytest.raises(TooLarge) as caught:
            conn.check()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert "WooCommerce sent an answer larger than 1 MB" in message
    assert "JOURNEY_HTTP_MAX_MB" in message
    assert peak < 4 * MB, f"peak {peak / MB:.1f} MB while refusing a 12 MB answer"
    # Not retried: the same request brings the same answer.
    assert sum(1 for c in woo.calls if c.fault == "huge") == 1


def test_an_answer_within_the_cap_is_read_as_before(woo):
    with connector(woo, max_bytes=1 * MB) as conn:
        assert conn.check() is None


def test_the_cap_defaults_to_50_mb_and_follows_the_environment(monkeypatch):
    monkeypatch.delenv("JOURNEY_HTTP_MAX_MB", raising=False)
    assert HttpOptions().max_bytes == 50 * MB
    monkeypatch.setenv("JOURNEY_HTTP_MAX_MB", "2")
    assert HttpOptions().max_bytes == 2 * MB
    monkeypatch.setenv("JOURNEY_HTTP_MAX_MB", "lots")
    with pytest.raises(Exception, match="JOURNEY_HTTP_MAX_MB must be a number of megabytes"):
        HttpOptions()


def test_a_server_answering_a_byte_at_a_time_is_dropped_at_the_deadline(woo):
    woo.drip_seconds = 0.25  # well inside the per-read timeout: only a total deadline helps
    woo.fail("drip", times=10)
    started = time.monotonic()
    with (
        connector(woo, deadline=1.5, timeout=httpx.Timeout(5.0)) as conn,
        pytest.raises(Unreachable) as caught,
    ):
        conn.check()
    took = time.monotonic() - started
    assert took < 2.5, f"the check ran {took:.1f} s past a 1.5 s deadline"
    assert "ran out of the time a request may take" in str(caught.value)


def test_the_retry_budget_keeps_the_deadline(woo):
    """A Retry-After longer than the time left ends the retries at once."""
    woo.fail("429", times=10, retry_after="30")
    slept: list[float] = []
    policy = RetryPolicy(attempts=6, sleep=slept.append)
    with (
        WooCommerceConnector(
            f"{KEY}:{SECRET}", {"url": woo.url}, http=HttpOptions(retry=policy, deadline=5.0)
        ) as conn,
        pytest.raises(Exception, match=r"too many requests|time"),
    ):
        conn.check()
    assert slept == [], "waited past the deadline"


def test_a_sync_stops_at_its_deadline_and_says_so(tmp_path, woo, monkeypatch):
    monkeypatch.setenv("JOURNEY_SECRET_KEY", FERNET_KEY)
    engine = make_engine(f"sqlite:///{tmp_path / 'bounds.db'}")
    upgrade(engine)
    cipher = Cipher([FERNET_KEY])
    with session_scope(engine) as session:
        source, _ = add_source(
            session,
            "T1",
            "woocommerce",
            "shop",
            Credential(f"{KEY}:{SECRET}", {"url": woo.url}),
            cipher,
        )
        source_id = int(source.id or 0)
    woo.drip_seconds = 0.25
    woo.fail("drip", times=50)
    started = time.monotonic()
    result = sync_source(
        engine,
        source_id,
        cipher=cipher,
        http=HttpOptions(retry=QUICK, timeout=httpx.Timeout(5.0)),
        deadline=1.5,
    )
    took = time.monotonic() - started
    assert not result.ok and result.error
    assert "time" in result.error
    assert took < 2.5, f"the sync ran {took:.1f} s past a 1.5 s deadline"
    engine.dispose()


def test_a_key_check_at_connect_ends_by_its_deadline(tmp_path, woo, monkeypatch):
    monkeypatch.setenv("JOURNEY_SECRET_KEY", FERNET_KEY)
    engine = make_engine(f"sqlite:///{tmp_path / 'check.db'}")
    upgrade(engine)
    woo.drip_seconds = 0.25
    woo.fail("drip", times=50)
    started = time.monotonic()
    ok, words = connect_source(
        engine,
        "T1",
        "woocommerce",
        "shop",
        Credential(f"{KEY}:{SECRET}", {"url": woo.url}),
        base_url=woo.url,  # the operator's address (a test's): not guarded
        http=HttpOptions(retry=QUICK, timeout=httpx.Timeout(5.0), deadline=1.0),
    )
    assert not ok and "nothing was stored" in words
    assert time.monotonic() - started < 2.0
    engine.dispose()


async def test_six_slow_key_checks_leave_installation_lookups_alone(tmp_path, woo, monkeypatch):
    """Six checks against a store dripping bytes run on their own pool: another
    workspace's installation look-up (asyncio's default pool) answers at once."""
    from bot.work import pool as workers
    from bot.work.pool import CHECKS, in_pool

    monkeypatch.setenv("JOURNEY_SECRET_KEY", FERNET_KEY)
    engine = make_engine(f"sqlite:///{tmp_path / 'pools.db'}")
    upgrade(engine)
    store = DatabaseInstallationStore(engine, Cipher([FERNET_KEY]))
    woo.drip_seconds = 0.5
    woo.fail("drip", times=50)
    # Shrink asyncio's default pool to the size it has on a small server (2 cores: 6).
    loop = asyncio.get_running_loop()
    from concurrent.futures import ThreadPoolExecutor

    default = ThreadPoolExecutor(max_workers=6)
    loop.set_default_executor(default)
    monkeypatch.setattr(workers.CHECK_GATE, "per_workspace", 6)
    options = HttpOptions(retry=QUICK, timeout=httpx.Timeout(5.0), deadline=4.0)
    checks = [
        asyncio.ensure_future(
            in_pool(
                CHECKS,
                connect_source,
                engine,
                "T1",
                "woocommerce",
                f"shop{i}",
                Credential(f"{KEY}:{SECRET}", {"url": woo.url}),
                woo.url,
                options,
            )
        )
        for i in range(6)
    ]
    await asyncio.sleep(0.5)  # the checks are dripping now
    started = time.monotonic()
    assert await store.find(None, "T2") is None
    took = time.monotonic() - started
    assert not any(c.done() for c in checks), "the checks ended before the look-up was tried"
    assert took < 0.5, f"an installation look-up waited {took:.1f} s behind key checks"
    results = await asyncio.gather(*checks)
    assert all(not ok for ok, _ in results)
    default.shutdown(wait=False)
    engine.dispose()


def test_a_second_sync_of_a_running_source_is_skipped_not_run_beside_it(tmp_path, woo, monkeypatch):
    import threading

    monkeypatch.setenv("JOURNEY_SECRET_KEY", FERNET_KEY)
    engine = make_engine(f"sqlite:///{tmp_path / 'busy.db'}")
    upgrade(engine)
    cipher = Cipher([FERNET_KEY])
    with session_scope(engine) as session:
        source, _ = add_source(
            session,
            "T1",
            "woocommerce",
            "shop",
            Credential(f"{KEY}:{SECRET}", {"url": woo.url}),
            cipher,
        )
        source_id = int(source.id or 0)
    woo.drip_seconds = 0.2
    woo.fail("drip", times=1)
    http = HttpOptions(retry=QUICK, timeout=httpx.Timeout(5.0), deadline=1.0)
    first: list = []
    runner = threading.Thread(
        target=lambda: first.append(sync_source(engine, source_id, cipher=cipher, http=http))
    )
    runner.start()
    time.sleep(0.3)
    second = sync_source(engine, source_id, cipher=cipher, http=http)
    runner.join()
    assert second.busy and second.skipped and not second.ok
    assert "already running" in (second.error or "")
    assert not first[0].busy
    engine.dispose()


def test_the_http_client_bounds_every_request_even_without_a_sync():
    """The default deadline is set: a client never runs a request without one."""
    client = HttpClient("X", "http://127.0.0.1:9")
    assert client.options.deadline is not None and client.options.deadline <= 300
    client.close()


def test_slack_syncs_are_admitted_once_per_source_and_per_workspace(tmp_path, monkeypatch):
    """A sync asked while one of the same source runs gets a polite reply, as does a
    workspace already running its share; another workspace is not held up."""
    from bot.commands.service import ReportService, SyncTarget
    from bot.posting.sync_progress import SYNC_GATE, admit

    engine = make_engine(f"sqlite:///{tmp_path / 'admit.db'}")
    upgrade(engine)
    service = ReportService(engine)
    monkeypatch.setattr(SYNC_GATE, "per_workspace", 1)
    shop, crm = SyncTarget(1, "shop", "woocommerce"), SyncTarget(2, "crm", "hubspot")
    first = admit(service, "T1", [shop])
    assert not isinstance(first, str)
    again = admit(service, "T1", [shop])
    assert isinstance(again, str) and "A sync of shop is already running" in again
    other = admit(service, "T1", [crm])
    assert isinstance(other, str) and "already has as many syncs running" in other
    elsewhere = admit(service, "T2", [SyncTarget(3, "store", "stripe")])
    assert not isinstance(elsewhere, str), "another workspace waited on T1's sync"
    first.release()
    elsewhere.release()
    after = admit(service, "T1", [shop, crm])
    assert not isinstance(after, str) and after.targets == [shop, crm]
    after.release()
    engine.dispose()


def test_the_check_gate_refuses_past_its_share_without_waiting():
    from bot.work.pool import Gate

    gate = Gate(per_workspace=2, total=3)
    assert gate.enter("T1") and gate.enter("T1")
    assert not gate.enter("T1"), "a third check of one workspace was let in"
    assert gate.enter("T2")
    assert not gate.enter("T3"), "more checks than the pool holds were let in"
    gate.leave("T1")
    assert gate.enter("T3") and gate.running("T1") == 1


def test_sources_go_through_the_environments_proxy(woo, monkeypatch):
    """HTTP_PROXY is honoured as httpx honours it (an operator behind a proxy can sync),
    on journey's socket layer; a guarded client (an address typed in Slack) never uses it."""
    import threading
    import urllib.request
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Forward(BaseHTTPRequestHandler):
        """A forward proxy for plain http: the request line carries the absolute URL."""

        def do_GET(self) -> None:
            seen.append(self.path)
            request = urllib.request.Request(
                self.path, headers={k: v for k, v in self.headers.items() if k != "Host"}
            )
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(request) as answer:
                body = answer.read()
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    if name.lower() not in ("transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with connector(woo) as conn:
            conn.check()
        assert seen and seen[0].startswith(f"{woo.url}/wp-json/wc/v3/orders")
        assert HttpOptions(guard=True).make_mounts() == {}
    finally:
        proxy.shutdown()
        proxy.server_close()
