"""Acknowledgement benchmark: signed `/journey` requests against the HTTP mode.

Starts three processes on this machine: a minimal fake Slack (auth.test and
response URLs), the bot (`journey serve`, uvicorn) on the demo store, and this
load generator. Measures, from the moment a request is sent to the moment its
HTTP response (the acknowledgement) is complete:

1. open loop: a steady 50 commands per second (each sent on schedule whether or
   not earlier ones finished), p50/p95/p99 latency - Slack's deadline is 3 s,
   the target is p99 < 100 ms;
2. saturation: many concurrent senders in a closed loop, acknowledgements per
   second (target: at least 1,000 per 2-core replica).

Both are run with `/journey help` (answered in the acknowledgement itself) and
`/journey funnel` (acknowledged empty, report computed after). The load
generator shares the machine's two cores with the server, so saturation
figures understate a dedicated replica.

    .venv/bin/python bench/ack.py [--seconds 20] [--rate 50] [--concurrency 64] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench-token"  # a fake token for the local fake Slack only


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeSlack(BaseHTTPRequestHandler):
    """Just enough Slack for the bot: auth.test, views/chat calls and response URLs."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path.startswith("/api/auth.test"):
            body = {
                "ok": True,
                "team_id": "TBENCH",
                "user_id": "UBOT",
                "bot_id": "BBOT",
                "team": "bench",
            }
        else:
            body = {"ok": True}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-OAuth-Scopes", "commands,chat:write")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: object) -> None:
        return


def signed(text: str, response_url: str) -> tuple[bytes, dict[str, str]]:
    body = urllib.parse.urlencode(
        {
            "token": "x",
            "team_id": "TBENCH",
            "team_domain": "bench",
            "channel_id": "CBENCH",
            "channel_name": "general",
            "user_id": "UBENCH",
            "user_name": "bench",
            "command": "/journey",
            "text": text,
            "api_app_id": "ABENCH",
            "response_url": response_url,
            "trigger_id": "1.2.3",
        }
    ).encode()
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sig,
    }
    return body, headers


async def one(session: aiohttp.ClientSession, url: str, text: str, response_url: str) -> float:
    body, headers = signed(text, response_url)
    start = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"status {response.status}")
    return time.perf_counter() - start


async def open_loop(
    url: str, text: str, response_url: str, rate: float, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = []
        start = time.perf_counter()
        n = int(rate * seconds)
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(session, url, text, response_url)))
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(result, BaseException):
                errors += 1
            else:
                latencies.append(result * 1000)
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    return {
        "sent": n,
        "errors": errors,
        "p50_ms": q[49],
        "p95_ms": q[94],
        "p99_ms": q[98],
        "max_ms": latencies[-1],
    }


async def saturation(
    url: str, text: str, response_url: str, concurrency: int, seconds: float
) -> dict[str, float]:
    done = 0
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal done, errors
        while time.perf_counter() < stop:
            try:
                await one(session, url, text, response_url)
                done += 1
            except Exception:
                errors += 1

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"acks_per_s": done / elapsed, "errors": errors, "concurrency": concurrency}


def wait_for(port: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listening on port {port}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    fake_port, bot_port = free_port(), free_port()
    fake = ThreadingHTTPServer(("127.0.0.1", fake_port), FakeSlack)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    tmp = tempfile.mkdtemp(prefix="journey-ack-")
    env = dict(
        os.environ,
        DATABASE_URL=f"sqlite:///{tmp}/ack.db",
        JOURNEY_WORKSPACE="TBENCH",
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=f"http://127.0.0.1:{fake_port}/api/",
    )
    env.pop("SLACK_APP_TOKEN", None)
    journey = str(Path(sys.executable).parent / "journey")
    subprocess.run(
        [journey, "demo", "--workspace", "TBENCH"], env=env, check=True, capture_output=True
    )
    server = subprocess.Popen(
        [journey, "serve", "--port", str(bot_port), "--workers", str(args.workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(bot_port)
        url = f"http://127.0.0.1:{bot_port}/slack/events"
        response_url = f"http://127.0.0.1:{fake_port}/response/bench"
        results = {}
        asyncio.run(open_loop(url, "help", response_url, 10, 2))  # warm up (auth.test, imports)
        for text in ("help", "funnel"):
            results[f"open_loop_{text}"] = asyncio.run(
                open_loop(url, text, response_url, args.rate, args.seconds)
            )
            results[f"saturation_{text}"] = asyncio.run(
                saturation(url, text, response_url, args.concurrency, args.seconds / 2)
            )
        print(json.dumps(results, indent=2))
    finally:
        server.terminate()
        server.wait(10)
        fake.shutdown()


if __name__ == "__main__":
    main()
