"""The local console: the bot's replies in a terminal, on the demo store."""

import contextlib
import io
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.commands.service import ReportService
from bot.console import (
    PROMPT,
    ConsoleScheduler,
    TerminalOutput,
    answer,
    console_timezone,
    ensure_demo,
    run_console,
)
from journey.db import make_engine, upgrade
from journey.demo import load_demo
from journey.models.schedule import AlertRule, DigestDelivery, DigestSubscription
from journey.schedule import Schedule, next_send_after, subscribe
from journey.schedule.runner import Delivery, DeliveryResult

MIN = timedelta(minutes=1)


def test_console_builds_the_demo_and_answers_like_the_bot(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(engine)
    lines = iter(["/journey churn", "funel", "journey reviews", "", "exit", "never read"])
    said: list[str] = []
    run_console(engine, "local", read=lambda _prompt: next(lines), say=said.append)
    out = "\n".join(said)
    assert "building the demo store" in out
    assert "Funnel ·" in out and "awareness" in out  # the opening funnel
    assert "Churn ·" in out and "At risk now" in out
    assert "Did you mean /journey funnel?" in out
    assert "Whom to ask for a review" in out
    assert "Traceback" not in out


def test_console_ends_cleanly_at_end_of_input(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(engine)

    def eof(_prompt: str) -> str:
        raise EOFError

    said: list[str] = []
    run_console(engine, "local", read=eof, say=said.append)
    assert any("Funnel ·" in s for s in said)


# --------------------------------------------------------------------------- digests and alerts
#
# The console is the channel #console. Time comes from a clock the test moves: the
# scheduler's tick runs when the test says, at the time the test says.

TZ = "Europe/Paris"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def console_db(tmp_path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'console.db'}")
    upgrade(engine)
    ensure_demo(engine, "local", lambda _text: None)
    yield engine
    engine.dispose()


def printed(said: list[str], what: str) -> list[str]:
    return [s for s in said if s.lstrip("\n").startswith(f"--- {what} in #console")]


def test_a_console_digest_appears_once_at_its_local_time_and_not_after_a_restart(console_db):
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    service = ReportService(console_db)
    reply = answer(
        service, "local", "/journey digest weekly monday 09:00", timezone=TZ, now=clock()
    )
    assert "every Monday at 09:00 (Europe/Paris), in this computer's timezone" in reply
    with Session(console_db) as session:
        sub = session.exec(select(DigestSubscription)).one()
    assert (sub.workspace_id, sub.channel_id, sub.timezone) == ("local", "console", TZ)
    due = next_send_after(Schedule.of(sub), clock()).at
    assert due.astimezone(ZoneInfo(TZ)).strftime("%a %H:%M") == "Mon 09:00"

    said: list[str] = []
    scheduler = ConsoleScheduler(console_db, "local", said.append, clock, "console-1", TZ)
    clock.now = due - MIN
    scheduler.step()
    assert printed(said, "digest") == []  # not yet

    clock.now = due + MIN
    report = scheduler.step()
    (digest,) = printed(said, "digest")
    assert len(report.sent) == 1
    assert "Weekly digest" in digest and "New customers" in digest
    assert "[Open funnel report: /journey funnel " in digest and "Next digest Mon" in digest
    assert "<#" not in digest and "*" not in digest.split("\n", 2)[1]  # rendered as text

    clock.now = due + 2 * MIN
    scheduler.step()
    assert len(printed(said, "digest")) == 1  # the same tick again: nothing more

    # A new console on the same database (a restart), a minute later: nothing more.
    lines = iter(["exit"])
    again: list[str] = []
    clock.now = due + 3 * MIN
    run_console(
        console_db,
        "local",
        read=lambda _p: next(lines),
        say=again.append,
        clock=clock,
        timezone=TZ,
        interval=3600,
    )
    assert printed(again, "digest") == []
    assert "#console" in again[0] and "Europe/Paris" in again[0]  # the banner

    # The next Monday, the next one.
    clock.now = due + timedelta(days=7, minutes=1)
    scheduler.step()
    assert len(printed(said, "digest")) == 2


def test_a_digest_due_while_the_console_was_closed_is_shown_late_at_start(console_db):
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    service = ReportService(console_db)
    answer(service, "local", "/journey digest daily 07:30", timezone=TZ, now=clock())
    with Session(console_db) as session:
        sub = session.exec(select(DigestSubscription)).one()
    due = next_send_after(Schedule.of(sub), clock()).at
    clock.now = due + timedelta(hours=3)
    said: list[str] = []
    lines = iter(["exit"])
    run_console(
        console_db,
        "local",
        read=lambda _p: next(lines),
        say=said.append,
        clock=clock,
        timezone=TZ,
        interval=3600,
    )
    (digest,) = printed(said, "digest")
    assert "Daily digest" in digest and "(late) Late: this digest was due" in digest


def test_console_digest_and_alert_commands_work_as_in_slack(console_db):
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    service = ReportService(console_db)

    def say(line: str) -> str:
        return answer(service, "local", line, timezone=TZ, now=clock())

    assert "This channel gets no digest" in say("/journey digest")
    assert "every day at 08:15 (Europe/Paris)" in say("/journey digest daily 08:15")
    assert "on day 31 of every month (or its last day) at 07:00" in say(
        "/journey digest monthly 31 07:00"
    )
    shown = say("/journey digest")
    assert "gets a digest on day 31 of every month" in shown and "Next:" in shown
    preview = say("/journey digest now")
    assert "Preview: only you can see this" in preview and "Monthly digest" in preview
    assert "Digest stopped" in say("/journey digest off")
    paused = say("/journey digest")
    assert "is paused: turned off by @console" in paused
    assert "/journey digest monthly 31 07:00" in paused
    assert "I don't understand `blursday`".replace("`", "") in say("digest weekly blursday")

    listed = say("/journey alerts")  # the first digest gave the alerts its channel
    assert "retention (repeat purchases): on in #console" in listed
    assert "Alerts now post in this channel" in say("/journey alerts channel")
    assert "needs a drop of 20% or more" in say("/journey alerts threshold funnel 20")
    assert "Alerts off: churn" in say("/journey alerts off churn")
    with Session(console_db) as session:
        rules = {r.kind: r for r in session.exec(select(AlertRule))}
    assert {r.channel_id for r in rules.values()} == {"console"}
    assert rules["funnel_step_drop"].min_relative_drop == pytest.approx(0.20)
    assert not rules["high_value_churn"].enabled


def test_console_alerts_are_printed_once_and_only_for_its_workspace(console_db):
    """The demo's retention drop fires; a tick again, or a restarted console, says nothing
    more; another workspace's digest in the same database is left for its own bot."""
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    with Session(console_db) as session:
        load_demo(session, "T0SLACK")
        subscribe(session, "T0SLACK", "C0SLACK", cadence="daily", timezone=TZ, now=clock())
        session.commit()
    service = ReportService(console_db)
    answer(service, "local", "/journey alerts channel", timezone=TZ, now=clock())
    answer(service, "local", "/journey digest daily 09:00", timezone=TZ, now=clock())

    said: list[str] = []
    first = ConsoleScheduler(console_db, "local", said.append, clock, "console-1", TZ)
    first.step()
    (alert,) = printed(said, "alert")
    assert "Repeat purchases dropped" in alert and "[Acknowledge: /journey alerts ack]" in alert
    first.step()
    ConsoleScheduler(console_db, "local", said.append, clock, "console-2", TZ).step()
    assert len(printed(said, "alert")) == 1

    # No button in a terminal: the command acknowledges, once, as the button would.
    acked = answer(service, "local", "/journey alerts ack", timezone=TZ, now=clock())
    assert "Repeat purchases dropped: acknowledged by you" in acked
    again = answer(service, "local", "/journey alerts ack retention", timezone=TZ, now=clock())
    assert "already acknowledged by @console" in again
    nothing = answer(service, "local", "/journey alerts ack funnel", timezone=TZ, now=clock())
    assert "No announced alert is firing for funnel" in nothing

    clock.now += timedelta(days=1, minutes=1)  # both daily digests are due
    first.step()
    assert len(printed(said, "digest")) == 1
    with Session(console_db) as session:
        rows = session.exec(select(DigestDelivery)).all()
    assert {r.workspace_id for r in rows} == {"local"}  # the Slack workspace's is untouched


def test_console_timezone_is_the_computers(monkeypatch):
    import tzlocal

    monkeypatch.setenv("TZ", "America/Chicago")
    tzlocal.reload_localzone()  # it caches the zone it read
    try:
        assert console_timezone() == "America/Chicago"
        monkeypatch.setenv("TZ", "Not/AZone")
        with contextlib.suppress(Exception):
            tzlocal.reload_localzone()
        ZoneInfo(console_timezone())  # one it cannot read: the system's or UTC, no crash
    finally:
        monkeypatch.undo()
        tzlocal.reload_localzone()


def test_scheduled_output_is_printed_above_the_prompt(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Tty()
    monkeypatch.setattr(sys, "stdout", screen)
    out = TerminalOutput()
    out.say("a reply")
    out.waiting = True
    out.say("--- digest in #console ---")
    assert screen.getvalue().startswith("a reply\n")
    assert screen.getvalue().endswith(f"\r\x1b[2K--- digest in #console ---\n{PROMPT}")


def test_a_slack_bot_on_the_same_database_leaves_the_consoles_digests_and_alerts_alone(
    console_db,
):
    """`python3 run.py` first without tokens (the console), later with them (Slack), on the
    same journey.db: the Slack scheduler must not post #console's digest or alerts to
    Slack (it would fail and pause them); the console still gets them."""
    from bot.posting.loop import tick

    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    service = ReportService(console_db)
    answer(service, "local", "/journey digest daily 09:00", timezone=TZ, now=clock())
    answer(service, "local", "/journey alerts channel", timezone=TZ, now=clock())
    with Session(console_db) as session:
        sub = session.exec(select(DigestSubscription)).one()
        slack_sub = subscribe(
            session, "local", "C0SLACK", cadence="daily", timezone=TZ, now=clock()
        )
        due = next_send_after(Schedule.of(sub), clock()).at
        session.commit()
        slack_sub_id = slack_sub.id
    clock.now = due + MIN

    to_slack: list[Delivery] = []

    def slack_port(delivery: Delivery) -> DeliveryResult:
        to_slack.append(delivery)
        return DeliveryResult.ok("1700000000.000001")

    report = tick(console_db, slack_port, "slack-1", clock())
    assert [d.channel_id for d in to_slack] == ["C0SLACK"]  # Slack's own, nothing else
    assert report.alerts == [] and report.paused == []
    with Session(console_db) as session:
        assert {d.subscription_id for d in session.exec(select(DigestDelivery))} == {slack_sub_id}
        assert all(r.last_checked_at is None for r in session.exec(select(AlertRule)))

    said: list[str] = []
    ConsoleScheduler(console_db, "local", said.append, clock, "console-1", TZ).step()
    assert len(printed(said, "digest")) == 1 and len(printed(said, "alert")) == 1


def _saved_charts(text: str) -> list[Path]:
    return [
        Path(line.split("saved to ", 1)[1].rstrip(")"))
        for line in text.splitlines()
        if "(chart: funnel, saved to " in line
    ]


def test_the_console_saves_the_digests_chart_as_slack_posts_it(console_db, tmp_path, monkeypatch):
    """Issue 19, charts everywhere: Slack posts a digest with its funnel chart in the
    thread; the console saves that chart and says where, for the digest it prints when
    due and for `/journey digest now`'s preview."""
    monkeypatch.setenv("JOURNEY_CHART_DIR", str(tmp_path / "charts"))
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    lines = iter(["/journey digest now", "/journey digest weekly monday 09:00", "exit"])
    said: list[str] = []
    run_console(
        console_db,
        "local",
        read=lambda _p: next(lines),
        say=said.append,
        clock=clock,
        timezone=TZ,
        interval=0,
    )
    preview = next(s for s in said if "Weekly digest" in s)
    (path,) = _saved_charts(preview)
    assert path.parent == tmp_path / "charts" and path.name.startswith("journey-local-digest-")
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    with Session(console_db) as session:
        sub = session.exec(select(DigestSubscription)).one()
    clock.now = next_send_after(Schedule.of(sub), clock()).at + MIN
    printer: list[str] = []
    ConsoleScheduler(console_db, "local", printer.append, clock, "console-1", TZ).step()
    (digest,) = printed(printer, "digest")
    (posted,) = _saved_charts(digest)
    assert posted.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and posted != path
    assert digest.rstrip().endswith("-" * 10)  # the line is inside the digest's frame


def test_no_chart_is_saved_when_charts_are_off(console_db, tmp_path, monkeypatch):
    monkeypatch.setenv("JOURNEY_CHART_DIR", str(tmp_path / "charts"))
    monkeypatch.setenv("JOURNEY_CONSOLE_CHARTS", "0")
    out = answer(ReportService(console_db), "local", "/journey digest now", timezone=TZ)
    assert "Weekly digest" in out and "saved to" not in out
    assert not (tmp_path / "charts").exists()


def test_the_digest_says_at_risk_in_the_words_churn_defines_it_with(console_db):
    service = ReportService(console_db)
    digest = answer(service, "local", "/journey digest now", timezone=TZ, chart=False)
    churn = answer(service, "local", "/journey churn", chart=False)
    words = "a 10% to 50% chance of still being customers"
    assert f"(the churn model: repeat buyers with {words})" in digest
    assert words in churn
    # The total is the period's end's, and the command it names shows that same number.
    total, _, rest = digest.partition(" at risk in all on ")
    total, last_day = total.rsplit(" ", 1)[-1], rest.split(" ", 1)[0]
    assert f"/journey churn {last_day} for the list" in digest
    on_that_day = answer(service, "local", f"/journey churn {last_day}", chart=False)
    assert f"At risk now: {total} customers" in on_that_day
