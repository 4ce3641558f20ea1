"""The `my_swarm` flavor: the same pipelines on a Docker Swarm cluster.

Each step runs as a Swarm service whose single task runs once, wherever Swarm
finds room for the step's `ResourceSettings` (reserved and limited) and its
placement constraints; retries, timeouts, stops and cleanup stay the
orchestrator's, as on `my_docker`. Images reach every node through the
stack's container registry; ZenML's store and the artifact store must be
reachable from every node (see `orchestrator.swarm.cluster`).

This module is only glue (imported inside every step container, so nothing
heavy at module level); the work happens in `orchestrator.swarm`.

Registered like `my_docker`:

    zenml orchestrator flavor register orchestrator.my_swarm_orchestrator.MySwarmOrchestratorFlavor
    zenml orchestrator register my_swarm_orchestrator -f my_swarm
    zenml container-registry register swarm_registry -f default --uri=127.0.0.1:5000
    zenml stack register swarm_stack -o my_swarm_orchestrator -a default -c swarm_registry
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple, Type, cast

from pydantic import Field
from zenml.config.base_settings import BaseSettings
from zenml.enums import ExecutionMode, ExecutionStatus, StackComponentType
from zenml.orchestrators import (
    BaseOrchestratorConfig,
    BaseOrchestratorFlavor,
    ContainerizedOrchestrator,
    SubmissionResult,
)
from zenml.stack import StackValidator

from orchestrator.swarm.settings import (
    ENV_ORCHESTRATOR_RUN_ID,
    FLAVOR_NAME,
    MySwarmOrchestratorSettings,
)

if TYPE_CHECKING:
    from zenml.config.build_configuration import BuildConfiguration
    from zenml.models import PipelineRunResponse, PipelineSnapshotBase, PipelineSnapshotResponse
    from zenml.stack import Stack

__all__ = ["MySwarmOrchestrator", "MySwarmOrchestratorConfig", "MySwarmOrchestratorFlavor",
           "MySwarmOrchestratorSettings"]


class MySwarmOrchestratorConfig(BaseOrchestratorConfig, MySwarmOrchestratorSettings):
    """Configuration of a registered `my_swarm` orchestrator."""

    manager_url: Optional[str] = Field(
        default=None,
        description="DOCKER_HOST of a manager of the swarm (unix://..., tcp://..., "
        "ssh://user@host). None: DOCKER_HOST if set, else the local swarm's manager "
        "(`python -m orchestrator.machine.swarm up`).",
    )
    shared_paths: bool = Field(
        default=False,
        description="True: ZenML's local stores folder (SQLite store, local artifact "
        "store) is mounted at the same path on every node (NFS). Not needed when "
        "every node is an engine on this machine (the local swarm).",
    )
    mount_package: bool = Field(
        default=True,
        description="Bind-mount this orchestrator package into every step container "
        "(it must be importable there: ZenML loads the stack's flavor). Needs the "
        "package's folder at the same path on every node; on a real cluster set it "
        "False and install the package in the image (DockerSettings(requirements=...)).",
    )

    @property
    def is_local(self) -> bool:
        """Local paths (stores, artifacts) are allowed: on the local swarm every node
        shares them; on a real cluster the orchestrator refuses them itself, clearly."""
        return True

    @property
    def is_synchronous(self) -> bool:
        """Whether a pipeline call waits for its run (the `synchronous` setting)."""
        return self.synchronous

    @property
    def handles_step_retries(self) -> bool:
        """Every attempt is a new service, so a task killed on its node is retried too."""
        return True


class MySwarmOrchestrator(ContainerizedOrchestrator):
    """Runs every step of a pipeline as a service on a Docker Swarm."""

    @property
    def config(self) -> MySwarmOrchestratorConfig:
        return cast(MySwarmOrchestratorConfig, self._config)

    @property
    def settings_class(self) -> Optional[Type[BaseSettings]]:
        return MySwarmOrchestratorSettings

    @property
    def supported_execution_modes(self) -> List[ExecutionMode]:
        return [ExecutionMode.FAIL_FAST, ExecutionMode.STOP_ON_FAILURE,
                ExecutionMode.CONTINUE_ON_FAILURE]

    @property
    def validator(self) -> Optional[StackValidator]:
        """Every node pulls the step images: the stack needs a container registry."""
        return StackValidator(required_components={StackComponentType.CONTAINER_REGISTRY})

    def get_docker_builds(self, snapshot: "PipelineSnapshotBase") -> List["BuildConfiguration"]:
        """ZenML's builds, leaving no build container behind, built from a local
        parent image as it is (`orchestrator.running.builds`)."""
        from orchestrator.running.builds import prepare_builds

        return prepare_builds(super().get_docker_builds(snapshot), snapshot)

    def get_orchestrator_run_id(self) -> str:
        """The run id, read inside a step's task from its environment.

        Raises:
            RuntimeError: called outside a step task of this orchestrator.
        """
        try:
            return os.environ[ENV_ORCHESTRATOR_RUN_ID]
        except KeyError:
            raise RuntimeError(f"{ENV_ORCHESTRATOR_RUN_ID} is not set: this code runs outside "
                               "a step task started by the my_swarm orchestrator.") from None

    def submit_pipeline(
        self,
        snapshot: "PipelineSnapshotResponse",
        stack: "Stack",
        base_environment: Dict[str, str],
        step_environments: Dict[str, Dict[str, str]],
        placeholder_run: Optional["PipelineRunResponse"] = None,
    ) -> Optional[SubmissionResult]:
        """Run the pipeline now, one service per step attempt; return when it is over,
        or, with `synchronous=False`, at once, the run going on in a detached
        process (the same as `my_docker`'s, `orchestrator.running.detached`).

        Raises:
            StepFailedError: one or more steps failed.
            RunStoppedError: the run was stopped.
            SwarmUnavailableError, ClusterStackError, InvalidSettingsError: it could not start.
        """
        from orchestrator.running.request import RunRequest
        from orchestrator.running.submission import submit_run
        from orchestrator.swarm.pipeline_run import swarm_run_functions
        from orchestrator.swarm.settings import SwarmCluster

        request = RunRequest.resolve(self, snapshot, stack, environment=base_environment,
                                     step_environments=step_environments,
                                     placeholder_run=placeholder_run)
        cluster = SwarmCluster(manager_url=self.config.manager_url,
                               shared_paths=self.config.shared_paths,
                               mount_package=self.config.mount_package)
        submit_run(request, swarm_run_functions(cluster))
        return None

    def fetch_status(
        self, run: "PipelineRunResponse", include_steps: bool = False
    ) -> Tuple[Optional[ExecutionStatus], Optional[Dict[str, ExecutionStatus]]]:
        """The run's status and its steps', from its tasks on the swarm's manager and
        ZenML's records, through the same pure model as the live panel
        (`orchestrator.status`); without a manager, ZenML's record alone."""
        from orchestrator.status.fetch import execution_statuses
        from orchestrator.status.swarm_source import clients_gone
        from orchestrator.status.watcher import read_status
        from orchestrator.zenml_records import get_run

        run = get_run(run.id, hydrate=True)
        run_status, steps = execution_statuses(read_status(run), client_gone=clients_gone(run))
        return run_status, (steps if include_steps else None)

    def _stop_run(self, run: "PipelineRunResponse", graceful: bool = False) -> None:
        """Remove the run's services; the process running it (the client, or a
        detached process) records the steps as stopped; if a detached process
        is gone, the run is ended here."""
        from orchestrator.swarm.pipeline_run import stop_run_services

        stop_run_services(run, self.config.manager_url)


class MySwarmOrchestratorFlavor(BaseOrchestratorFlavor):
    """The `my_swarm` flavor: each step as a service on a Docker Swarm."""

    @property
    def name(self) -> str:
        return FLAVOR_NAME

    @property
    def docs_url(self) -> Optional[str]:
        return None

    @property
    def sdk_docs_url(self) -> Optional[str]:
        return None

    @property
    def logo_url(self) -> str:
        return "https://public-flavor-logos.s3.eu-central-1.amazonaws.com/orchestrator/docker.png"

    @property
    def config_class(self) -> Type[BaseOrchestratorConfig]:
        return MySwarmOrchestratorConfig

    @property
    def implementation_class(self) -> Type[MySwarmOrchestrator]:
        return MySwarmOrchestrator
