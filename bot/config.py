"""The bot's settings, from the environment and `.env` (see .env.example).

The mode follows from which tokens are present, so the README's one command does
the right thing everywhere: no Slack tokens -> the local console on the demo
store; SLACK_APP_TOKEN -> Socket Mode; otherwise HTTP mode (single workspace
with SLACK_BOT_TOKEN, or multi-workspace OAuth with SLACK_CLIENT_ID/SECRET).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import load_dotenv

from journey.errors import JourneyError

# channels:join and channels:history/groups:history are for digests and alerts: join a
# public channel to post, and look for an earlier post before retrying (bot/delivery.py).
DEFAULT_SCOPES = (
    "commands",
    "chat:write",
    "files:write",
    "users:read",
    "im:write",
    "channels:join",
    "channels:history",
    "groups:history",
)


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


@dataclass(frozen=True)
class BotSettings:
    bot_token: str | None = field(default=None, repr=False)
    app_token: str | None = field(default=None, repr=False)
    signing_secret: str | None = field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    api_url: str = "https://slack.com/api/"
    port: int = 3000
    admin_user_ids: frozenset[str] = frozenset()
    token_rotation: bool = False

    @property
    def mode(self) -> str:
        if self.app_token:
            return "socket"
        if self.bot_token or self.client_id:
            return "http"
        return "console"

    def check(self) -> None:
        """Fail early, in words, on a half-configured app."""
        if self.mode == "socket" and not self.bot_token:
            raise JourneyError(
                "SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is not: Socket Mode needs both."
            )
        if self.mode == "http" and not self.signing_secret:
            raise JourneyError(
                "HTTP mode needs SLACK_SIGNING_SECRET (Basic Information > App Credentials in your app's settings)."
            )
        if self.client_id and not self.client_secret:
            raise JourneyError(
                "SLACK_CLIENT_ID is set but SLACK_CLIENT_SECRET is not: OAuth installs need both."
            )
        if self.app_token and not self.app_token.startswith("xapp-"):
            raise JourneyError(
                "SLACK_APP_TOKEN should start with xapp- (an app-level token with connections:write)."
            )


def load_bot_settings(env_file: str | os.PathLike[str] | None = None) -> BotSettings:
    load_dotenv(env_file or Path.cwd() / ".env", override=False)
    api_url = _env("SLACK_API_URL") or BotSettings.api_url
    if not api_url.endswith("/"):
        api_url += "/"
    port_raw = _env("PORT") or "3000"
    try:
        port = int(port_raw)
    except ValueError as exc:
        raise JourneyError(f"PORT must be a number, got {port_raw!r}.") from exc
    scopes = tuple(
        s.strip()
        for s in (_env("SLACK_SCOPES") or ",".join(DEFAULT_SCOPES)).split(",")
        if s.strip()
    )
    admins = frozenset(
        u.strip() for u in (_env("JOURNEY_ADMIN_USER_IDS") or "").split(",") if u.strip()
    )
    return BotSettings(
        bot_token=_env("SLACK_BOT_TOKEN"),
        app_token=_env("SLACK_APP_TOKEN"),
        signing_secret=_env("SLACK_SIGNING_SECRET"),
        client_id=_env("SLACK_CLIENT_ID"),
        client_secret=_env("SLACK_CLIENT_SECRET"),
        scopes=scopes,
        api_url=api_url,
        port=port,
        admin_user_ids=admins,
        token_rotation=(_env("SLACK_TOKEN_ROTATION") or "").lower() in {"1", "true", "yes"},
    )
