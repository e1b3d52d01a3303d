"""How long `journey --help` and `journey workspaces` take against a bare interpreter.

    .venv/bin/python bench/cli_startup.py [--runs 9] [--database postgresql://...]

Each command runs as a fresh process (what a user waits for), `runs` times; the
medians of wall and CPU time are printed with the difference to `python -c pass`, the
floor no command can go below (the target, issue 19: within 0.3 s of it). The machine's
load average is printed before and after: on a shared machine wall times scale with it,
so compare runs taken under the same load; CPU time moves much less. Then the modules each command imports that cost the
most (`python -X importtime`), which is where a slow start comes from.

The database is a new SQLite file with one small workspace, unless `--database` names
another (a PostgreSQL one gets a workspace `shop` with two orders imported into it).
To time another checkout's code with this venv: `PYTHONPATH=/path/to/checkout`.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _medians(
    cmds: dict[str, list[str]], runs: int, env: dict[str, str]
) -> dict[str, tuple[float, float]]:
    """Each command's median wall time and median CPU time (user + system, the process's
    own). The commands take turns, round after round, so a change in the machine's load
    weighs on all of them alike. CPU time hardly moves with the load: it is about what an
    idle machine's wall time would be for a single-threaded start-up like these."""
    walls: dict[str, list[float]] = {label: [] for label in cmds}
    cpus: dict[str, list[float]] = {label: [] for label in cmds}
    for _ in range(runs):
        for label, cmd in cmds.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            walls[label].append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus[label].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return {
        label: (statistics.median(walls[label]), statistics.median(cpus[label])) for label in cmds
    }


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
    parser.add_argument("--database", help="a database URL (default: a new SQLite file)")
    args = parser.parse_args()
    journey = shutil.which("journey") or str(Path(sys.executable).with_name("journey"))
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite:///{Path(tmp) / 'cli.db'}"
        env = dict(os.environ, DATABASE_URL=url)
        env.pop("JOURNEY_WORKSPACE", None)
        # A database with one small workspace, made (and migrated) before timing.
        subprocess.run(
            [journey, "import", "--workspace", "shop", str(_orders(Path(tmp)))],
            check=True,
            stdout=subprocess.DEVNULL,
            env=env,
        )
        print(f"{url.split(':', 1)[0]}; load average {_load()} on {os.cpu_count()} CPUs")
        cmds = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "journey --help": [journey, "--help"],
            "journey workspaces": [journey, "workspaces"],
        }
        # A user's Python keeps compiled bytecode (__pycache__) after the first run; with
        # PYTHONDONTWRITEBYTECODE=1 (set in some sandboxes and CI) every run compiles
        # every module again. Both are timed; the cache lives in the temporary folder.
        cached = dict(env, PYTHONPYCACHEPREFIX=str(Path(tmp) / "pycache"))
        cached.pop("PYTHONDONTWRITEBYTECODE", None)
        uncached = dict(
            env, PYTHONPYCACHEPREFIX=str(Path(tmp) / "empty"), PYTHONDONTWRITEBYTECODE="1"
        )
        _medians(cmds, 1, cached)  # the warm-up writes the cache
        for mode, mode_env in (("bytecode cached", cached), ("no bytecode cache", uncached)):
            took = _medians(cmds, args.runs, mode_env)
            bare_wall, bare_cpu = took.pop("python -c pass")
            print(
                f"{mode}: median of {args.runs} runs; python -c pass {bare_wall * 1000:.0f} ms "
                f"wall, {bare_cpu * 1000:.0f} ms CPU"
            )
            for label, (wall, cpu) in took.items():
                print(
                    f"  {label:<19} {wall * 1000:6.0f} ms wall (+{(wall - bare_wall) * 1000:.0f}),"
                    f" {cpu * 1000:6.0f} ms CPU (+{(cpu - bare_cpu) * 1000:.0f})"
                )
        print("slowest imports (-X importtime, bytecode cached):")
        for label, cmd in cmds.items():
            if label.startswith("journey"):
                print(f"  {label}")
                for micros, name in _top_imports(cmd, cached):
                    print(f"    {name:<28} {micros / 1000:7.0f} ms")
        print(f"load average {_load()} at the end")


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "unknown"


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
