"""A manager's first hour (issue 19), driven as they drive it: the `journey` command and the
local console through its input, asserting the words they read."""

from __future__ import annotations

import json
import re
import shutil
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine

from bot.console import run_console
from journey.db import make_engine, session_scope, upgrade
from journey.demo import load_demo

DEMO_END = date(2026, 6, 15)

# The README's "your own data in five minutes" file: four columns, one row per order.
ORDERS = """order_id,email,ordered_at,amount
1001,ana@example.com,2026-05-03,42.50
1002,ben@example.com,2026-05-10,18.00
1003,ana@example.com,2026-06-01,55.00
1004,cy@example.com,2026-06-02,30.00
"""


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory) -> Path:
    """One demo store in workspace `local`, built once and copied per test."""
    path = tmp_path_factory.mktemp("first_hour") / "demo.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with session_scope(engine) as session:
        load_demo(session, "local", DEMO_END)
    engine.dispose()
    return path


@pytest.fixture
def cli(journey_cli, tmp_path, demo_template):
    """`journey ...` on a copy of the demo database, with orders.csv in the working directory."""
    shutil.copy(demo_template, tmp_path / "cli.db")
    (tmp_path / "orders.csv").write_text(ORDERS)
    return journey_cli


def _customers(cli, workspace: str) -> int | None:
    code, out, _ = cli("workspaces")
    assert code == 0
    for line in out.splitlines():
        if line.split()[0] == workspace:
            return int(line.split("  ")[-1].split()[0])
    return None


def test_importing_into_the_demo_workspace_asks_for_a_workspace_of_its_own(cli):
    before = _customers(cli, "local")
    code, out, err = cli("import", "orders.csv")
    assert code == 2
    assert "holds the demo store (Maple Street Vet)" in err
    assert "`journey import orders.csv --workspace myshop`" in err
    assert "--into-demo" in err and "`journey demo remove --workspace local`" in err
    assert _customers(cli, "local") == before  # nothing written

    code, out, err = cli("import", "orders.csv", "--workspace", "myshop")
    assert code == 0 and "4 rows: 4 new" in out
    assert _customers(cli, "myshop") == 3
    code, out, _ = cli("report", "funnel", "--workspace", "myshop", "--until", "2026-06-14")
    assert out.startswith("Funnel for myshop, ") and "demo" not in out.splitlines()[0]


def test_into_demo_mixes_on_purpose_and_every_header_says_so(cli):
    code, out, _ = cli("import", "orders.csv", "--into-demo")
    assert code == 0
    code, out, _ = cli("report", "churn", "--until", "2026-06-14")
    assert out.startswith("Churn for Maple Street Vet (demo data mixed with your own), as of")


def test_demo_reports_say_demo_data_in_their_headers(cli):
    for kind, head in (
        ("funnel", "Funnel for Maple Street Vet (demo data), "),
        ("retention", "Retention for Maple Street Vet (demo data), "),
        ("churn", "Churn for Maple Street Vet (demo data), "),
        ("reviews", "Review candidates for Maple Street Vet (demo data)"),
    ):
        code, out, _ = cli("report", kind, "--until", "2026-06-14")
        assert code == 0 and out.startswith(head), (kind, out[:120])


def test_demo_remove_keeps_own_data_and_the_demo_does_not_come_back(cli):
    cli("import", "orders.csv", "--into-demo")
    code, out, _ = cli("demo", "remove")
    assert code == 0
    assert "Removed the demo store from workspace 'local'" in out
    assert "journey import orders.csv --workspace myshop" in out
    assert _customers(cli, "local") == 3  # the imported ones
    code, out, _ = cli("report", "funnel", "--until", "2026-06-14")
    assert out.startswith("Funnel for local, ")
    code, out, _ = cli("demo", "remove")
    assert code == 0 and "holds no demo store" in out

    cli("demo", "remove", "--workspace", "local")
    code, out, err = cli("start", "--workspace", "empty")
    assert code == 0 and "is new: building the demo store" in err


def test_start_on_an_emptied_workspace_says_how_to_bring_data(cli):
    cli("demo", "remove")
    code, _out, err = cli("start")
    assert code == 2
    assert "Workspace 'local' is empty." in err
    assert "journey import orders.csv --workspace myshop" in err
    assert "building the demo" not in err


