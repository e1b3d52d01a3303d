"""The `journey` command: the operator's interface to the store and the reports.

A thin shell over journey's functions (the Slack bot is another): it parses
arguments, opens a session, calls a metric, hands the report to a renderer.
Errors a user can fix are printed as one plain sentence with exit status 2;
nothing prints a traceback unless JOURNEY_DEBUG=1.
"""

from __future__ import annotations

import logging
import math
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:  # heavy modules: imported where they are used (a fast --help)
    from rich.progress import Progress

from journey import logs
from journey.cli_context import (
    LeanGroup,
    WorkspaceOpt,
    _engine,
    _now,
    _progress,
    _session,
    _settings,
    _workspace,
    err,
)
from journey.cli_context import _state as _state  # reset by the tests between runs
from journey.cli_people import (
    Country,
    EmailDots,
    EmailTags,
    MatchPhone,
    Touch,
    people_app,
    people_settings,
)
from journey.cli_sources import sources_app, sync
from journey.errors import JourneyError
from journey.periods import PERIOD_HELP, parse_date

log = logging.getLogger("journey")
# journey.metrics.reviews.CANDIDATE_LIST, written here so --help does not import the metrics
# (tests/test_first_hour.py keeps the two equal).
CANDIDATE_LIST = 25
app = typer.Typer(
    cls=LeanGroup,
    rich_markup_mode=None,
    help="journey: where your customers are in their journey, and where you lose them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(
    cls=LeanGroup,
    rich_markup_mode=None,
    help="The database schema (Alembic migrations).",
    no_args_is_help=True,
)
stages_app = typer.Typer(
    cls=LeanGroup,
    rich_markup_mode=None,
    help="The workspace's journey stages and event mapping.",
    no_args_is_help=True,
)
reviews_app = typer.Typer(
    cls=LeanGroup,
    rich_markup_mode=None,
    help="Record review requests (asked or skipped).",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")
app.add_typer(stages_app, name="stages")
app.add_typer(reviews_app, name="reviews")
app.add_typer(sources_app, name="sources")
app.add_typer(people_app, name="people")
app.command("sync")(sync)


JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]


class ReportKind(StrEnum):
    funnel = "funnel"
    retention = "retention"
    churn = "churn"
    reviews = "reviews"
    insights = "insights"
    value = "value"


# --- main job ----------------------------------------------------------------


@app.command()
def start(workspace: WorkspaceOpt = None) -> None:
    """The demo overview in the terminal: builds the demo store in a new workspace, then prints the headlines."""
    from sqlalchemy import func, select

    from journey.models import Customer, Workspace

    ws = _workspace(workspace)
    with _session() as session:
        exists = session.get(Workspace, ws) is not None
        has_data = (
            exists
            and session.exec(
                select(func.count()).select_from(Customer).where(Customer.workspace_id == ws)
            ).one()[0]
        )
    if not exists:
        err.print(
            f"Workspace {ws!r} is new: building the demo store (a year of a small vet clinic). "
            f"{OWN_DATA_HINT}"
        )
        _build_demo(ws, None)
    elif not has_data:
        # Emptied on purpose (`journey demo remove`): building the demo again would undo that.
        raise JourneyError(
            f"Workspace {ws!r} is empty. {OWN_DATA_HINT} (`journey demo --workspace {ws}` "
            "brings the demo back)."
        )
    _print_overview(ws)


