"""The schema is Alembic's: upgrades reach head, keep rows, and match the models."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from builders import count_rows, days_ago, make_shop
from sqlalchemy import inspect
from sqlmodel import Session, SQLModel

import journey.models  # noqa: F401  (registers every table on SQLModel.metadata)
from journey.db import (
    alembic_config,
    current_revision,
    ensure_schema,
    head_revision,
    make_engine,
    upgrade,
)

TABLES = {
    "workspace",
    "source",
    "sync_cursor",
    "customer",
    "journey_event",
    "customer_journey",
    "review_request",
}


def fill(engine) -> None:
    with Session(engine) as session:
        shop = make_shop(session)
        shop.customer("c1", ("visit", days_ago(10)), ("order", days_ago(9), 1200))
        shop.customer("c2", ("order", days_ago(3), 800))
        shop.ask("c1", days_ago(2))
        session.commit()


def counts(engine) -> dict[str, int]:
    with Session(engine) as session:
        return {table: count_rows(session, table) for table in sorted(TABLES)}


FILLED = {
    "customer": 2,
    "customer_journey": 2,
    "journey_event": 3,
    "review_request": 1,
    "source": 1,
    "sync_cursor": 0,
    "workspace": 1,
}


def test_upgrade_of_an_empty_database_reaches_head(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision(engine)
    assert set(inspect(engine).get_table_names()) >= TABLES
    engine.dispose()


def test_upgrading_again_keeps_the_rows(engine):
    fill(engine)
    assert counts(engine) == FILLED
    upgrade(engine)
    ensure_schema(engine)
    assert current_revision(engine) == head_revision(engine)
    assert counts(engine) == FILLED


def test_downgrade_to_base_then_upgrade_on_sqlite(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'cycle.db'}")
    upgrade(engine)
    fill(engine)
    command.downgrade(alembic_config(engine), "base")
    assert current_revision(engine) is None
    assert not TABLES & set(inspect(engine).get_table_names())
    upgrade(engine)
    assert current_revision(engine) == head_revision(engine)
    assert set(counts(engine).values()) == {0}
    fill(engine)  # and the store is usable again
    assert counts(engine) == FILLED
    engine.dispose()


def test_migrations_match_the_models(engine):
    # A model change without its migration would leave databases made by
    # `journey db upgrade` different from what the code expects.
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
