from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.deps import Deps
from bot.listeners.views import connect, import_file


def register(app: AsyncApp, deps: Deps) -> None:
    connect.register(app, deps)
    import_file.register(app, deps)
