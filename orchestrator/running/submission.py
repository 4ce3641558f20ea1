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

from typing import TYPE_CHECKING

from zenml.logger import get_logger

from orchestrator.running.detached import start_detached_run
from orchestrator.running.dynamic import run_dynamic_pipeline
from orchestrator.running.orphans import settle_orphaned_runs
from orchestrator.running.pipeline_run import run_pipeline

if TYPE_CHECKING:
    from orchestrator.running.request import RunRequest

logger = get_logger("orchestrator.my_docker_orchestrator")


def submit_run(request: "RunRequest") -> None:
    """Run the request's snapshot now, here or in a detached process (its `synchronous` setting).

    Raises:
        StepFailedError, RunStoppedError, InvalidSettingsError, ...: see
            `run_pipeline` and `dynamic.run_dynamic_pipeline` (synchronous
            runs); for a detached run only what fails before it is submitted.
    """
    placeholder_run = request.placeholder_run
    settle_orphaned_runs(besides=placeholder_run.id if placeholder_run is not None else None)
    if not request.settings.synchronous and placeholder_run is not None:
        start_detached_run(request)
        return
    if not request.settings.synchronous:
        logger.warning("synchronous=False needs a pipeline run to hand over, and ZenML "
                       "gave none (a schedule?): the run goes on in this process.")
    if request.is_dynamic:
        run_dynamic_pipeline(request)
    else:
        run_pipeline(request)


