"""Addresses typed in Slack reach public internet addresses only (issue 11, item 9).

A workspace admin types the WooCommerce store's address into the connect modal; without
a guard, `http://127.0.0.1:5432/` or `http://169.254.169.254/` would make journey's
server probe its own network and read the answer back from the error text. The fake
WooCommerce listens on 127.0.0.1, so it stands for such an internal service: a guarded
connector must never reach it, while the operator's `--base-url` (unguarded) still does.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator

import httpx
import pytest

from bot.listeners.views.connect import connect_source
from journey.db import make_engine, session_scope, upgrade
from journey.secrets import Cipher
from journey.sources import net
from journey.sources.http import AddressBlocked, HttpOptions, RetryPolicy
from journey.sources.manage import Credential, add_source, api_sources
from journey.sources.woocommerce import WooCommerceConnector
from journey.sync import sync_source
from tests.fakes.woocommerce_api import KEY, SECRET, FakeWoo, populate

FERNET_KEY = "6pSmCH4WSlNM3f2-6tVu8bYd7c4vNXYTmfJkA1XiF6k="
QUICK = HttpOptions(retry=RetryPolicy(attempts=2, initial=0.0, jitter=0.0), deadline=5.0)


@pytest.fixture
def woo() -> Iterator[FakeWoo]:
    with FakeWoo() as fake:
        populate(fake, customers=3)
        yield fake


@pytest.fixture
def engine(tmp_path, monkeypatch):
    monkeypatch.setenv("JOURNEY_SECRET_KEY", FERNET_KEY)
    made = make_engine(f"sqlite:///{tmp_path / 'guard.db'}")
    upgrade(made)
    yield made
    made.dispose()


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",  # loopback
        "10.1.2.3",  # private
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",  # link-local: cloud metadata
        "100.64.0.1",  # shared (carrier-grade NAT)
        "0.0.0.0",  # unspecified
        "224.0.0.251",  # multicast
        "240.0.0.1",  # reserved
        "::1",
        "fc00::1",  # unique-local
        "fe80::1",  # link-local
        "::",
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:10.0.0.1",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    ],
)
def test_local_private_and_reserved_addresses_are_not_public(address):
    assert not net.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_internet_addresses_are_public(address):
    assert net.is_public(ipaddress.ip_address(address))


def test_connect_from_slack_refuses_a_store_on_the_servers_own_network(engine, woo):
    ok, words = connect_source(
        engine,
        "T1",
        "woocommerce",
        "shop",
        Credential(f"{KEY}:{SECRET}", {"url": woo.url}),
        http=QUICK,
    )
    assert not ok
    assert "public internet addresses" in words and "journey sources add" in words
    assert woo.calls == [], "the server on the private address was reached"
    with session_scope(engine) as session:
        assert api_sources(session, "T1") == []


def test_the_refusal_does_not_say_what_a_name_resolved_to(engine, monkeypatch):
    def resolver(host, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.20.30.40", 443))]

    monkeypatch.setattr(net.socket, "getaddrinfo", resolver)
    ok, words = connect_source(
        engine,
        "T1",
        "woocommerce",
        "shop",
        Credential(f"{KEY}:{SECRET}", {"url": "https://db.internal.example"}),
        http=QUICK,
    )
    assert not ok and "public internet addresses" in words
    assert "10.20.30.40" not in words  # the server's network is not mapped for the asker


def test_a_name_resolving_public_at_the_check_and_private_at_the_request_is_refused(
    engine, woo, monkeypatch
):
    """DNS rebinding: the look-up made for the connection decides, and is connected to."""
    port = int(woo.url.rsplit(":", 1)[1])
    answers = iter(["93.184.215.14", "127.0.0.1", "127.0.0.1", "127.0.0.1"])
    real = socket.getaddrinfo

    def rebinding(host, *args, **kwargs):
        if host == "store.example":
            ip = next(answers)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(net.socket, "getaddrinfo", rebinding)
    ok, words = connect_source(
        engine,
        "T1",
        "woocommerce",
        "shop",
        Credential(f"{KEY}:{SECRET}", {"url": f"https://store.example:{port}"}),
        http=QUICK,
    )
    assert not ok and "public internet addresses" in words
    assert woo.calls == []


def test_the_connection_goes_to_the_address_that_was_checked(woo, monkeypatch):
    """One look-up per connection, and the socket connects to its answer: with loopback
    allowed for this test, a made-up name reaches the fake through the checked address."""
    port = int(woo.url.rsplit(":", 1)[1])
    looked_up: list[str] = []

    def resolver(host, *args, **kwargs):
        looked_up.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(net.socket, "getaddrinfo", resolver)
    monkeypatch.setattr(net, "is_public", lambda ip: True)
    options = HttpOptions(retry=QUICK.retry, guard=True)
    with WooCommerceConnector(
        f"{KEY}:{SECRET}", {"url": f"http://localhost:{port}"}, http=options
    ) as conn:
        conn.check()
    # The name is looked up once; the socket is then opened on the address checked (the
    # standard library turns that literal into a socket address without asking DNS).
    assert looked_up == ["localhost", "127.0.0.1"]
    assert woo.calls, "the fake was not reached at the checked address"


def test_a_guarded_source_is_refused_at_every_sync(engine, woo):
    cipher = Cipher([FERNET_KEY])
    with session_scope(engine) as session:
        source, _ = add_source(
            session,
            "T1",
            "woocommerce",
            "shop",
            Credential(f"{KEY}:{SECRET}", {"url": woo.url}, guarded=True),
            cipher,
        )
        source_id = int(source.id or 0)
    result = sync_source(engine, source_id, cipher=cipher, http=QUICK)
    assert not result.ok and "public internet addresses" in (result.error or "")
    assert woo.calls == []


def test_the_operators_address_stays_free(engine, woo):
    """`journey sources add --url` / `--base-url` and tests: unguarded, so local is fine."""
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
    result = sync_source(engine, source_id, cipher=cipher, http=QUICK)
    assert result.ok, result.error


def test_the_guard_flag_is_sealed_with_the_credential():
    cipher = Cipher([FERNET_KEY])
    row = "source:W1:woocommerce:shop"
    blob = Credential("ck_1:cs_2", {"url": "https://shop.example"}, guarded=True).seal(
        cipher, bound_to=row
    )
    assert Credential.open(cipher, blob, bound_to=row).guarded
    plain = Credential("k", {}).seal(cipher, bound_to=row)
    assert not Credential.open(cipher, plain, bound_to=row).guarded


def test_a_store_error_does_not_quote_the_servers_words():
    from journey.sources.woocommerce import interpret

    leaked = "root:x:0:0:root:/root:/bin/bash"
    answer = httpx.Response(
        400, json={"code": "<secret stuff>", "message": leaked, "data": {"status": 400}}
    )
    error = interpret(answer)
    assert error is not None
    assert leaked not in str(error) and "secret stuff" not in str(error)


def test_addresses_blocked_are_typed_errors_of_the_sources_layer():
    assert issubclass(AddressBlocked, Exception)
