"""The live status of one pipeline run's steps, read from what really happened.

Two sources tell what a run is doing, and neither is enough alone:

* the run's **containers** (found by our labels) and Docker's event stream say
  at once when a step's container is created, starts, is killed or exits, and
  with which exit code, but know nothing of cached steps, and nothing at all
  once a finished container was removed;
* **ZenML's records** (the run and its step runs) know cached steps, final
  statuses and timings of steps whose containers are long gone, but are
  written later, and only from inside a container that got far enough.

This module keeps the two apart and joins them in one pure place:

* the **model** (`RunStatus`, `StepStatus`, `StepPhase`), immutable values;
* the **reducer** `apply(status, event) -> status`, fed with `ContainerEvent`
  (a Docker event or a container's inspect data), `LogLine`, `ZenmlFacts` and
  `RunEnded`; after every event the phases are derived again from all facts
  (`resolve`), so the order in which the sources answer does not matter;
* the **I/O**: `RunWatcher` follows one run (Docker events in a background
  thread, ZenML polled every `poll_seconds`, container logs for the last log
  line) and stops, releasing its threads and connections, once the run is
  over; `NextRun` finds the run a process starts next.

`render_text` draws a status as a plain-text table, and
``python -m orchestrator.status [RUN|latest] [--follow] [--next]`` prints it
in a terminal, redrawn in place while the run goes on; `follow_in_terminal`
does the same from Python. The notebook panel (`orchestrator.widget`) is a
view over the same model.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import queue
import re
import shutil
import sys
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from enum import Enum
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    TextIO,
    Tuple,
    Union,
)

from orchestrator.container_spec import (
    ATTEMPT_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    PIPELINE_RUN_ID_LABEL,
    STEP_LABEL,
)

logger = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class StepStatus:
    """One step: the facts seen so far and the phase derived from them.

    Container facts are those of the step's latest attempt; ZenML facts are
    those of its latest step run. `phase` and `reason` are derived by
    `resolve` and never set directly.
    """

    name: str
    upstream: Tuple[str, ...] = ()
    max_retries: int = 0
    phase: StepPhase = StepPhase.PENDING
    reason: str = ""
    # -- from the step's containers (latest attempt)
    attempt: int = 0
    container_id: Optional[str] = None  # Docker's short id (12 characters)
    container_state: Optional[str] = None  # created | running | exited | removed
    created_at: Optional[float] = None  # epoch seconds, Docker's clock
    started_at: Optional[float] = None
    finished_at: Optional[float] = None
    exit_code: Optional[int] = None
    killed: bool = False  # Docker delivered a kill (a stop) before it exited
    oom_killed: bool = False
    last_line: str = ""
    # -- from ZenML (latest step run)
    zenml_status: Optional[str] = None
    zenml_attempts: int = 0  # how many step runs ZenML holds for this step
    zenml_started_at: Optional[float] = None
    zenml_finished_at: Optional[float] = None

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


@dataclass(frozen=True)
class RunStatus:
    """A whole run: its steps in pipeline order and how far it got."""

    run_id: str
    run_name: str = ""
    pipeline_name: str = ""
    steps: Tuple[StepStatus, ...] = ()
    execution_mode: str = "continue_on_failure"
    zenml_status: str = "initializing"
    ended: bool = False  # the run is over and the watcher has stopped
    error: Optional[str] = None  # a problem of the watcher, shown to the user
    updated_at: float = 0.0  # time of the latest fact

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
        step = labels.get(STEP_LABEL)
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
            attempt=_int(labels.get(ATTEMPT_LABEL), 1),
            container_id=str(actor.get("ID") or raw.get("id") or "")[:12],
            time=when,
            exit_code=None if exit_code is None else _int(exit_code, -1),
            run_id=labels.get(PIPELINE_RUN_ID_LABEL),
        )


def events_from_container(attrs: Mapping[str, Any]) -> List[ContainerEvent]:
    """The events a container has been through, from its inspect data.

    Used when a watcher attaches to a run that is already going, and to
    reconcile the model with the engine now and then, in case the event
    stream dropped something. `kill` cannot be told from inspect data.
    """
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    step = labels.get(STEP_LABEL)
    if not step:
        return []
    state = attrs.get("State") or {}
    common = dict(
        step=step,
        attempt=_int(labels.get(ATTEMPT_LABEL), 1),
        container_id=str(attrs.get("Id", ""))[:12],
        run_id=labels.get(PIPELINE_RUN_ID_LABEL),
    )
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
                                     exit_code=_int(state.get("ExitCode"), -1), **common))
    return events


@dataclass(frozen=True)
class LogLine:
    """A line a step's container printed."""

    step: str
    attempt: int
    line: str
    time: float


@dataclass(frozen=True)
class ZenmlStepFact:
    """What ZenML holds for one step: its latest step run and how many there are."""

    status: str
    attempts: int = 1
    started_at: Optional[float] = None
    finished_at: Optional[float] = None


