"""Pictures of a pipeline as SVG text: its graph, and a timeline (Gantt chart) of its steps.

Hand-made SVG, so no plotting library is needed and the same strings serve
the live panel (an ipywidgets HTML widget), the tutorial's notebooks and the
README's figures. Pure: strings in, a string out.

- `dag_svg`: the graph, left to right, one column per depth (sources
  first); a depth with many steps wraps into several columns. Boxes are
  coloured by a state word (`STATE_COLOURS`: the status model's phases and
  the scheduler's states share one palette).
- `gantt_svg`: one row per label, any number of bars per row, time ticks;
  `timeline_svg` is its simplest form (one bar per row).
- `legend_svg`: colour swatches with their names.

The layout idea (columns by longest path from a source) is the classic
layered drawing of Sugiyama et al. (1981), without its crossing reduction.
"""

from __future__ import annotations

import html
import itertools
import math
from functools import lru_cache
from typing import Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

# Fills for boxes and bars, by state word: the status model's phases
# (orchestrator.status.model.StepPhase values) and the scheduler's states.
STATE_COLOURS: Dict[str, str] = {
    "pending": "#e5e7eb",
    "waiting": "#f3f4f6",
    "starting": "#bae6fd",
    "running": "#93c5fd",
    "retrying": "#fde68a",
    "retry_wait": "#fde68a",
    "stopping": "#fdba74",
    "completed": "#86efac",
    "failed": "#fca5a5",
    "skipped": "#d1d5db",
    "stopped": "#d8b4fe",
    "cached": "#99f6e4",
}
# Outlines (and emphasis) for the same words: darker shades of the fills.
STATE_STROKES: Dict[str, str] = {
    "pending": "#6b7280",
    "waiting": "#9ca3af",
    "starting": "#0284c7",
    "running": "#1d4ed8",
    "retrying": "#b45309",
    "retry_wait": "#b45309",
    "stopping": "#c2410c",
    "completed": "#15803d",
    "failed": "#b91c1c",
    "skipped": "#6b7280",
    "stopped": "#7e22ce",
    "cached": "#0f766e",
}
_DEFAULT_FILL, _DEFAULT_STROKE = "#ffffff", "#333333"
# Ids inside one page must differ between drawings: an arrowhead marker is
# found by id in the whole document, and a first drawing that is hidden (a
# panel's tab not shown) would take every other drawing's arrowheads with it.
_DRAWING_NUMBERS = itertools.count(1)


def new_id_prefix(kind: str = "md") -> str:
    """An id prefix no other drawing of this process uses ("md7-")."""
    return f"{kind}{next(_DRAWING_NUMBERS)}-"
FONT = 'font-family="sans-serif" font-size="12"'


def esc(text: object) -> str:
    """Text safe inside SVG/HTML elements and attributes."""
    return html.escape(str(text), quote=True)


def short_label(text: str, chars: int) -> str:
    """`text` cut to `chars` characters, with an ellipsis when cut."""
    return text if len(text) <= chars else text[: max(1, chars - 1)] + "…"


# --------------------------------------------------------------------------
# The graph
# --------------------------------------------------------------------------


def dag_levels(upstreams: Mapping[str, Iterable[str]]) -> Dict[str, int]:
    """Each step's depth (0 for sources), from the package's own scheduler."""
    from orchestrator.running.scheduler import DagScheduler

    layers = DagScheduler(upstreams, max_parallelism=1).levels()
    return {step: depth for depth, layer in enumerate(layers) for step in layer}


class DagLayout(NamedTuple):
    """Where `dag_svg` puts each box: top-left corners, and the drawing's size."""

    position: Dict[str, Tuple[float, float]]
    width: float
    height: float
    box_width: int
    box_height: int


def dag_layout(upstreams: Mapping[str, Iterable[str]], box_width: int = 130,
               box_height: int = 34, max_rows: int = 12) -> DagLayout:
    """Place every step: one column per depth, at most `max_rows` boxes per column.

    A depth with more steps (a wide fan-out) wraps into several columns
    next to each other, so a 100-step pipeline stays a picture, not a
    ribbon. Computed once per graph shape (cached), since a live view
    redraws the same graph many times.
    """
    key = tuple((step, tuple(ups)) for step, ups in upstreams.items())
    return _layout(key, box_width, box_height, max_rows)


