"""Slack API errors in words a workspace member can act on.

The codes come from Slack's Web API; anything not listed gets a generic
sentence with the code, never a traceback.
"""

from __future__ import annotations

from slack_sdk.errors import SlackApiError

_MESSAGES = {
    "not_in_channel": "I'm not in that channel yet: invite me with `/invite @journey` and try again.",
    "channel_not_found": (
        "I can't see that channel: it may be private or deleted. "
        "Invite me with `/invite @journey`, or pick another channel."
    ),
    "is_archived": "That channel is archived: unarchive it or pick another channel.",
    "invalid_auth": "journey's access to this workspace is no longer valid: an admin needs to reinstall the app.",
    "token_revoked": "journey's access to this workspace was revoked: an admin needs to reinstall the app.",
    "account_inactive": "journey's access to this workspace was revoked: an admin needs to reinstall the app.",
    "ratelimited": "Slack is rate-limiting journey right now; please try again in a minute.",
}


def explain(exc: SlackApiError) -> str:
    """One sentence for a failed Slack call; missing scopes name the scope to add."""
    error = str(exc.response.get("error") or "unknown_error")
    if error == "missing_scope":
        needed = exc.response.get("needed") or "a scope"
        return (
            f"journey needs the `{needed}` permission for that: an admin can add it under "
            "OAuth & Permissions and reinstall the app."
        )
    return _MESSAGES.get(
        error, f"Slack refused the request ({error}). Please try again in a minute."
    )
