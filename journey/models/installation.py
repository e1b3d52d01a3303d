"""Where the chat app is installed, and the one-time states of its install flow.

These are plain rows: the Slack adapter (bot/) reads and writes them, the core
never imports a Slack library. Tokens are stored as ciphertext only
(journey.secrets.Cipher); nothing here can be used without the secret key.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, LargeBinary
from sqlmodel import Field, SQLModel

from journey.models.types import EpochDateTime


class SlackInstallation(SQLModel, table=True):
    """One installation of the app: a workspace, or a whole org for org-wide installs.

    `id` is the team id (T...) for a workspace install and the enterprise id
    (E...) for an org-wide install. Slack ids are globally unique and their
    prefixes never collide, so one non-null key replaces a (enterprise_id,
    team_id) pair whose NULLs a unique constraint would not enforce on either
    database. Reinstalling overwrites the row.

    With token rotation on, the bot token expires (every 12 hours) and the
    refresh token is single-use. Several replicas refresh under a row lock, and
    `token_version` goes up on every token change so a writer can
    compare-and-swap instead of overwriting a newer pair with an older one.
    A revoked token sets `is_active` to false and drops the ciphertext; the row
    stays so the install history (who, when) survives until the app is
    uninstalled.
    """

    __tablename__ = "slack_installation"

    id: str = Field(primary_key=True, max_length=32)
    enterprise_id: str | None = Field(default=None, max_length=32)
    enterprise_name: str | None = Field(default=None, max_length=200)
    team_id: str | None = Field(default=None, max_length=32)
    team_name: str | None = Field(default=None, max_length=200)
    is_enterprise_install: bool = False
    app_id: str | None = Field(default=None, max_length=32)
    bot_id: str | None = Field(default=None, max_length=32)
    bot_user_id: str | None = Field(default=None, max_length=32)
    # Comma-separated, as Slack sends them.
    bot_scopes: str = Field(default="", max_length=2000)
    bot_token: bytes | None = Field(default=None, sa_type=LargeBinary)
    bot_refresh_token: bytes | None = Field(default=None, sa_type=LargeBinary)
    bot_token_expires_at: datetime | None = Field(default=None, sa_type=EpochDateTime)
    installer_user_id: str | None = Field(default=None, max_length=32)
    installed_at: datetime = Field(sa_type=EpochDateTime)
    updated_at: datetime = Field(sa_type=EpochDateTime)
    is_active: bool = True
    token_version: int = 1


class SlackOAuthState(SQLModel, table=True):
    """An OAuth state already used on the redirect back from Slack.

    States are signed and written nowhere when the install page hands them out
    (bot/install/oauth_state.py); a state's nonce is recorded here when its redirect is
    accepted, in the shared database because a replay may land on another
    replica, so each state is accepted at most once. Expired rows are swept.
    """

    __tablename__ = "slack_oauth_state"
    __table_args__ = (Index("ix_slack_oauth_state_expires", "expires_at"),)

    state: str = Field(primary_key=True, max_length=100)
    expires_at: datetime = Field(sa_type=EpochDateTime)
