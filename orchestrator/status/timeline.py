"""A run's timeline: one bar per attempt of each step, from its container's start to its exit.

Pure (a `RunStatus` in, bars out), shared by the panel's Gantt chart
(`orchestrator.status.widget`) and the terminal's text timeline
(`orchestrator.status.text`). A bar's colour is its attempt's phase, as
`orchestrator.status.model.resolve` decided it: the latest attempt shares its
step's phase, an earlier one was retried.

Where a run's containers were seen (a live run), bars are the containers'
own times (Docker's clock). A container started early (it waits for its
upstream steps before running its step) shows that wait apart: `work_start`
is when its step began, as ZenML recorded it. For a run watched after its containers were
removed, they are the times ZenML recorded for each step run, which leave
out the container's start and ZenML's import (a second or two each).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import List, Optional, Tuple

from orchestrator.status.model import RunStatus, StepPhase, StepStatus


@dataclass(frozen=True)
class Bar:
    """One attempt of one step on the timeline (times in epoch seconds).

    Attributes:
        live: the attempt still runs: `end` is "now" and will grow.
        source: "container" (Docker's times) or "zenml" (ZenML's record).
        work_start: for a container started early, when its step began
            (before that it waited for its upstream steps); None otherwise,
            or while it still waits.
    """

    step: str
    attempt: int
    start: float
    end: float
    phase: StepPhase
    reason: str = ""
    live: bool = False
    source: str = "container"
    container_id: Optional[str] = None
    oom_killed: bool = False
    work_start: Optional[float] = None


def step_bars(step: StepStatus, *, now: float, ended: bool) -> List[Bar]:
    """The bars of one step, oldest attempt first (none before it started)."""
    bars = []
    started = [a for a in step.attempts if a.started_at is not None]
    if started:
        for attempt in started:
            end = attempt.finished_at
            live = end is None and not ended and attempt.container_state in ("running", "created")
            if end is None:
                end = now if live else _last_known(step, attempt.started_at)
            bars.append(Bar(step.name, attempt.number, attempt.started_at,
                            max(end, attempt.started_at), attempt.phase, attempt.reason, live,
                            "container", attempt.container_id, attempt.oom_killed,
                            _work_start(step, attempt.number, attempt.started_at, end)
                            if attempt.started_early else None))
        return bars
    runs = [(i + 1, run) for i, run in enumerate(step.zenml_runs) if run.started_at is not None]
    if runs:
        for number, run in runs:
            live = run.finished_at is None and not ended and not run.phase.is_final
            end = run.finished_at if run.finished_at is not None else (
                now if live else run.started_at)
            bars.append(Bar(step.name, number, run.started_at, max(end, run.started_at),
                            run.phase, run.reason, live, "zenml"))
        return bars
    if step.zenml_started_at is not None:  # recordings from before zenml_runs were kept
        live = step.zenml_finished_at is None and not ended and not step.phase.is_final
        end = step.zenml_finished_at if step.zenml_finished_at is not None else (
            now if live else step.zenml_started_at)
        bars.append(Bar(step.name, max(1, step.zenml_attempts), step.zenml_started_at,
                        max(end, step.zenml_started_at), step.phase, step.reason, live, "zenml"))
    return bars


def _work_start(step: StepStatus, number: int, started: float, end: float) -> Optional[float]:
    """When attempt `number`'s step began in its container: ZenML's start of that step run."""
    if number > len(step.zenml_runs):
        return None
    began = step.zenml_runs[number - 1].started_at
    if began is None or not started <= began <= end:
        return None
    return began


def _last_known(step: StepStatus, started_at: float) -> float:
    """An end for an attempt whose exit nobody saw (the run ended meanwhile)."""
    if step.zenml_finished_at is not None and step.zenml_finished_at >= started_at:
        return step.zenml_finished_at
    return started_at


def timeline_bars(status: RunStatus, now: Optional[float] = None) -> List[Tuple[str, List[Bar]]]:
    """Every step (pipeline order) with its bars.

    Args:
        now: where running attempts' bars end (default: the clock).
    """
    now = time.time() if now is None else now
    return [(step.name, step_bars(step, now=now, ended=status.ended)) for step in status.steps]


def time_span(rows: List[Tuple[str, List[Bar]]]) -> Optional[Tuple[float, float]]:
    """(first start, last end) over every bar; None before anything started."""
    bars = [bar for _, bars in rows for bar in bars]
    if not bars:
        return None
    return min(bar.start for bar in bars), max(bar.end for bar in bars)


def describe_bar(bar: Bar, origin: float) -> str:
    """The tooltip of a bar: step, attempt, times, and how it went."""
    how = bar.phase.value + (f" ({bar.reason})" if bar.reason else "")
    times = f"{bar.start - origin:.1f} s – {bar.end - origin:.1f} s"
    source = "" if bar.source == "container" else ", ZenML's record"
    container = f", container {bar.container_id}" if bar.container_id else ""
    waited = (f" (started early: waited for its upstream steps until "
              f"{bar.work_start - origin:.1f} s)" if bar.work_start is not None else "")
    return f"{bar.step}, attempt {bar.attempt}: {times}{container}{source}{waited}; {how}"
