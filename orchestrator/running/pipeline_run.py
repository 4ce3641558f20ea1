"""One static pipeline run, from ZenML's `submit_pipeline` call to its end.

`submission.submit_run` hands over here, in the client (`synchronous=True`)
or in a detached orchestration process: check the machine and the settings
(`planning`), run every step (`runner`), and keep ZenML's record true
whatever happens (`reporting`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zenml.logger import get_logger

from orchestrator.errors import MyDockerError
from orchestrator.machine.engine import connect
from orchestrator.running.error_display import show_our_errors_briefly
from orchestrator.running.orchestration_record import write_record
from orchestrator.running.planning import plan_run, warn_if_store_in_source_root
from orchestrator.running.reporting import (
    ZenmlRunHooks,
    claim_orchestrator_run_id,
    record_failed_run,
)
from orchestrator.running.runner import DagRunner
from orchestrator.running.step_logs import run_log_dir

if TYPE_CHECKING:
    from orchestrator.running.request import RunRequest

logger = get_logger("orchestrator.my_docker_orchestrator")


def run_pipeline(request: "RunRequest", *, detached: bool = False) -> None:
    """Run every step of the request's snapshot in its own container; return when all are done.

    Args:
        detached: this is the detached orchestration process of a
            non-blocking run (recorded as such, for `orphans`).

    Raises:
        StepFailedError: one or more steps failed.
        RunStoppedError: the run was stopped.
        InvalidSettingsError, ImageNotFoundError, DockerEngineUnavailableError:
            the run could not start (it is recorded as failed, with the reason).
        KeyboardInterrupt: the client was interrupted (everything was stopped
            and removed first).
    """
    import os

    snapshot, placeholder_run = request.snapshot, request.placeholder_run
    if snapshot.schedule:
        logger.warning(
            "The my_docker orchestrator does not support schedules: the "
            "schedule is ignored and the pipeline runs once, now. Use cron "
            "or another scheduler to call it repeatedly."
        )
    show_our_errors_briefly()
    warn_if_store_in_source_root(snapshot)
    request.stack.check_local_paths()
    if placeholder_run is not None:
        # Before planning: a client that dies while it plans (or checks the
        # settings with the engine) leaves a run others can tell is orphaned.
        write_record(run_log_dir(str(placeholder_run.id)), str(placeholder_run.id),
                     detached=detached, supervisor_pid=os.getppid() if detached else None)
    try:
        client = connect()
        plan = plan_run(request=request, client=client,
                        orchestrator_run_id=claim_orchestrator_run_id(placeholder_run))
    except MyDockerError as error:
        # Nothing ran: the run failed, and the record says why.
        record_failed_run(placeholder_run, str(error))
        raise
    hooks = ZenmlRunHooks(logger=logger, pipeline_run=placeholder_run)
    logger.info(
        "Running %d step(s) in Docker containers, up to %d at a time. "
        "Each step's full output: %s",
        len(plan.steps), plan.max_parallelism, plan.log_dir,
    )
    DagRunner(client, plan, hooks).run()
