"""bot/guard in front of Bolt: limits, the signature on raw bytes, then the body's shape.

These drive the ASGI app in-process; tests/test_guard_server.py does the same
against a real `journey serve` on a local port (sizes, slow senders, /healthz).
"""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from fakes.signing import FORM, JSON, signed_headers, slash_command
from fakes.slack_api import DEFAULT_BOT_TOKEN, FakeSlack

from bot.app import build_app
from bot.config import BotSettings
from bot.guard import Limits, guard
from bot.guard.middleware import shape_problem
from bot.guard.signature import Signature
from bot.server import asgi_app
from journey.db import make_engine, upgrade

SECRET = "guard-signing-secret"
NESTED = b"[" * 100_000 + b"]" * 100_000


@pytest.fixture
async def http(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    upgrade(engine)
    with FakeSlack() as fake:
        settings = BotSettings(
            bot_token=DEFAULT_BOT_TOKEN, signing_secret=SECRET, api_url=fake.api_url
        )
        transport = httpx.ASGITransport(app=asgi_app(build_app(settings, engine)))
        async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
            client.fake = fake  # type: ignore[attr-defined]
            yield client
    engine.dispose()


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (b"[1]", JSON),
        (b"null", JSON),
        (b"1", JSON),
        (b'"text"', JSON),
        (NESTED, JSON),
        (b"{" + b'"a":' * 1 + b"[" * 100_000, JSON),
        (b"payload=%5B1%5D", FORM),
        (b"payload=null", FORM),
        (b"payload=" + b"%5B" * 50_000, FORM),
        (b"payload=%7Bnot+json", FORM),
        (b"\xff\xfe\x00garbage", FORM),
        (b"\xff\xfe\x00garbage", JSON),
    ],
)
async def test_signed_bodies_bolt_cannot_route_get_a_plain_400_and_one_log_line(
    http, caplog, body, ctype
):
    with caplog.at_level(logging.DEBUG):
        response = await http.post(
            "/slack/events", content=body, headers=signed_headers(body, ctype, SECRET)
        )
    assert response.status_code == 400
    assert response.text == "bad request"
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].exc_info is None and "Traceback" not in caplog.text
    assert "refused POST /slack/events" in lines[0].getMessage()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Slack-Request-Timestamp": "0", "X-Slack-Signature": "v0=" + "0" * 64},
        {"X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=1"},
        {"X-Slack-Request-Timestamp": "9" * 40, "X-Slack-Signature": "v0=1"},
        {"X-Slack-Request-Timestamp": "1700000000.5", "X-Slack-Signature": "v0=1"},
    ],
)
async def test_unsigned_stale_or_malformed_headers_get_401_with_one_log_line(http, caplog, headers):
    with caplog.at_level(logging.DEBUG):
        response = await http.post(
            "/slack/events", content=b"[1]", headers={"Content-Type": JSON, **headers}
        )
    assert response.status_code == 401
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "with 401" in warnings[0].getMessage()


async def test_a_signature_over_other_bytes_fails_even_if_the_parsed_form_is_the_same(http):
    """The HMAC is over the raw bytes: re-encoding the same form (`+` for a space
    instead of `%20`) is a different request, as it is for Slack."""
    body, ctype = slash_command(
        "funnel 30d",
        team_id="T1",
        user_id="U1",
        channel_id="C1",
        response_url=http.fake.response_url("x"),
    )
    headers = signed_headers(body, ctype, SECRET)
    assert b"funnel+30d" in body
    response = await http.post(
        "/slack/events", content=body.replace(b"funnel+30d", b"funnel%2030d"), headers=headers
    )
    assert response.status_code == 401


async def test_a_declared_oversized_body_is_refused_unread(tmp_path):
    """413 on Content-Length alone: the app's receive() is never called."""
    reads = 0

    async def receive():
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 1024, "more_body": True}

    async def never(scope, receive, send):
        raise AssertionError("the app must not be reached")

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    app = guard(never, SECRET)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/slack/events",
        "headers": [(b"content-length", str(1024 * 1024 + 1).encode())],
        "client": ("127.0.0.1", 1),
    }
    await app(scope, receive, send)
    assert reads == 0
    assert sent[0]["status"] == 413 and (b"connection", b"close") in sent[0]["headers"]


async def test_an_undeclared_body_is_cut_as_soon_as_it_passes_the_cap():
    reads = 0

    async def receive():
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 64 * 1024, "more_body": True}

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def never(scope, receive, send):
        raise AssertionError("the app must not be reached")

    ts, sig = "1", "v0=0"
    app = guard(never, SECRET, now=lambda: 1.0)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/slack/events",
        "headers": [
            (b"x-slack-request-timestamp", ts.encode()),
            (b"x-slack-signature", sig.encode()),
        ],
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 413
    assert reads == 17  # 16 chunks of 64 KiB fill 1 MiB exactly; the 17th passes it


