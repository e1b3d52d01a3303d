"""Which bot token answers a request, with token rotation safe across replicas.

With token rotation on, a bot token lives 12 hours and Slack hands out a new
token and a new refresh token on every refresh; the old refresh token is
revoked, so it works once. Bolt's own authorize refreshes tokens that expire
within 120 minutes, but each replica (and each concurrent request) does so on
its own: two of them holding the same refresh token race, one wins, and the
loser either fails with `invalid_refresh_token` or overwrites the winner's pair
with a dead one.

`DatabaseAuthorize` refreshes under a database lock instead (see
`DatabaseInstallationStore.refresh_lock`): the first caller to find the token
expiring takes the lock, re-reads the row, calls `oauth.v2.access` only if the
row is still expiring, and commits the new encrypted pair with a version bump
before releasing the lock. Everyone who queued behind it re-reads the row,
finds a fresh token, and uses it.

It also skips Bolt's per-request `auth.test`: the bot id, bot user id and
team come from the stored installation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import DBAPIError

from bot.install.installations import (
    Clock,
    DatabaseInstallationStore,
    StaleInstallation,
    StoredInstallation,
    utcnow,
)
from journey.secrets import SecretUnreadable

DEFAULT_ROTATION_MINUTES = 120
# A token this close to expiry is not handed out when a refresh fails.
MIN_REMAINING = timedelta(minutes=1)
# Refresh errors that mean the stored refresh token will never work again:
# the installation must be reinstalled, so it is marked inactive.
DEAD_REFRESH_ERRORS = frozenset({"invalid_refresh_token", "token_revoked", "app_uninstalled"})

log = logging.getLogger(__name__)


class DatabaseAuthorize(AsyncAuthorize):
    """Bolt authorize over `DatabaseInstallationStore`, refreshing tokens under a lock.

    Usable as `AsyncApp(authorize=DatabaseAuthorize(...))`, also together with
    `oauth_settings` (it is an AsyncAuthorize, which Bolt accepts alongside the
    OAuth flow; Bolt then sets `token_rotation_expiration_minutes` from the
    settings). `base_url` is the Web API root (tests point it at a local fake);
    `client_id`/`client_secret` are needed only when tokens rotate.
    """

    def __init__(
        self,
        store: DatabaseInstallationStore,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        base_url: str = AsyncWebClient.BASE_URL,
        client: AsyncWebClient | None = None,
        token_rotation_expiration_minutes: int = DEFAULT_ROTATION_MINUTES,
        http_timeout: int = 15,
        clock: Clock = utcnow,
    ) -> None:
        self.store = store
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_rotation_expiration_minutes = token_rotation_expiration_minutes
        self.clock = clock
        # No retries: a retried refresh could spend the single-use refresh token
        # twice. A failed refresh is retried by the next request instead.
        self.client = client or AsyncWebClient(
            base_url=base_url, timeout=http_timeout, retry_handlers=[]
        )

    async def __call__(
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult | None:
        return await self.authorize(
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            is_enterprise_install=bool(context.is_enterprise_install),
        )

    async def authorize(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool = False,
    ) -> AuthorizeResult | None:
        """The AuthorizeResult for a team (or org), or None if it has no usable token.

        None makes Bolt answer as it does for a workspace that never installed
        the app; that is also the answer for a revoked (inactive) installation.
        """
        try:
            found = await self.store.find(enterprise_id, team_id, is_enterprise_install)
            if found is None or not found.usable:
                log.debug(
                    "no active installation for enterprise %s team %s", enterprise_id, team_id
                )
                return None
            if found.expires_within(self._window, self.clock()):
                try:
                    refreshed = await self._refresh(found)
                except (DBAPIError, StaleInstallation) as exc:
                    # Lock wait timed out, or the database failed mid-refresh: the
                    # old token still works for up to two hours, so keep serving it.
                    # The driver's message only: SQLAlchemy's would append the bound
                    # parameters, which here include token ciphertext.
                    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
                    log.error("token refresh for %s failed in the database: %s", found.key, reason)
                    refreshed = self._still_valid(found)
                if refreshed is None:
                    return None
                found = refreshed
        except SecretUnreadable as exc:
            log.error("installation for team %s unreadable: %s", team_id or enterprise_id, exc)
            return None
        return AuthorizeResult(
            enterprise_id=found.enterprise_id,
            # The installation's own team: None for an org-wide install, whose workspace is
            # its enterprise (bot/guard/access.authorized_workspace), never the payload's.
            team_id=found.team_id,
            team=found.team_name,
            bot_id=found.bot_id,
            bot_user_id=found.bot_user_id,
            bot_token=found.bot_token,
            bot_scopes=found.bot_scopes,
            user_id=user_id,
        )

    @property
    def _window(self) -> timedelta:
        # Read on every call: Bolt assigns the attribute after construction.
        return timedelta(minutes=self.token_rotation_expiration_minutes)

    def _still_valid(self, found: StoredInstallation) -> StoredInstallation | None:
        expires_at = found.bot_token_expires_at
        if found.usable and (expires_at is None or expires_at > self.clock() + MIN_REMAINING):
            return found
        return None

    async def _refresh(self, found: StoredInstallation) -> StoredInstallation | None:
        if self.client_id is None or self.client_secret is None:
            log.error(
                "the token of %s rotates but SLACK_CLIENT_ID/SLACK_CLIENT_SECRET are not "
                "configured, so it cannot be refreshed",
                found.key,
            )
            return self._still_valid(found)
        async with self.store.refresh_lock(found.key) as locked:
            current = locked.current
            if current is None or not current.usable:
                return None
            if not current.expires_within(self._window, self.clock()):
                return current  # another request or replica refreshed it first
            try:
                response = await self.client.oauth_v2_access(
                    client_id=self.client_id,
                    client_secret=self.client_secret,
                    grant_type="refresh_token",
                    refresh_token=current.bot_refresh_token,
                )
            except SlackApiError as exc:
                error = exc.response.get("error")
                if error in DEAD_REFRESH_ERRORS:
                    log.error(
                        "refreshing the token of %s failed (%s): marked inactive; "
                        "the app must be reinstalled there",
                        current.key,
                        error,
                    )
                    await locked.deactivate()
                    return None
                log.warning("refreshing the token of %s failed (%s)", current.key, error)
                return self._still_valid(current)
            except Exception as exc:  # network or timeout: keep the token while it lasts
                log.warning(
                    "refreshing the token of %s failed (%s)", current.key, type(exc).__name__
                )
                return self._still_valid(current)
            access_token = response.get("access_token")
            expires_in = response.get("expires_in")
            if response.get("token_type") != "bot" or not access_token or not expires_in:
                log.error("unexpected token refresh response for %s", current.key)
                return self._still_valid(current)
            refreshed = await locked.replace_tokens(
                bot_token=access_token,
                bot_refresh_token=response.get("refresh_token") or current.bot_refresh_token,
                expires_at=self.clock() + timedelta(seconds=int(expires_in)),
            )
            log.info(
                "refreshed the bot token of %s (version %s)", current.key, refreshed.token_version
            )
            return refreshed


def single_workspace_authorize(
    bot_token: str, *, client: AsyncWebClient | None = None
) -> Callable[..., Awaitable[AuthorizeResult]]:
    """Authorize for one workspace with a fixed SLACK_BOT_TOKEN (no installation store).

    Pass as `AsyncApp(authorize=...)` (not together with oauth_settings). The
    bot's ids come from one `auth.test`, made on the first request and kept
    for the life of the process: the token is fixed, so the answer cannot go
    stale. A failed `auth.test` raises SlackApiError, which Bolt turns into
    "not authorized" for that request; the next request tries again.
    """
    result: AuthorizeResult | None = None
    lock = asyncio.Lock()

    async def authorize(context: AsyncBoltContext) -> AuthorizeResult:
        nonlocal result
        async with lock:
            if result is None:
                response = await (client or context.client).auth_test(token=bot_token)
                result = AuthorizeResult.from_auth_test_response(
                    auth_test_response=response,
                    bot_token=bot_token,
                    bot_scopes=response.headers.get("x-oauth-scopes"),
                )
        return result

    return authorize
