"""The live status of one pipeline run's steps: the model and its pure reducer.

Two sources tell what a run is doing, and neither is enough alone:

* the run's **containers** (found by our labels) and Docker's event stream say
  at once when a step's container is created, starts, is killed or exits, and
  with which exit code, but know nothing of cached steps, and nothing at all
  once a finished container was removed;
* **ZenML's records** (the run and its step runs) know cached steps, final
  statuses and timings of steps whose containers are long gone, but are
  written later, and only from inside a container that got far enough.

This module keeps the two apart and joins them in one pure place. It does no
I/O (no Docker or ZenML calls, no threads, no printing), so the unit tests can
replay events recorded from real runs:

* the **model** (`RunStatus`, `StepStatus`, `StepPhase`; per step every
  container `Attempt` and ZenML step run `ZenmlRun`, each with how it went,
  and the engine's latest `ResourceUsage` sample), immutable values;
* the **events**, the reducer's inputs: `ContainerEvent` (read from a Docker
  event or a container's inspect data, or from a Swarm task),
  `AttemptPlaced` (the node a Swarm task of an attempt runs on), `LogLine`,
  `ResourceSample`, `ZenmlFacts`, `RunEnded` and `WatcherProblem`;
* the **reducer** `apply(status, event) -> status`; after every event the
  phases (of steps and of their attempts) are derived again from all facts
  (`resolve`), so the order in which the sources answer does not matter;
  `run_is_over` says when nothing more will happen.

Around it: `orchestrator.status.records` reads ZenML's records of a run,
`orchestrator.status.watcher` follows a run live and feeds the reducer,
`orchestrator.status.text` draws a status as text and `orchestrator.status.widget` as
a notebook panel. ``python -m orchestrator.status [RUN|latest] [--follow]
[--next]`` runs the terminal command of `orchestrator.status.cli`, so the
command users know keeps its short name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from orchestrator.running.labels import attempt_of, pipeline_run_of, started_early, step_of
from orchestrator.running.scheduler import (
    ExecutionMode,
    RetryPolicy,
    SchedulerError,
    topological_order,
)
from orchestrator.running.step_timing import docker_time as parse_docker_time

# Longest last log line kept per step: enough for a table cell, small in memory.
MAX_LINE_CHARS = 240
# A run ZenML calls finished, with nothing left running, is declared over after
# this many quiet seconds even if some step could in theory still start.
QUIET_SECONDS_BEFORE_OVER = 15.0


# --------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------


class StepPhase(str, Enum):
    """Where a step is, as a user wants to read it."""

    PENDING = "pending"  # may start (its upstream steps are done): waits for a slot
    WAITING = "waiting"  # waits for an upstream step
    STARTING = "starting"  # its container exists but does not run yet
    RUNNING = "running"
    RETRYING = "retrying"  # an attempt failed, another one will come
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"  # will never run (an upstream failed, or the run ended)
    STOPPED = "stopped"  # its container was stopped on request
    CACHED = "cached"  # ZenML reused an earlier output: no container at all

    @property
    def is_final(self) -> bool:
        return self in FINAL_PHASES

    @property
    def is_active(self) -> bool:
        return self in ACTIVE_PHASES


FINAL_PHASES = frozenset(
    {StepPhase.COMPLETED, StepPhase.FAILED, StepPhase.SKIPPED, StepPhase.STOPPED,
     StepPhase.CACHED}
)
ACTIVE_PHASES = frozenset({StepPhase.STARTING, StepPhase.RUNNING, StepPhase.RETRYING})
# The order counts are listed in: outcomes first, then what is going on.
SUMMARY_ORDER = (
    StepPhase.COMPLETED, StepPhase.CACHED, StepPhase.FAILED, StepPhase.STOPPED,
    StepPhase.SKIPPED, StepPhase.RUNNING, StepPhase.RETRYING, StepPhase.STARTING,
    StepPhase.PENDING, StepPhase.WAITING,
)
_DONE_OK = frozenset({StepPhase.COMPLETED, StepPhase.CACHED})
_BROKEN = frozenset({StepPhase.FAILED, StepPhase.SKIPPED, StepPhase.STOPPED})

# Container states as we track them (Docker's own words, plus "removed").
CREATED, RUNNING, EXITED, REMOVED = "created", "running", "exited", "removed"
_ALIVE = (CREATED, RUNNING)

# ZenML execution statuses, by value, and what they mean for a step.
_ZENML_STEP_PHASE = {
    "completed": StepPhase.COMPLETED,
    "cached": StepPhase.CACHED,
    "failed": StepPhase.FAILED,
    "stopped": StepPhase.STOPPED,
    "cancelled": StepPhase.STOPPED,
    "skipped": StepPhase.SKIPPED,
    "retrying": StepPhase.RETRYING,
    "retried": StepPhase.RETRYING,
    "initializing": StepPhase.STARTING,
    "provisioning": StepPhase.STARTING,
    "queued": StepPhase.STARTING,
    "running": StepPhase.RUNNING,
    "stopping": StepPhase.RUNNING,
    "cancelling": StepPhase.RUNNING,
    "paused": StepPhase.RUNNING,
    "resuming": StepPhase.RUNNING,
}
ZENML_FINAL_RUN_STATUSES = frozenset({"completed", "failed", "stopped", "cancelled"})
# ZenML run statuses that mean someone asked to stop the run.
_RUN_STOPPING = frozenset({"stopping", "stopped", "cancelling", "cancelled"})


@dataclass(frozen=True)
class ResourceUsage:
    """What one container used, sampled from the engine (`docker stats`).

    Attributes:
        time: when the latest sample was taken (epoch seconds).
        cpu_cores: CPU used since the previous sample, in cores (1.0 = one
            core busy all the time).
        memory_bytes: memory in use now (the page cache it could give back
            left out, as `docker stats` shows it).
        peak_memory_bytes: the most `memory_bytes` seen in any sample.
        memory_limit: the container's memory limit in bytes, None when it
            has none (then it may use the whole machine's memory).
        cpu_limit: the container's CPU limit in cores, None when it has none.
    """

    time: float
    cpu_cores: float = 0.0
    memory_bytes: int = 0
    peak_memory_bytes: int = 0
    memory_limit: Optional[int] = None
    cpu_limit: Optional[float] = None

    @property
    def memory_fraction(self) -> Optional[float]:
        """Memory in use as a fraction of the limit; None without a limit."""
        if not self.memory_limit:
            return None
        return self.memory_bytes / self.memory_limit


@dataclass(frozen=True)
class Attempt:
    """One attempt of a step: one container, from its creation to its exit.

    The container facts come from Docker (events or inspect data);
    `phase` and `reason` (how this attempt went) are derived by `resolve`:
    the latest attempt shares its step's phase, an earlier one was retried.
    """

    number: int
    container_id: Optional[str] = None  # Docker's short id (12 characters)
    container_state: Optional[str] = None  # created | running | exited | removed
    created_at: Optional[float] = None  # epoch seconds, Docker's clock
    started_at: Optional[float] = None
    finished_at: Optional[float] = None
    exit_code: Optional[int] = None
    killed: bool = False  # Docker delivered a kill (a stop) before it exited
    oom_killed: bool = False
    usage: Optional[ResourceUsage] = None  # the engine's latest sample, while it ran
    started_early: bool = False  # it waits for its upstream steps before running the step
    node: Optional[str] = None  # host name of the swarm node its task ran on (my_swarm)
    phase: StepPhase = StepPhase.STARTING
    reason: str = ""
    # Derived by `resolve`: a container started early that ended (was removed)
    # while it waited at its gate: its step never ran in it, so its exit code
    # and memory say nothing about the step.
    never_ran: bool = False


@dataclass(frozen=True)
class ZenmlRun:
    """One step run ZenML recorded for a step (one per attempt that got that far).

    `phase` and `reason` are derived by `resolve`, as for `Attempt`.
    """

    status: str
    started_at: Optional[float] = None
    finished_at: Optional[float] = None
    phase: StepPhase = StepPhase.RUNNING
    reason: str = ""


_NO_ATTEMPT = Attempt(number=0)


@dataclass(frozen=True)
class StepStatus:
    """One step: the facts seen so far and the phase derived from them.

    `attempts` holds every container attempt seen, oldest first; the
    container properties (`attempt`, `container_id`, `exit_code`, ...) are
    those of the latest one. ZenML facts are those of its latest step run,
    `zenml_runs` all of them. `phase` and `reason` are derived by `resolve`
    and never set directly.
    """

    name: str
    upstream: Tuple[str, ...] = ()
    max_retries: int = 0
    phase: StepPhase = StepPhase.PENDING
    reason: str = ""
    # -- from the step's containers, one record per attempt
    attempts: Tuple[Attempt, ...] = ()
    last_line: str = ""
    # -- from ZenML (latest step run)
    zenml_status: Optional[str] = None
    zenml_attempts: int = 0  # how many step runs ZenML holds for this step
    zenml_started_at: Optional[float] = None
    zenml_finished_at: Optional[float] = None
    zenml_runs: Tuple[ZenmlRun, ...] = ()

    # -- the latest attempt's container ----------------------------------------
    @property
    def latest(self) -> Attempt:
        """The latest attempt seen (an empty one, number 0, before any container)."""
        return self.attempts[-1] if self.attempts else _NO_ATTEMPT

    @property
    def attempt(self) -> int:
        return self.latest.number

    @property
    def container_id(self) -> Optional[str]:
        return self.latest.container_id

    @property
    def container_state(self) -> Optional[str]:
        return self.latest.container_state

    @property
    def created_at(self) -> Optional[float]:
        return self.latest.created_at

    @property
    def started_at(self) -> Optional[float]:
        return self.latest.started_at

    @property
    def finished_at(self) -> Optional[float]:
        return self.latest.finished_at

    @property
    def exit_code(self) -> Optional[int]:
        return self.latest.exit_code

    @property
    def killed(self) -> bool:
        return self.latest.killed

    @property
    def oom_killed(self) -> bool:
        return self.latest.oom_killed

    @property
    def usage(self) -> Optional[ResourceUsage]:
        return self.latest.usage

    @property
    def node(self) -> Optional[str]:
        """The node (host name) the latest attempt ran on; None off a swarm, or not placed yet."""
        return self.latest.node

    # -- times ---------------------------------------------------------------
    @property
    def start_time(self) -> Optional[float]:
        """When the step started: its container, else what ZenML recorded."""
        return self.started_at if self.started_at is not None else self.zenml_started_at

    @property
    def end_time(self) -> Optional[float]:
        """When the step ended, once it has."""
        if self.finished_at is not None:
            return self.finished_at
        if self.phase.is_final and self.container_state not in _ALIVE:
            return self.zenml_finished_at
        return None

    def duration(self, now: Optional[float] = None) -> Optional[float]:
        """Seconds from start to end, or to `now` while the step (or its container) runs."""
        start = self.start_time
        if start is None:
            return None
        end = self.end_time
        if end is None:
            if not (self.phase.is_active or self.container_alive):
                return None
            end = time.time() if now is None else now
        return max(0.0, end - start)

    @property
    def container_alive(self) -> bool:
        return self.container_state in _ALIVE

    # -- what the steps tables show -----------------------------------------
    @property
    def ran(self) -> bool:
        """False when the latest container ended while it waited at its gate: its
        start, duration, exit code and memory are then not the step's."""
        return not self.latest.never_ran

    @property
    def shown_line(self) -> Tuple[str, bool]:
        """(text, is_reason) for the last column of the steps tables.

        The last log line, except for a step that never ran, or was stopped (its
        last line is how the stop ended ZenML's code, often a traceback), or
        has printed nothing yet: then the reason says what happened.
        """
        if self.reason and (not self.ran or self.phase == StepPhase.STOPPED
                            or not self.last_line):
            return self.reason, True
        return self.last_line, not self.last_line


@dataclass(frozen=True)
class RunStatus:
    """A whole run: its steps in pipeline order and how far it got."""

    run_id: str
    run_name: str = ""
    pipeline_name: str = ""
    steps: Tuple[StepStatus, ...] = ()
    execution_mode: ExecutionMode = ExecutionMode.CONTINUE_ON_FAILURE
    zenml_status: str = "initializing"
    zenml_reason: str = ""  # why ZenML's record says the run ended as it did
    ended: bool = False  # the run is over and the watcher has stopped
    error: Optional[str] = None  # a problem of the watcher, shown to the user
    updated_at: float = 0.0  # time of the latest fact

    def __post_init__(self) -> None:
        # Recorded runs and ZenML give the mode as text; the rules need the enum.
        object.__setattr__(self, "execution_mode", ExecutionMode(self.execution_mode))

    def step(self, name: str) -> StepStatus:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"run {self.run_name or self.run_id} has no step {name!r}; "
                       f"its steps are {[s.name for s in self.steps]}")

    @property
    def phases(self) -> Dict[str, StepPhase]:
        return {step.name: step.phase for step in self.steps}

    def counts(self) -> Dict[StepPhase, int]:
        """How many steps are in each phase (phases with none left out)."""
        result: Dict[StepPhase, int] = {}
        for step in self.steps:
            result[step.phase] = result.get(step.phase, 0) + 1
        return result

    @property
    def on_nodes(self) -> bool:
        """Whether some attempt is known to have run on a named node (a my_swarm run):
        the views show a node column only then."""
        return any(attempt.node for step in self.steps for attempt in step.attempts)

    @property
    def finished_count(self) -> int:
        return sum(1 for step in self.steps if step.phase.is_final)

    @property
    def outcome(self) -> str:
        """The run's state in one word: initializing, running, completed, failed, stopped."""
        if self.ended or run_is_over(self):
            if self.zenml_status in ZENML_FINAL_RUN_STATUSES:
                return "stopped" if self.zenml_status == "cancelled" else self.zenml_status
            counts = self.counts()
            if counts.get(StepPhase.FAILED):
                return "failed"
            if counts.get(StepPhase.STOPPED):
                return "stopped"
            return "completed" if self.steps else "unknown"
        if any(s.attempt or s.zenml_status for s in self.steps):
            return "running"
        if self.zenml_status in ZENML_FINAL_RUN_STATUSES:
            return "running"  # ZenML is done, the containers are not (yet) known
        return self.zenml_status

    @property
    def ended_because(self) -> str:
        """Why the run ended as it did, as ZenML recorded it ("" while it goes on)."""
        return self.zenml_reason if self.outcome in ("failed", "stopped") else ""

    def summary(self) -> str:
        """'3/4 steps finished: 2 completed, 1 cached, 1 running'."""
        counts = self.counts()
        parts = [f"{counts[p]} {p.value}" for p in SUMMARY_ORDER if counts.get(p)]
        return (f"{self.finished_count}/{len(self.steps)} steps finished"
                + (": " + ", ".join(parts) if parts else ""))


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


