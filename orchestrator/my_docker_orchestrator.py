"""The `my_docker` flavor: ZenML's orchestrator interface, glued to our runner.

ZenML asks an orchestrator flavor for three things: a flavor (its name and
classes), a config/settings model (what users may set), and an orchestrator
whose `submit_pipeline` runs a compiled pipeline. This module is that thin
glue; the work happens in `runner.py` (DAG + containers), `container_spec.py`
(settings -> `docker create` arguments) and `zenml_bridge.py` (statuses).

Registered with the reference commands:

    zenml orchestrator flavor register orchestrator.my_docker_orchestrator.MyDockerOrchestratorFlavor
    zenml orchestrator register my_docker_orchestrator -f my_docker
    zenml stack register my_stack -o my_docker_orchestrator -a default
    zenml stack set my_stack
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Type, cast
from uuid import uuid4

from pydantic import Field

from zenml.config.base_settings import BaseSettings
from zenml.enums import ExecutionMode, ExecutionStatus
from zenml.logger import get_logger
from zenml.stack import StackValidator
from zenml.utils.pipeline_docker_image_builder import DEFAULT_DOCKER_PARENT_IMAGE
from zenml.orchestrators import (
    BaseOrchestratorConfig,
    BaseOrchestratorFlavor,
    ContainerizedOrchestrator,
    SubmissionResult,
)

if TYPE_CHECKING:
    from zenml.config import DockerSettings
    from zenml.config.build_configuration import BuildConfiguration
    from zenml.models import (
        PipelineRunResponse,
        PipelineSnapshotBase,
        PipelineSnapshotResponse,
    )
    from zenml.stack import Stack

logger = get_logger(__name__)

FLAVOR_NAME = "my_docker"
ENV_ORCHESTRATOR_RUN_ID = "MY_DOCKER_ORCHESTRATOR_RUN_ID"


def default_parallelism() -> int:
    """Four containers per core: a step container spends most of its life
    waiting (on I/O, on the store, on work like `time.sleep`), and measured
    fan-outs on 2 cores finished sooner with 8 slots than with 4."""
    return 4 * (os.cpu_count() or 1)


class MyDockerOrchestratorSettings(BaseSettings):
    """Settings a pipeline or a step may set for the `my_docker` orchestrator."""

    run_args: Dict[str, Any] = Field(
        default_factory=dict,
        description="Extra arguments for docker-py's `containers.create` "
        "(the Python twin of `docker run` options), for example "
        "{'mem_limit': '1g', 'environment': {'X': '1'}}. Keys the orchestrator "
        "owns (command, entrypoint, name, detach) and host-control options "
        "(privileged, the Docker socket) are refused with a clear error.",
    )
    max_parallelism: Optional[int] = Field(
        default=None,
        ge=1,
        description="How many step containers may run at once. None means four "
        "per CPU core; 1 runs steps one at a time like ZenML's local_docker.",
    )
    keep_containers: bool = Field(
        default=False,
        description="Keep exited step containers for debugging instead of "
        "removing them once their output was collected.",
    )
    stop_grace_seconds: int = Field(
        default=10,
        ge=0,
        description="Seconds a container gets after SIGTERM before SIGKILL when "
        "a run is stopped gracefully or fails fast.",
    )


class MyDockerOrchestratorConfig(BaseOrchestratorConfig, MyDockerOrchestratorSettings):
    """Configuration of a registered `my_docker` orchestrator."""

    @property
    def is_local(self) -> bool:
        return True

    @property
    def is_synchronous(self) -> bool:
        return True

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

        def _engine_answers(stack: "Stack") -> Tuple[bool, str]:
            from orchestrator.engine import connect
            from orchestrator.errors import DockerEngineUnavailableError

            try:
                connect()
            except DockerEngineUnavailableError as error:
                return False, str(error)
            return True, ""

        return StackValidator(custom_validation_function=_engine_answers)

    def get_docker_builds(self, snapshot: "PipelineSnapshotBase") -> List["BuildConfiguration"]:
        """ZenML's builds, checked, and set to leave no container behind.

        A missing parent image would otherwise surface as a registry error
        deep inside `docker build`. ZenML builds with docker-py's default
        `rm=False`, which leaves one stopped container per build step on the
        engine; we ask for every intermediate container to be removed, even
        when the build fails.

        Raises:
            ImageNotFoundError: a parent image is neither local nor pullable.
        """
        from orchestrator.containers import require_parent_image
        from orchestrator.engine import connect

        builds = [
            build.model_copy(update={"settings": removing_build_containers(build.settings)})
            for build in super().get_docker_builds(snapshot)
        ]
        client = None
        for build in builds:
            settings = build.settings
            if settings.dockerfile or settings.skip_build:
                continue
            client = client or connect()
            require_parent_image(client, settings.parent_image or DEFAULT_DOCKER_PARENT_IMAGE)
        return builds

    def get_orchestrator_run_id(self) -> str:
        """The run id, read inside a step container from its environment."""
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
        """Run the pipeline now, in this process, one container per step.

        We run synchronously inside `submit_pipeline` (rather than returning a
        `wait_for_completion` callback) so that Ctrl-C reaches our runner
        directly: it stops and removes the run's containers before the
        KeyboardInterrupt goes on to the user.
        """
        from orchestrator.engine import connect
        from orchestrator.error_display import show_our_errors_briefly
        from orchestrator.errors import MyDockerError
        from orchestrator.planning import plan_run, warn_if_store_in_source_root
        from orchestrator.runner import DagRunner
        from orchestrator.zenml_bridge import ZenmlRunHooks, record_failed_run

        if snapshot.schedule:
            logger.warning(
                "The my_docker orchestrator does not support schedules: the "
                "schedule is ignored and the pipeline runs once, now. Use cron "
                "or another scheduler to call it repeatedly."
            )
        show_our_errors_briefly()
        warn_if_store_in_source_root(snapshot)
        stack.check_local_paths()
        orchestrator_run_id = str(uuid4())
        try:
            client = connect()
            plan = plan_run(
                orchestrator=self,
                client=client,
                snapshot=snapshot,
                step_environments=step_environments,
                orchestrator_run_id=orchestrator_run_id,
                pipeline_run=placeholder_run,
            )
        except MyDockerError as error:
            # Nothing ran: the run failed, and the record says why.
            record_failed_run(placeholder_run, str(error))
            raise
        hooks = ZenmlRunHooks(logger=logger, pipeline_run=placeholder_run)
        logger.info(
            "Running %d step(s) in Docker containers, up to %d at a time. "
            "Each step's full output: %s",
            len(plan.upstreams),
            plan.max_parallelism,
            plan.log_dir,
        )
        DagRunner(client, plan, hooks).run()
        return None

    def fetch_status(
        self, run: "PipelineRunResponse", include_steps: bool = False
    ) -> Tuple[Optional[ExecutionStatus], Optional[Dict[str, ExecutionStatus]]]:
        """Report what the run's containers are doing right now."""
        from orchestrator.zenml_bridge import status_from_containers

        return status_from_containers(run, include_steps=include_steps)

    def _stop_run(self, run: "PipelineRunResponse", graceful: bool = False) -> None:
        """Stop the run's containers: SIGTERM then SIGKILL, or SIGKILL at once.

        The client that started the run notices its containers ending, sees
        the run marked as stopping and records the steps as stopped.
        """
        from orchestrator.zenml_bridge import stop_run_containers

        stop_run_containers(run, graceful=graceful,
                            grace_seconds=self.config.stop_grace_seconds)


def removing_build_containers(settings: "DockerSettings") -> "DockerSettings":
    """`settings` with docker-py's `rm` and `forcerm` build options turned on."""
    from zenml.config.docker_settings import DockerBuildConfig, DockerBuildOptions

    def with_removal(config: Optional[DockerBuildConfig]) -> DockerBuildConfig:
        config = config or DockerBuildConfig()
        options = config.build_options.model_dump() if config.build_options else {}
        options.update(rm=True, forcerm=True)
        return config.model_copy(
            update={"build_options": DockerBuildOptions.model_validate(options)})

    update = {"build_config": with_removal(settings.build_config)}
    if settings.dockerfile:
        update["parent_image_build_config"] = with_removal(settings.parent_image_build_config)
    return settings.model_copy(update=update)


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
