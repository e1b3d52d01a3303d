"""Every listener is registered from here, one module per kind (as in Slack's Bolt samples)."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.deps import Deps
from bot.listeners import actions, commands, events, views


def register_listeners(app: AsyncApp, deps: Deps) -> None:
    commands.register(app, deps)
    actions.register(app, deps)
    events.register(app, deps)
    views.register(app, deps)
