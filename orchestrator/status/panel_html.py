"""The live panel's pictures and tables as HTML text, from a `RunStatus` (pure).

`orchestrator.status.panel_view` puts these strings into ipywidgets; keeping them
apart makes every part of the panel testable, and its drawing cost
measurable (benchmarks/panel_latency.py), without widgets or a browser.

- `header_html`, `counts_html`: the run's name and outcome, the counts;
- `graph_html`: the run's own DAG, each step coloured by its phase, with a legend;
- `timeline_html`: a Gantt chart, one bar per attempt (container start to exit);
- `table_html`: one row per step (state, try, container, times, exit, last line);
- `resources_html`: CPU and memory of each container against its limits;
- `log_html`: one attempt's output.

Every phase shown is the one `orchestrator.status.reducer.resolve` decided.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from orchestrator.status.drawing import (
    STATE_COLOURS,
    STATE_STROKES,
    BarStyle,
    GanttBar,
    dag_svg,
    esc,
    gantt_labels_svg,
    gantt_svg,
    legend_svg,
    swatch_legend_svg,
)
from orchestrator.status.model import SUMMARY_ORDER, Attempt, RunStatus, StepPhase, StepStatus
from orchestrator.status.text import format_clock, format_duration
from orchestrator.status.timeline import (
    FINISH,
    SEGMENT_KINDS,
    UNSPLIT,
    WAITING,
    WARM_UP,
    WORK,
    StageTimes,
    describe_bar,
    describe_segment,
    time_span,
    timeline_bars,
)

# Badge colours (background, text), from the one palette of `drawing`: waiting
# phases pale with dark text, the others saturated with white text.
BADGE_COLOURS: Dict[StepPhase, tuple] = {
    phase: ((STATE_COLOURS[phase.value], "#374151")
            if phase in (StepPhase.PENDING, StepPhase.WAITING)
            else (STATE_STROKES[phase.value], "#ffffff"))
    for phase in StepPhase
}
OUTCOME_COLOURS = {
    "completed": BADGE_COLOURS[StepPhase.COMPLETED],
    "failed": BADGE_COLOURS[StepPhase.FAILED],
    "stopped": BADGE_COLOURS[StepPhase.STOPPED],
    "running": BADGE_COLOURS[StepPhase.RUNNING],
}
WAITING_TITLE = "waiting for a pipeline run to start…"


def progress_colour(status: RunStatus) -> str:
    """The progress bar's colour: the header badge's (the run's outcome), or the
    failed colour as soon as a step failed while the run goes on."""
    if not status.ended and status.counts().get(StepPhase.FAILED):
        return BADGE_COLOURS[StepPhase.FAILED][0]
    return OUTCOME_COLOURS.get(status.outcome, BADGE_COLOURS[StepPhase.RUNNING])[0]


def attempt_word(step: StepStatus, attempt: Any, number: Optional[int] = None) -> str:
    """How one attempt (a container, or a ZenML step run) went, in the panel's words.

    An attempt followed by another one was retried ("retried (exit code 1)");
    "retrying" is said only of a latest attempt whose retry is still to come.
    """
    number = getattr(attempt, "number", number)
    if number is None:
        number = step.zenml_runs.index(attempt) + 1 if attempt in step.zenml_runs else 0
    latest = max(step.attempt, len(step.zenml_runs))
    if attempt.phase == StepPhase.RETRYING and number < latest:
        reason = attempt.reason.split(": ", 1)[1] if ": " in attempt.reason else ""
        return "retried" + (f" ({reason})" if reason else "")
    if getattr(attempt, "never_ran", False):
        return f"{attempt.phase.value} (its step never ran: removed at its gate)"
    if not attempt.reason:
        return attempt.phase.value
    if attempt.reason.startswith(attempt.phase.value):
        return attempt.reason
    return f"{attempt.phase.value} ({attempt.reason})"
# The legend's order: how a step goes, then how it can end.
LEGEND_ORDER = (StepPhase.WAITING, StepPhase.PENDING, StepPhase.STARTING, StepPhase.RUNNING,
                StepPhase.RETRYING, StepPhase.COMPLETED, StepPhase.CACHED, StepPhase.FAILED,
                StepPhase.STOPPED, StepPhase.SKIPPED)
LEGEND_NAMES = {StepPhase.RETRYING.value: "retrying / retried"}
MIB = 1024 * 1024


def badge(text: str, colours: tuple) -> str:
    background, foreground = colours
    return (f'<span class="md-badge" style="background:{background};color:{foreground};'
            'border-radius:9px;padding:1px 8px;font-size:11px;font-weight:600;'
            f'white-space:nowrap">{esc(text)}</span>')


def header_html(status: RunStatus) -> str:
    """The run's name, pipeline and outcome."""
    if not status.run_id:
        return (f'<div style="font-size:14px"><b>{esc(status.error or WAITING_TITLE)}'
                '</b></div>')
    outcome = status.outcome
    colours = OUTCOME_COLOURS.get(outcome, BADGE_COLOURS[StepPhase.PENDING])
    pipeline = (f'<span style="color:#616161">pipeline</span> <b>{esc(status.pipeline_name)}</b>'
                f' &nbsp;·&nbsp; ' if status.pipeline_name else "")
    return (f'<div style="font-size:14px">{pipeline}<span style="color:#616161">run</span> '
            f'<code>{esc(status.run_name or status.run_id)}</code> &nbsp;'
            f'<span class="md-outcome">{badge(outcome, colours)}</span>'
            + (f' <span style="color:#616161">{esc(status.ended_because)}</span>'
               if status.ended_because else "")
            + '</div>')


def counts_html(status: RunStatus) -> str:
    """'3/4 steps finished: 2 completed, …' with each count in its colour."""
    counts = status.counts()
    parts = [badge(f"{counts[phase]} {phase.value}", BADGE_COLOURS[phase])
             for phase in SUMMARY_ORDER if counts.get(phase)]
    text = (f'<span class="md-progress"><b>{status.finished_count}/{len(status.steps)}</b> '
            f'steps finished</span> &nbsp;{" ".join(parts)}')
    if status.error:
        text += (f'<div style="color:#c62828;font-size:12px">⚠ '
                 f'{esc(status.error)}</div>')
    return text


# --------------------------------------------------------------------------
# The graph
# --------------------------------------------------------------------------


def step_note(step: StepStatus) -> str:
    """A box's second line: how many attempts, an out-of-memory kill."""
    if any(a.oom_killed for a in step.attempts):
        oom = [a.number for a in step.attempts if a.oom_killed]
        if step.attempt > 1:
            return f"try {step.attempt}, OOM on {','.join(map(str, oom))}"
        return "out of memory"
    if step.attempt > 1:
        return f"try {step.attempt} of {step.max_retries + 1}"
    return ""


def step_title(step: StepStatus) -> str:
    """A box's tooltip: the step, its phase and why, its attempts and container."""
    parts = [f"{step.name}: {step.phase.value}"]
    if step.reason:
        parts.append(step.reason)
    if step.attempt:
        parts.append(f"attempt {step.attempt} of {step.max_retries + 1}")
    if step.container_id:
        parts.append(f"container {step.container_id}")
    if step.node:
        parts.append(f"on node {step.node}")
    if step.upstream:
        parts.append("after " + ", ".join(step.upstream))
    return " · ".join(parts)


def legend_html() -> str:
    """The states' legend: one swatch each, wrapping on a narrow panel."""
    names = [p.value for p in LEGEND_ORDER]
    return ('<div class="md-legend" style="margin:2px 0 4px 0;display:flex;flex-wrap:wrap;'
            'gap:0 4px">' + "".join(legend_svg([name], LEGEND_NAMES) for name in names)
            + "</div>")


def graph_html(status: RunStatus, id_prefix: Optional[str] = None) -> str:
    """The run's DAG from its own snapshot, each step coloured by its phase, and a legend.

    Args:
        id_prefix: starts the drawing's ids; a panel passes its own, so that
            two panels on one page never share an arrowhead (default: a new one).
    """
    if not status.steps:
        return '<div style="color:#757575">(no steps yet)</div>'
    upstreams = {step.name: list(step.upstream) for step in status.steps}
    wide = len(status.steps) > 24
    svg = dag_svg(
        upstreams,
        {step.name: step.phase.value for step in status.steps},
        box_width=118 if wide else 140, box_height=30 if wide else 36,
        titles={step.name: step_title(step) for step in status.steps},
        notes={step.name: step_note(step) for step in status.steps},
        css_class="md-graph-svg", id_prefix=id_prefix, fit_width=True,
    )
    return (legend_html() + '<div class="md-graph" style="overflow:auto;max-height:480px;'
            'max-width:100%">' + svg + "</div>")


# --------------------------------------------------------------------------
# The timeline
# --------------------------------------------------------------------------


# How each phase of a container looks on the timeline: only the step's work is
# a full bar in its attempt's state colour (the graph's); the rest is thinner
# and grey, so that what ran is seen at a glance.
SEGMENT_STYLES = {
    WARM_UP: BarStyle("#cbd5e1", "#94a3b8", 0.45),
    WAITING: BarStyle("#ffffff", "#64748b", 0.3, "3 2"),
    UNSPLIT: BarStyle("#e2e8f0", "#94a3b8", 0.45, "1 2"),
    FINISH: BarStyle("#a8a29e", "#78716c", 0.45),
}
TIMELINE_PLOT_WIDTH = 620  # px of time axis; a narrower panel scrolls it, labels kept


def segment_legend_html(kinds: Sequence[str]) -> str:
    """The timeline's legend: each phase in the words and looks of its bars."""
    work = BarStyle(STATE_COLOURS["completed"], STATE_STROKES["completed"])
    items = [(kind, kind + (" (its state's colour)" if kind == WORK else ""),
              work if kind == WORK else SEGMENT_STYLES[kind])
             for kind in SEGMENT_KINDS if kind in kinds]
    return ('<div class="md-timeline-legend" style="margin:2px 0;display:flex;'
            'flex-wrap:wrap;gap:0 4px">'
            + "".join(swatch_legend_svg([item]) for item in items) + "</div>")


def timeline_html(status: RunStatus, now: Optional[float] = None,
                  stages: Optional[Mapping[Tuple[str, int], StageTimes]] = None,
                  plot_width: int = TIMELINE_PLOT_WIDTH) -> str:
    """A Gantt chart: one row per step, one bar per attempt, cut into its container's phases.

    Each phase is a `rect` with `data-phase` (`SEGMENT_KINDS`), `data-step`,
    `data-attempt` and its absolute times (epoch seconds) in `data-started`
    and `data-ended`; a bar's whole span (container start to exit) is its
    row's `g[data-bar]`, for tests to compare with the containers' own times.
    The labels are a column of their own that stays while a narrow panel
    scrolls the chart.

    Args:
        stages: the containers' warm-up ends and gates (`timeline.stage_times`).
    """
    now = time.time() if now is None else now
    rows = timeline_bars(status, now=now, stages=stages)
    span = time_span(rows)
    if span is None:
        return ('<div class="md-timeline" style="color:#757575">(no step has started yet: '
                'each attempt becomes a bar from its container\'s start to its exit)</div>')
    origin, end = span
    live = any(bar.live for _, bars in rows for bar in bars)
    gantt_rows = []
    kinds = set()
    spans = []
    for name, bars in rows:
        drawn = []
        for bar in bars:
            common = (("step", bar.step), ("attempt", str(bar.attempt)),
                      ("source", bar.source), ("oom", "1" if bar.oom_killed else "0"),
                      ("never-ran", "1" if bar.never_ran else "0"))
            spans.append(
                f'<span data-bar="{esc(bar.step)}" data-attempt="{bar.attempt}" '
                f'data-started="{bar.start:.3f}" data-ended="{bar.end:.3f}" '
                f'data-state="{bar.phase.value}" data-source="{bar.source}" '
                f'data-never-ran="{int(bar.never_ran)}" hidden></span>')
            for segment in bar.segments:
                kinds.add(segment.kind)
                drawn.append(GanttBar(
                    segment.start - origin, segment.end - origin, bar.phase.value,
                    describe_segment(bar, segment, origin)
                    + ("; " + describe_bar(bar, origin)
                       if segment.kind == WORK or segment is bar.segments[-1] else ""),
                    segment.live,
                    common + (("phase", segment.kind), ("started", f"{segment.start:.3f}"),
                              ("ended", f"{segment.end:.3f}")),
                    style=SEGMENT_STYLES.get(segment.kind)))
        gantt_rows.append((name, drawn))
    source = {bar.source for _, bars in rows for bar in bars}
    note = ("each container from its start to its exit (Docker's clock); the step's work "
            "as ZenML recorded it" if source == {"container"}
            else "the step runs' times as ZenML recorded them (the containers are gone)"
            if source == {"zenml"} else "containers where seen, else ZenML's record")
    chars = max(len(name) for name, _ in rows)
    label_width = min(170, max(80, 7 * chars + 14))
    row_height = 18 if len(rows) > 24 else 22
    labels = gantt_labels_svg([name for name, _ in rows], row_height=row_height,
                              label_width=label_width, css_class="md-timeline-labels")
    svg = gantt_svg(gantt_rows, width=plot_width + 20, label_width=0, labels=False,
                    row_height=row_height, css_class="md-timeline-svg")
    origin_text = format_clock(origin)
    return (f'<div class="md-timeline" data-origin="{origin:.3f}" data-live="{int(live)}">'
            f'<div style="font-size:11.5px;color:#616161">{len(rows)} steps · from '
            f'{origin_text} · {format_duration(end - origin)}{" so far" if live else ""} · '
            f'{note}</div>' + segment_legend_html(kinds)
            + '<div class="md-timeline-scroll" style="overflow:auto;max-height:480px;'
            'max-width:100%"><div style="display:flex;width:max-content">'
            '<div style="position:sticky;left:0;z-index:1;background:#fff;flex:none">'
            + labels + '</div><div style="flex:none">' + svg + "</div></div></div>"
            + "".join(spans) + "</div>")


# --------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------

_CELL = "padding:3px 10px 3px 0;text-align:left;vertical-align:middle"
_HEAD = _CELL + ";color:#616161;font-weight:600;border-bottom:1px solid #e0e0e0"
_SHORT = _CELL + ";white-space:nowrap;word-break:keep-all"  # a name, a time, a code: whole


def table_html(status: RunStatus, now: Optional[float] = None) -> str:
    """One row per step, in pipeline order (with a node column for a run on a swarm)."""
    nodes = status.on_nodes
    heads = ["step", "state", "try", "container"] + (["node"] if nodes else []) + [
        "started", "duration", "exit", "memory", "last log line"]
    rows = ["<tr>" + "".join(f'<th style="{_HEAD};white-space:nowrap">{h}</th>' for h in heads)
            + "</tr>"]
    for step in status.steps:
        rows.append(_row_html(step, now, nodes))
    # Short cells (names, times, codes) never break inside a word; the last log
    # line wraps. A panel too narrow for the rest scrolls the table sideways.
    return ('<div class="md-steps-scroll" style="overflow-x:auto;max-width:100%">'
            '<table class="md-steps" style="border-collapse:collapse;font-size:12.5px;'
            'width:100%;table-layout:auto">' + "".join(rows) + "</table></div>")


def _row_html(step: StepStatus, now: Optional[float], nodes: bool = False) -> str:
    never_ran = not step.ran  # its exit code, memory and times are not the step's
    line, told = step.shown_line  # the last log line stays in the tooltip
    line_style = "color:#9e9e9e;font-style:italic" if told else "color:#424242"
    exit_code = "" if step.exit_code is None or never_ran else str(step.exit_code)
    if step.oom_killed and not never_ran:
        exit_code += " (out of memory)"
    exit_style = ("color:#c62828;font-weight:600" if exit_code not in ("", "0")
                  and step.phase != StepPhase.STOPPED else "")
    cells = [
        f'<td style="{_SHORT};font-weight:600">{esc(step.name)}</td>',
        f'<td style="{_SHORT}">{badge(step.phase.value, BADGE_COLOURS[step.phase])}</td>',
        f'<td style="{_SHORT}">{step.attempt or ""}</td>',
        f'<td style="{_SHORT}"><code>{esc(step.container_id or "")}</code></td>',
        *([f'<td class="md-node" style="{_SHORT}">{esc(step.node or "")}</td>'] if nodes else []),
        f'<td style="{_SHORT}">{"" if never_ran else format_clock(step.start_time)}</td>',
        f'<td style="{_SHORT};font-variant-numeric:tabular-nums">'
        f'{"" if never_ran else format_duration(step.duration(now))}</td>',
        f'<td style="{_SHORT};{exit_style}">{esc(exit_code)}</td>',
        f'<td style="{_SHORT};font-variant-numeric:tabular-nums">'
        f'{"" if never_ran else esc(memory_text(step))}</td>',
        f'<td class="md-last-line" style="{_CELL};min-width:8em;overflow-wrap:anywhere;'
        f'white-space:normal;font-family:monospace;font-size:11.5px;{line_style}" '
        f'title="{esc(step.last_line or line)}">{esc(line)}</td>',
    ]
    node = f' data-node="{esc(step.node)}"' if step.node else ""
    return f'<tr data-step="{esc(step.name)}" data-state="{step.phase.value}"{node}>' \
           + "".join(cells) + "</tr>"


# --------------------------------------------------------------------------
# Resources
# --------------------------------------------------------------------------


def format_bytes(count: Optional[int]) -> str:
    """'512 MiB', '1.5 GiB', '900 KiB'."""
    if count is None:
        return ""
    if count >= 1024 * MIB:
        return f"{count / (1024 * MIB):.1f} GiB"
    if count >= MIB:
        return f"{count / MIB:.0f} MiB"
    return f"{count / 1024:.0f} KiB"


def memory_text(step: StepStatus) -> str:
    """'120 MiB / 384 MiB' while it runs; 'peak 380 MiB / 384 MiB' after."""
    usage = step.usage
    if usage is None:
        return ""
    limit = f" / {format_bytes(usage.memory_limit)}" if usage.memory_limit else ""
    if step.container_alive:
        return f"{format_bytes(usage.memory_bytes)}{limit}"
    return f"peak {format_bytes(usage.peak_memory_bytes)}{limit}"


def _meter(fraction: Optional[float], colour: str) -> str:
    """A small horizontal bar, filled to `fraction` (capped at 1)."""
    if fraction is None:
        return ""
    filled = max(0.0, min(1.0, fraction)) * 100
    return ('<span style="display:inline-block;width:120px;height:9px;background:#eceff1;'
            'border-radius:4px;vertical-align:middle;margin-right:6px;overflow:hidden">'
            f'<span style="display:block;width:{filled:.0f}%;height:100%;background:{colour}">'
            '</span></span>')


def _resource_rows(status: RunStatus) -> List[Tuple[StepStatus, Attempt]]:
    """Attempts with samples: running ones first, then finished ones; each group in
    the order the steps table lists them (pipeline order, attempts in order)."""
    rows = [(step, attempt) for step in status.steps for attempt in step.attempts
            if attempt.usage is not None or attempt.oom_killed]
    return sorted(rows, key=lambda row: row[1].container_state not in ("running", "created"))


def resources_html(status: RunStatus) -> str:
    """CPU and memory of every sampled container against its limits; OOM kills named."""
    rows = _resource_rows(status)
    if not rows:
        return ('<div class="md-resources" style="color:#757575">No samples yet: CPU and '
                'memory are read from the engine (as <code>docker stats</code> does) about '
                'once a second while a watched step container runs.</div>')
    heads = ["step", "try", "container", "state", "CPU", "memory (now / limit)", "peak"]
    out = ["<tr>" + "".join(f'<th style="{_HEAD};white-space:nowrap">{h}</th>' for h in heads)
           + "</tr>"]
    for step, attempt in rows:
        usage = attempt.usage
        alive = attempt.container_state in ("running", "created")
        word = attempt_word(step, attempt)
        if attempt.oom_killed:
            word = word.split(" (", 1)[0] + " (killed: out of memory)"
        colours = BADGE_COLOURS[StepPhase.RETRYING if word.startswith("retried")
                                else attempt.phase]
        state = badge(word.split(" (", 1)[0], colours) + (
            f' <span style="color:#616161">{esc(word.split(" (", 1)[1][:-1])}</span>'
            if " (" in word else "")
        cpu = mem = peak = ""
        if usage is not None:
            cpu_limit = f" of {usage.cpu_limit:g}" if usage.cpu_limit else ""
            cpu_fraction = (usage.cpu_cores / usage.cpu_limit) if usage.cpu_limit else None
            cpu = (_meter(cpu_fraction, "#1e88e5") + f"{usage.cpu_cores:.2f}{cpu_limit} cores"
                   if alive else "")
            fraction = usage.memory_fraction
            colour = "#c62828" if (fraction or 0) > 0.9 else "#fb8c00" if (fraction or 0) > 0.7 \
                else "#43a047"
            limit = (f" / {format_bytes(usage.memory_limit)} limit ({fraction:.0%})"
                     if usage.memory_limit else " (no limit)")
            mem = (_meter(fraction, colour) + format_bytes(usage.memory_bytes) + limit
                   if alive else "")
            peak = format_bytes(usage.peak_memory_bytes) + (
                f" of {format_bytes(usage.memory_limit)}" if usage.memory_limit else "")
        style = "color:#c62828;font-weight:600" if attempt.oom_killed else ""
        out.append(
            f'<tr data-step="{esc(step.name)}" data-attempt="{attempt.number}" '
            f'data-oom="{int(attempt.oom_killed)}" '
            f'data-memory="{usage.memory_bytes if usage else ""}" '
            f'data-limit="{(usage.memory_limit or "") if usage else ""}">'
            f'<td style="{_SHORT};font-weight:600">{esc(step.name)}</td>'
            f'<td style="{_SHORT}">{attempt.number}</td>'
            f'<td style="{_SHORT}"><code>{esc(attempt.container_id or "")}</code></td>'
            f'<td style="{_CELL};{style}">{state}</td>'
            f'<td style="{_SHORT}">{cpu}</td>'
            f'<td style="{_SHORT}">{mem}</td>'
            f'<td style="{_SHORT}">{esc(peak)}</td></tr>')
    # As the steps table: names, ids and numbers never break inside a word; a
    # panel too narrow for them scrolls the table sideways.
    return ('<div class="md-resources-scroll" style="overflow-x:auto;max-width:100%">'
            '<table class="md-resources" style="border-collapse:collapse;font-size:12.5px">'
            + "".join(out) + "</table></div>")


# --------------------------------------------------------------------------
# A step's log
# --------------------------------------------------------------------------


def log_html(text: str, *, title: str, path: str = "", cut: int = 0, live: bool = False,
             missing: bool = False, parts: bool = False) -> Any:
    """One attempt's output: a title line, and the text in a box that keeps its end in view.

    Args:
        parts: return (title, text) apart: the panel puts the text in a box
            of its own (a widget the browser keeps), see `log_view.StepLogView`.
            Else one `div` whose box is a reversed column (its end in view).
    """
    head = (f'<div class="md-log-title" style="font-size:12px;margin:2px 0;'
            f'overflow-wrap:anywhere">{esc(title)}')
    if path:
        head += f' &nbsp;<span style="color:#757575">{esc(path)}</span>'
    if live:
        head += ' &nbsp;<span style="color:#1e88e5">● following</span>'
    head += "</div>"
    if missing:
        body = ('<div style="color:#757575;font-style:italic">No output kept for this attempt '
                '(yet): the orchestrator writes each attempt\'s whole output to the file above '
                'as it runs.</div>')
        return (head, body) if parts else f'<div class="md-log">{head}{body}</div>'
    note = (f'<div style="color:#757575;font-size:11px">(the first {cut} characters are '
            'not shown; the file has them all)</div>' if cut else "")
    # flex:none: the text never shrinks to scroll by itself inside the box (a
    # <pre> with overflow:auto, as notebook styles give it, would): the box scrolls.
    pre = ('<pre class="md-log-text" style="margin:0;padding:6px 8px;flex:none;'
           'overflow:visible;max-height:none;font-size:11.5px;line-height:1.35;'
           'white-space:pre-wrap;overflow-wrap:anywhere;background:#fafafa">'
           f'{esc(text) or "(no output yet)"}</pre>')
    if parts:
        return head + note, pre
    return (f'<div class="md-log">{head}{note}<div style="max-height:340px;overflow:auto;'
            'display:flex;flex-direction:column-reverse;border:1px solid #e0e0e0;'
            f'background:#fafafa">{pre}</div></div>')
