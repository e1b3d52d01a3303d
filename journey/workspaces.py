"""Finding and creating workspaces, and reading their stage model."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete
from sqlmodel import Session, select

from journey.errors import JourneyError, NotFound
from journey.models import (
    Customer,
    CustomerJourney,
    JourneyEvent,
    ReviewRequest,
    Source,
    Workspace,
)
from journey.reports import Business
from journey.stages import StageModel, source_stage_defaults


def get_workspace(session: Session, workspace_id: str) -> Workspace:
    workspace = session.get(Workspace, workspace_id)
    if workspace is None:
        known = ", ".join(session.exec(select(Workspace.id).limit(10)).all()) or "none yet"
        raise NotFound(
            f"There is no workspace {workspace_id!r} (known: {known}). "
            "Load data first with `journey demo` or `journey import`."
        )
    return workspace


def ensure_workspace(session: Session, workspace_id: str, name: str = "") -> Workspace:
    workspace = session.get(Workspace, workspace_id)
    if workspace is None:
        workspace = Workspace(
            id=workspace_id, name=name or workspace_id, created_at=datetime.now(UTC)
        )
        session.add(workspace)
        session.flush()
    return workspace


def ensure_source(session: Session, workspace_id: str, kind: str, name: str) -> Source:
    source = session.exec(
        select(Source).where(
            Source.workspace_id == workspace_id, Source.kind == kind, Source.name == name
        )
    ).first()
    if source is None:
        source = Source(
            workspace_id=workspace_id, kind=kind, name=name, created_at=datetime.now(UTC)
        )
        session.add(source)
        session.flush()
    return source


def stage_model(session: Session, workspace_id: str) -> StageModel:
    """The workspace's stages and map, with the defaults its sources define (an
    account's custom HubSpot lifecycle stages)."""
    workspace = get_workspace(session, workspace_id)
    return StageModel.from_workspace(
        workspace.stages, workspace.stage_map, source_stage_defaults(session, workspace_id)
    )


# --- the demo store, kept apart from a business's own data ---------------------------------

DEMO_KIND = "demo"
DEMO_BUSINESS = "Maple Street Vet"


def demo_source(session: Session, workspace_id: str) -> Source | None:
    """The workspace's demo source (journey.demo builds it), if it holds one."""
    return session.exec(
        select(Source).where(Source.workspace_id == workspace_id, Source.kind == DEMO_KIND)
    ).first()


def holds_own_data(session: Session, workspace_id: str) -> bool:
    """Whether the workspace holds data from anything but the demo (imports, connectors)."""
    return (
        session.exec(
            select(Source.id).where(Source.workspace_id == workspace_id, Source.kind != DEMO_KIND)
        ).first()
        is not None
    )


def business(session: Session, workspace_id: str) -> Business:
    """Whose numbers a report shows: the business name, and whether they are (partly)
    the demo's, so every header can say so and nobody mistakes the vet clinic for
    their shop."""
    workspace = session.get(Workspace, workspace_id)
    if workspace is None:
        return Business(workspace_id, workspace_id)
    demo = demo_source(session, workspace_id) is not None
    name = (workspace.name or "").strip()
    if name.endswith("(demo)"):  # the demo's own name, as journey.demo stores it
        name = name.removesuffix("(demo)").strip()
    return Business(
        workspace_id,
        name or workspace_id,
        demo=demo,
        mixed=demo and holds_own_data(session, workspace_id),
    )


def refuse_demo_mix(session: Session, workspace_id: str, retry: str) -> None:
    """Own data must not land among the demo's customers unnoticed: their counts would
    mix into every report. `retry` is the user's command with a workspace of its own,
    so the error shows exactly what to type instead."""
    if demo_source(session, workspace_id) is None:
        return
    raise JourneyError(
        f"Workspace {workspace_id!r} holds the demo store ({DEMO_BUSINESS}): your data "
        f"would be mixed into its numbers. Put it in a workspace of its own: `{retry}` "
        "(any name instead of myshop). To mix them on purpose add --into-demo; to drop "
        f"the demo, `journey demo remove --workspace {workspace_id}`."
    )


def remove_demo(session: Session, workspace_id: str) -> int:
    """Delete the demo's customers, events, review requests and source; data from any
    other source stays. Returns the number of demo customers removed (0: no demo)."""
    source = demo_source(session, workspace_id)
    if source is None:
        return 0
    demo_customers = select(Customer.id).where(
        Customer.workspace_id == workspace_id, Customer.source_id == source.id
    )
    count = len(session.exec(demo_customers).all())
    for model in (ReviewRequest, CustomerJourney):
        session.execute(
            delete(model).where(
                model.workspace_id == workspace_id,
                model.customer_id.in_(demo_customers),  # type: ignore[attr-defined]
            )
        )
    for model in (JourneyEvent, Customer):
        session.execute(
            delete(model).where(
                model.workspace_id == workspace_id,
                model.source_id == source.id,  # type: ignore[arg-type]
            )
        )
    session.delete(source)
    workspace = session.get(Workspace, workspace_id)
    if workspace is not None and (workspace.name or "").endswith("(demo)"):
        workspace.name = workspace_id
        session.add(workspace)
    session.flush()
    return count


# --- finding what people type: channels and customers by the names a reply shows -----------


def resolve_channel(session: Session, workspace_id: str, typed: str) -> str:
    """The workspace's channel a user typed, matched without regard to case (`Facebook`
    is `facebook`); an unknown one is an error that lists the known ones, rather than a
    funnel of nobody that suggests a longer period."""
    from sqlalchemy import func

    from journey.models import CustomerJourney

    if typed.lower() in ("unknown", "other"):
        return typed.lower()
    known = [
        c
        for (c,) in session.execute(
            select(CustomerJourney.channel)
            .where(
                CustomerJourney.workspace_id == workspace_id,
                CustomerJourney.channel.is_not(None),  # type: ignore[union-attr]
            )
            .group_by(CustomerJourney.channel)
            .order_by(func.count().desc())
            .limit(50)
        ).all()
    ]
    for channel in known:
        if channel.lower() == typed.lower():
            return channel
    listed = ", ".join(sorted(known)[:20]) if known else "none recorded yet"
    raise JourneyError(
        f"No customer came through a channel called {typed!r}. The channels are: {listed}."
    )


def find_customer(session: Session, workspace_id: str, who: str) -> Customer:
    """A customer by what a reply shows of them: an email, a name or an id (case does not
    matter). Several matches are an error that lists them, so nobody records a review
    request against the wrong person."""
    from sqlalchemy import func, or_

    text = who.strip()
    if not text:
        raise JourneyError("Name the customer by email or name, as the list shows them.")
    low = text.lower()
    matches = list(
        session.exec(
            select(Customer)
            .where(
                Customer.workspace_id == workspace_id,
                or_(
                    func.lower(Customer.email) == low,
                    func.lower(Customer.name) == low,
                    Customer.external_id == text,
                    func.lower(Customer.external_id) == low,
                ),
            )
            .limit(6)
        ).all()
    )
    if not matches:
        raise JourneyError(
            f"No customer {text!r} here: use the email or the name the review list shows."
        )
    exact_email = [c for c in matches if (c.email or "").lower() == low]
    if len(exact_email) == 1:
        return exact_email[0]
    if len(matches) > 1:
        listed = "; ".join(
            f"{c.name or c.external_id} <{c.email or 'no email'}>" for c in matches[:5]
        )
        raise JourneyError(f"Several customers match {text!r} ({listed}): use the email.")
    return matches[0]
