"""How long `journey --help` and `journey workspaces` take against a bare interpreter.

    .venv/bin/python bench/cli_startup.py [--runs 9] [--database sqlite:///bench-cli.db]

Each command runs as a fresh process (what a user waits for), `runs` times; the
medians are printed with the difference to `python -c pass`, the floor no command
can go below. The machine's load average is printed too: on a shared machine the
figures scale with it, so compare runs taken under the same load. Then the modules
each command imports that cost the most (`python -X importtime`), which is where a
slow start comes from.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _median(cmd: list[str], runs: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _top_imports(cmd: list[str], env: dict[str, str], top: int = 6) -> list[tuple[int, str]]:
    """The top-level modules with the largest cumulative import time, in microseconds."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *cmd],
        capture_output=True,
        text=True,
        env=env,
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if name.startswith("  "):  # not a top-level import
            continue
        try:
            rows.append((int(cumulative), name.strip()))
        except ValueError:
            continue
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    journey = shutil.which("journey") or str(Path(sys.executable).with_name("journey"))
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, DATABASE_URL=f"sqlite:///{Path(tmp) / 'cli.db'}")
        env.pop("JOURNEY_WORKSPACE", None)
        # A database with one small workspace, made (and migrated) before timing.
        subprocess.run(
            [journey, "import", "--workspace", "shop", str(_orders(Path(tmp)))],
            check=True,
            stdout=subprocess.DEVNULL,
            env=env,
        )
        bare = _median([sys.executable, "-c", "pass"], args.runs, env)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"load average {load:.1f} on {os.cpu_count()} CPUs; median of {args.runs} runs")
        print(f"python -c pass        {bare * 1000:7.0f} ms")
        for words in (["--help"], ["workspaces"]):
            took = _median([journey, *words], args.runs, env)
            label = "journey " + " ".join(words)
            print(f"{label:<21} {took * 1000:7.0f} ms  (+{(took - bare) * 1000:.0f} ms)")
            for micros, name in _top_imports([journey, *words], env):
                print(f"    {name:<28} {micros / 1000:7.0f} ms")


def _orders(folder: Path) -> Path:
    path = folder / "orders.csv"
    path.write_text(
        "order_id,email,ordered_at,amount\n"
        "1,ana@example.com,2026-05-03,42.50\n"
        "2,ben@example.com,2026-05-10,18.00\n"
    )
    return path


if __name__ == "__main__":
    main()
