"""`journey sources add|list|remove` and `journey sync`: connected stores and CRMs.

Registered in journey/cli.py. The secret (an API key or token) is read from an
environment variable named on the command line (`--key-env STRIPE_API_KEY`) or
typed at a hidden prompt; never from an argument, where it would land in the
shell history and the process list. It is stored encrypted with
JOURNEY_SECRET_KEY and never printed, logged or echoed.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from journey import cli_context as cli
from journey.cli_context import LeanGroup, WorkspaceOpt

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from journey.sources.manage import SourceHealth

from journey.errors import JourneyError

# journey.sources.CONNECTORS' names, written here so --help does not import every connector
# (tests/test_first_hour.py keeps the two equal).
CONNECTOR_NAMES = ("hubspot", "shopify", "stripe", "woocommerce")

sources_app = typer.Typer(
    cls=LeanGroup,
    rich_markup_mode=None,
    help="Connected stores and CRMs (Stripe...): add, list, remove.",
    no_args_is_help=True,
)


@sources_app.command("add")
def add(
    kind: Annotated[str, typer.Argument(help=f"The connector: {', '.join(CONNECTOR_NAMES)}.")],
    name: Annotated[str, typer.Option("--name", help="A name for this source, e.g. shop.")],
    key_env: Annotated[
        str | None,
        typer.Option(
            "--key-env",
            help="Name of the environment variable holding the key (else a hidden prompt).",
        ),
    ] = None,
    setting: Annotated[
        list[str] | None,
        typer.Option("--setting", help="A non-secret setting key=value (repeatable)."),
    ] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="The API's base URL (default: the vendor's).")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option("--url", help="The store's address, e.g. https://shop.example (WooCommerce)."),
    ] = None,
    shop: Annotated[
        str | None,
        typer.Option("--shop", help="The shop's myshopify.com name, e.g. my-store (Shopify)."),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check/--no-check", help="Try the key before storing it.")
    ] = True,
    workspace: WorkspaceOpt = None,
    into_demo: Annotated[
        bool,
        typer.Option("--into-demo", help="Connect into a workspace holding the demo store anyway."),
    ] = False,
) -> None:
    """Connect a store or CRM: store its key, encrypted. Re-adding a name replaces its key."""
    from journey.secrets import Cipher
    from journey.sources import connector_class
    from journey.sources.http import HttpOptions, RetryPolicy, SourceError
    from journey.sources.manage import Credential, add_source
    from journey.sources.shopify import shop_domain
    from journey.workspaces import refuse_demo_mix

    cli._settings()  # reads .env, where JOURNEY_SECRET_KEY may live
    if not into_demo:
        with cli._session() as session:
            refuse_demo_mix(
                session,
                cli._workspace(workspace),
                f"journey sources add {kind} --name {name} --workspace myshop",
            )
    cls = connector_class(kind)
    given = [
        *(setting or []),
        *([f"url={url}"] if url else []),
        *([f"shop={shop}"] if shop else []),
    ]
    settings = _settings(given, cls.settings)
    if "shop" in settings:
        settings["shop"] = shop_domain(settings["shop"])
    cipher = Cipher.from_env()  # fail on a missing JOURNEY_SECRET_KEY before asking for the key
    secret = _secret(key_env, cls.secret_prompt)
    credential = Credential(secret, settings, base_url)
    if check:
        quick = HttpOptions(retry=RetryPolicy(attempts=3, total=20.0))
        with cls(secret, settings, base_url=base_url, http=quick) as connector:
            try:
                notes = connector.check() or []
            except SourceError as exc:
                raise JourneyError(f"The key was not stored: {exc}") from None
        for note in notes:
            typer.echo(f"Note: {note}", err=True)
    ws = cli._workspace(workspace)
    with cli._session() as session:
        _, created = add_source(session, ws, kind, name, credential, cipher)
    verb = "Connected" if created else "Updated the key of"
    typer.echo(
        f"{verb} {kind} source {name!r} in workspace {ws!r} (key stored encrypted). "
        f"Import its data with `journey sync {name}`."
    )


def _settings(items: list[str], required: tuple[str, ...]) -> dict[str, str]:
    settings: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise JourneyError(f"--setting {item!r} should look like key=value.")
        settings[key.strip()] = value.strip()
    missing = [k for k in required if not settings.get(k)]
    if missing:
        flags = (
            {"url": "--url https://...", "shop": "--shop my-store"}.get(k, f"--setting {k}=...")
            for k in missing
        )
        raise JourneyError("This connector needs " + ", ".join(flags) + ".")
    return settings


def _secret(key_env: str | None, prompt: str) -> str:
    if key_env is not None:
        value = os.environ.get(key_env, "").strip()
        if not value:
            raise JourneyError(
                f"The environment variable {key_env} is not set or empty; export the key "
                f"there first (for example `read -s {key_env} && export {key_env}`)."
            )
        return value
    if not sys.stdin.isatty():
        raise JourneyError(
            "No terminal to ask for the key: name the environment variable that holds it "
            "with --key-env (keys are never taken as arguments)."
        )
    value = typer.prompt(prompt, hide_input=True).strip()
    if not value:
        raise JourneyError("No key given; nothing was stored.")
    return value


@sources_app.command("list")
def list_(workspace: WorkspaceOpt = None) -> None:
    """Every source of the workspace with its health: status, last success, records, last error."""
    from journey.sources.manage import source_health

    ws = cli._workspace(workspace)
    with cli._session() as session:
        rows = source_health(session, ws)
    if not rows:
        typer.echo(f"No sources in workspace {ws!r} yet: `journey sources add stripe --name shop`.")
        return
    for row in rows:
        typer.echo(_health_line(row))
        if row.last_error:
            typer.echo(f"    last error: {row.last_error}")


def _health_line(row: SourceHealth) -> str:
    from journey.sources import CONNECTORS

    if row.kind in CONNECTORS:
        when = _when(row.last_sync_at) if row.last_sync_at else "never synced"
        state = row.status if row.has_credential or row.status == "removed" else "no key"
        health = f"{state}, last success {when}" if row.last_sync_at else f"{state}, {when}"
    else:
        health = "imported"
    return f"{row.name} ({row.kind}): {health}; {row.customers} customers, {row.events} events"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


@sources_app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="The source's name.")],
    kind: Annotated[str | None, typer.Option(help="The connector, if two share the name.")] = None,
    keep_data: Annotated[
        bool | None,
        typer.Option(
            "--keep-data/--delete-data",
            help="Keep the imported customers and events, or delete them (asked if not given).",
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Disconnect a source: its key is deleted; its imported data is kept or deleted."""
    from journey.sources.manage import find_source, remove_source, source_health

    ws = cli._workspace(workspace)
    with cli._session() as session:
        source = find_source(session, ws, name, kind)
        health = next(
            h for h in source_health(session, ws) if h.name == name and h.kind == source.kind
        )
        if keep_data is None:
            if not sys.stdin.isatty():
                raise JourneyError(
                    "Say whether to keep the imported data: --keep-data or --delete-data."
                )
            keep_data = typer.confirm(
                f"Keep the {health.customers} customers and {health.events} events imported "
                f"from {name!r}? (No deletes them)",
                default=True,
            )
        customers, events = remove_source(session, source, keep_data=keep_data)
    if keep_data:
        typer.echo(f"Removed {name!r}: its key is deleted; its imported data is kept.")
    else:
        typer.echo(
            f"Removed {name!r}: its key and its {customers} customers and {events} events "
            "are deleted."
        )