# --------------------------------------------------------------------------
# The pure part: building, reducing, deriving
# --------------------------------------------------------------------------


def pipeline_order(upstreams: Mapping[str, Sequence[str]]) -> List[str]:
    """Steps in an order where upstream steps come first, else as declared.

    ZenML's snapshot lists steps in the order the pipeline function called
    them, which is what a reader expects; the scheduler's own order only
    moves a step after its upstream steps when the declaration does not.
    Upstream steps the mapping does not list are ignored.
    """
    known = {name: [up for up in ups if up in upstreams] for name, ups in upstreams.items()}
    try:
        return topological_order(known)
    except SchedulerError:  # a cycle (ZenML never makes one): keep the declared order
        return list(upstreams)


def new_run_status(
    run_id: str,
    steps: Mapping[str, Mapping[str, Any]],
    *,
    run_name: str = "",
    pipeline_name: str = "",
    execution_mode: Union[ExecutionMode, str] = ExecutionMode.CONTINUE_ON_FAILURE,
    zenml_status: str = "initializing",
    zenml_reason: str = "",
) -> RunStatus:
    """A run before anything happened.

    Args:
        steps: per step name (in declaration order), a mapping with
            `upstream` (names) and optionally `max_retries`.
    """
    upstreams = {name: list(spec.get("upstream", ())) for name, spec in steps.items()}
    status = RunStatus(
        run_id=str(run_id),
        run_name=run_name,
        pipeline_name=pipeline_name,
        steps=tuple(
            StepStatus(name=name, upstream=tuple(upstreams[name]),
                       max_retries=int(steps[name].get("max_retries", 0) or 0))
            for name in pipeline_order(upstreams)
        ),
        execution_mode=ExecutionMode(execution_mode),
        zenml_status=zenml_status,
        zenml_reason=zenml_reason,
    )
    return resolve(status)


