"""What the bot says about a file sent to it: the dry run with *Import* / *Cancel*, the
progress, the result, and the App Home's "Import a file" modal.

The dry run is journey's own DryRunSummary (journey/imports/summary.py), the facts
`journey import --dry-run` prints, as blocks. The file's name and every fact come from
the file, so they go through the builders of bot/blocks/message.py, which escape them
(a file called `<!channel>.csv` pings nobody); headers and buttons are plain_text.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import Block

from bot.blocks.message import Message, actions, button, context, header, section
from journey.imports.summary import DryRunSummary

A_IMPORT = "import_file_go"
A_CANCEL = "import_file_cancel"
A_OPEN = "import_file_open"  # the App Home's "Import a file" button
CALLBACK_ID = "journey_import_file"
B_FILE = "import_file"
A_FILE = "file"
# file_input accepts "an array of valid file extensions"; Slack caps it at 10 MB
# (https://docs.slack.dev/reference/block-kit/block-elements/file-input-element/).
FILETYPES = ["csv", "tsv", "txt"]
MODAL_TITLE = "Import a file"

HOW_TO = (
    "Drop a CSV export (Shopify, Stripe, Square, WooCommerce, HubSpot, Mailchimp, Acuity, "
    "or journey's own orders, customers or events layout) into this direct message with "
    "journey: I check it and show what it holds before anything is imported."
)


def checking_message(name: str) -> Message:
    text = f"Checking {name}…"
    return Message(
        text, [context(f":hourglass_flowing_sand: Checking *{name}*: nothing is written yet.")]
    )


def dry_run_message(found: DryRunSummary, value: dict[str, object] | None) -> Message:
    """The dry run; with `value` (a file that can be imported: what its buttons carry,
    bot/files/pending.Pending.button_value) the two buttons."""
    facts = "\n".join(f"*{label}:* {text}" for label, text in found.facts)
    blocks: list[Block] = [
        header(f"Import {found.file}?"),
        section(f"*{found.file}*: {found.title}"),
        section(facts or "(no rows)"),
    ]
    if found.rejected:
        bad = "\n".join(f"line {line}: {reason}" for line, reason in found.bad_rows)
        more = found.rejected - len(found.bad_rows)
        listed = f"The first ones:\n{bad}" + (f"\n… and {more} more." if more > 0 else "")
        good = found.good_rows
        if not good or value is None:
            blocks.append(
                section(
                    f":warning: *{found.rejected} bad rows*, so nothing can be imported. " + listed
                )
            )
            blocks.append(
                context(
                    "Fix them in the file (or in the tool you exported from) and drop it "
                    "here again. Nothing was written."
                )
            )
            return Message(
                f"{found.file}: {found.rejected} bad rows; nothing can be imported.", blocks
            )
        blocks.append(
            section(
                f":warning: *{found.rejected} of {found.rows} rows are bad*: "
                f"{plural(good, 'row')} can be imported without them. " + listed
            )
        )
        footer = [
            context(
                f"*Import the {plural(good, 'good row')}* skips the bad ones: the result "
                "says how many and lists their lines in a CSV file. Or fix them in the "
                "file and drop it here again. Nothing is written until you click; "
                "*Cancel* deletes journey's copy."
            ),
            actions(
                button(f"Import the {plural(good, 'good row')}", A_IMPORT, value, style="primary"),
                button("Cancel", A_CANCEL, value),
                block_id="import_file_buttons",
            ),
        ]
        text = (
            f"{found.file}: {found.rejected} bad rows of {found.rows}. "
            f"Import the {plural(good, 'good row')}?"
        )
        return Message(text, blocks, footer)
    if not found.rows:
        blocks.append(context("The file has no rows to import. Nothing was written."))
        return Message(f"{found.file} has no rows to import.", blocks)
    text = f"{found.file}: {found.title}, {found.rows} rows. Import it?"
    if value is None:
        return Message(text, blocks)
    footer: list[Block] = [
        context("Nothing is written until you click *Import*. *Cancel* deletes journey's copy."),
        actions(
            button("Import", A_IMPORT, value, style="primary"),
            button("Cancel", A_CANCEL, value),
            block_id="import_file_buttons",
        ),
    ]
    return Message(text, blocks, footer)


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def skipped_lines(errors: list[tuple[int, str]], rejected: int, limit: int = 10) -> str:
    """The skipped rows written out in the message, when no file could carry them."""
    shown = "\n".join(f"line {line}: {reason}" for line, reason in errors[:limit])
    more = rejected - min(len(errors), limit)
    return shown + (f"\n… and {more} more." if more > 0 else "")


def progress_message(name: str, lines: int, done: int, total: int, elapsed: float) -> Message:
    share = f" ({100 * done // total}%)" if total else ""
    text = f"Importing {name}: {lines:,} lines read{share}."
    return Message(
        text,
        [
            section(f":arrows_counterclockwise: Importing *{name}*: {lines:,} lines read{share}."),
            context(
                f"Running for {int(elapsed)} s. Each batch is committed as it lands; this "
                "message changes when the import ends."
            ),
        ],
    )


def result_message(name: str, ok: bool, text: str, *, header_text: str | None = None) -> Message:
    icon = ":white_check_mark:" if ok else ":warning:"
    title = header_text or (f"Imported {name}" if ok else f"{name} was not imported")
    return Message(text, [header(title), section(f"{icon} {text}")])


def note_message(text: str) -> Message:
    """One sentence: a refusal, a late click, what to do next."""
    return Message(text, [section(text)])


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def checking_modal() -> dict[str, Any]:
    """What views.open shows within the trigger's 3 seconds, before we know who asked."""
    return {
        "type": "modal",
        "title": _plain(MODAL_TITLE),
        "close": _plain("Close"),
        "blocks": [context(":hourglass_flowing_sand: Checking…").to_dict()],
    }


