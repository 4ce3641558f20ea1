"""Keep ZenML's record of a run true to what the containers really did.

Inside a container, ZenML's step launcher records its own step as running,
completed or failed. Some endings it never sees: a container killed for
running out of memory, stopped by a stop request, or removed because the
client was interrupted. This module writes those (ZenML's records are read
through `orchestrator.zenml_records`), and stops a run's containers on request.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Optional

from zenml.enums import ExecutionStatus
from zenml.orchestrators import publish_utils

from orchestrator.running.containers import ContainerExit, stop_containers
from orchestrator.running.labels import client_is_gone, find_containers
from orchestrator.running.run_hooks import RunHooks
from orchestrator.running.scheduler import DagScheduler, StepState
from orchestrator.running.verdict import recorded_outcome
from orchestrator.zenml_records import get_run, latest_step_run, run_status, step_runs_of

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
            return run_status(self.run_id) in _STOP_STATES
        except Exception as error:  # noqa: BLE001 - a busy store must not kill the run
            self.logger.warning("Could not read whether run %s is being stopped (%s); "
                                "asking again later.", self.run_name, error)
            return False

    def completed_steps(self) -> set:
        if self.run_id is None:
            return set()
        try:
            return {step.name for step in step_runs_of(self.run_id)
                    if recorded_outcome(step.status)}
        except Exception:  # noqa: BLE001 - a busy store: the container exit will tell
            return set()

    def recorded_end(self, step_name: str) -> bool:
        if self.run_id is None:
            return False
        try:
            step_run = latest_step_run(self.run_id, step_name)
        except Exception:  # noqa: BLE001 - a busy store: assume it did not end
            return False
        return step_run is not None and ExecutionStatus(step_run.status).is_finished

    def recorded_success(self, step_name: str) -> Optional[bool]:
        if self.run_id is None:
            return None
        try:
            step_run = latest_step_run(self.run_id, step_name)
        except Exception as error:  # noqa: BLE001 - a busy store: trust the exit code
            self.logger.warning("Could not read ZenML's record of step '%s' (%s); "
                                "going by its container's exit code.", step_name, error)
            return None
        return step_run is not None and recorded_outcome(step_run.status)

    def attempt_ended(self, step_name: str, attempt: int, ended: ContainerExit,
                      state: StepState) -> None:
        """Record a container ending that the step itself could not record."""
        if ended.succeeded or self.run_id is None:
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

    def record_stopping(self) -> None:
        """The client was interrupted: the run is STOPPING while its containers stop."""
        if self.run_id is not None and not run_status(self.run_id).is_finished:
            publish_utils.publish_pipeline_run_status_update(
                pipeline_run_id=self.run_id, status=ExecutionStatus.STOPPING,
                status_reason="The client was interrupted.")

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
        if run_status(self.run_id).is_finished:
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
        if not run_status(run.id).is_finished:
            publish_utils.publish_pipeline_run_status_update(
                pipeline_run_id=run.id, status=ExecutionStatus.FAILED,
                status_reason=short_reason(reason))
    except Exception:  # noqa: BLE001 - ZenML marks it failed anyway, without the reason
        pass


def claim_orchestrator_run_id(run: Optional["PipelineRunResponse"]) -> str:
    """The run's orchestrator run id, written to ZenML's record before anything starts.

    ZenML refuses to stop a run whose record has no orchestrator run id
    ("Cannot stop a pipeline run that has no orchestrator run id yet"), and
    without us only a step's start writes it: a run stopped while it is
    planned, checked or handed to a detached process could not be stopped.
    A run that already has one (a resumed run) keeps it.

    Returns:
        The id (a uuid4 string unless the record had one).
    """
    from uuid import uuid4

    if run is not None and run.orchestrator_run_id:
        return run.orchestrator_run_id
    orchestrator_run_id = str(uuid4())
    if run is not None:
        from zenml.client import Client
        from zenml.models import PipelineRunUpdate

        Client().zen_store.update_run(
            run_id=run.id, run_update=PipelineRunUpdate(orchestrator_run_id=orchestrator_run_id))
    return orchestrator_run_id


def finish_run(run_id: Any, *, status: ExecutionStatus, reason: str,
               open_steps: ExecutionStatus = ExecutionStatus.STOPPED) -> None:
    """End a run nobody else will end: the run, then every open step record.

    For runs whose orchestration ended without recording it (a dynamic run
    interrupted before ZenML's runner published, a run whose orchestration
    process died). Static and dynamic runs differ in ZenML: a static run's
    status follows its steps' records (so the run's own status is asked for
    first: once every step record is final, stopped steps would make it
    STOPPED, and a finished run takes no other status; asking for STOPPING
    settles on STOPPED once every record is final), a dynamic run's is set
    explicitly (FAILED while it is stopping becomes STOPPED).

    Args:
        status: FAILED or STOPPED.
        open_steps: what step records that have not ended become (a step
            that was stopping always becomes STOPPED).
    """
    run = get_run(run_id, hydrate=True)
    if ExecutionStatus(run.status).is_finished:
        return
    dynamic = bool(run.snapshot is not None and run.snapshot.is_dynamic)
    requested = status
    if status == ExecutionStatus.STOPPED and not dynamic:
        requested = ExecutionStatus.STOPPING  # settles on STOPPED (see _finish_run)
    publish_utils.publish_pipeline_run_status_update(
        pipeline_run_id=run.id, status=requested, status_reason=short_reason(reason))
    stop_open_steps = ExecutionStatus.STOPPED in (open_steps, status)
    for step_run in step_runs_of(run_id):
        step_status = ExecutionStatus(step_run.status)
        if step_status.is_finished:
            continue
        if stop_open_steps or step_status == ExecutionStatus.STOPPING:
            publish_utils.publish_stopped_step_run(step_run.id)
        else:
            publish_utils.publish_failed_step_run(step_run.id)


def stop_run_containers(run: "PipelineRunResponse", *, graceful: bool,
                        grace_seconds: int) -> int:
    """Stop every container of a run; returns how many were running.

    The client that started the run removes its containers once they end.
    If that client is gone, nobody will: we remove them here.

    Raises:
        DockerEngineUnavailableError: no Docker engine answers.
    """
    from orchestrator.machine.engine import connect

    client = connect()
    containers = find_containers(client, pipeline_run_id=str(run.id))
    running = [c for c in containers if c.status in ("running", "created", "restarting")]
    stop_containers(running, graceful=graceful, grace_seconds=grace_seconds)
    for container in containers:
        if client_is_gone(container.labels):
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001 - already removed by someone else
                pass
    return len(running)