def sync(
    name: Annotated[
        str | None, typer.Argument(help="The source to sync (default: every connected source).")
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Import what changed in connected sources since their last sync (resumes where it stopped)."""

    from journey.render.text import sync_summary
    from journey.sources.manage import PAUSED, connected_sources, find_source
    from journey.sync import sync_source

    ws = cli._workspace(workspace)
    with cli._session() as session:
        if name is not None:
            targets = [find_source(session, ws, name)]
            if targets[0].status == PAUSED:
                raise JourneyError(
                    f"{name!r} is paused: {targets[0].last_error or 'its key was refused.'}"
                )
        else:
            targets = connected_sources(session, ws)
    if not targets:
        typer.echo(
            f"No connected sources in workspace {ws!r}: `journey sources add stripe --name shop`."
        )
        return
    engine = cli._engine()
    failed = False
    for source in targets:
        label = f"{source.name} ({source.kind})"
        with _sync_progress() as progress:
            task = progress.add_task(f"Syncing {label}", total=None, pages=0)

            def tick(
                resource: str,
                pages: int,
                records: int,
                task: TaskID = task,
                progress: Progress = progress,
                label: str = label,
            ) -> None:
                progress.update(
                    task,
                    description=f"Syncing {label}: {resource}",
                    completed=records,
                    pages=pages,
                )

            result = sync_source(engine, int(source.id or 0), progress=tick)
        typer.echo(sync_summary(label, result))
        failed = failed or not (result.ok or result.skipped)
    if failed:
        raise typer.Exit(1)


def _sync_progress() -> Progress:
    """A sync's live line: records and pages so far and the time spent.

    No API says up front how many records a first sync will read, so a bar with a
    percentage would be a guess; counts that keep moving show it is alive and how far
    it got (a large first sync runs for minutes, and Ctrl-C keeps what has landed).
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),  # names are data, not rich markup
        TextColumn("{task.completed:,.0f} records"),
        TextColumn("· page {task.fields[pages]}"),
        TimeElapsedColumn(),
        console=cli.err,
        transient=True,
        disable=not cli.err.is_terminal,
    )
