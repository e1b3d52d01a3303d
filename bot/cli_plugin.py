"""The bot's commands in the `journey` CLI (`journey bot`, `journey serve`).

Registered through the `journey.plugins` entry point. Kept apart from bot.run, whose
imports (slack_bolt, aiohttp, the report pool) take about a second: every `journey`
command loads the plugins, and `journey --help` must not wait for Slack's libraries.
They are imported when `bot` or `serve` actually runs.
"""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the bot's commands to the `journey` CLI."""

    @app.command("bot")
    def bot_command(
        mode: Annotated[
            str | None,
            typer.Option(help="console, socket or http (default: chosen from the environment)."),
        ] = None,
    ) -> None:
        """The main job: the Slack bot (the local console without Slack tokens, Socket Mode with SLACK_APP_TOKEN, else HTTP)."""
        if mode not in (None, "console", "socket", "http"):
            raise typer.BadParameter("use console, socket or http", param_hint="--mode")
        from bot.run import run

        run(mode)

    @app.command("serve")
    def serve_command(
        port: Annotated[int | None, typer.Option(help="Port (default: PORT, then 3000).")] = None,
        workers: Annotated[int, typer.Option(min=1, help="Server processes (one per core).")] = 1,
    ) -> None:
        """Serve Slack's HTTP requests (production): /slack/events, /slack/install, /healthz."""
        from bot.run import run

        run("http", port, workers)
