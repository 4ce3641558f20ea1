"""From a compiled ZenML pipeline (a snapshot) to the `SwarmPlan` the swarm runner executes.

A `SwarmPlan` is the same typed `RunPlan` a `my_docker` run executes (steps,
upstream steps, retries, environment, labels, mounts), plus where Swarm may
place each step (`StepPlacement`: reservations, limits, constraints) and how
its services are made. Everything that can be checked before the first task
is checked here: settings, the stores every node must reach, and a step
reserving more than any node offers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence

import docker

from orchestrator.running.container_spec import PACKAGE_MOUNT_ROOT, resource_request
from orchestrator.running.labels import run_labels
from orchestrator.running.plan import RunPlan, StepTemplate
from orchestrator.running.planning import (
    DEFAULT_ENVIRONMENT,
    FAST_STEP_ENVIRONMENT,
    orchestrator_mounts,
    orchestrator_warning,
    retry_policy,
    step_user,
)
from orchestrator.running.scheduler import ExecutionMode
from orchestrator.running.step_logs import run_log_dir
from orchestrator.swarm.cluster import (
    SwarmNode,
    check_fits_somewhere,
    check_stores_reachable,
    list_nodes,
)
from orchestrator.swarm.service_spec import StepPlacement, placement_for, service_kwargs
from orchestrator.swarm.settings import ENV_ORCHESTRATOR_RUN_ID, SwarmCluster

if TYPE_CHECKING:
    from zenml.stack import Stack

    from orchestrator.running.request import RunRequest

DEFAULT_PARALLELISM = 8


@dataclass(frozen=True)
class SwarmPlan:
    """A whole run on a swarm.

    Attributes:
        run: the run plan shared with `my_docker` (steps, policy, containers).
        placements: step name -> where Swarm may place it and what it reserves.
        service_mode: "replicated" or "replicated-job" (see the settings).
        timeouts: step name -> most seconds its task may wait for a node.
    """

    run: RunPlan
    placements: Mapping[str, StepPlacement] = field(default_factory=dict)
    service_mode: str = "replicated"
    pending_timeouts: Mapping[str, float] = field(default_factory=dict)

    def service_for(self, step_name: str, attempt: int) -> Dict[str, Any]:
        """The `services.create` kwargs of one attempt of one step."""
        return service_kwargs(self.run.spec_for(step_name, attempt, warn=orchestrator_warning),
                              self.placements[step_name], mode=self.service_mode,
                              grace_seconds=self.run.grace_seconds)


def plan_swarm_run(
    *,
    request: "RunRequest",
    cluster: SwarmCluster,
    client: docker.DockerClient,
    orchestrator_run_id: str,
) -> SwarmPlan:
    """Check everything about the run and describe each step's service.

    Args:
        request: the run's settings, images and environments (`running.request`).
        cluster: where the registered orchestrator runs.
        client: a client of the swarm's manager.

    Raises:
        InvalidSettingsError: a setting is invalid, or a step reserves more
            than any node offers.
        ClusterStackError: a store some node cannot reach.
        SwarmUnavailableError: no node is ready.
    """
    from zenml.config.global_config import GlobalConfiguration
    from zenml.entrypoints import StepEntrypointConfiguration

    snapshot, pipeline_run, settings = request.snapshot, request.placeholder_run, request.settings
    assert request.step_environments is not None, "a static pipeline's request"
    nodes = list_nodes(client)
    check_cluster_stack(request.stack, nodes, shared_paths=cluster.shared_paths,
                        reachable_ports=local_swarm_ports(cluster.manager_url))
    local_stores_path = GlobalConfiguration().local_stores_path
    run_name = pipeline_run.name if pipeline_run else snapshot.pipeline_configuration.name
    user = step_user()
    steps: Dict[str, StepTemplate] = {}
    placements: Dict[str, StepPlacement] = {}
    pending: Dict[str, float] = {}
    for name, step in snapshot.step_configurations.items():
        step_settings = request.step_settings[name]
        defaults = dict(DEFAULT_ENVIRONMENT)
        if user is not None and user.split(":")[0] not in ("0", "root"):
            defaults["HOME"] = "/tmp"  # a writable home for any uid
        steps[name] = StepTemplate(
            image=request.step_images[name],
            arguments=tuple(StepEntrypointConfiguration.get_entrypoint_arguments(
                step_name=name, snapshot_id=snapshot.id)),
            upstream=tuple(step.spec.upstream_steps),
            retry=retry_policy(step.config),
            user_environment=dict(request.step_environments[name]),
            default_environment=defaults,
            timeout_seconds=step_settings.timeout_seconds,
        )
        resources = resource_request(step.config.resource_settings)
        if resources.ignored:
            orchestrator_warning(f"Step '{name}': ResourceSettings field(s) {', '.join(resources.ignored)} "
                                 "have no meaning on a swarm and are ignored.")
        placements[name] = placement_for(resources, list(step_settings.placement_constraints), name)
        check_fits_somewhere(name, placements[name].memory_bytes, placements[name].nano_cpus,
                             placements[name].generic_resources, nodes)
        pending[name] = step_settings.pending_timeout_seconds
    environment = {
        ENV_ORCHESTRATOR_RUN_ID: orchestrator_run_id,
        "ZENML_LOCAL_STORES_PATH": local_stores_path,
        **FAST_STEP_ENVIRONMENT,
    }
    mounts = orchestrator_mounts(local_stores_path)
    if cluster.mount_package:
        environment["PYTHONPATH"] = PACKAGE_MOUNT_ROOT  # merged with the user's and the image's
    else:
        mounts = {path: bind for path, bind in mounts.items() if path == local_stores_path}
    run = RunPlan(
        steps=steps,
        entrypoint=tuple(StepEntrypointConfiguration.get_entrypoint_command()),
        labels=run_labels(
            orchestrator_run_id=orchestrator_run_id,
            pipeline_name=snapshot.pipeline_configuration.name,
            run_name=run_name,
            pipeline_run_id=str(pipeline_run.id) if pipeline_run else None,
        ),
        environment=environment,
        mounts=mounts,
        user=user,
        run_name=run_name,
        mode=ExecutionMode(snapshot.pipeline_configuration.execution_mode.value),
        max_parallelism=settings.max_parallelism or DEFAULT_PARALLELISM,
        grace_seconds=settings.stop_grace_seconds,
        keep_containers=settings.keep_services,
        orchestrator_run_id=orchestrator_run_id,
        log_dir=run_log_dir(str(pipeline_run.id) if pipeline_run else orchestrator_run_id),
    )
    plan = SwarmPlan(run=run, placements=placements, service_mode=settings.service_mode,
                     pending_timeouts=pending)
    for name in steps:
        plan.service_for(name, 1)  # every step's service can be described (run_args, names)
    return plan


def local_swarm_ports(manager_url: Optional[str]) -> Optional[List[int]]:
    """The host ports the local swarm's nodes reach, if the run goes to the local swarm; else None."""
    from orchestrator.machine.swarm import LocalSwarm
    from orchestrator.swarm.cluster import default_manager_url

    swarm = LocalSwarm()
    if (manager_url or default_manager_url()) != swarm.manager_url:
        return None
    return list(swarm.status().forwarded_ports) or None


def check_cluster_stack(stack: "Stack", nodes: Sequence[SwarmNode], *, shared_paths: bool,
                        reachable_ports: Optional[Sequence[int]] = None) -> None:
    """The stack's stores, checked against where the nodes are (see `check_stores_reachable`).

    Raises:
        ClusterStackError: a store or path some node cannot reach.
    """
    from zenml.client import Client

    store = Client().zen_store
    artifact_store = stack.artifact_store
    check_stores_reachable(
        nodes,
        store_type=str(store.type.value if hasattr(store.type, "value") else store.type),
        store_url=str(store.config.url),
        artifact_store_is_local=artifact_store.flavor == "local",
        artifact_path=str(artifact_store.path),
        shared_paths=shared_paths,
        reachable_ports=reachable_ports,
    )
