"""Report objects as PNG charts, for Slack uploads.

Constraints that shape this module:

* The bot imports journey modules on the request path, so matplotlib (slow to
  import) is imported inside the functions, never at module level.
* Charts are rendered off the request path in worker threads. pyplot keeps
  global state (current figure, the figure-manager registry) and is not
  thread-safe, so each chart is a bare `Figure` attached to its own
  `FigureCanvasAgg`: nothing is registered globally, nothing needs
  `plt.close`, and the figure is cleared and freed once encoded. rcParams are
  only read, never changed (`rc_context` would mutate them for every thread).
* The same report must give the same bytes (caching, skipping re-uploads,
  comparing in tests): the PNG metadata carries no "Software" version and no
  timestamp, and text uses the DejaVu Sans that ships with matplotlib, so the
  output does not depend on the host's fonts.
* Text never goes through mathtext (`parse_math=False`, and no tick labels for
  names): a workspace called `$shop$` must print as is.
* Colours are the Okabe-Ito palette and the cividis colour map, both readable
  with the common colour-vision deficiencies; the highlighted stage is also
  named in words, never marked by colour alone.

Renderers read report objects only; they never query the store.
"""

from __future__ import annotations

import io
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from journey.render.format import day, owner, pct, period, versus
from journey.reports import CohortRow, FunnelReport, RetentionReport, StageStep, ValueReport

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Text
    from numpy.typing import NDArray

# 8 x 5 inches at 150 dpi: 1200 x 750 px, which Slack's preview shows at about
# 800 x 500; font sizes below are chosen to stay legible at that scale.
FIGSIZE = (8.0, 5.0)
DPI = 150
FONT = "DejaVu Sans"
NO_DATA = "No data for this period"

# Okabe-Ito blue and vermillion, with light tints for the inferred share of a bar.
BLUE = "#0072B2"
BLUE_LIGHT = "#A6CEE8"
VERMILLION = "#D55E00"
VERMILLION_LIGHT = "#F3BE97"
INK = "#222222"
MUTED = "#666666"
EMPTY_CELL = "#EDEDED"

# Margins in figure pixels that labels must stay inside.
EDGE_PX = 12
MAX_STAGE_NAME = 24


# --------------------------------------------------------------------------- shared


def _figure() -> Figure:
    """A Figure bound to its own Agg canvas: no pyplot, no global registry."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    """Encode as PNG without version or timestamp metadata, then free the figure's artists."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white", metadata={"Software": None})
    fig.clear()
    return buffer.getvalue()


def _text(target: Any, x: float, y: float, s: str, **kwargs: Any) -> Text:
    """`target.text` with the pinned font and mathtext off."""
    kwargs.setdefault("fontfamily", FONT)
    kwargs.setdefault("color", INK)
    return target.text(x, y, s, parse_math=False, **kwargs)


def _label(ax: Axes, s: str, xy: tuple[float, float], coords: Any, **kwargs: Any) -> Text:
    """Text anchored to a data/axes position, shifted by `offset` points.

    Offsets in points rather than data units keep labels the same distance from
    the cells or bars whatever the number of rows and columns.
    """
    offset = kwargs.pop("offset", (0.0, 0.0))
    kwargs.setdefault("fontfamily", FONT)
    kwargs.setdefault("color", INK)
    return ax.annotate(
        s,
        xy,
        xycoords=coords,
        xytext=offset,
        textcoords="offset points",
        parse_math=False,
        annotation_clip=False,
        **kwargs,
    )


def _right_edge(fig: Figure, artist: Text) -> float:
    return float(artist.get_window_extent(fig.canvas.get_renderer()).x1)


def _fit_width(fig: Figure, artist: Text, min_size: float = 8.0) -> None:
    """Shrink (then ellipsize) a long line, e.g. a title with a long workspace
    name, until it ends inside the figure."""
    limit = fig.bbox.width - EDGE_PX
    while _right_edge(fig, artist) > limit and artist.get_fontsize() > min_size:
        artist.set_fontsize(artist.get_fontsize() - 0.5)
    text = artist.get_text()
    right = _right_edge(fig, artist)
    if right > limit:
        # Cut in proportion first, so a 300-character name costs a few measurements.
        left = float(artist.get_window_extent(fig.canvas.get_renderer()).x0)
        text = text[: max(8, int(len(text) * (limit - left) / (right - left)))]
        artist.set_text(text.rstrip() + "…")
    while _right_edge(fig, artist) > limit and len(text) > 8:
        text = text[:-1]
        artist.set_text(text.rstrip() + "…")