def _build_demo(ws: str, end: datetime | None, seed: int | None = None) -> None:
    from journey.demo import DEFAULT_SEED, load_demo

    with _progress() as progress, _session() as session:
        task = progress.add_task("Building the demo store", total=None)

        def tick(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        stats = load_demo(
            session,
            ws,
            end.date() if end else None,
            seed if seed is not None else DEFAULT_SEED,
            tick,
        )
    err.print(f"Demo store ready in workspace {ws!r}: {stats.inserted} records.")


def _print_overview(ws: str) -> None:
    from journey.render.text import render_overview_text
    from journey.reporting import build_overview, workspace_period

    with _session() as session:
        o = build_overview(session, ws, workspace_period(session, ws, now=_now()), now=_now())
    typer.echo(render_overview_text(o.funnel, o.retention, o.reviews, o.insight, o.churn))
    typer.echo(
        "\nMore: `journey report funnel|retention|churn|reviews|insights [--period 90d] [--json]`; "
        "`journey --help` for everything."
    )


OWN_DATA_HINT = (
    "Your own data: `journey import orders.csv --workspace myshop`, with the columns "
    "order_id,email,ordered_at,amount."
)
demo_app = typer.Typer(
    cls=LeanGroup,
    rich_markup_mode=None,
    help="Build (or rebuild) the demo store in a workspace; `journey demo remove` deletes it.",
    invoke_without_command=True,
)
app.add_typer(demo_app, name="demo")


@demo_app.callback()
def demo(
    ctx: typer.Context,
    workspace: WorkspaceOpt = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed; the same seed gives the same store.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Last day of the demo year (YYYY-MM-DD), default today.")
    ] = None,
) -> None:
    """Build (or rebuild) the demo store in a workspace and print a short overview."""
    if ctx.invoked_subcommand is not None:
        return
    ws = _workspace(workspace)
    from journey.workspaces import demo_source, holds_own_data

    with _session() as session:
        if holds_own_data(session, ws) and demo_source(session, ws) is None:
            raise JourneyError(
                f"Workspace {ws!r} holds your own data: the demo would be mixed into its "
                "numbers. Build it in a workspace of its own: `journey demo --workspace demo`."
            )
    end = None
    if until:
        end = datetime.combine(
            parse_date(until, "--until"), datetime.min.time(), tzinfo=UTC
        ) + timedelta(days=1)
    _build_demo(ws, end, seed)
    _print_overview(ws)


@demo_app.command("remove")
def demo_remove(workspace: WorkspaceOpt = None) -> None:
    """Delete the demo store (its customers, events and review requests) from a workspace;
    data imported or synced there stays."""
    from journey.workspaces import get_workspace, remove_demo

    ws = _workspace(workspace)
    with _session() as session:
        get_workspace(session, ws)
        removed = remove_demo(session, ws)
    if not removed:
        typer.echo(f"Workspace {ws!r} holds no demo store: nothing removed.")
        return
    typer.echo(f"Removed the demo store from workspace {ws!r}: {removed:,} demo customers.")
    typer.echo(OWN_DATA_HINT)


# --- reports -------------------------------------------------------------------


