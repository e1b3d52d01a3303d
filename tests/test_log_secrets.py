"""Nothing secret in the logs, even at DEBUG (issue 16, item 5).

The attack: httpx logs every request's full URL at INFO, and the URL of Shopify's
bulk result file carries its signature in the query string: whoever reads the logs
can download every order and customer for days. Here a first Shopify sync runs
through a bulk operation against the fake Shopify with journey's logging at DEBUG,
and neither journey's handler nor a plain handler that sees every record before
journey's filter shows a signed URL, the access token or the encryption key.
"""

from __future__ import annotations

import io
import logging
from urllib.parse import urlsplit

import pytest

from journey import logs
from journey.sync import sync_source
from tests import test_shopify as paged
from tests.fakes.shopify_api import TOKEN
from tests.test_shopify import CIPHER_KEY, connector

cipher = paged.cipher
fake = paged.fake
source_id = paged.source_id


@pytest.fixture
def journey_output(monkeypatch):
    """journey's own log handler at DEBUG (as with JOURNEY_LOG_LEVEL=DEBUG), writing
    into a buffer; the handler, its filter and the library caps are the real ones."""
    monkeypatch.setenv("JOURNEY_LOG_LEVEL", "DEBUG")
    root = logging.getLogger()
    before = root.level
    logs.configure(logging.INFO)
    (handler,) = [h for h in root.handlers if h.get_name() == "journey"]
    buffer = io.StringIO()
    stream = handler.setStream(buffer)
    yield buffer
    handler.setStream(stream)
    root.setLevel(before)


class _Raw(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(f"{record.name} {record.getMessage()}")


@pytest.fixture
def raw_records(journey_output):
    """Every record as it is created, ahead of journey's handler (whose filter rewrites
    records in place for the handlers after it): what any other log set-up would see."""
    into: list[str] = []
    root = logging.getLogger()
    handler = _Raw(into)
    root.handlers.insert(0, handler)
    yield into
    root.removeHandler(handler)


def test_a_bulk_sync_at_debug_logs_no_signed_url_token_or_key(
    engine, fake, source_id, cipher, journey_output, raw_records
):
    made = connector(fake, clock=fake.clock, bulk="always", bulk_batch=10)
    result = sync_source(engine, source_id, cipher=cipher, connector=made)
    assert result.ok, result.error

    downloads = [c for c in fake.calls if c.path.startswith("/bulk-results/")]
    assert downloads, "the sync must have read a bulk result file"
    signed = [op["url"] for op in fake.bulk_ops.values() if op.get("url")]
    assert signed and all("Signature=" in urlsplit(url).query for url in signed), signed

    output = journey_output.getvalue()
    everything = "\n".join(raw_records)  # every record at DEBUG, before any filter
    for text in (output, everything):
        assert TOKEN not in text
        assert CIPHER_KEY not in text
        assert "Signature=" not in text
        for url in signed:
            assert urlsplit(url).query not in text
    # Logging did run at DEBUG: the downloads are there, by path, without their query.
    path = urlsplit(signed[0]).path
    assert f"bulk file GET {fake.url}{path} -> 200" in output
    assert "DEBUG journey.http" in output


def test_httpx_own_line_would_carry_the_signature_and_is_silenced(journey_output):
    """What the cap on httpx prevents, and what the filter does if a line gets through."""
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("httpcore.http11").getEffectiveLevel() == logging.WARNING
    line = 'HTTP Request: GET https://storage.googleapis.com/b/1.jsonl?X-Goog-Signature=abc "200"'
    logging.getLogger("journey.test").warning(line)
    assert "X-Goog-Signature" not in journey_output.getvalue()
    assert "https://storage.googleapis.com/b/1.jsonl?[redacted]" in journey_output.getvalue()


def test_safe_url_drops_credentials_query_and_fragment():
    url = "https://user:secret@store.example:8443/bulk/1.jsonl?sig=abc#part"
    assert logs.safe_url(url) == "https://store.example:8443/bulk/1.jsonl"