def _header(fig: Figure, title: str, subtitle: str | None) -> None:
    """Title and subtitle at fixed figure positions, so every chart lines up the same."""
    title_text = _text(fig, 0.02, 0.965, title, fontsize=13, fontweight="bold", va="top")
    _fit_width(fig, title_text, min_size=10.0)
    if subtitle:
        _fit_width(fig, _text(fig, 0.02, 0.905, subtitle, fontsize=9.5, color=MUTED, va="top"))


def _no_data(title: str, subtitle: str | None) -> bytes:
    """A plain card instead of an exception: the bot can always post something."""
    fig = _figure()
    _header(fig, title, subtitle)
    _text(fig, 0.5, 0.45, NO_DATA, fontsize=16, color=MUTED, ha="center", va="center")
    return _png(fig)


def _short(name: str, limit: int = 40) -> str:
    """A workspace or channel name cut to fit a title line beside the period."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _count(n: int) -> str:
    return f"{n:,}"


def _hide_frame(ax: Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


# --------------------------------------------------------------------------- funnel


def _funnel_title(report: FunnelReport) -> str:
    title = f"Funnel · {_short(owner(report), 60)} · {period(report.period)}"
    if report.channel_filter:
        title += f" · channel {_short(report.channel_filter, 30)}"
    return title


def _drop_index(report: FunnelReport) -> int | None:
    """Position of the stage the biggest drop-off leads *to*: the bar to highlight."""
    drop = report.biggest_drop
    if drop is None:
        return None
    for i in range(1, len(report.stages)):
        if (
            report.stages[i].stage == drop.to_stage
            and report.stages[i - 1].stage == drop.from_stage
        ):
            return i
    return None


def _stage_name(stage: str) -> str:
    name = stage.replace("_", " ")
    return name if len(name) <= MAX_STAGE_NAME else name[: MAX_STAGE_NAME - 1] + "…"


def _stage_labels(step: StageStep, first: bool, highlighted: bool) -> tuple[str, str | None]:
    """First line: count and share of entered; second: conversion from the previous stage."""
    head = f"{_count(step.reached)}  ·  {pct(step.overall.value)} of entered"
    if first or step.step is None:
        return head, None
    line = f"{pct(step.step.value)} of previous stage"
    if highlighted:
        line += "  ·  biggest drop-off"
    return head, line


def funnel_chart(report: FunnelReport) -> bytes:
    """PNG of the funnel: one horizontal bar per stage, first stage on top.

    Each bar carries its count, its share of all entered customers and the
    conversion from the previous stage. The step with the lowest conversion
    (`report.biggest_drop`) is drawn in vermillion and named in its label. The
    part of a bar counted only because customers reached a later stage
    (`StageStep.inferred`) is a lighter tint, so nobody reads it as recorded
    events. An empty period gives a "No data for this period" card.
    """
    title = _funnel_title(report)
    if report.entered <= 0 or not report.stages or max(s.reached for s in report.stages) <= 0:
        return _no_data(title, None)

    from matplotlib.patches import Patch

    stages = report.stages
    n = len(stages)
    drop_at = _drop_index(report)

    fig = _figure()
    _header(
        fig,
        title,
        f"{_count(report.entered)} customers entered "
        f"({versus(report.period)}: {_count(report.previous_entered)})",
    )
    longest = max(len(_stage_name(s.stage)) for s in stages)
    left = min(0.3, max(0.14, 0.045 + 0.0105 * longest))
    bottom, top = 0.11, 0.84
    ax = fig.add_axes((left, bottom, 0.98 - left, top - bottom))
    _hide_frame(ax)

    widest = max(s.reached for s in stages)
    # The longest bar takes 55% of the width, leaving the rest for its labels.
    ax.set_xlim(0, widest / 0.55)
    ax.set_ylim(n - 0.5, -0.5)
    bar_height = 0.62
    head_size, line_size = (9.5, 8.5) if n <= 6 else (8.5, 7.5)
    # Two lines centred on the bar, a fixed distance apart in points.
    row_pt = (top - bottom) * FIGSIZE[1] * 72 / n
    gap = min(7.0, row_pt * 0.2)

    for i, step in enumerate(stages):
        highlighted = i == drop_at
        dark, light = (VERMILLION, VERMILLION_LIGHT) if highlighted else (BLUE, BLUE_LIGHT)
        inferred = min(max(step.inferred, 0), step.reached)
        recorded = step.reached - inferred
        ax.barh(i, recorded, height=bar_height, color=dark, linewidth=0)
        if inferred:
            ax.barh(i, inferred, left=recorded, height=bar_height, color=light, linewidth=0)

        _label(
            ax,
            _stage_name(step.stage),
            (0, i),
            ("axes fraction", "data"),
            offset=(-8, 0),
            fontsize=10,
            ha="right",
            va="center",
            color=VERMILLION if highlighted else INK,
            fontweight="bold" if highlighted else "normal",
        )

        head, line = _stage_labels(step, i == 0, highlighted)
        labels = [
            _label(
                ax,
                head,
                (step.reached, i),
                "data",
                offset=(5, gap if line else 0),
                fontsize=head_size,
                fontweight="bold",
                va="center",
            )
        ]
        if line:
            labels.append(
                _label(
                    ax,
                    line,
                    (step.reached, i),
                    "data",
                    offset=(5, -gap),
                    fontsize=line_size,
                    color=VERMILLION if highlighted else INK,
                    va="center",
                )
            )
        # A nearly full bar can push its labels off the chart: put them inside
        # it, at the end of the dark (recorded) part so white text stays readable.
        if any(_right_edge(fig, t) > fig.bbox.width - EDGE_PX for t in labels):
            for t in labels:
                t.xy = (max(recorded, step.reached * 0.5), i)
                t.set_horizontalalignment("right")
                t.set_color("white")
                t.xyann = (-5, t.xyann[1])

    handles = [Patch(color=BLUE, label="recorded")]
    if any(s.inferred > 0 for s in stages):
        handles.append(Patch(color=BLUE_LIGHT, label="inferred (reached a later stage)"))
    if drop_at is not None:
        handles.append(Patch(color=VERMILLION, label="biggest drop-off"))
    fig.legend(
        handles=handles,
        loc="lower left",
        bbox_to_anchor=(0.02, 0.01),
        ncols=len(handles),
        frameon=False,
        prop={"family": FONT, "size": 8.5},
        handlelength=1.2,
        columnspacing=1.6,
    )
    return _png(fig)


# --------------------------------------------------------------------------- retention


def _cell_pct(value: float, digits: int) -> str:
    """A percentage that never rounds a small non-zero share down to "0%"."""
    floor = 0.5 / 10 ** (digits + 2)
    if 0 < value < floor:
        return f"<{pct(2 * floor, digits)}"
    return pct(value, digits)


def _ink_on(rgba: tuple[float, float, float, float]) -> str:
    """Dark or white text, whichever reads better on the cell colour."""
    r, g, b, _ = rgba
    return INK if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "white"


def _matrix(cohorts: list[CohortRow]) -> NDArray[Any]:
    """Retained shares as a float matrix, NaN where the month has not happened yet.

    Trailing columns blank for every cohort are dropped, so a young shop gets a
    compact chart; at least one column is kept.
    """
    import numpy as np

    width = max(1, *(len(c.retained) for c in cohorts))
    values = np.full((len(cohorts), width), np.nan)
    for r, cohort in enumerate(cohorts):
        for k, rate in enumerate(cohort.retained):
            if rate is not None and rate.value is not None:
                values[r, k] = rate.value
    seen = np.nonzero(~np.isnan(values).all(axis=0))[0]
    return values[:, : int(seen.max()) + 1 if seen.size else 1]


def cohort_heatmap(report: RetentionReport) -> bytes:
    """PNG heatmap of monthly cohort retention.

    Rows are first-purchase months with their buyer count, columns months
    +1..+N after it; each cell is the share of the cohort that bought in that
    month, printed (with the buyer count when the cells are big enough). Months
    that have not happened yet (None) stay blank grey, never 0%: "not yet" and
    "nobody came back" mean different things. The colour scale runs from 0 to
    the highest observed share, because repeat rates are often 5-30% and a fixed
    0-100% scale would paint them all the same. A report without cohorts gives
    a "No data for this period" card.
    """
    last_day = day(report.period.end - timedelta(seconds=1))
    title = f"Retention by first-purchase month · {_short(owner(report), 60)}"
    subtitle = f"Share of each month's new buyers who bought again N months later, as of {last_day}"
    cohorts = [c for c in report.cohorts if c.customers > 0]
    if not cohorts:
        return _no_data(title, period(report.period))

    import numpy as np
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    values = _matrix(cohorts)
    rows, columns = values.shape
    # The month under way: its cells count a few days only, so they are drawn hatched on
    # grey with their share, and kept out of the colour scale (a 2% "so far" is no collapse).
    partial = np.zeros(values.shape, dtype=bool)
    for r, cohort in enumerate(cohorts):
        if cohort.partial is not None and cohort.partial < columns:
            partial[r, cohort.partial] = True
    whole = np.where(partial, np.nan, values)
    observed = bool((~np.isnan(whole)).any())
    norm = Normalize(vmin=0.0, vmax=max(float(np.nanmax(whole)) if observed else 0.0, 0.05))
    cmap = colormaps["cividis"].with_extremes(bad=EMPTY_CELL)

    fig = _figure()
    _header(fig, title, subtitle)
    ax = fig.add_axes((0.19, 0.1, 0.7, 0.7))
    image = ax.imshow(
        np.ma.masked_invalid(whole), cmap=cmap, norm=norm, aspect="auto", interpolation="nearest"
    )
    from matplotlib.patches import Rectangle

    for r, k in zip(*np.nonzero(partial), strict=True):
        ax.add_patch(
            Rectangle(
                (k - 0.5, r - 0.5),
                1,
                1,
                facecolor=EMPTY_CELL,
                edgecolor="#BBBBBB",
                hatch="///",
                linewidth=0,
            )
        )
    _hide_frame(ax)
    # White lines between cells keep months apart at preview size.
    ax.set_xticks(np.arange(-0.5, columns, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, rows, 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="both", length=0)

    digits = 1 if columns <= 6 else 0
    cell_size = 9.0 if rows <= 8 and columns <= 8 else 7.5
    with_counts = rows <= 6 and columns <= 8
    for r, cohort in enumerate(cohorts):
        for k in range(columns):
            if np.isnan(values[r, k]):
                continue
            value = float(values[r, k])
            ink = INK if partial[r, k] else _ink_on(cmap(norm(value)))
            share = _cell_pct(value, digits) + ("*" if partial[r, k] else "")
            rate = cohort.retained[k]
            if with_counts and rate is not None:
                _label(
                    ax,
                    share,
                    (k, r),
                    "data",
                    offset=(0, 5),
                    fontsize=cell_size,
                    ha="center",
                    va="center",
                    color=ink,
                )
                _label(
                    ax,
                    f"({_count(rate.numerator)})",
                    (k, r),
                    "data",
                    offset=(0, -6),
                    fontsize=cell_size - 1.5,
                    ha="center",
                    va="center",
                    color=ink,
                )
            else:
                _label(
                    ax,
                    share,
                    (k, r),
                    "data",
                    fontsize=cell_size,
                    ha="center",
                    va="center",
                    color=ink,
                )

    label_size = 9.0 if rows <= 8 else 8.0
    for k in range(columns):
        _label(
            ax,
            f"+{k + 1}",
            (k, 1),
            ("data", "axes fraction"),
            offset=(0, 4),
            fontsize=label_size,
            ha="center",
            va="bottom",
        )
    _label(
        ax,
        "first month (buyers)",
        (0, 1),
        "axes fraction",
        offset=(-8, 4),
        fontsize=8.5,
        color=MUTED,
        ha="right",
        va="bottom",
    )
    for r, cohort in enumerate(cohorts):
        _label(
            ax,
            f"{cohort.month}  ({_count(cohort.customers)})",
            (0, r),
            ("axes fraction", "data"),
            offset=(-8, 0),
            fontsize=label_size,
            ha="right",
            va="center",
        )
    caption = "Columns: months after the first purchase · grey: month not reached yet"
    if with_counts and observed:
        caption += " · (n) in a cell: buyers who came back"
    if partial.any() and report.month_so_far is not None:
        month, days, total = report.month_so_far
        caption += f" · hatched*: {month} so far ({days} of {total} days)"
    _fit_width(fig, _text(fig, 0.19, 0.03, caption, fontsize=8, color=MUTED, va="bottom"))

    if observed:
        cax = fig.add_axes((0.91, 0.1, 0.018, 0.7))
        colorbar = fig.colorbar(image, cax=cax)
        colorbar.outline.set_visible(False)
        ticks = [t for t in colorbar.get_ticks() if 0 <= t <= norm.vmax]
        colorbar.set_ticks(ticks, labels=[pct(t, 0) for t in ticks])
        colorbar.ax.tick_params(labelsize=8, length=2)
        for tick in colorbar.ax.get_yticklabels():
            tick.set_fontfamily(FONT)
    else:
        _label(
            ax,
            "No cohort has reached its first month yet",
            (0.5, 0.5),
            "axes fraction",
            fontsize=11,
            color=MUTED,
            ha="center",
            va="center",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 6},
        )
    return _png(fig)


# --------------------------------------------------------------------------- value


def value_chart(report: ValueReport) -> bytes:
    """PNG of what a customer from each acquisition channel is worth: one bar per channel
    (12-month value per acquired customer) with its 95% interval as a whisker, so a reader
    sees at a glance which differences are real. The clearly best channel is drawn in
    vermillion; without the models, a card says why."""
    title = f"Value per customer by channel · {_short(owner(report))}"
    subtitle = f"Expected spend in the next {report.horizon_months} months, per customer acquired"
    rows = [c for c in report.channels if c.value_per_customer_cents is not None]
    if report.method != "models" or not rows:
        return _no_data(title, report.fallback_reason or subtitle)

    fig = _figure()
    _header(fig, title, subtitle)
    n = len(rows)
    ax = fig.add_axes((0.22, 0.11, 0.74, 0.73))
    for spine in ("top", "right", "left"):
        ax.spines[spine].set_visible(False)
    values = [(c.value_per_customer_cents or 0) / 100 for c in rows]
    lows = [
        v - (c.value_per_customer_interval or (0, 0))[0] / 100
        for v, c in zip(values, rows, strict=True)
    ]
    highs = [
        (c.value_per_customer_interval or (0, 0))[1] / 100 - v
        for v, c in zip(values, rows, strict=True)
    ]
    colours = [VERMILLION if c.channel == report.best_channel else BLUE for c in rows]
    ax.barh(range(n), values, color=colours, height=0.6, linewidth=0)
    ax.errorbar(values, range(n), xerr=[lows, highs], fmt="none", ecolor=INK, capsize=4, lw=1)
    ax.set_yticks(range(n), [_short(c.channel, 24) for c in rows], fontsize=9, color=INK)
    ax.set_ylim(n - 0.5, -0.5)
    ax.tick_params(axis="x", labelsize=8, colors=MUTED)
    ax.set_xlabel(f"{report.currency} per customer (bars: 95% range)", fontsize=8, color=MUTED)
    return _png(fig)


# --------------------------------------------------------------------------- which chart


def chart_for(report: object) -> tuple[bytes, str] | None:
    """The chart Slack shows under a report (funnel bars, cohort heatmap, value per
    channel), for the CLI's --chart and the console; None when the report has none."""
    from journey.reports import FunnelReport, RetentionReport, ValueReport

    if isinstance(report, FunnelReport) and report.entered:
        return funnel_chart(report), "funnel"
    if isinstance(report, RetentionReport) and report.cohorts:
        return cohort_heatmap(report), "cohort retention"
    if isinstance(report, ValueReport) and report.method == "models":
        return value_chart(report), "value per channel"
    return None