def apply(status: RunStatus, event: Event) -> RunStatus:
    """The run after `event`: record the new fact, then derive every phase again.

    Events may come twice (event stream and inspect data tell the same
    story), late or out of order; facts only move forward, so applying an
    old event again changes nothing.
    """
    if status.ended and not isinstance(event, (ZenmlFacts, WatcherProblem)):
        return status
    if isinstance(event, ContainerEvent):
        if event.run_id and event.run_id != status.run_id:
            return status
        new = _with_step(status, event.step, lambda s: _container_fact(s, event))
    elif isinstance(event, AttemptPlaced):
        if event.run_id and event.run_id != status.run_id:
            return status
        new = _with_step(status, event.step, lambda s: _placed_fact(s, event))
    elif isinstance(event, LogLine):
        new = _with_step(status, event.step, lambda s: _log_fact(s, event))
    elif isinstance(event, ResourceSample):
        new = _with_step(status, event.step, lambda s: _resource_fact(s, event))
    elif isinstance(event, ZenmlFacts):
        new = _zenml_facts(status, event)
    elif isinstance(event, RunEnded):
        new = replace(status, ended=True)
    elif isinstance(event, WatcherProblem):
        new = replace(status, error=event.message)
    else:
        raise TypeError(f"apply() does not know events of type {type(event).__name__}")
    when = getattr(event, "time", 0.0) or 0.0
    if new is status:
        return status
    if not isinstance(event, (LogLine, ResourceSample)) or len(new.steps) != len(status.steps):
        # (a log line or a sample never changes a phase, unless it adds a step)
        new = resolve(new)
    if new == status:
        return status
    return replace(new, updated_at=max(status.updated_at, when))


