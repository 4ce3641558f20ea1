"""What a run asks for, resolved once by the flavor: plain data handed down.

ZenML gives a flavor's `submit_pipeline` a snapshot, a stack, environments
and a placeholder run, and answers questions about them only through the
orchestrator (`get_settings`, `get_image`). The flavor asks those questions
once, here, and hands the answers down as a `RunRequest`, so that nothing
below the flavor (planning, the runners, detached runs, dynamic runs, Swarm)
needs the flavor's classes, not even to name them in a type.

`RunRequest.resolve` takes any ZenML containerized orchestrator; `my_docker`
and `my_swarm` both call it (their settings classes differ, the questions do
not). A detached orchestration process rebuilds its request the same way
from the stack it loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping, Optional

if TYPE_CHECKING:
    from zenml.config.step_run_info import StepRunInfo
    from zenml.models import PipelineRunResponse, PipelineSnapshotResponse
    from zenml.orchestrators import ContainerizedOrchestrator
    from zenml.stack import Stack


@dataclass(frozen=True)
class RunRequest:
    """One pipeline run, as the flavor resolved it.

    Attributes:
        snapshot: ZenML's compiled pipeline (its steps and their configuration).
        stack: the stack the run uses.
        placeholder_run: ZenML's record of the run (None: a schedule, for instance).
        settings: the orchestrator's settings of the whole run.
        step_settings: per step, the orchestrator's settings (the run's,
            overridden by the step's own).
        step_images: per step, the image ZenML built for it (static pipelines;
            empty for a dynamic pipeline, whose steps are compiled as they run).
        environment: ZenML's environment for the orchestration.
        step_environments: per step, ZenML's environment for its container;
            None for a dynamic pipeline.
    """

    snapshot: "PipelineSnapshotResponse"
    stack: "Stack"
    placeholder_run: Optional["PipelineRunResponse"]
    settings: Any
    step_settings: Mapping[str, Any]
    step_images: Mapping[str, str]
    environment: Mapping[str, str]
    step_environments: Optional[Mapping[str, Mapping[str, str]]]

    @property
    def is_dynamic(self) -> bool:
        return self.step_environments is None

    @classmethod
    def resolve(
        cls,
        orchestrator: "ContainerizedOrchestrator",
        snapshot: "PipelineSnapshotResponse",
        stack: "Stack",
        *,
        environment: Mapping[str, str],
        step_environments: Optional[Mapping[str, Mapping[str, str]]],
        placeholder_run: Optional["PipelineRunResponse"],
    ) -> "RunRequest":
        """Ask `orchestrator` everything the run needs about `snapshot`, once."""
        steps = snapshot.step_configurations
        images = {} if snapshot.is_dynamic else {
            name: orchestrator.get_image(snapshot=snapshot, step_name=name) for name in steps}
        return cls(
            snapshot=snapshot,
            stack=stack,
            placeholder_run=placeholder_run,
            settings=orchestrator.get_settings(snapshot),
            step_settings=MappingProxyType(
                {name: orchestrator.get_settings(step) for name, step in steps.items()}),
            step_images=MappingProxyType(images),
            environment=MappingProxyType(dict(environment)),
            step_environments=None if step_environments is None else MappingProxyType(
                {name: dict(env) for name, env in step_environments.items()}),
        )


@dataclass(frozen=True)
class IsolatedStepRequest:
    """One isolated step of a dynamic pipeline, as the flavor resolved it.

    Attributes:
        step_run_info: ZenML's description of the step run (it exists already).
        settings: the orchestrator's settings of the step.
        environment: ZenML's environment for the step's container.
    """

    step_run_info: "StepRunInfo"
    settings: Any
    environment: Mapping[str, str]

    @classmethod
    def resolve(cls, orchestrator: "ContainerizedOrchestrator", step_run_info: "StepRunInfo",
                environment: Mapping[str, str]) -> "IsolatedStepRequest":
        return cls(step_run_info=step_run_info,
                   settings=orchestrator.get_settings(step_run_info),
                   environment=MappingProxyType(dict(environment)))
