"""Slack installations, OAuth states and token rotation on SQLite and PostgreSQL.

The refresh endpoint is a tiny stdlib HTTP server that behaves like Slack where
it matters here: each refresh token works exactly once, and reusing one
answers `invalid_refresh_token`. A refresh race therefore fails loudly instead
of passing by luck.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Engine, text
from sqlmodel import SQLModel

from bot.install.authorize import DatabaseAuthorize, single_workspace_authorize
from bot.install.installations import DatabaseInstallationStore
from bot.install.oauth_state import SignedOAuthStateStore
from journey.db import make_engine
from journey.secret_rows import installation_identity
from journey.secrets import Cipher, SecretKeyChanged

CLIENT_ID = "111.222"
CLIENT_SECRET = "client-secret-for-tests"
SIGNING_SECRET = "signing-secret-for-tests"
BOT_TOKEN = "xoxe.xoxb-1-plain-bot-token"
REFRESH_TOKEN = "xoxe-1-plain-refresh-token"


# ---- a fake oauth.v2.access / auth.test --------------------------------------


class FakeSlack:
    """Answers oauth.v2.access (single-use refresh tokens) and auth.test."""

    def __init__(self, delay: float = 0.2) -> None:
        self.delay = delay
        self.valid_refresh_tokens: set[str] = set()
        self.refresh_calls = 0
        self.auth_test_calls = 0
        self.issued: list[str] = []
        self.fail_with: str | None = None
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                params = {k: v[0] for k, v in parse_qs(body).items()}
                status, payload = fake.answer(self.path, params, self.headers)
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                if self.path.endswith("/auth.test"):
                    self.send_header("x-oauth-scopes", "commands,chat:write")
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/"

    def answer(self, path: str, params: dict[str, str], headers) -> tuple[int, dict]:
        if path.endswith("/auth.test"):
            with self._lock:
                self.auth_test_calls += 1
            return 200, {
                "ok": True,
                "url": "https://acme.slack.com/",
                "team": "Acme",
                "team_id": "T1",
                "user": "journey",
                "user_id": "UBOT",
                "bot_id": "B1",
            }
        if not path.endswith("/oauth.v2.access"):
            return 404, {"ok": False, "error": "unknown_method"}
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if headers.get("Authorization") != f"Basic {expected}":
            return 200, {"ok": False, "error": "invalid_client_id"}
        if params.get("grant_type") != "refresh_token":
            return 200, {"ok": False, "error": "invalid_grant_type"}
        with self._lock:
            self.refresh_calls += 1
        # Slow, like a real round trip, so racers really overlap.
        time.sleep(self.delay)
        with self._lock:
            if self.fail_with:
                return 200, {"ok": False, "error": self.fail_with}
            token = params.get("refresh_token", "")
            if token not in self.valid_refresh_tokens:
                return 200, {"ok": False, "error": "invalid_refresh_token"}
            self.valid_refresh_tokens.discard(token)  # single use
            n = len(self.issued) + 1
            access, refresh = f"xoxe.xoxb-1-rotated-{n}", f"xoxe-1-rotated-refresh-{n}"
            self.issued.append(access)
            self.valid_refresh_tokens.add(refresh)
        return 200, {
            "ok": True,
            "app_id": "A1",
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": 43200,
            "token_type": "bot",
            "scope": "commands,chat:write",
            "bot_user_id": "UBOT",
            "team": {"id": "T1", "name": "Acme"},
            "enterprise": None,
            "is_enterprise_install": False,
        }


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


# ---- helpers -----------------------------------------------------------------


@pytest.fixture
def cipher() -> Cipher:
    return Cipher([Cipher.generate_key()])


@pytest.fixture
def store(engine: Engine, cipher: Cipher) -> DatabaseInstallationStore:
    return DatabaseInstallationStore(engine, cipher)


def installation(
    team_id: str | None = "T1",
    *,
    enterprise_id: str | None = None,
    is_enterprise_install: bool = False,
    bot_token: str = BOT_TOKEN,
    refresh_token: str | None = None,
    expires_in: int | None = None,
    user_id: str = "UINSTALLER",
) -> Installation:
    return Installation(
        app_id="A1",
        enterprise_id=enterprise_id,
        enterprise_name="Grid" if enterprise_id else None,
        team_id=team_id,
        team_name="Acme" if team_id else None,
        bot_token=bot_token,
        bot_id="B1",
        bot_user_id="UBOT",
        bot_scopes=["commands", "chat:write"],
        bot_refresh_token=refresh_token,
        bot_token_expires_in=expires_in,
        user_id=user_id,
        is_enterprise_install=is_enterprise_install,
        token_type="bot",
    )


def rotating(expires_in: int = 30 * 60) -> Installation:
    """An installation with token rotation on, expiring inside Bolt's 120-minute window."""
    return installation(refresh_token=REFRESH_TOKEN, expires_in=expires_in)