@lru_cache(maxsize=32)
def _layout(key: Tuple[Tuple[str, Tuple[str, ...]], ...], box_width: int, box_height: int,
            max_rows: int) -> DagLayout:
    upstreams = {step: [up for up in ups if up != step] for step, ups in key}
    known = set(upstreams)
    levels = dag_levels({step: [up for up in ups if up in known]
                         for step, ups in upstreams.items()})
    by_level: Dict[int, List[str]] = {}
    for step in upstreams:  # pipeline order within a level
        by_level.setdefault(levels[step], []).append(step)
    columns: List[List[str]] = []
    wrapped_after: List[bool] = []  # the column is followed by another of the same depth
    for depth in sorted(by_level):
        steps = by_level[depth]
        chunks = [steps[i:i + max_rows] for i in range(0, len(steps), max_rows)]
        for index, chunk in enumerate(chunks):
            columns.append(chunk)
            wrapped_after.append(index < len(chunks) - 1)
    gap_x, wrap_gap_x, gap_y, margin = 50, 14, 12, 10
    tallest = max((len(c) for c in columns), default=1)
    height = margin * 2 + tallest * box_height + (tallest - 1) * gap_y
    position: Dict[str, Tuple[float, float]] = {}
    x = float(margin)
    for index, steps in enumerate(columns):
        column_height = len(steps) * box_height + (len(steps) - 1) * gap_y
        top = (height - column_height) / 2
        for row, step in enumerate(steps):
            position[step] = (x, top + row * (box_height + gap_y))
        x += box_width + (wrap_gap_x if wrapped_after[index] else gap_x)
    width = x - gap_x + margin if columns else 2 * margin
    return DagLayout(position, width, height, box_width, box_height)


def _column_tops(layout: DagLayout) -> Dict[float, List[float]]:
    """Each column's left edge -> the tops of its boxes, top to bottom."""
    tops: Dict[float, List[float]] = {}
    for x, y in layout.position.values():
        tops.setdefault(x, []).append(y)
    return {x: sorted(ys) for x, ys in sorted(tops.items())}


def edge_route(layout: DagLayout, up: str, step: str,
               columns: Optional[Mapping[float, Sequence[float]]] = None,
               ) -> List[Tuple[float, float]]:
    """The points of the edge from `up`'s box to `step`'s box, crossing no other box.

    Next-door columns get a straight line. An edge that skips columns (or
    a wrapped column of the same depth) leaves its box sideways into the
    gap after it, runs along a lane that is free in every column between
    (a gap between two boxes, or the margin above them all), and comes
    back down in the gap before its target, so it never passes behind a
    box and looks like an edge into that box.
    """
    position, width, height = layout.position, layout.box_width, layout.box_height
    half = height / 2
    x1, y1 = position[up]
    x2, y2 = position[step]
    start, end = (x1 + width, y1 + half), (x2, y2 + half)
    columns = _column_tops(layout) if columns is None else columns
    between = [x for x in columns if x1 + width < x < x2]
    if not between:
        return [start, end]
    lane = _free_lane([columns[x] for x in between], height, (start[1] + end[1]) / 2,
                      layout.height)
    gap_after = between[0] - (x1 + width)
    gap_before = x2 - (between[-1] + width)
    return [start,
            (start[0] + gap_after * 0.3, start[1]),
            (start[0] + gap_after * 0.7, lane),
            (x2 - gap_before * 0.7, lane),
            (x2 - gap_before * 0.3, end[1]),
            end]


