"""Where a run goes on: here, or in a detached process; static or dynamic.

The flavor's `submit_pipeline` and `submit_dynamic_pipeline` hand over here.
First, any earlier run of this store whose orchestration process died is
ended (`orphans`), so that none stays "running". Then the run goes on in this
process (`synchronous=True`, the default) or in a detached orchestration
process that outlives the caller (`synchronous=False`, `detached`); either
way a static pipeline runs with `pipeline_run.run_pipeline`, a dynamic one
with `dynamic.run_dynamic_pipeline`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional

from zenml.logger import get_logger

from orchestrator.running.detached import start_detached_run
from orchestrator.running.dynamic import run_dynamic_pipeline
from orchestrator.running.orphans import settle_orphaned_runs
from orchestrator.running.pipeline_run import run_pipeline

if TYPE_CHECKING:
    from zenml.models import PipelineRunResponse, PipelineSnapshotResponse
    from zenml.stack import Stack

    from orchestrator.my_docker_orchestrator import MyDockerOrchestrator

logger = get_logger("orchestrator.my_docker_orchestrator")


def submit_run(
    orchestrator: "MyDockerOrchestrator",
    snapshot: "PipelineSnapshotResponse",
    stack: "Stack",
    *,
    environment: Dict[str, str],
    step_environments: Optional[Dict[str, Dict[str, str]]],
    placeholder_run: Optional["PipelineRunResponse"],
) -> None:
    """Run `snapshot` now, here or in a detached process (its `synchronous` setting).

    Args:
        environment: ZenML's environment for the orchestration.
        step_environments: per step, ZenML's environment for its container
            (static pipelines); None for a dynamic pipeline.

    Raises:
        StepFailedError, RunStoppedError, InvalidSettingsError, ...: see
            `run_pipeline` and `dynamic.run_dynamic_pipeline` (synchronous
            runs); for a detached run only what fails before it is submitted.
    """
    settle_orphaned_runs(besides=placeholder_run.id if placeholder_run is not None else None)
    settings = orchestrator.get_settings(snapshot)
    if not settings.synchronous and placeholder_run is not None:
        start_detached_run(orchestrator, snapshot, placeholder_run, environment=environment,
                           step_environments=step_environments)
        return
    if not settings.synchronous:
        logger.warning("synchronous=False needs a pipeline run to hand over, and ZenML "
                       "gave none (a schedule?): the run goes on in this process.")
    if step_environments is None:
        run_dynamic_pipeline(orchestrator, snapshot, stack, environment, placeholder_run)
    else:
        run_pipeline(orchestrator, snapshot, stack, step_environments, placeholder_run)