def raw_row(engine: Engine, key: str = "T1") -> dict:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT * FROM slack_installation WHERE id = :id"), {"id": key}
        ).one_or_none()
    return dict(row._mapping) if row is not None else {}


def second_engine(engine: Engine) -> Engine:
    """Another engine on the same database: what a second replica would have."""
    return make_engine(engine.url.render_as_string(hide_password=False))


def context(is_enterprise_install: bool = False) -> AsyncBoltContext:
    return AsyncBoltContext({"is_enterprise_install": is_enterprise_install})


def authorizer(store: DatabaseInstallationStore, fake: FakeSlack, **kwargs) -> DatabaseAuthorize:
    return DatabaseAuthorize(
        store,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        base_url=fake.base_url,
        **kwargs,
    )


async def authorize_many(auth: DatabaseAuthorize, n: int, team_id: str = "T1") -> list:
    return await asyncio.gather(
        *(
            auth(context=context(), enterprise_id=None, team_id=team_id, user_id="U1")
            for _ in range(n)
        )
    )


# ---- installation store ------------------------------------------------------


def test_save_and_find_round_trip(store: DatabaseInstallationStore):
    asyncio.run(store.async_save(installation()))

    found = asyncio.run(store.async_find_installation(enterprise_id=None, team_id="T1"))
    assert found is not None
    assert found.bot_token == BOT_TOKEN
    assert (found.team_id, found.team_name, found.app_id) == ("T1", "Acme", "A1")
    assert (found.bot_id, found.bot_user_id, found.user_id) == ("B1", "UBOT", "UINSTALLER")
    assert found.bot_scopes == ["commands", "chat:write"]
    assert found.bot_refresh_token is None and found.bot_token_expires_at is None
    assert abs(found.installed_at - time.time()) < 5

    bot = asyncio.run(store.async_find_bot(enterprise_id=None, team_id="T1"))
    assert bot is not None
    assert (bot.bot_token, bot.bot_id, bot.bot_user_id) == (BOT_TOKEN, "B1", "UBOT")

    # Only the installer's installation exists; another user's is not found.
    assert asyncio.run(
        store.async_find_installation(enterprise_id=None, team_id="T1", user_id="UINSTALLER")
    )
    assert (
        asyncio.run(
            store.async_find_installation(enterprise_id=None, team_id="T1", user_id="USOMEONE")
        )
        is None
    )
    assert asyncio.run(store.async_find_bot(enterprise_id=None, team_id="T2")) is None
    assert asyncio.run(store.async_find_bot(enterprise_id=None, team_id=None)) is None


def test_rotating_tokens_round_trip(store: DatabaseInstallationStore):
    asyncio.run(store.async_save(rotating(expires_in=3600)))
    bot = asyncio.run(store.async_find_bot(enterprise_id=None, team_id="T1"))
    assert bot is not None
    assert bot.bot_refresh_token == REFRESH_TOKEN
    assert abs(bot.bot_token_expires_at - (time.time() + 3600)) < 5


def test_tokens_are_encrypted_in_the_database(engine: Engine, store: DatabaseInstallationStore):
    asyncio.run(store.async_save(rotating()))
    row = raw_row(engine)
    for column in ("bot_token", "bot_refresh_token"):
        stored = bytes(row[column])
        assert BOT_TOKEN.encode() not in stored
        assert REFRESH_TOKEN.encode() not in stored
    # Nowhere in the row, in any column.
    flat = repr(row)
    assert BOT_TOKEN not in flat and REFRESH_TOKEN not in flat
    assert "plain" not in flat
    bound = installation_identity(row["id"], "bot_token")
    assert store.cipher.decrypt(bytes(row["bot_token"]), bound_to=bound) == BOT_TOKEN


