"""Finding and creating workspaces, and reading their stage model."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, select

from journey.errors import NotFound
from journey.models import Source, Workspace
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
