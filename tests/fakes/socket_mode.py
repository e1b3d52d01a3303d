"""Slack's Socket Mode endpoint, faked: a real WebSocket server on 127.0.0.1.

Why: Socket Mode is how most teams first run the bot (no public URL), and its
failure modes are in the transport: the app must fetch a URL with its app-level
token (`apps.connections.open`), wait for `hello`, acknowledge every envelope
within 3 seconds by echoing its `envelope_id`, and reconnect when Slack says
`disconnect` (it does so every few hours, `refresh_requested`). A mocked
handler cannot show any of that.

The frames follow Slack's Socket Mode protocol:

    server -> app   {"type": "hello", "num_connections": 1, "connection_info": {...}, ...}
    server -> app   {"envelope_id": "...", "type": "slash_commands" | "interactive" |
                     "events_api", "payload": {...}, "accepts_response_payload": bool}
    app -> server   {"envelope_id": "...", "payload": {...}}   (the ack; payload optional)
    server -> app   {"type": "disconnect", "reason": "refresh_requested" | "warning" |
                     "link_disabled", ...}

Use it inside the test's event loop: `async with FakeSocketMode(fake_slack) as sm:`
registers its URL with the FakeSlack so `apps.connections.open` hands it out.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

from aiohttp import WSMsgType, web

from fakes.slack_api import DEFAULT_APP_ID, FakeSlack

ACK_DEADLINE = 3.0  # seconds Slack waits for an acknowledgement before retrying


class FakeSocketMode:
    def __init__(self, slack: FakeSlack, app_id: str = DEFAULT_APP_ID) -> None:
        self.slack = slack
        self.app_id = app_id
        self.connections = 0  # WebSocket connections accepted so far
        self.tickets: list[str] = []
        self.acks: dict[str, dict[str, Any]] = {}
        self.sent_at: dict[str, float] = {}
        self.acked_at: dict[str, float] = {}
        self.unexpected: list[str] = []  # frames from the app that are not acks
        self._sockets: list[web.WebSocketResponse] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> FakeSocketMode:
        app = web.Application()
        app.router.add_get("/link", self._link)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.slack.socket_mode_url = f"ws://127.0.0.1:{port}/link"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self.slack.socket_mode_url = None

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.tickets.append(request.query.get("ticket", ""))
        async with self._changed:
            self.connections += 1
            self._sockets.append(ws)
            self._changed.notify_all()
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._sockets),
                "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.app_id},
            }
        )
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                frame = json.loads(msg.data)
            except ValueError:
                self.unexpected.append(msg.data)
                continue
            envelope = frame.get("envelope_id") if isinstance(frame, dict) else None
            if envelope is None:
                self.unexpected.append(msg.data)
                continue
            async with self._changed:
                self.acks[envelope] = frame
                self.acked_at[envelope] = asyncio.get_running_loop().time()
                self._changed.notify_all()
        async with self._changed:
            self._sockets.remove(ws)
            self._changed.notify_all()
        return ws

    async def wait_connected(self, count: int = 1, timeout: float = 10) -> None:
        """Until `count` connections were made in all and one of them is open."""
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: self.connections >= count and bool(self._sockets)),
                timeout,
            )

    async def send(self, kind: str, payload: dict[str, Any]) -> str:
        """Deliver one envelope on the newest open connection; returns its envelope_id."""
        if not self._sockets:
            raise AssertionError("no Socket Mode connection is open")
        envelope = secrets.token_hex(12)
        frame: dict[str, Any] = {
            "envelope_id": envelope,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind in ("slash_commands", "interactive"),
        }
        if kind == "events_api":
            frame.update(retry_attempt=0, retry_reason="")
        self.sent_at[envelope] = asyncio.get_running_loop().time()
        await self._sockets[-1].send_json(frame)
        return envelope

    async def ack(self, envelope: str, timeout: float = 10) -> dict[str, Any]:
        """The app's acknowledgement of `envelope` (fails the test if none arrives)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: envelope in self.acks), timeout)
        return self.acks[envelope]

    def ack_seconds(self, envelope: str) -> float:
        return self.acked_at[envelope] - self.sent_at[envelope]

    async def disconnect(self, reason: str = "refresh_requested") -> None:
        """Send `disconnect` with `reason`, then drop the socket. `refresh_requested` (every
        few hours) and `warning` (closing soon) ask the app to reconnect; `link_disabled`
        means Socket Mode was switched off in the app's settings, so from then on
        apps.connections.open is refused too (https://docs.slack.dev/apis/events-api/
        using-socket-mode, "Disconnects")."""
        ws = self._sockets[-1]
        if reason == "link_disabled":
            self.slack.socket_mode_url = None
        await ws.send_json(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
        )
        await asyncio.sleep(0.2)
        await ws.close()
