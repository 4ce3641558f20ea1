"""From a compiled ZenML pipeline (a snapshot) to a `RunPlan` the runner executes.

This is where ZenML's view of a pipeline (steps, upstream steps, settings,
retry and resource configuration, the built image) becomes ours (a DAG and a
function that describes each step's container). Everything is checked here,
before the first container starts, so that a misspelled setting or a missing
image fails the run at once with a clear message instead of halfway through.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional

import docker

from orchestrator.container_spec import (
    CLIENT_HOST_LABEL,
    CLIENT_PID_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    ORCHESTRATOR_RUN_ID_LABEL,
    PACKAGE_MOUNT_ROOT,
    PIPELINE_LABEL,
    PIPELINE_RUN_ID_LABEL,
    RUN_NAME_LABEL,
    ContainerSpec,
    build_spec,
    container_name,
    resource_limits,
    resource_request,
    validate_run_args,
)
from orchestrator.containers import require_image
from orchestrator.dag import ExecutionMode, RetryPolicy
from orchestrator.runner import RunPlan

if TYPE_CHECKING:
    from zenml.models import PipelineRunResponse, PipelineSnapshotResponse

    from orchestrator.my_docker_orchestrator import MyDockerOrchestrator

PACKAGE_DIR = Path(__file__).resolve().parent


def step_user() -> Optional[str]:
    """The calling user's uid:gid, so files a step writes belong to the user."""
    if sys.platform == "win32":
        return None
    return f"{os.getuid()}:{os.getgid()}"


def gpu_runtime_available(client: docker.DockerClient) -> bool:
    """Whether the engine can hand GPUs to containers (an nvidia runtime)."""
    try:
        runtimes = client.info().get("Runtimes", {}) or {}
    except docker.errors.DockerException:
        return False
    return "nvidia" in runtimes


def retry_policy(step_config: Any) -> RetryPolicy:
    """ZenML's `StepRetryConfig` as our scheduler's `RetryPolicy`."""
    retry = getattr(step_config, "retry", None)
    if retry is None:
        return RetryPolicy()
    return RetryPolicy(
        max_retries=int(retry.max_retries),
        delay=float(retry.delay),
        backoff=float(retry.backoff),
    )


def plan_run(
    *,
    orchestrator: "MyDockerOrchestrator",
    client: docker.DockerClient,
    snapshot: "PipelineSnapshotResponse",
    step_environments: Dict[str, Dict[str, str]],
    orchestrator_run_id: str,
    pipeline_run: Optional["PipelineRunResponse"],
) -> RunPlan:
    """Check everything about the run and describe how to start each step."""
    from zenml.config.global_config import GlobalConfiguration
    from zenml.constants import ENV_ZENML_LOCAL_STORES_PATH
    from zenml.entrypoints import StepEntrypointConfiguration

    from orchestrator.my_docker_orchestrator import (
        ENV_ORCHESTRATOR_RUN_ID,
        default_parallelism,
    )

    pipeline_settings = orchestrator.get_settings(snapshot)
    local_stores_path = GlobalConfiguration().local_stores_path
    mounts = {
        # ZenML's local stores (SQLite database and artifact store) must be at
        # the same path inside the container as outside.
        local_stores_path: {"bind": local_stores_path, "mode": "rw"},
        # Our own package: ZenML loads the active stack, custom flavor
        # included, inside every step container, whatever folder the
        # pipeline was started from.
        str(PACKAGE_DIR): {"bind": f"{PACKAGE_MOUNT_ROOT}/orchestrator", "mode": "ro"},
    }
    run_name = pipeline_run.name if pipeline_run else snapshot.pipeline_configuration.name
    common_labels = {
        MANAGED_BY_LABEL: MANAGED_BY_VALUE,
        ORCHESTRATOR_RUN_ID_LABEL: orchestrator_run_id,
        PIPELINE_LABEL: snapshot.pipeline_configuration.name,
        RUN_NAME_LABEL: run_name,
        CLIENT_HOST_LABEL: socket.gethostname(),
        CLIENT_PID_LABEL: str(os.getpid()),
    }
    if pipeline_run is not None:
        common_labels[PIPELINE_RUN_ID_LABEL] = str(pipeline_run.id)

    entrypoint = StepEntrypointConfiguration.get_entrypoint_command()
    user = step_user()
    host_cpus = os.cpu_count() or 1
    has_gpu_runtime = None  # asked only when some step wants a GPU

    static_parts: Dict[str, Dict[str, Any]] = {}
    for step_name, step in snapshot.step_configurations.items():
        settings = orchestrator.get_settings(step)
        validate_run_args(settings.run_args)
        request = resource_request(step.config.resource_settings)
        if request.gpu_count and has_gpu_runtime is None:
            has_gpu_runtime = gpu_runtime_available(client)
        limits = resource_limits(
            request,
            host_cpus=host_cpus,
            gpu_runtime_available=bool(has_gpu_runtime),
            warn=orchestrator_warning,
            step_name=step_name,
        )
        environment = dict(step_environments[step_name])
        environment[ENV_ORCHESTRATOR_RUN_ID] = orchestrator_run_id
        environment[ENV_ZENML_LOCAL_STORES_PATH] = local_stores_path
        environment["PYTHONPATH"] = PACKAGE_MOUNT_ROOT
        environment["ZENML_LOGGING_COLORS_DISABLED"] = "true"  # plain lines in our log
        if user is not None and not user.startswith("0:"):
            environment.setdefault("HOME", "/tmp")  # a writable home for any uid
        image = orchestrator.get_image(snapshot=snapshot, step_name=step_name)
        static_parts[step_name] = dict(
            image=settings.run_args.get("image", image),
            arguments=StepEntrypointConfiguration.get_entrypoint_arguments(
                step_name=step_name, snapshot_id=snapshot.id
            ),
            environment=environment,
            run_args=settings.run_args,
            limits=limits,
        )
    for image in {part["image"] for part in static_parts.values()}:
        require_image(client, image)

    def spec_for(step_name: str, attempt: int) -> ContainerSpec:
        part = static_parts[step_name]
        return build_spec(
            image=part["image"],
            entrypoint=entrypoint,
            arguments=part["arguments"],
            step_name=step_name,
            attempt=attempt,
            labels=common_labels,
            environment=part["environment"],
            mounts=mounts,
            user=user,
            run_args=part["run_args"],
            limits=part["limits"],
            name=container_name(run_name, step_name, attempt, orchestrator_run_id),
        )

    # Build every first attempt now: invalid combinations fail before any start.
    for step_name in static_parts:
        spec_for(step_name, 1)

    return RunPlan(
        upstreams={
            name: list(step.spec.upstream_steps)
            for name, step in snapshot.step_configurations.items()
        },
        spec_for=spec_for,
        mode=ExecutionMode(snapshot.pipeline_configuration.execution_mode.value),
        max_parallelism=pipeline_settings.max_parallelism or default_parallelism(),
        retries={
            name: retry_policy(step.config)
            for name, step in snapshot.step_configurations.items()
        },
        grace_seconds=pipeline_settings.stop_grace_seconds,
        keep_containers=pipeline_settings.keep_containers,
        orchestrator_run_id=orchestrator_run_id,
    )


def orchestrator_warning(message: str) -> None:
    """Warnings about settings we cannot honour go to ZenML's log."""
    from zenml.logger import get_logger

    get_logger("orchestrator").warning(message)
