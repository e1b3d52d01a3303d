"""The fake Slack answers the real slack_sdk/Bolt clients the way Slack does.

Why these tests exist: the bot's own tests trust FakeSlack to fail where Slack fails
(scopes, limits, rate limits, spent response URLs, reused refresh tokens). If the fake
drifted into accepting what Slack rejects, the bot's tests would pass against a
friendlier Slack than production. Everything here goes through real HTTP with the
clients the bot uses.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fakes import signing
from fakes import slack_api as fakes_slack_api
from fakes.slack_api import (
    DEFAULT_BOT_TOKEN,
    DEFAULT_TEAM_ID,
    MAX_MESSAGE_BLOCKS,
    RESPONSE_URL,
    FakeSlack,
    block_errors,
)
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import (
    FixedValueRetryIntervalCalculator,
    RateLimitErrorRetryHandler,
    builtin_async_handlers,
    builtin_handlers,
)
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.oauth.installation_store import Bot
from slack_sdk.oauth.token_rotation import TokenRotator
from slack_sdk.oauth.token_rotation.rotator import SlackTokenRotationError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

# The shared fixture, exactly as a conftest would expose it.
fake_slack = fakes_slack_api.fake_slack
# Channels these tests post in, with the bot invited (Slack never adds it by itself).
MEMBER_OF = ("C1", "C2", "C0REPORTS")


@pytest.fixture(autouse=True)
def _bot_invited(request: pytest.FixtureRequest) -> None:
    if "fake_slack" in request.fixturenames:
        fake = request.getfixturevalue("fake_slack")
        for channel in MEMBER_OF:
            fake.add_channel(channel)


SECRET = "fake-signing-secret"


class Clock:
    """A clock tests move by hand, so expiry and rate windows need no sleeping."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(text: str = "Go", action_id: str = "go", **extra: Any) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        **extra,
    }


def api_error(excinfo: pytest.ExceptionInfo[SlackApiError]) -> str:
    return excinfo.value.response["error"]


# ------------------------------------------------------------------ basic messaging


