"""A run's status as plain text: for terminals, CI logs and `repr` of the panel.

`render_text` draws a `RunStatus` as a table (a header, a progress line, one
row per step), `render_timeline` as a text Gantt chart (one row per step, one
bar per attempt, a time axis); `format_duration` and `format_clock` write
cells for the notebook panel too. `TerminalPrinter` shows a changing
status on a stream: redrawn in place on a terminal, as one line per change on
a pipe or a file. Kept apart from the model so the model stays free of
presentation, and apart from the watcher so rendering needs no Docker or ZenML.
"""

from __future__ import annotations

import shutil
import threading
import time
from datetime import datetime
from typing import Dict, List, Optional, Sequence, TextIO, Tuple

from orchestrator.status.drawing import format_seconds, nice_ticks
from orchestrator.status.model import RunStatus, StepPhase
from orchestrator.status.timeline import time_span, timeline_bars

# The state column's ANSI colours, per phase.
_ANSI = {
    StepPhase.PENDING: "37", StepPhase.WAITING: "37", StepPhase.STARTING: "36",
    StepPhase.RUNNING: "34;1", StepPhase.RETRYING: "33;1", StepPhase.COMPLETED: "32",
    StepPhase.FAILED: "31;1", StepPhase.SKIPPED: "90", StepPhase.STOPPED: "35",
    StepPhase.CACHED: "36",
}


def format_duration(seconds: Optional[float]) -> str:
    """'0.4s', '12.3s' under a minute; from a minute on ZenML's own form ('2m5s', '1h2m')."""
    from zenml.utils.time_utils import seconds_to_human_readable

    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    return seconds_to_human_readable(int(seconds))


def format_clock(epoch: Optional[float]) -> str:
    """Local wall-clock time, 'HH:MM:SS'."""
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch).strftime("%H:%M:%S")


def progress_bar(done: int, total: int, width: int = 24) -> str:
    filled = 0 if total == 0 else round(width * done / total)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def render_text(status: RunStatus, *, now: Optional[float] = None, width: Optional[int] = None,
                color: bool = False) -> str:
    """The run as a plain-text table: a header, a progress line, one row per step.

    Args:
        now: the time elapsed durations of running steps are measured to.
        width: cut rows to this many characters (the terminal's width).
        color: colour the state column with ANSI codes.
    """
    title = status.run_name or status.run_id
    pipeline = f"  ({status.pipeline_name})" if status.pipeline_name else ""
    lines = [f"Run {title}{pipeline}: {status.outcome.upper()}"]
    if status.ended_because:
        lines[0] += f" ({status.ended_because})"
    lines.append(f"{progress_bar(status.finished_count, len(status.steps))} {status.summary()}")
    if status.error:
        lines.append(f"! {status.error}")
    # A run on a swarm names each step's node; one engine's runs look as they always did.
    nodes = status.on_nodes
    headers = ("STEP", "STATE", "TRY", "CONTAINER") + (("NODE",) if nodes else ()) + (
        "STARTED", "DURATION", "EXIT", "LAST LOG LINE")
    rows = []
    for step in status.steps:
        rows.append((
            step.name,
            step.phase.value,
            str(step.attempt) if step.attempt else "",
            step.container_id or "",
            *((step.node or "",) if nodes else ()),
            # (a container that only waited at its gate: its times and exit are not the step's)
            format_clock(step.start_time) if step.ran else "",
            format_duration(step.duration(now)) if step.ran else "",
            "" if step.exit_code is None or not step.ran else str(step.exit_code),
            step.shown_line[0],
        ))
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    widths[-1] = len(headers[-1])

    def fmt(cells: Sequence[str], phase: Optional[StepPhase] = None) -> str:
        parts = [cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1])]
        if color and phase is not None:
            parts[1] = f"\x1b[{_ANSI[phase]}m{parts[1]}\x1b[0m"
        text = "  ".join(parts + [cells[-1]])
        if width is not None:
            visible = len("  ".join([cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1])]
                                    + [cells[-1]]))
            if visible > width:
                text = text[: len(text) - (visible - width) - 1] + "…"
        return text.rstrip()

    lines.append(fmt(headers))
    for step, row in zip(status.steps, rows):
        lines.append(fmt(row, step.phase))
    return "\n".join(lines)


# One character per phase in the text timeline (the legend prints them).
TIMELINE_MARKS = {
    StepPhase.COMPLETED: "#", StepPhase.CACHED: "#", StepPhase.RUNNING: ">",
    StepPhase.STARTING: ">", StepPhase.RETRYING: "~", StepPhase.FAILED: "X",
    StepPhase.STOPPED: "/", StepPhase.SKIPPED: ".", StepPhase.PENDING: ".",
    StepPhase.WAITING: ".",
}
_LEGEND = ("# completed  > running  ~ failed, retried  X failed  / stopped  "
           ": started early, waiting")


