"""ZenML's record of an isolated step run: read, and written where the step cannot write it.

Inside its container, ZenML's step launcher records an isolated step's start
and end. The host writes what it never sees: a container that could not
start, was killed for memory, ran past its timeout, or crashed (FAILED, with
the reason as the step's error: ZenML then retries it or fails it with that
reason), and a step stopped on request (STOPPING first, so that ZenML records
STOPPED rather than FAILED, then STOPPED). Used by the process orchestrating
a dynamic run and by any other one (`zenml pipeline runs stop`).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any
from uuid import UUID

from zenml.enums import ExecutionStatus

logger = logging.getLogger("orchestrator.my_docker_orchestrator")

# A step run whose record says it is under way.
OPEN_STATES = (ExecutionStatus.INITIALIZING, ExecutionStatus.PROVISIONING,
               ExecutionStatus.RUNNING)


def ended_in_record(status: ExecutionStatus) -> bool:
    """Whether a step run's record says it will not run on (RETRYING: another run will)."""
    return status.is_finished or status == ExecutionStatus.RETRYING


def recorded_status(step_run_id: Any) -> ExecutionStatus:
    """A step run's status in ZenML's record (its id as a UUID or a string).

    Raises:
        KeyError: no such step run; whatever the store raises when it cannot answer.
    """
    from zenml.client import Client

    return ExecutionStatus(Client().get_run_step(UUID(str(step_run_id)), hydrate=False).status)


def publish_failure(step_run_id: str, message: str) -> None:
    """Record a step run as failed, with `message` as its error (ZenML may make it RETRYING)."""
    from zenml.models import ExceptionInfo
    from zenml.orchestrators import publish_utils

    publish_utils.publish_step_run_status_update(
        step_run_id=UUID(step_run_id), status=ExecutionStatus.FAILED,
        exception_info=ExceptionInfo(traceback=message, message=message,
                                     source="orchestrator.errors.MyDockerError"))


def publish_stopped(step_run_id: str) -> None:
    """Record a step run as STOPPED; nothing if it ended meanwhile."""
    from zenml.orchestrators import publish_utils

    with contextlib.suppress(Exception):  # ended meanwhile
        publish_utils.publish_stopped_step_run(UUID(step_run_id))


def mark_stopping(step_run_id: str) -> None:
    """Mark a step run that has not ended STOPPING: ZenML then records it STOPPED
    (not FAILED) once its container is gone. A failure to do so is logged (debug):
    stopping the container matters more."""
    from zenml.client import Client
    from zenml.models import StepRunUpdate

    try:
        if recorded_status(step_run_id) in OPEN_STATES:
            Client().zen_store.update_run_step(
                UUID(step_run_id), StepRunUpdate(status=ExecutionStatus.STOPPING))
    except Exception as error:  # noqa: BLE001 - stopping the container matters more
        logger.debug("Could not mark step run %s stopping: %s", step_run_id, error)
