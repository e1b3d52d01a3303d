from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.deps import Deps
from bot.listeners.commands.journey_command import make_journey_command


def register(app: AsyncApp, deps: Deps) -> None:
    app.command("/journey")(make_journey_command(deps))
