"""Render a message or view payload as Slack would, and report markup that came from data.

Slack's rules this follows (docs.slack.dev, "Formatting text for app surfaces", sections
"Escaping text", "Advanced formatting" and "Automatic parsing"; "Text object" reference
for `verbatim`):

- In mrkdwn text (a message's top-level `text`, and every text object of type `mrkdwn`:
  section text and fields, context elements, ...), `<...>` is a control sequence:
  `<!channel>`, `<!here>`, `<!everyone>` notify everyone, `<!subteam^ID>` a user group,
  `<@U…>` a person, `<#C…>` links a channel, `<url|label>` (or `<url>`) is a link whose
  label may say anything. `&amp;`, `&lt;`, `&gt;` show as `&`, `<`, `>`; those three
  characters must be sent escaped.
- A mrkdwn text object without `verbatim: true` is also "automatically parsed": bare
  `@here`, `@channel`, `@everyone` can become mentions, URLs and `#names` links.
- plain_text objects (headers, buttons, options, titles, labels) are shown as typed:
  `&amp;` there shows as `&amp;`.

`findings(payload, allowed)` walks every text in a payload and reports:
- `live`: a control sequence Slack would act on whose target the test did not declare
  as the bot's own (`allowed`: user ids, channel ids, URLs the bot itself links);
  broadcasts (`!channel`, `!here`, `!everyone`, `!subteam^…`) are never allowed;
- `unescaped`: a raw `<`, `>` or `&` outside a control sequence or entity (the bot's
  own text must be escaped too);
- `double-escaped`: an entity that would show as entity text (`Tom &amp;amp; Jerry`
  shows `Tom &amp; Jerry`), in mrkdwn after decoding or in plain_text as typed;
- `auto-parsed`: `@here`/`@channel`/`@everyone` in a mrkdwn object that is not verbatim.

`visible_texts(payload)` gives what a person reads, for asserting that names show as
typed. `sent(fake)` collects every payload a FakeSlack received from the bot.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

_SEQUENCE = re.compile(r"<([^<>]*)>")
_ENTITY = re.compile(r"&(amp|lt|gt);")
_RAW_AMP = re.compile(r"&(?!(?:amp|lt|gt);)")
_SHOWN_ENTITY = re.compile(r"&(?:amp|lt|gt);")
_AUTO_MENTION = re.compile(r"(?<![\w<!])@(here|channel|everyone)\b")
_BROADCASTS = ("!channel", "!here", "!everyone", "!subteam^")


@dataclass(frozen=True)
class Finding:
    where: str
    kind: str  # live | unescaped | double-escaped | auto-parsed
    token: str
    text: str

    def __str__(self) -> str:
        return f"{self.where}: {self.kind} {self.token!r} in {self.text[:160]!r}"


@dataclass(frozen=True)
class TextObject:
    where: str
    kind: str  # mrkdwn | plain_text | message-text
    text: str
    verbatim: bool = False


def _decoded(obj: Any) -> Any:
    """Form-encoded API calls carry blocks and views as JSON strings."""
    if isinstance(obj, str):
        try:
            return json.loads(obj)
        except ValueError:
            return obj
    return obj


def text_objects(payload: dict[str, Any]) -> Iterator[TextObject]:
    """Every text a payload shows: its top-level `text` (mrkdwn) and every text object
    found anywhere in its blocks or view."""
    if isinstance(payload.get("text"), str):
        yield TextObject("text", "message-text", payload["text"])
    for key in ("blocks", "view"):
        if key in payload:
            yield from _walk(_decoded(payload[key]), key)
    if isinstance(payload.get("initial_comment"), str):
        yield TextObject("initial_comment", "message-text", payload["initial_comment"])


def _walk(node: Any, where: str) -> Iterator[TextObject]:
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _walk(item, f"{where}[{i}]")
    elif isinstance(node, dict):
        kind = node.get("type")
        if kind in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
            yield TextObject(where, kind, node["text"], bool(node.get("verbatim")))
            return
        for key, value in node.items():
            if isinstance(value, dict | list):
                yield from _walk(value, f"{where}.{key}")


def _sequence_shows(inner: str) -> str:
    """What a control sequence shows in place (its label, or a readable default)."""
    target, _, label = inner.partition("|")
    if label:
        return label
    if target.startswith("!"):
        return "@" + target[1:].split("^")[0]
    return target


def render_mrkdwn(text: str) -> str:
    """The text as Slack shows it: control sequences by their label, entities decoded."""
    shown = _SEQUENCE.sub(lambda m: _sequence_shows(m.group(1)), text)
    return _ENTITY.sub(lambda m: {"amp": "&", "lt": "<", "gt": ">"}[m.group(1)], shown)


def visible_texts(payload: dict[str, Any]) -> list[str]:
    """What a person reads, text by text (mrkdwn rendered, plain_text as typed)."""
    return [
        t.text if t.kind == "plain_text" else render_mrkdwn(t.text) for t in text_objects(payload)
    ]


def _live_target(inner: str) -> str:
    return inner.partition("|")[0]


def findings(payload: dict[str, Any], allowed: Iterable[str] = ()) -> list[Finding]:
    """Everything in `payload` that Slack would turn into live markup from data, or that
    shows escaped text. `allowed`: the bot's own references (user or channel ids, URLs)."""
    ok = set(allowed)
    out: list[Finding] = []
    for t in text_objects(payload):
        if t.kind == "plain_text":
            for m in _SHOWN_ENTITY.finditer(t.text):
                out.append(Finding(t.where, "double-escaped", m.group(), t.text))
            continue
        for m in _SEQUENCE.finditer(t.text):
            target = _live_target(m.group(1))
            bare = target.lstrip("@#")
            broadcast = target.startswith(_BROADCASTS)
            if broadcast or (target not in ok and bare not in ok):
                out.append(Finding(t.where, "live", m.group(), t.text))
        rest = _SEQUENCE.sub("", t.text)
        for m in re.finditer("[<>]", rest):
            out.append(Finding(t.where, "unescaped", m.group(), t.text))
        for _ in _RAW_AMP.finditer(rest):
            out.append(Finding(t.where, "unescaped", "&", t.text))
        for m in _SHOWN_ENTITY.finditer(render_mrkdwn(t.text)):
            out.append(Finding(t.where, "double-escaped", m.group(), t.text))
        if t.kind == "mrkdwn" and not t.verbatim:
            for m in _AUTO_MENTION.finditer(render_mrkdwn(t.text)):
                out.append(Finding(t.where, "auto-parsed", m.group(), t.text))
    return out


