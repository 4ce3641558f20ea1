"""What the runner executes: a typed, inspectable run plan (pure, no Docker, no ZenML).

`planning.plan_run` reads ZenML's snapshot and the engine and builds a
`RunPlan`; the runner executes it. Keeping the plan a plain value means a
unit test can build one by hand, inspect every step's container, and run it
without ZenML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional, Tuple

from orchestrator.running.container_spec import ContainerSpec, build_spec, container_name
from orchestrator.running.scheduler import ExecutionMode, RetryPolicy


@dataclass(frozen=True)
class StepTemplate:
    """One step's container, as far as it is the same for every attempt.

    Attributes:
        image: the image the step runs in.
        arguments: the entrypoint's arguments (ZenML's step entrypoint options).
        upstream: names of the steps that must complete first.
        retry: how often and how late a failed attempt is retried.
        user_environment: the step's variables from ZenML and the user, lowest
            precedence first already merged (see `container_spec.merge_environment`).
        default_environment: variables set only if nobody else sets them.
        image_environment: the image's own ENV (its PYTHONPATH is kept).
        run_args: the user's extra docker-py arguments (already validated).
        limits: resource limits from ZenML's `ResourceSettings`, as docker-py arguments.
        tmpfs: container path -> tmpfs options (a writable /app for any uid).
        timeout_seconds: most seconds one attempt may run (None: no limit).
    """

    image: str
    arguments: Tuple[str, ...]
    upstream: Tuple[str, ...] = ()
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    user_environment: Mapping[str, str] = field(default_factory=dict)
    default_environment: Mapping[str, str] = field(default_factory=dict)
    image_environment: Mapping[str, str] = field(default_factory=dict)
    run_args: Mapping[str, object] = field(default_factory=dict)
    limits: Mapping[str, object] = field(default_factory=dict)
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: Optional[float] = None


@dataclass(frozen=True)
class RunPlan:
    """A whole run: its steps (in pipeline order), what they share, and the policy.

    Attributes:
        steps: step name -> its template, in the order the pipeline declares them.
        entrypoint: the command every step container runs.
        labels: the labels every container of the run carries.
        environment: what the orchestrator itself sets in every container.
        mounts: host path -> docker-py volume binding, for every container.
        user: "uid:gid" the containers run as (None: the image's user).
        run_name: the ZenML run's name, for readable container names.
        mode: what a step's final failure does to the others.
        max_parallelism: most containers running at once.
        grace_seconds: SIGTERM-to-SIGKILL grace when stopping containers.
        keep_containers: keep exited containers (for debugging).
        orchestrator_run_id: this run's id in our labels and container names.
        log_dir: where each attempt's full output is written (None: nowhere).
        gate_dir: the host folder of the gates that containers started early
            wait at (see `gates`); None: no container starts early.
        done_marker: what a step container prints once its step succeeded
            (see `step_entrypoint`); None: success is only polled from ZenML.
    """

    steps: Mapping[str, StepTemplate]
    entrypoint: Tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)
    mounts: Mapping[str, Dict[str, str]] = field(default_factory=dict)
    user: Optional[str] = None
    run_name: str = "run"
    mode: ExecutionMode = ExecutionMode.CONTINUE_ON_FAILURE
    max_parallelism: int = 4
    grace_seconds: int = 10
    keep_containers: bool = False
    orchestrator_run_id: str = ""
    log_dir: Optional[Path] = None
    gate_dir: Optional[str] = None
    done_marker: Optional[str] = None

    @property
    def upstreams(self) -> Dict[str, Tuple[str, ...]]:
        """Step name -> its upstream steps, for the scheduler."""
        return {name: step.upstream for name, step in self.steps.items()}

    @property
    def retries(self) -> Dict[str, RetryPolicy]:
        """Step name -> its retry policy, for the scheduler."""
        return {name: step.retry for name, step in self.steps.items()}

    def spec_for(self, step_name: str, attempt: int,
                 warn: Optional[Callable[[str], None]] = None) -> ContainerSpec:
        """The container of one attempt of one step.

        Raises:
            KeyError: `step_name` is not a step of this plan.
            InvalidSettingsError: the step's run_args are invalid.
        """
        step = self.steps[step_name]
        return build_spec(
            image=step.image,
            entrypoint=list(self.entrypoint),
            arguments=list(step.arguments),
            step_name=step_name,
            attempt=attempt,
            labels=self.labels,
            environment=self.environment,
            user_environment=step.user_environment,
            default_environment=step.default_environment,
            image_environment=step.image_environment,
            tmpfs=step.tmpfs,
            mounts=self.mounts,
            user=self.user,
            run_args=step.run_args,
            limits=step.limits,
            name=container_name(self.run_name, step_name, attempt, self.orchestrator_run_id),
            warn=warn,
        )