def test_web_client_posts_a_message_that_is_recorded(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()

    response = client.chat_postMessage(channel="C0REPORTS", text="Funnel ready")

    assert response["ok"] and response["channel"] == "C0REPORTS"
    assert response["message"]["text"] == "Funnel ready"
    assert "chat:write" in response.headers["X-OAuth-Scopes"].split(",")
    call = fake_slack.last("chat.postMessage")
    assert call.token == DEFAULT_BOT_TOKEN
    assert call.params == {"channel": "C0REPORTS", "text": "Funnel ready"}
    assert call.status == 200 and call.ok
    [message] = fake_slack.posted("C0REPORTS")
    assert (message.text, message.ts) == ("Funnel ready", response["ts"])


def test_token_can_come_as_a_form_param(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()
    client.token = None

    response = client.api_call("auth.test", params={"token": DEFAULT_BOT_TOKEN})

    assert response["team_id"] == DEFAULT_TEAM_ID
    assert fake_slack.last("auth.test").token == DEFAULT_BOT_TOKEN


def test_async_web_client_posts_a_message(fake_slack: FakeSlack) -> None:
    async def main() -> Any:
        client = fake_slack.async_web_client()
        return await client.chat_postMessage(channel="C0REPORTS", text="async hello")

    response = asyncio.run(main())

    assert response["ok"]
    assert [m.text for m in fake_slack.posted()] == ["async hello"]


def test_auth_test_knows_the_token_and_rejects_others(fake_slack: FakeSlack) -> None:
    me = fake_slack.web_client().auth_test()
    assert (me["team_id"], me["user_id"], me["bot_id"]) == (DEFAULT_TEAM_ID, "U0JBOT", "B0JBOT")
    assert me["is_enterprise_install"] is False
    assert me["url"].startswith("https://")

    with pytest.raises(SlackApiError) as bad:
        fake_slack.web_client("xoxb-nobody").auth_test()
    assert api_error(bad) == "invalid_auth"


def test_unknown_method_answers_unknown_method(fake_slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as e:
        fake_slack.web_client().api_call("chat.noSuchThing")
    assert api_error(e) == "unknown_method"


def test_update_delete_and_ephemeral(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()
    posted = client.chat_postMessage(channel="C1", text="v1")

    updated = client.chat_update(channel="C1", ts=posted["ts"], text="v2")
    assert updated["text"] == "v2"
    assert fake_slack.posted("C1")[0].updates == 1

    client.chat_delete(channel="C1", ts=posted["ts"])
    assert fake_slack.posted("C1") == []
    with pytest.raises(SlackApiError) as gone:
        client.chat_update(channel="C1", ts=posted["ts"], text="v3")
    assert api_error(gone) == "message_not_found"

    eph = client.chat_postEphemeral(channel="C1", user="U0ALICE", text="only you")
    assert eph["message_ts"]
    assert [(m.ephemeral_user, m.text) for m in fake_slack.ephemerals] == [("U0ALICE", "only you")]


# ---------------------------------------------------------------- files_upload_v2


def test_files_upload_v2_end_to_end(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()
    chart = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    thread = client.chat_postMessage(channel="C0REPORTS", text="Weekly funnel")

    response = client.files_upload_v2(
        channel="C0REPORTS",
        content=chart,
        filename="funnel.png",
        title="Funnel",
        initial_comment="Here is the chart",
        thread_ts=thread["ts"],
    )

    file_id = response["file"]["id"]
    get_url = fake_slack.last("files.getUploadURLExternal")
    assert get_url.params["filename"] == "funnel.png"
    assert int(get_url.params["length"]) == len(chart)
    assert get_url.response is not None
    assert get_url.response["upload_url"] == f"{fake_slack.url}/upload/{file_id}"
    assert fake_slack.last("upload").params == {"file_id": file_id, "size": len(chart)}
    stored = fake_slack.files[file_id]
    assert stored.data == chart
    assert (stored.title, stored.completed, stored.channels) == ("Funnel", True, ["C0REPORTS"])
    assert stored.thread_ts == thread["ts"]
    share = fake_slack.posted("C0REPORTS")[-1]
    assert (share.text, share.files, share.thread_ts) == (
        "Here is the chart",
        [file_id],
        thread["ts"],
    )


def test_async_files_upload_v2_delivers_the_bytes(fake_slack: FakeSlack) -> None:
    async def main() -> Any:
        client = fake_slack.async_web_client()
        return await client.files_upload_v2(
            channel="C0REPORTS", content=b"a,b\n1,2\n", filename="export.csv"
        )

    response = asyncio.run(main())

    assert fake_slack.files[response["file"]["id"]].data == b"a,b\n1,2\n"


def test_get_upload_url_needs_filename_and_length(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()
    with pytest.raises(SlackApiError) as e:
        client.api_call("files.getUploadURLExternal", params={"filename": "x.png"})
    assert api_error(e) == "invalid_arguments"
    assert "length" in e.value.response["response_metadata"]["messages"][0]


def test_complete_upload_rejects_unknown_files_and_foreign_channels(
    fake_slack: FakeSlack,
) -> None:
    client = fake_slack.web_client()
    with pytest.raises(SlackApiError) as unknown:
        client.files_completeUploadExternal(files=[{"id": "F0NOPE", "title": "x"}])
    assert api_error(unknown) == "file_not_found"

    fake_slack.add_channel("C0OUTSIDE", is_member=False)
    with pytest.raises(SlackApiError) as outside:
        client.files_upload_v2(channel="C0OUTSIDE", content=b"x", filename="x.txt")
    assert api_error(outside) == "not_in_channel"
    # The bytes went up; only the share was refused.
    assert fake_slack.last("upload").status == 200


def test_upload_failure_is_visible_to_the_client(fake_slack: FakeSlack) -> None:
    fake_slack.server_error(fakes_slack_api.UPLOAD, status=500)
    with pytest.raises(Exception, match="500"):
        fake_slack.web_client().files_upload_v2(channel="C1", content=b"x", filename="x.txt")
    assert fake_slack.calls_to("files.completeUploadExternal") == []


# ------------------------------------------------------------- faults and retries


def test_rate_limit_is_retried_by_the_sdk_handler(
    fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(builtin_handlers, "time", SimpleNamespace(sleep=slept.append))
    fake_slack.rate_limit("chat.postMessage", retry_after=3)
    client = fake_slack.web_client(retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])

    response = client.chat_postMessage(channel="C1", text="after the wait")

    assert response["ok"]
    first, second = fake_slack.calls_to("chat.postMessage")
    assert (first.status, first.error, second.status) == (429, "ratelimited", 200)
    assert len(slept) == 1 and 3 <= slept[0] < 4  # honoured Retry-After (+ SDK jitter)
    assert len(fake_slack.posted()) == 1


def test_async_rate_limit_is_retried(
    fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(builtin_async_handlers, "asyncio", SimpleNamespace(sleep=fake_sleep))
    fake_slack.rate_limit("users.info", retry_after=2)
    fake_slack.add_user("U0ALICE")

    async def main() -> Any:
        client = fake_slack.async_web_client(retry_handlers=[AsyncRateLimitErrorRetryHandler()])
        return await client.users_info(user="U0ALICE")

    assert asyncio.run(main())["user"]["id"] == "U0ALICE"
    assert [c.status for c in fake_slack.calls_to("users.info")] == [429, 200]
    assert len(slept) == 1 and 2 <= slept[0] < 3


def test_rate_limit_without_a_handler_surfaces_429_and_retry_after(
    fake_slack: FakeSlack,
) -> None:
    fake_slack.rate_limit("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as e:
        fake_slack.web_client(retry_handlers=[]).chat_postMessage(channel="C1", text="x")
    assert e.value.response.status_code == 429
    assert e.value.response.headers["Retry-After"] == "7"
    assert api_error(e) == "ratelimited"


def test_server_errors_and_injected_failures(fake_slack: FakeSlack) -> None:
    fake_slack.server_error("chat.postMessage", status=503)
    retrying = fake_slack.web_client(
        retry_handlers=[
            ServerErrorRetryHandler(interval_calculator=FixedValueRetryIntervalCalculator(0.01))
        ]
    )
    assert retrying.chat_postMessage(channel="C1", text="x")["ok"]
    assert [c.status for c in fake_slack.calls_to("chat.postMessage")] == [503, 200]

    fake_slack.fail("chat.postMessage", "fatal_error", times=2)
    client = fake_slack.web_client()
    for _ in range(2):
        with pytest.raises(SlackApiError) as e:
            client.chat_postMessage(channel="C1", text="x")
        assert api_error(e) == "fatal_error"
    assert client.chat_postMessage(channel="C1", text="x")["ok"]


def test_delay_holds_the_answer(fake_slack: FakeSlack) -> None:
    fake_slack.delay("auth.test", 0.15, times=1)
    client = fake_slack.web_client()
    started = time.monotonic()
    client.auth_test()
    assert time.monotonic() - started >= 0.15
    started = time.monotonic()
    client.auth_test()
    assert time.monotonic() - started < 0.15


def test_per_channel_rate_limit(clock: Clock) -> None:
    with FakeSlack(channel_rate_limit=True, channel_burst=2, clock=clock) as fake:
        fake.add_channel("C1")
        fake.add_channel("C2")
        client = fake.web_client(retry_handlers=[])
        client.chat_postMessage(channel="C1", text="1")
        client.chat_postMessage(channel="C1", text="2")
        with pytest.raises(SlackApiError) as e:
            client.chat_postMessage(channel="C1", text="3")
        assert e.value.response.status_code == 429
        assert e.value.response.headers["Retry-After"] == "1"
        client.chat_postMessage(channel="C2", text="other channel is fine")
        clock.now += 1
        client.chat_postMessage(channel="C1", text="after a second")
        assert [m.text for m in fake.posted("C1")] == ["1", "2", "after a second"]


# ------------------------------------------------------------------ tokens, scopes


def test_missing_scope_names_what_is_needed(fake_slack: FakeSlack) -> None:
    fake_slack.add_token("xoxb-narrow", scopes=["commands"], bot_id="B0JBOT")
    client = fake_slack.web_client("xoxb-narrow")

    with pytest.raises(SlackApiError) as files:
        client.files_upload_v2(channel="C1", content=b"x", filename="x.txt")
    assert files.value.response.data == {
        "ok": False,
        "error": "missing_scope",
        "needed": "files:write",
        "provided": "commands",
    }
    assert files.value.response.headers["X-OAuth-Scopes"] == "commands"
    for call, needed in (
        (lambda: client.chat_postMessage(channel="C1", text="x"), "chat:write"),
        (lambda: client.users_info(user="U0JBOT"), "users:read"),
    ):
        with pytest.raises(SlackApiError) as e:
            call()
        assert e.value.response["needed"] == needed


def test_revoked_and_expired_tokens(fake_slack: FakeSlack, clock: Clock) -> None:
    client = fake_slack.web_client()
    fake_slack.revoke(DEFAULT_BOT_TOKEN)
    with pytest.raises(SlackApiError) as revoked:
        client.auth_test()
    assert api_error(revoked) == "token_revoked"

    with FakeSlack(clock=clock) as fake:
        fake.add_token("xoxe.xoxb-1-short", bot_id="B0JBOT", expires_in=60)
        short = fake.web_client("xoxe.xoxb-1-short")
        assert short.auth_test()["expires_in"] == 60
        clock.now += 60
        with pytest.raises(SlackApiError) as expired:
            short.auth_test()
        assert api_error(expired) == "token_expired"


def test_apps_uninstall_revokes_the_workspace_tokens(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()
    client.apps_uninstall(client_id=fake_slack.client_id, client_secret=fake_slack.client_secret)
    with pytest.raises(SlackApiError) as e:
        client.auth_test()
    assert api_error(e) == "token_revoked"


# ------------------------------------------------------------------ Block Kit limits


def _too_many(n: int) -> list[dict[str, Any]]:
    return [section(f"row {i}") for i in range(n)]


AT_LIMIT: dict[str, list[dict[str, Any]]] = {
    "50 blocks": _too_many(50),
    "section text 3000": [section("x" * 3000)],
    "header 150": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 150}}],
    "10 fields of 2000": [
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 500}] * 10}
    ],
    "25 actions": [{"type": "actions", "elements": [button(action_id=f"a{i}") for i in range(25)]}],
    "button text 75": [{"type": "actions", "elements": [button("b" * 75)]}],
    "10 context elements": [
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 10}
    ],
    "block_id 255": [section("x", block_id="b" * 255)],
}

OVER_LIMIT: dict[str, tuple[list[dict[str, Any]], str]] = {
    "51 blocks": (_too_many(51), "/blocks"),
    "section text 3001": ([section("x" * 3001)], "/blocks/0/text/text"),
    "header 151": (
        [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
        "/blocks/0/text/text",
    ),
    "header mrkdwn": (
        [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}],
        "/blocks/0/text/type",
    ),
    "11 fields": (
        [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
        "/blocks/0/fields",
    ),
    "field 2001": (
        [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
        "/blocks/0/fields/0/text",
    ),
    "26 actions": (
        [{"type": "actions", "elements": [button(action_id=f"a{i}") for i in range(26)]}],
        "/blocks/0/elements",
    ),
    "button text 76": (
        [{"type": "actions", "elements": [button("b" * 76)]}],
        "/blocks/0/elements/0/text/text",
    ),
    "11 context elements": (
        [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}],
        "/blocks/0/elements",
    ),
    "block_id 256": ([section("x", block_id="b" * 256)], "/blocks/0/block_id"),
    "action_id 256": (
        [{"type": "actions", "elements": [button(action_id="a" * 256)]}],
        "/blocks/0/elements/0/action_id",
    ),
    "duplicate block_id": (
        [section("a", block_id="same"), section("b", block_id="same")],
        "/blocks/1/block_id",
    ),
    "unknown type": ([{"type": "carousel"}], "/blocks/0/type"),
    "empty section": ([{"type": "section"}], "/blocks/0"),
}


@pytest.mark.parametrize("blocks", AT_LIMIT.values(), ids=AT_LIMIT.keys())
def test_blocks_at_the_limit_are_accepted(fake_slack: FakeSlack, blocks: list[Any]) -> None:
    response = fake_slack.web_client().chat_postMessage(channel="C1", text="t", blocks=blocks)
    assert response["ok"]
    assert fake_slack.posted()[0].blocks == blocks


@pytest.mark.parametrize(("blocks", "pointer"), OVER_LIMIT.values(), ids=OVER_LIMIT.keys())
def test_blocks_over_a_limit_are_invalid_blocks(
    fake_slack: FakeSlack, blocks: list[Any], pointer: str
) -> None:
    with pytest.raises(SlackApiError) as e:
        fake_slack.web_client().chat_postMessage(channel="C1", text="t", blocks=blocks)
    assert api_error(e) == "invalid_blocks"
    assert any(err.endswith(f"[json-pointer:{pointer}]") for err in e.value.response["errors"])
    assert fake_slack.posted() == []


def test_block_errors_is_usable_without_a_server() -> None:
    assert block_errors(_too_many(MAX_MESSAGE_BLOCKS)) == []
    assert block_errors(_too_many(MAX_MESSAGE_BLOCKS + 1)) == [
        "must be less than 51 items [json-pointer:/blocks]"
    ]


def test_blocks_as_a_json_string_form_param_are_checked_too(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()
    with pytest.raises(SlackApiError) as e:
        client.api_call(
            "chat.postMessage",
            params={"channel": "C1", "text": "t", "blocks": json.dumps(_too_many(51))},
        )
    assert api_error(e) == "invalid_blocks"
    with pytest.raises(SlackApiError) as bad_json:
        client.api_call("chat.postMessage", params={"channel": "C1", "blocks": "[{"})
    assert api_error(bad_json) == "invalid_blocks_format"


def test_blocks_each_valid_but_too_long_together(fake_slack: FakeSlack) -> None:
    blocks = [section("y" * 2900) for _ in range(5)]  # ~14.7k chars of JSON
    assert block_errors(blocks) == []
    with pytest.raises(SlackApiError) as e:
        fake_slack.web_client().chat_postMessage(channel="C1", text="t", blocks=blocks)
    assert api_error(e) == "msg_blocks_too_long"


def test_message_needs_text_or_blocks_and_long_text_is_truncated(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()
    with pytest.raises(SlackApiError) as e, pytest.warns(UserWarning, match="text"):
        client.chat_postMessage(channel="C1")
    assert api_error(e) == "no_text"

    response = client.chat_postMessage(channel="C1", text="z" * 40_123)
    assert len(response["message"]["text"]) == 40_000
    [message] = fake_slack.posted()
    assert message.truncated and message.original_length == 40_123


# ------------------------------------------------------------------ channels, users


def test_channel_errors(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()
    fake_slack.add_channel("C0PUBLIC", name="public", is_member=False)
    fake_slack.add_channel("C0OLD", name="old", is_archived=True)
    fake_slack.add_channel("G0SECRET", is_private=True, is_member=False)
    fake_slack.delete_channel("C0GONE")
    cases = {
        "C0PUBLIC": "not_in_channel",
        "C0OLD": "is_archived",
        "G0SECRET": "channel_not_found",
        "C0GONE": "channel_not_found",
        "#no-such-name": "channel_not_found",
    }
    for channel, error in cases.items():
        with pytest.raises(SlackApiError) as e:
            client.chat_postMessage(channel=channel, text="x")
        assert api_error(e) == error, channel

    client.conversations_join(channel="C0PUBLIC")
    assert client.chat_postMessage(channel="#public", text="joined")["channel"] == "C0PUBLIC"
    assert client.chat_postMessage(channel="U0ALICE", text="dm")["channel"] == "D0ALICE"


def test_strict_channels_and_chat_write_public(clock: Clock) -> None:
    with FakeSlack(auto_channels=False) as fake:
        with pytest.raises(SlackApiError) as e:
            fake.web_client().chat_postMessage(channel="C0UNKNOWN", text="x")
        assert api_error(e) == "channel_not_found"
        fake.add_channel("C0PUBLIC", is_member=False)
        fake.add_token("xoxb-public", scopes=["chat:write", "chat:write.public"], bot_id="B0JBOT")
        assert fake.web_client("xoxb-public").chat_postMessage(channel="C0PUBLIC", text="x")["ok"]


def test_users_and_conversations_info(fake_slack: FakeSlack) -> None:
    fake_slack.add_user("U0ADMIN", is_admin=True, tz="America/New_York", tz_offset=-18000)
    fake_slack.add_user("U0OWNER", is_owner=True)
    fake_slack.add_channel("C0ARCH", name="archive", is_archived=True, is_member=False)
    # conversations.info needs channels:read, which journey does not ask for.
    fake_slack.add_token("xoxb-reader", scopes=["users:read", "channels:read"], bot_id="B0JBOT")
    client = fake_slack.web_client("xoxb-reader")

    admin = client.users_info(user="U0ADMIN")["user"]
    assert (admin["is_admin"], admin["is_owner"], admin["tz"], admin["tz_offset"]) == (
        True,
        False,
        "America/New_York",
        -18000,
    )
    assert client.users_info(user="U0OWNER")["user"]["is_owner"] is True
    with pytest.raises(SlackApiError) as e:
        client.users_info(user="U0NOBODY")
    assert api_error(e) == "user_not_found"

    channel = client.conversations_info(channel="C0ARCH")["channel"]
    assert (channel["is_archived"], channel["is_member"], channel["name"]) == (
        True,
        False,
        "archive",
    )


def test_users_info_tells_guests_strangers_owners_and_deleted_users_apart(
    fake_slack: FakeSlack,
) -> None:
    """The flags the bot's access rule reads, as Slack's user object documents them."""
    fake_slack.add_user("U0GUEST1", is_restricted=True, is_ultra_restricted=True)
    fake_slack.add_user("U0GUESTN", is_restricted=True)
    fake_slack.add_user("U0PARTNER", team_id="T0PARTNER")
    fake_slack.add_user("W0GRID", team_id="T0SISTER", enterprise_id="E0ORG")
    fake_slack.add_user("U0PRIMARY", is_owner=True, is_primary_owner=True)
    fake_slack.add_user("U0GONE", deleted=True)
    client = fake_slack.web_client()

    single = client.users_info(user="U0GUEST1")["user"]
    assert (single["is_restricted"], single["is_ultra_restricted"]) == (True, True)
    multi = client.users_info(user="U0GUESTN")["user"]
    assert (multi["is_restricted"], multi["is_ultra_restricted"]) == (True, False)
    partner = client.users_info(user="U0PARTNER")["user"]
    assert partner["team_id"] == "T0PARTNER" and partner["is_stranger"] is True
    grid = client.users_info(user="W0GRID")["user"]
    assert "is_stranger" not in grid and grid["enterprise_user"]["enterprise_id"] == "E0ORG"
    owner = client.users_info(user="U0PRIMARY")["user"]
    assert owner["is_owner"] and owner["is_primary_owner"] and not owner["is_admin"]
    assert client.users_info(user="U0GONE")["user"]["deleted"] is True
    assert "is_stranger" not in client.users_info(user="U0GONE")["user"]


def test_usergroup_members_and_shared_channels(fake_slack: FakeSlack) -> None:
    fake_slack.add_usergroup("S0EXPORT", ["U0ALICE", "U0BOB"])
    fake_slack.add_usergroup("S0THEIRS", ["U0X"], team_id="T0PARTNER")
    fake_slack.add_channel("C0CONNECT", is_ext_shared=True)
    fake_slack.add_channel("C0ORG", is_shared=True)
    fake_slack.add_token("xoxb-nogroups", scopes=["chat:write", "channels:read"], bot_id="B0JBOT")
    client = fake_slack.web_client()

    assert client.usergroups_users_list(usergroup="S0EXPORT")["users"] == ["U0ALICE", "U0BOB"]
    for missing in ("S0NONE", "S0THEIRS"):
        with pytest.raises(SlackApiError) as e:
            client.usergroups_users_list(usergroup=missing)
        assert api_error(e) == "no_such_subteam"
    with pytest.raises(SlackApiError) as e:
        fake_slack.web_client("xoxb-nogroups").usergroups_users_list(usergroup="S0EXPORT")
    assert api_error(e) == "missing_scope"
    assert e.value.response["needed"] == "usergroups:read"

    connect = client.conversations_info(channel="C0CONNECT")["channel"]
    assert connect["is_ext_shared"] is True and connect["is_shared"] is True
    org = client.conversations_info(channel="C0ORG")["channel"]
    assert org["is_shared"] is True and org["is_ext_shared"] is False
    plain = client.conversations_info(channel="C0PLAIN")["channel"]
    assert plain["is_shared"] is False and plain["is_ext_shared"] is False


def test_trigger_ids_live_three_seconds_of_the_fakes_clock(clock: Clock) -> None:
    modal = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Connect"},
        "blocks": [section("x")],
    }
    with FakeSlack(clock=clock) as fake:
        client = fake.web_client()
        with pytest.raises(SlackApiError) as e:
            client.views_open(trigger_id="1.2.never-issued", view=modal)
        assert api_error(e) == "invalid_trigger_id"
        fresh, stale = fake.issue_trigger(), fake.issue_trigger()
        clock.now += 2.9
        assert client.views_open(trigger_id=fresh, view=modal)["ok"]
        clock.now += 0.2
        with pytest.raises(SlackApiError) as e:
            client.views_open(trigger_id=stale, view=modal)
        assert api_error(e) == "expired_trigger_id"


# ------------------------------------------------------------------------- views


def test_views_publish_open_update(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()
    home = client.views_publish(user_id="U0ALICE", view={"type": "home", "blocks": _too_many(100)})
    assert fake_slack.home_views["U0ALICE"]["id"] == home["view"]["id"]
    with pytest.raises(SlackApiError) as too_many:
        client.views_publish(user_id="U0ALICE", view={"type": "home", "blocks": _too_many(101)})
    assert api_error(too_many) == "invalid_arguments"

    modal = {
        "type": "modal",
        "callback_id": "schedule",
        "title": {"type": "plain_text", "text": "Schedule a report"},
        "blocks": [section("pick a time")],
    }
    trigger = fake_slack.issue_trigger()
    opened = client.views_open(trigger_id=trigger, view=modal)
    with pytest.raises(SlackApiError) as reused:
        client.views_open(trigger_id=trigger, view=modal)
    assert api_error(reused) == "exchanged_trigger_id"
    long_title = {**modal, "title": {"type": "plain_text", "text": "x" * 25}}
    with pytest.raises(SlackApiError) as bad_title:
        client.views_open(trigger_id=fake_slack.issue_trigger(), view=long_title)
    assert "/view/title/text" in bad_title.value.response["response_metadata"]["messages"][0]

    updated = client.views_update(view_id=opened["view"]["id"], view={**modal, "blocks": []})
    assert updated["view"]["blocks"] == []
    with pytest.raises(SlackApiError) as stale:
        client.views_update(view_id=opened["view"]["id"], view=modal, hash="stale")
    assert api_error(stale) == "hash_conflict"


# ------------------------------------------------------------------ response URLs


def test_response_url_posts_are_validated_and_recorded(fake_slack: FakeSlack) -> None:
    url = fake_slack.response_url("cmd-1")
    assert url == f"{fake_slack.url}/response/cmd-1"
    webhook = WebhookClient(url)

    ok = webhook.send(text="Working on it", response_type="ephemeral")
    assert (ok.status_code, json.loads(ok.body)) == (200, {"ok": True})
    bad = webhook.send(text="t", blocks=_too_many(51))
    assert bad.status_code == 400 and json.loads(bad.body)["error"] == "invalid_blocks"
    webhook.send(text="Done", blocks=[section("*Done*")], replace_original=True)

    first, second = fake_slack.responses["cmd-1"]
    assert (first.text, first.response_type, first.replace_original) == (
        "Working on it",
        "ephemeral",
        False,
    )
    assert second.replace_original and second.blocks == [section("*Done*")]
    assert [c.status for c in fake_slack.calls_to(RESPONSE_URL)] == [200, 400, 200]


def test_response_url_is_spent_after_five_posts(fake_slack: FakeSlack) -> None:
    url = fake_slack.response_url("cmd-2")

    async def main() -> list[tuple[int, str]]:
        webhook = AsyncWebhookClient(url)
        out = []
        for i in range(6):
            r = await webhook.send(text=f"update {i}")
            out.append((r.status_code, json.loads(r.body).get("error", "")))
        return out

    answers = asyncio.run(main())

    assert answers[:5] == [(200, "")] * 5
    assert answers[5] == (404, "used_url")
    assert len(fake_slack.responses["cmd-2"]) == 5


def test_response_url_expires(fake_slack: FakeSlack, clock: Clock) -> None:
    fake_slack.expire_response_url("old")
    assert WebhookClient(fake_slack.response_url("old")).send(text="x").status_code == 404
    with FakeSlack(clock=clock) as fake:
        url = fake.response_url("cmd")
        clock.now += 31 * 60
        response = WebhookClient(url).send(text="too late")
        assert (response.status_code, json.loads(response.body)["error"]) == (404, "expired_url")


# ------------------------------------------------------------------------- OAuth


def test_oauth_code_exchange_without_rotation(fake_slack: FakeSlack) -> None:
    code = fake_slack.issue_code(team_id="T0OTHER", team_name="Other", user_id="U0ADMIN")
    client = fake_slack.web_client()
    client.token = None

    install = client.oauth_v2_access(
        client_id=fake_slack.client_id, client_secret=fake_slack.client_secret, code=code
    )

    assert install["access_token"].startswith("xoxb-")
    assert install["token_type"] == "bot" and "refresh_token" not in install
    assert install["team"] == {"id": "T0OTHER", "name": "Other"}
    assert install["enterprise"] is None and install["authed_user"] == {"id": "U0ADMIN"}
    assert "chat:write" in install["scope"].split(",")
    assert "Basic " in fake_slack.last("oauth.v2.access").headers["Authorization"]
    me = fake_slack.web_client(install["access_token"]).auth_test()
    assert (me["team_id"], me["user_id"]) == ("T0OTHER", install["bot_user_id"])
    assert me["bot_id"]

    with pytest.raises(SlackApiError) as reused:
        client.oauth_v2_access(
            client_id=fake_slack.client_id, client_secret=fake_slack.client_secret, code=code
        )
    assert api_error(reused) == "invalid_code"
    with pytest.raises(SlackApiError) as wrong:
        client.oauth_v2_access(
            client_id=fake_slack.client_id, client_secret="nope", code=fake_slack.issue_code()
        )
    assert api_error(wrong) == "bad_client_secret"


def test_oauth_rotation_refresh_tokens_are_single_use() -> None:
    with FakeSlack(token_rotation=True) as fake:
        client = fake.web_client()
        creds = {"client_id": fake.client_id, "client_secret": fake.client_secret}
        install = client.oauth_v2_access(**creds, code=fake.issue_code())
        assert install["access_token"].startswith("xoxe.xoxb-1-")
        assert install["refresh_token"].startswith("xoxe-1-")
        assert install["expires_in"] == 43_200

        # Two replicas race to refresh the same token: exactly one wins.
        results: list[str] = []

        def refresh() -> None:
            try:
                r = client.oauth_v2_access(
                    **creds, grant_type="refresh_token", refresh_token=install["refresh_token"]
                )
                results.append(r["access_token"])
            except SlackApiError as e:
                results.append(e.response["error"])

        threads = [threading.Thread(target=refresh) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        winners = [r for r in results if r.startswith("xoxe.xoxb-")]
        assert len(winners) == 1 and results.count("invalid_refresh_token") == 1
        assert (fake.refresh_count, fake.refresh_attempts) == (1, 2)
        assert fake.web_client(winners[0]).auth_test()["team_id"] == DEFAULT_TEAM_ID


def test_slack_sdk_token_rotator_against_the_fake() -> None:
    with FakeSlack(token_rotation=True) as fake:
        access, refresh = fake.issue_token_pair(expires_in=60)
        rotator = TokenRotator(
            client_id=fake.client_id, client_secret=fake.client_secret, client=fake.web_client()
        )
        bot = Bot(
            team_id=DEFAULT_TEAM_ID,
            bot_token=access,
            bot_refresh_token=refresh,
            bot_token_expires_at=int(time.time()) + 60,
            bot_id="B0JBOT",
            bot_user_id="U0JBOT",
            installed_at=time.time(),
        )

        rotated = rotator.perform_bot_token_rotation(bot=bot, minutes_before_expiration=120)

        assert rotated is not None and rotated.bot_token != access
        assert rotated.bot_refresh_token != refresh
        with pytest.raises(SlackTokenRotationError):
            rotator.perform_bot_token_rotation(bot=bot, minutes_before_expiration=120)
        assert fake.refresh_count == 1


# ---------------------------------------------------------------- reset, fixture


def test_reset_forgets_traffic_but_keeps_configuration(fake_slack: FakeSlack) -> None:
    fake_slack.add_user("U0ALICE")
    client = fake_slack.web_client()
    client.chat_postMessage(channel="C1", text="x")
    fake_slack.fail("auth.test", "fatal_error")

    fake_slack.reset()

    assert fake_slack.calls == [] and fake_slack.posted() == []
    assert client.auth_test()["ok"]
    assert client.users_info(user="U0ALICE")["ok"]


# ----------------------------------------------------------------------- signing


def test_signature_verifies_with_slack_sdk() -> None:
    body, _ = signing.slash_command(
        "funnel 30d",
        team_id=DEFAULT_TEAM_ID,
        user_id="U0ALICE",
        channel_id="C1",
        response_url="http://127.0.0.1:1/response/x",
    )
    headers = signing.sign(body, SECRET)
    verifier = SignatureVerifier(SECRET)

    assert verifier.is_valid(
        body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )
    assert verifier.is_valid_request(body, headers)
    assert not SignatureVerifier("other-secret").is_valid_request(body, headers)
    assert not verifier.is_valid_request(body + b"&x=1", headers)
    old = signing.sign(body, SECRET, timestamp=int(time.time()) - 301)
    assert not verifier.is_valid_request(body, old)


def test_signed_requests_drive_a_bolt_async_app(fake_slack: FakeSlack) -> None:
    """The builders' bodies are what Bolt parses: command, action, event, submission."""
    seen: dict[str, Any] = {}

    async def main() -> list[int]:
        app = AsyncApp(
            client=fake_slack.async_web_client(),
            signing_secret=SECRET,
            process_before_response=True,
        )

        @app.command("/journey")
        async def command(ack: Any, respond: Any, command: dict[str, Any], client: Any) -> None:
            await ack()
            seen["command"] = command
            await respond(text=f"Running {command['text']}")
            await client.chat_postMessage(channel=command["channel_id"], text="Report")

        @app.action("rerun")
        async def action(ack: Any, body: dict[str, Any], respond: Any) -> None:
            await ack()
            seen["action"] = body["actions"][0]["value"]
            await respond(text="Re-running", replace_original=True)

        @app.event("app_home_opened")
        async def home(event: dict[str, Any], client: Any) -> None:
            await client.views_publish(
                user_id=event["user"], view={"type": "home", "blocks": [section("Home")]}
            )

        @app.view("schedule")
        async def submit(ack: Any, view: dict[str, Any]) -> None:
            await ack()
            seen["submitted"] = view["state"]["values"]["when"]["time"]["value"]

        requests = [
            signing.slash_command(
                "funnel 30d",
                team_id=DEFAULT_TEAM_ID,
                user_id="U0ALICE",
                channel_id="C0REPORTS",
                response_url=fake_slack.response_url("cmd"),
            ),
            signing.block_actions(
                "rerun",
                "funnel 30d",
                team_id=DEFAULT_TEAM_ID,
                user_id="U0ALICE",
                channel_id="C0REPORTS",
                response_url=fake_slack.response_url("act"),
                message={"ts": "1.000001", "text": "Report"},
            ),
            signing.event_callback(signing.app_home_opened("U0ALICE"), DEFAULT_TEAM_ID),
            signing.view_submission(
                "schedule",
                {"when": {"time": {"type": "plain_text_input", "value": "09:00"}}},
                team_id=DEFAULT_TEAM_ID,
                user_id="U0ALICE",
            ),
        ]
        statuses = []
        for body, content_type in requests:
            headers = signing.signed_headers(body, content_type, SECRET)
            response = await app.async_dispatch(
                AsyncBoltRequest(body=body.decode(), headers=headers)
            )
            statuses.append(response.status)
        return statuses

    assert asyncio.run(main()) == [200, 200, 200, 200]
    assert seen["command"]["text"] == "funnel 30d"
    assert seen["command"]["is_enterprise_install"] == "false"
    assert seen["action"] == "funnel 30d"
    assert seen["submitted"] == "09:00"
    assert [r.text for r in fake_slack.responses["cmd"]] == ["Running funnel 30d"]
    assert fake_slack.responses["act"][0].replace_original
    assert [m.text for m in fake_slack.posted("C0REPORTS")] == ["Report"]
    assert fake_slack.home_views["U0ALICE"]["blocks"] == [section("Home")]
    assert fake_slack.calls_to("auth.test")  # Bolt authorised against the fake


def test_a_badly_signed_request_is_refused_by_bolt(fake_slack: FakeSlack) -> None:
    async def main() -> int:
        app = AsyncApp(client=fake_slack.async_web_client(), signing_secret=SECRET)
        body, content_type = signing.url_verification("challenge-me")
        headers = signing.signed_headers(body, content_type, "wrong-secret")
        response = await app.async_dispatch(AsyncBoltRequest(body=body.decode(), headers=headers))
        return response.status

    assert asyncio.run(main()) == 401


# ------------------------------------------------- what Slack enforces that kind fakes skip


def test_installations_get_the_manifests_scopes_by_default(fake_slack: FakeSlack) -> None:
    info = fake_slack.tokens[DEFAULT_BOT_TOKEN]
    assert tuple(info.scopes) == fakes_slack_api.manifest_scopes()


@pytest.mark.parametrize(
    "method",
    sorted(m for m, needed in fakes_slack_api.REQUIRED_SCOPES.items() if needed),
)
def test_every_method_answers_missing_scope_without_its_scope(
    fake_slack: FakeSlack, method: str
) -> None:
    fake_slack.add_token("xoxb-bare", scopes=["commands"], bot_id="B0JBOT")
    with pytest.raises(SlackApiError) as e:
        fake_slack.web_client("xoxb-bare").api_call(method, params={"channel": "C1"})
    assert e.value.response.data == {
        "ok": False,
        "error": "missing_scope",
        "needed": ",".join(fakes_slack_api.REQUIRED_SCOPES[method]),
        "provided": "commands",
    }


def test_channels_are_not_joined_by_themselves(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()
    with pytest.raises(SlackApiError) as e:
        client.chat_postMessage(channel="C0NEVERJOINED", text="x")
    assert api_error(e) == "not_in_channel"
    with pytest.raises(SlackApiError) as e:
        client.files_upload_v2(channel="C0NEVERJOINED", content=b"x", filename="x.png")
    assert api_error(e) == "not_in_channel"
    client.conversations_join(channel="C0NEVERJOINED")
    assert client.chat_postMessage(channel="C0NEVERJOINED", text="x")["ok"]


def test_history_outside_the_marketplace_is_15_a_call_and_once_a_minute(clock: Clock) -> None:
    with FakeSlack(clock=clock) as fake:
        fake.add_channel("C1")
        client = fake.web_client(retry_handlers=[])
        for i in range(40):
            client.chat_postMessage(channel="C1", text=f"m{i}")
        page = client.conversations_history(channel="C1", limit=200)
        assert len(page["messages"]) == 15 and page["has_more"] is True
        assert page["messages"][0]["text"] == "m39"
        with pytest.raises(SlackApiError) as e:
            client.conversations_history(channel="C1", limit=15)
        assert e.value.response.status_code == 429
        assert e.value.response.headers["Retry-After"] == "60"
        assert api_error(e) == "ratelimited"
        clock.now += 45
        with pytest.raises(SlackApiError) as e:
            client.conversations_history(channel="C1")
        assert e.value.response.headers["Retry-After"] == "15"
        clock.now += 15
        cursor = page["response_metadata"]["next_cursor"]
        second = client.conversations_history(channel="C1", cursor=cursor)
        assert [m["text"] for m in second["messages"]][:2] == ["m24", "m23"]
    with FakeSlack(clock=clock, marketplace=True) as fake:
        fake.add_channel("C1")
        client = fake.web_client(retry_handlers=[])
        for i in range(40):
            client.chat_postMessage(channel="C1", text=f"m{i}")
        assert len(client.conversations_history(channel="C1", limit=200)["messages"]) == 40
        assert client.conversations_history(channel="C1")["ok"]


def test_history_needs_the_scope_of_the_conversations_type(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()
    dm = client.conversations_open(users="U0JBOT")["channel"]["id"]
    with pytest.raises(SlackApiError) as e:
        client.conversations_history(channel=dm)
    assert e.value.response["needed"] == "im:history"
    fake_slack.add_channel("G0PRIVATE", is_private=True)
    fake_slack.add_token("xoxb-public-only", scopes=["channels:history"], bot_id="B0JBOT")
    with pytest.raises(SlackApiError) as e:
        fake_slack.web_client("xoxb-public-only").conversations_history(channel="G0PRIVATE")
    assert e.value.response["needed"] == "groups:history"


def _image(file_id: str) -> list[dict[str, Any]]:
    return [{"type": "image", "alt_text": "chart", "slack_file": {"id": file_id}}]


def test_an_image_of_a_file_not_shared_where_the_message_goes_is_invalid_blocks(
    fake_slack: FakeSlack,
) -> None:
    client = fake_slack.web_client()
    private = client.files_upload_v2(content=b"png", filename="chart.png")["file"]["id"]
    shared = client.files_upload_v2(channel="C1", content=b"png", filename="c.png")["file"]["id"]
    with pytest.raises(SlackApiError) as e:
        client.chat_postMessage(channel="C1", text="chart", blocks=_image(private))
    assert api_error(e) == "invalid_blocks"
    assert "invalid slack file" in e.value.response["errors"][0]
    with pytest.raises(SlackApiError) as e:
        client.chat_postMessage(channel="C2", text="chart", blocks=_image(shared))
    assert api_error(e) == "invalid_blocks"
    assert client.chat_postMessage(channel="C1", text="chart", blocks=_image(shared))["ok"]
    url = fake_slack.response_url("r", channel="C2")
    answer = WebhookClient(url).send(text="chart", blocks=_image(shared))
    assert answer.status_code == 400 and "invalid_blocks" in answer.body


# ----------------------------------------------------------------- files people share

READER = "xoxb-files-reader"


BLIND = "xoxb-no-files-read"


def _reader(fake: FakeSlack) -> None:
    scopes = [s for s in fakes_slack_api.DEFAULT_BOT_SCOPES if s != "files:read"]
    fake.add_token(READER, scopes=[*scopes, "files:read"], bot_id="B0JBOT")
    fake.add_token(BLIND, scopes=scopes, bot_id="B0JBOT")


def _get(url: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(url, headers=headers)


def test_a_file_dropped_in_the_bots_dm_is_served_only_with_a_bearer_carrying_files_read(
    fake_slack: FakeSlack,
) -> None:
    _reader(fake_slack)
    fake_slack.add_user("U0ALICE")
    data = b"order_id,email,ordered_at,amount\n1,a@example.com,2026-01-02,10.00\n"
    file = fake_slack.user_upload("U0ALICE", "orders.csv", data, channel="D0ALICE")
    event = fake_slack.file_shared_event(file)
    assert event["channel_id"] == "D0ALICE" and event["file"] == {"id": file.id}
    assert set(event) == {"type", "channel_id", "file_id", "user_id", "file", "event_ts"}

    info = fake_slack.web_client(READER).files_info(file=file.id)["file"]
    assert info["ims"] == ["D0ALICE"] and info["size"] == len(data)
    assert info["name"] == "orders.csv" and info["user"] == "U0ALICE"
    url = info["url_private_download"]
    assert url.endswith(f"/files-pri/{DEFAULT_TEAM_ID}-{file.id}/download/orders.csv")

    good = _get(url, READER)
    assert good.status_code == 200 and good.content == data
    # Slack answers a missing or insufficient bearer with its sign-in page, status 200.
    for token in (None, "xoxb-unknown", BLIND):
        page = _get(url, token)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.content != data and b"Sign in" in page.content
    with pytest.raises(SlackApiError) as e:
        fake_slack.web_client(BLIND).files_info(file=file.id)
    assert e.value.response["error"] == "missing_scope"
    assert e.value.response["needed"] == "files:read"
    downloads = fake_slack.calls_to(fakes_slack_api.FILE_DOWNLOAD)
    assert [c.response["content_type"].split(";")[0] for c in downloads] == [
        "text/csv",
        "text/html",
        "text/html",
        "text/html",
    ]


def test_another_workspaces_token_gets_neither_the_file_nor_its_info(
    fake_slack: FakeSlack,
) -> None:
    _reader(fake_slack)
    fake_slack.add_token(
        "xoxb-other-team", team_id="T0OTHER", scopes=["files:read"], bot_id="B0OTHER"
    )
    file = fake_slack.user_upload("U0ALICE", "orders.csv", b"a,b\n1,2\n", channel="D0ALICE")
    url = fake_slack.web_client(READER).files_info(file=file.id)["file"]["url_private_download"]
    with pytest.raises(SlackApiError) as e:
        fake_slack.web_client("xoxb-other-team").files_info(file=file.id)
    assert e.value.response["error"] == "file_not_found"
    assert _get(url, "xoxb-other-team").headers["content-type"].startswith("text/html")


def test_unshared_files_are_refused_as_slack_refuses_them(fake_slack: FakeSlack) -> None:
    _reader(fake_slack)
    private = fake_slack.user_upload("U0ALICE", "private.csv", b"a\n1\n")
    elsewhere = fake_slack.user_upload("U0ALICE", "c.csv", b"a\n1\n", channel="C0NOTJOINED")
    fake_slack.add_channel("C0NOTJOINED", is_member=False)
    for file in (private, elsewhere):
        with pytest.raises(SlackApiError) as e:
            fake_slack.web_client(READER).files_info(file=file.id)
        assert e.value.response["error"] == "file_not_found"
        url = file.to_api(fake_slack.url)["url_private_download"]
        assert _get(url, READER).headers["content-type"].startswith("text/html")
    # A file uploaded through this app's file_input is the app's to read.
    modal = fake_slack.user_upload("U0ALICE", "m.csv", b"a\n1\n", via_file_input=True)
    assert fake_slack.web_client(READER).files_info(file=modal.id)["file"]["ims"] == []
    value = fake_slack.file_input_value(modal)
    assert value["type"] == "file_input" and value["files"][0]["id"] == modal.id


def test_a_deleted_file_is_file_deleted_and_its_url_404(fake_slack: FakeSlack) -> None:
    _reader(fake_slack)
    file = fake_slack.user_upload("U0ALICE", "orders.csv", b"a\n1\n", channel="D0ALICE")
    url = fake_slack.web_client(READER).files_info(file=file.id)["file"]["url_private_download"]
    fake_slack.delete_file(file.id)
    with pytest.raises(SlackApiError) as e:
        fake_slack.web_client(READER).files_info(file=file.id)
    assert e.value.response["error"] == "file_deleted"
    assert _get(url, READER).status_code == 404


def test_a_modal_with_a_file_input_needs_files_read_and_at_most_10_files(
    fake_slack: FakeSlack,
) -> None:
    _reader(fake_slack)

    def modal(max_files: int) -> dict[str, Any]:
        element = {"type": "file_input", "action_id": "file", "max_files": max_files}
        return {
            "type": "modal",
            "title": {"type": "plain_text", "text": "Import"},
            "blocks": [
                {
                    "type": "input",
                    "block_id": "file",
                    "label": {"type": "plain_text", "text": "CSV file"},
                    "element": {**element, "filetypes": ["csv"]},
                }
            ],
        }

    with pytest.raises(SlackApiError) as e:
        fake_slack.web_client(BLIND).views_open(
            trigger_id=fake_slack.issue_trigger(), view=modal(1)
        )
    assert e.value.response["error"] == "missing_scope"
    with pytest.raises(SlackApiError) as e:
        fake_slack.web_client(READER).views_open(
            trigger_id=fake_slack.issue_trigger(), view=modal(11)
        )
    assert e.value.response["error"] == "invalid_arguments"
    opened = fake_slack.web_client(READER).views_open(
        trigger_id=fake_slack.issue_trigger(), view=modal(1)
    )
    assert opened["ok"]
