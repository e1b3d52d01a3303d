"""Alembic environment: runs against the engine journey.db hands over."""

from alembic import context
from sqlalchemy import BigInteger
from sqlmodel import SQLModel

import journey.models  # noqa: F401  (registers the tables for autogenerate)
from journey.models.types import EpochDateTime

config = context.config
target_metadata = SQLModel.metadata


def render_item(type_, obj, autogen_context):
    # Migrations store epoch times as plain BIGINT so they never import app code.
    if type_ == "type" and isinstance(obj, EpochDateTime):
        return "sa.BigInteger()"
    if type_ == "type" and type(obj).__name__ == "AutoString":
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from journey.config import load_settings
        from journey.db import make_engine

        engine = make_engine(load_settings().database_url)
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_item=render_item,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        context.run_migrations()


_ = BigInteger
run_migrations_online()
