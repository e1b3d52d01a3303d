"""Encrypted credentials are bound to their rows (issue 16, item 8).

The attack: someone who can write to the database (a restored backup, a shared
PostgreSQL) copies workspace A's encrypted key into workspace B's source row, or A's
bot token into B's installation; it used to decrypt there, so B synced A's store or
B's requests were answered with A's token. Now each value is sealed with its row's
identity and refused elsewhere with a clear error; values stored before binding still
open and are rebound by `journey db upgrade` and at the bot's start.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy import text
from sqlmodel import Session

from bot.install.authorize import DatabaseAuthorize
from bot.install.installations import DatabaseInstallationStore
from journey.models import Source
from journey.secret_rows import bind_legacy, installation_identity, source_identity
from journey.secrets import Cipher, SecretKeyChanged, SecretMisplaced
from journey.sources.manage import Credential, add_source
from journey.sync import sync_source

KEY_A, KEY_B = "sk_test_key_of_workspace_a", "sk_test_key_of_workspace_b"


@pytest.fixture
def cipher() -> Cipher:
    return Cipher([Cipher.generate_key()])


def _two_sources(engine, cipher) -> tuple[int, int]:
    with Session(engine) as session:
        a, _ = add_source(session, "WA", "stripe", "shop", Credential(KEY_A), cipher)
        b, _ = add_source(session, "WB", "stripe", "shop", Credential(KEY_B), cipher)
        session.commit()
        return int(a.id or 0), int(b.id or 0)


def _blob(engine, source_id: int) -> bytes:
    with engine.connect() as conn:
        return bytes(
            conn.execute(
                text("SELECT credentials FROM source WHERE id = :id"), {"id": source_id}
            ).scalar_one()
        )


def _put(engine, source_id: int, blob: bytes) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE source SET credentials = :b WHERE id = :id"), {"b": blob, "id": source_id}
        )


def test_a_credential_swapped_between_workspaces_is_refused(engine, cipher):
    a, b = _two_sources(engine, cipher)
    _put(engine, b, _blob(engine, a))  # A's key now sits in B's row
    with Session(engine) as session:
        source_b = session.get(Source, b)
        with pytest.raises(SecretMisplaced, match="sealed for another row") as refused:
            Credential.of_source(cipher, source_b)
    assert "source:WB:stripe:shop" in str(refused.value)
    assert KEY_A not in str(refused.value)
    # A sync of B stops on it, in words, and never reaches Stripe with A's key.
    reached: list[str] = []

    def factory(source, credential):
        reached.append(credential.secret)
        raise AssertionError("the connector must not be built")

    result = sync_source(engine, b, cipher=cipher, connector=factory)
    assert not result.ok and "another row" in (result.error or "")
    assert reached == []
    # A's own row still opens.
    with Session(engine) as session:
        assert Credential.of_source(cipher, session.get(Source, a)).secret == KEY_A


def test_values_stored_before_binding_still_open_and_are_rebound(engine, cipher):
    a, b = _two_sources(engine, cipher)
    # As an earlier version stored them: the bare JSON, no identity.
    legacy_a = cipher.encrypt(json.dumps({"secret": KEY_A, "settings": {}}))
    legacy_b = cipher.encrypt(json.dumps({"secret": KEY_B, "settings": {}}))
    _put(engine, a, legacy_a)
    _put(engine, b, legacy_b)
    with Session(engine) as session:
        assert Credential.of_source(cipher, session.get(Source, a)).secret == KEY_A
    assert not cipher.is_bound(_blob(engine, a))

    assert bind_legacy(engine, cipher) == 2
    assert bind_legacy(engine, cipher) == 0  # idempotent
    assert cipher.is_bound(_blob(engine, a)) and cipher.is_bound(_blob(engine, b))
    with Session(engine) as session:
        assert Credential.of_source(cipher, session.get(Source, a)).secret == KEY_A
        assert Credential.of_source(cipher, session.get(Source, b)).secret == KEY_B
    # Once rebound, a swap is refused like any other.
    _put(engine, b, _blob(engine, a))
    with Session(engine) as session, pytest.raises(SecretMisplaced):
        Credential.of_source(cipher, session.get(Source, b))


def test_rebinding_leaves_values_of_another_key_alone(engine, cipher, caplog):
    a, _ = _two_sources(engine, cipher)
    foreign = Cipher([Cipher.generate_key()]).encrypt("x")
    _put(engine, a, foreign)
    with caplog.at_level(logging.WARNING):
        assert bind_legacy(engine, cipher) == 0
    assert _blob(engine, a) == foreign
    assert "could not be read" in caplog.text


def _installation(team: str, token: str) -> Installation:
    return Installation(
        app_id="A1",
        enterprise_id=None,
        team_id=team,
        bot_token=token,
        bot_id="B1",
        bot_user_id="U1",
        bot_scopes=["commands"],
        user_id="U0",
        installed_at=1_700_000_000.0,
    )


def test_a_bot_token_swapped_between_installations_is_refused(engine, cipher, caplog):
    store = DatabaseInstallationStore(engine, cipher)
    asyncio.run(store.async_save(_installation("T0A", "xoxb-token-of-a")))
    asyncio.run(store.async_save(_installation("T0B", "xoxb-token-of-b")))
    with engine.begin() as conn:
        token_a = conn.execute(
            text("SELECT bot_token FROM slack_installation WHERE id = 'T0A'")
        ).scalar_one()
        conn.execute(
            text("UPDATE slack_installation SET bot_token = :t WHERE id = 'T0B'"), {"t": token_a}
        )
    with pytest.raises(SecretMisplaced, match="slack_installation:T0B:bot_token"):
        asyncio.run(store.find(None, "T0B"))
    # Bolt's authorize answers "not installed" and logs why, never with A's token.
    with caplog.at_level(logging.ERROR, logger="bot.install.authorize"):
        result = asyncio.run(DatabaseAuthorize(store).authorize(enterprise_id=None, team_id="T0B"))
    assert result is None
    assert "another row" in caplog.text and "xoxb-token-of-a" not in caplog.text
    found = asyncio.run(store.find(None, "T0A"))
    assert found is not None and found.bot_token == "xoxb-token-of-a"


def test_the_token_and_refresh_token_columns_cannot_be_swapped(cipher):
    token = cipher.encrypt("xoxe.xoxb-1", bound_to=installation_identity("T1", "bot_token"))
    with pytest.raises(SecretMisplaced):
        cipher.decrypt(token, bound_to=installation_identity("T1", "bot_refresh_token"))
    assert cipher.decrypt(token, bound_to=installation_identity("T1", "bot_token")) == "xoxe.xoxb-1"


def test_a_bound_value_needs_its_identity_and_the_key(cipher):
    sealed = cipher.encrypt("secret", bound_to=source_identity("W", "stripe", "s"))
    with pytest.raises(SecretMisplaced):
        cipher.decrypt(sealed)  # no identity given: never opened blindly
    with pytest.raises(SecretKeyChanged):
        Cipher([Cipher.generate_key()]).decrypt(
            sealed, bound_to=source_identity("W", "stripe", "s")
        )
    # The identity is inside the authenticated ciphertext, not beside it.
    assert b"stripe" not in sealed


def test_journey_db_upgrade_binds_what_earlier_versions_stored(journey_cli, tmp_path, monkeypatch):
    key = Cipher.generate_key()
    monkeypatch.setenv("JOURNEY_SECRET_KEY", key)
    cipher = Cipher([key])
    assert journey_cli("db", "upgrade")[0] == 0
    from journey.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    a, _ = _two_sources(engine, cipher)
    _put(engine, a, cipher.encrypt(json.dumps({"secret": KEY_A, "settings": {}})))
    code, out, err = journey_cli("db", "upgrade")
    assert code == 0, err
    assert "Bound 1 stored secret(s) to their rows." in out
    assert cipher.is_bound(_blob(engine, a))
    engine.dispose()
