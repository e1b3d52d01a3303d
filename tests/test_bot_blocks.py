"""Block Kit replies stay inside Slack's limits, whatever the data."""

import json
from datetime import UTC, datetime, timedelta

from slack_sdk.models.blocks import SectionBlock

from bot.blocks.help import help_message
from bot.blocks.message import MAX_BLOCKS, MAX_BLOCKS_CHARS, Message, code, section
from bot.blocks.reports import funnel_message, retention_message, reviews_message
from bot.blocks.terminal import render_terminal
from journey.periods import Period
from journey.reports import (
    AtRiskCustomer,
    ChannelFunnel,
    CohortRow,
    FunnelReport,
    RetentionReport,
    ReviewCandidate,
    ReviewReport,
    ReviewTracking,
    StageStep,
)
from journey.stats import wilson

NOW = datetime(2026, 6, 15, tzinfo=UTC)
PERIOD = Period(NOW - timedelta(days=30), NOW, "last 30d")


def _check_limits(payload):
    blocks = payload["blocks"]
    assert payload["text"]
    assert len(blocks) <= MAX_BLOCKS
    assert len(json.dumps(blocks, ensure_ascii=False)) <= MAX_BLOCKS_CHARS
    for block in blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "actions":
            for element in block["elements"]:
                assert len(element["text"]["text"]) <= 75


def test_message_trims_to_50_blocks_and_keeps_the_buttons():
    blocks = [section(f"row {i}") for i in range(80)]
    footer = [section("buttons")]
    payload = Message("fallback", blocks, footer).payload()
    _check_limits(payload)
    assert payload["blocks"][-1]["text"]["text"] == "buttons"
    assert "left out" in json.dumps(payload["blocks"][-2])


def test_message_trims_to_the_total_size_limit():
    blocks = [section("x" * 2900) for _ in range(10)]
    payload = Message("fallback", blocks).payload()
    _check_limits(payload)
    assert len(payload["blocks"]) < 10


def test_code_table_is_cut_with_and_n_more():
    block = code([f"line {i:04d} " + "y" * 60 for i in range(200)])
    assert isinstance(block, SectionBlock)
    text = block.to_dict()["text"]["text"]
    assert len(text) <= 3000 and "more rows" in text


def _funnel(channels: int = 6) -> FunnelReport:
    names = ["awareness", "consideration", "decision", "purchase", "retention", "advocacy"]
    counts = [1000, 600, 300, 200, 50, 10]
    stages = [
        StageStep(n, c, 0, wilson(c, 1000), None if i == 0 else wilson(c, counts[i - 1]), 24.0 * i)
        for i, (n, c) in enumerate(zip(names, counts, strict=True))
    ]
    return FunnelReport(
        workspace_id="T1",
        period=PERIOD,
        previous_period=PERIOD.previous(),
        channel_filter=None,
        stages=stages,
        entered=1000,
        previous_entered=900,
        biggest_drop=None,
        changes=[],
        channels=[
            ChannelFunnel(f"channel-{i}" * 5, 100, counts, wilson(20, 100)) for i in range(channels)
        ],
        purchase_stage="purchase",
        insight=None,
        generated_at=NOW,
    )


def test_funnel_message_fits_and_has_the_buttons_and_numbers_as_text():
    payload = funnel_message(_funnel(), "30d", view="by_channel", exports=True).payload()
    _check_limits(payload)
    dumped = json.dumps(payload)
    assert (
        "By channel" in dumped
        and "Share to channel" in dumped
        and "Compare with previous period" in dumped
    )
    # A viewer who may not export is not offered Share (the default offers less).
    member = json.dumps(funnel_message(_funnel(), "30d").payload())
    assert "By channel" in member and "Share to channel" not in member
    assert "1000" in dumped and "60.0%" in dumped
    shared = funnel_message(_funnel(), "30d", shared=True).payload()
    assert not any(b["type"] == "actions" for b in shared["blocks"])


def test_retention_message_with_a_long_at_risk_list_says_and_n_more():
    at_risk = [
        AtRiskCustomer(i, f"C{i}", "N" * 200, None, NOW, 40.0, 20.0, False, 3, 10000, 5000)
        for i in range(25)
    ]
    report = RetentionReport(
        workspace_id="T1",
        period=PERIOD,
        currency="USD",
        repeat_rate=wilson(30, 100),
        previous_repeat_rate=wilson(28, 100),
        cohorts=[CohortRow(f"2026-{m:02d}", 100, [wilson(10, 100)] * 11) for m in range(1, 13)],
        churn=wilson(5, 100),
        returning=40,
        previous_returning=60,
        at_risk_count=400,
        value_at_risk_cents=10**7,
        at_risk=at_risk,
        typical_gap_days=30.0,
        at_risk_factor=2.0,
    )
    payload = retention_message(report, "retention", "30d").payload()
    _check_limits(payload)
    assert "and 390 more" in json.dumps(payload)


def test_reviews_message_has_asked_and_skip_buttons_per_candidate_within_limits():
    candidates = [
        ReviewCandidate(i, f"C{i}", f"Name {i}", f"n{i}@example.com", NOW, 5.0, 2, 12000, 30000)
        for i in range(25)
    ]
    report = ReviewReport(
        workspace_id="T1",
        period=PERIOD,
        currency="USD",
        window_days=(3, 14),
        cooldown_days=90,
        total_candidates=40,
        candidates=candidates,
        tracking=ReviewTracking(10, 1, 4, wilson(4, 10)),
        generated_at=NOW,
    )
    payload = reviews_message(report).payload()
    _check_limits(payload)
    dumped = json.dumps(payload)
    assert dumped.count("journey_review_asked") == 10
    assert "and 30 more" in dumped


def test_help_lists_every_subcommand_with_an_example():
    text = json.dumps(help_message().payload())
    for word in (
        "funnel",
        "retention",
        "churn",
        "reviews",
        "digest",
        "alerts",
        "connect",
        "sources",
        "sync",
        "help",
    ):
        assert f"/journey {word}" in text


def test_terminal_rendering_keeps_the_numbers_and_drops_markup():
    out = render_terminal(funnel_message(_funnel(), "30d", exports=True).payload())
    assert "awareness" in out and "1000" in out
    assert "```" not in out and "[Share to channel]" in out
