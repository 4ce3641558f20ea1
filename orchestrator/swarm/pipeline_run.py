"""One static pipeline run on a swarm, from ZenML's `submit_pipeline` call to its end.

Check the swarm and the stack (`planning`), run every step as a service
(`runner`), and keep ZenML's record true whatever happens (the same
`ZenmlRunHooks` as `my_docker`). Also: stopping a run from another process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional
from uuid import uuid4

from zenml.logger import get_logger

from orchestrator.errors import MyDockerError
from orchestrator.running.error_display import show_our_errors_briefly
from orchestrator.running.reporting import ZenmlRunHooks, record_failed_run
from orchestrator.swarm.cluster import (
    connect_manager,
    find_services,
    list_nodes,
    local_node_engines,
    remove_services,
)
from orchestrator.swarm.planning import plan_swarm_run
from orchestrator.swarm.runner import SwarmRunner
from orchestrator.swarm.settings import SwarmCluster

if TYPE_CHECKING:
    from zenml.models import PipelineRunResponse

    from orchestrator.running.request import RunRequest

logger = get_logger("orchestrator.my_swarm_orchestrator")


def run_pipeline_on_swarm(request: "RunRequest", cluster: SwarmCluster) -> None:
    """Run every step of the request's snapshot as a Swarm service; return when all are done.

    Raises:
        StepFailedError: one or more steps failed.
        RunStoppedError: the run was stopped.
        SwarmUnavailableError, ClusterStackError, InvalidSettingsError: the run
            could not start (recorded as failed, with the reason).
        KeyboardInterrupt: the client was interrupted (every service removed first).
    """
    placeholder_run = request.placeholder_run
    if request.snapshot.schedule:
        logger.warning("The my_swarm orchestrator does not support schedules: the pipeline "
                       "runs once, now.")
    show_our_errors_briefly()
    try:
        client = connect_manager(cluster.manager_url)
        plan = plan_swarm_run(request=request, cluster=cluster, client=client,
                              orchestrator_run_id=str(uuid4()))
        nodes = list_nodes(client)
    except MyDockerError as error:
        record_failed_run(placeholder_run, str(error))
        raise
    hooks = ZenmlRunHooks(logger=logger, pipeline_run=placeholder_run)
    logger.info("Running %d step(s) as Swarm services on %s, up to %d at a time. "
                "Each step's full output: %s", len(plan.run.steps),
                ", ".join(f"{n.hostname} ({n.state})" for n in nodes),
                plan.run.max_parallelism, plan.run.log_dir)
    SwarmRunner(client, plan, hooks, node_engines=local_node_engines(nodes)).run()


def stop_run_services(run: "PipelineRunResponse", manager_url: Optional[str]) -> int:
    """Remove every service of a run (its tasks get SIGTERM, then SIGKILL after the grace).

    The process running the run notices, sees the run marked as stopping, and
    records its steps as stopped.

    Returns:
        How many services were removed.

    Raises:
        SwarmUnavailableError: the manager does not answer.
    """
    client = connect_manager(manager_url)
    services = find_services(client, pipeline_run_id=str(run.id))
    remove_services(client, services)
    return len(services)