def _with_step(status: RunStatus, name: str,
               change: Callable[[StepStatus], StepStatus]) -> RunStatus:
    """Change one step; a step the snapshot did not list is added at the end."""
    steps = list(status.steps)
    for i, step in enumerate(steps):
        if step.name == name:
            changed = change(step)
            if changed is step:
                return status
            steps[i] = changed
            break
    else:
        steps.append(change(StepStatus(name=name)))
    return replace(status, steps=tuple(steps))


def _container_fact(step: StepStatus, event: ContainerEvent) -> StepStatus:
    """Record one container event in its attempt (any attempt: late news counts too)."""
    attempts = list(step.attempts)
    index = _attempt_index(attempts, event.attempt)
    if index is None:
        attempts.append(Attempt(number=event.attempt))
        attempts.sort(key=lambda a: a.number)
        index = _attempt_index(attempts, event.attempt)
    before = attempts[index]
    if before.container_id and event.container_id and before.container_id != event.container_id:
        if not (before.started_early and event.action == "create"):
            return step  # late news of a container that was replaced
        # A container started early gave its slot up before its step ran; the
        # step's attempt got a fresh container, which replaces it.
        before = Attempt(number=event.attempt)
    after = _attempt_fact(before, event)
    if after is before and len(attempts) == len(step.attempts):
        return step
    attempts[index] = after
    return replace(step, attempts=tuple(attempts))


