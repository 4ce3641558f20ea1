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
from orchestrator.status_zenml import latest_step_run, step_runs_of

if TYPE_CHECKING:
    from zenml.models import PipelineRunResponse

_STOP_STATES = {ExecutionStatus.STOPPING, ExecutionStatus.STOPPED}


class ZenmlRunHooks(RunHooks):
    """Runner hooks that log through ZenML and keep ZenML's record true.

    Every run ends with every one of its step records in a final state, and
    the run itself completed, failed or stopped, whatever happened: a step
    that died without recording its end, a stop during a retry's wait, an
    interrupted client, an engine that refused a container.
    """

    def __init__(self, logger: logging.Logger,
                 pipeline_run: Optional["PipelineRunResponse"]) -> None:
        self.logger = logger
        self.run_id = pipeline_run.id if pipeline_run is not None else None
        self.run_name = pipeline_run.name if pipeline_run is not None else None

    def log(self, message: str) -> None:
        self.logger.info(message)

    def run_reference(self) -> str:
        return self.run_name or "latest"

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
            return {step.name for step in step_runs_of(self.run_id)
                    if ExecutionStatus(step.status) == ExecutionStatus.COMPLETED}
        except Exception:  # noqa: BLE001 - a busy store: the container exit will tell
            return set()

    def recorded_success(self, step_name: str) -> Optional[bool]:
        if self.run_id is None:
            return None
        try:
            step_run = latest_step_run(self.run_id, step_name)
        except Exception as error:  # noqa: BLE001 - a busy store: trust the exit code
            self.logger.warning("Could not read ZenML's record of step '%s' (%s); "
                                "going by its container's exit code.", step_name, error)
            return None
        return step_run is not None and ExecutionStatus(step_run.status) == ExecutionStatus.COMPLETED

    def attempt_ended(self, step_name: str, attempt: int, exit: ContainerExit,
                      state: StepState) -> None:
        """Record a container ending that the step itself could not record."""
        if exit.succeeded or self.run_id is None:
            return
        step_run = latest_step_run(self.run_id, step_name)
        if step_run is None or ExecutionStatus(step_run.status).is_finished:
            return
        if state == StepState.RETRY_WAIT:
            return  # its record says "retrying" until the next attempt
        if state == StepState.STOPPED:
            publish_utils.publish_stopped_step_run(step_run.id)
        else:
            publish_utils.publish_failed_step_run(step_run.id)

    def run_interrupted(self) -> None:
        """The client was interrupted: running steps stopped, run stopped."""
        self._finish_step_records(lambda name: ExecutionStatus.STOPPED)
        self._finish_run(ExecutionStatus.STOPPED, "The client was interrupted.")

    def run_crashed(self, reason: str) -> None:
        """The orchestrator could not go on: running steps stopped, run failed."""
        self._finish_step_records(lambda name: ExecutionStatus.STOPPED)
        self._finish_run(ExecutionStatus.FAILED, reason)

    def run_ended(self, scheduler: DagScheduler) -> None:
        """Finish every step record still open, then the run if it did not succeed."""
        def final(name: str) -> ExecutionStatus:
            state = scheduler.state(name) if name in scheduler.steps else StepState.STOPPED
            return ExecutionStatus.STOPPED if state == StepState.STOPPED else ExecutionStatus.FAILED

        self._finish_step_records(final)
        counts = scheduler.counts()
        if counts.get(StepState.FAILED):
            self._finish_run(ExecutionStatus.FAILED, "One or more steps failed.")
        elif counts.get(StepState.STOPPED):
            self._finish_run(ExecutionStatus.STOPPED, "The run was stopped.")

    # -- helpers -------------------------------------------------------------
    def _finish_step_records(self, final_status) -> None:
        """Give every step record of the run that is not final a final status."""
        if self.run_id is None:
            return
        for step_run in step_runs_of(self.run_id):
            if ExecutionStatus(step_run.status).is_finished:
                continue
            if final_status(step_run.name) == ExecutionStatus.STOPPED:
                publish_utils.publish_stopped_step_run(step_run.id)
            else:
                publish_utils.publish_failed_step_run(step_run.id)

    def _finish_run(self, status: ExecutionStatus, reason: str) -> None:
        """Mark the run failed or stopped, unless it is finished already.

        ZenML derives a static run's status from its steps' records and the
        status asked for: asking for STOPPING lets it settle on STOPPED once
        every record is final, even for steps that never started (asking for
        STOPPED directly would leave such a run "running").
        """
        if self.run_id is None:
            return
        run = Client().get_pipeline_run(self.run_id, hydrate=False)
        if ExecutionStatus(run.status).is_finished:
            return
        requested = ExecutionStatus.STOPPING if status == ExecutionStatus.STOPPED else status
        publish_utils.publish_pipeline_run_status_update(
            pipeline_run_id=self.run_id, status=requested, status_reason=short_reason(reason)
        )


def short_reason(reason: str) -> str:
    """A status reason ZenML can store (at most STR_FIELD_MAX_LENGTH characters)."""
    from zenml.constants import STR_FIELD_MAX_LENGTH

    reason = " ".join(reason.split())
    if len(reason) <= STR_FIELD_MAX_LENGTH:
        return reason
    return reason[: STR_FIELD_MAX_LENGTH - 1] + "…"


def record_failed_run(run: Optional["PipelineRunResponse"], reason: str) -> None:
    """Mark a run that could not start as failed, with the reason, if still open."""
    if run is None:
        return
    try:
        current = Client().get_pipeline_run(run.id, hydrate=False)
        if not ExecutionStatus(current.status).is_finished:
            publish_utils.publish_pipeline_run_status_update(
                pipeline_run_id=run.id, status=ExecutionStatus.FAILED,
                status_reason=short_reason(reason))
    except Exception:  # noqa: BLE001 - ZenML marks it failed anyway, without the reason
        pass


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
