"""Answers posted to a response URL survive a slow or failing Slack (issue 18).

The fake Slack's response-URL endpoint (tests/fakes/slack_api.py) keeps Slack's 5 uses and
answers 404 `used_url` / `expired_url` past them; its faults inject the timeouts, 5xx, 429s
and refusals. What the user sees is worked out from the accepted posts with Slack's
`replace_original` rule: a post with it replaces the previous message from that URL.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from fakes.slack_api import RESPONSE_URL, FakeSlack
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.listeners import replies
from bot.posting import respond as respond_mod
from journey.sources.http import RetryPolicy

FAST = respond_mod.ResponsePolicy(
    attempt_timeout=0.5,
    total=10.0,
    backoff=RetryPolicy(attempts=5, initial=0.01, maximum=0.05, jitter=0.01),
)
WORKING = {"text": "Working on your funnel…", "response_type": "ephemeral"}
ANSWER = {"text": "Funnel: 120 visitors, 14 buyers", "response_type": "ephemeral"}


@pytest.fixture(autouse=True)
def fast_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(respond_mod, "POLICY", FAST)
    monkeypatch.setattr(respond_mod, "USES", respond_mod._Uses())


@pytest.fixture
def fake() -> Any:
    with FakeSlack() as fake:
        yield fake


def visible(fake: FakeSlack, name: str) -> list[str | None]:
    """The messages the user sees from response URL `name`, oldest first."""
    shown: list[str | None] = []
    for post in fake.responses.get(name, []):
        if post.replace_original and shown:
            shown[-1] = post.text
        else:
            shown.append(post.text)
    return shown


def send(fake: FakeSlack, name: str, *payloads: tuple[dict[str, Any], bool]) -> list[bool]:
    respond = AsyncRespond(response_url=fake.response_url(name))

    async def main() -> list[bool]:
        return [await replies.safe_respond(respond, p, final=f) for p, f in payloads]

    return asyncio.run(main())


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "journey.bot"]


def test_a_timed_out_answer_is_sent_again_and_shows_once(
    fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fake.response_url("slow")
    # The working note gets through; the answer's first post stalls past the attempt's
    # timeout but still arrives (the fake answers it late), the retry gets through too.
    answer = {**ANSWER, "replace_original": True}
    assert send(fake, "slow", (WORKING, False)) == [True]
    fake.delay(RESPONSE_URL, 1.0, times=1)
    assert send(fake, "slow", (answer, True)) == [True]
    time.sleep(1.2)  # let the stalled post land

    assert len(fake.responses["slow"]) == 3  # working, the late copy, the retry
    assert visible(fake, "slow") == [ANSWER["text"]]
    log = lines(caplog)
    assert log == [log[0]] and "timed out" in log[0] and "retry 1 of 3" in log[0]
    assert all(fake.url not in line and "/response/" not in line for line in caplog.messages)


def test_a_5xx_is_retried_and_the_user_gets_one_answer(
    fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fake.server_error(RESPONSE_URL, 500)

    assert send(fake, "five", (ANSWER, True)) == [True]

    assert [c.status for c in fake.calls_to(RESPONSE_URL)] == [500, 200]
    assert visible(fake, "five") == [ANSWER["text"]]
    assert len(lines(caplog)) == 1 and "HTTP 500" in lines(caplog)[0]


def test_a_dropped_connection_is_retried(fake: FakeSlack) -> None:
    fake.drop(RESPONSE_URL)

    assert send(fake, "dropped", (ANSWER, True)) == [True]
    assert visible(fake, "dropped") == [ANSWER["text"]]


def test_a_429_waits_its_retry_after(fake: FakeSlack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    fake.rate_limit(RESPONSE_URL, retry_after=1)

    started = time.monotonic()
    assert send(fake, "limited", (ANSWER, True)) == [True]

    assert time.monotonic() - started >= 1.0
    assert visible(fake, "limited") == [ANSWER["text"]]
    assert "Retry-After 1s" in lines(caplog)[0] and "in 1.0s" in lines(caplog)[0]


def test_a_retry_after_beyond_the_time_left_gives_up_at_once(
    fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fake.rate_limit(RESPONSE_URL, retry_after=60)

    assert send(fake, "later", (ANSWER, True)) == [False]

    assert len(fake.calls_to(RESPONSE_URL)) == 1
    assert lines(caplog) == [
        "could not send a response after 1 attempt (HTTP 429 ratelimited, Retry-After 60s): "
        "given up"
    ]


@pytest.mark.parametrize("error", ["expired_url", "used_url"])
def test_a_refused_url_is_not_retried_and_logged_once(
    fake: FakeSlack, caplog: pytest.LogCaptureFixture, error: str
) -> None:
    caplog.set_level(logging.INFO)
    if error == "expired_url":
        fake.expire_response_url("gone")
    else:
        fake.fail(RESPONSE_URL, "used_url")

    assert send(fake, "gone", (ANSWER, True)) == [False]

    assert len(fake.calls_to(RESPONSE_URL)) == 1
    assert lines(caplog) == [f"could not send a response (HTTP 404 {error}): not retried"]


def test_retries_never_spend_more_than_five_uses(
    fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert send(fake, "down", (WORKING, False)) == [True]
    fake.server_error(RESPONSE_URL, 503, times=100)

    assert send(fake, "down", ({**ANSWER, "replace_original": True}, True)) == [False]
    # One more answer from the same URL is not even tried: its 5 uses are spent.
    assert send(fake, "down", (ANSWER, True)) == [False]

    assert len(fake.calls_to(RESPONSE_URL)) == 5  # working + the answer + 3 retries
    log = lines(caplog)
    assert sum("retry" in line and "of 3" in line for line in log) == 3
    assert sum("given up" in line for line in log) == 1
    assert log[-1] == "could not send a response: its response URL was already used 5 times"


def test_the_working_note_is_tried_once(fake: FakeSlack) -> None:
    fake.server_error(RESPONSE_URL, 500)

    assert send(fake, "note", (WORKING, False), ({**ANSWER, "replace_original": True}, True)) == [
        False,
        True,
    ]
    assert [c.status for c in fake.calls_to(RESPONSE_URL)] == [500, 200]
    assert visible(fake, "note") == [ANSWER["text"]]
