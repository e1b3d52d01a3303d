"""Who may change settings: workspace admins and owners, or configured user ids."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger("journey.bot")


async def may_change_settings(
    client: AsyncWebClient, user_id: str, allowed: frozenset[str]
) -> bool:
    if user_id in allowed:
        return True
    try:
        user = (await client.users_info(user=user_id))["user"]
    except SlackApiError as exc:
        log.warning("users.info failed for a permission check: %s", exc.response.get("error"))
        return False
    return bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))


async def user_timezone(client: AsyncWebClient, user_id: str) -> str:
    """The user's IANA timezone from their Slack profile (users.info `tz`), else UTC."""
    try:
        user = (await client.users_info(user=user_id))["user"]
    except SlackApiError as exc:
        log.warning("users.info failed reading a timezone: %s", exc.response.get("error"))
        return "UTC"
    return str(user.get("tz") or "UTC")


REFUSAL = (
    "Only workspace admins and owners can change journey's settings. "
    "Ask one of them, or ask your journey operator to add your user id to JOURNEY_ADMIN_USER_IDS."
)