def test_wrong_key_is_a_clear_error(engine: Engine, store: DatabaseInstallationStore, caplog):
    asyncio.run(store.async_save(installation()))
    other = DatabaseInstallationStore(engine, Cipher([Cipher.generate_key()]))
    with pytest.raises(SecretKeyChanged, match="the secret key changed"):
        asyncio.run(other.async_find_bot(enterprise_id=None, team_id="T1"))
    # Authorize turns it into "not installed" and says why in the log, without the token.
    with caplog.at_level(logging.ERROR, logger="bot.install.authorize"):
        result = asyncio.run(DatabaseAuthorize(other).authorize(enterprise_id=None, team_id="T1"))
    assert result is None
    assert "the secret key changed" in caplog.text
    assert BOT_TOKEN not in caplog.text


def test_reinstall_overwrites_the_row(engine: Engine, store: DatabaseInstallationStore):
    asyncio.run(store.async_save(installation()))
    asyncio.run(store.async_save(installation(bot_token="xoxb-second", user_id="UOTHER")))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM slack_installation")).scalar() == 1
    found = asyncio.run(store.async_find_installation(enterprise_id=None, team_id="T1"))
    assert found is not None
    assert (found.bot_token, found.user_id) == ("xoxb-second", "UOTHER")
    assert raw_row(engine)["token_version"] == 2


def test_save_bot_keeps_the_installer(engine: Engine, store: DatabaseInstallationStore):
    asyncio.run(store.async_save(installation()))
    bot = asyncio.run(store.async_find_bot(enterprise_id=None, team_id="T1"))
    assert bot is not None
    bot.bot_token = "xoxb-saved-by-bolt"
    asyncio.run(store.async_save_bot(bot))
    found = asyncio.run(store.async_find_installation(enterprise_id=None, team_id="T1"))
    assert found is not None
    assert (found.bot_token, found.user_id) == ("xoxb-saved-by-bolt", "UINSTALLER")


def test_revoked_token_marks_inactive_and_reinstall_reactivates(
    engine: Engine, store: DatabaseInstallationStore
):
    asyncio.run(store.async_save(rotating()))
    asyncio.run(store.mark_inactive("T1"))
    row = raw_row(engine)
    assert row["is_active"] in (False, 0)
    assert row["bot_token"] is None and row["bot_refresh_token"] is None
    assert asyncio.run(store.async_find_bot(enterprise_id=None, team_id="T1")) is None
    assert asyncio.run(store.async_find_installation(enterprise_id=None, team_id="T1")) is None
    assert asyncio.run(DatabaseAuthorize(store).authorize(enterprise_id=None, team_id="T1")) is None

    asyncio.run(store.async_save(installation(bot_token="xoxb-after-reinstall")))
    bot = asyncio.run(store.async_find_bot(enterprise_id=None, team_id="T1"))
    assert bot is not None and bot.bot_token == "xoxb-after-reinstall"
    assert raw_row(engine)["is_active"] in (True, 1)
    # Unknown teams are a no-op, not an error.
    asyncio.run(store.mark_inactive("T404"))


def test_delete_bot_is_the_revocation_path(engine: Engine, store: DatabaseInstallationStore):
    asyncio.run(store.async_save(installation()))
    asyncio.run(store.async_delete_bot(enterprise_id=None, team_id="T1"))
    assert asyncio.run(store.async_find_bot(enterprise_id=None, team_id="T1")) is None
    assert raw_row(engine)["installer_user_id"] == "UINSTALLER"  # history kept


def test_deleting(engine: Engine, store: DatabaseInstallationStore):
    asyncio.run(store.async_save(installation("T1")))
    asyncio.run(store.async_save(installation("T2")))

    # A user's tokens revoked: we keep no user tokens, so the bot stays.
    asyncio.run(
        store.async_delete_installation(enterprise_id=None, team_id="T1", user_id="UINSTALLER")
    )
    assert asyncio.run(store.async_find_bot(enterprise_id=None, team_id="T1")) is not None

    asyncio.run(store.async_delete_installation(enterprise_id=None, team_id="T1"))
    assert raw_row(engine, "T1") == {}
    asyncio.run(store.async_delete_all(enterprise_id=None, team_id="T2"))
    assert raw_row(engine, "T2") == {}
    asyncio.run(store.async_delete_all(enterprise_id=None, team_id="T404"))


