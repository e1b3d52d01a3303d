from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.deps import Deps
from bot.listeners.actions import (
    alert_actions,
    import_actions,
    people_actions,
    report_actions,
    review_actions,
)


def register(app: AsyncApp, deps: Deps) -> None:
    report_actions.register(app, deps)
    review_actions.register(app, deps)
    alert_actions.register(app, deps)
    import_actions.register(app, deps)
    import_actions.register_options(app, deps)
    people_actions.register(app, deps)
