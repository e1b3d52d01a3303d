"""Slack messages rendered for a terminal: the local console shows the very reply
Slack would get, block by block, so trying journey locally is trying the bot.

Names show as Slack shows them: mrkdwn text arrives escaped (`Tom &amp; Jerry`,
bot/blocks/mrkdwn.py) and is unescaped here after the bot's own references are read;
plain_text (headers, buttons) is printed as typed, like Slack does."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bot.blocks.mrkdwn import unescape

_EMOJI = {
    ":warning:": "!",
    ":bulb:": "*",
    ":small_red_triangle_down:": "v",
    ":white_check_mark:": "ok",
    ":hourglass_flowing_sand:": "...",
    ":construction:": "(soon)",
    ":rotating_light:": "(!)",
    ":pause_button:": "(paused)",
    ":arrow_up_small:": "^",
    ":arrow_down_small:": "v",
    ":hourglass:": "(late)",
    ":eyes:": "",
}
# Slack's mrkdwn references: <#C123> a channel, <@U123> a person, <url|label> a link.
_CHANNEL = re.compile(r"<#([^>|]+)(?:\|([^>]*))?>")
_USER = re.compile(r"<@([^>|]+)(?:\|([^>]*))?>")
_LINK = re.compile(r"<(https?://[^>|]+)\|([^>]*)>")
_OTHER_EMOJI = re.compile(r"(?<!\S):[a-z0-9_+-]+:(?!\S)")
# Control characters other than newline and tab: from data they could move the cursor,
# clear the screen or rewrite a line of the operator's terminal (an ESC sequence in a
# customer's name). Shown in caret notation (`^[`), or `?` for the C1 range.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _visible(text: str) -> str:
    return _CONTROL.sub(
        lambda m: "^" + chr(ord(m.group()) ^ 0x40) if ord(m.group()) < 0x80 else "?", text
    )


def _plain(text: str) -> str:
    for code, sign in _EMOJI.items():
        text = text.replace(code, sign)
    text = _OTHER_EMOJI.sub("", text)
    text = _CHANNEL.sub(lambda m: "#" + (m.group(2) or m.group(1)), text)
    text = _USER.sub(lambda m: "@" + (m.group(2) or m.group(1)), text)
    text = _LINK.sub(r"\2 (\1)", text)
    text = text.replace("```", "")
    text = re.sub(r"(?<!\w)\*([^*\n]+)\*(?!\w)", r"\1", text)
    text = re.sub(r"(?<!\w)_([^_\n]+)_(?!\w)", r"\1", text)
    return unescape(text.replace("`", ""))


def _text(obj: dict[str, Any] | None) -> str:
    if not obj:
        return ""
    if obj.get("type") == "plain_text":
        return str(obj.get("text", ""))
    return _plain(obj.get("text", ""))


Typed = Callable[[dict[str, Any]], str | None]


def render_terminal(payload: dict[str, Any], typed: Typed | None = None) -> str:
    """The message as text. `typed(button)` gives a button's typed form (the console has
    no buttons): it is shown beside the label, `[Skip: /journey reviews skip Ana]`."""
    return _visible(_render(payload, typed))


def _label(element: dict[str, Any], typed: Typed | None) -> str:
    label = _text(element.get("text"))
    form = typed(element) if typed is not None else None
    return f"[{label}: {form}]" if form else f"[{label}]"


def _render(payload: dict[str, Any], typed: Typed | None = None) -> str:
    blocks = payload.get("blocks") or []
    if not blocks:
        return _plain(payload.get("text", ""))
    out: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            title = _text(block.get("text"))
            out += ["", title, "=" * len(title)]
        elif kind == "section":
            out.append(_text(block.get("text")).strip("\n"))
            out += [_text(f) for f in block.get("fields") or []]
        elif kind == "context":
            out.append("  " + " ".join(_text(e) for e in block.get("elements") or []))
        elif kind == "actions":
            labels = [_label(e, typed) for e in block.get("elements") or []]
            out.append("  " + "  ".join(labels))
        elif kind == "divider":
            out.append("-" * 40)
        elif kind == "image":
            out.append(f"  (chart: {block.get('alt_text', '')})")
    return "\n".join(out).strip("\n")