def test_org_wide_install_is_keyed_by_enterprise(engine: Engine, store: DatabaseInstallationStore):
    asyncio.run(
        store.async_save(installation(None, enterprise_id="E1", is_enterprise_install=True))
    )
    assert raw_row(engine, "E1")["is_enterprise_install"] in (True, 1)
    # Requests from any workspace of the org find it.
    bot = asyncio.run(
        store.async_find_bot(enterprise_id="E1", team_id="T7", is_enterprise_install=True)
    )
    assert bot is not None and bot.is_enterprise_install
    assert asyncio.run(store.async_find_bot(enterprise_id="E1", team_id="T7")) is not None
    result = asyncio.run(
        DatabaseAuthorize(store).authorize(
            enterprise_id="E1", team_id="T7", is_enterprise_install=True
        )
    )
    # The workspace is the org (the installation's key), never the payload's team T7.
    assert result is not None and result.bot_token == BOT_TOKEN
    assert (result.enterprise_id, result.team_id) == ("E1", None)
    # A workspace install in the same org is its own row and wins for that workspace.
    asyncio.run(store.async_save(installation("T8", enterprise_id="E1", bot_token="xoxb-t8")))
    bot = asyncio.run(store.async_find_bot(enterprise_id="E1", team_id="T8"))
    assert bot is not None and bot.bot_token == "xoxb-t8"

    asyncio.run(store.async_delete_all(enterprise_id="E1", team_id="T7"))
    assert raw_row(engine, "E1") == {}
    assert raw_row(engine, "T8") != {}


def test_store_repr_and_records_do_not_show_tokens(store: DatabaseInstallationStore):
    asyncio.run(store.async_save(rotating()))
    found = asyncio.run(store.find(None, "T1"))
    assert found is not None
    assert BOT_TOKEN not in repr(found) and REFRESH_TOKEN not in repr(found)
    assert "Cipher(keys=1)" in repr(store.cipher)


def test_migration_matches_the_models(engine: Engine):
    with engine.connect() as conn:
        diffs = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": False}), SQLModel.metadata
        )
    ours = [d for d in diffs if "slack_" in repr(d)]
    assert ours == []


# ---- OAuth state store -------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_state_is_single_use(engine: Engine):
    states = SignedOAuthStateStore(engine, CLIENT_SECRET)
    state = asyncio.run(states.async_issue())
    assert len(state) >= 40
    assert asyncio.run(states.async_consume(state)) is True
    assert asyncio.run(states.async_consume(state)) is False
    assert asyncio.run(states.async_consume("never-issued")) is False
    assert asyncio.run(states.async_consume("")) is False
    assert asyncio.run(states.async_consume("x" * 500)) is False


def test_state_expires(engine: Engine):
    clock = Clock()
    states = SignedOAuthStateStore(engine, CLIENT_SECRET, expiration_seconds=600, clock=clock)
    fresh = asyncio.run(states.async_issue())
    stale = asyncio.run(states.async_issue())
    clock.now += timedelta(seconds=599)
    assert asyncio.run(states.async_consume(fresh)) is True
    clock.now += timedelta(seconds=2)
    assert asyncio.run(states.async_consume(stale)) is False
    # Recording a used state sweeps the expired records away.
    clock.now += timedelta(seconds=1200)
    assert asyncio.run(states.async_consume(asyncio.run(states.async_issue()))) is True
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM slack_oauth_state")).scalar() == 1


def test_state_is_accepted_once_across_replicas(engine: Engine):
    other_engine = second_engine(engine)
    try:
        a = SignedOAuthStateStore(engine, CLIENT_SECRET)
        b = SignedOAuthStateStore(other_engine, CLIENT_SECRET)
        state = asyncio.run(a.async_issue())

        async def race() -> list[bool]:
            return await asyncio.gather(
                *(store.async_consume(state) for store in (a, b, a, b, a, b))
            )

        assert sorted(asyncio.run(race())) == [False] * 5 + [True]
    finally:
        other_engine.dispose()


# ---- authorize and token rotation --------------------------------------------


