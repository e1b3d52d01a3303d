#!/usr/bin/env python3
"""The two Quick start commands: `python3 run.py` and `python3 run.py test`.

Only a Python 3.11+ interpreter is assumed. The script installs uv (the pinned
version below) into `.venv-bootstrap/`, lets uv build `.venv/` from the lock
file, and then hands over to the installed `journey` command or to pytest, so a
fresh clone and CI take the same path.

    python3 run.py            the main job: `journey bot` (local console without Slack tokens)
    python3 run.py test [..]  ruff, then the whole pytest suite (extra args go to pytest)
    python3 run.py journey .. any `journey` subcommand inside the project environment
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

UV_VERSION = "0.13.9"
ROOT = Path(__file__).resolve().parent
BOOTSTRAP = ROOT / ".venv-bootstrap"
VENV = ROOT / ".venv"


def _bin(env: Path, name: str) -> Path:
    sub = "Scripts" if os.name == "nt" else "bin"
    suffix = ".exe" if os.name == "nt" else ""
    return env / sub / f"{name}{suffix}"


def _uv() -> Path:
    """Return a uv binary, installing the pinned one on first use."""
    uv = _bin(BOOTSTRAP, "uv")
    if not uv.exists():
        print(f"journey: installing uv {UV_VERSION} into {BOOTSTRAP.name}/ (first run only)")
        venv.EnvBuilder(with_pip=True, clear=True).create(BOOTSTRAP)
        subprocess.run(
            [str(_bin(BOOTSTRAP, "python")), "-m", "pip", "install", "-q", f"uv=={UV_VERSION}"],
            check=True,
        )
    return uv


def _sync(dev: bool) -> None:
    """Make .venv match uv.lock exactly (fast no-op when it already does)."""
    args = [str(_uv()), "sync", "--frozen", "--quiet", "--python", sys.executable]
    if not dev:
        # --inexact keeps the test tools a previous `run.py test` installed.
        args += ["--no-dev", "--inexact"]
    env = dict(os.environ, UV_PROJECT_ENVIRONMENT=str(VENV), UV_PYTHON_DOWNLOADS="never")
    subprocess.run(args, check=True, cwd=ROOT, env=env)


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 (run.py may be started by an old python3)
        print("journey needs Python 3.11 or newer; run this script with python3.11 or later.")
        return 2
    command = argv[0] if argv else "start"
    if command == "test":
        _sync(dev=True)
        lint = subprocess.run([str(_bin(VENV, "ruff")), "check", "."], cwd=ROOT)
        if lint.returncode:
            return lint.returncode
        return subprocess.run([str(_bin(VENV, "pytest")), *argv[1:]], cwd=ROOT).returncode
    if command == "start":
        _sync(dev=False)
        return subprocess.run([str(_bin(VENV, "journey")), "bot", *argv[1:]], cwd=ROOT).returncode
    if command == "journey":
        _sync(dev=False)
        return subprocess.run([str(_bin(VENV, "journey")), *argv[1:]], cwd=ROOT).returncode
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
