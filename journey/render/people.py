"""Why a record belongs to its person, in words: shared by `journey people show` and the
customer *Details* in Slack, so both say the same thing."""

from __future__ import annotations

from journey.people import PersonRecord


def why(record: PersonRecord) -> str:
    """`same email ann@x.com`, `same phone number +33612345678`, `linked by hand`..."""
    rule, value = record.rule, record.value or ""
    if value == "unlinked":
        return "unlinked by hand"
    if rule == "email":
        return f"same email {value}"
    if rule == "phone":
        return f"same phone number {value}"
    if rule == "manual":
        return "linked by hand"
    if rule == "conflict":
        what = "address" if "@" in value else "phone number"
        return f"shared {what} {value}: left apart (see journey people conflicts)"
    return "its own person"


def label(record: PersonRecord) -> str:
    """The record as a person reads it: `Ann Lee <ann@x.com>`."""
    email = f"<{record.email}>" if record.email else ""
    return " ".join(part for part in (record.name, email) if part)
