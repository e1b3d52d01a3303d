"""A large first sync through a Shopify bulk operation, resumable line by line.

Why: paged queries cost about 7-12 points per order with the journey fields, and
the bucket refills at 50 points a second on standard plans, so a 1M-order store
would take most of a day through pages. A bulk operation (`bulkOperationRunQuery`)
has no cost limit: Shopify runs the query in the background and leaves a JSONL
file (one line per order) at a signed URL.

How it resumes. The connector's cursor for the resource records the operation's
id, the number of JSONL lines already written to the store and the operation's
`createdAt`: `{"bulk": {"id": ..., "line": 12000, "created": <epoch>}}`. The sync
saves it with every batch of lines, so a sync killed while Shopify runs the
operation polls the same operation again, and one killed while reading the file
downloads it again and skips the lines already written. An operation that
failed or expired (its URL lasts 7 days) is started again; re-written lines are
upserts. When the file is read, the cursor becomes an ordinary watermark at the
operation's `createdAt`, and a paged pass from there picks up what changed while
the operation ran.

The file is streamed (never held whole): memory holds one batch of lines, and
one line longer than the client's `max_bytes` (50 MB) stops the read with
`TooLarge` rather than growing without end. Its reads keep the sync's deadline
(journey/sources/net.py), and so does the wait for the operation. The signed URL
is fetched without the access token, which must never reach another host.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import tenacity

from journey.sources import net
from journey.sources.http import (
    Retryable,
    RetryPolicy,
    TooLarge,
    Unreachable,
    _stop_at,
    _stop_on_long_retry_after,
    _Wait,
    parse_retry_after,
)
from journey.sources.shopify.answers import SERVICE, scope_error

log = logging.getLogger(__name__)

DONE = "COMPLETED"
RESTART = frozenset({"FAILED", "CANCELED", "CANCELING", "EXPIRED"})


class Expired(Exception):
    """The operation's file is gone (its signed URL expired): run the operation again."""


@dataclass
class Poller:
    """Waits between status polls: from `first` seconds, growing by half, up to `most`."""

    first: float = 1.0
    most: float = 10.0
    sleep: Callable[[float], None] = time.sleep

    def waits(self) -> Iterator[float]:
        wait = self.first
        while True:
            yield wait
            wait = min(self.most, wait * 1.5 if wait else 0.0)


def failure(op: dict[str, Any]) -> Exception:
    """The error for an operation Shopify gave up on."""
    code = op.get("errorCode")
    if code == "ACCESS_DENIED":
        return scope_error(None)
    return Unreachable(
        f"Shopify's bulk operation for the first sync ended {op.get('status')}"
        f"{' (' + str(code) + ')' if code else ''}; the next sync starts it again.",
        service=SERVICE,
    )


