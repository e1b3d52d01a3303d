"""A customer's *Details*: the person's records per source and why they are one, with
*Unlink* per record and *Link another record…* for admins (bot/listeners/actions/people.py).

Members see the same records and reasons without the buttons: which records are one
person changes every report, so deciding it is an admin's job, as settings are. Every
decision goes through journey.people (decide_link, decide_unlink), the same as
`journey people link|unlink` on the server, and beats the rules through later syncs.
"""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.models.blocks import Block

from bot.blocks.message import Message, actions, button, context, header, section
from bot.blocks.mrkdwn import md
from journey.people import Person
from journey.render.format import count
from journey.render.people import label, why

A_PERSON_DETAILS = "journey_person_details"
A_PERSON_UNLINK = "journey_person_unlink"
A_PERSON_LINK = "journey_person_link"
LINK_CALLBACK = "journey_person_link_modal"
B_OTHER = "person_other"
A_OTHER = "person_other_value"
TITLE = "Link records"
MAX_RECORDS_SHOWN = 20

DECISIONS_NOTE = (
    "Links and unlinks made here or with `journey people link|unlink` win over the "
    "matching rules through every later sync; nothing is deleted."
)
MEMBER_NOTE = "Admins can link and unlink records here."
PEOPLE_REFUSAL = (
    "Only workspace admins and owners can link or unlink customers' records, since it "
    "changes every report. Ask one of them, or your journey operator (`journey people link`)."
)


def _title(person: Person) -> str:
    own = next((r for r in person.records if r.id == person.id), person.records[0])
    return own.name or own.email or f"{own.source}:{own.external_id}"


def person_message(person: Person, admin: bool, note: str = "") -> Message:
    """The person behind a customer: each record (source, id, name, email) and why it is
    theirs; `note` is what was just done (a context line at the top)."""
    records = person.records
    sources = sorted({r.source for r in records})
    who = _title(person)
    if len(records) > 1:
        summary = md(
            "*{}* is one person: {} from {} ({}).",
            who,
            count(len(records), "record"),
            count(len(sources), "source"),
            ", ".join(sources),
        )
    else:
        summary = md("*{}*: one record, in {}; no other record is joined to it.", who, sources[0])
    blocks: list[Block] = [header(f"Customer details · {who}")]
    if note:
        blocks.append(context(note))
    blocks.append(section(summary))
    for r in records[:MAX_RECORDS_SHOWN]:
        text = md("*{}* · `{}:{}` (#{})\n{}\n_{}_", r.source, r.source, r.external_id, r.id,
                  label(r) or "no name or email", why(r))  # fmt: skip
        accessory = None
        if admin and len(records) > 1:
            accessory = button("Unlink", A_PERSON_UNLINK, {"id": r.id, "p": person.id})
        blocks.append(section(text, block_id=f"record_{r.id}", accessory=accessory))
    if len(records) > MAX_RECORDS_SHOWN:
        more = len(records) - MAX_RECORDS_SHOWN
        blocks.append(context(f"… and {more} more records: `journey people show` lists them."))
    footer: list[Block] = []
    if admin:
        footer.append(
            actions(
                button("Link another record…", A_PERSON_LINK, {"id": person.id, "n": who[:80]}),
                block_id="person_actions",
            )
        )
    blocks.append(context(DECISIONS_NOTE if admin else f"{DECISIONS_NOTE} {MEMBER_NOTE}"))
    text = f"{who}: {count(len(records), 'record')} from {', '.join(sources)}."
    return Message(text, blocks, footer)


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def checking_modal() -> dict[str, Any]:
    """What `views.open` shows within the trigger's 3 seconds, before we know who clicked."""
    return {
        "type": "modal",
        "title": _plain(TITLE),
        "close": _plain("Close"),
        "blocks": [context(":hourglass_flowing_sand: Checking…").to_dict()],
    }


def notice_modal(text: str) -> dict[str, Any]:
    """The modal turned into one sentence of the bot's own (shown as typed)."""
    return {
        "type": "modal",
        "title": _plain(TITLE),
        "close": _plain("Close"),
        "blocks": [{"type": "section", "text": _plain(text[:3000])}],
    }


def link_modal(person_id: int, who: str) -> dict[str, Any]:
    """Ask for the other record: an email, a record id or SOURCE:ID, as `journey people
    link` takes it. The person travels in private_metadata (checked again on submit)."""
    return {
        "type": "modal",
        "callback_id": LINK_CALLBACK,
        "title": _plain(TITLE),
        "submit": _plain("Link"),
        "close": _plain("Cancel"),
        "private_metadata": json.dumps({"p": person_id}),
        "blocks": [
            {
                "type": "section",
                "text": _plain(
                    f"Which record is the same person as {who[:200]}? It joins them from now "
                    "on, whatever the matching rules say."
                ),
            },
            {
                "type": "input",
                "block_id": B_OTHER,
                "label": _plain("The other record"),
                "hint": _plain(
                    "Its email, its record id as Details shows it (#123), or SOURCE:ID "
                    "(e.g. shop:9001)."
                ),
                "element": {
                    "type": "plain_text_input",
                    "action_id": A_OTHER,
                    "max_length": 320,
                    "placeholder": _plain("ann@example.com"),
                },
            },
        ],
    }


def read_other(view: dict[str, Any]) -> tuple[int | None, str]:
    """(the person the modal was opened for, the other record as typed) from a submission."""
    try:
        person = json.loads(view.get("private_metadata") or "{}").get("p")
    except (ValueError, AttributeError):
        person = None
    values = (view.get("state") or {}).get("values") or {}
    typed = ((values.get(B_OTHER) or {}).get(A_OTHER) or {}).get("value") or ""
    return (person if isinstance(person, int) else None), str(typed).strip()