def _placed_fact(step: StepStatus, event: AttemptPlaced) -> StepStatus:
    """Record the node of one attempt (a task never moves: the first node named stays)."""
    attempts = list(step.attempts)
    index = _attempt_index(attempts, event.attempt)
    if index is None:
        attempts.append(Attempt(number=event.attempt, node=event.node))
        attempts.sort(key=lambda a: a.number)
    elif attempts[index].node is None and event.node:
        attempts[index] = replace(attempts[index], node=event.node)
    else:
        return step
    return replace(step, attempts=tuple(attempts))


def _attempt_index(attempts: Sequence[Attempt], number: int) -> Optional[int]:
    for index, attempt in enumerate(attempts):
        if attempt.number == number:
            return index
    return None


def _attempt_fact(attempt: Attempt, event: ContainerEvent) -> Attempt:
    """One container's facts after `event`: they only move forward."""
    state = attempt.container_state
    changes: Dict[str, Any] = {}
    if event.container_id and attempt.container_id is None:
        changes["container_id"] = event.container_id
    if event.started_early and not attempt.started_early:
        changes["started_early"] = True
    if event.action == "create":
        if attempt.created_at is None:
            changes["created_at"] = event.time
        if state is None:
            changes["container_state"] = CREATED
    elif event.action == "start":
        if attempt.started_at is None:
            changes["started_at"] = event.time
        if state in (None, CREATED):
            changes["container_state"] = RUNNING
    elif event.action == "kill":
        if state in (None, CREATED, RUNNING) and not attempt.killed:
            changes["killed"] = True
    elif event.action == "oom":
        if not attempt.oom_killed:
            changes["oom_killed"] = True
    elif event.action == "die":
        if attempt.exit_code is None:
            changes["exit_code"] = event.exit_code
            changes["finished_at"] = event.time
        if state not in (REMOVED, EXITED):
            changes["container_state"] = EXITED
    elif event.action == "destroy":
        if state in (None, CREATED, RUNNING) and attempt.exit_code is None:
            # Removed without an exit we saw: it was force-removed (a stop).
            changes["killed"] = True
            changes["finished_at"] = event.time
        if state != REMOVED:
            changes["container_state"] = REMOVED
    return replace(attempt, **changes) if changes else attempt


