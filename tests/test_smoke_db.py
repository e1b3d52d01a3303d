from journey.db import current_revision, head_revision


def test_schema_is_at_head(engine):
    assert current_revision(engine) == head_revision(engine)
