"""The live status of one pipeline run's steps: the model, immutable values.

Two sources tell what a run is doing, and neither is enough alone:

* the run's **containers** (found by our labels) and Docker's event stream say
  at once when a step's container is created, starts, is killed or exits, and
  with which exit code, but know nothing of cached steps, and nothing at all
  once a finished container was removed;
* **ZenML's records** (the run and its step runs) know cached steps, final
  statuses and timings of steps whose containers are long gone, but are
  written later, and only from inside a container that got far enough.

Three modules keep the two apart and join them in one pure place; none does
I/O (no Docker or ZenML calls, no threads, no printing), so the unit tests can
replay events recorded from real runs:

* this one, the **model** (`RunStatus`, `StepStatus`, `StepPhase`; per step
  every container `Attempt` and ZenML step run `ZenmlRun`, each with how it
  went, and the engine's latest `ResourceUsage` sample), and `run_is_over`,
  which says when nothing more will happen;
* `orchestrator.status.events`, the reducer's inputs;
* `orchestrator.status.reducer`, `apply(status, event) -> status`.

Around them: `orchestrator.status.records` reads ZenML's records of a run,
`orchestrator.status.watcher` follows a run live and feeds the reducer,
`orchestrator.status.text` draws a status as text and
`orchestrator.status.panel_view` as a notebook panel (`orchestrator.status.widget`
drives it live). ``python -m orchestrator.status [RUN|latest] [--follow]
[--next]`` runs the terminal command of `orchestrator.status.cli`, so the
command users know keeps its short name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from typing import Dict, Optional, Tuple

from orchestrator.running.scheduler import (
    ExecutionMode,
)

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
DONE_OK_PHASES = frozenset({StepPhase.COMPLETED, StepPhase.CACHED})
BROKEN_PHASES = frozenset({StepPhase.FAILED, StepPhase.SKIPPED, StepPhase.STOPPED})

# Container states as we track them (Docker's own words, plus "removed").
CREATED, RUNNING, EXITED, REMOVED = "created", "running", "exited", "removed"
_ALIVE = (CREATED, RUNNING)

# ZenML execution statuses, by value, and what they mean for a step.
ZENML_STEP_PHASE = {
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
RUN_STOPPING_STATUSES = frozenset({"stopping", "stopped", "cancelling", "cancelled"})


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
        if self.phase == StepPhase.STOPPED:
            return self.reason or StepPhase.STOPPED.value, True
        if self.reason and (not self.ran or not self.last_line):
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


def ended_before_any_step(status: RunStatus) -> bool:
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
    if ended_before_any_step(status):
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