def _log_fact(step: StepStatus, event: LogLine) -> StepStatus:
    if event.attempt < step.attempt:
        return step
    line = event.line.strip()
    if not line:
        return step
    if len(line) > MAX_LINE_CHARS:
        line = line[: MAX_LINE_CHARS - 1] + "…"
    if line == step.last_line:
        return step
    return replace(step, last_line=line)


def _resource_fact(step: StepStatus, event: ResourceSample) -> StepStatus:
    """Keep an attempt's latest sample and its peak memory."""
    attempts = list(step.attempts)
    index = _attempt_index(attempts, event.attempt)
    if index is None:
        return step  # a sample of a container we have not seen: its events will come
    attempt = attempts[index]
    old = attempt.usage
    if old is not None and old.time >= event.time:
        return step
    usage = ResourceUsage(
        time=event.time,
        cpu_cores=event.cpu_cores,
        memory_bytes=event.memory_bytes,
        peak_memory_bytes=max(event.memory_bytes, old.peak_memory_bytes if old else 0),
        memory_limit=event.memory_limit,
        cpu_limit=event.cpu_limit,
    )
    attempts[index] = replace(attempt, usage=usage)
    return replace(step, attempts=tuple(attempts))


def _zenml_facts(status: RunStatus, facts: ZenmlFacts) -> RunStatus:
    for name, fact in facts.steps.items():
        status = _with_step(status, name, lambda s, f=fact: _zenml_step_fact(s, f))
    if status.zenml_status == facts.run_status and status.zenml_reason == facts.run_reason:
        return status
    return replace(status, zenml_status=facts.run_status, zenml_reason=facts.run_reason)


def _zenml_step_fact(step: StepStatus, fact: ZenmlStepFact) -> StepStatus:
    runs = step.zenml_runs
    if fact.runs:
        old = {i: (r.status, r.started_at, r.finished_at) for i, r in enumerate(runs)}
        if len(runs) != len(fact.runs) or any(old[i] != run for i, run in enumerate(fact.runs)):
            runs = tuple(ZenmlRun(status=run_status, started_at=started, finished_at=finished)
                         for run_status, started, finished in fact.runs)
    new = replace(
        step,
        zenml_status=fact.status,
        zenml_attempts=max(step.zenml_attempts, fact.attempts),
        zenml_started_at=fact.started_at,
        zenml_finished_at=fact.finished_at,
        zenml_runs=runs,
    )
    return step if new == step else new


