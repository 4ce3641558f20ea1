"""Where a step's time goes, measured: the numbers and timelines the notebooks show.

Two clocks, both of this machine: Docker's (when a container was created,
started, finished) and ZenML's (when the step function started and ended,
recorded inside the container). Together they tell a step's **start-up**
(container creation to the step function: the engine, Python, ``import
zenml``, ZenML's preparation) from its **work** (the step function) and
what comes **after** (ZenML's teardown until the container exits).
"""

from __future__ import annotations

import statistics
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

Phases = Dict[str, Tuple[float, float]]


def container_phases(containers: Iterable[Any], run: Any) -> List[Tuple[str, Phases]]:
    """(step, {"start-up": ..., "work": ..., "after": ...}) per container, seconds from the first creation.

    Args:
        containers: docker-py containers of the run (kept, e.g. ``keep_containers=True``).
        run: the ZenML run (hydrated), for the step functions' start and end.
    """
    from orchestrator.running.labels import step_of
    from orchestrator.status.events import parse_docker_time
    from orchestrator.zenml_records import epoch_seconds

    found = []
    for container in containers:
        attrs = container.attrs
        step = step_of(container.labels) or container.name
        state = attrs.get("State") or {}
        created = parse_docker_time(attrs.get("Created"))
        finished = parse_docker_time(state.get("FinishedAt"))
        record = run.steps.get(step)
        began = epoch_seconds(record.start_time) if record is not None else None
        ended = epoch_seconds(record.end_time) if record is not None else None
        if None in (created, began, ended):
            continue
        found.append((step, created, began, ended, finished))
    if not found:
        return []
    origin = min(row[1] for row in found)
    rows = []
    for step, created, began, ended, finished in sorted(found, key=lambda r: r[1]):
        phases: Phases = {"start-up": (created - origin, began - origin),
                          "work": (began - origin, ended - origin)}
        if finished is not None and finished > ended:
            phases["after"] = (ended - origin, finished - origin)
        rows.append((step, phases))
    return rows


def phase_medians(rows: Iterable[Tuple[str, Phases]]) -> Dict[str, float]:
    """The median length (seconds) of each phase over the rows."""
    lengths: Dict[str, List[float]] = {}
    for _, phases in rows:
        for name, (start, end) in phases.items():
            lengths.setdefault(name, []).append(end - start)
    return {name: statistics.median(values) for name, values in lengths.items()}


def record_times(run: Any, steps: Optional[Iterable[str]] = None
                 ) -> List[Tuple[str, float, float]]:
    """(step, start, end) of the step functions, seconds from the first start (ZenML's clock)."""
    from orchestrator.zenml_records import epoch_seconds

    wanted = set(steps) if steps is not None else None
    found = [(name, epoch_seconds(s.start_time), epoch_seconds(s.end_time))
             for name, s in run.steps.items()
             if (wanted is None or name in wanted) and s.start_time and s.end_time]
    if not found:
        return []
    origin = min(start for _, start, _ in found)
    return sorted(((n, s - origin, e - origin) for n, s, e in found), key=lambda r: (r[1], r[0]))


def orchestrator_spans(timings: Iterable[Any]) -> List[Tuple[str, float, float]]:
    """(step, released, finished) of each step's last attempt, by the orchestrator's clock.

    Released: when the orchestrator let the step run (its gate opened, or
    its container's start returned); finished: when it counted the step
    done (else saw the container exit). These spans show what the
    orchestrator decided: two steps it ran side by side overlap even if
    their step functions, a second long each, happened not to (one
    container may still be loading ZenML when the other's function ends).

    Args:
        timings: `running.step_timing.AttemptTiming`s of one run (`read_timings`).

    Returns:
        Rows sorted by release, in seconds from the first release; attempts
        missing either reading are left out.
    """
    last: Dict[str, Any] = {}
    for timing in timings:
        if timing.step not in last or timing.attempt > last[timing.step].attempt:
            last[timing.step] = timing
    found = []
    for step, timing in last.items():
        released = timing.gate_opened or timing.start_returned
        finished = timing.success_known or timing.exit_seen
        if released is not None and finished is not None:
            found.append((step, released, finished))
    if not found:
        return []
    origin = min(released for _, released, _ in found)
    return sorted(((step, r - origin, f - origin) for step, r, f in found),
                  key=lambda row: (row[1], row[0]))