@app.command()
def report(
    kind: Annotated[
        ReportKind,
        typer.Argument(help="funnel, retention, churn, reviews, insights or value."),
    ],
    workspace: WorkspaceOpt = None,
    period: Annotated[str | None, typer.Option("--period", "-p", help=PERIOD_HELP)] = None,
    since: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD (inclusive).")] = None,
    until: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD (inclusive).")] = None,
    channel: Annotated[
        str | None,
        typer.Option(help="Only customers acquired through this channel (funnel, insights)."),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=1000, help="Rows in customer lists.")
    ] = CANDIDATE_LIST,
    as_json: JsonOpt = False,
    csv_file: Annotated[
        Path | None,
        typer.Option(
            "--csv", help="Also write the report's table as CSV to this file (churn, value)."
        ),
    ] = None,
    details: Annotated[
        bool,
        typer.Option(
            "--details", help="Add the 95% intervals and the churn model's fitted parameters."
        ),
    ] = False,
    chart: Annotated[
        Path | None,
        typer.Option(
            "--chart", help="Also save the report's chart (the one Slack shows) as a PNG file."
        ),
    ] = None,
) -> None:
    """Print a report for a workspace and period (default: the last 30 days)."""
    from journey.periods import refuse_churn_period
    from journey.render.json import render_json
    from journey.render.text import (
        render_churn_text,
        render_funnel_text,
        render_insight_text,
        render_retention_text,
        render_review_text,
        render_value_text,
    )
    from journey.reporting import (
        build_insight,
        build_report,
        with_weakest_stage,
        workspace_period,
    )
    from journey.reports import ChurnReport, FunnelReport, ValueReport

    if kind is ReportKind.churn and since is None and until is None and period is not None:
        refuse_churn_period(period, "journey report churn --period", "--until 2026-06-30")
    if chart is not None and kind not in (
        ReportKind.funnel,
        ReportKind.retention,
        ReportKind.value,
    ):
        raise JourneyError(
            f"--chart draws the funnel, retention and value reports; {kind.value} has no chart."
        )
    if csv_file is not None and kind not in (ReportKind.churn, ReportKind.value):
        raise JourneyError(
            f"--csv writes the churn and value reports' tables; {kind.value} has none yet."
        )
    ws = _workspace(workspace)
    with _session() as session:
        p = workspace_period(session, ws, period, since, until, now=_now())
        if kind is ReportKind.insights:
            insight = build_insight(session, ws, p, channel=channel, now=_now())
        else:
            result = build_report(
                session, ws, kind.value, p, channel=channel, now=_now(), limit=limit
            )
            if isinstance(result, FunnelReport):  # the insight Slack and the console show
                result = with_weakest_stage(session, ws, result, now=_now())
    if kind is ReportKind.insights:
        if as_json:
            typer.echo(
                render_json(insight) if insight else '{"report": "Insight", "insight": null}'
            )
        else:
            typer.echo(render_insight_text(insight))
        return
    if chart is not None:
        from journey.render.charts import chart_for

        drawn = chart_for(result)
        if drawn is None:
            err.print(f"No chart: the {kind.value} report has no data to draw for this period.")
        else:
            chart.write_bytes(drawn[0])
            err.print(
                f"Chart ({drawn[1]}) saved to {chart.resolve()}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
    if csv_file is not None:
        from journey.render.csv_export import at_risk_csv, value_csv

        assert isinstance(result, ChurnReport | ValueReport)
        table = value_csv(result) if isinstance(result, ValueReport) else at_risk_csv(result)
        csv_file.write_text(table, encoding="utf-8")
        typer.echo(f"Wrote {csv_file}", err=True)
    if as_json:
        typer.echo(render_json(result))
        return
    detailed: dict[ReportKind, Callable[..., str]] = {
        ReportKind.funnel: render_funnel_text,
        ReportKind.retention: render_retention_text,
        ReportKind.churn: render_churn_text,
    }
    if kind in detailed:
        typer.echo(detailed[kind](result, details=details))
        return
    render: dict[ReportKind, Callable[[Any], str]] = {
        ReportKind.reviews: render_review_text,
        ReportKind.value: render_value_text,
    }
    typer.echo(render[kind](result))


# --- data in ---------------------------------------------------------------------


class FileKind(StrEnum):
    customers = "customers"
    orders = "orders"
    events = "events"


@app.command("import")
def import_(
    files: Annotated[
        list[Path],
        typer.Argument(help="CSV files: vendor exports (recognised) or customers, orders, events."),
    ],
    workspace: WorkspaceOpt = None,
    kind: Annotated[
        FileKind | None, typer.Option(help="File kind, if the header does not make it clear.")
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="Source name the ids belong to (default: csv).")
    ] = None,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Import the good rows even when some rows are bad.")
    ] = False,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help='Say what columns are: "Created date (UTC)=ordered_at,Amount=amount" '
            '("Col=" leaves Col out). Remembered for this layout and source.',
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what the import would do; write nothing.")
    ] = False,
    timezone: Annotated[
        str | None,
        typer.Option(help="Zone of times written without one (default: the workspace's)."),
    ] = None,
    date_format: Annotated[
        str | None,
        typer.Option(help="Date style when the file cannot settle it, e.g. %d/%m/%Y."),
    ] = None,
    currency: Annotated[
        list[str] | None,
        typer.Option(help="A file currency and its rate to the workspace's, e.g. EUR=1.08."),
    ] = None,
    into_demo: Annotated[
        bool,
        typer.Option("--into-demo", help="Import into a workspace holding the demo store anyway."),
    ] = False,
) -> None:
    """Import CSV files. By default a file with any bad row imports nothing; see --skip-bad."""

    from journey.imports import import_csv
    from journey.imports.money import parse_rate
    from journey.imports.run import parse_map
    from journey.render.imports import dry_run as render_dry_run
    from journey.render.imports import summary as render_summary
    from journey.workspaces import ensure_workspace, refuse_demo_mix

    ws = _workspace(workspace)
    if not into_demo and not dry_run:
        with _session() as session:
            names = " ".join(str(f) for f in files)
            refuse_demo_mix(session, ws, f"journey import {names} --workspace myshop")
    mapping = parse_map(map_ or [])
    try:
        rates = dict(parse_rate(spec) for spec in currency or [])
    except ValueError as exc:
        raise JourneyError(str(exc)) from None
    failed = False
    for path in files:
        with _progress() as progress, _session() as session:
            if not dry_run:
                ensure_workspace(session, ws)
            task = progress.add_task(f"Importing {path.name}", total=None)

            def tick(
                rows: int, done: int, total: int, task: Any = task, progress: Progress = progress
            ) -> None:
                progress.update(task, completed=done, total=total)

            result = import_csv(
                session,
                ws,
                path,
                kind=kind.value if kind else None,
                source_name=source,
                all_or_nothing=not skip_bad,
                progress=tick,
                mapping=mapping,
                timezone=timezone,
                date_format=date_format,
                currencies=rates,
                dry_run=dry_run,
                commit=None if dry_run else session.commit,
            )
        if dry_run:
            typer.echo(render_dry_run(result))
            failed = failed or bool(result.rejected)
            continue
        for error in result.errors[:50]:
            err.print(f"{error.file}:{error.line}: {error.reason}", markup=False, highlight=False)
        if result.rejected > 50:
            err.print(f"... and {result.rejected - 50} more bad rows in {path}.")
        typer.echo(render_summary(result, skip_bad))
        failed = failed or bool(result.rejected)
    if failed:
        raise typer.Exit(1)


