"""A customer's *Details* and the admin's link and unlink, as synchronous work for a worker.

Every change is a manual decision through journey.people (decide_link, decide_unlink),
exactly what `journey people link|unlink` stores, followed by the journey-state refresh
of the people it touched, in one transaction. Every look-up is scoped to the workspace
Slack authorized: a record id from another workspace is "not found".
"""

from __future__ import annotations

from sqlalchemy import Engine

from bot.blocks.help import error_message
from bot.blocks.message import Message
from bot.blocks.mrkdwn import md, mention
from bot.blocks.people import person_message
from journey.db import session_scope
from journey.errors import JourneyError
from journey.people import decide_link, decide_unlink, find_person, show
from journey.state import refresh_journeys


def details(
    engine: Engine, workspace_id: str, who: str | int, admin: bool, note: str = ""
) -> Message:
    """The Details of the person behind `who` (an email, name, #id or SOURCE:ID typed, or
    a record id from a button); a customer not found is said in words."""
    try:
        with session_scope(engine) as session:
            if isinstance(who, int):
                person = show(session, workspace_id, f"#{who}")
            else:
                person = find_person(session, workspace_id, who)
    except JourneyError as exc:  # NotFound included: its words say what to type
        return error_message(str(exc))
    return person_message(person, admin, note)


def unlink(
    engine: Engine, write_engine: Engine, workspace_id: str, record_id: int, user_id: str
) -> Message:
    """Make a record a person of its own (kept through later syncs); the Details of the
    person it left, with a line saying who unlinked what."""
    try:
        with session_scope(write_engine) as session:
            before = show(session, workspace_id, f"#{record_id}")
            record = next(r for r in before.records if r.id == record_id)
            persons = decide_unlink(session, workspace_id, f"#{record_id}", by=user_id)
            refresh_journeys(session, workspace_id, persons)
            others = [r.id for r in before.records if r.id != record_id]
            after = show(session, workspace_id, f"#{others[0] if others else record_id}")
    except JourneyError as exc:
        return error_message(str(exc))
    note = md(
        ":scissors: {} unlinked `{}:{}` (#{}): it is a person of its own from now on.",
        mention(user_id),
        record.source,
        record.external_id,
        record.id,
    )
    return person_message(after, admin=True, note=note)


def link(
    write_engine: Engine, workspace_id: str, person_id: int, other: str, user_id: str
) -> tuple[bool, str]:
    """Join the record `other` names to the person `person_id` stands for. Returns
    (done, words): what changed, or what to type instead."""
    if not other:
        return False, "Type the other record's email, its id (#123) or SOURCE:ID."
    try:
        with session_scope(write_engine) as session:
            persons = decide_link(session, workspace_id, f"#{person_id}", other, by=user_id)
            refresh_journeys(session, workspace_id, persons)
            person = show(session, workspace_id, f"#{person_id}")
    except JourneyError as exc:
        return False, str(exc)
    sources = sorted({r.source for r in person.records})
    return True, (
        f"Linked: {other} is the same person from now on ({len(person.records)} records "
        f"from {', '.join(sources)}). Open their Details again to see them."
    )