@dataclass(frozen=True)
class ZenmlFacts:
    """One reading of ZenML's records of a run."""

    run_status: str
    steps: Mapping[str, ZenmlStepFact]
    time: float

    def to_json(self) -> Dict[str, Any]:
        return {"run_status": self.run_status, "time": self.time,
                "steps": {name: vars(fact) for name, fact in self.steps.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ZenmlFacts":
        return cls(run_status=data["run_status"], time=float(data["time"]),
                   steps={name: ZenmlStepFact(**fact) for name, fact in data["steps"].items()})


@dataclass(frozen=True)
class RunEnded:
    """The run is over: whoever watched it knows (the pipeline call returned)."""

    time: float


@dataclass(frozen=True)
class WatcherProblem:
    """The watcher could not read a source; the message is shown to the user."""

    message: Optional[str]
    time: float


Event = Union[ContainerEvent, LogLine, ZenmlFacts, RunEnded, WatcherProblem]


# --------------------------------------------------------------------------
# The pure part: building, reducing, deriving
# --------------------------------------------------------------------------


def pipeline_order(upstreams: Mapping[str, Sequence[str]]) -> List[str]:
    """Steps in an order where upstream steps come first, else as declared.

    ZenML's snapshot lists steps in the order the pipeline function called
    them, which is what a reader expects; this only moves a step after its
    upstream steps when the declaration order does not already do so.
    """
    placed: List[str] = []
    remaining = list(upstreams)
    while remaining:
        for name in remaining:
            if all(up in placed or up not in upstreams for up in upstreams[name]):
                break
        else:  # a cycle (ZenML never makes one): keep the declared order
            name = remaining[0]
        placed.append(name)
        remaining.remove(name)
    return placed


def new_run_status(
    run_id: str,
    steps: Mapping[str, Mapping[str, Any]],
    *,
    run_name: str = "",
    pipeline_name: str = "",
    execution_mode: str = "continue_on_failure",
    zenml_status: str = "initializing",
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
        execution_mode=execution_mode,
        zenml_status=zenml_status,
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
    elif isinstance(event, LogLine):
        new = _with_step(status, event.step, lambda s: _log_fact(s, event))
    elif isinstance(event, ZenmlFacts):
        new = _zenml_facts(status, event)
    elif isinstance(event, RunEnded):
        new = replace(status, ended=True)
    elif isinstance(event, WatcherProblem):
        new = replace(status, error=event.message)
    else:
        raise TypeError(f"apply() does not know events of type {type(event).__name__}")
    when = getattr(event, "time", 0.0) or 0.0
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
            steps[i] = change(step)
            break
    else:
        steps.append(change(StepStatus(name=name)))
    return replace(status, steps=tuple(steps))


def _container_fact(step: StepStatus, event: ContainerEvent) -> StepStatus:
    if event.attempt < step.attempt:
        return step  # an older attempt's late news
    if event.attempt > step.attempt:
        step = replace(step, attempt=event.attempt, container_id=None, container_state=None,
                       created_at=None, started_at=None, finished_at=None,
                       exit_code=None, killed=False, oom_killed=False)
    state = step.container_state
    changes: Dict[str, Any] = {}
    if event.container_id and step.container_id is None:
        changes["container_id"] = event.container_id
    if event.action == "create":
        if step.created_at is None:
            changes["created_at"] = event.time
        if state is None:
            changes["container_state"] = CREATED
    elif event.action == "start":
        if step.started_at is None:
            changes["started_at"] = event.time
        if state in (None, CREATED):
            changes["container_state"] = RUNNING
    elif event.action == "kill":
        if state in (None, CREATED, RUNNING):
            changes["killed"] = True
    elif event.action == "oom":
        changes["oom_killed"] = True
    elif event.action == "die":
        if step.exit_code is None:
            changes["exit_code"] = event.exit_code
            changes["finished_at"] = event.time
        if state != REMOVED:
            changes["container_state"] = EXITED
    elif event.action == "destroy":
        if state in (None, CREATED, RUNNING) and step.exit_code is None:
            # Removed without an exit we saw: it was force-removed (a stop).
            changes["killed"] = True
            changes["finished_at"] = event.time
        changes["container_state"] = REMOVED
    return replace(step, **changes) if changes else step


def _log_fact(step: StepStatus, event: LogLine) -> StepStatus:
    if event.attempt < step.attempt:
        return step
    line = event.line.strip()
    if not line:
        return step
    if len(line) > MAX_LINE_CHARS:
        line = line[: MAX_LINE_CHARS - 1] + "…"
    return replace(step, last_line=line)


def _zenml_facts(status: RunStatus, facts: ZenmlFacts) -> RunStatus:
    for name, fact in facts.steps.items():
        status = _with_step(status, name, lambda s, f=fact: replace(
            s,
            zenml_status=f.status,
            zenml_attempts=max(s.zenml_attempts, f.attempts),
            zenml_started_at=f.started_at,
            zenml_finished_at=f.finished_at,
        ))
    return replace(status, zenml_status=facts.run_status)


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
    """
    phases: Dict[str, StepPhase] = {}
    failed_somewhere = any(
        _observed_phase(s, status)[0] == StepPhase.FAILED for s in status.steps
    )
    new_steps = []
    for step in status.steps:
        phase, reason = _observed_phase(step, status)
        if phase is None:
            phase, reason = _unstarted_phase(step, phases, status, failed_somewhere)
        phases[step.name] = phase
        if phase != step.phase or reason != step.reason:
            step = replace(step, phase=phase, reason=reason)
        new_steps.append(step)
    return replace(status, steps=tuple(new_steps))


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
        if step.attempt <= step.max_retries and not status.ended:
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
    if failed_somewhere and status.execution_mode in ("fail_fast", "stop_on_failure"):
        return StepPhase.SKIPPED, f"a step failed ({status.execution_mode})"
    if status.zenml_status in ("stopping", "stopped", "cancelling", "cancelled"):
        return StepPhase.SKIPPED, "the run was stopped"
    if status.ended:
        return StepPhase.SKIPPED, "never started"
    waiting_for = [up for up in step.upstream if phases.get(up) not in _DONE_OK]
    if waiting_for:
        return StepPhase.WAITING, "waiting for " + ", ".join(waiting_for)
    return StepPhase.PENDING, ""


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
    for step in status.steps:
        if step.container_alive or step.phase == StepPhase.RETRYING:
            return False
        if step.phase == StepPhase.STARTING:
            return False
        if step.phase == StepPhase.RUNNING and step.attempt:
            return False
        if step.phase == StepPhase.PENDING and status.execution_mode == "continue_on_failure":
            return False
    return True


# --------------------------------------------------------------------------
# Plain-text rendering
# --------------------------------------------------------------------------

_ANSI = {
    StepPhase.PENDING: "37", StepPhase.WAITING: "37", StepPhase.STARTING: "36",
    StepPhase.RUNNING: "34;1", StepPhase.RETRYING: "33;1", StepPhase.COMPLETED: "32",
    StepPhase.FAILED: "31;1", StepPhase.SKIPPED: "90", StepPhase.STOPPED: "35",
    StepPhase.CACHED: "36",
}


def format_duration(seconds: Optional[float]) -> str:
    """'0.4s', '12.3s', '2m05s', '1h02m'."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


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
    lines.append(f"{progress_bar(status.finished_count, len(status.steps))} {status.summary()}")
    if status.error:
        lines.append(f"! {status.error}")
    headers = ("STEP", "STATE", "TRY", "CONTAINER", "STARTED", "DURATION", "EXIT", "LAST LOG LINE")
    rows = []
    for step in status.steps:
        rows.append((
            step.name,
            step.phase.value,
            str(step.attempt) if step.attempt else "",
            step.container_id or "",
            format_clock(step.start_time),
            format_duration(step.duration(now)),
            "" if step.exit_code is None else str(step.exit_code),
            step.last_line or step.reason,
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


# --------------------------------------------------------------------------
# Reading ZenML
# --------------------------------------------------------------------------


def _epoch(moment: Optional[datetime]) -> Optional[float]:
    """ZenML stores naive UTC datetimes."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _value(status: Any) -> str:
    return str(getattr(status, "value", status))


def zenml_facts_from(run: Any, step_runs: Iterable[Any], now: float) -> ZenmlFacts:
    """Summarise a run and its step runs (ZenML response models)."""
    latest: Dict[str, Any] = {}
    attempts: Dict[str, int] = {}
    for step_run in step_runs:
        attempts[step_run.name] = attempts.get(step_run.name, 0) + 1
        known = latest.get(step_run.name)
        if known is None or step_run.created > known.created:
            latest[step_run.name] = step_run
    return ZenmlFacts(
        run_status=_value(run.status),
        steps={
            name: ZenmlStepFact(
                status=_value(step_run.status),
                attempts=attempts[name],
                started_at=_epoch(step_run.start_time),
                finished_at=_epoch(step_run.end_time),
            )
            for name, step_run in latest.items()
        },
        time=now,
    )


def read_zenml_facts(run_id: str) -> ZenmlFacts:
    """One reading of ZenML's records of a run."""
    from zenml.client import Client

    client = Client()
    run = client.get_pipeline_run(run_id, hydrate=False)
    step_runs = client.list_run_steps(pipeline_run_id=run_id, size=1000).items
    return zenml_facts_from(run, step_runs, time.time())


def resolve_run(ref: str = "latest") -> Any:
    """The ZenML pipeline run `ref` names: "latest", an id, an id prefix or a name.

    Raises:
        LookupError: no run matches, with what to try instead.
    """
    from zenml.client import Client

    client = Client()
    if ref == "latest":
        runs = client.list_pipeline_runs(sort_by="desc:created", size=1).items
        if not runs:
            raise LookupError(
                "There is no pipeline run yet in this ZenML store "
                f"({_store_hint()}): run a pipeline first, or watch the next "
                "one with watch_run(None) / `python -m orchestrator.status --next`.")
        return client.get_pipeline_run(runs[0].id)
    try:
        return client.get_pipeline_run(ref)
    except KeyError as error:
        raise LookupError(
            f"No pipeline run matches {ref!r} in this ZenML store ({_store_hint()}). "
            "Give a run's name, id or id prefix as shown by `zenml pipeline runs list`, "
            "or 'latest'.") from error


def _store_hint() -> str:
    return f"ZENML_CONFIG_PATH={os.environ.get('ZENML_CONFIG_PATH', '(default)')}"


def status_for_run(run: Any) -> RunStatus:
    """The initial model of a ZenML run: its steps from the snapshot, nothing seen yet."""
    steps: Dict[str, Dict[str, Any]] = {}
    mode = "continue_on_failure"
    snapshot = getattr(run, "snapshot", None)
    if snapshot is not None:
        for name, step in snapshot.step_configurations.items():
            retry = getattr(step.config, "retry", None)
            steps[name] = {
                "upstream": list(step.spec.upstream_steps),
                "max_retries": int(retry.max_retries) if retry is not None else 0,
            }
        mode_value = getattr(snapshot.pipeline_configuration, "execution_mode", None)
        if mode_value is not None:
            mode = _value(mode_value)
    pipeline = getattr(run, "pipeline", None)
    return new_run_status(
        str(run.id),
        steps,
        run_name=run.name,
        pipeline_name=getattr(pipeline, "name", "") or "",
        execution_mode=mode,
        zenml_status=_value(run.status),
    )


def known_run_ids(limit: int = 50) -> set:
    """Ids of the newest runs in the store now."""
    from zenml.client import Client

    return {run.id for run in
            Client().list_pipeline_runs(sort_by="desc:created", size=limit).items}


class DockerEvents:
    """One Docker event stream of our containers, read by one background thread.

    Subscribers get the events of one run (or of all runs). Events are also
    kept for a while, and a late subscriber first gets the kept events of its
    run: whoever learns the run id only from its first container (`NextRun`)
    can hand the stream to the run's watcher without losing a single event.
    """

    def __init__(self, client: Any, run_id: Optional[str] = None, *, keep: int = 2000,
                 close_client: bool = False) -> None:
        labels = [f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"]
        if run_id:
            labels.append(f"{PIPELINE_RUN_ID_LABEL}={run_id}")
        self._client = client
        self._close_client = close_client
        self._stream = client.events(decode=True,
                                     filters={"type": "container", "label": labels})
        self._kept: "collections.deque" = collections.deque(maxlen=keep)
        self._subscribers: List[Tuple[Optional[str], Callable[[Dict[str, Any]], None]]] = []
        self._lock = threading.Lock()
        self.problem: Optional[str] = None
        self._thread = threading.Thread(target=self._read, name="docker-events", daemon=True)
        self._thread.start()

    def subscribe(self, callback: Callable[[Dict[str, Any]], None],
                  run_id: Optional[str] = None) -> None:
        """Call `callback(raw_event)` for every event of `run_id` (None: all), kept ones first."""
        with self._lock:
            for raw in self._kept:
                if run_id is None or _run_of(raw) == run_id:
                    callback(raw)
            self._subscribers.append((run_id, callback))

    def _read(self) -> None:
        try:
            for raw in self._stream:
                with self._lock:
                    self._kept.append(raw)
                    for run_id, callback in self._subscribers:
                        if run_id is None or _run_of(raw) == run_id:
                            try:
                                callback(raw)
                            except Exception:  # noqa: BLE001 - one bad subscriber only
                                logger.exception("a Docker event subscriber failed")
        except Exception as error:  # noqa: BLE001 - closed, or the engine went away
            self.problem = str(error)

    @property
    def closed(self) -> bool:
        return not self._thread.is_alive()

    def close(self) -> None:
        """End the stream and its thread (and the client, if it was handed to us)."""
        _close(self._stream)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        if self._close_client:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001
                pass


def _run_of(raw: Mapping[str, Any]) -> Optional[str]:
    return ((raw.get("Actor") or {}).get("Attributes") or {}).get(PIPELINE_RUN_ID_LABEL)


class NextRun:
    """Finds the first pipeline run created after this object was made.

    It remembers which runs exist now; any newer run in ZenML's store is the
    one this process (or anyone using the same store) started next. ZenML
    creates the run just before the run's first container, so besides asking
    ZenML every `poll_seconds`, it listens to Docker for our containers:
    their run-id label names the run at once (runs of other ZenML stores on
    the same engine are told apart by asking our store). The run's watcher
    then takes over that event stream (`take_events`), missing nothing.
    Call `close()` when done; `find()` keeps working after it.
    """

    def __init__(self, listen_to_docker: bool = True) -> None:
        self._known = known_run_ids()
        self._candidates: "queue.Queue[str]" = queue.Queue()
        self._not_ours: set = set()
        self.events: Optional[DockerEvents] = None
        if listen_to_docker:
            try:
                from orchestrator.engine import connect

                self.events = DockerEvents(connect(timeout=5), close_client=True)
                self.events.subscribe(self._on_event)
            except Exception as error:  # noqa: BLE001 - polling ZenML alone still works
                logger.debug("no Docker events while looking for a run: %s", error)

    def _on_event(self, raw: Dict[str, Any]) -> None:
        run_id = _run_of(raw)
        if run_id and raw.get("Action") == "create":
            self._candidates.put(run_id)

    def take_events(self) -> Optional[DockerEvents]:
        """The Docker event stream, now the caller's to close."""
        events, self.events = self.events, None
        return events

    def close(self) -> None:
        """Stop listening to Docker (unless the stream was taken) and release it."""
        events, self.events = self.events, None
        if events is not None:
            events.close()

    def _from_docker(self) -> Optional[Any]:
        from uuid import UUID

        from zenml.client import Client

        while True:
            try:
                run_id = self._candidates.get_nowait()
            except queue.Empty:
                return None
            if run_id in self._not_ours:
                continue
            try:
                run = Client().get_pipeline_run(UUID(run_id))
            except (KeyError, ValueError):
                self._not_ours.add(run_id)  # another store's run on the same engine
                continue
            if run.id not in self._known:
                return run
            self._not_ours.add(run_id)

    def find(self) -> Optional[Any]:
        """The oldest run not known at creation, or None yet."""
        from zenml.client import Client

        run = self._from_docker()
        if run is not None:
            return run
        newer = [run for run in Client().list_pipeline_runs(sort_by="desc:created",
                                                           size=20).items
                 if run.id not in self._known]
        if not newer:
            return None
        return Client().get_pipeline_run(newer[-1].id)

    def wait(self, timeout: Optional[float] = None, poll_seconds: float = 0.5,
             cancel: Optional[threading.Event] = None) -> Optional[Any]:
        """Block until a new run exists; None on timeout or cancel."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                run = self.find()
            except Exception as error:  # noqa: BLE001 - a busy store: try again
                logger.debug("looking for a new run failed: %s", error)
                run = None
            if run is not None:
                return run
            if cancel is not None and cancel.is_set():
                return None
            left = poll_seconds if deadline is None else min(
                poll_seconds, deadline - time.monotonic())
            if left <= 0:
                return None
            try:  # wakes up at once when Docker names a candidate
                candidate = self._candidates.get(timeout=left)
            except queue.Empty:
                continue
            self._candidates.put(candidate)


# --------------------------------------------------------------------------
# The watcher: follows one run
# --------------------------------------------------------------------------

Listener = Callable[[RunStatus], None]


class RunWatcher:
    """Follows one pipeline run and keeps its `RunStatus` current.

    Three kinds of background threads feed the reducer: one reads Docker's
    event stream (filtered by the run's label, so a change shows within
    milliseconds), one polls ZenML and reconciles with the engine every
    `poll_seconds`, and one per running container follows its log for the
    last line. Listeners are called after every change, and on every poll
    while the run goes on (so elapsed times can tick), from those threads.

    Once the run is over (see `run_is_over`) or `finish()`/`stop()` is
    called, every thread ends and every connection is closed. Problems
    reading a source (no Docker engine, a busy store) are shown in
    `status.error`; they never raise in the threads.

    Typical use::

        watcher = RunWatcher(resolve_run("latest")).start()
        watcher.wait()
        print(render_text(watcher.status))
    """

    def __init__(self, run: Any, *, poll_seconds: float = 1.0, docker_client: Any = None,
                 events: Optional[DockerEvents] = None, follow_logs: bool = True,
                 on_change: Optional[Listener] = None,
                 record: Optional[List[Dict[str, Any]]] = None) -> None:
        """Args:
            run: a ZenML run (response model) or an initial `RunStatus`.
            poll_seconds: how often to read ZenML and reconcile with the engine.
            docker_client: a client to use (kept open); by default the watcher
                opens its own and closes it at the end.
            events: an event stream already open (from `NextRun.take_events`);
                the watcher replays its kept events of this run and closes it
                at the end. By default the watcher opens its own.
            follow_logs: follow running containers' logs for the last line.
            on_change: a first listener.
            record: if given, every input (raw Docker event, ZenML reading,
                log line) is appended to it, for replay in tests.
        """
        self._status = run if isinstance(run, RunStatus) else status_for_run(run)
        self.run_id = self._status.run_id
        self.poll_seconds = poll_seconds
        self.follow_logs = follow_logs
        self._record = record
        self._client = docker_client
        self._owns_client = docker_client is None
        self._lock = threading.RLock()
        self._listeners: List[Listener] = [on_change] if on_change else []
        self._stop = threading.Event()
        self.done = threading.Event()
        self._threads: List[threading.Thread] = []
        self._events = events
        self._log_streams: Dict[str, Any] = {}
        self._last_change = time.monotonic()
        self._started = False
        self._finalized = False

    # -- public ------------------------------------------------------------
    @property
    def status(self) -> RunStatus:
        with self._lock:
            return self._status

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(status)` after every change (from a watcher thread)."""
        with self._lock:
            self._listeners.append(listener)

    def start(self) -> "RunWatcher":
        """Attach to the engine and ZenML and follow the run in the background."""
        if self._started:
            return self
        self._started = True
        if self._events is not None:  # taken over: its kept events show at once
            self._events.subscribe(self._on_docker_event, run_id=self.run_id)
        self._connect_docker()
        self._sync()  # containers that exist already, ZenML's record so far
        self._spawn(self._poll_loop, "poll")
        return self

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the run is over and every thread has ended; False on timeout."""
        if not self.done.wait(timeout):
            return False
        for thread in list(self._threads):
            if thread is not threading.current_thread():
                thread.join(timeout=5)
        return True

    def finish(self, settle_seconds: float = 2.0) -> RunStatus:
        """The run is known to be over (its pipeline call returned): final reading, stop.

        Docker's last events (exits) may still be on their way: they get up
        to `settle_seconds` to arrive before the final reading.
        """
        deadline = time.monotonic() + settle_seconds
        while (self._events is not None and time.monotonic() < deadline
               and any(step.container_alive for step in self.status.steps)):
            time.sleep(0.05)
        self._sync()
        self._end()
        return self.status

    def stop(self) -> None:
        """Stop following now, wherever the run is; release threads and connections."""
        self._end(mark_ended=False)

    # -- feeding the reducer --------------------------------------------------
    def feed(self, event: Event) -> RunStatus:
        """Apply one event and tell listeners if something changed."""
        with self._lock:
            if self._finalized and not isinstance(event, RunEnded):
                return self._status
            old = self._status
            new = apply(old, event)
            self._status = new
            if new != old:
                self._last_change = time.monotonic()
        if new != old:
            self._notify(new)
        return new

    def _notify(self, status: RunStatus) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(status)
            except Exception:  # noqa: BLE001 - a broken view must not stop the watcher
                logger.exception("a run status listener failed")

    def _remember(self, kind: str, data: Any) -> None:
        if self._record is not None:
            self._record.append({kind: data})

    def _feed_recorded(self, kind: str, data: Any, event: Event) -> None:
        """Feed an input we made ourselves; record it only if it changed something."""
        before = self.status
        if self.feed(event) is not before:
            self._remember(kind, data)

    # -- Docker ------------------------------------------------------------
    def _connect_docker(self, events: bool = True) -> None:
        try:
            if self._client is None:
                from orchestrator.engine import connect

                self._client = connect(timeout=5)
            else:
                self._client.ping()
            if events and self._events is None:
                self._events = DockerEvents(self._client, self.run_id)
                self._events.subscribe(self._on_docker_event, run_id=self.run_id)
        except Exception as error:  # noqa: BLE001 - follow ZenML alone then
            self.feed(WatcherProblem(
                f"Docker is not available ({error}); showing ZenML's record only.",
                time.time()))
            self._client = None

    def _on_docker_event(self, raw: Dict[str, Any]) -> None:
        """One raw event of this run, from the event thread."""
        if self._stop.is_set():
            return
        self._remember("docker", raw)
        event = ContainerEvent.from_docker(raw)
        if event is None:
            return
        self.feed(event)
        if event.action == "start" and self.follow_logs:
            self._follow_log(event.container_id, event.step, event.attempt)

    def _reconcile_containers(self) -> None:
        """Read the run's containers: catches anything the event stream missed."""
        if self._client is None:
            return
        listed_at = time.time()
        containers = self._client.containers.list(
            all=True, ignore_removed=True,
            filters={"label": [f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}",
                               f"{PIPELINE_RUN_ID_LABEL}={self.run_id}"]})
        seen = set()
        for container in containers:
            seen.add(container.id[:12])
            for event in events_from_container(container.attrs):
                self._feed_recorded("container_event", vars(event), event)
            if container.status == "running" and self.follow_logs:
                labels = container.labels
                self._follow_log(container.id[:12], labels.get(STEP_LABEL, ""),
                                 _int(labels.get(ATTEMPT_LABEL), 1))
        for step in self.status.steps:
            if (step.container_id and step.container_id not in seen
                    and step.container_state in (CREATED, RUNNING, EXITED)
                    and (step.created_at or 0) < listed_at - 1.0):
                self.feed(ContainerEvent("destroy", step.name, step.attempt,
                                         step.container_id, listed_at, run_id=self.run_id))

    def _follow_log(self, container_id: str, step: str, attempt: int) -> None:
        with self._lock:
            if container_id in self._log_streams or self._stop.is_set() or self._client is None:
                return
            self._log_streams[container_id] = None
        self._spawn(lambda: self._log_loop(container_id, step, attempt), f"log-{step}")

    def _log_loop(self, container_id: str, step: str, attempt: int) -> None:
        try:
            stream = self._client.api.logs(container_id, stream=True, follow=True, tail=5)
        except Exception:  # noqa: BLE001 - gone already
            return
        with self._lock:
            self._log_streams[container_id] = stream
        if self._stop.is_set():
            _close(stream)
            return
        buffer = b""
        try:
            for chunk in stream:
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                text = _last_text_line(lines)
                if text:
                    event = LogLine(step, attempt, text, time.time())
                    self._feed_recorded("log", vars(event), event)
        except Exception:  # noqa: BLE001 - the container was removed, or we closed it
            pass
        text = _last_text_line([buffer])
        if text and not self._stop.is_set():
            self.feed(LogLine(step, attempt, text, time.time()))

    # -- ZenML and the poll loop -----------------------------------------------
    def _sync(self) -> None:
        """Read ZenML and the engine once."""
        problems = []
        try:
            self._reconcile_containers()
        except Exception as error:  # noqa: BLE001
            problems.append(f"could not list containers: {error}")
        if self._events is not None and self._events.closed and not self._stop.is_set():
            problems.append(f"Docker's event stream ended ({self._events.problem}); "
                            f"updates come every {self.poll_seconds:g} s")
        try:
            facts = read_zenml_facts(self.run_id)
        except Exception as error:  # noqa: BLE001
            problems.append(f"could not read ZenML: {error}")
        else:
            self._feed_recorded("zenml", facts.to_json(), facts)
        current = self.status.error
        if problems:
            self.feed(WatcherProblem("; ".join(problems), time.time()))
        elif current and not current.startswith("Docker is not available"):
            self.feed(WatcherProblem(None, time.time()))

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self._sync()
            status = self.status
            quiet = time.monotonic() - self._last_change
            if run_is_over(status, quiet_for=quiet):
                self._end()
                return
            self._notify(status)  # lets views tick elapsed times

    # -- the end -------------------------------------------------------------
    def _end(self, mark_ended: bool = True) -> None:
        with self._lock:
            if self._finalized:
                return
            if mark_ended:
                old = self._status
                self._status = apply(old, RunEnded(time.time()))
                changed = self._status != old
            else:
                changed = False
            self._finalized = True
            self._stop.set()
            streams = list(self._log_streams.values())
        if self._events is not None:
            self._events.close()
        for stream in streams:
            _close(stream)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=5)
        if self._owns_client and self._client is not None:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001
                pass
        if changed or mark_ended:
            self._notify(self.status)
        self.done.set()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=f"run-watcher-{name}", daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    @property
    def alive_threads(self) -> List[str]:
        """Names of the watcher's threads still running (empty once it ended)."""
        names = [t.name for t in self._threads if t.is_alive()]
        if self._events is not None and not self._events.closed:
            names.append("docker-events")
        return names


def _close(stream: Any) -> None:
    if stream is None:
        return
    try:
        stream.close()
    except Exception:  # noqa: BLE001
        pass


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _last_text_line(lines: Sequence[bytes]) -> str:
    for raw in reversed(lines):
        text = _ANSI_ESCAPE.sub("", raw.decode("utf-8", errors="replace")).strip()
        if text:
            return text
    return ""


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def parse_docker_time(text: Optional[str]) -> Optional[float]:
    """Docker's RFC 3339 times with nanoseconds ('2026-11-29T02:05:10.42031Z') as epoch."""
    if not text or text.startswith("0001-01-01"):
        return None
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", text)
    if not match:
        return None
    base, fraction, zone = match.groups()
    moment = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S")
    if zone in (None, "Z"):
        moment = moment.replace(tzinfo=timezone.utc)
    else:
        moment = datetime.fromisoformat(base + zone)
    return moment.timestamp() + (float(fraction) if fraction else 0.0)


# --------------------------------------------------------------------------
# Terminal
# --------------------------------------------------------------------------


def read_status(run: Union[str, Any] = "latest",
                record: Optional[List[Dict[str, Any]]] = None) -> RunStatus:
    """A run's status now, read once from the engine and ZenML (no threads left).

    Args:
        run: "latest", a run's id or name, or a ZenML run (response model).
    """
    found = resolve_run(run) if isinstance(run, str) else run
    watcher = RunWatcher(found, follow_logs=False, record=record)
    watcher._connect_docker(events=False)
    watcher._sync()
    status = watcher.status
    watcher.stop()
    if run_is_over(status):
        status = apply(status, RunEnded(time.time()))
    return status


def watcher_for(run: Optional[str], *, wait_timeout: Optional[float] = None,
                poll_seconds: float = 1.0, **kwargs: Any) -> RunWatcher:
    """A started watcher for `run` ("latest", id, name) or, if None, the next new run.

    Raises:
        LookupError: the run does not exist, or no new run started in time.
    """
    if run is None:
        finder = NextRun()
        try:
            found = finder.wait(timeout=wait_timeout, poll_seconds=0.25)
            if found is None:
                raise LookupError(f"No new pipeline run started within {wait_timeout:.0f} s.")
            return RunWatcher(found, poll_seconds=poll_seconds, events=finder.take_events(),
                              **kwargs).start()
        finally:
            finder.close()
    return RunWatcher(resolve_run(run), poll_seconds=poll_seconds, **kwargs).start()


def follow_in_terminal(run: Optional[str] = None, stream: Optional[TextIO] = None, *,
                       poll_seconds: float = 1.0, wait_timeout: Optional[float] = None,
                       color: Optional[bool] = None,
                       record: Optional[List[Dict[str, Any]]] = None) -> RunStatus:
    """Print a run's status table and keep it current until the run is over.

    On a terminal the table is redrawn in place; on a pipe or a file (CI
    logs) each step's change of state is printed as one line and the full
    table once at the end.

    Args:
        run: "latest", a run's id or name, or None for the next run started
            after this call (start the pipeline elsewhere, e.g. in another
            terminal or a subprocess).
        stream: where to print (sys.stdout by default).
        wait_timeout: how long to wait for the next run when `run` is None.

    Returns:
        The final status.
    """
    stream = stream or sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty()
    color = tty if color is None else color
    if run is None:
        print("Waiting for the next pipeline run to start...", file=stream, flush=True)
    watcher = watcher_for(run, wait_timeout=wait_timeout, poll_seconds=poll_seconds,
                          record=record)
    printer = TerminalPrinter(stream, tty=tty, color=color)
    printer.show(watcher.status)
    watcher.subscribe(printer.show)
    try:
        watcher.wait()
    except KeyboardInterrupt:
        watcher.stop()
        raise
    finally:
        watcher.stop()
    printer.final(watcher.status)
    return watcher.status


class TerminalPrinter:
    """Redraws the table in place (terminal) or prints changes as lines (pipe)."""

    def __init__(self, stream: TextIO, *, tty: bool, color: bool) -> None:
        self.stream = stream
        self.tty = tty
        self.color = color
        self._drawn = 0
        self._phases: Dict[str, Tuple[StepPhase, int]] = {}
        self._outcome = ""
        self._lock = threading.Lock()

    def show(self, status: RunStatus) -> None:
        with self._lock:
            if self.tty:
                width = shutil.get_terminal_size((120, 20)).columns - 1
                text = render_text(status, width=width, color=self.color)
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
                self.stream.flush()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """`python -m orchestrator.status [RUN|latest] [--follow] [--next]`."""
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.status",
        description="Show the status of a pipeline run's steps (their containers and "
                    "ZenML's record), once or live until the run is over.")
    parser.add_argument("run", nargs="?", default="latest",
                        help="run name, id or id prefix, or 'latest' (default)")
    parser.add_argument("--follow", "-f", action="store_true",
                        help="keep the table current until the run is over")
    parser.add_argument("--next", action="store_true",
                        help="wait for the next run to start and follow it")
    parser.add_argument("--wait-timeout", type=float, default=None, metavar="SECONDS",
                        help="with --next: give up after this long")
    parser.add_argument("--poll", type=float, default=1.0, metavar="SECONDS",
                        help="how often to read ZenML (Docker events arrive at once)")
    parser.add_argument("--record", metavar="FILE",
                        help="write every input seen (Docker events, ZenML readings) "
                             "as JSON, for bug reports and test fixtures")
    args = parser.parse_args(argv)
    record: Optional[List[Dict[str, Any]]] = [] if args.record else None
    try:
        if args.follow or args.next:
            final = follow_in_terminal(None if args.next else args.run,
                                       poll_seconds=args.poll,
                                       wait_timeout=args.wait_timeout, record=record)
        else:
            final = read_status(args.run, record=record)
            print(render_text(final, color=sys.stdout.isatty()))
    except LookupError as error:
        print(f"error: {error.args[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    if args.record:
        with open(args.record, "w") as handle:
            json.dump(_recording(final, record or []), handle, indent=1, default=str)
    return 0


def _recording(status: RunStatus, inputs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """A replayable record: the run's plan and every input, in order."""
    return {
        "run_id": status.run_id,
        "run_name": status.run_name,
        "pipeline_name": status.pipeline_name,
        "execution_mode": status.execution_mode,
        "steps": {s.name: {"upstream": list(s.upstream), "max_retries": s.max_retries}
                  for s in status.steps},
        "inputs": inputs,
    }


if __name__ == "__main__":
    sys.exit(main())
