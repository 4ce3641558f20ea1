"""A run's timeline: one bar per attempt of each step, cut into the phases of its container.

Pure (a `RunStatus` in, bars out), shared by the panel's Gantt chart
(`orchestrator.status.panel_html`) and the terminal's text timeline
(`orchestrator.status.text`). A bar's colour is its attempt's phase, as
`orchestrator.status.reducer.resolve` decided it: the latest attempt shares its
step's phase, an earlier one was retried.

Where a run's containers were seen (a live run), a bar spans its container's
own times (Docker's clock) and is cut into `Segment`s (`attempt_segments`):

- **warm-up**: the container starts Python, imports ZenML and the step's
  module, loads the snapshot and the stack (before the step's work, and
  between its gate and the work: ZenML writing the step run's record);
- **waiting at the gate**: a container started early, warmed up, waits for
  its upstream steps (`orchestrator.running.gates`);
- **warm-up or waiting**: the same two while it is not known where one
  ended: the container says when it is ready only to the orchestrator, whose
  record of it (``timings.json``, `stage_times`) is written when the run ends;
- **the step's work**: from ZenML's start of the step run to its end, as
  ZenML recorded them: the step's own start and end;
- **ZenML's finish**: after the step run's end until the container exits
  (outputs published, the process's exit).

A container that only waited and was removed (its step skipped after a
failure, or the run stopped) has no work segment. For a run watched after its
containers were removed, a bar is the step run's times as ZenML recorded them
(its work only).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from orchestrator.status.model import Attempt, RunStatus, StepPhase, StepStatus

# The phases of a container's life on the timeline, in the words of its legend.
WARM_UP = "warm-up"
WAITING = "waiting at the gate"
UNSPLIT = "warm-up or waiting"
WORK = "the step's work"
FINISH = "ZenML's finish"
SEGMENT_KINDS = (WARM_UP, WAITING, UNSPLIT, WORK, FINISH)


@dataclass(frozen=True)
class StageTimes:
    """When one attempt's container was warmed up and left its gate (epoch seconds).

    From the container's own report (`orchestrator.running.step_timing`);
    None where it is not known.
    """

    ready: Optional[float] = None
    gate: Optional[float] = None
    never_ready: bool = False  # removed at its gate before its warm-up ended


def stage_times(timings: Iterable[Any]) -> Dict[Tuple[str, int], StageTimes]:
    """Per (step, attempt), its warm-up's end and its gate, from a run's timings.

    Args:
        timings: `orchestrator.running.step_timing.AttemptTiming`s (``read_timings``).
    """
    found: Dict[Tuple[str, int], StageTimes] = {}
    for timing in timings:
        inside = getattr(timing, "inside", None) or {}
        stages = {stage[0]: stage[1] for stage in inside.get("stages", ()) if len(stage) > 1}
        # The container's own clock where it reported (a success's done line);
        # else when the orchestrator saw its ready line and opened its gate
        # (an attempt that failed reports no stages).
        ready = stages.get("stack and step module", timing.ready_seen)
        gate = (stages.get("waited for upstream steps", timing.gate_opened)
                if timing.started_early else None)
        key = (timing.step, int(timing.attempt))
        given_up = timing.given_up
        if given_up and key in found:
            continue  # a container removed at its gate never hides the attempt that ran after it
        if ready is not None or gate is not None:
            found[key] = StageTimes(ready, gate)
        elif given_up:  # removed before it said it was ready: it only warmed up
            found[key] = StageTimes(never_ready=True)
    return found


@dataclass(frozen=True)
class Segment:
    """One phase of one container on the timeline (`SEGMENT_KINDS`), epoch seconds."""

    kind: str
    start: float
    end: float
    live: bool = False  # still growing: its end is "now"


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
    segments: Tuple[Segment, ...] = ()
    never_ran: bool = False  # its container only waited at its gate and was removed
    retried: bool = False  # another attempt followed it

    @property
    def work(self) -> Optional[Segment]:
        """The step's work, if it began in this attempt."""
        return next((seg for seg in self.segments if seg.kind == WORK), None)


