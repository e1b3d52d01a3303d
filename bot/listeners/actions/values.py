"""Reading the JSON a button carries, defensively: a forged or stale value must not crash."""

from __future__ import annotations

import json
from typing import Any

from bot.commands.language import REPORTS, Command


def action_value(body: dict[str, Any]) -> dict[str, Any]:
    try:
        raw = body["actions"][0]["value"]
        value = json.loads(raw)
    except (KeyError, IndexError, TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def command_from(value: dict[str, Any]) -> Command | None:
    kind = value.get("k")
    if kind not in REPORTS:
        return None
    period = value.get("p") if isinstance(value.get("p"), str) else None
    channel = value.get("c") if isinstance(value.get("c"), str) else None
    return Command(kind, period=period, channel=channel)


def user_of(body: dict[str, Any]) -> str:
    return (body.get("user") or {}).get("id") or ""
