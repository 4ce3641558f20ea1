"""What the flavor calls for a dynamic run's isolated steps: ZenML's isolated-step methods.

ZenML's dynamic runner hands each isolated step to `stack.orchestrator`
(`submit_isolated_step`), asks for its status, waits for it, stops it on a
FAIL_FAST and cleans it up. The flavor passes each call on to here. The run
this process orchestrates answers (`isolated_containers.DynamicRun`, found by
its pipeline run); any other process (a status refresh, a stop from a
terminal) reads the step's container by its label and ZenML's record, with
the same rule (`isolated_containers.isolated_status`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING

import docker
from zenml.enums import ExecutionStatus

from orchestrator.errors import MyDockerError
from orchestrator.machine.engine import connect
from orchestrator.running.isolated_containers import (
    LIVE_STATES,
    DynamicRun,
    IsolatedStep,
    isolated_status,
    stop_dynamic_containers,
)
from orchestrator.running.isolated_records import ended_in_record, recorded_status
from orchestrator.running.labels import find_step_run_container

if TYPE_CHECKING:
    from zenml.models import StepRunResponse

    from orchestrator.running.request import IsolatedStepRequest

logger = logging.getLogger("orchestrator.my_docker_orchestrator")

# How often a plain (blocking) call of an isolated step looks at it.
WAIT_POLL_SECONDS = 0.5


def submit_isolated_step(request: "IsolatedStepRequest") -> None:
    """ZenML's `submit_isolated_step`: start the step's container (or queue it); do not wait.

    Raises:
        MyDockerError: the container cannot be made or started, or the step
            belongs to no dynamic run this process orchestrates.
    """
    step_run_info = request.step_run_info
    run = DynamicRun.for_pipeline_run(step_run_info.run_id)
    if run is None:
        raise MyDockerError(
            f"Step '{step_run_info.pipeline_step_name}' of run {step_run_info.run_name} was "
            "submitted outside a dynamic run orchestrated by this process; my_docker runs "
            "isolated steps only for dynamic pipelines it orchestrates itself.")
    run.submit(request)


def isolated_step_status(step_run: "StepRunResponse") -> ExecutionStatus:
    """ZenML's `get_isolated_step_status` (the rule: `isolated_containers.isolated_status`).

    Asked in the process that orchestrates the run, that run answers
    (`DynamicRun.status`); asked elsewhere, the step's container, found by
    its label, tells, unless ZenML's record says the step ended.
    """
    run = DynamicRun.for_pipeline_run(step_run.pipeline_run_id)
    if run is not None:
        return run.status(step_run)
    recorded = recorded_status(step_run.id)
    if ended_in_record(recorded):
        return recorded
    container = find_step_run_container(connect(), str(step_run.id))
    step = IsolatedStep.of_container(container, step_run) if container is not None else None
    return isolated_status(step, recorded)


def wait_for_isolated_step(step_run: "StepRunResponse") -> ExecutionStatus:
    """ZenML's `wait_for_isolated_step`: the status every WAIT_POLL_SECONDS until it ends.

    (ZenML's own wait backs off to 16 s between looks.)
    """
    while True:
        try:
            status = isolated_step_status(step_run)
        except Exception as error:  # noqa: BLE001 - fall back to ZenML's record, as ZenML does
            logger.warning("Could not read step %s's container: %s", step_run.name, error)
            status = recorded_status(step_run.id)
        if ended_in_record(status):
            return status
        time.sleep(WAIT_POLL_SECONDS)


def stop_isolated_step(step_run: "StepRunResponse", grace_seconds: int) -> None:
    """ZenML's `stop_isolated_step` (FAIL_FAST): SIGTERM, SIGKILL after the grace."""
    run = DynamicRun.for_pipeline_run(step_run.pipeline_run_id)
    if run is not None and str(step_run.id) in run.steps:
        run.stop_step(str(step_run.id), grace_seconds=grace_seconds)
        return
    container = find_step_run_container(connect(), str(step_run.id))
    if container is not None:
        stop_dynamic_containers([container], graceful=True, grace_seconds=grace_seconds)


def cleanup_isolated_step(step_run: "StepRunResponse", keep_containers: bool) -> None:
    """ZenML's `cleanup_isolated_step`: the container goes once it has exited.

    The watcher of a container this process follows removes it at its exit;
    here only a container nobody follows (one that had exited before a
    resumed run looked at it) is removed.
    """
    if keep_containers:
        return
    run = DynamicRun.for_pipeline_run(step_run.pipeline_run_id)
    step = run.steps.get(str(step_run.id)) if run is not None else None
    if step is not None and step.watcher is not None:
        return
    container = find_step_run_container(connect(), str(step_run.id))
    if container is not None and container.status not in LIVE_STATES:
        with contextlib.suppress(docker.errors.DockerException):
            container.remove(force=True)
