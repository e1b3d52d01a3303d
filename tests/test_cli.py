"""The `journey` command as a user meets it: clear output, clear errors, no tracebacks."""

import json
import re
import shutil
from pathlib import Path

import pytest

from journey import cli


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    """One demo store for the CLI tests, built once through the CLI itself and copied per test."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABASE_URL", f"sqlite:///{path}")
        mp.setattr("sys.argv", ["journey", "demo", "--until", "2026-06-14"])
        cli._state.settings = None
        cli._state.engine = None
        with pytest.raises(SystemExit) as exit_info:
            cli.main()
        assert exit_info.value.code in (0, None)
        cli._state.engine.dispose()
    return path


@pytest.fixture
def with_demo(tmp_path, demo_db):
    shutil.copy(demo_db, tmp_path / "cli.db")


@pytest.fixture
def run(journey_cli):
    return journey_cli


def test_start_builds_the_demo_once_and_prints_the_overview(run):
    code, out, err = run("start")
    assert code == 0
    assert "building the demo store" in err
    assert "journey overview for Maple Street Vet (demo data)" in out and "Insight:" in out
    # The overview's at-risk line is the churn report's: the same count, from the model.
    at_risk = re.search(r"- At risk: (\d+) customers, .* \(churn model;", out)
    assert at_risk, out
    code, churn, _ = run("report", "churn", "--json")
    assert code == 0 and json.loads(churn)["at_risk_count"] == int(at_risk.group(1))
    code, out, err = run("start")
    assert code == 0 and "building the demo store" not in err


def test_reports_in_text_and_json(with_demo, run):
    code, out, _ = run("report", "funnel", "--since", "2026-03-01", "--until", "2026-05-31")
    assert code == 0
    assert "Funnel for Maple Street Vet (demo data), 2026-03-01 to 2026-05-31" in out
    assert "By acquisition channel" in out
    code, out, _ = run(
        "report", "funnel", "--since", "2026-03-01", "--until", "2026-05-31", "--json"
    )
    data = json.loads(out)
    assert data["report"] == "FunnelReport"
    assert [s["stage"] for s in data["stages"]][:2] == ["awareness", "consideration"]
    assert data["period"]["start"].startswith("2026-03-01")
    for kind in ("retention", "reviews", "insights"):
        code, out, _ = run("report", kind, "--until", "2026-06-14", "--json")
        assert code == 0, kind
        assert json.loads(out)["report"] in {"RetentionReport", "ReviewReport", "Insight"}
    code, out, _ = run("report", "funnel", "--channel", "referral", "-p", "90d")
    assert code == 0 and "channel referral" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["report", "funnel", "--period", "fortnight"],
            "I don't understand the period 'fortnight'",
        ),
        (["report", "funnel", "--since", "2026-13-01"], "is not a date: use YYYY-MM-DD"),
        (
            ["report", "funnel", "--since", "2026-05-01", "--until", "2026-04-01"],
            "ends (2026-04-01) before it starts",
        ),
        (["report", "funnel", "--workspace", "nobody"], "There is no workspace 'nobody'"),
        (["stages", "set", "awareness"], "between 2 and 8 stages"),
        (["stages", "set", "a,b", "--map", "visit"], "should look like kind=stage"),
        (["reviews", "ask", "C99999"], "No customer 'C99999'"),
    ],
)
def test_bad_input_gets_a_clear_message_and_no_traceback(with_demo, run, args, expected):
    code, out, err = run(*args)
    assert code == 2
    assert expected in err
    assert "Traceback" not in out + err


def test_unknown_report_kind_is_a_usage_error(run):
    code, _, err = run("report", "funel")
    assert code == 2
    assert "funnel" in err and "Traceback" not in err


def test_bad_database_url_is_explained(run, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    code, _, err = run("report", "funnel")
    assert code == 2
    assert "Cannot reach the database" in err and "DATABASE_URL" in err


def test_db_upgrade_reports_what_it_did(run):
    code, out, _ = run("db", "upgrade")
    assert code == 0 and "upgraded from empty" in out
    code, out, _ = run("db", "upgrade")
    assert "already at the current schema" in out


def test_stages_set_rebuilds_state_with_the_shorter_journey(with_demo, run):
    code, out, _ = run("stages", "set", "awareness,consideration,decision,retention")
    assert code == 0 and "awareness -> consideration -> decision -> retention" in out
    code, out, _ = run("report", "funnel", "-p", "90d", "--json")
    stages = [s["stage"] for s in json.loads(out)["stages"]]
    assert stages == ["awareness", "consideration", "decision", "retention"]


def test_recording_a_review_request_removes_the_candidate(with_demo, run):
    _, out, _ = run("report", "reviews", "--until", "2026-06-14", "--json")
    before = json.loads(out)
    assert before["candidates"], "the demo always has customers who bought 3-14 days before its end"
    first = before["candidates"][0]["external_id"]
    code, out, _ = run("reviews", "ask", first, "--via", "email")
    assert code == 0 and "asked for a review" in out
    _, out, _ = run("report", "reviews", "--until", "2026-06-14", "--json")
    after = json.loads(out)
    assert first not in [c["external_id"] for c in after["candidates"]]
    assert after["total_candidates"] == before["total_candidates"] - 1


def test_import_reports_each_file_and_refuses_a_file_with_bad_rows(run, tmp_path):
    good = tmp_path / "customers.csv"
    good.write_text("id,name,channel\nc1,Ann,ads\nc2,Bob,ads\n")
    bad = tmp_path / "orders.csv"
    bad.write_text(
        "order_id,customer_id,ordered_at,amount\no1,c1,2026-05-01,10.00\no2,c2,yesterday,5\n"
    )
    code, out, err = run("import", str(good), str(bad))
    assert code == 1
    assert "customers, 2 rows: 2 new, 0 changed, 0 unchanged." in out
    assert "orders.csv: nothing imported, 1 bad row of 2. Fix it," in out and "--skip-bad" in out
    assert "orders.csv:3:" in err
    code, out, _ = run("import", "--skip-bad", str(bad))
    assert "1 new" in out and "1 bad row skipped" in out
    code, out, _ = run("import", str(good))
    assert code == 0 and "imported in full before; nothing changed (2 records unchanged)" in out


def test_import_summary_says_why_there_are_more_events_than_rows(journey_cli, tmp_path):
    """"2 rows: 3 new" read as a miscount; a refunded order is an order and a refund."""
    orders = tmp_path / "refunds.csv"
    orders.write_text(
        "order_id,customer_email,ordered_at,amount,status,refunded_at,refund_amount\n"
        "o1,a@x.com,2026-04-01,40.00,refunded,2026-04-03,40.00\n"
        "o2,b@x.com,2026-04-02,10.00,paid,,\n"
    )
    code, out, err = journey_cli("import", str(orders))
    assert code == 0, out + err
    assert "2 rows giving 3 events (an order and its refund or cancellation are two): 3 new" in out
