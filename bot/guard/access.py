"""Who is asking, and what they may see.

The payload of a command or click names a user and a team, but says nothing we should
trust about what that user is: guests, people of other organizations in a Slack Connect
channel, and deactivated accounts all send the same payloads as members. So each user is
looked up once with users.info (cached for CACHE_SECONDS per workspace and user) and
sorted into a Role:

- admin: a workspace admin or owner (users.info `is_admin`, `is_owner`,
  `is_primary_owner`), or a member listed for this workspace in JOURNEY_ADMIN_USER_IDS.
  Sees every report, changes settings, exports and shares.
- member: a full member. Sees reports, customer names included (they are what makes the
  churn and review lists actionable, and a member could read the same names in the
  store's own tools); exports and *Share* need an admin or JOURNEY_EXPORT_USERGROUP.
- guest (`is_restricted`, single-channel guests also `is_ultra_restricted`), external
  (a user of another organization: `is_stranger`, or a `team_id` other than the
  authorized workspace's outside its Enterprise Grid org), deactivated (`deleted`),
  unknown (users.info failed): no customer data at all, one sentence saying why.

The workspace is always the one Bolt authorized (the installation's team, or its
enterprise for an org-wide install), never the payload's `team`, which under Slack
Connect may be another organization's and for org-wide installs may be null.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Engine

from bot.config import BotSettings
from bot.guard.fair import RateLimit, SharedRateLimit, too_many_message
from bot.slack_errors import explain
from bot.work.pool import in_worker

log = logging.getLogger("journey.bot")

CACHE_SECONDS = 300.0
CACHE_SIZE = 10_000


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"
    GUEST = "guest"
    EXTERNAL = "external"
    DEACTIVATED = "deactivated"
    UNKNOWN = "unknown"


GUEST_REFUSAL = (
    "journey shows customer data to full members of this workspace only, and Slack lists "
    "you as a guest; ask a workspace member or admin if you need these numbers."
)
EXTERNAL_REFUSAL = (
    "journey shows this workspace's customer data only to its own members, and your Slack "
    "account belongs to another organization, so I can't show it to you here."
)
DEACTIVATED_REFUSAL = "This Slack account is deactivated, so journey shows it no customer data."
SETTINGS_REFUSAL = (
    "Only workspace admins and owners can change journey's settings. Ask one of them, or "
    "ask your journey operator to add you to JOURNEY_ADMIN_USER_IDS (as TEAM_ID:USER_ID)."
)
CONNECT_REFUSAL = (
    "Only workspace admins and owners can connect a source. Ask one of them, or ask your "
    "journey operator to add you to JOURNEY_ADMIN_USER_IDS (as TEAM_ID:USER_ID)."
)


def export_refusal(has_group: bool) -> str:
    who = (
        "workspace admins, owners and the user group your operator chose"
        if has_group
        else ("workspace admins and owners")
    )
    return (
        f"Exports and sharing are for {who}: they send customer names and emails out of "
        "this private report. Ask one of them to export or share it."
    )


EXTERNAL_CHANNEL_REFUSAL = (
    "I won't share customer data into this conversation: it is shared with another "
    "workspace or organization. Share it in a channel only your workspace can read."
)
SCHEDULE_CHANNEL_REFUSAL = (
    "I won't post digests or alerts in this conversation: it is shared with another "
    "workspace or organization, and they name customers. Run this in a channel only your "
    "workspace can read."
)
#: Why a digest or alert stopped when its channel became shared (a pause reason: the
#: pause notice and the App Home show it; at most 300 characters).
SHARED_CHANNEL_PAUSE = (
    "the channel is now shared with another workspace or organization (Slack Connect), and "
    "journey posts customer data only where your workspace alone reads it. Choose a channel "
    "only your workspace can read."
)

#: conversations.info's booleans that say someone outside the workspace reads (or is about
#: to read) the conversation, as Slack's conversation type documents them
#: (https://api.slack.com/types/conversation): `is_ext_shared`, part of a shared channel
#: with a remote organization (Slack Connect; `is_shared` is then true too); `is_shared`,
#: shared with another workspace; `is_org_shared`, shared between workspaces of an
#: Enterprise Grid org; `is_pending_ext_shared`, an invitation to share it with another
#: organization is waiting to be accepted (the teams are in `pending_shared`).
SHARED_FLAGS = ("is_ext_shared", "is_shared", "is_org_shared", "is_pending_ext_shared")


def shared_outside(channel: dict[str, Any]) -> bool:
    """Whether a conversations.info `channel` is, or is about to be, read outside the
    workspace. Every flag counts (and a non-empty `pending_shared`): customer names posted
    there would reach people journey never checked."""
    return any(channel.get(flag) for flag in SHARED_FLAGS) or bool(channel.get("pending_shared"))


def authorized_workspace(context: AsyncBoltContext) -> str:
    """The workspace journey keys data by: the team Bolt authorized the request for (the
    installation's team; its enterprise for an org-wide install, whose team is null).

    Falls back to Bolt's own ids only when there is no authorize result (never the case
    for commands, actions, views and events in HTTP or Socket Mode)."""
    result = context.authorize_result
    if result is not None and (result.team_id or result.enterprise_id):
        return str(result.team_id or result.enterprise_id)
    return context.team_id or context.enterprise_id or ""


@dataclass(frozen=True)
class Viewer:
    """A user as users.info describes them, from the authorized workspace's point of view."""

    user_id: str
    workspace: str
    role: Role
    tz: str = "UTC"
    error: str | None = None  # why the look-up failed (Role.UNKNOWN), in words

    @property
    def sees_customers(self) -> bool:
        return self.role in (Role.ADMIN, Role.MEMBER)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def refusal(self) -> str | None:
        """One sentence on why this user sees no customer data; None if they may."""
        if self.sees_customers:
            return None
        if self.role is Role.GUEST:
            return GUEST_REFUSAL
        if self.role is Role.EXTERNAL:
            return EXTERNAL_REFUSAL
        if self.role is Role.DEACTIVATED:
            return DEACTIVATED_REFUSAL
        return (
            f"I couldn't check your Slack account, so I'm showing no customer data. "
            f"{self.error or 'Please try again in a minute.'}"
        )


