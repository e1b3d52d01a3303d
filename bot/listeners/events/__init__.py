from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.deps import Deps
from bot.listeners.events import app_home, file_shared, lifecycle


def register(app: AsyncApp, deps: Deps) -> None:
    app_home.register(app, deps)
    lifecycle.register(app, deps)
    file_shared.register(app, deps)
