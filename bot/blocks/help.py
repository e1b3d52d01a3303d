"""Help and error replies: every subcommand with an example, and errors that say what to do."""

from __future__ import annotations

from bot.blocks.message import Message, context, header, section
from bot.commands import EXAMPLES
from journey.periods import PERIOD_HELP


def help_message(prefix: str | None = None) -> Message:
    lines = "\n".join(f"• `/journey {usage}`: _{example}_" for usage, example in EXAMPLES)
    blocks = [header("journey: where your customers are, and where you lose them")]
    if prefix:
        blocks.append(section(prefix))
    blocks += [section(lines), context(f"Periods: {PERIOD_HELP}")]
    return Message(
        (prefix + " " if prefix else "") + "Try /journey funnel, retention, churn or reviews.",
        blocks,
    )


def error_message(text: str) -> Message:
    return Message(text, [section(f":warning: {text}")])


def reserved_message(word: str) -> Message:
    what = {
        "connect": "Connecting Shopify, HubSpot, Stripe or WooCommerce",
        "sources": "The list of connected sources",
        "sync": "Syncing sources",
    }[word]
    text = (
        f"{what} are not available yet: they come in a later release. Meanwhile, import CSV "
        "exports with `journey import` on the server."
    )
    return Message(text, [section(f":construction: {text}")])


def working_message(what: str) -> Message:
    return Message(
        f"Working on your {what}…", [context(f":hourglass_flowing_sand: Working on your {what}…")]
    )
