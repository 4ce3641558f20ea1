"""The `my_docker` flavor: ZenML's orchestrator interface, glued to our runner.

ZenML asks an orchestrator flavor for three things: a flavor (its name and
classes), a config/settings model (what users may set), and an orchestrator
whose `submit_pipeline` runs a compiled pipeline, and, for dynamic pipelines,
whose `submit_dynamic_pipeline` runs the pipeline function and whose
isolated-step methods run single steps. This module is only that glue: it
asks ZenML for the run's settings, images and environments once, hands them
down as plain data (`running.request`), and the work happens in
`orchestrator.running` (planning, the scheduler, containers, the runner,
dynamic runs, detached runs, reporting to ZenML) and `orchestrator.status`
(`fetch_status`). It is imported inside every step container, so it imports
nothing heavy at module level.

Registered with the reference commands:

    zenml orchestrator flavor register orchestrator.my_docker_orchestrator.MyDockerOrchestratorFlavor
    zenml orchestrator register my_docker_orchestrator -f my_docker
    zenml stack register my_stack -o my_docker_orchestrator -a default
    zenml stack set my_stack
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple, Type, cast

from zenml.config.base_settings import BaseSettings
from zenml.enums import ExecutionMode, ExecutionStatus
from zenml.orchestrators import (
    BaseOrchestratorConfig,
    BaseOrchestratorFlavor,
    ContainerizedOrchestrator,
    SubmissionResult,
)
from zenml.stack import StackValidator

from orchestrator.running.settings import (
    ENV_ORCHESTRATOR_RUN_ID,
    FLAVOR_NAME,
    MyDockerOrchestratorSettings,
)

if TYPE_CHECKING:
    from zenml.config.build_configuration import BuildConfiguration
    from zenml.config.step_run_info import StepRunInfo
    from zenml.models import (
        PipelineRunResponse,
        PipelineSnapshotBase,
        PipelineSnapshotResponse,
        StepRunResponse,
    )
    from zenml.stack import Stack

__all__ = [
    "MyDockerOrchestrator",
    "MyDockerOrchestratorConfig",
    "MyDockerOrchestratorFlavor",
    "MyDockerOrchestratorSettings",
]


class MyDockerOrchestratorConfig(BaseOrchestratorConfig, MyDockerOrchestratorSettings):
    """Configuration of a registered `my_docker` orchestrator."""

    @property
    def is_local(self) -> bool:
        return True

    @property
    def is_synchronous(self) -> bool:
        """Whether a pipeline call waits for its run (the `synchronous` setting)."""
        return self.synchronous

    @property
    def handles_step_retries(self) -> bool:
        """We retry whole containers, so a killed container is retried too."""
        return True


class MyDockerOrchestrator(ContainerizedOrchestrator):
    """Runs every step of a pipeline in its own local Docker container."""

    @property
    def config(self) -> MyDockerOrchestratorConfig:
        return cast(MyDockerOrchestratorConfig, self._config)

    @property
    def settings_class(self) -> Optional[Type[BaseSettings]]:
        # ZenML asks for it when it checks a pipeline's settings, the first of
        # our code a pipeline call meets: from here on our errors (and refused
        # settings) are shown as their message. Not in step containers.
        if ENV_ORCHESTRATOR_RUN_ID not in os.environ:
            from orchestrator.running.error_display import show_our_errors_briefly

            show_our_errors_briefly()
        return MyDockerOrchestratorSettings

    @property
    def supported_execution_modes(self) -> List[ExecutionMode]:
        return [
            ExecutionMode.FAIL_FAST,
            ExecutionMode.STOP_ON_FAILURE,
            ExecutionMode.CONTINUE_ON_FAILURE,
        ]

    @property
    def validator(self) -> Optional[StackValidator]:
        """Before ZenML builds anything, make sure a Docker engine answers."""
        from orchestrator.running.builds import engine_answers

        return StackValidator(custom_validation_function=engine_answers)

    def get_docker_builds(self, snapshot: "PipelineSnapshotBase") -> List["BuildConfiguration"]:
        """ZenML's builds: checked, leaving no container behind, compiling
        bytecode, and reusing an image built for an earlier run when nothing
        that decides its content changed (`running.builds`).

        Raises:
            ImageNotFoundError: a parent image is neither local nor pullable.
        """
        from orchestrator.running.builds import prepare_builds

        return prepare_builds(super().get_docker_builds(snapshot), snapshot)

    def get_orchestrator_run_id(self) -> str:
        """The run id, read inside a step container from its environment.

        Raises:
            RuntimeError: called outside a step container of this orchestrator.
        """
        try:
            return os.environ[ENV_ORCHESTRATOR_RUN_ID]
        except KeyError:
            raise RuntimeError(
                f"{ENV_ORCHESTRATOR_RUN_ID} is not set: this code runs outside a "
                "step container started by the my_docker orchestrator."
            ) from None

    def submit_pipeline(
        self,
        snapshot: "PipelineSnapshotResponse",
        stack: "Stack",
        base_environment: Dict[str, str],
        step_environments: Dict[str, Dict[str, str]],
        placeholder_run: Optional["PipelineRunResponse"] = None,
    ) -> Optional[SubmissionResult]:
        """Run the pipeline now, one container per step, here or detached.

        A synchronous run goes on inside `submit_pipeline` (rather than in a
        `wait_for_completion` callback) so that Ctrl-C reaches our runner
        directly: it stops and removes the run's containers before the
        KeyboardInterrupt goes on to the user. With `synchronous=False` it
        goes on in a detached process, and this returns at once.

        Raises:
            StepFailedError: one or more steps failed.
            RunStoppedError: the run was stopped.
            InvalidSettingsError, ImageNotFoundError: the run could not start.
        """
        from orchestrator.running.request import RunRequest
        from orchestrator.running.submission import submit_run

        request = RunRequest.resolve(self, snapshot, stack, environment=base_environment,
                                     step_environments=step_environments,
                                     placeholder_run=placeholder_run)
        self._remember_builds(snapshot, stack)
        submit_run(request)
        return None

    def _remember_builds(self, snapshot: "PipelineSnapshotResponse", stack: "Stack") -> None:
        """Keep this run's freshly built images for the next call (`running.builds`):
        ZenML's builds are the orchestrator's to describe, so this is asked here."""
        from orchestrator.errors import DockerEngineUnavailableError
        from orchestrator.machine.engine import connect
        from orchestrator.running.builds import remember_builds

        try:
            client = connect()
        except DockerEngineUnavailableError:
            return  # the run itself reports it, recorded as failed
        remember_builds(self, snapshot, stack, client)

    def submit_dynamic_pipeline(
        self,
        snapshot: "PipelineSnapshotResponse",
        stack: "Stack",
        environment: Dict[str, str],
        placeholder_run: Optional["PipelineRunResponse"] = None,
    ) -> Optional[SubmissionResult]:
        """Run a dynamic pipeline's function on the host, as ZenML's `local` does,
        each isolated step in its own container; here, or detached.

        Also what ZenML's `resume_run` calls (`zenml pipeline runs retry`):
        the run keeps its orchestrator run id, finished steps are reused,
        and running step containers are watched again.

        Raises:
            RunStoppedError: the run was stopped.
            Exception: what the pipeline function raised (a step's error).
        """
        from orchestrator.running.request import RunRequest
        from orchestrator.running.submission import submit_run

        submit_run(RunRequest.resolve(self, snapshot, stack, environment=environment,
                                      step_environments=None, placeholder_run=placeholder_run))
        return None

    def submit_isolated_step(self, step_run_info: "StepRunInfo",
                             environment: Dict[str, str]) -> None:
        """Start one isolated step of a dynamic run in its own container; do not wait.

        Raises:
            MyDockerError: the step's container cannot be made or started.
        """
        from orchestrator.running.isolated_steps import submit_isolated_step
        from orchestrator.running.request import IsolatedStepRequest

        submit_isolated_step(IsolatedStepRequest.resolve(self, step_run_info, environment))

    def get_isolated_step_status(self, step_run: "StepRunResponse") -> ExecutionStatus:
        """An isolated step's status, from ZenML's record and its container."""
        from orchestrator.running.isolated_steps import isolated_step_status

        return isolated_step_status(step_run)

    def wait_for_isolated_step(self, step_run: "StepRunResponse") -> ExecutionStatus:
        """Wait for an isolated step to end, looking twice a second."""
        from orchestrator.running.isolated_steps import wait_for_isolated_step

        return wait_for_isolated_step(step_run)

    def stop_isolated_step(self, step_run: "StepRunResponse") -> None:
        """Stop an isolated step (ZenML's FAIL_FAST): SIGTERM, SIGKILL after the grace."""
        from orchestrator.running.isolated_steps import stop_isolated_step

        stop_isolated_step(step_run, self.get_settings(step_run).stop_grace_seconds)

    def cleanup_isolated_step(self, step_run: "StepRunResponse") -> None:
        """Remove a finished isolated step's container once it has exited."""
        from orchestrator.running.isolated_steps import cleanup_isolated_step

        cleanup_isolated_step(step_run, self.get_settings(step_run).keep_containers)

    def fetch_status(
        self, run: "PipelineRunResponse", include_steps: bool = False
    ) -> Tuple[Optional[ExecutionStatus], Optional[Dict[str, ExecutionStatus]]]:
        """The run's status and its steps', from its containers and ZenML's records."""
        from orchestrator.status.fetch import fetch_status

        return fetch_status(run, include_steps=include_steps)

    def _stop_run(self, run: "PipelineRunResponse", graceful: bool = False) -> None:
        """Stop the run's containers: SIGTERM then SIGKILL, or SIGKILL at once.

        The process that orchestrates the run (the client, or a detached
        process) notices its containers ending, sees the run marked as
        stopping and records the steps as stopped; if that process is gone,
        the run is ended here. The grace is the run's own setting (a
        pipeline's `stop_grace_seconds` wins over the component's).
        """
        if run.snapshot is not None and run.snapshot.is_dynamic:
            from orchestrator.running.dynamic_stops import stop_dynamic_run

            stop_dynamic_run(run, graceful=graceful,
                             grace_seconds=self.get_settings(run).stop_grace_seconds)
            return
        from orchestrator.running.reporting import stop_run_containers

        stop_run_containers(run, graceful=graceful,
                            grace_seconds=self.get_settings(run).stop_grace_seconds)


class MyDockerOrchestratorFlavor(BaseOrchestratorFlavor):
    """The `my_docker` flavor: each step in its own local Docker container."""

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
        return MyDockerOrchestratorConfig

    @property
    def implementation_class(self) -> Type[MyDockerOrchestrator]:
        return MyDockerOrchestrator
