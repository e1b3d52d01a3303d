"""`journey people show|link|unlink|conflicts`: one person per human across sources.

Registered in journey/cli.py; the rules are journey/people.py's. Every change a person
makes here is a manual decision that beats the rules through later syncs, and the
journey state of the people it touches is rebuilt in the same transaction.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from journey import cli_context as cli
from journey.cli_context import LeanGroup, WorkspaceOpt
from journey.errors import JourneyError

if TYPE_CHECKING:
    from sqlmodel import Session

people_app = typer.Typer(
    cls=LeanGroup,
    help="People: which records from your sources are one person, and why.",
    no_args_is_help=True,
)


# --- the people settings of `journey settings` (journey/cli.py) ----------------------


class _Tags(StrEnum):
    keep = "keep"
    drop = "drop"


class _Dots(StrEnum):
    keep = "keep"
    ignore = "ignore"


class _OnOff(StrEnum):
    on = "on"
    off = "off"


class _Touch(StrEnum):
    first = "first"
    last = "last"


EmailTags = Annotated[
    _Tags | None,
    typer.Option(
        "--email-tags",
        help="drop: ann+shop@x.com is ann@x.com when joining people (keep: the default).",
    ),
]
EmailDots = Annotated[
    _Dots | None,
    typer.Option(
        "--email-dots",
        help="ignore: a.nn@gmail.com is ann@gmail.com (Gmail addresses only; keep: the default).",
    ),
]
MatchPhone = Annotated[
    _OnOff | None,
    typer.Option("--match-phone", help="on: also join people on their phone number (E.164)."),
]
Country = Annotated[
    str | None,
    typer.Option(
        "--country",
        help="ISO country code phone numbers without +code are read in, e.g. FR, US, GB.",
    ),
]
Touch = Annotated[
    _Touch | None,
    typer.Option(
        "--touch",
        help="A person's channel: first touch (default) or last touch before they first bought.",
    ),
]


def people_settings(
    session: Session,
    workspace_id: str,
    email_tags: _Tags | None = None,
    email_dots: _Dots | None = None,
    match_phone: _OnOff | None = None,
    country: str | None = None,
    touch: _Touch | None = None,
) -> list[str]:
    """Apply the people settings given (None: unchanged) and describe them all.

    A change to how records join rebuilds the workspace's people (manual links and unlinks
    are applied again after the rules) and its journey state; a change of touch rebuilds
    the state. Runs in the caller's transaction.
    """
    from journey.matching import MatchRules, known_country
    from journey.people import clear_phone_keys, count
    from journey.state import refresh_journeys
    from journey.workspaces import get_workspace

    code = None
    if country is not None:
        code = country.strip().upper()
        if len(code) != 2 or not code.isalpha() or not known_country(code):
            raise JourneyError(
                f"--country {country!r} is not a country code: use two letters, e.g. FR, US or GB."
            )
    w = get_workspace(session, workspace_id)
    before = (MatchRules.of(session, workspace_id), w.last_touch)
    if email_tags is not None:
        w.email_drop_tags = email_tags == _Tags.drop
    if email_dots is not None:
        w.email_ignore_dots = email_dots == _Dots.ignore
    if match_phone is not None:
        w.match_phone = match_phone == _OnOff.on
    if code is not None:
        w.country = code
    if touch is not None:
        w.last_touch = touch == _Touch.last
    session.add(w)
    session.flush()
    rules = MatchRules.of(session, workspace_id)
    lines = [
        "People: "
        + "; ".join(rules.describe())
        + f"; a person's channel is their {'last' if w.last_touch else 'first'} touch"
        + (" before they first bought." if w.last_touch else ".")
    ]
    if (rules.effective(), w.last_touch) != (before[0].effective(), before[1]):
        if rules.effective()[2:] != before[0].effective()[2:]:
            clear_phone_keys(session, workspace_id)  # every number read again
        refresh_journeys(session, workspace_id)  # relinks every record, then the state
        total = count(session, workspace_id)
        lines.append(
            f"People rebuilt: {total.records} records from {total.sources} source(s) are "
            f"{total.people} people (manual links and unlinks kept)."
        )
    return lines


@people_app.command("show")
def show_(
    who: Annotated[
        str,
        typer.Argument(
            help="An email, a record id (#123), SOURCE:ID, or a phone number (+33...) when "
            "people join on them."
        ),
    ],
    workspace: WorkspaceOpt = None,
) -> None:
    """The person behind an email or record: each record per source and why it is there."""
    from journey.people import show
    from journey.render.people import label, why

    with cli._session() as session:
        person = show(session, cli._workspace(workspace), who)
    typer.echo(f"Person #{person.id}: {len(person.records)} record(s)")
    for r in person.records:
        typer.echo(f"  #{r.id}  {r.source}:{r.external_id}  {label(r)}  ({why(r)})")


@people_app.command("link")
def link(
    first: Annotated[str, typer.Argument(help="A record: email, #id or SOURCE:ID.")],
    second: Annotated[str, typer.Argument(help="The record that is the same person.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Make two records one person, whatever the rules say (kept through later syncs)."""
    from journey.people import decide_link
    from journey.state import refresh_journeys

    ws = cli._workspace(workspace)
    with cli._session() as session:
        persons = decide_link(session, ws, first, second, by="cli")
        refresh_journeys(session, ws, persons)
    typer.echo(f"Linked: {first} and {second} are one person from now on.")


@people_app.command("unlink")
def unlink(
    record: Annotated[str, typer.Argument(help="The record to separate: #id, email or SOURCE:ID.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Make a record a person of its own (kept through later syncs; nothing is deleted)."""
    from journey.people import decide_unlink
    from journey.state import refresh_journeys

    ws = cli._workspace(workspace)
    with cli._session() as session:
        persons = decide_unlink(session, ws, record, by="cli")
        refresh_journeys(session, ws, persons)
    typer.echo(f"Unlinked: {record} is a person of its own from now on.")


@people_app.command("conflicts")
def conflicts_(workspace: WorkspaceOpt = None) -> None:
    """Shared addresses the rules left apart, with why; decide with `journey people link`."""
    from journey.people import conflicts, count

    ws = cli._workspace(workspace)
    with cli._session() as session:
        found = conflicts(session, ws)
        total = count(session, ws)
    typer.echo(f"{total.records} records from {total.sources} source(s) are {total.people} people.")
    if not found:
        typer.echo("No shared addresses left apart.")
        return
    for c in found:
        what = c.email if c.kind == "email" else f"phone {c.email}"
        typer.echo(f"  {what}: {c.records} records, left apart because {c.reason}")
