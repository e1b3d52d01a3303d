import pytest

from journey.db import current_revision, head_revision, make_engine
from journey.errors import JourneyError


def test_schema_is_at_head(engine):
    assert current_revision(engine) == head_revision(engine)


def test_sqlite_memory_settings_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("JOURNEY_SQLITE_CACHE_MB", "32")
    monkeypatch.setenv("JOURNEY_SQLITE_MMAP_MB", "0")
    engine = make_engine(f"sqlite:///{tmp_path / 'small.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -32000
        assert conn.exec_driver_sql("PRAGMA mmap_size").scalar() == 0
    engine.dispose()
    monkeypatch.delenv("JOURNEY_SQLITE_CACHE_MB")
    monkeypatch.delenv("JOURNEY_SQLITE_MMAP_MB")
    engine = make_engine(f"sqlite:///{tmp_path / 'default.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -200000
    engine.dispose()


def test_a_bad_sqlite_memory_setting_fails_in_words(tmp_path, monkeypatch):
    monkeypatch.setenv("JOURNEY_SQLITE_CACHE_MB", "lots")
    with pytest.raises(JourneyError, match="JOURNEY_SQLITE_CACHE_MB must be a whole number"):
        make_engine(f"sqlite:///{tmp_path / 'x.db'}")