@reviews_app.command("ask")
def reviews_ask(
    customer: Annotated[
        str,
        typer.Argument(help="The customer's email, name or id, as the review list shows them."),
    ],
    workspace: WorkspaceOpt = None,
    skip: Annotated[
        bool, typer.Option("--skip", help="Record a deliberate skip instead of a request.")
    ] = False,
    via: Annotated[str | None, typer.Option(help="How you asked: email, sms, in person...")] = None,
) -> None:
    """Record that a customer was asked for a review (or skipped), so they leave the candidate list."""
    from journey.models import ReviewRequest
    from journey.workspaces import find_customer, get_workspace

    ws = _workspace(workspace)
    with _session() as session:
        get_workspace(session, ws)
        found = find_customer(session, ws, customer)
        label = found.name or found.email or found.external_id
        session.add(
            ReviewRequest(
                workspace_id=ws,
                customer_id=found.id,
                asked_at=_now(),
                status="skipped" if skip else "asked",
                via=via,
                asked_by="cli",
            )
        )
    typer.echo(f"Recorded: {label} {'skipped' if skip else 'asked for a review'}.")


# --- set-up ----------------------------------------------------------------------------


@app.command("secret-key")
def secret_key() -> None:
    """Make a new JOURNEY_SECRET_KEY (the key that encrypts stored tokens and credentials)."""
    from cryptography.fernet import Fernet

    typer.echo(Fernet.generate_key().decode())
    err.print(
        "Put it in .env (or the environment) as JOURNEY_SECRET_KEY=<the key> and keep it: "
        "without it the stored keys cannot be read.",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@app.command("settings")
def settings(
    workspace: WorkspaceOpt = None,
    name: Annotated[
        str | None, typer.Option("--name", help="The business name every report header shows.")
    ] = None,
    currency: Annotated[
        str | None, typer.Option("--currency", help="ISO 4217 code, e.g. EUR, GBP, USD.")
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option("--timezone", help="IANA timezone for calendar periods, e.g. Europe/Paris."),
    ] = None,
    discount_rate: Annotated[
        str | None,
        typer.Option(
            "--discount-rate",
            help="Yearly rate the 12-month customer value is discounted at, e.g. 10% or 0.1.",
        ),
    ] = None,
    email_tags: EmailTags = None,
    email_dots: EmailDots = None,
    match_phone: MatchPhone = None,
    country: Country = None,
    touch: Touch = None,
) -> None:
    """Show or change a workspace's business name, currency, timezone and discount rate,
    and how records join into people (emails, phone numbers) and which touch is a
    person's channel; changing those rebuilds the workspace's people."""
    from journey.periods import zone
    from journey.workspaces import get_workspace

    ws = _workspace(workspace)
    if currency is not None:
        currency = currency.strip().upper()
        if len(currency) != 3 or not currency.isalpha():
            raise JourneyError(
                f"--currency {currency!r} is not a currency code: use three letters, e.g. EUR."
            )
    if timezone is not None:
        zone(timezone.strip())  # an unknown zone is refused with an example
    if name is not None and not (0 < len(name.strip()) <= 200):
        raise JourneyError('--name needs 1 to 200 characters, e.g. --name "Ana\'s Bakery".')
    rate = None if discount_rate is None else _discount_rate(discount_rate)
    with _session() as session:
        w = get_workspace(session, ws)
        if name is not None:
            w.name = name.strip()
        if currency is not None:
            w.currency = currency
        if timezone is not None:
            w.timezone = timezone.strip()
        if rate is not None:
            w.discount_rate = rate
        session.add(w)
        shown = (w.name or ws, w.currency, w.timezone, w.discount_rate)
        people = people_settings(session, ws, email_tags, email_dots, match_phone, country, touch)
    changed = (name, currency, timezone, rate, email_tags, email_dots, match_phone, country, touch)
    verb = "now" if any(v is not None for v in changed) else "has"
    typer.echo(
        f"Workspace {ws!r} {verb}: business name {shown[0]!r}, currency {shown[1]}, "
        f"timezone {shown[2]}, discount rate {_percent(shown[3])} a year "
        "(for the 12-month customer value)."
    )
    for line in people:
        typer.echo(line)
    if verb == "has":
        typer.echo(
            "Change them with --name, --currency, --timezone, --discount-rate, --email-tags, "
            "--email-dots, --match-phone, --country and --touch."
        )


def _percent(rate: float) -> str:
    return f"{rate * 100:.4g}%"


# Above this a yearly rate is surely a typo (100% a year halves next year's value).
MAX_DISCOUNT_RATE = 1.0


def _discount_rate(raw: str) -> float:
    """A yearly discount rate typed as a percentage ("10%") or a fraction ("0.1")."""
    text = raw.strip()
    try:
        rate = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        rate = math.nan
    if not (0 <= rate <= MAX_DISCOUNT_RATE):
        raise JourneyError(
            f"--discount-rate {raw!r} is not a yearly rate between 0% and 100%: "
            "use e.g. 10% or 0.1 (a number above 1 is read as a fraction, so write 10%, not 10)."
        )
    return rate


# --- workspace settings ------------------------------------------------------------


@stages_app.command("show")
def stages_show(workspace: WorkspaceOpt = None) -> None:
    """Show the workspace's stages, which event kinds reach each one, and the lifecycle
    stages of each connected HubSpot account with the stage each reaches."""
    from journey.stages import hubspot_accounts
    from journey.workspaces import stage_model

    ws = _workspace(workspace)
    with _session() as session:
        model = stage_model(session, ws)
        accounts = hubspot_accounts(session, ws)
    by_stage: dict[int, list[str]] = {}
    for kind_name, pos in sorted(model.kind_positions().items()):
        by_stage.setdefault(pos, []).append(kind_name)
    for i, stage in enumerate(model.stages):
        extra = " (+ a second purchase day)" if stage == "retention" else ""
        typer.echo(f"{i + 1}. {stage}: {', '.join(by_stage.get(i, []))}{extra}")
    for name, lifecycle in accounts:
        typer.echo(f"\nHubSpot lifecycle stages of {name!r} (as its last sync read them):")
        for item in lifecycle:
            reaches = model.stage_of(item.kind) or "no stage"
            how = "mapped here" if item.kind in model.overrides else f"default: {item.why}"
            typer.echo(f"  {item.label} ({item.kind}): {reaches} ({how})")
    if accounts:
        typer.echo(
            "Change one with `journey stages set <stages> --map hubspot_stage:<value>=<stage>`."
        )


@stages_app.command("set")
def stages_set(
    stages: Annotated[
        str,
        typer.Argument(
            help="Ordered, comma-separated, e.g. awareness,consideration,decision,retention."
        ),
    ],
    workspace: WorkspaceOpt = None,
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", help="kind=stage, e.g. --map booking=consideration (repeatable)."),
    ] = None,
) -> None:
    """Choose the workspace's stages (and mapping), then rebuild its journey state."""
    from journey.stages import DEFAULT_STAGES, StageModel
    from journey.state import refresh_journeys
    from journey.workspaces import get_workspace

    ws = _workspace(workspace)
    names = [s.strip() for s in stages.split(",") if s.strip()]
    overrides: dict[str, str] = {}
    for item in map_ or []:
        kind_name, sep, stage = item.partition("=")
        if not sep or not kind_name.strip() or not stage.strip():
            raise JourneyError(
                f"--map {item!r} should look like kind=stage, e.g. booking=decision."
            )
        overrides[kind_name.strip()] = stage.strip()
    model = StageModel(tuple(names), overrides)  # validates before anything is written
    with _session() as session:
        w = get_workspace(session, ws)
        w.stages = None if model.stages == DEFAULT_STAGES else list(model.stages)
        w.stage_map = overrides or None
        session.add(w)
        session.flush()
        refresh_journeys(session, ws, relink_people=False)  # stages move no record
    typer.echo(f"Workspace {ws!r} now uses: {' -> '.join(model.stages)}; journey state rebuilt.")


