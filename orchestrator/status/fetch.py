"""`fetch_status`: a run's status in ZenML's terms, derived like every other view of it.

ZenML asks an orchestrator for a run's status (`zenml pipeline runs refresh`,
the dashboard). The answer comes from the same facts and the same pure rules
(`orchestrator.status.reducer.resolve`) as the live panel and the terminal
view, so the three never disagree about a step: the run's containers (by
their labels) and ZenML's records are read once, turned into a `RunStatus`,
and its phases are translated to ZenML's `ExecutionStatus`.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

from zenml.enums import ExecutionStatus

from orchestrator.running.labels import client_is_gone, find_containers
from orchestrator.running.orchestration_record import read_record
from orchestrator.running.step_logs import run_log_dir
from orchestrator.status.events import events_from_container
from orchestrator.status.model import RunStatus, StepPhase
from orchestrator.status.records import status_for_run, zenml_facts_from
from orchestrator.status.reducer import apply
from orchestrator.zenml_records import step_runs_of

# A step's phase as ZenML's status. Steps that did not start are left out:
# ZenML has no record for them either.
PHASE_TO_EXECUTION_STATUS: Mapping[StepPhase, ExecutionStatus] = {
    StepPhase.STARTING: ExecutionStatus.RUNNING,
    StepPhase.RUNNING: ExecutionStatus.RUNNING,
    StepPhase.RETRYING: ExecutionStatus.RETRYING,
    StepPhase.COMPLETED: ExecutionStatus.COMPLETED,
    StepPhase.CACHED: ExecutionStatus.CACHED,
    StepPhase.FAILED: ExecutionStatus.FAILED,
    StepPhase.STOPPED: ExecutionStatus.STOPPED,
}
_STOPPING = (ExecutionStatus.STOPPING, ExecutionStatus.STOPPED)


def status_from_facts(run: Any, containers: Iterable[Mapping[str, Any]],
                      step_runs: Iterable[Any], now: Optional[float] = None) -> RunStatus:
    """A run's `RunStatus` from its containers' inspect data and ZenML's step runs.

    Args:
        run: the ZenML run (response model, with its snapshot).
        containers: each container's inspect data (docker-py's `attrs`).
        step_runs: ZenML's step runs of the run (every attempt).
    """
    status = status_for_run(run)
    for attrs in containers:
        for event in events_from_container(attrs):
            status = apply(status, event)
    return apply(status, zenml_facts_from(run, step_runs, time.time() if now is None else now))


def execution_statuses(status: RunStatus, *, client_gone: bool
                       ) -> Tuple[ExecutionStatus, Dict[str, ExecutionStatus]]:
    """A `RunStatus` in ZenML's terms: the run's status and each started step's.

    While a container runs the run is RUNNING (STOPPING if a stop was asked),
    unless the client that drives it died: then no further step can ever
    start, so an unfinished run is FAILED. A finished run keeps ZenML's word.
    """
    steps = {step.name: PHASE_TO_EXECUTION_STATUS[step.phase] for step in status.steps
             if step.phase in PHASE_TO_EXECUTION_STATUS}
    recorded = ExecutionStatus(status.zenml_status)
    alive = any(step.container_alive for step in status.steps)
    if recorded.is_finished:
        return recorded, steps
    if recorded in _STOPPING:
        return (ExecutionStatus.STOPPING if alive else ExecutionStatus.STOPPED), steps
    if client_gone:
        return ExecutionStatus.FAILED, steps
    return (ExecutionStatus.RUNNING if alive else recorded), steps


def fetch_status(run: Any, *, include_steps: bool
                 ) -> Tuple[Optional[ExecutionStatus], Optional[Dict[str, ExecutionStatus]]]:
    """ZenML's `fetch_status` for a my_docker run: (run status, step statuses or None).

    Without a Docker engine, ZenML's own record is all there is to say.
    """
    from orchestrator.errors import DockerEngineUnavailableError
    from orchestrator.machine.engine import connect
    from orchestrator.zenml_records import get_run

    run = get_run(run.id, hydrate=True)
    try:
        containers = find_containers(connect(), pipeline_run_id=str(run.id))
    except DockerEngineUnavailableError:
        containers = []
    status = status_from_facts(run, [c.attrs for c in containers], step_runs_of(run.id))
    client_gone = bool(containers) and all(client_is_gone(c.labels) for c in containers)
    # The process orchestrating the run (client or detached process) also says,
    # when it left a record: a run may have no container while it goes on.
    record = read_record(run_log_dir(str(run.id)))
    if record is not None:
        client_gone = not record.process_is_alive()
    run_status, steps = execution_statuses(status, client_gone=client_gone)
    return run_status, (steps if include_steps else None)
