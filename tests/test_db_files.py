"""The SQLite database and its -wal/-shm files are private to the service's user (issue 16).

The attack: `journey.db` was created 0644, and another local user read every customer's
name and email from it. Here the file is made the way journey makes it, under a umask
that would leave it world-readable, and under an earlier version's 0644 file.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from journey.db import make_engine, upgrade


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask():
    old = os.umask(0o022)  # the usual default: new files rw-r--r--
    yield
    os.umask(old)


def _use(engine) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))


def test_a_new_database_and_its_wal_files_are_0600(tmp_path, loose_umask):
    db = tmp_path / "journey.db"
    engine = make_engine(f"sqlite:///{db}")
    _use(engine)
    files = [db, tmp_path / "journey.db-wal", tmp_path / "journey.db-shm"]
    assert all(f.exists() for f in files)
    for f in files:
        assert _mode(f) == 0o600, (f.name, oct(_mode(f)))
    engine.dispose()


def test_an_existing_world_readable_database_is_made_private(tmp_path, loose_umask):
    db = tmp_path / "old.db"
    engine = make_engine(f"sqlite:///{db}")
    _use(engine)
    engine.dispose()
    for suffix in ("", "-wal", "-shm"):
        f = tmp_path / f"old.db{suffix}"
        if f.exists():
            f.chmod(0o644)
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT x FROM t")).scalar_one() == 1
    for suffix in ("", "-wal", "-shm"):
        f = tmp_path / f"old.db{suffix}"
        if f.exists():
            assert _mode(f) == 0o600, (f.name, oct(_mode(f)))
    engine.dispose()


def test_the_cli_creates_its_default_database_private(tmp_path):
    """`journey workspaces` in an empty directory makes ./journey.db as a user would."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    journey = Path(sys.executable).parent / "journey"
    done = subprocess.run(
        ["sh", "-c", f"umask 022 && exec {journey} workspaces"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    db = tmp_path / "journey.db"
    assert db.exists() and _mode(db) == 0o600
    for suffix in ("-wal", "-shm"):
        f = tmp_path / f"journey.db{suffix}"
        if f.exists():
            assert _mode(f) == 0o600


def test_in_memory_databases_are_left_alone():
    engine = make_engine("sqlite://")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
