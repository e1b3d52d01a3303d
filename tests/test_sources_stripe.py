"""The Stripe connector, the shared HTTP layer and the `journey sources` / `journey sync`
commands, against the fake Stripe over real HTTP."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from sqlalchemy import text

from journey.sources.base import Watermark
from journey.sources.http import (
    NO_WAIT,
    AuthError,
    HttpOptions,
    RateLimited,
    RetryPolicy,
    ScopeError,
    Unreachable,
    parse_retry_after,
)
from journey.sources.stripe import (
    StripeConnector,
    charge_records,
    invoice_records,
    refund_records,
    subscription_records,
)
from tests.fakes.stripe_api import DEFAULT_KEY, FakeStripe, populate

FAST = HttpOptions(retry=NO_WAIT, timeout=httpx.Timeout(0.25))


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


def connector(fake: FakeStripe, key: str = DEFAULT_KEY, **kw) -> StripeConnector:
    return StripeConnector(key, base_url=fake.url, http=kw.pop("http", FAST), **kw)


def recording(sleeps: list[float], **kw) -> HttpOptions:
    policy = RetryPolicy(sleep=sleeps.append, **kw)
    return HttpOptions(retry=policy, timeout=httpx.Timeout(0.25))


# --- the HTTP layer -----------------------------------------------------------------------


def test_retry_after_is_honoured_and_backoff_grows_with_jitter(fake_stripe):
    sleeps: list[float] = []
    fake_stripe.fail("429", retry_after="3")
    fake_stripe.fail("500")
    fake_stripe.fail("500")
    fake_stripe.fail("drop")
    c = connector(fake_stripe, http=recording(sleeps, initial=0.5, jitter=1.0))
    c.check()
    assert sleeps[0] == 3.0
    assert 1.0 <= sleeps[1] <= 2.0  # second attempt: 0.5 * 2 + jitter
    assert 2.0 <= sleeps[2] <= 3.0
    assert 4.0 <= sleeps[3] <= 5.0
    assert len(sleeps) == 4


def test_retry_after_as_an_http_date():
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now) == 30.0
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_a_retry_after_longer_than_we_wait_stops_at_once(fake_stripe):
    sleeps: list[float] = []
    fake_stripe.fail("429", retry_after="600")
    with pytest.raises(RateLimited) as info:
        connector(fake_stripe, http=recording(sleeps)).check()
    assert sleeps == []
    assert info.value.retry_after == 600
    assert "It asked to wait 600 s" in str(info.value)


def test_retries_are_bounded_and_end_in_plain_words(fake_stripe):
    fake_stripe.fail("drop", times=10)
    with pytest.raises(Unreachable) as info:
        connector(fake_stripe).check()
    assert str(info.value).startswith("Stripe dropped the connection after 6 tries.")
    fake_stripe.fail("429-type", times=10)
    with pytest.raises(RateLimited):
        connector(fake_stripe).check()
    nowhere = StripeConnector(DEFAULT_KEY, base_url="http://127.0.0.1:1", http=FAST)
    with pytest.raises(Unreachable, match="Stripe could not be reached"):
        nowhere.check()


def test_slow_answers_time_out_and_are_retried(fake_stripe):
    fake_stripe.fail("slow")
    c = connector(fake_stripe)
    c.check()
    assert c.http.requests == 2


def test_stripe_should_retry_false_is_obeyed(fake_stripe, monkeypatch):
    from tests.fakes import stripe_api

    original = stripe_api._Handler._fault

    def no_retry(self, fault, call):
        if fault.kind == "500":
            call.status = 500
            self._send(500, stripe_api.SERVER_ERROR_BODY, headers={"Stripe-Should-Retry": "false"})
            return True
        return original(self, fault, call)

    monkeypatch.setattr(stripe_api._Handler, "_fault", no_retry)
    fake_stripe.fail("500")
    c = connector(fake_stripe)
    with pytest.raises(Unreachable, match="said not to retry"):
        c.check()
    assert c.http.requests == 1
    fake_stripe.fail("409-retry")  # a lock timeout with Stripe-Should-Retry: true is retried
    c.check()


def test_a_wrong_key_and_a_missing_permission_are_told_apart(fake_stripe):
    with pytest.raises(AuthError) as info:
        connector(fake_stripe, "sk_test_wrongwrongwrong0001").check()
    assert not isinstance(info.value, ScopeError)
    assert "wrongwrong" not in str(info.value) and "0001" not in str(info.value)
    fake_stripe.restricted["rk_test_onlycustomers0001"] = {"customers"}
    c = connector(fake_stripe, "rk_test_onlycustomers0001")
    c.check()
    with pytest.raises(ScopeError) as scope:
        list(c.fetch(c.resource("invoices"), None))
    assert scope.value.scope == "rak_invoice_read"
    assert "'rak_invoice_read' permission" in str(scope.value)


def test_the_credential_never_reaches_the_logs(fake_stripe, caplog):
    caplog.set_level(logging.DEBUG)
    fake_stripe.fail_each_request_once()
    populate(fake_stripe, customers=5)
    c = connector(fake_stripe)
    for resource in c.resources[1:]:
        list(c.fetch(resource, None))
    assert "retry" in caplog.text
    assert DEFAULT_KEY not in caplog.text
    assert DEFAULT_KEY not in repr(c)


# --- paging ---------------------------------------------------------------------------------


def test_pages_follow_starting_after_and_the_watermark_moves_only_at_the_end(fake_stripe):
    populate(fake_stripe, customers=12)
    c = connector(fake_stripe, page_size=5)
    pages = list(c.fetch(c.resource("customers"), None))
    assert len(pages) == 3
    marks = [Watermark.load(p.cursor) for p in pages]
    assert [m.in_pass for m in marks] == [True, True, False]
    assert marks[0].since is None and marks[1].since is None  # not moved mid-pass
    newest = max(o["created"] for o in fake_stripe.all("customers"))
    assert marks[-1].since == newest
    calls = fake_stripe.list_calls("customers")
    assert calls[1].param("starting_after") == pages[0].records[-1]["id"]
    assert {r["id"] for p in pages for r in p.records} == set(fake_stripe.objects["customers"])


def test_a_deleted_resume_point_restarts_the_pass(fake_stripe):
    populate(fake_stripe, customers=12)
    c = connector(fake_stripe, page_size=5)
    first = next(iter(c.fetch(c.resource("customers"), None)))
    del fake_stripe.objects["customers"][first.records[-1]["id"]]  # deleted meanwhile
    rest = list(c.fetch(c.resource("customers"), first.cursor))
    ids = {r["id"] for p in rest for r in p.records}
    assert ids == set(fake_stripe.objects["customers"])


def test_the_fake_enforces_stripes_limit(fake_stripe):
    r = httpx.get(
        f"{fake_stripe.url}/v1/customers",
        params={"limit": 101},
        headers={"Authorization": f"Bearer {DEFAULT_KEY}"},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "limit"
    r = httpx.get(f"{fake_stripe.url}/v1/customers")
    assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_request_error"


# --- mapping --------------------------------------------------------------------------------

T = 1767225600


def test_charges_refunds_invoices_and_subscriptions_map_as_documented():
    paid = {"id": "ch_1", "object": "charge", "created": T, "amount": 1000,
            "amount_captured": 1000, "status": "succeeded", "paid": True, "captured": True,
            "customer": "cus_1", "invoice": None}  # fmt: skip
    (event,) = charge_records(paid).events
    assert (event.external_id, event.kind, event.amount_cents) == ("charge:ch_1", "order", 1000)
    assert not charge_records({**paid, "invoice": "in_1"}).events  # money counted by the invoice
    assert not charge_records({**paid, "status": "failed", "paid": False}).events
    assert not charge_records({**paid, "captured": False}).events
    guest = charge_records({**paid, "customer": None,
                            "billing_details": {"email": "A@B.example", "name": "A"}})  # fmt: skip
    assert guest.customers[0].external_id == "guest:a@b.example"
    assert guest.events[0].customer_external_id == "guest:a@b.example"
    assert not charge_records({**paid, "customer": None, "billing_details": {}}).events

    refund = {"id": "re_1", "object": "refund", "created": T + 5, "amount": 300,
              "status": "succeeded", "charge": paid}  # fmt: skip
    (r,) = refund_records(refund).events
    assert (r.kind, r.amount_cents, r.customer_external_id) == ("refund", 300, "cus_1")
    assert not refund_records({**refund, "status": "pending"}).events

    invoice = {"id": "in_1", "object": "invoice", "created": T, "customer": "cus_1",
               "status": "paid", "amount_paid": 2900, "billing_reason": "subscription_cycle",
               "status_transitions": {"paid_at": T + 3600}}  # fmt: skip
    (i,) = invoice_records(invoice).events
    assert (i.kind, i.amount_cents, int(i.occurred_at.timestamp())) == ("renewal", 2900, T + 3600)
    first = invoice_records({**invoice, "billing_reason": "subscription_create"}).events[0]
    assert first.kind == "order"
    assert not invoice_records({**invoice, "amount_paid": 0}).events  # a trial's zero invoice
    assert not invoice_records({**invoice, "status": "open"}).events

    sub = {"id": "sub_1", "object": "subscription", "created": T, "customer": "cus_1",
           "status": "active", "canceled_at": None, "ended_at": None}  # fmt: skip
    assert [e.kind for e in subscription_records(sub).events] == ["subscribe"]
    gone = subscription_records({**sub, "status": "canceled", "canceled_at": T + 50,
                                 "ended_at": T + 99})  # fmt: skip
    assert [e.kind for e in gone.events] == ["subscribe", "cancellation"]
    assert int(gone.events[1].occurred_at.timestamp()) == T + 99
    assert gone.events[1].amount_cents is None
    expired = subscription_records({**sub, "status": "incomplete_expired"})
    assert [e.kind for e in expired.events] == ["subscribe"]


# --- the commands ---------------------------------------------------------------------------


def test_add_list_sync_remove(sources_cli, fake_stripe, monkeypatch, tmp_path, caplog):
    populate(fake_stripe, customers=8)
    monkeypatch.setenv("STRIPE_API_KEY", DEFAULT_KEY)
    code, out, err = sources_cli(
        "sources", "add", "stripe", "--name", "shop", "--key-env", "STRIPE_API_KEY",
        "--base-url", fake_stripe.url,
    )  # fmt: skip
    assert code == 0, err
    assert "Connected stripe source 'shop'" in out
    code, out, _ = sources_cli("sources", "list")
    assert "shop (stripe): active, never synced; 0 customers, 0 events" in out
    code, out, err = sources_cli("sync")
    assert code == 0, err
    assert "shop (stripe):" in out and "new" in out
    code, out, _ = sources_cli("sources", "list")
    assert "shop (stripe): active, last success 20" in out
    assert "13 customers" in out  # 8, one with nothing filled in, 4 guests with an email
    code, out, _ = sources_cli("sync", "shop")
    assert code == 0 and "0 new, 0 changed" in out
    everything = out + err + caplog.text + (tmp_path / "cli.db").read_bytes().decode("latin-1")
    assert DEFAULT_KEY not in everything
    code, out, err = sources_cli("sources", "remove", "shop")
    assert code == 2 and "--keep-data or --delete-data" in err
    code, out, _ = sources_cli("sources", "remove", "shop", "--delete-data")
    assert code == 0 and "13 customers" in out
    code, out, _ = sources_cli("sources", "list")
    assert "No sources" in out


def test_remove_keeping_the_data_deletes_only_the_key(
    sources_cli, fake_stripe, monkeypatch, tmp_path
):
    populate(fake_stripe, customers=3)
    monkeypatch.setenv("SK", DEFAULT_KEY)
    sources_cli(
        "sources",
        "add",
        "stripe",
        "--name",
        "shop",
        "--key-env",
        "SK",
        "--base-url",
        fake_stripe.url,
    )
    sources_cli("sync")
    code, out, _ = sources_cli("sources", "remove", "shop", "--keep-data")
    assert code == 0 and "kept" in out
    from sqlalchemy import create_engine

    eng = create_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    with eng.connect() as conn:
        assert conn.execute(text("SELECT credentials, status FROM source")).one() == (
            None,
            "removed",
        )
        # 3 customers, 1 with nothing filled in, 4 guests
        assert conn.execute(text("SELECT COUNT(*) FROM customer")).scalar_one() == 8
        assert conn.execute(text("SELECT COUNT(*) FROM sync_cursor")).scalar_one() == 0
    eng.dispose()
    code, out, _ = sources_cli("sync")
    assert "No connected sources" in out
    # by name, a removed source says how to bring it back instead of failing on its key
    code, out, _ = sources_cli("sync", "shop")
    assert code == 0 and "skipped: it was removed" in out
    assert "journey sources add stripe --name shop" in out


def test_the_key_comes_from_a_hidden_prompt_or_an_env_var_never_an_argument(
    sources_cli, fake_stripe, monkeypatch
):
    code, _, err = sources_cli("sources", "add", "stripe", DEFAULT_KEY, "--name", "shop")
    assert code == 2  # there is no argument for it
    code, _, err = sources_cli("sources", "add", "stripe", "--name", "shop")
    assert code == 2 and "--key-env" in err  # no terminal to prompt on
    asked: list[str] = []

    def getpass(prompt: str = "") -> str:
        asked.append(prompt)
        return DEFAULT_KEY

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", getpass)
    code, out, err = sources_cli(
        "sources", "add", "stripe", "--name", "shop", "--base-url", fake_stripe.url
    )
    assert code == 0, err
    assert asked and "Stripe secret" in out + err  # the prompt; getpass hid the typing
    assert DEFAULT_KEY not in out + err
    code, _, err = sources_cli("sources", "add", "stripe", "--name", "x", "--key-env", "NOPE_UNSET")
    assert code == 2 and "NOPE_UNSET is not set" in err


def test_a_wrong_key_is_refused_before_it_is_stored(sources_cli, fake_stripe, monkeypatch):
    monkeypatch.setenv("SK", "sk_test_wrongwrongwrong0001")
    code, out, err = sources_cli(
        "sources",
        "add",
        "stripe",
        "--name",
        "shop",
        "--key-env",
        "SK",
        "--base-url",
        fake_stripe.url,
    )
    assert code == 2
    assert "The key was not stored: Stripe refused the API key" in err
    assert "wrongwrong" not in err
    code, out, _ = sources_cli("sources", "list")
    assert "No sources" in out


def test_a_missing_secret_key_says_how_to_make_one(sources_cli, fake_stripe, monkeypatch):
    monkeypatch.delenv("JOURNEY_SECRET_KEY")
    monkeypatch.setenv("SK", DEFAULT_KEY)
    code, _, err = sources_cli("sources", "add", "stripe", "--name", "shop", "--key-env", "SK")
    assert code == 2 and "JOURNEY_SECRET_KEY is not set" in err and "journey secret-key" in err


def test_a_revoked_key_is_reported_and_the_source_paused(sources_cli, fake_stripe, monkeypatch):
    populate(fake_stripe, customers=3)
    monkeypatch.setenv("SK", DEFAULT_KEY)
    sources_cli(
        "sources",
        "add",
        "stripe",
        "--name",
        "shop",
        "--key-env",
        "SK",
        "--base-url",
        fake_stripe.url,
    )
    fake_stripe.revoked.add(DEFAULT_KEY)
    code, out, _ = sources_cli("sync")
    assert code == 1
    assert "shop (stripe): failed: Stripe refused the API key" in out
    code, out, _ = sources_cli("sources", "list")
    assert "shop (stripe): paused, never synced" in out
    assert "last error: Stripe refused the API key" in out
    calls = len(fake_stripe.calls)
    code, out, _ = sources_cli("sync")
    assert code == 0 and "skipped, paused" in out and len(fake_stripe.calls) == calls
    code, _, err = sources_cli("sync", "shop")
    assert code == 2 and "'shop' is paused" in err