def step_bars(step: StepStatus, *, now: float, ended: bool,
              stages: Optional[Mapping[Tuple[str, int], StageTimes]] = None) -> List[Bar]:
    """The bars of one step, oldest attempt first (none before it started).

    Args:
        stages: what the containers said of their warm-up and gate (`stage_times`).
    """
    bars = []
    started = [a for a in step.attempts if a.started_at is not None]
    if started:
        for attempt in started:
            end = attempt.finished_at
            live = end is None and not ended and attempt.container_state in ("running", "created")
            if end is None:
                end = now if live else _last_known(step, attempt.started_at)
            end = max(end, attempt.started_at)
            segments = attempt_segments(step, attempt, end=end, live=live,
                                        stages=(stages or {}).get((step.name, attempt.number)))
            work = next((seg for seg in segments if seg.kind == WORK), None)
            bars.append(Bar(step.name, attempt.number, attempt.started_at, end, attempt.phase,
                            attempt.reason, live, "container", attempt.container_id,
                            attempt.oom_killed,
                            work.start if work is not None and attempt.started_early else None,
                            tuple(segments), attempt.never_ran,
                            attempt.number < step.attempt))
        return bars
    runs = [(i + 1, run) for i, run in enumerate(step.zenml_runs) if run.started_at is not None]
    if runs:
        for number, run in runs:
            live = run.finished_at is None and not ended and not run.phase.is_final
            end = run.finished_at if run.finished_at is not None else (
                now if live else run.started_at)
            end = max(end, run.started_at)
            bars.append(Bar(step.name, number, run.started_at, end, run.phase, run.reason,
                            live, "zenml", segments=(Segment(WORK, run.started_at, end, live),),
                            retried=number < len(step.zenml_runs)))
        return bars
    if step.zenml_started_at is not None:  # recordings from before zenml_runs were kept
        live = step.zenml_finished_at is None and not ended and not step.phase.is_final
        end = step.zenml_finished_at if step.zenml_finished_at is not None else (
            now if live else step.zenml_started_at)
        end = max(end, step.zenml_started_at)
        bars.append(Bar(step.name, max(1, step.zenml_attempts), step.zenml_started_at, end,
                        step.phase, step.reason, live, "zenml",
                        segments=(Segment(WORK, step.zenml_started_at, end, live),)))
    return bars


def attempt_segments(step: StepStatus, attempt: Attempt, *, end: float, live: bool,
                     stages: Optional[StageTimes] = None) -> List[Segment]:
    """The phases of one attempt's container, from its start to `end`, in order.

    They never overlap and cover the container's life; the work segment is
    the step run ZenML recorded for this attempt (its own start and end),
    present only if that run began while the container lived.

    Args:
        end: the container's exit, or now while it lives (`live`).
        stages: the container's own warm-up end and gate, where known.
    """
    start = attempt.started_at
    assert start is not None, "only a started container has phases"
    run = (step.zenml_runs[attempt.number - 1]
           if 0 < attempt.number <= len(step.zenml_runs) else None)
    work_start = (run.started_at if run is not None and run.started_at is not None
                  and start <= run.started_at <= end and not attempt.never_ran else None)
    work_end = None
    if work_start is not None:
        work_end = end
        if run.finished_at is not None:
            work_end = min(max(run.finished_at, work_start), end)
    before = end if work_start is None else work_start
    segments: List[Segment] = []
    ready = stages.ready if stages is not None else None
    if ready is not None and not start <= ready <= before:
        ready = None
    if stages is not None and stages.never_ready:
        segments.append(Segment(WARM_UP, start, before))
    elif attempt.started_early:
        if ready is None:
            segments.append(Segment(UNSPLIT, start, before))
        else:
            gate = stages.gate if stages.gate is not None and ready <= stages.gate <= before                 else before
            segments += [Segment(WARM_UP, start, ready), Segment(WAITING, ready, gate)]
            if gate < before:
                segments.append(Segment(WARM_UP, gate, before))
    else:
        segments.append(Segment(WARM_UP, start, before))
    if work_start is not None:
        finished = run.finished_at is not None
        segments.append(Segment(WORK, work_start, work_end, live and not finished))
        if finished and end > work_end:
            segments.append(Segment(FINISH, work_end, end, live))
    elif live:
        segments[-1] = Segment(segments[-1].kind, segments[-1].start, segments[-1].end, True)
    return _drawn(segments)