def render_timeline(status: RunStatus, *, now: Optional[float] = None, width: int = 100,
                    color: bool = False) -> str:
    """The run as a text Gantt chart: one row per step, one bar per attempt, a time axis.

    Each attempt is drawn from its container's start to its exit with its
    phase's character (`TIMELINE_MARKS`); overlapping bars of different
    rows are steps that ran at the same time.

    Args:
        now: where the bars of running attempts end (default: the clock).
        width: characters per line.
        color: colour the bars with ANSI codes.
    """
    rows = timeline_bars(status, now=now)
    span = time_span(rows)
    if span is None:
        return "(no step has started yet)"
    origin, end = span
    label = min(24, max((len(name) for name, _ in rows), default=4))
    plot = max(10, width - label - 3)
    total = max(end - origin, 1e-6)

    def column(moment: float) -> int:
        return min(plot - 1, int((moment - origin) / total * plot))

    lines: List[str] = []
    for name, bars in rows:
        cells = [" "] * plot
        colours: Dict[int, str] = {}
        for bar in bars:
            first, last = column(bar.start), column(bar.end)
            working = first if bar.work_start is None else column(bar.work_start)
            for i in range(first, last + 1):
                cells[i] = TIMELINE_MARKS[bar.phase] if i >= working else ":"
                colours[i] = _ANSI[bar.phase]
            if bar.live:
                cells[last] = ">"
        text = "".join(f"\x1b[{colours[i]}m{c}\x1b[0m" if color and i in colours else c
                       for i, c in enumerate(cells)).rstrip()
        shown = name if len(name) <= label else name[: label - 1] + "…"
        lines.append(f"{shown.ljust(label)} |{text}")
    axis = [" "] * (plot + 12)
    marks = ["-"] * plot
    for tick in nice_ticks(total, most=max(2, plot // 12)):
        i = column(origin + tick)
        marks[i] = "+"
        text = format_seconds(tick)
        if all(c == " " for c in axis[i:i + len(text) + 1]):
            axis[i:i + len(text)] = list(text)
    lines.append(" " * label + " +" + "".join(marks)[1:])
    lines.append(" " * label + "  " + "".join(axis).rstrip())
    lines.append(" " * label + "  " + _LEGEND)
    return "\n".join(lines)


class TerminalPrinter:
    """Redraws the table in place (terminal) or prints changes as lines (pipe).

    With `timeline`, the text timeline is drawn under the table (on a
    terminal at every redraw, on a pipe once at the end).
    """

    def __init__(self, stream: TextIO, *, tty: bool, color: bool, timeline: bool = False) -> None:
        self.stream = stream
        self.tty = tty
        self.color = color
        self.timeline = timeline
        self._drawn = 0
        self._phases: Dict[str, Tuple[StepPhase, int]] = {}
        self._outcome = ""
        self._lock = threading.Lock()

    def show(self, status: RunStatus) -> None:
        with self._lock:
            if self.tty:
                width = shutil.get_terminal_size((120, 20)).columns - 1
                text = render_text(status, width=width, color=self.color)
                if self.timeline:
                    text += "\n\n" + render_timeline(status, width=width, color=self.color)
                erase = f"\x1b[{self._drawn}F\x1b[J" if self._drawn else ""
                self.stream.write(erase + text + "\n")
                self._drawn = text.count("\n") + 1
            else:
                self._print_changes(status)
            self.stream.flush()

    def _print_changes(self, status: RunStatus) -> None:
        clock = format_clock(time.time())
        if not self._phases:
            self.stream.write(f"{clock}  run {status.run_name}: {len(status.steps)} steps\n")
        for step in status.steps:
            key = (step.phase, step.attempt)
            if self._phases.get(step.name) != key:
                self._phases[step.name] = key
                extra = []
                if step.container_id:
                    extra.append(f"container {step.container_id}")
                if step.node:
                    extra.append(f"on {step.node}")
                if step.attempt > 1:
                    extra.append(f"attempt {step.attempt}")
                if step.reason:
                    extra.append(step.reason)
                note = f"  ({', '.join(extra)})" if extra else ""
                self.stream.write(f"{clock}  {step.name}: {step.phase.value}{note}\n")
        if status.outcome != self._outcome:
            self._outcome = status.outcome
            self.stream.write(f"{clock}  run {status.run_name}: {status.outcome}\n")

    def final(self, status: RunStatus) -> None:
        with self._lock:
            if not self.tty:
                self.stream.write(render_text(status) + "\n")
                if self.timeline:
                    self.stream.write("\n" + render_timeline(status) + "\n")
                self.stream.flush()
