"""PNG charts from hand-built report objects: no database, no pyplot.

What matters to the bot: the bytes are a valid PNG of Slack-preview size, the
same report always gives the same bytes, empty reports still give a picture,
and rendering from several worker threads at once is safe.
"""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from journey.periods import Period
from journey.render import charts
from journey.render.charts import cohort_heatmap, funnel_chart
from journey.reports import CohortRow, FunnelReport, RetentionReport, StageStep, StepChange
from journey.stats import Rate, wilson

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PERIOD = Period(datetime(2026, 5, 17, tzinfo=UTC), datetime(2026, 6, 16, tzinfo=UTC), "30d")
STAGES = ["awareness", "consideration", "decision", "purchase", "retention", "advocacy"]


def make_funnel(
    counts: list[int],
    inferred: list[int] | None = None,
    names: list[str] | None = None,
    workspace: str = "acme",
) -> FunnelReport:
    """A funnel as the metric would build it, with the biggest drop up to the purchase."""
    names = names or STAGES[: len(counts)]
    inferred = inferred or [0] * len(counts)
    entered = counts[0] if counts else 0
    steps = [
        StageStep(
            stage=name,
            reached=reached,
            inferred=inferred[i],
            overall=wilson(reached, entered),
            step=None if i == 0 else wilson(reached, counts[i - 1]),
            median_hours_from_previous=None if i == 0 else 24.0 * i,
        )
        for i, (name, reached) in enumerate(zip(names, counts, strict=True))
    ]
    changes = [
        StepChange(
            names[i - 1],
            names[i],
            wilson(counts[i], counts[i - 1]),
            wilson(counts[i], counts[i - 1]),
            0.0,
            1.0,
            False,
        )
        for i in range(1, len(counts))
    ]
    goal = min(3, len(changes))
    measurable = [c for c in changes[:goal] if c.current.value is not None]
    drop = min(measurable, key=lambda c: c.current.value or 0) if measurable else None
    return FunnelReport(
        workspace_id=workspace,
        period=PERIOD,
        previous_period=PERIOD.previous(),
        channel_filter=None,
        stages=steps,
        entered=entered,
        previous_entered=900,
        biggest_drop=drop,
        changes=changes,
        channels=[],
        purchase_stage="purchase",
        insight=None,
        generated_at=datetime(2026, 6, 15, 12, tzinfo=UTC),
    )


def make_retention(rows: list[tuple[str, int, list[int | None]]]) -> RetentionReport:
    """Cohorts from (month, buyers, [buyers back in month +1, +2, ... or None])."""
    cohorts = [
        CohortRow(month, n, [None if k is None else wilson(k, n) for k in back])
        for month, n, back in rows
    ]
    return RetentionReport(
        workspace_id="acme",
        period=PERIOD,
        currency="USD",
        repeat_rate=wilson(30, 100),
        previous_repeat_rate=wilson(28, 100),
        cohorts=cohorts,
        churn=wilson(5, 50),
        returning=30,
        previous_returning=28,
        at_risk_count=0,
        value_at_risk_cents=0,
        at_risk=[],
        typical_gap_days=30.0,
        at_risk_factor=2.0,
        generated_at=datetime(2026, 6, 15, 12, tzinfo=UTC),
    )


def full_year() -> RetentionReport:
    """Twelve cohorts, the usual staircase of months not reached yet."""
    rows = []
    for r in range(12):
        n = 100 + 37 * r
        back: list[int | None] = [
            (n * (30 - 2 * k)) // 100 if k <= 11 - r else None for k in range(1, 12)
        ]
        rows.append((f"{2025 + (5 + r) // 12}-{(5 + r) % 12 + 1:02d}", n, back))
    return make_retention(rows)


FUNNEL = make_funnel([1234, 612, 401, 97, 31, 9], inferred=[0, 40, 120, 0, 0, 0])
RETENTION = full_year()


