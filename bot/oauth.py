"""Multi-workspace distribution: OAuth installs with tokens encrypted in our database.

Installs land at /slack/install and /slack/oauth_redirect (Bolt's OAuth flow);
installations and OAuth states live in journey's own database (so several
replicas share them through PostgreSQL), bot tokens are encrypted with
JOURNEY_SECRET_KEY, and rotating tokens are refreshed under a database lock.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from sqlalchemy import Engine

from bot.app import build_app
from bot.authorize import DatabaseAuthorize
from bot.config import BotSettings
from bot.deps import Deps
from bot.installations import DatabaseInstallationStore, DatabaseOAuthStateStore
from bot.service import ReportService
from journey.secrets import Cipher

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"


def oauth_app(settings: BotSettings, engine: Engine, cipher: Cipher | None = None) -> AsyncApp:
    """The app for many workspaces; refuses to start without JOURNEY_SECRET_KEY."""
    cipher = cipher or Cipher.from_env()
    store = DatabaseInstallationStore(engine, cipher)
    authorize = DatabaseAuthorize(
        store,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        base_url=settings.api_url,
    )
    oauth_settings = AsyncOAuthSettings(
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        scopes=list(settings.scopes),
        installation_store=store,
        state_store=DatabaseOAuthStateStore(engine),
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        token_rotation_expiration_minutes=120,
        installation_store_bot_only=True,
    )
    deps = Deps(service=ReportService(engine), settings=settings, deactivate=store.mark_inactive)
    return build_app(
        settings, engine, authorize=authorize, oauth_settings=oauth_settings, deps=deps
    )
