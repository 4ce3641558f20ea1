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


def dag_svg(upstreams: Mapping[str, Iterable[str]],
            states: Optional[Mapping[str, str]] = None,
            box_width: int = 130, box_height: int = 34, *,
            titles: Optional[Mapping[str, str]] = None,
            notes: Optional[Mapping[str, str]] = None,
            max_rows: int = 12, css_class: str = "") -> str:
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

    Returns:
        The `<svg>` element as text; every box is a `<g data-step=... data-state=...>`.
    """
    layout = dag_layout(upstreams, box_width, box_height, max_rows)
    position = layout.position
    states = states or {}
    klass = f' class="{esc(css_class)}"' if css_class else ""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg"{klass} width="{layout.width:.0f}" '
        f'height="{layout.height:.0f}" viewBox="0 0 {layout.width:.0f} {layout.height:.0f}" '
        f'{FONT}>',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
    ]
    half = box_height / 2
    for step, ups in upstreams.items():
        x2, y2 = position[step]
        for up in ups:
            if up not in position or up == step:
                continue
            x1, y1 = position[up]
            parts.append(
                f'<line x1="{x1 + box_width:.1f}" y1="{y1 + half:.1f}" x2="{x2:.1f}" '
                f'y2="{y2 + half:.1f}" stroke="#555" stroke-opacity="0.6" '
                'marker-end="url(#arrow)"/>'
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


def gantt_svg(rows: Sequence[Tuple[str, Sequence[GanttBar]]], *, until: Optional[float] = None,
              width: int = 640, row_height: int = 22, label_width: int = 130,
              title: str = "", end_label: bool = False, css_class: str = "") -> str:
    """An SVG Gantt chart: one row per label, its bars, and a time axis with ticks.

    Args:
        rows: (label, bars) per row, top to bottom; a row may have no bar.
        until: where the time axis ends (seconds); by default the last end.
        end_label: also label the axis's end with its exact value.

    Returns:
        The `<svg>` element as text; each row is a `<g data-row=...>`, each
        bar a `<rect data-start=... data-end=... data-state=...>`.
    """
    margin, top = 10, (24 if title else 6)
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
        parts.append(f'<g data-row="{esc(label)}"><text x="{margin}" y="{y + row_height - 7}">'
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
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{length:.1f}" height="{row_height - 6}" '
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