def import_modal() -> dict[str, Any]:
    """A file_input in an input block, the one place Block Kit allows it (file input
    element page: "must be used inside the input block"; needs files:read)."""
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "title": _plain(MODAL_TITLE),
        "submit": _plain("Check the file"),
        "close": _plain("Cancel"),
        "blocks": [
            {
                "type": "input",
                "block_id": B_FILE,
                "label": _plain("Export file (CSV)"),
                "element": {
                    "type": "file_input",
                    "action_id": A_FILE,
                    "filetypes": FILETYPES,
                    "max_files": 1,
                },
            },
            context(
                "I check the file and show you in a direct message what it holds, with "
                "*Import* and *Cancel* buttons; nothing is written before you click Import. "
                "You can also drop an export straight into the direct message with journey."
            ).to_dict(),
        ],
    }


def notice_modal(text: str) -> dict[str, Any]:
    """The modal turned into one sentence (the bot's own words, shown as typed)."""
    return {
        "type": "modal",
        "title": _plain(MODAL_TITLE),
        "close": _plain("Close"),
        "blocks": [{"type": "section", "text": _plain(text[:3000])}],
    }


# A dry run that needs one of `journey import`'s options (journey.imports.common.
# NeedsOption): a button opens a form asking for it, and the file is checked again.
A_OPTION = "import_file_option"
CALLBACK_OPTIONS = "journey_import_options"
B_DAY_FIRST, A_DAY_FIRST = "import_day_first", "day_first"
B_RATE, A_RATE = "import_rate", "rate"
B_MAP, A_MAP = "import_map_", "field"  # one input per column: import_map_0, import_map_1...
LEAVE_OUT = "-"
MAX_MAP_COLUMNS = 10  # inputs in one form; more columns: the server's --map
OPTIONS_TITLE = "Check the file again"
OPTION_BUTTONS = {
    "date_format": "Choose the date style…",
    "currency": "Give the exchange rate…",
    "map": "Say what the columns are…",
}


def needs_option_message(name: str, text: str, value: dict[str, object]) -> Message:
    """The dry run's error in its own words, and the button asking for what settles it."""
    need = str(value.get("n") or "")
    blocks: list[Block] = [header(f"{name}: one question first"), section(f":warning: {text}")]
    footer: list[Block] = [
        context(
            "Answer it here and journey checks the file again with your answer (the flag in "
            "the message is for `journey import` on the server). Nothing is written before "
            "you click *Import*."
        ),
        actions(
            button(OPTION_BUTTONS.get(need, "Answer…"), A_OPTION, value, style="primary"),
            block_id="import_file_option",
        ),
    ]
    return Message(f"{name} was not imported: {text}", blocks, footer)


def _option(text: str, value: str) -> dict[str, Any]:
    return {"text": _plain(text[:75]), "value": value[:150]}


def options_modal(value: dict[str, Any], metadata: str) -> dict[str, Any]:
    """The form for the option the dry run needs; `metadata` (private_metadata, up to
    3,000 characters) carries the button's value to the submission."""
    need = value.get("n")
    blocks: list[dict[str, Any]] = []
    if need == "date_format":
        blocks.append(
            {
                "type": "input",
                "block_id": B_DAY_FIRST,
                "label": _plain("How does the file write its dates?"),
                "element": {
                    "type": "static_select",
                    "action_id": A_DAY_FIRST,
                    "options": [
                        _option("Day first: 03/04/2026 is 3 April 2026", "d"),
                        _option("Month first: 03/04/2026 is March 4, 2026", "m"),
                    ],
                },
                "hint": _plain(
                    "As the tool that exported it writes dates (its settings, or a date you "
                    "know in the file). A date in the other order becomes a bad row."
                ),
            }
        )
    elif need == "currency":
        code, base = str(value.get("k") or "?"), str(value.get("w") or "?")
        blocks.append(
            {
                "type": "input",
                "block_id": B_RATE,
                "label": _plain(f"What is 1 {code} worth in {base}?"[:2000]),
                "element": {
                    "type": "plain_text_input",
                    "action_id": A_RATE,
                    "placeholder": _plain("e.g. 1.08"),
                    "max_length": 20,
                },
                "hint": _plain(
                    f"Amounts are multiplied by it. 1 keeps the numbers as they are (the "
                    f"file's {code} counted as {base})."
                ),
            }
        )
    else:
        fields = [str(f) for f in value.get("l") or []][:99]
        choices = [_option(f, f) for f in fields] + [_option("Leave it out", LEAVE_OUT)]
        for i, column in enumerate(value.get("c") or []):
            blocks.append(
                {
                    "type": "input",
                    "block_id": f"{B_MAP}{i}",
                    "label": _plain(f"What is the column “{column}”?"[:2000]),
                    "element": {"type": "static_select", "action_id": A_MAP, "options": choices},
                }
            )
        blocks.append(
            context(
                "journey remembers the answer for files with these columns, as `journey "
                "import --map` does, once the file is imported."
            ).to_dict()
        )
    return {
        "type": "modal",
        "callback_id": CALLBACK_OPTIONS,
        "private_metadata": metadata,
        "title": _plain(OPTIONS_TITLE),
        "submit": _plain("Check again"),
        "close": _plain("Cancel"),
        "blocks": blocks,
    }
