"""The status reducer: `apply(status, event) -> status`, pure.

After every event the phases (of steps and of their attempts) are derived
again from all facts (`resolve`), so the order in which the sources answer
does not matter. `new_run_status` builds a run before anything happened, its
steps in `pipeline_order`. The values are in `orchestrator.status.model`, the
events in `orchestrator.status.events`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from orchestrator.running.scheduler import (
    ExecutionMode,
    RetryPolicy,
    SchedulerError,
    topological_order,
)
from orchestrator.status.events import (
    AttemptPlaced,
    ContainerEvent,
    Event,
    LogLine,
    ResourceSample,
    RunEnded,
    WatcherProblem,
    ZenmlFacts,
    ZenmlStepFact,
)
from orchestrator.status.model import (
    BROKEN_PHASES,
    CREATED,
    DONE_OK_PHASES,
    EXITED,
    MAX_LINE_CHARS,
    REMOVED,
    RUN_STOPPING_STATUSES,
    RUNNING,
    ZENML_STEP_PHASE,
    Attempt,
    ResourceUsage,
    RunStatus,
    StepPhase,
    StepStatus,
    ZenmlRun,
    ended_before_any_step,
)

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
                                          if phases.get(up) not in DONE_OK_PHASES))
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
            and any(phases.get(up) not in DONE_OK_PHASES for up in step.upstream))


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
    zenml = ZENML_STEP_PHASE.get(step.zenml_status or "")
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
        if status.zenml_status in RUN_STOPPING_STATUSES and step.zenml_attempts < step.attempt:
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
        if phases.get(up) in BROKEN_PHASES:
            return StepPhase.SKIPPED, f"upstream step '{up}' {phases[up].value}"
    if failed_somewhere and status.execution_mode.starts_nothing_after_failure:
        return StepPhase.SKIPPED, f"a step failed ({status.execution_mode.value})"
    if status.zenml_status in RUN_STOPPING_STATUSES:
        return StepPhase.SKIPPED, "the run was stopped"
    if status.ended or ended_before_any_step(status):
        return StepPhase.SKIPPED, "never started"
    waiting_for = [up for up in step.upstream if phases.get(up) not in DONE_OK_PHASES]
    if waiting_for:
        return StepPhase.WAITING, "waiting for " + ", ".join(waiting_for)
    return StepPhase.PENDING, ""