# A wait at the gate shorter than this, between two warm-ups, is drawn as
# warm-up: the container was ready just as its upstream steps ended, and two
# warm-ups around a hairline read as two phases where there was one.
SHORTEST_WAIT_SECONDS = 0.05


def _drawn(segments: List[Segment]) -> List[Segment]:
    """`segments` without empty ones, a hairline wait between warm-ups made warm-up,
    neighbours of one kind joined."""
    segments = [seg for seg in segments if seg.end > seg.start or seg.kind == WORK]
    kept: List[Segment] = []
    for index, seg in enumerate(segments):
        following = segments[index + 1] if index + 1 < len(segments) else None
        if (seg.kind == WAITING and seg.end - seg.start < SHORTEST_WAIT_SECONDS
                and following is not None and following.kind == WARM_UP):
            seg = Segment(WARM_UP, seg.start, seg.end, seg.live)
        if kept and kept[-1].kind == seg.kind and seg.kind != WORK:
            seg = Segment(seg.kind, kept.pop().start, seg.end, seg.live)
        kept.append(seg)
    return kept


def _last_known(step: StepStatus, started_at: float) -> float:
    """An end for an attempt whose exit nobody saw (the run ended meanwhile)."""
    if step.zenml_finished_at is not None and step.zenml_finished_at >= started_at:
        return step.zenml_finished_at
    return started_at


def timeline_bars(status: RunStatus, now: Optional[float] = None,
                  stages: Optional[Mapping[Tuple[str, int], StageTimes]] = None,
                  ) -> List[Tuple[str, List[Bar]]]:
    """Every step (pipeline order) with its bars.

    Args:
        now: where running attempts' bars end (default: the clock).
        stages: the containers' warm-up ends and gates (`stage_times`), if known.
    """
    now = time.time() if now is None else now
    return [(step.name, step_bars(step, now=now, ended=status.ended, stages=stages))
            for step in status.steps]


def time_span(rows: List[Tuple[str, List[Bar]]]) -> Optional[Tuple[float, float]]:
    """(first start, last end) over every bar; None before anything started."""
    bars = [bar for _, bars in rows for bar in bars]
    if not bars:
        return None
    return min(bar.start for bar in bars), max(bar.end for bar in bars)


def describe_bar(bar: Bar, origin: float) -> str:
    """The tooltip of a bar: step, attempt, times, and how it went."""
    how = bar.phase.value + (f" ({bar.reason})" if bar.reason else "")
    if bar.retried:
        how = "retried" + (f" ({bar.reason.split(': ', 1)[-1]})" if bar.reason else "")
    times = f"{bar.start - origin:.1f} s – {bar.end - origin:.1f} s"
    source = "" if bar.source == "container" else ", ZenML's record"
    container = f", container {bar.container_id}" if bar.container_id else ""
    if bar.never_ran:
        how = "its step never ran: the container waited at its gate and was removed"
    return f"{bar.step}, attempt {bar.attempt}: {times}{container}{source}; {how}"


def describe_segment(bar: Bar, segment: Segment, origin: float) -> str:
    """The tooltip of one phase of a bar."""
    times = f"{segment.start - origin:.1f} s – {segment.end - origin:.1f} s"
    length = f"{segment.end - segment.start:.1f} s" + (" so far" if segment.live else "")
    what = {
        WARM_UP: "warm-up (Python, ZenML, the step's module, the snapshot, the stack)",
        WAITING: "waiting at the gate for its upstream steps",
        UNSPLIT: "warm-up, then waiting at the gate (where one ended is known when the run "
                 "ends)",
        WORK: "the step's work (the step run, as ZenML recorded its start and end)",
        FINISH: "ZenML's finish (outputs published, the process's exit)",
    }[segment.kind]
    if segment.kind == WARM_UP and segment.start > bar.start:  # after its gate opened
        what = "warm-up after the gate (ZenML opens the step run: its record, its inputs)"
    return f"{bar.step}, attempt {bar.attempt}: {what}: {times} ({length})"
