"""The stage model: which stage each kind of event reaches, per workspace."""

from __future__ import annotations

import pytest

from journey.errors import JourneyError
from journey.stages import DEFAULT_STAGES, StageModel, hubspot_lifecycle
from tests.fakes.hubspot_api import DEFAULT_STAGES as HUBSPOT_DEFAULT_STAGES

SHORT = ("awareness", "consideration", "decision", "retention")


def test_default_stages_and_mapping():
    model = StageModel()
    assert model.stages == (
        "awareness",
        "consideration",
        "decision",
        "purchase",
        "retention",
        "advocacy",
    )
    positions = model.kind_positions()
    expected = {
        "visit": 0,
        "ad_click": 0,
        "signup": 1,
        "inquiry": 1,
        "checkout": 2,
        "booking": 2,
        "order": 3,
        "purchase": 3,
        "repeat_purchase": 4,
        "renewal": 4,
        "review": 5,
        "referral": 5,
        # Stage names are kinds of their own.
        "awareness": 0,
        "consideration": 1,
        "decision": 2,
        "retention": 4,
        "advocacy": 5,
    }
    assert {kind: positions[kind] for kind in expected} == expected
    # Refunds and cancellations are facts, not stages; unknown kinds reach nothing.
    for kind in ("refund", "cancellation", "coffee"):
        assert kind not in positions
    assert model.purchase_position == 3
    assert model.retention_position == 4


def test_from_workspace_defaults():
    assert StageModel.from_workspace(None, None) == StageModel()
    assert StageModel.from_workspace([], {}) == StageModel()
    assert StageModel.from_workspace(None, None).stages == DEFAULT_STAGES


def test_shorter_journey_falls_back_to_the_closest_earlier_stage():
    model = StageModel.from_workspace(list(SHORT), None)
    positions = model.kind_positions()
    # `purchase` is not in this journey: an order falls back to `decision`.
    assert positions["order"] == 2
    assert positions["purchase"] == 2
    assert positions["checkout"] == 2
    assert positions["signup"] == 1
    assert positions["visit"] == 0
    # Retention is present and keeps its kinds.
    assert positions["repeat_purchase"] == 3
    assert positions["renewal"] == 3
    assert model.purchase_position == 2
    assert model.retention_position == 3


def test_custom_stage_names_are_kinds_and_unmapped_defaults_reach_nothing():
    model = StageModel(("enquiry", "client"))
    positions = model.kind_positions()
    assert positions["enquiry"] == 0
    assert positions["client"] == 1
    # No default stage (and no earlier one) is in this journey.
    assert "order" not in positions
    assert "visit" not in positions
    assert model.purchase_position is None
    assert model.retention_position is None


def test_overrides_map_new_kinds_and_replace_defaults():
    model = StageModel.from_workspace(
        None, {"demo_call": "decision", "signup": "awareness", "trial_start": "consideration"}
    )
    positions = model.kind_positions()
    assert positions["demo_call"] == 2
    assert positions["signup"] == 0  # was consideration
    assert positions["trial_start"] == 1
    assert positions["order"] == 3  # untouched
    # An override of `order` moves the purchase position with it.
    assert StageModel(overrides={"order": "decision"}).purchase_position == 2


def test_overrides_onto_a_custom_stage():
    model = StageModel(("lead", "quoted", "won"), {"quote": "quoted", "order": "won"})
    positions = model.kind_positions()
    # `lead` is a default kind (consideration) but here it is a stage of its own.
    assert positions["lead"] == 0
    assert positions["quote"] == 1
    assert positions["order"] == 2
    assert model.purchase_position == 2


@pytest.mark.parametrize(
    "name", ["Awareness", "1st_stage", "has space", "", "trial-start", "x" * 33, "é"]
)
def test_invalid_stage_names(name):
    with pytest.raises(JourneyError) as err:
        StageModel(("awareness", name))
    message = str(err.value)
    assert repr(name) in message
    assert "lowercase letters, digits and _" in message


