"""Where a run goes on: here, or in a detached process; with which flavor's run function.

Both flavors' `submit_pipeline` (and `my_docker`'s `submit_dynamic_pipeline`)
hand over here, with the `RunFunctions` that run their runs: `my_docker`'s
are the default (`docker_run_functions`: a static pipeline runs with
`pipeline_run.run_pipeline`, a dynamic one with `dynamic.run_dynamic_pipeline`);
`my_swarm` passes its swarm's. First, any earlier run of this store whose
orchestration process died is ended (`orphans`), so that none stays
"running". Then the run goes on in this process (`synchronous=True`, the
default) or in a detached orchestration process that outlives the caller
(`synchronous=False`, `detached`), which calls the same run function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from zenml.logger import get_logger

from orchestrator.running.detached import start_detached_run
from orchestrator.running.dynamic import run_dynamic_pipeline
from orchestrator.running.orphans import settle_orphaned_runs
from orchestrator.running.pipeline_run import run_pipeline
from orchestrator.running.planning import check_settings
from orchestrator.running.run_functions import FunctionCall, RunFunctions

if TYPE_CHECKING:
    from orchestrator.running.request import RunRequest

logger = get_logger("orchestrator.my_docker_orchestrator")


def docker_run_functions(request: "RunRequest") -> RunFunctions:
    """`my_docker`'s functions: its static or dynamic run, its settings and images
    checked on the engine, its containers removed once orphaned (the default)."""
    run = run_dynamic_pipeline if request.is_dynamic else run_pipeline
    return RunFunctions(run=FunctionCall.of(run), check=FunctionCall.of(check_settings))


def submit_run(request: "RunRequest", functions: Optional[RunFunctions] = None) -> None:
    """Run the request's snapshot now, here or in a detached process (its `synchronous` setting).

    Args:
        functions: the flavor's run functions (default: `my_docker`'s).

    Raises:
        StepFailedError, RunStoppedError, InvalidSettingsError, ...: what the
            run function raises (synchronous runs: `run_pipeline`,
            `dynamic.run_dynamic_pipeline`, `my_swarm`'s); for a detached run
            only what fails before it is submitted (the functions' `check`).
    """
    functions = functions or docker_run_functions(request)
    placeholder_run = request.placeholder_run
    settle_orphaned_runs(besides=placeholder_run.id if placeholder_run is not None else None)
    if not request.settings.synchronous and placeholder_run is not None:
        start_detached_run(request, functions)
        return
    if not request.settings.synchronous:
        logger.warning("synchronous=False needs a pipeline run to hand over, and ZenML "
                       "gave none (a schedule?): the run goes on in this process.")
    functions.run(request, detached=False)
