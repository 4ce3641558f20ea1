# ruff: noqa: F821, F401  (a template: the pieces, put in at the marked lines, use these names)
"""my_orchestrator: the orchestrator you build in the tutorial (stage 3 of 6: notebook 3).

Every step runs in a Docker container of its own, one after the other, in
the order your `run_order` gives; each container's output is logged while
it runs, and the container is removed when it ends (also when the run is
interrupted). A failure skips the steps that need the failed one and lets
the others go on (CONTINUE_ON_FAILURE, the one execution mode this stage
supports).

The functions between the two rulers, and the classes and methods under a
banner, are yours (or the reference solution where you have not written
one yet: the banner above each says which); the rest is the scaffolding the
notebooks give you. ZenML imports this module
in every step container to load the stack, so at module level it imports
only ZenML; the rest is imported inside the functions that run on your
machine.
"""

import os
from typing import Dict, List, Type
from uuid import uuid4

from zenml.config.base_settings import BaseSettings
from zenml.enums import ExecutionMode, ExecutionStatus
from zenml.logger import get_logger
from zenml.orchestrators import (
    BaseOrchestratorConfig,
    BaseOrchestratorFlavor,
    ContainerizedOrchestrator,
)

logger = get_logger(__name__)
RUN_ID_VARIABLE = "MY_ORCHESTRATOR_RUN_ID"
# ZenML's log lines without colours and tracebacks as plain lines: readable
# when the step containers' output is printed here.
PLAIN_LOGS = {"ZENML_LOGGING_COLORS_DISABLED": "true", "ZENML_ENABLE_RICH_TRACEBACK": "false"}

# ============================ your pieces ============================

# <<piece:run_order>>

# <<piece:container_kwargs>>

# <<piece:follow_container>>

# ============================ scaffolding ============================


def downstream_of(failed: str, upstreams: Dict[str, List[str]]) -> set:
    """Every step that needs `failed`, directly or through other steps."""
    found, changed = set(), True
    while changed:
        changed = False
        for step, ups in upstreams.items():
            if step not in found and ({failed} | found) & set(ups):
                found.add(step)
                changed = True
    return found


# <<piece:MyOrchestratorConfig>>


class MyOrchestrator(ContainerizedOrchestrator):
    """One container per step, one step after the other.

    A ContainerizedOrchestrator: before a run ZenML builds (or, with
    ``DockerSettings(skip_build=True)``, picks) the image its steps run in.
    """

    @property
    def settings_class(self) -> Type[BaseSettings]:
        return MyOrchestratorSettings

    @property
    def supported_execution_modes(self) -> List[ExecutionMode]:
        # What this stage really does when a step fails (see submit_pipeline).
        return [ExecutionMode.CONTINUE_ON_FAILURE]

    # <<piece:get_orchestrator_run_id>>

    def submit_pipeline(self, snapshot, stack, base_environment, step_environments,
                        placeholder_run=None):
        import docker
        from zenml.config.global_config import GlobalConfiguration
        from zenml.entrypoints import StepEntrypointConfiguration

        client = docker.from_env()
        stores_path = GlobalConfiguration().local_stores_path
        run_id = str(uuid4())
        steps = snapshot.step_configurations
        upstreams = {name: list(step.spec.upstream_steps) for name, step in steps.items()}
        failed, skipped = [], set()
        for number, name in enumerate(run_order(upstreams), start=1):
            if skipped & set(upstreams[name]) or set(failed) & set(upstreams[name]):
                skipped.add(name)
                logger.info("[%s] skipped: it needs a step that failed", name)
                continue
            kwargs = container_kwargs(
                image=self.get_image(snapshot=snapshot, step_name=name),
                entrypoint=StepEntrypointConfiguration.get_entrypoint_command(),
                arguments=StepEntrypointConfiguration.get_entrypoint_arguments(
                    step_name=name, snapshot_id=snapshot.id),
                environment=step_environments[name],
                stores_path=stores_path,
                run_id=run_id,
            )
            kwargs["environment"].update(PLAIN_LOGS)
            container = client.containers.run(**kwargs)
            if self.get_settings(steps[name]).announce:  # a step may set its own
                logger.info("my_orchestrator: step %d/%d: %s in container %s",
                            number, len(steps), name, container.short_id)
            exit_code = follow_container(  # each line as it comes; then removed
                container, lambda line, step=name: logger.info("[%s] %s", step, line))
            if exit_code != 0:
                logger.error("[%s] FAILED (exit code %d)", name, exit_code)
                failed.append(name)  # CONTINUE_ON_FAILURE: go on with the others
        if failed:
            _record_failed_run(placeholder_run)
            raise RuntimeError(f"step(s) failed: {', '.join(failed)}")
        return None  # nothing to wait for: the run is over


def _record_failed_run(placeholder_run) -> None:
    """Mark the run failed in ZenML's record (the failed step recorded only itself)."""
    from zenml.client import Client
    from zenml.orchestrators import publish_utils

    if placeholder_run and not Client().get_pipeline_run(placeholder_run.id).status.is_finished:
        publish_utils.publish_pipeline_run_status_update(
            pipeline_run_id=placeholder_run.id, status=ExecutionStatus.FAILED)


# <<piece:MyOrchestratorFlavor>>