@lru_cache(maxsize=32)
def _edge_paths(key: Tuple[Tuple[str, Tuple[str, ...]], ...], box_width: int, box_height: int,
                max_rows: int) -> Tuple[Tuple[str, str, str], ...]:
    """Every edge's SVG path data, (up, step, d), computed once per graph shape
    (a live view redraws the same graph many times)."""
    layout = _layout(key, box_width, box_height, max_rows)
    columns = _column_tops(layout)
    found = []
    for step, ups in key:
        for up in ups:
            if up not in layout.position or up == step:
                continue
            points = edge_route(layout, up, step, columns)
            found.append((up, step, "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in points)))
    return tuple(found)


def _free_lane(columns: Iterable[Sequence[float]], box_height: float, wanted: float,
               drawing_height: float) -> float:
    """A height that is in no box of any of `columns` (each: its boxes' tops), near `wanted`.

    Each column is free above its first box, between two boxes and below
    its last one; the lane is taken from where all columns are free, kept
    2 px off any box where there is room. The drawing's margin above every
    box is always free, so there is always a lane.
    """
    free = [(0.0, drawing_height)]
    for tops in columns:
        gaps = [(0.0, tops[0])]
        gaps += [(a + box_height, b) for a, b in zip(tops, tops[1:])]
        gaps.append((tops[-1] + box_height, drawing_height))
        free = [(max(lo, g_lo), min(hi, g_hi)) for lo, hi in free for g_lo, g_hi in gaps
                if max(lo, g_lo) < min(hi, g_hi)]
    lanes = [min(max(wanted, lo + 2.0), hi - 2.0) if hi - lo > 4.0 else (lo + hi) / 2
             for lo, hi in free]
    return min(lanes, key=lambda y: abs(y - wanted), default=wanted)


def dag_svg(upstreams: Mapping[str, Iterable[str]],
            states: Optional[Mapping[str, str]] = None,
            box_width: int = 130, box_height: int = 34, *,
            titles: Optional[Mapping[str, str]] = None,
            notes: Optional[Mapping[str, str]] = None,
            max_rows: int = 12, css_class: str = "", id_prefix: Optional[str] = None,
            fit_width: bool = False) -> str:
    """An SVG drawing of a pipeline graph, left to right, one column per depth.

    Args:
        upstreams: step name -> the steps it waits for (pipeline order).
        states: optional step name -> state word; colours the box (see
            `STATE_COLOURS`) and is written in the box's `data-state`.
        titles: optional step name -> tooltip text (default "step: state").
        notes: optional step name -> a short second line in the box
            ("attempt 2", "out of memory").
        max_rows: boxes per column before a depth wraps into another column.
        css_class: a class for the `<svg>` element.
        id_prefix: starts every id in the drawing (its arrowhead marker);
            by default one no other drawing of this process has (`new_id_prefix`).
        fit_width: scale down to the width of its container (never up, and
            not below 60 % of it) instead of keeping its natural size.

    Returns:
        The `<svg>` element as text; every box is a `<g data-step=... data-state=...>`,
        every edge a `<path data-edge="up->step">`.
    """
    layout = dag_layout(upstreams, box_width, box_height, max_rows)
    position = layout.position
    states = states or {}
    prefix = new_id_prefix("dag") if id_prefix is None else id_prefix
    arrow = f"{prefix}arrow"
    klass = f' class="{esc(css_class)}"' if css_class else ""
    # (scaled down at most to 60 %, where 12 px text is still read: a narrower
    # place scrolls it instead)
    size = (f'width="100%" style="max-width:{layout.width:.0f}px;'
            f'min-width:{min(layout.width, max(240.0, 0.6 * layout.width)):.0f}px;height:auto"'
            if fit_width
            else f'width="{layout.width:.0f}" height="{layout.height:.0f}"')
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg"{klass} {size} '
        f'viewBox="0 0 {layout.width:.0f} {layout.height:.0f}" {FONT}>',
        f'<defs><marker id="{esc(arrow)}" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#555"/></marker></defs>',
    ]
    half = box_height / 2
    key = tuple((step, tuple(ups)) for step, ups in upstreams.items())
    for up, step, path in _edge_paths(key, box_width, box_height, max_rows):
        parts.append(
            f'<path d="{path}" fill="none" stroke="#555" stroke-opacity="0.6" '
            f'stroke-linejoin="round" data-edge="{esc(up)}->{esc(step)}" '
            f'marker-end="url(#{esc(arrow)})"/>'
        )
    chars = max(4, int(box_width / 7.2))
    for step, (x, y) in position.items():
        state = states.get(step)
        fill = STATE_COLOURS.get(str(state), _DEFAULT_FILL) if state else _DEFAULT_FILL
        stroke = STATE_STROKES.get(str(state), _DEFAULT_STROKE) if state else _DEFAULT_STROKE
        title = (titles or {}).get(step) or (f"{step}: {state}" if state else step)
        note = (notes or {}).get(step, "")
        dashed = ' stroke-dasharray="4 3"' if state in ("skipped", "waiting") else ""
        width = "2.5" if state in ("running", "failed") else "1.2"
        text_y = y + half + (-2 if note else 4)
        parts.append(
            f'<g data-step="{esc(step)}" data-state="{esc(state or "")}"><title>{esc(title)}'
            f'</title><rect x="{x:.1f}" y="{y:.1f}" width="{box_width}" height="{box_height}" '
            f'rx="6" fill="{fill}" stroke="{stroke}" stroke-width="{width}"{dashed}/>'
            f'<text x="{x + box_width / 2:.1f}" y="{text_y:.1f}" text-anchor="middle">'
            f'{esc(short_label(step, chars))}</text>'
        )
        if note:
            parts.append(
                f'<text x="{x + box_width / 2:.1f}" y="{y + half + 11:.1f}" '
                f'text-anchor="middle" font-size="10" fill="{stroke}">'
                f'{esc(short_label(note, chars + 2))}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def legend_svg(states: Sequence[str], names: Optional[Mapping[str, str]] = None) -> str:
    """A row of colour swatches, one per state word, each with its name."""
    parts, x = [], 4.0
    for state in states:
        name = (names or {}).get(state, state)
        parts.append(
            f'<g data-legend="{esc(state)}"><rect x="{x:.0f}" y="3" width="12" height="12" '
            f'rx="3" fill="{STATE_COLOURS.get(state, _DEFAULT_FILL)}" '
            f'stroke="{STATE_STROKES.get(state, _DEFAULT_STROKE)}"/>'
            f'<text x="{x + 16:.0f}" y="13" font-size="11">{esc(name)}</text></g>')
        x += 16 + 6.3 * len(name) + 14
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{x:.0f}" height="18" '
            f'viewBox="0 0 {x:.0f} 18" {FONT}>' + "".join(parts) + "</svg>")


# --------------------------------------------------------------------------
# The timeline
# --------------------------------------------------------------------------


def nice_ticks(span: float, most: int = 8) -> List[float]:
    """Round tick positions from 0 to `span` seconds: at most `most`+1 of them.

    Steps of 1, 2 or 5 times a power of ten, or whole minutes and hours
    once the span is long (the usual "nice numbers" of axis labelling).
    """
    if span <= 0:
        return [0.0]
    raw = span / max(1, most)
    candidates = [m * 10 ** e for e in range(-2, 2) for m in (1, 2, 5)] + [30]
    candidates += [60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400]
    candidates.sort()
    step = min((c for c in candidates if c >= raw), default=raw)
    count = int(math.floor(span / step + 1e-9))
    return [round(i * step, 6) for i in range(count + 1)]


def format_seconds(seconds: float) -> str:
    """An axis label: '0 s', '2.5 s', '150 s', '5 min', '1 h 30 min'."""
    if seconds < 120 or seconds % 60:
        return f"{seconds:g} s"
    if seconds < 7200:
        return f"{seconds / 60:g} min"
    hours, minutes = divmod(int(round(seconds / 60)), 60)
    return f"{hours} h" + (f" {minutes} min" if minutes else "")


class GanttBar(NamedTuple):
    """One bar: `start` to `end` seconds from the chart's origin."""

    start: float
    end: float
    state: str = ""  # colours the bar (STATE_COLOURS)
    title: str = ""  # tooltip
    live: bool = False  # still growing: drawn with an open (dashed) end
    attrs: Tuple[Tuple[str, str], ...] = ()  # extra data-* attributes
    waiting_until: Optional[float] = None  # drawn pale from `start` to here (a wait)
    style: Optional["BarStyle"] = None  # its own look instead of the state's colours


class BarStyle(NamedTuple):
    """How a kind of bar looks: fill, outline, its height as a share of the row, a dash."""

    fill: str
    stroke: str
    height: float = 1.0
    dash: str = ""


def swatch_legend_svg(items: Sequence[Tuple[str, str, BarStyle]]) -> str:
    """A row of swatches drawn as the bars they name: (key, name, style) each."""
    parts, x = [], 4.0
    for key, name, style in items:
        tall = max(3.0, 12 * style.height)
        dash = f' stroke-dasharray="{style.dash}"' if style.dash else ""
        parts.append(
            f'<g data-legend="{esc(key)}"><rect x="{x:.0f}" y="{9 - tall / 2:.1f}" width="18" '
            f'height="{tall:.1f}" rx="2" fill="{style.fill}" stroke="{style.stroke}"{dash}/>'
            f'<text x="{x + 22:.0f}" y="13" font-size="11">{esc(name)}</text></g>')
        x += 22 + 6.3 * len(name) + 14
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{x:.0f}" height="18" '
            f'viewBox="0 0 {x:.0f} 18" {FONT}>' + "".join(parts) + "</svg>")


