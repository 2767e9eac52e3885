"""Small charts drawn by the templates as inline SVG and HTML (no JavaScript, nothing
fetched): the geometry is computed here, the templates only place it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: Height of the plotting area, in SVG units (pixels).
PLOT_HEIGHT = 120
#: Room for the y labels on the left and the x labels below.
LEFT_MARGIN = 36
BOTTOM_MARGIN = 18


@dataclass(frozen=True)
class Segment:
    key: str
    value: int
    y: float
    height: float


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    #: Bottom to top, in the order of the chart's keys; empty values are left out.
    segments: list[Segment]
    #: The bucket in words ("Mon 24 Nov"), its tooltip and, for some bars, an x label.
    title: str
    label: str | None
    label_x: float


@dataclass(frozen=True)
class StackedBarChart:
    width: float
    height: float
    plot_top: float
    plot_bottom: float
    left: float
    bars: list[Bar]
    #: The y axis: the largest stacked total (at least 1) and the y of its line.
    maximum: int
    keys: list[str]


def stacked_bar_chart(
    buckets: Sequence[object],
    *,
    keys: Sequence[str],
    title: Callable[[object], str],
    label: Callable[[int, object], str | None],
    slot_width: int = 14,
) -> StackedBarChart:
    """One bar per bucket (oldest left, `slot_width` pixels each), stacking the bucket's
    attributes named `keys`. `title(bucket)` is a bar's tooltip, `label(index, bucket)`
    its x label (or None)."""
    totals = [sum(getattr(bucket, key) for key in keys) for bucket in buckets]
    maximum = max([1, *totals])
    bars = []
    for index, bucket in enumerate(buckets):
        x = LEFT_MARGIN + index * slot_width
        segments, bottom = [], float(PLOT_HEIGHT)
        for key in keys:
            value = getattr(bucket, key)
            if value:
                height = PLOT_HEIGHT * value / maximum
                bottom -= height
                segments.append(Segment(key=key, value=value, y=bottom, height=height))
        bars.append(
            Bar(
                x=x + slot_width * 0.1,
                width=slot_width * 0.8,
                segments=segments,
                title=title(bucket),
                label=label(index, bucket),
                label_x=x + slot_width / 2,
            )
        )
    return StackedBarChart(
        width=LEFT_MARGIN + len(buckets) * slot_width + 4,
        height=PLOT_HEIGHT + BOTTOM_MARGIN,
        plot_top=0,
        plot_bottom=PLOT_HEIGHT,
        left=LEFT_MARGIN,
        bars=bars,
        maximum=maximum,
        keys=list(keys),
    )


def heat_style(score: float) -> str:
    """A heat-map cell's background for a cosine similarity: the more alike, the redder
    (squared, so that the usual spread of different speakers, 0.3-0.7, stays tellable)."""
    alpha = min(max(score, 0.0), 1.0) ** 2 * 0.9
    return f"background-color: rgba(205, 45, 45, {alpha:.2f})"
