"""A dynamic pipeline run: ZenML runs the pipeline function on the host, each isolated step in its own container.

ZenML 0.98 runs a dynamic pipeline (`@pipeline(dynamic=True)`) by executing
its function: each step call is compiled when it happens, and ZenML's
`DynamicPipelineRunner` runs the step either *inline* (in the orchestration
process, in a thread) or *isolated* (handed to the orchestrator). ZenML
decides which, per step: isolated when the step says `runtime="isolated"`,
asks for resources (`ResourceSettings`) or has Docker settings of its own;
inline otherwise. An orchestrator cannot change that choice.

As ZenML's `local` orchestrator does, `my_docker` runs the orchestration on
the host, in the process that called the pipeline (or the detached process
of a non-blocking run): `run_dynamic_pipeline`, here. Unlike `local`, every
isolated step runs in its own labelled container, built from the same plan,
template and container spec as a static pipeline's step
(`planning.plan_isolated_step`). What ZenML asks of the orchestrator, and
where it is done:

- `submit_isolated_step` (`isolated_steps`) -> `DynamicRun.submit`
  (`isolated_containers`): start the step's container, or queue it while
  `max_parallelism` containers run;
- `get_isolated_step_status`, `wait_for_isolated_step` -> `DynamicRun.status`:
  ZenML's record of the step where it has ended, else the container's state
  (a container killed for memory, or past its timeout, is a failure with
  that reason, written to the step's record: `isolated_records`);
- `stop_isolated_step` (ZenML's FAIL_FAST), `_stop_run` (`zenml pipeline runs
  stop`), Ctrl-C and SIGTERM (`dynamic_stops`): the step records are marked
  STOPPING first, so that ZenML records STOPPED rather than FAILED, then the
  containers stop;
- `cleanup_isolated_step`: the container is removed once it has exited
  (ZenML's teardown inside it is never cut short).

ZenML does the rest: retries (each one a new step run, so a new container),
the order of steps, and the run's final status. While the run goes on, a
pipeline function waiting on a submitted step's future asks promptly
(`isolated_futures`).
"""

from __future__ import annotations

import collections
import logging
import os
import time
from typing import TYPE_CHECKING, Dict

from zenml.enums import ExecutionStatus

from orchestrator.errors import RunStoppedError
from orchestrator.machine.engine import connect
from orchestrator.running.dynamic_stops import (
    INTERRUPT_GRACE_SECONDS,
    RUN_STOP_STATES,
    interrupt_stops_the_run,
    stop_watcher,
)
from orchestrator.running.error_display import show_our_errors_briefly
from orchestrator.running.isolated_containers import DynamicRun
from orchestrator.running.isolated_futures import prompt_isolated_futures
from orchestrator.running.orchestration_record import write_record
from orchestrator.running.planning import warn_if_store_in_source_root
from orchestrator.running.reporting import claim_orchestrator_run_id, finish_run
from orchestrator.running.settings import ENV_ORCHESTRATOR_RUN_ID
from orchestrator.running.step_logs import run_log_dir
from orchestrator.zenml_records import run_status, step_runs_of

if TYPE_CHECKING:
    from orchestrator.running.request import RunRequest

logger = logging.getLogger("orchestrator.my_docker_orchestrator")

# ZenML's runner looks at running isolated steps every 10 s by default;
# steps started with .submit() wait for that look. Local containers and a
# local store are cheap to ask: once a second, unless the user chose.
MONITORING_INTERVAL_SECONDS = "1"


