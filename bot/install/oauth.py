"""Multi-workspace distribution: OAuth installs with tokens encrypted in our database.

Installs land at /slack/install and /slack/oauth_redirect (Bolt's OAuth flow);
installations and OAuth states live in journey's own database (so several
replicas share them through PostgreSQL), bot tokens are encrypted with
JOURNEY_SECRET_KEY, and rotating tokens are refreshed under a database lock.
A successful install also creates the workspace's default alert rules with a
destination (bot.install.installations.default_alerts_on_install), so they work without
a manual step.
"""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_callback_options import (
    AsyncCallbackOptions,
    AsyncFailureArgs,
    AsyncSuccessArgs,
)
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.response import BoltResponse
from sqlalchemy import Engine

from bot.app import Transport, build_app, web_client
from bot.commands.service import ReportService
from bot.config import BotSettings
from bot.deps import Deps
from bot.install.authorize import DatabaseAuthorize
from bot.install.installations import (
    DatabaseInstallationStore,
    default_alerts_on_install,
    resume_on_install,
)
from bot.install.oauth_state import SignedOAuthStateStore
from journey.secrets import Cipher

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"


log = logging.getLogger(__name__)


def install_callbacks(settings: BotSettings, engine: Engine) -> AsyncCallbackOptions:
    """Bolt's own success and failure pages, with the default alerts set up first on
    success. The installation is already stored when this runs; a failure here is
    logged and the install still succeeds (the rules then come with the first digest)."""

    async def success(args: AsyncSuccessArgs) -> BoltResponse:
        try:
            await resume_on_install(engine, args.installation, web_client(settings))
        except Exception:
            log.exception("resuming a reinstalled workspace failed")
        try:
            await default_alerts_on_install(engine, args.installation, web_client(settings))
        except Exception:
            log.exception("default alerts for a new install could not be set up")
        return await args.default.success(args)

    async def failure(args: AsyncFailureArgs) -> BoltResponse:
        return await args.default.failure(args)

    return AsyncCallbackOptions(success=success, failure=failure)


def oauth_app(
    settings: BotSettings,
    engine: Engine,
    cipher: Cipher | None = None,
    *,
    transport: Transport = "http",
) -> AsyncApp:
    """The app for many workspaces; refuses to start without JOURNEY_SECRET_KEY.

    Over HTTP (the usual way to distribute an app) every request is verified
    before its `team_id` picks a tenant, so a forged team cannot borrow a token.
    """
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
        # Signed and stateless: loading the install page writes nothing (bot/install/oauth_state.py).
        state_store=SignedOAuthStateStore(engine, settings.client_secret or ""),
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        token_rotation_expiration_minutes=120,
        installation_store_bot_only=True,
        callback_options=install_callbacks(settings, engine),
    )
    deps = Deps(
        service=ReportService(engine),
        settings=settings,
        deactivate=store.mark_inactive,
        bot_user_of=store.bot_user_of,
        shared_limits=True,
    )
    return build_app(
        settings,
        engine,
        authorize=authorize,
        oauth_settings=oauth_settings,
        deps=deps,
        transport=transport,
    )