# --- database ------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database to the current schema, keeping every row."""
    from journey.db import current_revision, make_engine, upgrade

    engine = make_engine(_settings().database_url)
    before = current_revision(engine)
    upgrade(engine)
    after = current_revision(engine)
    if before == after:
        typer.echo(f"Database already at the current schema ({after}).")
    else:
        typer.echo(f"Database upgraded from {before or 'empty'} to {after}.")
    from journey.secret_rows import bind_legacy_if_keyed

    bound = bind_legacy_if_keyed(engine)
    if bound:
        typer.echo(f"Bound {bound} stored secret(s) to their rows.")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database and of this code."""
    from journey.db import current_revision, head_revision, make_engine

    engine = make_engine(_settings().database_url)
    typer.echo(f"database: {current_revision(engine) or 'empty'}; code: {head_revision(engine)}")


workspaces_app = typer.Typer(
    cls=LeanGroup,
    rich_markup_mode=None,
    help="The workspaces in the database: list them (the default), or delete one.",
    invoke_without_command=True,
)
app.add_typer(workspaces_app, name="workspaces")


# Each workspace with its customer and event counts, oldest first.
WORKSPACES_SQL = (
    "SELECT w.id, w.name, w.uninstalled_at, "
    "(SELECT COUNT(*) FROM customer c WHERE c.workspace_id = w.id), "
    "(SELECT COUNT(*) FROM journey_event e WHERE e.workspace_id = w.id) "
    "FROM workspace w ORDER BY w.created_at, w.id"
)


@workspaces_app.callback()
def workspaces(ctx: typer.Context) -> None:
    """List the workspaces in the database with their customer and event counts."""
    if ctx.invoked_subcommand is not None:
        return
    # The driver itself when the database is current (journey.plain_sql): SQLAlchemy's
    # import alone is over the start-up this one-screen answer may take
    # (bench/cli_startup.py). Else plain SQL on the engine, which creates or upgrades the
    # schema first; the ORM models (sqlmodel, pydantic) would double the time.
    from journey.plain_sql import read_current

    rows = read_current(_settings().database_url, WORKSPACES_SQL)
    if rows is None:
        from sqlalchemy import text

        with _engine().connect() as conn:
            rows = [tuple(row) for row in conn.execute(text(WORKSPACES_SQL)).all()]
    if not rows:
        typer.echo("No workspaces yet: `journey demo` builds one.")
    for ws_id, name, uninstalled_at, customers, events in rows:
        line = f"{ws_id}  {name}  {customers} customers, {events} events"
        if uninstalled_at is not None:
            from journey.models.types import from_epoch
            from journey.uninstall import purge_after

            gone = (
                uninstalled_at
                if isinstance(uninstalled_at, datetime)
                else from_epoch(uninstalled_at)
            )
            line += f" (app removed; data deleted on {gone + purge_after():%Y-%m-%d})"
        typer.echo(line)


@workspaces_app.command("purge")
def workspaces_purge(
    workspace: Annotated[str, typer.Argument(help="The workspace id to delete, e.g. T0123ABCD.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a workspace and everything of it now: customers, events, sources and their
    keys, digests, alerts, its Slack installation. Other workspaces are not touched."""
    from sqlalchemy import select

    from journey.models import Workspace
    from journey.uninstall import purge_workspace

    with _session() as session:
        found = session.get(Workspace, workspace)
        if found is None:
            known = ", ".join(session.exec(select(Workspace.id).limit(10)).scalars()) or "none"
            raise JourneyError(f"There is no workspace {workspace!r} (known: {known}).")
        if not yes and not typer.confirm(
            f"Delete workspace {workspace} ({found.name}) and all its data? This cannot be undone"
        ):
            typer.echo("Nothing deleted.")
            raise typer.Exit(1)
        purged = purge_workspace(session, workspace)
        session.commit()
    typer.echo(f"Deleted workspace {workspace}: {purged.total} rows.")


