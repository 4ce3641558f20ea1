# ruff: noqa: F821, F401  (a template: the pieces, put in at the marked lines, use these names)
"""my_orchestrator: the orchestrator you build in the tutorial (stage 2 of 6: notebook 2).

Every step runs in this Python process, one after the other, in the order
your `run_order` gives. A failure skips the steps that need the failed one
and lets the others go on (CONTINUE_ON_FAILURE, ZenML's default execution
mode and the one this stage supports).

The functions between the two rulers, and the classes and methods under a
banner, are yours (or the reference solution where you have not written
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


# <<piece:MyOrchestratorConfig>>


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

    # <<piece:submit_pipeline>>

    def _record_failed_run(self, placeholder_run) -> None:
        """Mark the run failed in ZenML's record (the failed step recorded only itself)."""
        from zenml.client import Client
        from zenml.orchestrators import publish_utils

        if placeholder_run and not Client().get_pipeline_run(
                placeholder_run.id).status.is_finished:
            publish_utils.publish_pipeline_run_status_update(
                pipeline_run_id=placeholder_run.id, status=ExecutionStatus.FAILED)


# <<piece:MyOrchestratorFlavor>>
