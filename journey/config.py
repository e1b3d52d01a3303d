"""Settings, read once from the environment and `.env`.

One typed object instead of `os.environ` look-ups scattered through the code, so
every knob is listed in one place (and in `.env.example`) and tests can build a
`Settings` by hand.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import load_dotenv

DEFAULT_WORKSPACE = "local"


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default_factory=lambda: f"sqlite:///{Path.cwd() / 'journey.db'}")
    workspace: str = DEFAULT_WORKSPACE
    debug: bool = False


def load_settings(env_file: str | os.PathLike[str] | None = None) -> Settings:
    """Read `.env` (never overriding real environment variables) and build Settings."""
    load_dotenv(env_file or Path.cwd() / ".env", override=False)
    url = os.environ.get("DATABASE_URL", "").strip()
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgres://")
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    defaults = Settings()
    return Settings(
        database_url=url or defaults.database_url,
        workspace=os.environ.get("JOURNEY_WORKSPACE", "").strip() or DEFAULT_WORKSPACE,
        debug=os.environ.get("JOURNEY_DEBUG", "").strip().lower() in {"1", "true", "yes"},
    )
