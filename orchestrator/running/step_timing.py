"""Where one step container's time went: the orchestrator's and the container's clocks.

Every attempt of a step gets an `AttemptTiming`: what the orchestrator saw
(when it created and started the container, opened its gate, saw the step's
done line, knew the step had succeeded, saw the exit, removed it), what
Docker recorded (created, started, finished) and what the container reported
on its done line (`step_entrypoint.StageClock`: the end of each of its
stages, wall clock and process CPU). All times are epoch seconds of the same
machine's clock. The runner writes a run's timings to ``timings.json`` in the
run's log folder; `phases` turns one of them into named durations, the rows
of the benchmark's breakdown table (`benchmarks/README.md`).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

TIMINGS_FILE = "timings.json"


@dataclass
class AttemptTiming:
    """The clock readings of one attempt of one step (epoch seconds; None: not seen).

    Attributes:
        started_early: the container was started before its upstream steps
            succeeded and waited at its gate.
        lowered_cpu: it waited with a lower CPU weight (set back at its gate).
        create_called, start_returned: the orchestrator's create call began,
            its start call returned.
        ready_seen: the container's ready line (warm-up done) reached the
            orchestrator; kept for every attempt, also one that failed, whose
            container reports its stages only on the done line of a success.
        gate_opened: the orchestrator let the step run (early containers only).
        done_seen: the step's done line reached the orchestrator.
        success_known: the orchestrator counted the step as completed.
        exit_seen, removed: the orchestrator saw the container's exit, removed it.
        docker_created, docker_started, docker_finished: Docker's own record.
        inside: the container's report (`StageClock.report`), None if it printed none.
        given_up: a container started early that was removed at its gate (its
            step was skipped, or got a fresh container): no attempt of the step.
    """

    step: str
    attempt: int
    container: str = ""
    started_early: bool = False
    lowered_cpu: bool = False
    create_called: Optional[float] = None
    start_returned: Optional[float] = None
    ready_seen: Optional[float] = None
    gate_opened: Optional[float] = None
    done_seen: Optional[float] = None
    success_known: Optional[float] = None
    exit_seen: Optional[float] = None
    removed: Optional[float] = None
    docker_created: Optional[float] = None
    docker_started: Optional[float] = None
    docker_finished: Optional[float] = None
    inside: Optional[Dict[str, Any]] = None
    given_up: bool = False

    def read_docker_times(self, attrs: Mapping[str, Any]) -> None:
        """Take Docker's created/started/finished times from a container's inspect data."""
        state = attrs.get("State") or {}
        self.docker_created = docker_time(attrs.get("Created"))
        self.docker_started = docker_time(state.get("StartedAt"))
        self.docker_finished = docker_time(state.get("FinishedAt"))


def docker_time(text: Optional[str]) -> Optional[float]:
    """Docker's RFC 3339 time with nanoseconds, as epoch seconds (None if unset)."""
    if not text or text.startswith("0001-01-01"):
        return None
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", text)
    if not match:
        return None
    base, fraction, zone = match.groups()
    moment = datetime.fromisoformat(base + ("+00:00" if zone in (None, "Z") else zone))
    return moment.astimezone(timezone.utc).timestamp() + (float(fraction) if fraction else 0.0)


def write_timings(folder: Path, timings: List[AttemptTiming]) -> Optional[Path]:
    """Write a run's timings as JSON into `folder`; None if it cannot be written."""
    path = folder / TIMINGS_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([asdict(t) for t in timings], indent=1))
    except OSError:
        return None
    return path


def read_timings(folder: Path, *, given_up: bool = False) -> List[AttemptTiming]:
    """A run's timings as written by `write_timings` ([] when there are none).

    Args:
        given_up: also the containers removed at their gate (`AttemptTiming.given_up`),
            which were no attempt of their step.
    """
    try:
        raw = json.loads((folder / TIMINGS_FILE).read_text())
    except (OSError, ValueError):
        return []
    names = {f.name for f in fields(AttemptTiming)}
    timings = [AttemptTiming(**{k: v for k, v in entry.items() if k in names}) for entry in raw]
    return [timing for timing in timings if given_up or not timing.given_up]


@dataclass(frozen=True)
class Phase:
    """One named part of a step container's life: wall seconds, and CPU seconds if known."""

    name: str
    seconds: float
    cpu: Optional[float] = None


# The container's stage names (step_entrypoint) and the phase each one ends.
_STAGE_PHASES = (
    ("import zenml", "Python imports (zenml)"),
    ("store and snapshot", "ZenML: client, store, snapshot"),
    ("code", "ZenML: integrations, code download"),
    ("stack and step module", "ZenML: stack; step module imports"),
    ("waited for upstream steps", "waiting for upstream steps (early start)"),
    ("run record and inputs", "ZenML: run record, inputs"),
    ("step function", "step function"),
    ("outputs, publish, teardown", "ZenML: outputs, publish, teardown"),
)
PHASE_ORDER = (
    "create + start calls (orchestrator)",
    "Docker start -> Python ready",
    *(phase for _, phase in _STAGE_PHASES),
    "done line -> process exit",
    "exit -> seen by orchestrator",
    "removal (orchestrator)",
    "done line -> success known (orchestrator)",
)


def phases(timing: AttemptTiming) -> List[Phase]:
    """The named durations of one attempt, in the order of `PHASE_ORDER` (known ones only).

    Container stages come with their CPU seconds (the container's process,
    all threads); the others are wall clock only.
    """
    result: List[Phase] = []

    def add(name: str, start: Optional[float], end: Optional[float],
            cpu: Optional[float] = None) -> None:
        if start is not None and end is not None:
            result.append(Phase(name, max(0.0, end - start), cpu))

    add(PHASE_ORDER[0], timing.create_called, timing.start_returned)
    inside = timing.inside or {}
    ready = inside.get("python_ready") or [None, None]
    add(PHASE_ORDER[1], timing.docker_started, ready[0], ready[1])
    previous_wall, previous_cpu = ready
    stages = {stage: (wall, cpu) for stage, wall, cpu in inside.get("stages", ())}
    last_wall = None
    for stage, phase in _STAGE_PHASES:
        if stage not in stages or previous_wall is None:
            continue
        wall, cpu = stages[stage]
        add(phase, previous_wall, wall, None if previous_cpu is None else cpu - previous_cpu)
        previous_wall, previous_cpu, last_wall = wall, cpu, wall
    add(PHASE_ORDER[-4], last_wall, timing.docker_finished)
    add(PHASE_ORDER[-3], timing.docker_finished, timing.exit_seen)
    add(PHASE_ORDER[-2], timing.exit_seen, timing.removed)
    add(PHASE_ORDER[-1], timing.done_seen, timing.success_known)
    return result