def decode(png: bytes) -> np.ndarray:
    assert png.startswith(PNG_SIGNATURE)
    return matplotlib.image.imread(io.BytesIO(png), format="png")


def assert_preview_size(image: np.ndarray) -> None:
    height, width = image.shape[:2]
    assert 800 <= width <= 1600
    assert 500 <= height <= 1000
    assert 1.4 <= width / height <= 1.8


# --------------------------------------------------------------------------- output


@pytest.mark.parametrize(
    "render",
    [lambda: funnel_chart(FUNNEL), lambda: cohort_heatmap(RETENTION)],
    ids=["funnel", "heatmap"],
)
def test_charts_are_decodable_pngs_of_preview_size(render):
    image = decode(render())
    assert_preview_size(image)
    # Not a blank canvas: a good share of pixels are not white.
    assert (image[..., :3] < 0.9).any(axis=2).mean() > 0.05


def test_same_report_gives_identical_bytes():
    assert funnel_chart(FUNNEL) == funnel_chart(FUNNEL)
    assert cohort_heatmap(RETENTION) == cohort_heatmap(RETENTION)
    # ...and an equal report built again from scratch gives the same bytes too.
    assert funnel_chart(make_funnel([1234, 612, 401, 97, 31, 9], [0, 40, 120, 0, 0, 0])) == (
        funnel_chart(FUNNEL)
    )


def test_png_metadata_has_no_software_or_timestamp():
    for png in (funnel_chart(FUNNEL), cohort_heatmap(RETENTION)):
        assert b"matplotlib" not in png.lower()
        assert b"tIME" not in png


def test_different_reports_give_different_pictures():
    assert funnel_chart(FUNNEL) != funnel_chart(make_funnel([1234, 612, 401, 98, 31, 9]))


# --------------------------------------------------------------------------- empty reports


@pytest.mark.parametrize(
    "report",
    [
        make_funnel([0, 0, 0, 0]),
        dataclasses.replace(make_funnel([0, 0]), stages=[], changes=[], biggest_drop=None),
    ],
    ids=["nobody-entered", "no-stages"],
)
def test_empty_funnel_gives_a_no_data_card(report):
    png = funnel_chart(report)
    assert_preview_size(decode(png))
    assert png == charts._no_data(charts._funnel_title(report), None)


def test_empty_retention_gives_a_no_data_card():
    empty = make_retention([])
    assert_preview_size(decode(cohort_heatmap(empty)))
    # A cohort of nobody is no data either.
    assert cohort_heatmap(make_retention([("2026-05", 0, [None] * 11)])) == cohort_heatmap(empty)


def test_cohorts_that_have_not_reached_a_month_still_render():
    young = make_retention([("2026-05", 40, [None] * 11), ("2026-06", 12, [None] * 11)])
    assert_preview_size(decode(cohort_heatmap(young)))


# --------------------------------------------------------------------------- content


def test_unreached_months_are_grey_not_zero():
    """A None cell is the light grey of 'not yet', a 0% cell the dark end of the scale."""
    report = make_retention([("2026-04", 50, [0, 10]), ("2026-05", 40, [20, None])])
    image = decode(cohort_heatmap(report))[..., :3]
    height, width = image.shape[:2]
    left, bottom, ax_w, ax_h = 0.19, 0.1, 0.7, 0.7  # the heatmap axes in figure fractions

    def pixel(row: int, col: int, dx: float = 0.0) -> np.ndarray:
        x = left + ax_w * (col + 0.5 + dx) / 2
        y = bottom + ax_h * (1 - (row + 0.5) / 2)
        return image[int((1 - y) * height), int(x * width)]

    grey = np.array([0xED, 0xED, 0xED]) / 255
    assert np.allclose(pixel(1, 1), grey, atol=0.02)
    zero = pixel(0, 0, dx=0.35)  # beside the printed "0.0%"
    assert zero.mean() < 0.3, zero