def test_fake_refresh_tokens_are_single_use(fake_slack: FakeSlack):
    """The fake really punishes a double refresh, so the race tests mean something."""
    fake_slack.valid_refresh_tokens.add(REFRESH_TOKEN)
    client = AsyncWebClient(base_url=fake_slack.base_url, retry_handlers=[])

    async def twice() -> list:
        call = client.oauth_v2_access(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            grant_type="refresh_token",
            refresh_token=REFRESH_TOKEN,
        )
        again = client.oauth_v2_access(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            grant_type="refresh_token",
            refresh_token=REFRESH_TOKEN,
        )
        return await asyncio.gather(call, again, return_exceptions=True)

    results = asyncio.run(twice())
    errors = [r for r in results if isinstance(r, SlackApiError)]
    assert len(errors) == 1
    assert errors[0].response["error"] == "invalid_refresh_token"


def test_authorize_returns_the_stored_token_without_api_calls(
    store: DatabaseInstallationStore, fake_slack: FakeSlack
):
    asyncio.run(store.async_save(rotating(expires_in=6 * 3600)))
    result = asyncio.run(
        authorizer(store, fake_slack)(
            context=context(), enterprise_id=None, team_id="T1", user_id="U1"
        )
    )
    assert result is not None
    assert result.bot_token == BOT_TOKEN
    assert (result.team_id, result.team, result.bot_id, result.bot_user_id) == (
        "T1",
        "Acme",
        "B1",
        "UBOT",
    )
    assert result.bot_scopes == ["commands", "chat:write"]
    assert result.user_id == "U1"
    assert fake_slack.refresh_calls == 0 and fake_slack.auth_test_calls == 0


def test_unknown_team_authorizes_nothing(store: DatabaseInstallationStore, fake_slack: FakeSlack):
    auth = authorizer(store, fake_slack)
    assert asyncio.run(auth.authorize(enterprise_id=None, team_id="T404")) is None
    assert asyncio.run(auth.authorize(enterprise_id=None, team_id=None)) is None


def test_concurrent_requests_refresh_exactly_once(
    engine: Engine, store: DatabaseInstallationStore, fake_slack: FakeSlack
):
    fake_slack.valid_refresh_tokens.add(REFRESH_TOKEN)
    asyncio.run(store.async_save(rotating()))
    version = raw_row(engine)["token_version"]

    results = asyncio.run(authorize_many(authorizer(store, fake_slack), 20))

    assert fake_slack.refresh_calls == 1
    assert {r.bot_token for r in results} == {"xoxe.xoxb-1-rotated-1"}
    row = raw_row(engine)
    assert row["token_version"] == version + 1
    for column, token in (
        ("bot_token", "xoxe.xoxb-1-rotated-1"),
        ("bot_refresh_token", "xoxe-1-rotated-refresh-1"),
    ):
        bound = installation_identity(row["id"], column)
        assert store.cipher.decrypt(bytes(row[column]), bound_to=bound) == token
    assert b"rotated" not in bytes(row["bot_token"]) + bytes(row["bot_refresh_token"])
    assert row["bot_token_expires_at"] > time.time() + 11 * 3600
    # The next request finds a fresh token and calls nobody.
    asyncio.run(authorize_many(authorizer(store, fake_slack), 3))
    assert fake_slack.refresh_calls == 1


def test_two_replicas_refresh_exactly_once(
    engine: Engine, cipher: Cipher, store: DatabaseInstallationStore, fake_slack: FakeSlack
):
    """Two engines, two stores, two authorizers (no shared in-process lock): only the
    database lock stands between them and a double refresh."""
    fake_slack.valid_refresh_tokens.add(REFRESH_TOKEN)
    asyncio.run(store.async_save(rotating()))
    other_engine = second_engine(engine)
    try:
        replica_a = authorizer(store, fake_slack)
        replica_b = authorizer(DatabaseInstallationStore(other_engine, cipher), fake_slack)

        async def both() -> list:
            a, b = await asyncio.gather(authorize_many(replica_a, 8), authorize_many(replica_b, 8))
            return a + b

        results = asyncio.run(both())
    finally:
        other_engine.dispose()
    assert fake_slack.refresh_calls == 1
    assert {r.bot_token for r in results} == {"xoxe.xoxb-1-rotated-1"}


