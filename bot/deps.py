"""What listeners need, handed to every `register(app, deps)` from one place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.commands.service import ReportService
from bot.config import BotSettings
from bot.guard.access import Guard


@dataclass
class Deps:
    service: ReportService
    settings: BotSettings
    # Called with a team id when Slack says its token was revoked or the app uninstalled.
    deactivate: Callable[[str], Awaitable[None]] | None = None
    # The bot user id of a team's installation (None: unknown), to match tokens_revoked.
    bot_user_of: Callable[[str], Awaitable[str | None]] | None = None
    # Seconds before a "working on it" message is shown for a slow report.
    working_after: float = 1.0
    extra: dict[str, object] = field(default_factory=dict)
    # Who may see what, and the per-user and per-workspace limits (bot/guard/); built
    # from `settings` unless a test hands one in (with its own clock).
    guard: Guard = None  # type: ignore[assignment]
    # Count the per-user rate limit in the database all replicas share (the bot's own
    # Deps, bot/app.py and bot/install/oauth.py); False counts in this process (tests that
    # build their own Deps and reuse one database across many tests).
    shared_limits: bool = False

    def __post_init__(self) -> None:
        if self.guard is None:
            # On the engine whose writes give up quickly on SQLite's lock (then the limit
            # is counted in this process for that command).
            engine = self.service.write_engine if self.shared_limits else None
            self.guard = Guard(self.settings, engine=engine)
