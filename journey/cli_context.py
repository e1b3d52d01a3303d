"""What every `journey` command shares: the settings, the engine and a session on it,
the workspace option, the clock, stderr and its progress bars.

Its own module so that journey/cli.py and the sub-commands it registers
(journey/cli_sources.py, journey/cli_people.py) import it, not each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from journey.config import Settings, load_settings

if TYPE_CHECKING:  # heavy modules: imported where they are used (a fast --help)
    from rich.progress import Progress
    from sqlalchemy import Engine
    from sqlmodel import Session


class _LazyConsole:
    """rich's stderr Console, made on first use: importing rich costs a fifth of a
    second that `journey --help` and `journey workspaces` need not pay."""

    _console: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            type(self)._console = Console(stderr=True)
        return getattr(self._console, name)


err: Any = _LazyConsole()


class LeanGroup(TyperGroup):
    """A command group whose `--help` flag costs no pydantic.

    typer 0.29 coerces every parameter through a pydantic TypeAdapter built on first use,
    and it builds one for each group's `--help` flag on every run, given or not: that
    imported pydantic (a quarter of a second under load) for `journey workspaces`, whose
    only parameters are those flags (bench/README.md, "CLI start-up"). The flag's value is
    None (not given) or True and needs no coercion, so its runtime parameter is a
    pass-through. If a later typer drops `_runtime_param`, nothing changes but the speed
    (tests/test_cli_startup.py notices).
    """

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None and getattr(option, "_runtime_param", False) is None:
            option._runtime_param = _PassThrough()
        return option


class _PassThrough:
    """typer's RuntimeParam contract (`coerce(value, param, ctx)`) for a value kept as is."""

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        return value


WorkspaceOpt = Annotated[
    str | None,
    typer.Option("--workspace", "-w", help="Workspace id (default: JOURNEY_WORKSPACE or local)."),
]


class _State:
    settings: Settings | None = None
    engine: Engine | None = None


_state = _State()


def _settings() -> Settings:
    if _state.settings is None:
        _state.settings = load_settings()
    return _state.settings


def _engine() -> Engine:
    from journey.db import ensure_schema, make_engine

    if _state.engine is None:
        _state.engine = make_engine(_settings().database_url)
        ensure_schema(_state.engine)
    return _state.engine


@contextmanager
def _session() -> Iterator[Session]:
    from journey.db import session_scope

    with session_scope(_engine()) as session:
        yield session


def _workspace(workspace: str | None) -> str:
    return workspace or _settings().workspace


def _now() -> datetime:
    return datetime.now(UTC)


def _progress() -> Progress:
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}", markup=False),  # names are data, not rich markup
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
