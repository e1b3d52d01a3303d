"""Drives the bot in HTTP mode the way Slack does: signed requests into the real ASGI app,
answers read back from the fake Slack server.

Shared by the bot's end-to-end tests (test_bot_http, test_bot_connect, test_bot_sync):
each adds what its own flows need (buttons, modal submissions, sources) on a subclass.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from fakes.signing import signed_headers, slash_command
from fakes.slack_api import FakeSlack
from slack_bolt.async_app import AsyncApp
from sqlalchemy import Engine

from bot.blocks.help import working_message
from bot.server import asgi_app

SECRET = "test-signing-secret"
# "Working on your {what}…": the bot's holding reply when a report is slower than its
# working_after (bot/listeners/replies.py), split around where `what` goes.
_WORKING = working_message("\0").text.partition("\0")


def is_working(post: object) -> bool:
    """Whether a response is the holding reply, not an answer."""
    text = getattr(post, "text", None) or ""
    return text.startswith(_WORKING[0]) and text.endswith(_WORKING[2])


@asynccontextmanager
async def bot_client(app: AsyncApp) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose requests go straight into the app (no port needed)."""
    transport = httpx.ASGITransport(app=asgi_app(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://bot") as http:
        yield http


@dataclass
class SignedBot:
    fake: FakeSlack
    engine: Engine
    http: httpx.AsyncClient
    team: str

    async def post(
        self, body: bytes, content_type: str, *, timestamp: int | None = None, secret: str = SECRET
    ) -> httpx.Response:
        headers = signed_headers(body, content_type, secret, timestamp)
        return await self.http.post("/slack/events", content=body, headers=headers)

    async def command(
        self,
        text: str,
        name: str,
        team: str | None = None,
        user: str = "U0ALICE",
        trigger_id: str | None = None,
        channel: str = "C0GENERAL",
    ) -> httpx.Response:
        """`/journey <text>` from `user` in `channel` (#general, or the bot's DM: D...);
        its answers arrive at response URL `name`."""
        body, ctype = slash_command(
            text,
            team_id=team or self.team,
            user_id=user,
            channel_id=channel,
            response_url=self.fake.response_url(name, channel=channel),
            # Slack hands out a trigger with each command; the fake knows when (3 s to use it).
            trigger_id=trigger_id or self.fake.issue_trigger(),
        )
        return await self.post(body, ctype)

    async def responses(self, name: str, count: int = 1, timeout: float = 15) -> list:
        """The first `count` answers at response URL `name` (fails the test after `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            posts = self.fake.responses.get(name, [])
            if len(posts) >= count:
                await asyncio.sleep(0.05)  # let a late extra answer show, so tests can see it
                return self.fake.responses.get(name, [])
            await asyncio.sleep(0.02)
        raise AssertionError(
            f"expected {count} responses at {name}, got {self.fake.responses.get(name)}"
        )

    async def answer(self, name: str, timeout: float = 60) -> list:
        """The responses at response URL `name` up to and including the first real answer.

        A report slower than the bot's working_after (a loaded machine) first shows
        "Working on your …", which the answer then replaces: waiting for a first
        response would take the holding reply for the answer. This waits for the answer
        itself, however late it comes (`timeout` only ends a test that would hang)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            posts = list(self.fake.responses.get(name, []))
            for i, post in enumerate(posts):
                if not is_working(post):
                    return posts[: i + 1]
            await asyncio.sleep(0.02)
        raise AssertionError(
            f"no answer at {name} after {timeout}s, only {self.fake.responses.get(name)}"
        )

    async def posted(self, channel: str, count: int = 1, timeout: float = 15) -> list:
        """The first `count` messages the bot posted to `channel` (a DM channel for DMs)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            posts = self.fake.posted(channel)
            if len(posts) >= count:
                return posts
            await asyncio.sleep(0.02)
        raise AssertionError(
            f"expected {count} posts in {channel}, got {self.fake.posted(channel)}"
        )

    def recorded(self) -> str:
        """Everything sent to the fake Slack, requests and answers, as one text to search."""
        return json.dumps([(c.method, c.params, c.response) for c in self.fake.calls], default=str)
