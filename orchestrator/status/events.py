"""The status reducer's inputs: what a run's sources said, one fact at a time.

`ContainerEvent` (read from a Docker event or a container's inspect data, or
from a Swarm task), `AttemptPlaced` (the node a Swarm task of an attempt runs
on), `LogLine`, `ResourceSample`, `ZenmlFacts`, `RunEnded` and
`WatcherProblem`. Immutable values, no I/O; `orchestrator.status.reducer`
turns them into a `orchestrator.status.model.RunStatus`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from orchestrator.running.labels import attempt_of, pipeline_run_of, started_early, step_of
from orchestrator.running.step_timing import docker_time as parse_docker_time

# --------------------------------------------------------------------------
# Events: the reducer's inputs
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerEvent:
    """Something one step container did, from Docker's event stream or inspect data."""

    action: str  # create | start | kill | oom | die | destroy
    step: str
    attempt: int
    container_id: str
    time: float
    exit_code: Optional[int] = None
    run_id: Optional[str] = None
    started_early: bool = False

    ACTIONS = ("create", "start", "kill", "oom", "die", "destroy")

    @classmethod
    def from_docker(cls, raw: Mapping[str, Any]) -> Optional["ContainerEvent"]:
        """Read one decoded Docker event; None for events that say nothing to us."""
        if raw.get("Type", "container") != "container":
            return None
        action = str(raw.get("Action") or raw.get("status") or "")
        if action not in cls.ACTIONS:
            return None  # attach, resize, exec_*, health_status: ...
        actor = raw.get("Actor") or {}
        labels = actor.get("Attributes") or {}
        step = step_of(labels)
        if not step:
            return None
        if "timeNano" in raw:
            when = int(raw["timeNano"]) / 1e9
        else:
            when = float(raw.get("time", 0))
        exit_code = labels.get("exitCode")
        return cls(
            action=action,
            step=step,
            attempt=attempt_of(labels),
            container_id=str(actor.get("ID") or raw.get("id") or "")[:12],
            time=when,
            exit_code=None if exit_code is None else int_or(exit_code, -1),
            run_id=pipeline_run_of(labels),
            started_early=started_early(labels),
        )


def events_from_container(attrs: Mapping[str, Any]) -> List[ContainerEvent]:
    """The events a container has been through, from its inspect data.

    Used when a watcher attaches to a run that is already going, and to
    reconcile the model with the engine now and then, in case the event
    stream dropped something. `kill` cannot be told from inspect data.
    """
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    step = step_of(labels)
    if not step:
        return []
    state = attrs.get("State") or {}
    common = {
        "step": step,
        "attempt": attempt_of(labels),
        "container_id": str(attrs.get("Id", ""))[:12],
        "run_id": pipeline_run_of(labels),
        "started_early": started_early(labels),
    }
    created = parse_docker_time(attrs.get("Created"))
    started = parse_docker_time(state.get("StartedAt"))
    finished = parse_docker_time(state.get("FinishedAt"))
    events = [ContainerEvent("create", time=created or 0.0, **common)]
    if started is not None:
        events.append(ContainerEvent("start", time=started, **common))
    if state.get("Status") in ("exited", "dead") and finished is not None:
        if state.get("OOMKilled"):
            events.append(ContainerEvent("oom", time=finished, **common))
        events.append(ContainerEvent("die", time=finished,
                                     exit_code=int_or(state.get("ExitCode"), -1), **common))
    return events


def int_or(value: Any, default: int) -> int:
    """`value` as an integer, else `default`: labels and Docker's fields are text, or missing."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


@dataclass(frozen=True)
class AttemptPlaced:
    """A step attempt's Swarm task was placed on a node (my_swarm).

    Read from the task's node id on the swarm's manager, or from the node
    record a run keeps beside its logs. An attempt seen only this way (its
    service gone) has no container facts: its phase comes from ZenML.
    """

    step: str
    attempt: int
    node: str  # the node's host name
    time: float
    run_id: Optional[str] = None


@dataclass(frozen=True)
class LogLine:
    """A line a step's container printed."""

    step: str
    attempt: int
    line: str
    time: float


@dataclass(frozen=True)
class ZenmlStepFact:
    """What ZenML holds for one step: its latest step run and how many there are.

    Attributes:
        runs: every step run of the step, oldest first, as
            (status, started_at, finished_at); empty in older recordings.
    """

    status: str
    attempts: int = 1
    started_at: Optional[float] = None
    finished_at: Optional[float] = None
    runs: Tuple[Tuple[str, Optional[float], Optional[float]], ...] = ()

    def __post_init__(self) -> None:
        # Read back from JSON, the runs are lists: keep them hashable and comparable.
        object.__setattr__(self, "runs", tuple(tuple(run) for run in self.runs))


@dataclass(frozen=True)
class ZenmlFacts:
    """One reading of ZenML's records of a run."""

    run_status: str
    steps: Mapping[str, ZenmlStepFact]
    time: float
    run_reason: str = ""  # ZenML's status_reason of the run ("" if none)

    def to_json(self) -> Dict[str, Any]:
        return {"run_status": self.run_status, "run_reason": self.run_reason, "time": self.time,
                "steps": {name: vars(fact) for name, fact in self.steps.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ZenmlFacts":
        return cls(run_status=data["run_status"], time=float(data["time"]),
                   run_reason=data.get("run_reason", ""),
                   steps={name: ZenmlStepFact(**fact) for name, fact in data["steps"].items()})


@dataclass(frozen=True)
class ResourceSample:
    """What one step container used, sampled from the engine (`docker stats`).

    Attributes:
        cpu_cores: CPU used since the previous sample, in cores.
        memory_bytes: memory in use (page cache left out).
        memory_limit: the container's memory limit in bytes, None for none.
        cpu_limit: the container's CPU limit in cores, None for none.
    """

    step: str
    attempt: int
    time: float
    cpu_cores: float
    memory_bytes: int
    memory_limit: Optional[int] = None
    cpu_limit: Optional[float] = None


@dataclass(frozen=True)
class RunEnded:
    """The run is over: whoever watched it knows (the pipeline call returned)."""

    time: float


@dataclass(frozen=True)
class WatcherProblem:
    """The watcher could not read a source; the message is shown to the user."""

    message: Optional[str]
    time: float


Event = Union[ContainerEvent, AttemptPlaced, LogLine, ResourceSample, ZenmlFacts, RunEnded,
              WatcherProblem]