def test_rotation_keeps_going_across_refreshes(
    engine: Engine, store: DatabaseInstallationStore, fake_slack: FakeSlack
):
    fake_slack.valid_refresh_tokens.add(REFRESH_TOKEN)
    asyncio.run(store.async_save(rotating()))
    auth = authorizer(store, fake_slack)
    for n in (1, 2, 3):
        result = asyncio.run(auth.authorize(enterprise_id=None, team_id="T1"))
        assert result is not None and result.bot_token == f"xoxe.xoxb-1-rotated-{n}"
        # Pretend 11 hours passed: the new token is expiring again.
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE slack_installation SET bot_token_expires_at = :t"),
                {"t": int(time.time()) + 600},
            )
    assert fake_slack.refresh_calls == 3


def test_dead_refresh_token_marks_the_installation_inactive(
    engine: Engine, store: DatabaseInstallationStore, fake_slack: FakeSlack, caplog
):
    asyncio.run(store.async_save(rotating()))  # the fake never issued this refresh token
    with caplog.at_level(logging.INFO):
        results = asyncio.run(authorize_many(authorizer(store, fake_slack), 5))
    assert results == [None] * 5
    assert fake_slack.refresh_calls == 1
    assert raw_row(engine)["is_active"] in (False, 0)
    assert "reinstalled" in caplog.text
    assert REFRESH_TOKEN not in caplog.text and BOT_TOKEN not in caplog.text


def test_transient_refresh_failure_keeps_the_valid_token(
    engine: Engine, store: DatabaseInstallationStore, fake_slack: FakeSlack
):
    fake_slack.valid_refresh_tokens.add(REFRESH_TOKEN)
    fake_slack.fail_with = "ratelimited"
    asyncio.run(store.async_save(rotating(expires_in=30 * 60)))
    auth = authorizer(store, fake_slack)
    result = asyncio.run(auth.authorize(enterprise_id=None, team_id="T1"))
    assert result is not None and result.bot_token == BOT_TOKEN
    assert raw_row(engine)["is_active"] in (True, 1)
    # The next request tries again, and succeeds once Slack does.
    fake_slack.fail_with = None
    result = asyncio.run(auth.authorize(enterprise_id=None, team_id="T1"))
    assert result is not None and result.bot_token == "xoxe.xoxb-1-rotated-1"


def test_failed_refresh_of_an_expired_token_authorizes_nothing(
    store: DatabaseInstallationStore, fake_slack: FakeSlack
):
    fake_slack.fail_with = "ratelimited"
    asyncio.run(store.async_save(rotating(expires_in=-60)))
    assert (
        asyncio.run(authorizer(store, fake_slack).authorize(enterprise_id=None, team_id="T1"))
        is None
    )


def test_unreachable_refresh_endpoint_keeps_the_valid_token(store: DatabaseInstallationStore):
    asyncio.run(store.async_save(rotating()))
    auth = DatabaseAuthorize(
        store,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        base_url="http://127.0.0.1:9/api/",  # discard port: nothing listens
        http_timeout=2,
    )
    result = asyncio.run(auth.authorize(enterprise_id=None, team_id="T1"))
    assert result is not None and result.bot_token == BOT_TOKEN


def test_rotation_without_client_credentials_serves_the_token_while_it_lasts(
    store: DatabaseInstallationStore,
):
    asyncio.run(store.async_save(rotating()))
    result = asyncio.run(DatabaseAuthorize(store).authorize(enterprise_id=None, team_id="T1"))
    assert result is not None and result.bot_token == BOT_TOKEN


def test_window_follows_bolt_setting(store: DatabaseInstallationStore, fake_slack: FakeSlack):
    fake_slack.valid_refresh_tokens.add(REFRESH_TOKEN)
    asyncio.run(store.async_save(rotating(expires_in=90 * 60)))
    auth = authorizer(store, fake_slack, token_rotation_expiration_minutes=60)
    assert asyncio.run(auth.authorize(enterprise_id=None, team_id="T1")).bot_token == BOT_TOKEN
    assert fake_slack.refresh_calls == 0
    auth.token_rotation_expiration_minutes = 120
    assert asyncio.run(auth.authorize(enterprise_id=None, team_id="T1")).bot_token != BOT_TOKEN
    assert fake_slack.refresh_calls == 1