# What the bot sends that Slack shows: (method, parameter holding a payload or a view).
_MESSAGE_METHODS = ("chat.postMessage", "chat.postEphemeral", "chat.update", "chat.scheduleMessage")
_VIEW_METHODS = ("views.open", "views.update", "views.push", "views.publish")
_FILE_METHODS = ("files.completeUploadExternal", "files.upload")


def sent(fake: Any) -> list[tuple[str, dict[str, Any]]]:
    """Every payload a FakeSlack received from the bot: messages and their updates, views,
    file comments, and posts to response URLs; each with a label saying where it went."""
    out: list[tuple[str, dict[str, Any]]] = []
    for call in list(fake.calls):
        params = call.params
        if call.method in _MESSAGE_METHODS or call.method in _FILE_METHODS:
            payload = {k: params[k] for k in ("text", "blocks", "initial_comment") if k in params}
            out.append((call.method, payload))
        elif call.method in _VIEW_METHODS and "view" in params:
            out.append((call.method, {"view": params["view"]}))
    for name, posts in dict(fake.responses).items():
        for post in posts:
            payload = {k: post.payload[k] for k in ("text", "blocks") if k in post.payload}
            out.append((f"response_url {name}", payload))
    return out


def all_findings(fake: Any, allowed: Iterable[str] = ()) -> list[str]:
    """`findings` over everything `sent(fake)` saw, as readable lines."""
    ok = list(allowed)
    return [f"{label}: {f}" for label, payload in sent(fake) for f in findings(payload, ok)]
