"""`/journey alerts threshold`: the drop, the minimum sample and the cooldown a workspace
sets per alert kind, with clear errors, and shown in `/journey alerts`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.commands.language import AlertsRequest, CommandError, parse
from bot.commands.schedule_settings import alerts_reply
from journey.db import make_engine, session_scope, upgrade
from journey.models.schedule import AlertRule
from journey.workspaces import ensure_workspace

NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("threshold retention 15", AlertsRequest("threshold", "retention_drop", 15)),
        (
            "threshold retention 15% min 80 cooldown 48h",
            AlertsRequest("threshold", "retention_drop", 15, 80, 48),
        ),
        ("threshold churn min 40", AlertsRequest("threshold", "high_value_churn", None, 40)),
        (
            "threshold funnel cooldown 2d 20",
            AlertsRequest("threshold", "funnel_step_drop", 20, None, 48),
        ),
        (
            "threshold funnel COOLDOWN 12H",
            AlertsRequest("threshold", "funnel_step_drop", None, None, 12),
        ),
    ],
)
def test_threshold_forms(text, expected):
    command = parse(f"alerts {text}")
    assert command.setting == expected
    assert command.changes_settings  # admins and owners only


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("threshold retention", "needs a kind and a percentage, a minimum sample or a cooldown"),
        ("threshold sometimes 10", "There is no `sometimes` alert"),
        ("threshold funnel lots", "`lots` is not a threshold"),
        ("threshold funnel 95", "from 1 to 90"),
        ("threshold funnel min", "Nothing after `min` is a minimum sample"),
        ("threshold funnel min 5", "from 20 to 100,000"),
        ("threshold funnel min 80.5", "`80.5` is not a minimum sample"),
        ("threshold funnel cooldown", "Nothing after `cooldown` is a cooldown"),
        ("threshold funnel cooldown 0h", "from 1h to 30d"),
        ("threshold funnel cooldown 31d", "`31d` is not a cooldown"),
        ("threshold funnel cooldown soon", "`soon` is not a cooldown"),
        ("threshold funnel min 50 min 60", "`min` is given twice"),
        ("threshold funnel cooldown 1h cooldown 2h", "`cooldown` is given twice"),
        ("threshold funnel 10 20", "I don't understand `20`"),
    ],
)
def test_bad_threshold_forms_say_what_to_do(text, message):
    with pytest.raises(CommandError) as info:
        parse(f"alerts {text}")
    assert message in str(info.value)


@pytest.fixture
def engine(tmp_path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'threshold.db'}")
    upgrade(engine)
    with session_scope(engine) as session:
        ensure_workspace(session, "T1")
    return engine


def _rules(engine: Engine) -> dict[str, AlertRule]:
    with Session(engine) as session:
        return {r.kind: r for r in session.exec(select(AlertRule))}


def _said(text: str, engine: Engine) -> str:
    request = parse(f"alerts {text}").setting
    assert isinstance(request, AlertsRequest)
    reply = alerts_reply(engine, "T1", "C1", "U0ADMIN", request, now=NOW)
    return json.dumps(reply.payload())


def test_setting_the_sample_and_cooldown_keeps_the_rest_and_is_listed(engine):
    said = _said("threshold retention 15% min 80 cooldown 48h", engine)
    assert (
        "The retention alert now needs a drop of 15% or more, needs at least 80 customers in "
        "each group and waits 48h before announcing again" in said
    )
    rules = _rules(engine)
    retention = rules["retention_drop"]
    assert (retention.min_relative_drop, retention.min_sample, retention.cooldown_hours) == (
        pytest.approx(0.15),
        80,
        48,
    )
    # Only what was given changes; the other kinds keep their defaults.
    churn = rules["high_value_churn"]
    assert (churn.min_relative_drop, churn.min_sample, churn.cooldown_hours) == (0.15, 30, 72)

    said = _said("threshold retention cooldown 24h", engine)
    assert "now waits 24h before announcing again" in said and "drop of" not in said.split(".")[0]
    retention = _rules(engine)["retention_drop"]
    assert (retention.min_relative_drop, retention.min_sample) == (pytest.approx(0.15), 80)
    assert retention.cooldown_hours == 24

    listed = _said("", engine)
    assert "retention: at least 80 customers per group, 24h cooldown" in listed
    assert "funnel: at least 50 customers per group, 72h cooldown" in listed
    assert "churn: at least 30 purchases per group, 72h cooldown" in listed
    assert "[min N] [cooldown 48h]" in listed