def role_of(user: dict[str, Any], team_id: str | None, enterprise_id: str | None) -> Role:
    """Sort a users.info `user` object (https://api.slack.com/types/user) against the
    authorized team (None for an org-wide install) and enterprise."""
    if user.get("deleted"):
        return Role.DEACTIVATED
    if user.get("is_bot") or user.get("is_app_user"):
        return Role.UNKNOWN
    grid = (user.get("enterprise_user") or {}).get("enterprise_id")
    same_org = enterprise_id is not None and grid == enterprise_id
    if user.get("is_stranger") and not same_org:
        return Role.EXTERNAL
    if team_id is not None:
        if user.get("team_id") != team_id and not same_org:
            return Role.EXTERNAL
    elif not same_org:
        return Role.EXTERNAL
    if user.get("is_restricted") or user.get("is_ultra_restricted"):
        return Role.GUEST
    if user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"):
        return Role.ADMIN
    return Role.MEMBER


Reply = Callable[[str], Awaitable[Any]]


class Guard:
    """The access rule and the per-user rate limit, shared by every listener of one app."""

    def __init__(
        self,
        settings: BotSettings,
        clock: Callable[[], float] | None = None,
        cache_seconds: float = CACHE_SECONDS,
        engine: Engine | None = None,
    ) -> None:
        """`engine`: the database every replica shares, where the per-user rate limit is
        counted (bot/guard/fair.py); without one it is counted in this process. `clock`
        (tests) drives both the caches and the rate limit; by default the caches use the
        monotonic clock and the shared limit the wall clock replicas agree on."""
        self.settings = settings
        self.clock = clock or time.monotonic
        self.cache_seconds = cache_seconds
        self.rate: RateLimit | SharedRateLimit
        if engine is not None:
            self.rate = SharedRateLimit(
                engine, settings.commands_per_minute, clock=clock or time.time
            )
        else:
            self.rate = RateLimit(settings.commands_per_minute, clock=self.clock)
        self._users: dict[tuple[str, str], tuple[float, Viewer]] = {}
        self._groups: dict[tuple[str, str], tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ who

    async def viewer(
        self, client: AsyncWebClient, context: AsyncBoltContext, user_id: str
    ) -> Viewer:
        """The user's Viewer, from the cache or one users.info call."""
        workspace = authorized_workspace(context)
        key = (workspace, user_id)
        now = self.clock()
        with self._lock:
            cached = self._users.get(key)
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        result = context.authorize_result
        team = result.team_id if result is not None else context.team_id
        enterprise = result.enterprise_id if result is not None else context.enterprise_id
        try:
            user = (await client.users_info(user=user_id))["user"]
        except SlackApiError as exc:
            log.warning("users.info failed for an access check: %s", exc.response.get("error"))
            return Viewer(user_id, workspace, Role.UNKNOWN, error=explain(exc))
        role = role_of(user, team, enterprise)
        if role is Role.MEMBER and user_id in self.settings.admins_of(workspace):
            role = Role.ADMIN
        found = Viewer(user_id, workspace, role, str(user.get("tz") or "UTC"))
        with self._lock:
            if len(self._users) >= CACHE_SIZE:
                self._users.clear()
            self._users[key] = (now, found)
        return found

    async def admit(
        self,
        client: AsyncWebClient,
        context: AsyncBoltContext,
        user_id: str,
        reply: Reply,
        *,
        counts: bool = True,
    ) -> Viewer | None:
        """The Viewer if they may see customer data and are within the rate limit;
        otherwise None, after telling them why in one sentence through `reply`."""
        found = await self.viewer(client, context, user_id)
        refusal = found.refusal()
        if refusal is not None:
            await reply(refusal)
            return None
        if counts:
            if isinstance(self.rate, SharedRateLimit):
                wait = await in_worker(self.rate.wait, found.workspace, user_id)
            else:
                wait = self.rate.wait(found.workspace, user_id)
            if wait > 0:
                await reply(too_many_message(wait))
                return None
        return found

    # ------------------------------------------------------------------ what

    async def may_export(self, client: AsyncWebClient, viewer: Viewer) -> bool:
        """Admins, and members of a JOURNEY_EXPORT_USERGROUP group of this workspace."""
        if viewer.is_admin:
            return True
        if not viewer.sees_customers:
            return False
        for group in sorted(self.settings.export_groups_of(viewer.workspace)):
            if viewer.user_id in await self._members(client, viewer.workspace, group):
                return True
        return False

    def export_refusal(self, viewer: Viewer) -> str:
        return export_refusal(bool(self.settings.export_groups_of(viewer.workspace)))

    async def _members(self, client: AsyncWebClient, workspace: str, group: str) -> frozenset[str]:
        key = (workspace, group)
        now = self.clock()
        with self._lock:
            cached = self._groups.get(key)
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        try:
            # https://api.slack.com/methods/usergroups.users.list: {"ok": true, "users": [...]}
            users = frozenset((await client.usergroups_users_list(usergroup=group))["users"])
        except SlackApiError as exc:
            log.warning(
                "usergroups.users.list failed for JOURNEY_EXPORT_USERGROUP %s: %s",
                group,
                exc.response.get("error"),
            )
            return frozenset()
        with self._lock:
            self._groups[key] = (now, users)
        return users

    async def share_refusal(self, client: AsyncWebClient, channel_id: str) -> str | None:
        """Why a report must not be shared into `channel_id`, or None if it may.

        Refused when the conversation is shared outside the workspace (`shared_outside`);
        a failed look-up refuses too (fail closed)."""
        return await self.channel_refusal(
            client, channel_id, EXTERNAL_CHANNEL_REFUSAL, "share reports into", "share"
        )

    async def schedule_refusal(self, client: AsyncWebClient, channel_id: str) -> str | None:
        """Why digests and alerts must not be set up in `channel_id`, or None if they may
        (the same rule as *Share*; checked again before each post, bot/posting/delivery.py)."""
        return await self.channel_refusal(
            client, channel_id, SCHEDULE_CHANNEL_REFUSAL, "post digests and alerts in", "set it up"
        )

    async def channel_refusal(
        self, client: AsyncWebClient, channel_id: str, shared: str, where: str, did_not: str
    ) -> str | None:
        """`shared` when conversations.info says the conversation is read outside the
        workspace; a sentence saying so when it cannot be checked; None when it may."""
        if not channel_id:
            return shared
        try:
            channel = (await client.conversations_info(channel=channel_id))["channel"]
        except SlackApiError as exc:
            needed = str(exc.response.get("needed") or "")
            if exc.response.get("error") == "missing_scope" and needed in ("", "mpim:read"):
                # journey asks for channels:read, groups:read and im:read, not mpim:read:
                # a group DM is no place for customer data. (An install made before one of
                # the others was asked for gets explain()'s "needs the X permission".)
                return (
                    f"I only {where} channels and direct messages: I can't check who reads "
                    f"this conversation, so I didn't {did_not}."
                )
            return (
                f"I couldn't check who can read this conversation, so I didn't {did_not}. "
                f"{explain(exc)}"
            )
        if shared_outside(channel):
            return shared
        return None