def run_dynamic_pipeline(request: "RunRequest", *, detached: bool = False) -> None:
    """Run a dynamic pipeline's function here, with ZenML's runner; return when it ends.

    ZenML's runner loads the orchestrator from the snapshot's stack and hands
    it each isolated step; the flavor hands them to this run (`submit_isolated_step`).

    Args:
        request: its `environment` is ZenML's environment for the
            orchestration (store access, secrets), set while the run goes
            on; its `placeholder_run` is the run (a new one, or one ZenML
            resumes or retries: it then keeps its orchestrator run id, and
            finished steps are reused).
        detached: this is the detached process of a non-blocking run.

    Raises:
        RunStoppedError: the run was stopped.
        KeyboardInterrupt: the client was interrupted (everything stopped and
            removed first, the run recorded as stopped).
        Exception: whatever the pipeline function raised (a failed step's
            error, for example), as ZenML raises it.
    """
    from zenml.constants import ENV_ZENML_DYNAMIC_PIPELINE_MONITORING_INTERVAL
    from zenml.execution.pipeline.dynamic.runner import DynamicPipelineRunner
    from zenml.utils.env_utils import temporary_environment

    from orchestrator.running.settings import default_parallelism

    snapshot, placeholder_run, settings = request.snapshot, request.placeholder_run, request.settings
    show_our_errors_briefly()
    warn_if_store_in_source_root(snapshot)
    request.stack.check_local_paths()
    orchestrator_run_id = claim_orchestrator_run_id(placeholder_run)
    run = DynamicRun(connect(), orchestrator_run_id,
                     max_parallelism=settings.max_parallelism or default_parallelism(),
                     grace_seconds=settings.stop_grace_seconds,
                     keep_containers=settings.keep_containers)
    host_environment = {**request.environment, ENV_ORCHESTRATOR_RUN_ID: orchestrator_run_id}
    host_environment.setdefault(
        ENV_ZENML_DYNAMIC_PIPELINE_MONITORING_INTERVAL,
        os.environ.get(ENV_ZENML_DYNAMIC_PIPELINE_MONITORING_INTERVAL,
                       MONITORING_INTERVAL_SECONDS))
    if placeholder_run is not None:  # this process takes the run over (a resume, a retry)
        write_record(run_log_dir(str(placeholder_run.id)), str(placeholder_run.id),
                     detached=detached, supervisor_pid=os.getppid() if detached else None)
    started = time.monotonic()
    try:
        with temporary_environment(host_environment), \
                prompt_isolated_futures(settings.future_poll_seconds), \
                interrupt_stops_the_run(run):
            runner = DynamicPipelineRunner(snapshot=snapshot, run=placeholder_run)
            run.register(str(runner.run.id), runner.run.name)
            if placeholder_run is None:
                write_record(run_log_dir(str(runner.run.id)), str(runner.run.id),
                             detached=detached,
                             supervisor_pid=os.getppid() if detached else None)
            logger.info("Running dynamic pipeline '%s' in this process: each isolated step "
                        "in its own container (up to %d at a time), the other steps inline, "
                        "here. Each step's full output: %s",
                        snapshot.pipeline_configuration.name, run.max_parallelism,
                        run_log_dir(str(runner.run.id)))
            with stop_watcher(run, runner):
                runner.run_pipeline()
    except KeyboardInterrupt:
        run.stop_all(grace_seconds=INTERRUPT_GRACE_SECONDS)
        _end_unfinished_run(run, ExecutionStatus.STOPPED, "The client was interrupted.")
        raise
    except BaseException as error:
        run.stop_all(grace_seconds=INTERRUPT_GRACE_SECONDS)
        if _was_stopped(run):
            raise RunStoppedError(_stopped_message(run)) from error
        _end_unfinished_run(run, ExecutionStatus.FAILED, f"The orchestration failed: {error}")
        raise
    finally:
        try:
            run.finish()
        finally:
            run.unregister()
    logger.info("Dynamic run '%s' finished in %.1f s.", run.run_name, time.monotonic() - started)
    if _was_stopped(run):
        raise RunStoppedError(_stopped_message(run))


def _was_stopped(run: DynamicRun) -> bool:
    if run.pipeline_run_id is None:
        return False
    try:
        return run_status(run.pipeline_run_id) in RUN_STOP_STATES
    except Exception:  # noqa: BLE001 - unknown: say what ZenML's runner said
        return False


def _stopped_message(run: DynamicRun) -> str:
    counts: Dict[str, int] = collections.Counter(
        ExecutionStatus(s.status).value for s in step_runs_of(run.pipeline_run_id))
    done = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no step ran"
    return (f"The run {run.run_name} was stopped: {done}. Every step's output: "
            f"python -m orchestrator.status {run.run_name} --logs")


def _end_unfinished_run(run: DynamicRun, status: ExecutionStatus, reason: str) -> None:
    """Record the run's end where ZenML's runner could not (it was interrupted)."""
    if run.pipeline_run_id is None:
        return
    try:
        finish_run(run.pipeline_run_id, status=status, reason=reason)
    except Exception as error:  # noqa: BLE001 - never hide the original error
        logger.warning("Could not record the run's end in ZenML: %s", error)
