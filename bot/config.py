"""The bot's settings, from the environment and `.env` (see .env.example).

The mode follows from which tokens are present, so the README's one command does
the right thing everywhere: no Slack tokens -> the local console on the demo
store; SLACK_APP_TOKEN -> Socket Mode; otherwise HTTP mode (single workspace
with SLACK_BOT_TOKEN, or multi-workspace OAuth with SLACK_CLIENT_ID/SECRET).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import load_dotenv

from journey.errors import JourneyError

log = logging.getLogger("journey.bot")

# channels:join and channels:history/groups:history are for digests and alerts: join a
# public channel to post, and look for an earlier post before retrying (bot/posting/delivery.py).
# channels:read/groups:read/im:read: conversations.info, so *Share* never posts customer data
# into a conversation shared with another organization; usergroups:read: usergroups.users.list for
# JOURNEY_EXPORT_USERGROUP (bot/guard/access.py); files:read: files.info and the download of
# a file sent to the bot for import (bot/files/download.py).
DEFAULT_SCOPES = (
    "commands",
    "chat:write",
    "files:write",
    "users:read",
    "im:write",
    "channels:join",
    "channels:history",
    "groups:history",
    "channels:read",
    "groups:read",
    "im:read",
    "usergroups:read",
    "files:read",
)


MISSING_SIGNING_SECRET = (
    "HTTP mode (`journey serve`) checks Slack's signature on every request and does not "
    "start without SLACK_SIGNING_SECRET: copy the Signing Secret from your app's settings "
    "(Basic Information > App Credentials) into .env. With no public HTTPS URL, Socket "
    "Mode is the easier path: put an app-level token (xapp-...) in .env as SLACK_APP_TOKEN "
    "and run `journey bot`."
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
    # `T123:U456` entries (team or enterprise id, then user id); a bare `U456` counts only
    # with a single-workspace token (see admins_of).
    admin_user_ids: frozenset[str] = frozenset()
    token_rotation: bool = False
    # `T123:S456` entries (or a bare `S456` with a single-workspace token): user groups
    # whose members may export and share besides admins.
    export_usergroups: frozenset[str] = frozenset()
    # Commands and report buttons one person may use per minute (bot/guard/fair.py).
    commands_per_minute: int = 10
    # The largest file journey imports from Slack, in MB (bot/files/download.py).
    import_max_mb: float = 25.0

    @property
    def single_workspace(self) -> bool:
        """One workspace's bot token, no OAuth: a bare id can only mean that workspace."""
        return not self.client_id

    def admins_of(self, workspace: str) -> frozenset[str]:
        """The user ids JOURNEY_ADMIN_USER_IDS makes admins of `workspace`."""
        return _of(self.admin_user_ids, workspace, self.single_workspace)

    def export_groups_of(self, workspace: str) -> frozenset[str]:
        """The user groups JOURNEY_EXPORT_USERGROUP lets export in `workspace`."""
        return _of(self.export_usergroups, workspace, self.single_workspace)

    @property
    def mode(self) -> str:
        if self.app_token:
            return "socket"
        if self.bot_token or self.client_id:
            return "http"
        return "console"

    def check(self, transport: str | None = None) -> None:
        """Fail early, in words, on a half-configured app.

        `transport` is how Slack's requests will arrive: "http" for `journey serve`
        (and `journey bot --mode http`), "socket" for Socket Mode; by default the
        mode the tokens choose. HTTP always needs the signing secret, whatever
        other tokens are set.
        """
        transport = transport or self.mode
        if transport == "socket" and not self.app_token:
            raise JourneyError(
                "Socket Mode needs SLACK_APP_TOKEN (an app-level token, xapp-..., with "
                "connections:write: Basic Information > App-Level Tokens)."
            )
        if transport == "socket" and not self.bot_token:
            raise JourneyError(
                "SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is not: Socket Mode needs both."
            )
        if transport == "http" and not self.signing_secret:
            raise JourneyError(MISSING_SIGNING_SECRET)
        if self.client_id and not self.client_secret:
            raise JourneyError(
                "SLACK_CLIENT_ID is set but SLACK_CLIENT_SECRET is not: OAuth installs need both."
            )
        if self.app_token and not self.app_token.startswith("xapp-"):
            raise JourneyError(
                "SLACK_APP_TOKEN should start with xapp- (an app-level token with connections:write)."
            )


def unused_app_token_warning(settings: BotSettings, transport: str) -> str | None:
    """The warning for a SLACK_APP_TOKEN that HTTP mode will not use (None if none).

    A `.env` kept from trying Socket Mode first still holds the app token; under
    `journey serve` it does nothing (requests come over HTTP and are verified),
    but the operator should know it is there and unused.
    """
    if transport != "http" or not settings.app_token:
        return None
    return (
        "SLACK_APP_TOKEN is set but journey is serving HTTP: the app-level token is not "
        "used, and every request must carry Slack's signature (SLACK_SIGNING_SECRET). "
        "Remove SLACK_APP_TOKEN from .env, or run `journey bot` for Socket Mode."
    )


def _of(entries: frozenset[str], workspace: str, bare_ok: bool) -> frozenset[str]:
    found = set()
    for entry in entries:
        team, sep, item = entry.partition(":")
        if sep and team == workspace and item:
            found.add(item)
        elif not sep and bare_ok:
            found.add(entry)
    return frozenset(found)


def _per_team(name: str, oauth: bool) -> frozenset[str]:
    """`T123:U456,T999:U111` from the environment. A bare id names no workspace: with
    OAuth (several workspaces) it would count in every one, so it is refused, loudly."""
    entries = frozenset(u.strip() for u in (_env(name) or "").split(",") if u.strip())
    bare = sorted(e for e in entries if ":" not in e)
    if oauth and bare:
        log.warning(
            "%s: %s ignored: with OAuth (several workspaces) write each as TEAM_ID:ID, "
            "e.g. T0123ABC:%s",
            name,
            ", ".join(bare),
            bare[0],
        )
        return entries - frozenset(bare)
    return entries


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
    oauth = _env("SLACK_CLIENT_ID") is not None
    per_minute = _env("JOURNEY_COMMANDS_PER_MINUTE") or str(BotSettings.commands_per_minute)
    if not per_minute.isdigit() or int(per_minute) < 1:
        raise JourneyError(
            f"JOURNEY_COMMANDS_PER_MINUTE must be a whole number of 1 or more, got {per_minute!r}."
        )
    max_mb_raw = _env("JOURNEY_IMPORT_MAX_MB") or str(BotSettings.import_max_mb)
    try:
        import_max_mb = float(max_mb_raw)
    except ValueError:
        import_max_mb = -1.0
    if not import_max_mb > 0:
        raise JourneyError(
            f"JOURNEY_IMPORT_MAX_MB must be a number of megabytes above 0, got {max_mb_raw!r}."
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
        admin_user_ids=_per_team("JOURNEY_ADMIN_USER_IDS", oauth),
        token_rotation=(_env("SLACK_TOKEN_ROTATION") or "").lower() in {"1", "true", "yes"},
        export_usergroups=_per_team("JOURNEY_EXPORT_USERGROUP", oauth),
        commands_per_minute=int(per_minute),
        import_max_mb=import_max_mb,
    )
