"""Keep ZenML's record of a run true to what the containers really did.

Inside a container, ZenML's step launcher records its own step as running,
completed or failed. Some endings it never sees: a container killed for
running out of memory, stopped by a stop request, or removed because the
client was interrupted. This module records those, answers `fetch_status`
from the containers themselves, and stops a run's containers on request.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING, Dict, Optional, Tuple

from zenml.client import Client
from zenml.enums import ExecutionStatus
from zenml.orchestrators import publish_utils

from orchestrator.container_spec import (
    ATTEMPT_LABEL,
    CLIENT_HOST_LABEL,
    CLIENT_PID_LABEL,
    STEP_LABEL,
)
from orchestrator.containers import ContainerExit, find_containers, stop_containers
from orchestrator.dag import DagScheduler, StepState
from orchestrator.runner import RunHooks

if TYPE_CHECKING:
    from zenml.models import PipelineRunResponse

_STOP_STATES = {ExecutionStatus.STOPPING, ExecutionStatus.STOPPED}


class ZenmlRunHooks(RunHooks):
    """Runner hooks that log through ZenML and publish missing statuses."""

    def __init__(self, logger: logging.Logger,
                 pipeline_run: Optional["PipelineRunResponse"]) -> None:
        self.logger = logger
        self.run_id = pipeline_run.id if pipeline_run is not None else None

    def log(self, message: str) -> None:
        self.logger.info(message)

    def stop_requested(self) -> bool:
        if self.run_id is None:
            return False
        try:
            status = Client().get_pipeline_run(self.run_id, hydrate=False).status
        except Exception:  # noqa: BLE001 - a busy store must not kill the run
            return False
        return ExecutionStatus(status) in _STOP_STATES

    def completed_steps(self) -> set:
        if self.run_id is None:
            return set()
        try:
            return {step.name for step in self._step_runs()
                    if ExecutionStatus(step.status) == ExecutionStatus.COMPLETED}
        except Exception:  # noqa: BLE001 - a busy store: the container exit will tell
            return set()

    def attempt_ended(self, step_name: str, attempt: int, exit: ContainerExit,
                      state: StepState) -> None:
        """Record a container ending that the step itself could not record."""
        if exit.succeeded or self.run_id is None:
            return
        step_run = self._latest_step_run(step_name)
        if step_run is None or ExecutionStatus(step_run.status).is_finished:
            return
        if ExecutionStatus(step_run.status) == ExecutionStatus.RETRYING:
            return
        if state == StepState.STOPPED:
            publish_utils.publish_stopped_step_run(step_run.id)
        else:
            publish_utils.publish_failed_step_run(step_run.id)

    def run_interrupted(self) -> None:
        """The client was interrupted: running steps stopped, run not successful."""
        if self.run_id is None:
            return
        for step_run in self._step_runs():
            if not ExecutionStatus(step_run.status).is_finished:
                publish_utils.publish_stopped_step_run(step_run.id)
        self._finish_run(ExecutionStatus.STOPPED, "The client was interrupted.")

    def run_ended(self, scheduler: DagScheduler) -> None:
        """Make sure a run that did not succeed is not left as running."""
        if self.run_id is None:
            return
        counts = scheduler.counts()
        if counts.get(StepState.FAILED):
            self._finish_run(ExecutionStatus.FAILED, "One or more steps failed.")
        elif counts.get(StepState.STOPPED):
            self._finish_run(ExecutionStatus.STOPPED, "The run was stopped.")

    # -- helpers -------------------------------------------------------------
    def _step_runs(self):
        return Client().list_run_steps(pipeline_run_id=self.run_id, size=1000).items

    def _latest_step_run(self, step_name: str):
        runs = [s for s in self._step_runs() if s.name == step_name]
        if not runs:
            return None
        return max(runs, key=lambda s: s.created)

    def _finish_run(self, status: ExecutionStatus, reason: str) -> None:
        run = Client().get_pipeline_run(self.run_id, hydrate=False)
        if ExecutionStatus(run.status).is_finished:
            return
        publish_utils.publish_pipeline_run_status_update(
            pipeline_run_id=self.run_id, status=status, status_reason=reason
        )


def _docker_client():
    from orchestrator.engine import connect

    return connect()


def client_is_gone(container) -> bool:
    """Whether the client process that ran this container's run has died.

    Only decidable on the machine the client ran on; elsewhere we assume it
    lives (and so never report a healthy run as failed).
    """
    labels = container.labels
    if labels.get(CLIENT_HOST_LABEL) != socket.gethostname():
        return False
    try:
        pid = int(labels.get(CLIENT_PID_LABEL, ""))
    except ValueError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def stop_run_containers(run: "PipelineRunResponse", *, graceful: bool,
                        grace_seconds: int) -> int:
    """Stop every container of a run; returns how many were running.

    The client that started the run removes its containers once they end.
    If that client is gone, nobody will: we remove them here.
    """
    client = _docker_client()
    containers = find_containers(client, pipeline_run_id=str(run.id))
    running = [c for c in containers if c.status in ("running", "created", "restarting")]
    stop_containers(running, graceful=graceful, grace_seconds=grace_seconds)
    for container in containers:
        if client_is_gone(container):
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001 - already removed by someone else
                pass
    return len(running)


def status_from_containers(
    run: "PipelineRunResponse", *, include_steps: bool
) -> Tuple[Optional[ExecutionStatus], Optional[Dict[str, ExecutionStatus]]]:
    """A run's status as its containers show it.

    The latest attempt of each step decides: running -> RUNNING, exited with
    0 -> COMPLETED, otherwise FAILED (STOPPED when the run is being stopped).
    Steps with no container left (removed after finishing) keep ZenML's
    status. While any container runs the run is RUNNING, unless the client
    that drives it died: then no further step can ever start, so an
    unfinished run is FAILED.
    """
    client = _docker_client()
    containers = find_containers(client, pipeline_run_id=str(run.id))
    latest: Dict[str, object] = {}
    for container in containers:
        step = container.labels.get(STEP_LABEL)
        attempt = int(container.labels.get(ATTEMPT_LABEL, "1"))
        known = latest.get(step)
        if known is None or int(known.labels.get(ATTEMPT_LABEL, "1")) < attempt:
            latest[step] = container
    run_status = ExecutionStatus(run.status)
    stopping = run_status in _STOP_STATES
    step_statuses: Dict[str, ExecutionStatus] = {}
    for step, container in latest.items():
        if container.status in ("running", "created", "restarting"):
            step_statuses[step] = ExecutionStatus.RUNNING
            continue
        exit_code = container.attrs.get("State", {}).get("ExitCode", -1)
        if exit_code == 0:
            step_statuses[step] = ExecutionStatus.COMPLETED
        else:
            step_statuses[step] = ExecutionStatus.STOPPED if stopping else ExecutionStatus.FAILED
    any_running = any(s == ExecutionStatus.RUNNING for s in step_statuses.values())
    client_gone = bool(containers) and all(client_is_gone(c) for c in containers)
    if run_status.is_finished:
        pipeline_status = run_status
    elif stopping:
        pipeline_status = ExecutionStatus.STOPPING if any_running else ExecutionStatus.STOPPED
    elif client_gone:
        pipeline_status = ExecutionStatus.FAILED
    elif any_running:
        pipeline_status = ExecutionStatus.RUNNING
    else:
        pipeline_status = run_status
    return pipeline_status, (step_statuses if include_steps else None)