def test_a_cancelled_waiter_does_not_keep_the_lock(
    engine: Engine, cipher: Cipher, store: DatabaseInstallationStore
):
    """A request cancelled while queued on another replica's lock must not, once
    the lock comes to it, sit on it (the thread finishes; its connection is released)."""
    asyncio.run(store.async_save(rotating()))
    other_engine = second_engine(engine)
    other = DatabaseInstallationStore(other_engine, cipher)

    async def scenario() -> None:
        async def hold_briefly(target: DatabaseInstallationStore) -> None:
            async with target.refresh_lock("T1"):
                pass

        async with store.refresh_lock("T1"):
            waiter = asyncio.create_task(hold_briefly(other))
            await asyncio.sleep(0.3)  # the waiter is now blocked in the database
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
        # Had the waiter's connection kept the lock, these would wait 30 s.
        await asyncio.wait_for(hold_briefly(store), timeout=5)
        await asyncio.wait_for(hold_briefly(other), timeout=5)

    try:
        asyncio.run(scenario())
    finally:
        other_engine.dispose()


# ---- wiring into Bolt --------------------------------------------------------


def signed(body: str) -> dict[str, str]:
    timestamp = str(int(time.time()))
    digest = hmac.new(
        SIGNING_SECRET.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256
    ).hexdigest()
    return {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": timestamp,
        "x-slack-signature": f"v0={digest}",
    }


def test_bolt_app_with_oauth_uses_the_rotating_authorize(
    engine: Engine, store: DatabaseInstallationStore, fake_slack: FakeSlack
):
    fake_slack.valid_refresh_tokens.add(REFRESH_TOKEN)
    asyncio.run(store.async_save(rotating()))
    auth = authorizer(store, fake_slack, token_rotation_expiration_minutes=1)
    seen: list[str] = []

    async def scenario() -> list[int]:
        app = AsyncApp(
            signing_secret=SIGNING_SECRET,
            client=AsyncWebClient(base_url=fake_slack.base_url),
            oauth_settings=AsyncOAuthSettings(
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                scopes=["commands", "chat:write"],
                installation_store=store,
                state_store=SignedOAuthStateStore(engine, CLIENT_SECRET),
            ),
            authorize=auth,
        )
        # Bolt hands the OAuth settings' rotation window to our authorize.
        assert auth.token_rotation_expiration_minutes == 120

        @app.command("/journey")
        async def journey_command(ack, context) -> None:
            await ack()
            seen.append(context.bot_token)

        statuses = []
        for team in ("T1", "T404"):
            body = urlencode(
                {
                    "command": "/journey",
                    "text": "funnel",
                    "team_id": team,
                    "user_id": "U1",
                    "channel_id": "C1",
                    "response_url": f"{fake_slack.base_url}respond",
                    "trigger_id": "1.2.3",
                }
            )
            response = await app.async_dispatch(AsyncBoltRequest(body=body, headers=signed(body)))
            statuses.append(response.status)
        return statuses

    statuses = asyncio.run(scenario())
    assert statuses[0] == 200
    assert seen == ["xoxe.xoxb-1-rotated-1"]
    assert fake_slack.refresh_calls == 1 and fake_slack.auth_test_calls == 0


def test_bolt_revocation_events_reach_the_store(engine: Engine, store: DatabaseInstallationStore):
    from slack_bolt.listener.async_builtins import AsyncTokenRevocationListeners

    asyncio.run(store.async_save(installation()))
    listeners = AsyncTokenRevocationListeners(store)
    ctx = AsyncBoltContext({"team_id": "T1"})
    asyncio.run(
        listeners.handle_tokens_revoked_events({"tokens": {"oauth": ["U9"], "bot": ["B1"]}}, ctx)
    )
    assert raw_row(engine)["is_active"] in (False, 0)
    asyncio.run(listeners.handle_app_uninstalled_events(ctx))
    assert raw_row(engine) == {}


def test_single_workspace_authorize(fake_slack: FakeSlack):
    authorize = single_workspace_authorize(
        "xoxb-fixed", client=AsyncWebClient(base_url=fake_slack.base_url)
    )

    async def twice() -> list:
        return [await authorize(context=AsyncBoltContext()) for _ in range(2)]

    first, second = asyncio.run(twice())
    assert first is second
    assert (first.bot_token, first.bot_id, first.bot_user_id, first.team_id) == (
        "xoxb-fixed",
        "B1",
        "UBOT",
        "T1",
    )
    assert first.bot_scopes == ["commands", "chat:write"]
    assert fake_slack.auth_test_calls == 1