def gantt_labels_svg(labels: Sequence[str], *, row_height: int = 22, label_width: int = 130,
                     title: str = "", css_class: str = "") -> str:
    """The label column of a `gantt_svg(..., labels=False)` chart, row for row.

    Kept apart so that a chart wider than its place can scroll while its
    labels stay (a sticky column next to it).
    """
    margin, top = 10, (24 if title else 6)
    height = top + len(labels) * row_height + 4 + 22
    chars = max(4, int((label_width - margin) / 7.2))
    klass = f' class="{esc(css_class)}"' if css_class else ""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg"{klass} width="{label_width}" '
             f'height="{height}" viewBox="0 0 {label_width} {height}" {FONT}>']
    for index, label in enumerate(labels):
        y = top + index * row_height
        if index % 2:
            parts.append(f'<rect x="0" y="{y}" width="{label_width}" height="{row_height}" '
                         'fill="#f9fafb"/>')
        parts.append(f'<text x="{margin}" y="{y + row_height - 7}" data-label="{esc(label)}">'
                     f'{esc(short_label(label, chars))}<title>{esc(label)}</title></text>')
    parts.append("</svg>")
    return "".join(parts)


def gantt_svg(rows: Sequence[Tuple[str, Sequence[GanttBar]]], *, until: Optional[float] = None,
              width: int = 640, row_height: int = 22, label_width: int = 130,
              title: str = "", end_label: bool = False, css_class: str = "",
              labels: bool = True) -> str:
    """An SVG Gantt chart: one row per label, its bars, and a time axis with ticks.

    Args:
        rows: (label, bars) per row, top to bottom; a row may have no bar.
        until: where the time axis ends (seconds); by default the last end.
        end_label: also label the axis's end with its exact value.
        labels: draw the labels; without, the chart starts at its time axis
            (`gantt_labels_svg` draws them apart).

    Returns:
        The `<svg>` element as text; each row is a `<g data-row=...>`, each
        bar a `<rect data-start=... data-end=... data-state=...>`.
    """
    margin, top = 10, (24 if title else 6)
    if not labels:
        label_width = 0
    end = max([until or 0.0] + [bar.end for _, bars in rows for bar in bars]) or 1.0
    plot = width - label_width - 2 * margin
    scale = plot / end
    axis_y = top + len(rows) * row_height + 4
    height = axis_y + 22
    x0 = margin + label_width
    klass = f' class="{esc(css_class)}"' if css_class else ""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg"{klass} width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" {FONT}>']
    if title:
        parts.append(f'<text x="{margin}" y="16" font-weight="bold">{esc(title)}</text>')
    ticks = nice_ticks(end, most=max(2, min(10, plot // 70)))
    for tick in ticks:
        x = x0 + tick * scale
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{axis_y + 4}" '
                     'stroke="#e5e7eb"/>')
        if not (end_label and x > x0 + plot - 40):
            parts.append(f'<text x="{x:.1f}" y="{axis_y + 17}" text-anchor="middle" '
                         f'font-size="11" fill="#555" data-tick="{tick:g}">'
                         f'{esc(format_seconds(tick))}</text>')
    chars = max(4, int(label_width / 7.2))
    for index, (label, bars) in enumerate(rows):
        y = top + index * row_height
        if index % 2:
            parts.append(f'<rect x="{margin}" y="{y}" width="{width - 2 * margin}" '
                         f'height="{row_height}" fill="#f9fafb"/>')
        parts.append(f'<g data-row="{esc(label)}">')
        if labels:
            parts.append(f'<text x="{margin}" y="{y + row_height - 7}">'
                         f'{esc(short_label(label, chars))}<title>{esc(label)}</title></text>')
        for bar in bars:
            x = x0 + max(0.0, bar.start) * scale
            length = max(2.0, (bar.end - bar.start) * scale)
            state = bar.state
            fill = STATE_COLOURS.get(state, "#60a5fa")
            stroke = STATE_STROKES.get(state, "#1d4ed8")
            extra = "".join(f' data-{esc(k)}="{esc(v)}"' for k, v in bar.attrs)
            dashed = ' stroke-dasharray="3 2"' if bar.live else ""
            if bar.waiting_until is not None and bar.start < bar.waiting_until < bar.end:
                waited = max(1.0, (bar.waiting_until - bar.start) * scale)
                parts.append(
                    f'<rect x="{x:.1f}" y="{y + row_height / 2 - 2:.1f}" width="{waited:.1f}" '
                    f'height="4" fill="{stroke}" fill-opacity="0.35" data-wait="1">'
                    f'<title>{esc(bar.title or label)}</title></rect>')
                x, length = x + waited, max(2.0, length - waited)
            tall = row_height - 6
            if bar.style is not None:
                fill, stroke = bar.style.fill, bar.style.stroke
                tall = max(3.0, tall * bar.style.height)
                if bar.style.dash:
                    dashed = f' stroke-dasharray="{bar.style.dash}"'
            if bar.end - bar.start <= 0:
                length = 1.0  # a moment: a hairline, not a made-up 2 px of time
            parts.append(
                f'<rect x="{x:.1f}" y="{y + row_height / 2 - tall / 2:.1f}" '
                f'width="{length:.1f}" height="{tall:.1f}" '
                f'rx="2" fill="{fill}" stroke="{stroke}"{dashed} data-state="{esc(state)}" '
                f'data-start="{bar.start:.3f}" data-end="{bar.end:.3f}"{extra}>'
                f'<title>{esc(bar.title or label)}</title></rect>')
        parts.append("</g>")
    parts.append(f'<line x1="{x0}" y1="{axis_y}" x2="{width - margin}" y2="{axis_y}" '
                 'stroke="#333"/>')
    if end_label:
        parts.append(f'<text x="{width - margin}" y="{axis_y + 17}" text-anchor="end" '
                     f'font-size="11">{end:.1f} s</text>')
    parts.append("</svg>")
    return "".join(parts)


def timeline_svg(rows: Sequence[Tuple[str, float, float]], title: str = "",
                 width: int = 640, row_height: int = 22,
                 until: Optional[float] = None) -> str:
    """An SVG Gantt chart: one bar per (label, start seconds, end seconds).

    Args:
        until: where the time axis ends (seconds); give several charts the
            same value to compare them by eye. By default the last end.

    Raises:
        ValueError: `rows` is empty.
    """
    if not rows:
        raise ValueError("no rows to draw")
    return gantt_svg(
        [(label, [GanttBar(start, stop, title=f"{label}: {start:.1f}s - {stop:.1f}s")])
         for label, start, stop in rows],
        until=until, width=width, row_height=row_height, title=title, end_label=True)