def resolve(status: RunStatus) -> RunStatus:
    """Derive every step's phase from its facts and its upstream steps' phases.

    The rules, per step:

    1. ZenML's final word on the step's current attempt wins: it is written
       by the step itself (its container may still be shutting down).
    2. Otherwise the container is the freshest truth: created -> starting,
       running, exit 0 -> completed, killed -> stopped, other exits ->
       retrying while retries are left, else failed.
    3. Otherwise ZenML's non-final word (a step seen only by ZenML).
    4. A step nothing was seen of is skipped when an upstream step failed,
       was skipped or stopped, when the mode starts nothing after a failure,
       or when the run ended; else pending when its upstream steps are done,
       else waiting.

    Each attempt (container, and ZenML step run) gets a phase too: the
    latest shares its step's, an earlier one was retried (RETRYING, with
    how it ended). A status whose phases are already right is returned as is.
    """
    phases: Dict[str, StepPhase] = {}
    failed_somewhere = any(
        _observed_phase(s, status)[0] == StepPhase.FAILED for s in status.steps
    )
    new_steps = []
    for step in status.steps:
        phase, reason = _observed_phase(step, status)
        at_gate = _waits_at_its_gate(step, phases)
        if phase is not None and at_gate:
            phase, reason = ((StepPhase.STARTING, "started early, waits for "
                              + ", ".join(up for up in step.upstream
                                          if phases.get(up) not in _DONE_OK))
                             if step.container_alive else (None, ""))
        if phase is None:
            phase, reason = _unstarted_phase(step, phases, status, failed_somewhere)
        phases[step.name] = phase
        if phase != step.phase or reason != step.reason:
            step = replace(step, phase=phase, reason=reason)
        step = _with_attempt_phases(step, never_ran=at_gate and step.container_state
                                    in (EXITED, REMOVED))
        new_steps.append(step)
    if all(new is old for new, old in zip(new_steps, status.steps)):
        return status
    return replace(status, steps=tuple(new_steps))


def _waits_at_its_gate(step: StepStatus, phases: Mapping[str, StepPhase]) -> bool:
    """A container started early whose step has not started: its upstream steps
    are not all done and ZenML holds no record of this attempt. Alive, it is
    starting; removed or ended, its step never ran in it."""
    return (step.latest.started_early and step.zenml_attempts < step.attempt
            and any(phases.get(up) not in _DONE_OK for up in step.upstream))


def _with_attempt_phases(step: StepStatus, never_ran: bool = False) -> StepStatus:
    """How each attempt (container, and ZenML step run) went.

    The latest one shares the step's phase and reason; an earlier one was
    followed by another attempt, so it failed and was retried: RETRYING,
    with how it ended (out of memory, exit code, killed). `never_ran`: the
    latest attempt's container ended while it waited at its gate.
    """
    attempts = tuple(
        _phased(attempt, step.phase, step.reason, never_ran) if i == len(step.attempts) - 1
        else _phased(attempt, StepPhase.RETRYING, _ended_attempt_reason(attempt))
        for i, attempt in enumerate(step.attempts))
    runs = tuple(
        _phased(run, step.phase, step.reason) if i == len(step.zenml_runs) - 1
        else _phased(run, StepPhase.RETRYING, f"attempt {i + 1} {run.status}")
        for i, run in enumerate(step.zenml_runs))
    if all(a is b for a, b in zip(attempts, step.attempts)) \
            and all(a is b for a, b in zip(runs, step.zenml_runs)):
        return step
    return replace(step, attempts=attempts, zenml_runs=runs)


def _phased(record: Any, phase: StepPhase, reason: str, never_ran: Optional[bool] = None) -> Any:
    if record.phase == phase and record.reason == reason and (
            never_ran is None or record.never_ran == never_ran):
        return record
    if never_ran is None:
        return replace(record, phase=phase, reason=reason)
    return replace(record, phase=phase, reason=reason, never_ran=never_ran)


def _ended_attempt_reason(attempt: Attempt) -> str:
    """How an attempt that was followed by another one ended."""
    if attempt.oom_killed:
        return f"attempt {attempt.number}: out of memory"
    if attempt.exit_code is None:
        return f"attempt {attempt.number}: ended"
    if attempt.killed:
        return f"attempt {attempt.number}: killed (exit code {attempt.exit_code})"
    return f"attempt {attempt.number}: exit code {attempt.exit_code}"


def _observed_phase(step: StepStatus, status: RunStatus) -> Tuple[Optional[StepPhase], str]:
    """The phase from what was seen of the step, or None if nothing was."""
    zenml = _ZENML_STEP_PHASE.get(step.zenml_status or "")
    container, reason = _container_phase(step, status)
    if zenml is not None and zenml.is_final and step.zenml_attempts >= step.attempt:
        if zenml == StepPhase.FAILED and step.oom_killed:
            return zenml, "out of memory"
        if zenml == StepPhase.FAILED and step.exit_code not in (None, 0):
            return zenml, f"exit code {step.exit_code}"
        return zenml, ""
    if container is not None:
        if container == StepPhase.STARTING and zenml == StepPhase.RUNNING:
            return StepPhase.RUNNING, ""
        return container, reason
    if zenml is not None:
        if status.ended and zenml == StepPhase.RETRYING:
            return StepPhase.FAILED, "no retry came"
        return zenml, ""
    return None, ""


