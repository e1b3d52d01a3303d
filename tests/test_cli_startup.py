"""`journey workspaces` answers from a current database without SQLAlchemy or pydantic,
and from any other database exactly as before: the schema created or upgraded first.

What it costs in time is measured in bench/cli_startup.py (bench/README.md, "CLI start-up");
these tests hold what the speed rests on and that the answer does not change with it.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine, text

from journey.db import make_engine, upgrade
from journey.plain_sql import file_head, sqlite_file

ORDERS = (
    "order_id,email,ordered_at,amount\n"
    "1,ana@example.com,2026-05-03,42.50\n"
    "2,ben@example.com,2026-05-10,18.00\n"
    "3,ana@example.com,2026-06-01,55.00\n"
)
HEAVY = ("sqlalchemy", "sqlmodel", "alembic", "pydantic", "rich", "numpy")


def _workspaces_in_a_fresh_process(url: str, cwd: Path) -> tuple[str, list[str]]:
    """`journey workspaces` as a user runs it: its output, and the heavy modules it loaded."""
    probe = (
        "import sys\nfrom journey import cli\nsys.argv = ['journey', 'workspaces']\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "JOURNEY_WORKSPACE"}
    env["DATABASE_URL"] = url
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out, _, heavy = done.stdout.rpartition("HEAVY ")
    return out, ast.literal_eval(heavy)  # the list the probe printed


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_workspaces_on_a_current_database_loads_neither_sqlalchemy_nor_pydantic(
    engine, journey_cli, tmp_path, monkeypatch
):
    monkeypatch.setenv("DATABASE_URL", _url(engine))
    (tmp_path / "orders.csv").write_text(ORDERS)
    code, _, err = journey_cli("import", "orders.csv", "--workspace", "shop")
    assert code == 0, err
    code, in_process, _ = journey_cli("workspaces")  # the same command, in the test's process
    assert code == 0

    out, heavy = _workspaces_in_a_fresh_process(_url(engine), tmp_path)
    assert out == "shop  shop  2 customers, 3 events\n" == in_process
    assert heavy == []


def test_workspaces_on_a_database_behind_the_code_upgrades_it_first(tmp_path):
    db = tmp_path / "old.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine, "0010")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO workspace (id, name, timezone, currency, review_min_days, "
                "review_max_days, review_cooldown_days, at_risk_factor, created_at) "
                "VALUES ('T1', 'Old shop', 'UTC', 'USD', 3, 14, 90, 2.0, 0)"
            )
        )
    engine.dispose()

    out, heavy = _workspaces_in_a_fresh_process(f"sqlite:///{db}", tmp_path)
    assert out == "T1  Old shop  0 customers, 0 events\n"
    assert "sqlalchemy" in heavy  # the full path: it upgraded the schema
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == file_head()
    engine.dispose()


def test_workspaces_with_no_database_file_creates_it_with_the_schema(tmp_path):
    out, heavy = _workspaces_in_a_fresh_process(f"sqlite:///{tmp_path / 'new.db'}", tmp_path)
    assert out == "No workspaces yet: `journey demo` builds one.\n"
    assert (tmp_path / "new.db").exists() and "sqlalchemy" in heavy


def test_sqlite_urls_are_read_as_sqlalchemy_reads_them():
    from sqlalchemy import make_url

    for url in ("sqlite:///rel/x.db", "sqlite:////abs/x.db", "sqlite:///a%20b.db"):
        assert sqlite_file(url) == Path(make_url(url).database)
    for other in (
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///x.db?timeout=3",
        "sqlite:///file:x",
    ):
        assert sqlite_file(other) is None  # the full path's to handle
