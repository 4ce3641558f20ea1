"""Runs whose orchestration process died: found, and ended, so that none stays "running".

A run's orchestration process (the client, or the detached process of a
non-blocking run; see `orchestration_record`) may die without a chance to
clean up: SIGKILL, the kernel's out-of-memory killer, a closed laptop lid
that never reopens the session. Its containers then run on unwatched, and
ZenML's record says "running" for ever: a common complaint against every
orchestrator. Here such a run is ended, once anyone on the same machine
looks:

- the watchdog of a detached run, as soon as its orchestration process dies;
- the start of every run on `my_docker` and `my_swarm` (`settle_orphaned_runs`:
  the store's unfinished runs whose process is gone);
- `zenml pipeline runs stop` of a dynamic run or a `my_swarm` run;
- `python -m orchestrator.status`, `watch_run(...)`, `fetch_status`: the run
  they show (`settle_if_orphaned`).

Ending one: its running containers are killed and every container of it is
removed (a `my_swarm` run: its services, by the function its orchestration
record names in `remove_with`), the run is recorded FAILED (or STOPPED if a stop had been asked),
with the reason, and its unfinished step records STOPPED (a static run) or
FAILED (a dynamic run, which `zenml pipeline runs retry` can take up again:
ZenML re-runs such a step if its retry policy allows).
"""

from __future__ import annotations

import logging
from typing import Any, List, Optional

from zenml.enums import ExecutionStatus

from orchestrator.running.labels import find_containers
from orchestrator.running.orchestration_record import OrchestrationRecord, read_record
from orchestrator.running.reporting import finish_run
from orchestrator.running.run_functions import FunctionCall
from orchestrator.running.step_logs import run_log_dir
from orchestrator.zenml_records import get_run

logger = logging.getLogger("orchestrator.my_docker_orchestrator")

_STOP_STATES = (ExecutionStatus.STOPPING, ExecutionStatus.STOPPED)
# States in which a run needs a live orchestration process. A paused run
# (waiting for input) does not; a resuming one is being taken over by a new
# process (`zenml pipeline runs retry` / `resume`), which writes a new record.
_NEEDS_ORCHESTRATOR = (ExecutionStatus.INITIALIZING, ExecutionStatus.PROVISIONING,
                       ExecutionStatus.RUNNING, ExecutionStatus.STOPPING)


def orphaned_record(run_id: str) -> Optional[OrchestrationRecord]:
    """The run's orchestration record if its process is dead, else None.

    None too for a run with no record (not run by `my_docker`, or before
    records were kept) and one orchestrated on another machine.
    """
    record = read_record(run_log_dir(str(run_id)))
    if record is None or record.process_is_alive():
        return None
    return record


def settle_if_orphaned(run_id: Any, reason: Optional[str] = None) -> bool:
    """End run `run_id` if it is unfinished and its orchestration process died.

    Args:
        reason: why, for the record; by default says which process died.

    Returns:
        True if the run was ended here.
    """
    record = orphaned_record(str(run_id))
    if record is None:
        return False
    run = get_run(run_id, hydrate=True)
    status = ExecutionStatus(run.status)
    if status not in _NEEDS_ORCHESTRATOR:
        return False
    kind = "detached orchestration process" if record.detached else "client process"
    reason = reason or (
        f"The run's {kind} (pid {record.pid}) died before the run ended; its running "
        "steps were stopped and its containers removed.")
    removed = (remove_run_containers(run) if record.remove_with is None
               else FunctionCall.from_json(record.remove_with)(run))
    # A dynamic run can be retried (`zenml pipeline runs retry`): ZenML re-runs
    # a step whose record says FAILED if its retry policy allows (the record
    # then says RETRYING), never a STOPPED one.
    dynamic = bool(run.snapshot is not None and run.snapshot.is_dynamic)
    finish_run(run.id, status=ExecutionStatus.STOPPED if status in _STOP_STATES
               else ExecutionStatus.FAILED, reason=reason,
               open_steps=ExecutionStatus.FAILED if dynamic else ExecutionStatus.STOPPED)
    logger.warning("Run %s: %s (%d container(s) or service(s) removed)", run.name, reason,
                   removed)
    return True


def settle_orphaned_runs(limit: int = 50, *, besides: Optional[Any] = None) -> List[str]:
    """End every unfinished run of this store whose orchestration process died.

    Only runs orchestrated on this machine are looked at (see
    `orphaned_record`); a busy store is no reason to fail, so errors are
    logged and the rest goes on.

    Args:
        besides: the id of a run to leave alone (the one being submitted or
            resumed now).

    Returns:
        The names of the runs that were ended.
    """
    from zenml.client import Client

    ended = []
    try:
        runs = Client().list_pipeline_runs(in_progress=True, size=limit, hydrate=False).items
    except Exception as error:  # noqa: BLE001 - a look-around, never a reason to fail
        logger.debug("Could not list unfinished runs: %s", error)
        return ended
    for run in runs:
        if besides is not None and str(run.id) == str(besides):
            continue
        try:
            if settle_if_orphaned(run.id):
                ended.append(run.name)
        except Exception as error:  # noqa: BLE001 - one run's trouble must not stop the rest
            logger.debug("Could not settle run %s: %s", run.name, error)
    return ended


def remove_run_containers(run: Any) -> int:
    """Kill and remove every container of `run` (its child runs' too); how many there were."""
    from orchestrator.errors import DockerEngineUnavailableError
    from orchestrator.machine.engine import connect

    try:
        client = connect(timeout=10)
    except DockerEngineUnavailableError:
        return 0
    containers = {c.id: c for c in find_containers(client, pipeline_run_id=str(run.id))}
    if run.orchestrator_run_id:
        containers.update({c.id: c for c in find_containers(
            client, orchestrator_run_id=run.orchestrator_run_id)})
    for container in containers.values():
        try:
            container.remove(force=True)  # kills it first if it runs
        except Exception:  # noqa: BLE001 - removed meanwhile
            pass
    return len(containers)