def test_trailing_months_no_cohort_reached_are_dropped():
    cohorts = make_retention([("2026-03", 10, [5, 4, None, None]), ("2026-04", 10, [3, None])])
    matrix = charts._matrix(cohorts.cohorts)
    assert matrix.shape == (2, 2)
    assert np.isnan(matrix[1, 1])


def test_small_shares_never_print_as_zero():
    assert charts._cell_pct(0.0, 0) == "0%"
    assert charts._cell_pct(0.003, 0) == "<1%"
    assert charts._cell_pct(0.0004, 1) == "<0.1%"
    assert charts._cell_pct(0.279, 1) == "27.9%"


def test_biggest_drop_bar_is_the_stage_it_leads_to():
    assert FUNNEL.biggest_drop is not None
    assert FUNNEL.biggest_drop.to_stage == "purchase"
    assert charts._drop_index(FUNNEL) == 3
    assert charts._drop_index(dataclasses.replace(FUNNEL, biggest_drop=None)) is None


def test_labels_say_count_share_and_step():
    head, line = charts._stage_labels(FUNNEL.stages[3], first=False, highlighted=True)
    assert head == "97  ·  7.9% of entered"
    assert line == "24.2% of previous stage  ·  biggest drop-off"
    assert charts._stage_labels(FUNNEL.stages[0], first=True, highlighted=False)[1] is None


def test_names_are_not_parsed_as_mathtext():
    """A `$...$` in a workspace or stage name would raise in mathtext."""
    report = make_funnel([10, 5], names=["a", "b"], workspace=r"shop $\notacommand$")
    assert_preview_size(decode(funnel_chart(report)))
    retention = dataclasses.replace(RETENTION, workspace_id=r"$\frac{$")
    assert_preview_size(decode(cohort_heatmap(retention)))


def test_eight_long_stages_and_labels_inside_full_bars(monkeypatch):
    names = [f"a_rather_long_stage_name_number_{i}" for i in range(8)]
    report = make_funnel([50000, 49990, 30000, 20000, 9000, 4000, 1200, 80], names=names)
    assert_preview_size(decode(funnel_chart(report)))
    # Force the fallback that moves labels inside bars that leave no room beside them.
    monkeypatch.setattr(charts, "EDGE_PX", 400)
    assert_preview_size(decode(funnel_chart(report)))


def test_long_workspace_name_still_renders():
    report = make_funnel([100, 50, 20, 5], workspace="x" * 300)
    assert_preview_size(decode(funnel_chart(report)))


def test_rate_without_value_does_not_break_the_heatmap():
    report = make_retention([("2026-04", 10, [3, 2])])
    odd = dataclasses.replace(
        report, cohorts=[CohortRow("2026-04", 10, [Rate(0, 0, None, None, None), wilson(2, 10)])]
    )
    assert_preview_size(decode(cohort_heatmap(odd)))


# --------------------------------------------------------------------------- threads, imports


def test_rendering_in_threads_matches_serial_rendering():
    funnels = [
        FUNNEL,
        make_funnel([500, 250, 100, 40]),
        make_funnel([8, 3, 1], inferred=[0, 1, 0]),
        make_funnel([0, 0]),
    ]
    retentions = [RETENTION, make_retention([("2026-05", 40, [10, None])]), make_retention([])]
    jobs = [(funnel_chart, r) for r in funnels] + [(cohort_heatmap, r) for r in retentions]
    expected = [render(report) for render, report in jobs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(render, report) for _ in range(2) for render, report in jobs]
        results = [f.result(timeout=120) for f in futures]
    assert results == expected * 2


def test_import_is_cheap_and_rendering_avoids_pyplot():
    """The bot imports this on the request path; charts must not touch pyplot's globals."""
    code = (
        "import sys\n"
        "import journey.render.charts as c\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported at module level'\n"
        "from tests.test_charts import FUNNEL, RETENTION\n"
        "c.funnel_chart(FUNNEL); c.cohort_heatmap(RETENTION)\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
