# ruff: noqa: F821, F401  (a template: the pieces, put in at the marked lines, use these names)
"""my_orchestrator: the orchestrator you build in the tutorial (stage 2 of 6: notebook 2).

Every step runs in this Python process, one after the other, in the order
your `run_order` gives. A failure skips the steps that need the failed one
and lets the others go on (CONTINUE_ON_FAILURE, ZenML's default execution
mode and the one this stage supports).

The functions between the two rulers, and the methods under a banner inside
the classes, are yours (or the reference solution where you have not written
one yet: the banner above each says which); the rest is the scaffolding the
notebooks give you.
"""

import os
from typing import Dict, List, Type
from uuid import uuid4

from zenml.config.base_settings import BaseSettings
from zenml.enums import ExecutionMode, ExecutionStatus
from zenml.logger import get_logger
from zenml.orchestrators import (
    BaseOrchestrator,
    BaseOrchestratorConfig,
    BaseOrchestratorFlavor,
)
from zenml.utils.env_utils import temporary_environment

logger = get_logger(__name__)  # ZenML's log: shown in order with the steps' lines
RUN_ID_VARIABLE = "MY_ORCHESTRATOR_RUN_ID"  # where each step finds the run's id

# ============================ your pieces ============================

# <<piece:run_order>>

# ============================ scaffolding ============================


class MyOrchestratorSettings(BaseSettings):
    """What a pipeline (or a step) may set under ``settings={"orchestrator": {...}}``."""

    announce: bool = True  # log a line before each step


class MyOrchestratorConfig(BaseOrchestratorConfig, MyOrchestratorSettings):
    """A registered component's options; they are the settings' defaults."""

    @property
    def is_local(self) -> bool:
        return True  # runs on this machine

    @property
    def is_synchronous(self) -> bool:
        return True  # the pipeline call returns when the run is over


class MyOrchestrator(BaseOrchestrator):
    """Runs every step in this process, one after the other."""

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
        settings = self.get_settings(snapshot)
        steps = snapshot.step_configurations
        upstreams: Dict[str, List[str]] = {
            name: list(step.spec.upstream_steps) for name, step in steps.items()}
        run_id = str(uuid4())  # one id for the whole run, in every step's environment
        failed, skipped = [], set()
        for number, name in enumerate(run_order(upstreams), start=1):
            if skipped & set(upstreams[name]) or set(failed) & set(upstreams[name]):
                skipped.add(name)
                logger.info("my_orchestrator: skipping %s: it needs a step that failed", name)
                continue
            if settings.announce:
                logger.info("my_orchestrator: step %d/%d: %s", number, len(steps), name)
            try:
                # Each step gets the environment ZenML prepared for it.
                with temporary_environment({**step_environments[name],
                                            RUN_ID_VARIABLE: run_id}):
                    self.run_step(steps[name])  # raises if the step fails
            except Exception as error:  # noqa: BLE001 - CONTINUE_ON_FAILURE
                logger.error("my_orchestrator: step %s failed: %s", name, error)
                failed.append(name)
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


class MyOrchestratorFlavor(BaseOrchestratorFlavor):
    """The flavor: a name, and where the config and implementation are."""

    @property
    def name(self) -> str:
        return "my_orchestrator"

    @property
    def config_class(self) -> Type[BaseOrchestratorConfig]:
        return MyOrchestratorConfig

    @property
    def implementation_class(self) -> Type[BaseOrchestrator]:
        return MyOrchestrator
