"""One static pipeline run on a swarm, from ZenML's `submit_pipeline` call to its end.

Check the swarm and the stack (`planning`), run every step as a service
(`runner`), and keep ZenML's record true whatever happens (the same
`ZenmlRunHooks` as `my_docker`). The run goes on in the client or, with
`synchronous=False`, in the same detached orchestration process as a
`my_docker` run (`orchestrator.running.detached`): `swarm_run_functions`
names this module's functions for it (run, quick check, removal of an
orphaned run's services). Also: stopping a run from another process.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional
from uuid import uuid4

import docker
from zenml.logger import get_logger

from orchestrator.errors import MyDockerError
from orchestrator.running.error_display import show_our_errors_briefly
from orchestrator.running.labels import label_filters
from orchestrator.running.orchestration_record import write_record
from orchestrator.running.orphans import settle_if_orphaned
from orchestrator.running.reporting import (
    ZenmlRunHooks,
    claim_orchestrator_run_id,
    record_failed_run,
)
from orchestrator.running.run_functions import FunctionCall, RunFunctions
from orchestrator.running.step_logs import run_log_dir
from orchestrator.swarm.cluster import (
    SwarmUnavailableError,
    connect_manager,
    find_services,
    list_nodes,
    local_node_engines,
    remove_services,
    wait_until_gone,
)
from orchestrator.swarm.planning import plan_swarm_run
from orchestrator.swarm.runner import CLEANUP_SECONDS, SwarmRunner
from orchestrator.swarm.settings import SwarmCluster

if TYPE_CHECKING:
    from zenml.models import PipelineRunResponse

    from orchestrator.running.request import RunRequest

logger = get_logger("orchestrator.my_swarm_orchestrator")


def swarm_run_functions(cluster: SwarmCluster) -> RunFunctions:
    """The functions a run on `cluster` goes through, here or detached (`running.submission`)."""
    options = {"manager_url": cluster.manager_url, "shared_paths": cluster.shared_paths,
               "mount_package": cluster.mount_package}
    return RunFunctions(run=FunctionCall.of(run_pipeline_on_swarm, **options),
                        check=FunctionCall.of(check_swarm_run, **options),
                        remove=_remover(cluster.manager_url))


def _remover(manager_url: Optional[str]) -> FunctionCall:
    return FunctionCall.of(remove_orphaned_services, manager_url=manager_url)


def run_pipeline_on_swarm(request: "RunRequest", *, manager_url: Optional[str],
                          shared_paths: bool, mount_package: bool,
                          detached: bool = False) -> None:
    """Run every step of the request's snapshot as a Swarm service; return when all are done.

    Args:
        manager_url, shared_paths, mount_package: the registered orchestrator's
            cluster (`SwarmCluster`).
        detached: this is the detached orchestration process of a
            non-blocking run (recorded as such, for `orphans`).

    Raises:
        StepFailedError: one or more steps failed.
        RunStoppedError: the run was stopped.
        SwarmUnavailableError, ClusterStackError, InvalidSettingsError: the run
            could not start (recorded as failed, with the reason).
        KeyboardInterrupt: the client was interrupted (every service removed first).
    """
    cluster = SwarmCluster(manager_url=manager_url, shared_paths=shared_paths,
                           mount_package=mount_package)
    placeholder_run = request.placeholder_run
    if request.snapshot.schedule:
        logger.warning("The my_swarm orchestrator does not support schedules: the pipeline "
                       "runs once, now.")
    show_our_errors_briefly()
    if detached and placeholder_run is not None:
        # Before planning, as on my_docker: should this process die, its watchdog (or
        # the next look at the run) ends the run, and removes its services.
        write_record(run_log_dir(str(placeholder_run.id)), str(placeholder_run.id),
                     detached=True, supervisor_pid=os.getppid(),
                     remove_with=_remover(manager_url).to_json())
    try:
        client = connect_manager(cluster.manager_url)
        # A detached run's id was claimed when it was submitted (so that it could be
        # stopped at once): its services must carry that one.
        plan = plan_swarm_run(request=request, cluster=cluster, client=client,
                              orchestrator_run_id=claim_orchestrator_run_id(placeholder_run)
                              if detached else str(uuid4()))
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


def check_swarm_run(request: "RunRequest", *, manager_url: Optional[str], shared_paths: bool,
                    mount_package: bool) -> None:
    """The checks a run's plan makes (swarm, stack, settings, room on a node), nothing started.

    Made before a run is handed to a detached process, so that what would fail
    the run at once fails the pipeline call instead.

    Raises:
        SwarmUnavailableError, ClusterStackError, InvalidSettingsError: as
            `run_pipeline_on_swarm` would, before anything runs.
    """
    cluster = SwarmCluster(manager_url=manager_url, shared_paths=shared_paths,
                           mount_package=mount_package)
    plan_swarm_run(request=request, cluster=cluster, client=connect_manager(manager_url),
                   orchestrator_run_id=str(uuid4()))


def remove_orphaned_services(run: "PipelineRunResponse", *, manager_url: Optional[str]) -> int:
    """End everything of a run whose orchestration process died (`orphans`, through
    the run's orchestration record): as on `my_docker`, its running containers
    are killed (on the nodes whose engines this machine reaches; elsewhere
    Swarm stops them, SIGTERM then SIGKILL after the grace), then its services
    are removed, and this waits until no task or container of it is left.

    Returns:
        How many services there were (0 when the manager does not answer: said in the log).
    """
    try:
        client = connect_manager(manager_url, timeout=10)
    except SwarmUnavailableError as error:
        logger.warning("Run %s: its services could not be removed: %s", run.name, error)
        return 0
    labels = label_filters(pipeline_run_id=str(run.id))
    services = find_services(client, pipeline_run_id=str(run.id))
    engines = local_node_engines(list_nodes(client))
    for engine in engines.values():
        for container in engine.containers.list(ignore_removed=True, filters={"label": labels}):
            try:
                container.kill()
            except docker.errors.APIError:
                pass  # it ended meanwhile
    remove_services(client, services)
    left = wait_until_gone(client, [service.id for service in services], engines, labels,
                           timeout=CLEANUP_SECONDS)
    if left:
        logger.warning("Run %s: not everything was removed from the swarm: %s", run.name,
                       "; ".join(left))
    return len(services)


def stop_run_services(run: "PipelineRunResponse", manager_url: Optional[str]) -> int:
    """Remove every service of a run (its tasks get SIGTERM, then SIGKILL after the grace).

    The process running the run notices, sees the run marked as stopping, and
    records its steps as stopped. If that process was a detached one and is
    gone, the run is ended here (`orphans`).

    Returns:
        How many services were removed.

    Raises:
        SwarmUnavailableError: the manager does not answer.
    """
    client = connect_manager(manager_url)
    services = find_services(client, pipeline_run_id=str(run.id))
    remove_services(client, services)
    settle_if_orphaned(run.id)
    return len(services)