def test_the_demo_is_not_built_into_a_workspace_with_own_data(cli):
    cli("import", "orders.csv", "--workspace", "myshop")
    code, _, err = cli("demo", "--workspace", "myshop")
    assert code == 2
    assert "holds your own data" in err and "`journey demo --workspace demo`" in err
    assert _customers(cli, "myshop") == 3


def test_connecting_a_source_into_the_demo_workspace_is_refused_first(cli, monkeypatch):
    monkeypatch.setenv("JOURNEY_SECRET_KEY", "6pSmCH4WSlNM3f2-6tVu8bYd7c4vNXYTmfJkA1XiF6k=")
    monkeypatch.setenv("STRIPE_KEY", "rk_test_not_used")
    code, _, err = cli("sources", "add", "stripe", "--name", "shop", "--key-env", "STRIPE_KEY")
    assert code == 2
    assert "holds the demo store" in err
    assert "`journey sources add stripe --name shop --workspace myshop`" in err


def _console(engine: Engine, workspace: str, *lines: str) -> str:
    said: list[str] = []
    feed = iter([*lines, "exit"])
    run_console(engine, workspace, read=lambda _p: next(feed), say=said.append, interval=0)
    return "\n".join(said)


def test_the_console_banner_shows_how_to_bring_your_own_data_and_headers_say_demo(
    tmp_path, demo_template, monkeypatch
):
    monkeypatch.setenv("JOURNEY_SYNC_INTERVAL", "0")
    shutil.copy(demo_template, tmp_path / "c.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    out = _console(engine, "local", "/journey churn", "/journey reviews")
    banner = out.split("\n\n")[0]
    assert (
        "Your own data: journey import orders.csv --workspace myshop (columns "
        "order_id,email,ordered_at,amount)" in banner
    )
    assert "Funnel · Maple Street Vet (demo data) ·" in out
    assert "Churn · Maple Street Vet (demo data) · as of" in out
    assert "Whom to ask for a review · Maple Street Vet (demo data)" in out
    engine.dispose()


# --- numbers that say what they mean -------------------------------------------------------


def test_a_month_under_way_is_compared_with_the_same_days_of_the_last_one(cli, monkeypatch):
    from datetime import UTC, datetime

    monkeypatch.setattr("journey.cli._now", lambda: datetime(2026, 6, 7, 12, 0, tzinfo=UTC))
    code, out, _ = cli("report", "funnel", "--period", "this-month")
    assert code == 0
    assert out.startswith(
        "Funnel for Maple Street Vet (demo data), 2026-06-01 to 2026-06-07 (7 of 30 days so far)"
    )
    assert "against the same 7 days of the previous month)" in out
    code, out, _ = cli("report", "retention", "--period", "this-month")
    assert "(7 of 30 days so far)" in out.splitlines()[0]
    assert "against the same 7 days of the previous month" in out


def test_a_shop_with_orders_only_gets_no_advice_on_nothing(cli, tmp_path, monkeypatch):
    cli("import", "orders.csv", "--workspace", "myshop")
    code, out, _ = cli("report", "funnel", "--workspace", "myshop", "--until", "2026-06-14")
    assert code == 0
    assert (
        "The first three stages (awareness, consideration, decision) are inferred from "
        "purchases: connect a CRM or import events to measure them." in out
    )
    for advice in ("drop-off", "Insight", "Playbook", "Only 100.0%"):
        assert advice not in out
    code, out, _ = cli("report", "insights", "--workspace", "myshop", "--until", "2026-06-14")
    assert "drop-off" not in out and "Playbook" not in out

    monkeypatch.setenv("JOURNEY_SYNC_INTERVAL", "0")
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    said = _console(engine, "myshop", "/journey funnel 2026-05-01..2026-06-14")
    engine.dispose()
    assert "inferred from purchases: connect a CRM or import events" in said
    assert "drop-off" not in said and "Playbook" not in said


def test_churn_with_a_length_of_time_is_refused_with_what_a_period_does_there(cli, tmp_path):
    code, _, err = cli("report", "churn", "--period", "90d")
    assert code == 2
    assert "would show the same as no period: churn judges who is at risk on one day" in err
    assert "`--until 2026-06-30`" in err and "`last-month`" in err
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    said = _console(engine, "local", "/journey churn 90d", "/journey churn 2026-06-10")
    engine.dispose()
    assert "/journey churn 90d would show the same as no period" in said
    assert "Churn · Maple Street Vet (demo data) · as of 2026-06-11 00:00 UTC" in said


def test_each_report_says_what_its_headline_number_means(cli):
    code, funnel, _ = cli("report", "funnel", "--until", "2026-06-14")
    assert code == 0
    assert "Entered: people whose first visit, sign-up or purchase fell in the period" in funnel
    assert "(38." not in funnel and "95% intervals" not in funnel  # intervals are details
    _, funnel, _ = cli("report", "funnel", "--until", "2026-06-14", "--details")
    assert "95% intervals in brackets: the range the true rate lies in 19 times out of 20" in funnel
    _, retention, _ = cli("report", "retention", "--until", "2026-06-14")
    assert (
        "Repeat rate: the share of everyone who has bought who bought on two or more" in retention
    )
    assert "Overdue now:" in retention and "At risk" not in retention
    code, out, _ = cli("report", "churn", "--until", "2026-06-14", "--json")
    assert code == 0
    data = json.loads(out)
    assert "chance of still being customers" in data["definitions"]["at_risk_count"]
    assert "r and alpha shape how often customers buy" in data["definitions"]["r, alpha, a, b"]


def test_the_funnels_insight_and_the_retention_report_name_returning_customers_alike(cli, tmp_path):
    """ "retention 4" in the funnel and "only 76 came back" in its insight read as one
    number: the insight now names the retention report's number, and the CLI shows the
    insight Slack and the console show (it showed the funnel's own before)."""
    code, _, err = cli("demo", "--until", "2026-12-08", "--workspace", "dec")
    assert code == 0, err
    _, funnel, _ = cli("report", "funnel", "-w", "dec", "--until", "2026-12-08")
    _, retention, _ = cli("report", "retention", "-w", "dec", "--until", "2026-12-08")
    insight = (
        "Insight: Returning customers (anyone who bought again in the period) fell to 78, "
        "from 130 in the previous period of the same length (-40%"
    )
    assert insight in funnel
    assert "Returning customers: 78 bought again in the period (-40%" in retention
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    said = _console(engine, "dec", "/journey funnel 2026-11-09..2026-12-08")
    engine.dispose()
    assert insight in said and "came back to buy again" not in said


# --- the console does what its replies say --------------------------------------------------


@pytest.fixture
def console(tmp_path, demo_template, monkeypatch):
    """Lines typed into the console (workspace `local`, the demo), the text it printed."""
    monkeypatch.setenv("JOURNEY_SYNC_INTERVAL", "0")
    monkeypatch.chdir(tmp_path)
    shutil.copy(demo_template, tmp_path / "c.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    yield lambda *lines: _console(engine, "local", *lines)
    engine.dispose()


def test_every_button_shows_what_to_type_and_the_typed_form_works(console, tmp_path):
    out = console("/journey funnel 2026-05-01..2026-06-14", "/journey churn 2026-06-14")
    assert "[Compare with previous period: /journey funnel 2026-05-01..2026-06-14 compare]" in out
    assert "[By channel: /journey funnel 2026-05-01..2026-06-14 by channel]" in out
    assert "[All customers at risk (CSV): /journey churn 2026-06-14 csv]" in out

    out = console("/journey funnel 2026-05-01..2026-06-14 compare")
    assert "Against the previous period (" in out

    out = console("/journey churn 2026-06-14 csv")
    saved = next(line for line in out.splitlines() if "Saved " in line)
    path = Path(saved.split(" to ", 1)[1].strip())
    assert path.parent == tmp_path and path.exists()
    count = int(saved.split("Saved ")[1].split()[0])
    assert count > 0 and len(path.read_text().strip().splitlines()) == count + 1


def test_review_buttons_typed_by_name_or_email_take_the_customer_off_the_list(
    tmp_path, monkeypatch
):
    # Review candidates bought 3 to 14 days ago: a demo ending today has some.
    monkeypatch.setenv("JOURNEY_SYNC_INTERVAL", "0")
    engine = make_engine(f"sqlite:///{tmp_path / 'today.db'}")
    upgrade(engine)
    with session_scope(engine) as session:
        load_demo(session, "local")

    def console(*lines: str) -> str:
        return _console(engine, "local", *lines)

    out = console("/journey reviews")
    first = next(line for line in out.splitlines() if "[Asked: /journey reviews asked " in line)
    email = first.split("[Asked: /journey reviews asked ", 1)[1].split("]")[0]
    assert "@" in email  # names repeat; the email names one customer
    out = console(f"/journey reviews asked {email.upper()}", "/journey reviews")
    assert "asked for a review. They leave the review list for the cooldown." in out
    assert f"[Asked: /journey reviews asked {email}]" not in out.split("Recorded:")[1]
    out = console("/journey reviews skip nobody@example.com")
    assert "No customer 'nobody@example.com' here" in out
    engine.dispose()


def test_help_for_one_command_and_errors_in_one_line(console):
    out = console("/journey help churn").split("Who is at risk of leaving for good", 1)
    assert len(out) == 2
    assert "/journey digest weekly" not in out[1]  # one command, not the whole help
    out = console("/journey funel")
    line = next(x for x in out.splitlines() if "funel" in x)
    assert (
        "Did you mean /journey funnel?" in line and "/journey help funnel lists the forms" in line
    )
    assert "/journey digest weekly" not in out.split("funel", 1)[1]


def test_periods_and_channels_as_people_type_them(console):
    out = console(
        "/journey funnel last month", "/journey funnel november", "/journey funnel lastmonth"
    )
    assert out.count("I don't understand") == 1  # only the third
    assert out.count("Funnel · Maple Street Vet (demo data) · ") == 3  # the opening one too
    assert "I don't understand the period 'lastmonth'. Did you mean last-month?" in out
    out = console("/journey funnel channel Facebook", "/journey funnel channel tiktok")
    assert "· facebook" in out  # the workspace's own spelling
    assert (
        "No customer came through a channel called 'tiktok'. The channels are: facebook, "
        "google_maps, google_search, instagram, referral, walk_in." in out
    )


def test_a_length_of_time_typed_in_words_is_a_period(console):
    out = console("/journey funnel 90 days", "/journey retention 6 months")
    assert "I don't understand" not in out
    assert out.count("Funnel · Maple Street Vet (demo data) · ") == 2  # the opening one too
    assert "Retention · Maple Street Vet (demo data) · " in out


def test_the_cli_takes_a_length_of_time_in_words_too(cli):
    code, out, err = cli("report", "retention", "--period", "6 months")
    assert code == 0, err
    assert out.startswith("Retention for Maple Street Vet (demo data), ")


def test_sources_and_sync_agree_and_clear_clears(console):
    out = console("/journey sources", "/journey sync", "clear")
    assert "never synced" not in out
    assert "demo data, built on " in out
    # Both counts with thousands separators (it said "3,656 customers, 8753 events").
    assert re.search(
        r"demo data, built on \S+ · \d{1,3}(,\d{3})+ customers, \d{1,3}(,\d{3})+ events", out
    )
    assert "Nothing to sync: demo (demo) came from imported files or the demo" in out
    assert "I don't know" not in out


def test_the_console_headers_name_your_own_workspace(cli, tmp_path, monkeypatch):
    """Issue 19: the business in every report header. A workspace the operator named
    (`--workspace myshop`) is its name in the console as in the CLI; only a bare Slack
    team id, which means nothing in Slack, is left out."""
    from types import SimpleNamespace

    from journey.render.format import owner
    from journey.reports import Business

    monkeypatch.setenv("JOURNEY_SYNC_INTERVAL", "0")
    cli("import", "orders.csv", "--workspace", "myshop")
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    out = _console(engine, "myshop", "/journey churn", "/journey retention 2026-05-01..2026-06-14")
    engine.dispose()
    assert "Churn · myshop · as of" in out and "Retention · myshop · 2026-05-01" in out
    slack = SimpleNamespace(business=Business("T0123ABCD", "T0123ABCD"))
    assert owner(slack, ids=False) == "" and owner(slack) == "T0123ABCD"


def test_a_digest_preview_promises_no_next_digest_in_a_channel_without_one(console):
    # It said "Next digest Mon ..., 09:00" under a preview where /journey digest said
    # the channel gets none.
    out = console("/journey digest", "/journey digest now")
    assert "This channel gets no digest." in out
    assert (
        "This channel gets no digest yet: /journey digest weekly monday 09:00 sends it one "
        "like this preview." in out
    )
    assert "Next digest" not in out
    out = console("/journey digest weekly monday 09:00", "/journey digest now")
    assert "Next digest Mon " in out and "gets no digest yet" not in out


def test_connect_in_the_console_says_how_to_connect_apart_from_the_demo(console):
    out = console("/journey connect")
    assert (
        "The console has no forms: connect a store or CRM on the command line, in a workspace "
        "of its own (this one holds the demo): journey sources add stripe --name shop "
        "--workspace myshop, then open the console on it with "
        "JOURNEY_WORKSPACE=myshop python3 run.py." in out
    )
    assert "(soon)" not in out


def test_the_import_summary_counts_rows_events_and_bad_rows_in_words(cli, tmp_path):
    (tmp_path / "refunds.csv").write_text(
        "order_id,email,ordered_at,amount,refunded_amount\n"
        "1001,ana@example.com,2026-05-03,42.50,\n"
        "1002,ben@example.com,2026-05-10,18.00,18.00\n"
        "1003,ana@example.com,not-a-date,55.00,\n"
        "1004,cy@example.com,2026-06-02,30.00,\n"
    )
    code, out, err = cli("import", "refunds.csv", "-w", "myshop")
    assert code == 1 and "refunds.csv:4: ordered_at: 'not-a-date' is not a date" in err
    assert "refunds.csv: nothing imported, 1 bad row of 4. Fix it, or rerun with --skip-bad" in out
    code, out, _ = cli("import", "refunds.csv", "-w", "myshop", "--skip-bad")
    assert (
        "refunds.csv: orders, 4 rows (3 imported) giving 4 events (an order and its refund or "
        "cancellation are two): 4 new, 0 changed, 0 unchanged, 1 bad row skipped." in out
    )


def test_a_dry_run_of_a_journey_layout_file_counts_what_it_holds(cli):
    # It said "a orders file" and "customers: 0; buyers: 0" for a file of orders.
    shop = Path(__file__).parent / "data" / "shop"
    code, out, _ = cli("import", str(shop / "orders.csv"), "--dry-run", "-w", "myshop")
    assert code == 0
    assert "orders.csv: an orders file (journey layout)" in out
    assert "  events: 4 order, 2 refund, 1 cancellation" in out
    assert "  customers: 3; buyers: 3, repeat buyers: 1" in out
    assert "  revenue (after refunds): 149.50" in out
    code, out, _ = cli("import", str(shop / "events.csv"), "--dry-run", "-w", "myshop")
    assert "events.csv: an events file (journey layout)" in out
    assert "  customers: 3; buyers: 0" in out
    code, out, _ = cli("import", str(shop / "customers.csv"), "--dry-run", "-w", "myshop")
    assert "customers.csv: a customers file (journey layout)" in out
    assert "  customers: 3; buyers: 0" in out
    assert _customers(cli, "myshop") is None  # nothing written


def test_a_woocommerce_slug_status_is_counted_under_its_label(cli):
    # The plugin may write wc-completed for Completed: one status, not two.
    exports = Path(__file__).parent / "data" / "imports"
    code, out, _ = cli(
        "import", str(exports / "woocommerce_advanced_order_export.csv"), "--dry-run", "-w", "shop"
    )
    assert code == 0
    assert "  by status: 4 completed, 1 processing," in out
    assert "wc " not in out


def test_the_import_summary_names_what_was_not_a_purchase_once(cli):
    exports = Path(__file__).parent / "data" / "imports"
    code, out, _ = cli("import", str(exports / "shopify_orders_export.csv"), "-w", "shop")
    assert code == 0
    assert "Not purchases: 1 pending, 1 voided, 1 authorized, 1 test." in out


# --- charts without Slack ----------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n"


def test_report_chart_saves_the_chart_slack_shows(cli, tmp_path):
    code, out, err = cli(
        "report", "funnel", "--until", "2026-06-14", "--chart", str(tmp_path / "f.png")
    )
    assert code == 0 and out.startswith("Funnel for Maple Street Vet (demo data)")
    assert f"Chart (funnel) saved to {tmp_path / 'f.png'}" in err
    assert (tmp_path / "f.png").read_bytes().startswith(PNG)
    code, _, err = cli("report", "retention", "--until", "2026-06-14", "--chart", "r.png")
    assert code == 0 and "Chart (cohort retention) saved to" in err
    assert (tmp_path / "r.png").read_bytes().startswith(PNG)
    code, _, err = cli("report", "churn", "--chart", "c.png")
    assert code == 2 and "--chart draws the funnel, retention and value reports" in err


def test_the_console_saves_each_reports_chart_and_prints_where(console, tmp_path, monkeypatch):
    monkeypatch.setenv("JOURNEY_CHART_DIR", str(tmp_path / "charts"))
    out = console("/journey funnel 2026-05-01..2026-06-14")
    line = next(x for x in out.splitlines() if "(chart: funnel, saved to " in x)
    path = Path(line.split("saved to ", 1)[1].rstrip(")"))
    assert path.parent == tmp_path / "charts" and path.read_bytes().startswith(PNG)


# --- a fast command line -----------------------------------------------------------------------


def test_the_cli_help_names_the_main_job_and_loads_no_heavy_module():
    """`journey --help` (in a fresh process) says `bot` is the main job, as the README does,
    and imports none of the modules that made it take seconds."""
    import subprocess
    import sys

    probe = (
        "import sys; from journey import cli; sys.argv = ['journey', '--help']\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('sqlalchemy', 'sqlmodel', 'alembic', 'matplotlib', 'scipy',"
        " 'numpy', 'httpx', 'slack_bolt', 'pydantic') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    ).stdout
    assert "HEAVY []" in out, out
    bot_line = next(line for line in out.splitlines() if line.strip().startswith("bot "))
    assert "The main job" in bot_line
    assert "main job" not in next(x for x in out.splitlines() if x.strip().startswith("start "))


def test_constants_written_out_for_speed_match_their_sources():
    from journey import cli, cli_sources
    from journey.metrics.reviews import CANDIDATE_LIST
    from journey.sources import CONNECTORS

    assert cli.CANDIDATE_LIST == CANDIDATE_LIST
    assert tuple(sorted(CONNECTORS)) == cli_sources.CONNECTOR_NAMES


# --- set-up in commands, and small words -------------------------------------------------------


def test_secret_key_makes_a_key_the_cipher_accepts(journey_cli, monkeypatch):
    from journey.secrets import MAKE_KEY_COMMAND, Cipher

    code, out, err = journey_cli("secret-key")
    assert code == 0 and "JOURNEY_SECRET_KEY=<the key>" in err
    key = out.strip()
    cipher = Cipher.from_env({"JOURNEY_SECRET_KEY": key})
    assert cipher.decrypt(cipher.encrypt("tok")) == "tok"
    assert MAKE_KEY_COMMAND == "python3 run.py journey secret-key"  # what errors tell people


def test_settings_change_the_business_name_currency_and_timezone(cli):
    cli("import", "orders.csv", "--workspace", "myshop")
    code, out, _ = cli("settings", "--workspace", "myshop")
    assert "business name 'myshop', currency USD, timezone UTC" in out
    code, out, _ = cli(
        "settings",
        "-w",
        "myshop",
        "--name",
        "Ana's Bakery",
        "--currency",
        "eur",
        "--timezone",
        "Europe/Paris",
    )
    assert code == 0 and "currency EUR, timezone Europe/Paris" in out
    _, out, _ = cli("report", "funnel", "-w", "myshop", "--until", "2026-06-14")
    assert out.startswith("Funnel for Ana's Bakery, ")
    code, _, err = cli("settings", "-w", "myshop", "--currency", "euro")
    assert code == 2 and "is not a currency code: use three letters" in err
    code, _, err = cli("settings", "-w", "myshop", "--timezone", "Paris")
    assert code == 2 and "Unknown timezone 'Paris'" in err


def test_settings_change_the_discount_rate_of_the_customer_value(cli):
    """`--discount-rate` as a percentage or a fraction; the value report then discounts at
    it (a higher rate, a lower 12-month value), and a typo is refused with what to type."""
    import json

    cli("import", "orders.csv", "--workspace", "myshop")
    code, out, _ = cli("settings", "-w", "myshop")
    assert code == 0 and "discount rate 10% a year" in out
    code, out, _ = cli("settings", "-w", "myshop", "--discount-rate", "25%")
    assert code == 0 and "now:" in out and "discount rate 25% a year" in out
    _, out, _ = cli("report", "value", "-w", "myshop", "--until", "2026-06-14", "--json")
    assert json.loads(out)["discount_rate"] == 0.25
    code, out, _ = cli("settings", "-w", "myshop", "--discount-rate", "0.05")
    assert code == 0 and "discount rate 5% a year" in out
    for typo in ("10", "-3%", "ten"):
        code, _, err = cli("settings", "-w", "myshop", "--discount-rate", typo)
        assert code == 2 and "use e.g. 10% or 0.1" in err, typo
    _, out, _ = cli("settings", "-w", "myshop")
    assert "discount rate 5% a year" in out


def test_reviews_ask_takes_the_email_or_name_a_list_shows(cli):
    cli("import", "orders.csv", "--workspace", "myshop")
    code, out, _ = cli("reviews", "ask", "BEN@example.com", "-w", "myshop")
    assert code == 0 and out.strip() == "Recorded: ben@example.com asked for a review."
    code, _, err = cli("reviews", "ask", "nobody", "-w", "myshop")
    assert code == 2 and "use the email or the name the review list shows" in err


def test_counts_agree_with_their_nouns():
    from journey.render.format import count

    assert (count(1, "purchase"), count(2, "purchase")) == ("1 purchase", "2 purchases")
    assert count(3656, "customer") == "3,656 customers"


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://journey-test.invalid/api/", "journey-test.invalid"),  # no such name
        ("http://127.0.0.1:9/api/", "127.0.0.1"),  # nothing listening (the .env a user tries)
    ],
)
def test_no_network_to_slack_is_said_in_words_not_as_an_unexpected_error(tmp_path, url, host):
    """`journey bot` in Socket Mode with Slack out of reach stops with one sentence that
    names Slack and what to check, not "unexpected error ... please report it"."""
    import os
    import subprocess
    import sys

    env = dict(
        os.environ,
        DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
        SLACK_BOT_TOKEN="xoxb-1-2-abc",
        SLACK_APP_TOKEN="xapp-1-A1-1-abc",
        SLACK_API_URL=url,
        JOURNEY_SCHEDULER_INTERVAL="0",
        JOURNEY_SYNC_INTERVAL="0",
    )
    done = subprocess.run(
        [sys.executable, "-c", "from journey.cli import main; main()", "bot", "--mode", "socket"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2
    assert (
        "error: Cannot reach Slack (check the connection, and any proxy): this machine could "
        f"not connect to {host}. Run the command again once it can." in done.stderr
    )
    assert "unexpected error" not in done.stderr and "Traceback" not in done.stderr
    # Bolt's own start-up warning about the token journey gives it read as a misconfiguration.
    assert "will be unused" not in done.stderr
    # One retry line per retry (journey's), not the Slack client's as well.
    assert done.stderr.count("apps.connections.open failed") == 2
    assert "A retry handler found" not in done.stderr


def test_slack_out_of_reach_is_named_as_slack():
    # The shape aiohttp (the Slack client's transport) raises when DNS fails for slack.com.
    import socket

    import aiohttp
    from aiohttp.client_reqrep import ConnectionKey

    from journey.outage import network_words

    key = ConnectionKey("slack.com", 443, True, True, None, None, None)
    error = aiohttp.ClientConnectorDNSError(key, socket.gaierror(-3, "Temporary failure"))
    assert network_words(error).startswith("Cannot reach Slack (check the connection")