@pytest.mark.parametrize("stages", [(), ("awareness",), tuple(f"s{i}" for i in range(9))])
def test_number_of_stages(stages):
    with pytest.raises(JourneyError, match=f"between 2 and 8 stages, got {len(stages)}"):
        StageModel(stages)


def test_eight_stages_are_allowed():
    assert len(StageModel(tuple(f"s{i}" for i in range(8))).stages) == 8


def test_duplicate_stages():
    with pytest.raises(JourneyError, match="only once"):
        StageModel(("awareness", "decision", "awareness"))


def test_override_onto_an_unknown_stage():
    with pytest.raises(JourneyError) as err:
        StageModel.from_workspace(list(SHORT), {"order": "purchase"})
    message = str(err.value)
    assert "order=purchase" in message
    assert "not in this journey" in message
    assert "awareness, consideration, decision, retention" in message


# --- a HubSpot account's own lifecycle stages --------------------------------------

HUBSPOT_BUILT_INS = list(HUBSPOT_DEFAULT_STAGES)  # a new account's list, as the fake has it


def test_hubspot_built_in_stages_keep_hubspots_meaning():
    stages = hubspot_lifecycle(HUBSPOT_BUILT_INS)
    assert [(s.value, s.default) for s in stages] == [
        ("subscriber", "awareness"),
        ("lead", "awareness"),
        ("marketingqualifiedlead", "consideration"),
        ("salesqualifiedlead", "consideration"),
        ("opportunity", "decision"),
        ("customer", "purchase"),
        ("evangelist", "advocacy"),
        ("other", None),
    ]
    # the same as the built-in kinds' defaults, so a default account changes nothing
    model = StageModel()
    assert all(model.stage_of(s.kind) == s.default for s in stages)


def test_a_custom_stage_takes_its_label_else_the_stage_before_it():
    options = [
        ("101", "Website visitor"),  # before every known stage
        *HUBSPOT_BUILT_INS[:2],
        ("102", "MQL"),  # a known name
        ("103", "Demo booked"),  # after MQL: consideration
        *HUBSPOT_BUILT_INS[2:6],
        ("104", "Onboarding"),  # after customer: purchase
        ("105", "Churned"),  # a known name for no stage
        ("106", "Renewal due"),  # after Churned, which has none: still Onboarding's
        *HUBSPOT_BUILT_INS[6:],
        ("107", "Retention"),  # a journey stage's own name
    ]
    got = {s.value: (s.default, s.why) for s in hubspot_lifecycle(options)}
    assert got["101"] == ("awareness", "comes first")
    assert got["102"] == ("consideration", "its label")
    assert got["103"] == ("consideration", "follows MQL")
    assert got["104"] == ("purchase", "follows Customer")
    assert got["105"] == (None, "its label")
    assert got["106"] == ("purchase", "follows Onboarding")
    assert got["107"] == ("retention", "its label")


def test_source_defaults_fall_back_in_a_shorter_journey_and_yield_to_the_workspace_map():
    defaults = {"hubspot_stage:104": "purchase", "hubspot_stage:102": "consideration"}
    model = StageModel.from_workspace(None, None, defaults)
    assert model.stage_of("hubspot_stage:104") == "purchase"
    assert model.stage_of("hubspot_stage:999") is None  # a stage no source defined
    short = StageModel.from_workspace(list(SHORT), None, defaults)
    assert short.stage_of("hubspot_stage:104") == "decision"  # purchase is not in it
    mapped = StageModel.from_workspace(None, {"hubspot_stage:104": "retention"}, defaults)
    assert mapped.stage_of("hubspot_stage:104") == "retention"
    assert mapped.stage_of("hubspot_stage:102") == "consideration"
    # a source default never moves a built-in kind
    assert StageModel(source_defaults={"order": "awareness"}).stage_of("order") == "purchase"
