"""Soak benchmark: mixed `/journey` commands at a steady rate against one `journey serve`.

Issue 18's measurement: at 30 mixed commands a second for 10 minutes every command
was acknowledged, but replies took minutes (p99 312 s) and memory grew with the
queue. This runs the same shape and reports, per command sent:

- the acknowledgement's latency (the HTTP response to the signed request);
- the reply's latency: from sending to the first answer at its response URL that
  is not a "Working on..." message (a report, or a "busy, try again" refusal);
- how many were answered with a report, refused as busy, or not answered at all;
- the server's resident memory (VmRSS) and the machine's 1-minute load average,
  sampled every `--sample` seconds, with a per-minute table (commands sent, refused,
  reply p50/p99, memory and load at the minute's end) so growth over a long run shows;
- with `--out FILE`, all of it as JSON (the samples included).

Three processes share the machine: a fake Slack (records every response-URL post
with its arrival time), the bot (`journey serve`, one uvicorn worker, on the demo
store), and this load generator.

    .venv/bin/python bench/soak.py [--seconds 90] [--rate 30] [--drain 60] [--out soak.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ack import SECRET, TOKEN, free_port, signed, wait_for

# The mix: reports (with and without charts), settings reads and help.
MIX = (
    "funnel 30d",
    "funnel 90d",
    "funnel 30d by channel",
    "retention",
    "churn",
    "reviews",
    "value",
    "sources",
    "digest",
    "alerts",
    "help",
)


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.posts: dict[str, list[tuple[float, str]]] = {}


RECORDER = Recorder()


class FakeSlack(BaseHTTPRequestHandler):
    """auth.test, every other Web API call answered ok, and response URLs recorded."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        self._answer(raw)

    def do_GET(self) -> None:
        # slack_sdk sends users.info (the access check, bot/guard/access.py) as a GET
        # with the arguments in the query string; without this every command was
        # refused by the access check in milliseconds, which looked like a fast report.
        self._answer(b"")

    def _answer(self, raw: bytes) -> None:
        if self.path.startswith("/response/"):
            name = self.path.rsplit("/", 1)[-1]
            try:
                text = str(json.loads(raw or b"{}").get("text") or "")
            except ValueError:
                text = ""
            with RECORDER.lock:
                RECORDER.posts.setdefault(name, []).append((time.time(), text))
            body: dict[str, object] = {"ok": True}
        elif self.path.startswith("/api/auth.test"):
            body = {"ok": True, "team_id": "TBENCH", "user_id": "UBOT", "bot_id": "BBOT"}
        elif self.path.startswith("/api/users.info"):
            body = {
                "ok": True,
                "user": {"id": "UBENCH", "team_id": "TBENCH", "tz": "UTC", "is_admin": True},
            }
        else:
            body = {"ok": True}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-OAuth-Scopes", "commands,chat:write,files:write,users:read")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: object) -> None:
        return


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def quantiles(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        return {"n": len(values)}
    q = statistics.quantiles(values, n=100)
    return {
        "n": len(values),
        "p50": round(q[49], 3),
        "p95": round(q[94], 3),
        "p99": round(q[98], 3),
        "max": round(max(values), 3),
    }


REFUSALS = ("Something went wrong", "too many", "Too many", "can't", "cannot", "restarting")


def is_refusal(text: str) -> bool:
    """An answer that is no report: an error or a refusal other than busy."""
    return any(word in text for word in REFUSALS)


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares growth in MB per minute (flat memory: near 0)."""
    if len(points) < 3:
        return None
    xs = [t for t, _ in points]
    ys = [v for _, v in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    if not den:
        return None
    return round(60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den, 3)


def at_or_before(samples: list[tuple[float, float]], when: float) -> float | None:
    """The last sample taken at or before `when`."""
    last = None
    for t, v in samples:
        if t > when:
            break
        last = v
    return round(last, 1) if last is not None else None


async def load(url: str, fake: str, rate: float, seconds: float) -> tuple[dict, list]:
    sent: dict[str, tuple[float, str]] = {}
    acks: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int, text: str) -> None:
            nonlocal errors
            name = f"r{i}"
            body, headers = signed(text, f"{fake}/response/{name}")
            start = time.time()
            sent[name] = (start, text)
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                        return
                    if text == "help":  # answered in the acknowledgement itself
                        with RECORDER.lock:
                            RECORDER.posts.setdefault(name, []).append((time.time(), "help"))
                acks.append(time.time() - start)
            except Exception:
                errors += 1

        tasks = []
        begin = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i, MIX[i % len(MIX)])))
        await asyncio.gather(*tasks)
    return {"sent": len(sent), "ack_errors": errors, "ack_s": quantiles(acks)}, [
        (name, at, text) for name, (at, text) in sent.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=90)
    parser.add_argument("--rate", type=float, default=30)
    parser.add_argument("--drain", type=float, default=60, help="seconds to wait for answers")
    parser.add_argument("--sample", type=float, default=2, help="seconds between RSS samples")
    parser.add_argument("--out", type=Path, help="write the result (with every sample) as JSON")
    args = parser.parse_args()

    fake_port, bot_port = free_port(), free_port()
    server_fake = ThreadingHTTPServer(("127.0.0.1", fake_port), FakeSlack)
    threading.Thread(target=server_fake.serve_forever, daemon=True).start()
    tmp = tempfile.mkdtemp(prefix="journey-soak-")
    env = dict(
        os.environ,
        DATABASE_URL=f"sqlite:///{tmp}/soak.db",
        JOURNEY_WORKSPACE="TBENCH",
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=f"http://127.0.0.1:{fake_port}/api/",
        JOURNEY_SCHEDULER_INTERVAL="0",
        JOURNEY_SYNC_INTERVAL="0",
        # Every command comes from one user: the per-user rate limit (10 a minute by
        # default, bot/guard) would refuse nearly all of them; the pool is measured here.
        JOURNEY_COMMANDS_PER_MINUTE="1000000",
    )
    env.pop("SLACK_APP_TOKEN", None)
    journey = str(Path(sys.executable).parent / "journey")
    subprocess.run(
        [journey, "demo", "--workspace", "TBENCH"], env=env, check=True, capture_output=True
    )
    log_path = Path(tmp) / "serve.log"
    with log_path.open("w") as log_file:
        server = subprocess.Popen(
            [journey, "serve", "--port", str(bot_port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    memory: list[tuple[float, float]] = []
    loads: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            mb = rss_mb(server.pid)
            if mb is not None:
                memory.append((time.time(), mb))
            loads.append((time.time(), os.getloadavg()[0]))
            stop.wait(args.sample)

    try:
        wait_for(bot_port)
        url = f"http://127.0.0.1:{bot_port}/slack/events"
        fake = f"http://127.0.0.1:{fake_port}"
        asyncio.run(load(url, fake, 5, 2))  # warm up (imports, first queries)
        with RECORDER.lock:
            RECORDER.posts.clear()
        threading.Thread(target=sample, daemon=True).start()
        started = time.time()
        summary, sent = asyncio.run(load(url, fake, args.rate, args.seconds))
        deadline = time.time() + args.drain
        while time.time() < deadline:
            with RECORDER.lock:
                done = sum(
                    1
                    for name, _, _ in sent
                    if any(not t.startswith("Working on") for _, t in RECORDER.posts.get(name, []))
                )
            if done == len(sent):
                break
            time.sleep(1)
        stop.set()
        replies: list[float] = []
        report_replies: list[float] = []
        busy = unanswered = 0
        others: Counter[str] = Counter()  # final answers that are neither report nor busy
        kinds: Counter[str] = Counter()  # every final answer by its first words
        # Per minute of the run (by when the command was sent): [sent, busy, replies].
        minutes: dict[int, list] = {}
        with RECORDER.lock:
            for name, at, _text in sent:
                row = minutes.setdefault(int((at - started) // 60), [0, 0, []])
                row[0] += 1
                finals = [
                    (t, body)
                    for t, body in RECORDER.posts.get(name, [])
                    if not body.startswith("Working on")
                ]
                if not finals:
                    unanswered += 1
                    continue
                first, body = min(finals)
                kinds[" ".join(body.split()[:4])] += 1
                replies.append(first - at)
                row[2].append(first - at)
                if "busy" in body:
                    busy += 1
                    row[1] += 1
                elif is_refusal(body):
                    others[body[:80]] += 1
                else:
                    report_replies.append(first - at)
        mid = [mb for t, mb in memory if t - started <= args.seconds / 2]
        summary.update(
            {
                "rate_per_s": args.rate,
                "seconds": args.seconds,
                "answered": len(replies),
                "answered_with_report": len(report_replies),
                "refused_busy": busy,
                "other_answers": dict(others.most_common(10)),
                "answers_by_first_words": dict(kinds.most_common(15)),
                "unanswered": unanswered,
                "reply_s_all": quantiles(replies),
                "reply_s_reports": quantiles(report_replies),
                "rss_mb": {
                    "start": round(memory[0][1], 1) if memory else None,
                    "half": round(mid[-1], 1) if mid else None,
                    "end": round(memory[-1][1], 1) if memory else None,
                    "max": round(max(mb for _, mb in memory), 1) if memory else None,
                },
                "rss_slope_mb_per_min_second_half": slope(
                    [(t, mb) for t, mb in memory if t - started > args.seconds / 2]
                ),
                "load_average_1m": {
                    "min": round(min(v for _, v in loads), 2) if loads else None,
                    "median": round(statistics.median(v for _, v in loads), 2) if loads else None,
                    "max": round(max(v for _, v in loads), 2) if loads else None,
                    "end": round(os.getloadavg()[0], 2),
                },
                "cpus": os.cpu_count(),
                "by_minute": [
                    {
                        "minute": m,
                        "sent": row[0],
                        "refused_busy": row[1],
                        "reply_p50": quantiles(row[2]).get("p50"),
                        "reply_p99": quantiles(row[2]).get("p99"),
                        "rss_mb": at_or_before(memory, started + 60 * (m + 1)),
                        "load_1m": at_or_before(loads, started + 60 * (m + 1)),
                    }
                    for m, row in sorted(minutes.items())
                ],
            }
        )
        print(json.dumps(summary, indent=2))
        if args.out is not None:
            full = dict(
                summary,
                samples=[{"s": round(t - started, 1), "rss_mb": round(mb, 1)} for t, mb in memory],
                load_samples=[{"s": round(t - started, 1), "load_1m": v} for t, v in loads],
            )
            args.out.write_text(json.dumps(full, indent=1) + "\n")
    finally:
        server.terminate()
        try:
            server.wait(40)
        except subprocess.TimeoutExpired:
            server.kill()
        server_fake.shutdown()
        tail = log_path.read_text().splitlines()[-3:] if log_path.exists() else []
        print("\n".join(tail), file=sys.stderr)


if __name__ == "__main__":
    main()
