"""A file checked, then imported, in sessions of their own: what a caller without a
session (the Slack bot) runs in a worker thread.

The rules are the CLI's (`journey import`): a dry run writes nothing; an import is all
or nothing, commits batch by batch with its resume marker, and never lands in a
workspace holding the demo store, where it would mix into the demo's numbers
(issue 19). The CLI may override that with --into-demo; callers of `import_file` may
not: a workspace holding the demo gets `DemoInTheWay`, and whoever asked is told how
to remove the demo.
"""

from __future__ import annotations

import os

from sqlalchemy import Engine

from journey.db import session_scope
from journey.errors import JourneyError
from journey.imports.common import ImportResult, ProgressFn
from journey.imports.run import import_csv
from journey.workspaces import demo_source, ensure_workspace


class DemoInTheWay(JourneyError):
    """The workspace holds the demo store: an import would mix into its numbers."""

    def __init__(self, workspace_id: str) -> None:
        super().__init__(
            f"Workspace {workspace_id!r} holds journey's demo store: imported data would be "
            "mixed into its numbers."
        )
        self.workspace_id = workspace_id


def holds_demo(engine: Engine, workspace_id: str) -> bool:
    with session_scope(engine) as session:
        return demo_source(session, workspace_id) is not None


def check_file(
    engine: Engine, workspace_id: str, path: str | os.PathLike[str], *, label: str
) -> ImportResult:
    """`journey import --dry-run`: the whole file read and counted, nothing written."""
    with session_scope(engine) as session:
        return import_csv(session, workspace_id, path, dry_run=True, label=label)


def import_file(
    engine: Engine,
    workspace_id: str,
    path: str | os.PathLike[str],
    *,
    label: str,
    progress: ProgressFn | None = None,
) -> ImportResult:
    """`journey import` (all or nothing, committed batch by batch); refuses a workspace
    holding the demo store with DemoInTheWay."""
    with session_scope(engine) as session:
        if demo_source(session, workspace_id) is not None:
            raise DemoInTheWay(workspace_id)
        ensure_workspace(session, workspace_id)
        return import_csv(
            session, workspace_id, path, progress=progress, commit=session.commit, label=label
        )