def _load_plugins() -> None:
    """Commands other packages add (the Slack bot adds `bot` and `serve`).

    Found through the `journey.plugins` entry point so journey never imports them.
    """
    from importlib.metadata import entry_points

    for entry in entry_points(group="journey.plugins"):
        try:
            entry.load()(app)
        except ImportError as exc:  # a plugin whose dependencies are missing
            log.warning("journey plugin %s not loaded: %s", entry.name, exc)


def main() -> None:
    """Entry point: run the CLI, turning errors into one clear line instead of a traceback.

    Usage errors (unknown command, bad option) are Typer's: it prints the usage
    and exits with 2. JourneyErrors are the user's to fix and exit with 2 too.
    """
    logs.configure(logging.WARNING)
    try:
        _load_plugins()
        app()
    except JourneyError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except Exception as exc:  # a bug: say so plainly, keep the details for debugging
        # Unless it is the machine's state, not journey's: a full disk, a read-only
        # file, a database or a network out of reach. Then say what to do.
        from journey.outage import classify, network_words

        outage = classify(exc)
        words = outage.cli_words if outage is not None else network_words(exc)
        if words is not None and not _settings_debug():
            err.print(f"error: {words}", markup=False, highlight=False, soft_wrap=True)
            sys.exit(2)
        if _settings_debug():
            traceback.print_exc()
        else:
            err.print(
                f"journey hit an unexpected error ({type(exc).__name__}). "
                "Rerun with JOURNEY_DEBUG=1 to see the details, and please report it.",
                markup=False,
            )
        sys.exit(1)


def _settings_debug() -> bool:
    try:
        return _settings().debug
    except Exception:
        return False