async def test_a_slow_body_is_cut_at_the_deadline():
    import asyncio

    async def receive():
        await asyncio.sleep(0.2)
        return {"type": "http.request", "body": b"x", "more_body": True}

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def never(scope, receive, send):
        raise AssertionError("the app must not be reached")

    app = guard(never, SECRET, limits=Limits(body_seconds=0.5), now=lambda: 1.0)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/slack/events",
        "headers": [(b"x-slack-request-timestamp", b"1"), (b"x-slack-signature", b"v0=0")],
    }
    loop = asyncio.get_running_loop()
    started = loop.time()
    await app(scope, receive, send)
    assert sent[0]["status"] == 408
    assert loop.time() - started < 1.5


async def test_a_valid_request_reaches_bolt_with_its_body_intact(http):
    body, ctype = slash_command(
        "help", team_id="T1", user_id="U1", channel_id="C1", response_url="http://x/"
    )
    response = await http.post(
        "/slack/events", content=body, headers=signed_headers(body, ctype, SECRET)
    )
    assert response.status_code == 200 and "/journey funnel" in json.dumps(response.json())


def test_signature_follows_slacks_rule_on_raw_bytes():
    sig = Signature(SECRET, now=lambda: 1_700_000_000)
    body = "payload=caf\u00e9".encode()
    headers = signed_headers(body, FORM, SECRET, timestamp=1_700_000_000)
    assert sig.valid(body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])
    assert not sig.valid(body + b" ", "1700000000", headers["X-Slack-Signature"])
    assert sig.headers_problem("1699999699", "v0=1") == "stale timestamp"
    assert sig.headers_problem("1700000300", "v0=1") is None  # within five minutes
    assert SECRET not in repr(sig)


@pytest.mark.parametrize(
    ("body", "ctype", "ok"),
    [
        (b"", FORM, True),
        (b"token=x&team_id=T1&text=funnel", FORM, True),
        (b'{"type":"url_verification"}', JSON, True),
        (b'payload={"type":"block_actions"}', FORM, True),
        (b"[1]", JSON, False),
        (b"payload=[1]", FORM, False),
    ],
)
def test_shape_problem_mirrors_bolts_parsing(body, ctype, ok):
    assert (shape_problem(body, ctype) is None) is ok


def test_uvicorn_takes_the_guard_settings_and_protocol():
    """The options journey serve passes are ones uvicorn knows, with the header-deadline
    protocol (tests/test_guard_server.py shows them at work on a real port)."""
    import uvicorn

    from bot.guard.server import HeaderDeadlineProtocol, server_options

    async def app(scope, receive, send):  # pragma: no cover - never called
        pass

    config = uvicorn.Config(app, **server_options(Limits(max_connections=7)))
    config.load()
    assert config.http_protocol_class is HeaderDeadlineProtocol
    assert config.limit_concurrency == 7
    assert config.timeout_keep_alive == 5
    assert config.h11_max_incomplete_event_size == 16 * 1024
    assert config.timeout_worker_healthcheck == 60


@pytest.mark.parametrize(
    "body",
    [
        b'{"enterprise": 5, "type": "event_callback"}',
        b'{"team": 5}',
        b'{"authorizations": 5}',
        b'{"type": "block_actions", "user": 5, "actions": 7}',
    ],
)
async def test_signed_objects_bolt_cannot_take_apart_get_400_not_500(http, caplog, body):
    """Slack never sends these, but a crash in Bolt's own parsing must still be a plain
    400 and one log line, not uvicorn's 500 and a traceback."""
    with caplog.at_level(logging.DEBUG):
        response = await http.post(
            "/slack/events", content=body, headers=signed_headers(body, JSON, SECRET)
        )
    assert response.status_code == 400 and response.text == "bad request"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert "Traceback" not in caplog.text


def test_the_shared_rate_limit_counts_per_person_in_the_database(engine):
    """journey.command_use.take on SQLite and PostgreSQL: a sliding minute per person and
    workspace, refusals not counted, and rows older than the minute deleted."""
    from sqlalchemy import text

    from journey.command_use import take

    t = 2_000_000_000.0
    assert take(engine, "T1", "U1", t, 2) == 0
    assert take(engine, "T1", "U1", t + 10, 2) == 0
    assert take(engine, "T1", "U1", t + 20, 2) == 40  # the oldest leaves at t + 60
    assert take(engine, "T1", "U2", t + 20, 2) == 0  # another person
    assert take(engine, "T2", "U1", t + 20, 2) == 0  # the same id in another workspace
    assert take(engine, "T1", "U1", t + 59.5, 2) == 0.5
    assert take(engine, "T1", "U1", t + 60.5, 2) == 0
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT used_at_ms FROM command_use ORDER BY used_at_ms"))
        assert [r[0] for r in kept] == [
            int((t + 10) * 1000),
            int((t + 20) * 1000),
            int((t + 20) * 1000),
            int((t + 60.5) * 1000),
        ]