def mode_timeline_rows(notes: Mapping[str, Mapping[str, Any]], statuses: Mapping[str, str],
                       steps: Iterable[str]) -> List[Tuple[str, list]]:
    """Gantt rows for one run of the kit's failing pipeline, from the probe steps' notes.

    Each step that started gets a bar from its start to its end (or to the
    last moment anything was noted, if it never noted an end), coloured by
    ZenML's final status; the moment `fail_soon` failed is a thin red bar.
    """
    from orchestrator.status.drawing import GanttBar

    times = [float(n["time"]) for n in notes.values() if "time" in n]
    if not times:
        return []
    origin, last = min(times), max(times)
    rows = []
    for step in steps:
        started = notes.get(f"{step}.started")
        if started is None:
            rows.append((f"{step} (never started)", []))
            continue
        start = float(started["time"]) - origin
        end_note = notes.get(f"{step}.ended") or notes.get(f"{step}.failing")
        end = (float(end_note["time"]) if end_note else last) - origin
        state = statuses.get(step, "running")
        bars = [GanttBar(start, max(end, start + 0.05), state=state,
                         title=f"{step}: {state}, {start:.1f}-{end:.1f} s")]
        if step == "fail_soon" and "fail_soon.failing" in notes:
            at = float(notes["fail_soon.failing"]["time"]) - origin
            bars.append(GanttBar(at, at + 0.15, state="failed", title=f"fails at {at:.1f} s"))
        rows.append((f"{step} ({state})", bars))
    return rows


def attempt_timeline_rows(attempts: Iterable[Any]) -> List[Tuple[str, list]]:
    """Gantt rows for one step's attempts (ZenML's step runs, one per attempt, by version).

    Each attempt is a bar from its step run's start to its end, coloured by
    what ZenML recorded (``retried`` for an attempt that got another); the
    gap before the next attempt is drawn as a thin "retrying" bar: the retry
    delay plus the new container's start-up, until ZenML started the step.
    An attempt without an end time (its container was killed before ZenML
    could write it) ends where the record says nothing more: at the next
    attempt's start.
    """
    from orchestrator.status.drawing import BarStyle, GanttBar

    ordered = sorted(attempts, key=lambda a: a.version)
    starts = [a.start_time for a in ordered if a.start_time is not None]
    if not starts:
        return []
    origin = min(starts)
    rows: List[Tuple[str, list]] = []
    for index, attempt in enumerate(ordered):
        if attempt.start_time is None:
            rows.append((f"attempt {attempt.version} (never started)", []))
            continue
        following = ordered[index + 1] if index + 1 < len(ordered) else None
        start = (attempt.start_time - origin).total_seconds()
        end_time = attempt.end_time or (following.start_time if following else None)
        end = (end_time - origin).total_seconds() if end_time else start + 0.05
        state = attempt.status.value
        bars = [GanttBar(start, max(end, start + 0.05), state=state,
                         title=f"attempt {attempt.version}: {state}, {start:.1f}-{end:.1f} s")]
        if following is not None and following.start_time is not None:
            resumed = (following.start_time - origin).total_seconds()
            bars.append(GanttBar(end, max(resumed, end + 0.05), state="retrying",
                                 title=f"delay and a new container: {resumed - end:.1f} s",
                                 style=BarStyle("#fde68a", "#b45309", height=0.35)))
        rows.append((f"attempt {attempt.version} ({state})", bars))
    return rows
