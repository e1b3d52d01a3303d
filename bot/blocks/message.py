"""A Slack message that is guaranteed to fit Slack's limits, with data shown as text.

slack_sdk's block models validate each block (section text 3,000, header 150,
button label 75...) but nothing checks the whole message: 50 blocks, and the
undocumented total near 12,000 characters that fails with `msg_blocks_too_long`.
`Message.payload()` enforces both, so a long report degrades to a shorter one
instead of an error the user never sees.

Every mrkdwn text goes through bot/blocks/mrkdwn.py here: `section`, `context`,
`code` and `Message.text` escape any plain `str` (data) and keep `Mrkdwn` (the bot's
own mentions and links) live. `header` and `button` are plain_text: shown as typed,
never escaped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.blocks import mrkdwn as _md
from bot.blocks.mrkdwn import Mrkdwn, mrkdwn

MAX_BLOCKS = 50
MAX_BLOCKS_CHARS = 11_000  # Slack fails near 12,000; keep a margin
SECTION_TEXT = 3000
HEADER_TEXT = 150
BUTTON_TEXT = 75


def clip(text: str, limit: int) -> str:
    """Plain text cut to `limit` characters (for plain_text fields; mrkdwn is cut by
    `mrkdwn_text`, which never splits an entity)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mrkdwn_text(text: str, limit: int = SECTION_TEXT) -> MarkdownTextObject:
    """A mrkdwn text object: `text` escaped unless it is `Mrkdwn`, then cut to `limit`.

    `verbatim`: without it Slack "automatically parses" the plain words of a mrkdwn
    object (docs.slack.dev, Block Kit text object: URLs become links, conversation
    names are linked, "certain mentions" are parsed), so a customer called `@here` or
    `#general` could still ping or link after escaping. Verbatim text keeps the bot's
    own `<@U…>`, `<#C…>` sequences and all formatting."""
    return MarkdownTextObject(text=str(_md.clip(mrkdwn(text), limit)), verbatim=True)


def header(text: str) -> HeaderBlock:
    """plain_text: shown as typed, so never escaped (`Tom & Jerry` stays `Tom & Jerry`)."""
    return HeaderBlock(text=clip(text, HEADER_TEXT))


def section(
    text: str, block_id: str | None = None, accessory: ButtonElement | None = None
) -> SectionBlock:
    """A section; `accessory`: a button beside its text (a customer record's *Unlink*)."""
    return SectionBlock(text=mrkdwn_text(text), block_id=block_id, accessory=accessory)


def code(lines: list[str]) -> SectionBlock:
    """A monospace table: numbers stay text people can search and copy.

    The lines are data (names, channels, stage labels): escaped like any other text.
    Entities keep the columns aligned, since Slack shows each as one character."""
    safe = [mrkdwn(line) for line in lines]
    body = Mrkdwn("\n").join(safe)
    if len(body) + 6 > SECTION_TEXT:
        kept: list[Mrkdwn] = []
        for line in safe:
            if sum(len(k) + 1 for k in kept) + len(line) + 40 > SECTION_TEXT:
                kept.append(mrkdwn(f"… and {len(lines) - len(kept)} more rows"))
                break
            kept.append(line)
        body = Mrkdwn("\n").join(kept)
    return section(_md.md("```\n{}\n```", body))


def context(*texts: str) -> ContextBlock:
    return ContextBlock(elements=[mrkdwn_text(t) for t in texts[:10]])


def button(
    text: str, action_id: str, value: dict[str, Any] | str, style: str | None = None
) -> ButtonElement:
    raw = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return ButtonElement(text=clip(text, BUTTON_TEXT), action_id=action_id, value=raw, style=style)


def actions(*elements: ButtonElement, block_id: str | None = None) -> ActionsBlock:
    return ActionsBlock(elements=list(elements[:25]), block_id=block_id)


@dataclass
class Message:
    """Fallback text plus blocks; `payload()` returns what chat.postMessage / respond take."""

    # The notification and screen-reader text: mrkdwn, so a plain str is escaped like a
    # section's; it is a `Mrkdwn` once the Message exists.
    text: str
    blocks: list[Block] = field(default_factory=list)
    # Blocks that must survive trimming (the buttons), kept at the end.
    footer: list[Block] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.text = mrkdwn(self.text)

    def payload(self) -> dict[str, Any]:
        body = [b.to_dict() for b in self.blocks]
        tail = [b.to_dict() for b in self.footer]
        trimmed = 0
        while body and (
            len(body) + len(tail) > MAX_BLOCKS or _size(body + tail) > MAX_BLOCKS_CHARS
        ):
            body.pop()
            trimmed += 1
        if trimmed:
            note = context(
                f"_{trimmed} more blocks left out to fit Slack's message size._"
            ).to_dict()
            if len(body) + len(tail) + 1 > MAX_BLOCKS:
                body.pop()
            body.append(note)
        return {"text": str(_md.clip(self.text, 3000)), "blocks": body + tail}


def _size(blocks: list[dict[str, Any]]) -> int:
    return len(json.dumps(blocks, ensure_ascii=False))
