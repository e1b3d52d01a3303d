"""The `/journey connect` modal: pick a connector, name the source, enter its settings and key.

The key is a plain_text_input inside a modal, so it never lands in a channel's
history. Nothing built here carries the key: the modal is opened empty, its
private_metadata holds only the channel the command came from, and
`read_submission` hands the key back in a `Credential` whose repr hides it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from bot.blocks.message import context, section
from journey.errors import JourneyError
from journey.sources import CONNECTORS, connector_class
from journey.sources.manage import Credential
from journey.sources.shopify import shop_domain
from journey.workspaces import DEMO_BUSINESS

CALLBACK_ID = "journey_connect"
B_KIND, A_KIND = "connect_kind", "kind"
B_NAME, A_NAME = "connect_name", "name"
B_SECRET, A_SECRET = "connect_secret", "secret"
A_SETTING = "value"

LABELS = {
    "stripe": "Stripe",
    "hubspot": "HubSpot",
    "woocommerce": "WooCommerce",
    "shopify": "Shopify",
}
# How each non-secret setting is asked for: (label, placeholder, hint).
SETTING_FIELDS = {
    "url": (
        "Store URL (WooCommerce)",
        "https://shop.example",
        "The address of the WooCommerce store, starting with https://. Only WooCommerce needs it.",
    ),
    "shop": (
        "Shop (Shopify)",
        "my-store.myshopify.com",
        "The store's myshopify.com name (my-store or my-store.myshopify.com). Only Shopify needs it.",
    ),
}


def setting_block(name: str) -> str:
    return f"connect_setting_{name}"


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def _all_settings() -> list[str]:
    names: list[str] = []
    for kind in CONNECTORS:
        for name in connector_class(kind).settings:
            if name not in names:
                names.append(name)
    return names


def _input(
    block_id: str,
    action_id: str,
    label: str,
    *,
    placeholder: str | None = None,
    hint: str | None = None,
    optional: bool = False,
) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": action_id}
    if placeholder:
        element["placeholder"] = _plain(placeholder)
    block: dict[str, Any] = {
        "type": "input",
        "block_id": block_id,
        "label": _plain(label),
        "element": element,
        "optional": optional,
    }
    if hint:
        block["hint"] = _plain(hint)
    return block


def connect_modal(channel_id: str = "") -> dict[str, Any]:
    """The modal `views.open` shows. Opened empty: no field is ever pre-filled."""
    prompts = "; ".join(
        f"{LABELS.get(k, k)}: {connector_class(k).secret_prompt}" for k in sorted(CONNECTORS)
    )
    blocks: list[dict[str, Any]] = [
        section(
            "Connect a store or CRM. The key is checked with its API, then stored "
            "encrypted; it is never posted in a channel. I'll send you the result in a "
            "direct message."
        ).to_dict(),
        {
            "type": "input",
            "block_id": B_KIND,
            "label": _plain("Connector"),
            "element": {
                "type": "static_select",
                "action_id": A_KIND,
                "placeholder": _plain("Choose a connector"),
                "options": [
                    {"text": _plain(LABELS.get(k, k)), "value": k} for k in sorted(CONNECTORS)
                ],
            },
        },
        _input(
            B_NAME,
            A_NAME,
            "Source name",
            placeholder="shop",
            hint="A short name for this source, used by `/journey sync NAME`.",
        ),
    ]
    for name in _all_settings():
        label, placeholder, hint = SETTING_FIELDS.get(name, (name, "", ""))
        blocks.append(
            _input(
                setting_block(name),
                A_SETTING,
                label,
                placeholder=placeholder or None,
                hint=hint or None,
                optional=True,
            )
        )
    blocks.append(_input(B_SECRET, A_SECRET, "API key or token", hint=prompts[:2000]))
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "title": _plain("Connect a source"),
        "submit": _plain("Connect"),
        "close": _plain("Cancel"),
        "private_metadata": json.dumps({"channel": channel_id}) if channel_id else "",
        "blocks": blocks,
    }


@dataclass
class Submission:
    kind: str = ""
    name: str = ""
    credential: Credential | None = field(default=None, repr=False)
    errors: dict[str, str] = field(default_factory=dict)


def _value(values: dict[str, Any], block_id: str, action_id: str) -> str:
    state = (values.get(block_id) or {}).get(action_id) or {}
    if state.get("type") == "static_select":
        return str((state.get("selected_option") or {}).get("value") or "")
    return str(state.get("value") or "").strip()


def valid_url(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in ("http", "https") and bool(parsed.hostname) and " " not in url


def read_submission(view: dict[str, Any]) -> Submission:
    """The submitted fields, or `errors` keyed by block id (for `response_action: errors`).
    Error texts never repeat what was typed."""
    values = (view.get("state") or {}).get("values") or {}
    out = Submission()
    kind = _value(values, B_KIND, A_KIND)
    if kind not in CONNECTORS:
        out.errors[B_KIND] = "Choose one of the connectors."
        return out
    out.kind = kind
    cls = connector_class(kind)
    name = _value(values, B_NAME, A_NAME)
    if not name or len(name) > 200:
        out.errors[B_NAME] = "A source name needs 1 to 200 characters, e.g. shop."
    elif any(c.isspace() for c in name):
        out.errors[B_NAME] = "Use one word without spaces, e.g. shop or eu-store."
    out.name = name
    settings: dict[str, str] = {}
    for setting in cls.settings:
        value = _value(values, setting_block(setting), A_SETTING)
        label = SETTING_FIELDS.get(setting, (setting, "", ""))[0]
        if not value:
            out.errors[setting_block(setting)] = f"{LABELS.get(kind, kind)} needs this: {label}."
        elif setting == "url" and not valid_url(value):
            out.errors[setting_block(setting)] = (
                "That is not a web address: it should look like https://shop.example."
            )
        elif setting == "shop":
            try:
                value = shop_domain(value)
            except JourneyError:
                out.errors[setting_block(setting)] = (
                    "That is not a Shopify shop: use its myshopify.com name, e.g. my-store or "
                    "my-store.myshopify.com."
                )
        settings[setting] = value.rstrip("/") if setting == "url" else value
    secret = _value(values, B_SECRET, A_SECRET)
    if not secret:
        out.errors[B_SECRET] = "Paste the key or token here."
    elif any(c.isspace() for c in secret):
        out.errors[B_SECRET] = "A key has no spaces: paste it again without them."
    if not out.errors:
        out.credential = Credential(secret, settings)
    return out


def checking_modal() -> dict[str, Any]:
    """What `views.open` shows at once, inside the trigger's 3 seconds; it becomes the
    form (connect_modal) or a notice (notice_modal) once we know who asked."""
    return {
        "type": "modal",
        "title": _plain("Connect a source"),
        "close": _plain("Close"),
        "blocks": [context(":hourglass_flowing_sand: Checking…").to_dict()],
    }


def demo_refusal(team_id: str, *, submitted: bool = False) -> str:
    """Why a source is not connected into a workspace holding the demo store, and what to
    do instead: Slack's form of the rule `journey import` and `journey sources add` keep
    (journey.workspaces.refuse_demo_mix). Slack has no `--into-demo`: mixing on purpose
    is the operator's, on the command line. `submitted`: the form was filled in."""
    stored = " Nothing was stored." if submitted else ""
    return (
        f"This workspace holds journey's demo store ({DEMO_BUSINESS}), so a source connected "
        f"here would mix your customers into the clinic's numbers.{stored} Whoever runs "
        f"journey's server can remove the demo with `journey demo remove --workspace "
        f"{team_id}` (your own data then has this workspace to itself); then run "
        "`/journey connect` again. Or connect your source from a Slack workspace of its own."
    )


def notice_modal(text: str) -> dict[str, Any]:
    """The modal turned into one sentence (who may connect, or what went wrong); `text`
    is the bot's own words, shown as typed."""
    return {
        "type": "modal",
        "title": _plain("Connect a source"),
        "close": _plain("Close"),
        "blocks": [{"type": "section", "text": _plain(text[:3000])}],
    }
