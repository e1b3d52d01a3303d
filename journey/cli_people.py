"""`journey people show|link|unlink|conflicts`: one person per human across sources.

Registered in journey/cli.py; the rules are journey/people.py's. Every change a person
makes here is a manual decision that beats the rules through later syncs, and the
journey state of the people it touches is rebuilt in the same transaction.
"""

from __future__ import annotations

from typing import Annotated

import typer

from journey import cli_context as cli
from journey.cli_context import WorkspaceOpt

people_app = typer.Typer(
    help="People: which records from your sources are one person, and why.",
    no_args_is_help=True,
)



_WHY = {
    "email": "same email {value}",
    "manual": "linked by hand",
    "conflict": "shared address {value}: left apart (see journey people conflicts)",
    None: "its own person",
}


@people_app.command("show")
def show_(
    who: Annotated[str, typer.Argument(help="An email, a record id (#123) or SOURCE:ID.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """The person behind an email or record: each record per source and why it is there."""
    from journey.people import show

    with cli._session() as session:
        person = show(session, cli._workspace(workspace), who)
    typer.echo(f"Person #{person.id}: {len(person.records)} record(s)")
    for r in person.records:
        why = "unlinked by hand" if r.value == "unlinked" else _WHY.get(r.rule, r.rule or "")
        why = why.format(value=r.value or "")
        label = " ".join(part for part in (r.name, f"<{r.email}>" if r.email else "") if part)
        typer.echo(f"  #{r.id}  {r.source}:{r.external_id}  {label}  ({why})")


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
        typer.echo(f"  {c.email}: {c.records} records, left apart because {c.reason}")
