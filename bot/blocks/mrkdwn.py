"""The one escaping rule for text journey sends to Slack.

Slack reads every mrkdwn text (a section's text and fields, a context element, a
message's top-level `text`, which notifications show) for control sequences:
`<!channel>`, `<!here>`, `<!everyone>`, `<@U…>`, `<#C…>`, `<https://url|label>`. A
customer called `<!channel> Mallory` would ping the whole channel, and
`<https://evil.example|Verify your account>` would become a disguised link in a
message from a trusted bot. Slack's "Formatting text for app surfaces" page (section
"Escaping text") says to replace `&`, `<` and `>` with `&amp;`, `&lt;` and `&gt;`, and
only those three; Slack then shows them as typed.

How journey applies it, so that no builder can forget:

- Every plain `str` that reaches a mrkdwn field is data and is escaped, whatever it
  holds: the builders in bot/blocks/message.py (`section`, `context`, `code`,
  `Message.text`) call `mrkdwn()` on what they are given. Text written in code may
  still use `*bold*`, `_italic_`, backticks and emoji: escaping leaves those alone.
- The only text that passes unescaped is a `Mrkdwn` value. It is made by `mention()`
  and `channel_link()` (the bot's own references, built from ids Slack gave us), by
  `md()` (a template written in code whose fields are escaped unless they are
  `Mrkdwn` themselves) and by `mrkdwn()` itself (already escaped).
- `Mrkdwn` refuses to go into an f-string or `str.format`: that would turn it back
  into a plain `str`, and the builders would escape it a second time (`Tom &amp;amp;
  Jerry`) and break its mentions. Compose with `md()`, `+` or `Mrkdwn.join`.
- plain_text objects (headers, buttons, options, modal titles and labels) are shown
  as typed by Slack and are never escaped: `header("Tom & Jerry")` shows `Tom & Jerry`.

Formatting characters from data (`*`, `_`, `~`, backticks) are left as typed. Slack
has no escape for them, and the workarounds (a zero-width space or a look-alike
character inside each name) would change what people copy and search for: an email
pasted from a digest would carry an invisible character. The worst such a name can do
is make itself bold or italic; it cannot mention anyone or make a link, and in the
monospace tables (code blocks) Slack applies no formatting at all.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from typing import Any

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_ESCAPE = re.compile("[&<>]")
_ENTITY = re.compile("&(amp|lt|gt);")
_UNESCAPES = {"amp": "&", "lt": "<", "gt": ">"}
# The ids Slack gives out (U…, W…, C…, G…, D…) are upper-case letters and digits; the
# local console uses lowercase words ("console"). Anything with another character (`|`,
# `>`, `!`, `^`, a space...) is not an id and is escaped instead of linked.
_ID = re.compile(r"[A-Za-z0-9._-]+")


class Mrkdwn(str):
    """Text ready for a Slack mrkdwn field: whatever came from data inside it is escaped.

    Make one with `mrkdwn()`, `md()`, `mention()` or `channel_link()`; calling
    `Mrkdwn(text)` directly vouches that `text` holds no unescaped data.
    """

    __slots__ = ()

    def __format__(self, spec: str) -> str:
        raise TypeError(
            "a Mrkdwn value in an f-string or str.format becomes a plain str and would be "
            "escaped again: compose it with md(), + or Mrkdwn.join"
        )

    def __add__(self, other: str) -> Mrkdwn:
        return Mrkdwn(str.__add__(self, mrkdwn(other)))

    def __radd__(self, other: str) -> Mrkdwn:
        return Mrkdwn(str.__add__(mrkdwn(other), self))

    def join(self, items: Iterable[str]) -> Mrkdwn:  # type: ignore[override]
        """`md(", ").join(names)`: the items are escaped unless already Mrkdwn."""
        return Mrkdwn(str.join(self, (mrkdwn(i) for i in items)))


def escape(text: str) -> str:
    """`&`, `<`, `>` as Slack's entities; nothing else changes."""
    return _ESCAPE.sub(lambda m: _ESCAPES[m.group()], text)


def unescape(text: str) -> str:
    """What Slack shows for escaped text (the console renders mrkdwn this way)."""
    return _ENTITY.sub(lambda m: _UNESCAPES[m.group(1)], text)


def mrkdwn(text: str) -> Mrkdwn:
    """Text as it may enter a mrkdwn field: a `Mrkdwn` as it is, any other str escaped.

    Never escapes twice: the result is a `Mrkdwn`, which this returns unchanged."""
    if isinstance(text, Mrkdwn):
        return text
    if not isinstance(text, str):
        raise TypeError(f"mrkdwn text must be a str, not {type(text).__name__}")
    return Mrkdwn(escape(text))


class _Formatter(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, Mrkdwn):
            return str.__format__(value, format_spec)
        return escape(format(value, format_spec))


_FORMATTER = _Formatter()


def md(template: str, /, *args: Any, **kwargs: Any) -> Mrkdwn:
    """`str.format` for mrkdwn: the template is written in code and kept as it is (it may
    hold formatting), every field is escaped unless it is `Mrkdwn`.

    `md("*{who}* asked {user}", who=customer.name, user=mention(user_id))`."""
    return Mrkdwn(_FORMATTER.vformat(template, args, kwargs))


def mention(user_id: str) -> Mrkdwn:
    """A live mention of a person whose id Slack gave us (the requester, an admin)."""
    if _ID.fullmatch(user_id):
        return Mrkdwn(f"<@{user_id}>")
    return mrkdwn(user_id)


def channel_link(channel_id: str) -> Mrkdwn:
    """A live link to a conversation whose id Slack gave us."""
    if _ID.fullmatch(channel_id):
        return Mrkdwn(f"<#{channel_id}>")
    return mrkdwn(channel_id)


# What bot code writes as a pause or switch-off reason when a person turns a digest or an
# alert off; it is stored in the database and shown again later (Home tab, lists).
TURNED_OFF_BY = "turned off by "
_TURNED_OFF = re.compile(rf"{TURNED_OFF_BY}<@([A-Za-z0-9._-]+)>")


def turned_off_by(user_id: str) -> str:
    """The stored reason for "a person turned this off": a mention `stored_reason` revives."""
    return f"{TURNED_OFF_BY}<@{user_id}>"


def stored_reason(reason: str) -> Mrkdwn:
    """A stored pause reason as mrkdwn: escaped like any data, except exactly the reason
    `turned_off_by` writes, whose mention stays live. Other reasons (Slack errors, API
    errors that may quote data) are plain data."""
    matched = _TURNED_OFF.fullmatch(reason)
    if matched:
        return md("{}{}", TURNED_OFF_BY, mention(matched.group(1)))
    return mrkdwn(reason)


def clip(text: Mrkdwn, limit: int) -> Mrkdwn:
    """Mrkdwn cut to `limit` characters with an ellipsis, never inside an entity (`&amp;`)
    or a control sequence (`<@U1>`): half of one would show as garbage."""
    if len(text) <= limit:
        return text
    cut = str(text)[: limit - 1]
    amp, semi = cut.rfind("&"), cut.rfind(";")
    if amp > semi and len(cut) - amp < 5:
        cut = cut[:amp]
    lt, gt = cut.rfind("<"), cut.rfind(">")
    if lt > gt:
        cut = cut[:lt]
    return Mrkdwn(cut + "…")
