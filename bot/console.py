"""The local console: type `/journey funnel` and see the bot's reply, in a terminal.

It runs the same parser and the same report service as the Slack listeners on
the embedded default (SQLite + the demo store in workspace `local`), which is
what the README's main command starts when no Slack tokens are configured.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, func
from sqlmodel import select

from bot.blocks.help import help_message
from bot.blocks.terminal import render_terminal
from bot.commands import CommandError, parse
from bot.service import ReportService
from journey.db import session_scope
from journey.models import Customer

BANNER = """journey console: the Slack bot's replies, in your terminal, for workspace {ws}.
Type a command as you would in Slack, e.g. /journey funnel 30d by channel, /journey churn,
/journey reviews, /journey help. Buttons are shown as [labels]; type the command instead.
Quit with exit or Ctrl-D. (With Slack tokens in .env the same command connects to Slack.)"""


def ensure_demo(engine: Engine, workspace: str, say: Callable[[str], None]) -> None:
    """Build the demo store the first time, so the console has something to show."""
    with session_scope(engine) as session:
        count = session.exec(
            select(func.count()).select_from(Customer).where(Customer.workspace_id == workspace)
        ).one()
    if count:
        return
    from journey.demo import load_demo

    say(
        f"Workspace {workspace!r} is empty: building the demo store (a year of a small vet clinic)..."
    )
    with session_scope(engine) as session:
        load_demo(session, workspace)


def answer(service: ReportService, workspace: str, line: str) -> str:
    """One console line in, the rendered reply out."""
    text = line.strip()
    for prefix in ("/journey", "journey"):
        if text.lower().startswith(prefix):
            text = text[len(prefix) :]
            break
    try:
        cmd = parse(text)
    except CommandError as exc:
        return render_terminal(help_message(prefix=str(exc)).payload())
    return render_terminal(service.command_message(workspace, cmd).payload())


def run_console(
    engine: Engine,
    workspace: str,
    read: Callable[[str], str] = input,
    say: Callable[[str], None] = print,
) -> None:
    ensure_demo(engine, workspace, say)
    service = ReportService(engine)
    say(BANNER.format(ws=workspace))
    say(answer(service, workspace, "/journey funnel"))
    while True:
        try:
            line = read("\n/journey> ")
        except (EOFError, KeyboardInterrupt):
            say("")
            return
        if line.strip().lower() in ("exit", "quit", "q"):
            return
        if not line.strip():
            continue
        say(answer(service, workspace, line))