def _container_phase(step: StepStatus, status: RunStatus) -> Tuple[Optional[StepPhase], str]:
    if step.attempt == 0 or step.container_state is None:
        return None, ""
    if step.exit_code is not None:
        if step.exit_code == 0:
            return StepPhase.COMPLETED, ""
        if step.oom_killed:
            return StepPhase.FAILED, f"out of memory (exit code {step.exit_code})"
        if step.killed:
            return StepPhase.STOPPED, f"stopped (exit code {step.exit_code})"
        if status.zenml_status in _RUN_STOPPING and step.zenml_attempts < step.attempt:
            # The run was stopped while this container was starting: ZenML
            # refused to begin the step, so the container exited on its own.
            return StepPhase.STOPPED, (
                f"the run was stopped before the step began (exit code {step.exit_code})")
        if RetryPolicy(max_retries=step.max_retries).retries_after(step.attempt) \
                and not status.ended:
            return StepPhase.RETRYING, (
                f"attempt {step.attempt} failed (exit code {step.exit_code})")
        return StepPhase.FAILED, f"exit code {step.exit_code}"
    if step.container_state == REMOVED:
        return StepPhase.STOPPED, "container removed while running"
    if step.container_state == RUNNING:
        return StepPhase.RUNNING, ""
    return StepPhase.STARTING, ""


def _unstarted_phase(step: StepStatus, phases: Mapping[str, StepPhase], status: RunStatus,
                     failed_somewhere: bool) -> Tuple[StepPhase, str]:
    for up in step.upstream:
        if phases.get(up) in _BROKEN:
            return StepPhase.SKIPPED, f"upstream step '{up}' {phases[up].value}"
    if failed_somewhere and status.execution_mode.starts_nothing_after_failure:
        return StepPhase.SKIPPED, f"a step failed ({status.execution_mode.value})"
    if status.zenml_status in _RUN_STOPPING:
        return StepPhase.SKIPPED, "the run was stopped"
    if status.ended or _ended_before_any_step(status):
        return StepPhase.SKIPPED, "never started"
    waiting_for = [up for up in step.upstream if phases.get(up) not in _DONE_OK]
    if waiting_for:
        return StepPhase.WAITING, "waiting for " + ", ".join(waiting_for)
    return StepPhase.PENDING, ""


def _ended_before_any_step(status: RunStatus) -> bool:
    """ZenML calls the run finished and no step of it ever started (refused by the
    engine before the first step, or stopped at once): nothing more will happen."""
    return (status.zenml_status in ZENML_FINAL_RUN_STATUSES
            and not any(step.attempt or step.zenml_status or step.container_alive
                        for step in status.steps))


def run_is_over(status: RunStatus, quiet_for: float = 0.0) -> bool:
    """Whether nothing more will happen in this run.

    ZenML marks a run failed as soon as one step fails, while other branches
    may still run, so its word alone is not enough: the run is over when
    ZenML calls it finished, no container of it is alive, no retry is
    coming and (in continue_on_failure mode) no step is ready to start. A
    run ZenML calls finished that stays quiet for QUIET_SECONDS_BEFORE_OVER
    is over anyway.

    Args:
        quiet_for: seconds since the status last changed.
    """
    if status.ended:
        return True
    if status.zenml_status not in ZENML_FINAL_RUN_STATUSES:
        return False
    if quiet_for >= QUIET_SECONDS_BEFORE_OVER:
        return True
    if _ended_before_any_step(status):
        return True
    for step in status.steps:
        if step.container_alive or step.phase == StepPhase.RETRYING:
            return False
        if step.phase == StepPhase.STARTING:
            return False
        if step.phase == StepPhase.RUNNING and step.attempt:
            return False
        if step.phase == StepPhase.PENDING \
                and not status.execution_mode.starts_nothing_after_failure:
            return False
    return True
