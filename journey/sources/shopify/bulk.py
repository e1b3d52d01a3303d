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

The file is streamed (never held whole): memory holds one batch of lines. The
signed URL is fetched without the access token, which must never reach another
host.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from journey.sources.http import RetryPolicy, Unreachable
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


def stream_lines(
    client: httpx.Client,
    url: str,
    skip: int,
    batch: int,
    retry: RetryPolicy,
) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """Batches of JSONL objects after the first `skip` lines, with the line number each
    batch ends on. A dropped or truncated download is opened again and the lines
    already given are skipped, up to `retry.attempts` times."""
    attempts = 0
    while True:
        try:
            with client.stream("GET", url) as answer:
                if answer.status_code in (403, 404, 410):
                    raise Expired
                if answer.status_code >= 400:
                    raise httpx.HTTPStatusError(
                        "bad status", request=answer.request, response=answer
                    )
                line = 0
                rows: list[dict[str, Any]] = []
                for text in answer.iter_lines():
                    if not text.strip():
                        continue
                    line += 1
                    if line <= skip:
                        continue
                    obj = json.loads(text)
                    if isinstance(obj, dict) and "__parentId" not in obj:
                        rows.append(obj)
                    if line - skip >= batch:
                        yield rows, line
                        skip, rows = line, []
                yield rows, line
                return
        except (httpx.TransportError, httpx.HTTPStatusError, json.JSONDecodeError) as exc:
            attempts += 1
            if attempts >= max(1, retry.attempts):
                raise Unreachable(
                    f"Shopify's bulk result file could not be read whole after {attempts} "
                    "tries; the sync resumes where it stopped next time.",
                    service=SERVICE,
                ) from None
            wait = min(retry.maximum, retry.initial * 2 ** (attempts - 1))
            log.info("Shopify bulk file: %s; trying again in %.1f s", type(exc).__name__, wait)
            retry.sleep(wait)
