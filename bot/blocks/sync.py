"""The message a sync keeps up to date in Slack while it runs (bot/posting/sync_progress.py).

The final message is `bot.blocks.help.sync_message`: the same words as an
on-demand sync always gave. This one says what is arriving, source by source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.blocks.message import Message, context, header, section


@dataclass(frozen=True)
class SourceProgress:
    """One source's progress as the message shows it."""

    name: str
    kind: str
    state: str = "waiting"  # waiting | running | done
    resource: str | None = None
    pages: int = 0
    records: int = 0


def progress_message(sources: Sequence[SourceProgress], elapsed: float) -> Message:
    lines = []
    for s in sources:
        if s.state == "waiting":
            lines.append(f":hourglass: *{s.name}* ({s.kind}): waiting for its turn.")
        elif s.state == "done":
            lines.append(f":white_check_mark: *{s.name}* ({s.kind}): read {s.records:,} records.")
        elif s.resource is None:
            lines.append(f":arrows_counterclockwise: *{s.name}* ({s.kind}): starting…")
        else:
            what = s.resource.replace("_", " ")
            lines.append(
                f":arrows_counterclockwise: *{s.name}* ({s.kind}): {s.records:,} records so far, "
                f"now reading {what} (page {s.pages})."
            )
    text = "Syncing… " + " ".join(line.replace("*", "") for line in lines)
    note = (
        f"Running for {int(elapsed)} s. Reports answer from what has arrived so far; "
        "this message changes when the sync finishes."
    )
    return Message(text, [header("Sync in progress"), *(section(x) for x in lines), context(note)])


def source_paused_message(name: str, label: str, reason: str) -> Message:
    """Told once, to whoever stored the credential, when a scheduled sync pauses a source."""
    lines = [
        f":warning: journey paused the {label} source *{name}*: {reason}",
        f"Nothing more is read from it until a working key is stored: `/journey connect` "
        f"(choose {label}, name it `{name}`) replaces the key and resumes it. Reports keep "
        "what was already imported.",
    ]
    return Message(" ".join(lines), [section(x) for x in lines])