class _Download:
    """One JSONL file read batch by batch, opened again at the line reached when it breaks.

    `given` counts the lines already handed out; a batch is handed out whole or not at all,
    so a download that breaks mid-batch is opened again and reads that batch again from
    its first line, skipping the ones before."""

    def __init__(self, client: httpx.Client, url: str, skip: int, max_line: int) -> None:
        self.client = client
        self.max_line = max_line
        self.url = url
        self.given = skip
        self._stream: contextlib.ExitStack | None = None
        self._lines: Iterator[str] | None = None
        self._line = 0  # lines read from the open stream

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
        self._stream, self._lines = None, None

    def _open(self) -> Iterator[str]:
        self.close()
        stack = contextlib.ExitStack()
        try:
            answer = stack.enter_context(self.client.stream("GET", self.url))
        except httpx.TransportError:
            stack.close()
            raise
        if answer.status_code in (403, 404, 410):
            stack.close()
            raise Expired
        if answer.status_code >= 400:
            stack.close()
            raise Retryable(
                f"answered HTTP {answer.status_code}",
                kind="rate_limit" if answer.status_code == 429 else "server",
                retry_after=parse_retry_after(answer.headers.get("Retry-After")),
            )
        self._stream, self._line = stack, 0
        self._lines = lines(answer.iter_bytes(), self.max_line)
        return self._lines

    def batch(self, size: int) -> tuple[list[dict[str, Any]], int, bool]:
        """The next `size` lines after `given` as objects (child lines, `__parentId`, left
        out), the line number reached, and whether the file ended. Any failure closes the
        stream and comes out as Retryable, for tenacity to try again."""
        try:
            lines = self._lines or self._open()
            rows: list[dict[str, Any]] = []
            line = self.given
            for text in lines:
                if not text.strip():
                    continue
                self._line += 1
                if self._line <= self.given:
                    continue  # handed out before the download broke
                line = self._line
                obj = json.loads(text)
                if isinstance(obj, dict) and "__parentId" not in obj:
                    rows.append(obj)
                if line - self.given >= size:
                    self.given = line
                    return rows, line, False
            self.close()
            self.given = line
            return rows, line, True
        except (httpx.TransportError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            self.close()
            raise Retryable(f"broke off ({type(exc).__name__})", kind="network") from None
        except BaseException:
            self.close()
            raise


def lines(chunks: Iterator[bytes], limit: int) -> Iterator[str]:
    """The text lines of a byte stream, refusing one longer than `limit` bytes (a file
    without line breaks would otherwise be held whole)."""
    buffer = bytearray()
    for chunk in chunks:
        start = len(buffer)
        buffer += chunk
        begin = 0
        found = buffer.find(b"\n", start)
        while found >= 0:
            yield buffer[begin:found].decode("utf-8")
            begin = found + 1
            found = buffer.find(b"\n", begin)
        del buffer[:begin]
        if len(buffer) > limit:
            raise TooLarge(
                f"Shopify's bulk result file has a line longer than {limit // (1024 * 1024)} MB, "
                "more than journey reads at once (JOURNEY_HTTP_MAX_MB); the sync stopped.",
                service=SERVICE,
            )
    if buffer:
        yield buffer.decode("utf-8")


def stream_lines(
    client: httpx.Client,
    url: str,
    skip: int,
    batch: int,
    retry: RetryPolicy,
    max_line: int = 50 * 1024 * 1024,
) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """Batches of JSONL objects after the first `skip` lines, with the line number each
    batch ends on.

    A dropped, truncated or refused download (5xx, 429) is opened again and the lines
    already given are skipped. The retries are tenacity's, with the waits of every other
    request (journey/sources/http.py: exponential backoff with jitter, so the readers of
    one file host do not retry in step, or the host's Retry-After), up to
    `retry.attempts` tries in a row without a batch read: a long file that breaks now and
    then keeps going, one that never answers stops. There is no per-request time limit as
    for a request, because the time a try spends reading good lines is not time waited;
    the sync's deadline (the one in force when this is called) bounds it all.
    """
    download = _Download(client, url, skip, max_line)
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(max(1, retry.attempts))
        | _stop_on_long_retry_after(retry.max_retry_after)
        | _stop_at(net.current_deadline()),
        wait=_Wait(retry),
        retry=tenacity.retry_if_exception_type(Retryable),
        sleep=retry.sleep,
        before_sleep=_log_retry,
        reraise=True,
    )
    try:
        while True:
            try:
                rows, line, done = retrying(download.batch, batch)
            except Retryable:
                tries = retrying.statistics.get("attempt_number", 1)
                raise Unreachable(
                    f"Shopify's bulk result file could not be read whole after {tries} "
                    "tries; the sync resumes where it stopped next time.",
                    service=SERVICE,
                ) from None
            yield rows, line
            if done:
                return
    finally:
        download.close()


def _log_retry(state: tenacity.RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.info(
        "Shopify bulk file %s; trying again in %.1f s",
        exc.reason if isinstance(exc, Retryable) else "failed",
        state.upcoming_sleep,
    )
