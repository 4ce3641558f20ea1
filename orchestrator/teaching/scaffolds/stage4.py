# ruff: noqa: F821, F401  (a template: the pieces, put in at the marked lines, use these names)
"""my_orchestrator: the orchestrator you build in the tutorial (stage 4 of 6: notebook 4).

Every step runs in a Docker container of its own, started as soon as its
upstream steps completed, up to ``max_parallelism`` at once: one thread per
container waits for its end, one loop decides what starts next. A failure
skips the steps that need the failed one and lets the others go on
(CONTINUE_ON_FAILURE, the one execution mode this stage supports).

The functions between the two rulers, and the classes and methods under a
banner, are yours (or the reference solution where you have not written
one yet: the banner above each says which); the rest is the scaffolding the
notebooks give you. ZenML imports this module
in every step container to load the stack, so at module level it imports
only ZenML; the rest is imported inside the functions that run on your
machine.
"""

import os
import queue
import socket
import threading
from dataclasses import dataclass
from typing import Any, Dict, List, Type
from uuid import UUID, uuid4

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


@dataclass(frozen=True)
class RunInfo:
    """Who a run is: what the labels of its containers say."""

    pipeline_run_id: str  # ZenML's id of the run
    orchestrator_run_id: str  # ours, the same in every step container
    pipeline_name: str
    run_name: str


# ============================ your pieces ============================

# <<piece:run_order>>

# <<piece:container_kwargs>>

# <<piece:follow_container>>

# <<piece:ready_steps>>

# ============================ scaffolding ============================

# Names of the package's label schema (orchestrator/running/labels.py), copied:
# with them the package's live panel finds your containers at once (the client's
# host and pid say this process runs the loop). Notebook 6 has you write them.
MANAGED_BY_LABEL = "io.my-docker.managed-by"
MANAGED_BY_VALUE = "my_docker"
PIPELINE_RUN_ID_LABEL = "io.my-docker.pipeline-run-id"
STEP_LABEL = "io.my-docker.step"
ATTEMPT_LABEL = "io.my-docker.attempt"
CLIENT_HOST_LABEL = "io.my-docker.client-host"
CLIENT_PID_LABEL = "io.my-docker.client-pid"


def container_labels(run: RunInfo, step_name: str, attempt: int) -> Dict[str, str]:
    """Labels that say which run and step a container belongs to."""
    return {MANAGED_BY_LABEL: MANAGED_BY_VALUE, PIPELINE_RUN_ID_LABEL: run.pipeline_run_id,
            STEP_LABEL: step_name, ATTEMPT_LABEL: str(attempt),
            CLIENT_HOST_LABEL: socket.gethostname(), CLIENT_PID_LABEL: str(os.getpid())}


def run_label_filter(pipeline_run_id: str) -> str:
    """The Docker label filter that finds one run's containers."""
    return f"{PIPELINE_RUN_ID_LABEL}={pipeline_run_id}"


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


# <<piece:MyOrchestratorConfig@4>>


@dataclass
class StepPlan:
    """One step: its container's arguments, what it waits for, its retry policy (notebook 5)."""

    kwargs: Dict[str, Any]
    upstream: List[str]
    retry: Any  # ZenML's StepRetryConfig or None


class MyOrchestrator(ContainerizedOrchestrator):
    """Runs every step in its own container, along the graph, in parallel."""

    @property
    def settings_class(self) -> Type[BaseSettings]:
        return MyOrchestratorSettings

    @property
    def supported_execution_modes(self) -> List[ExecutionMode]:
        # What this stage really does when a step fails (see Runner._on_end).
        return [ExecutionMode.CONTINUE_ON_FAILURE]

    # <<piece:get_orchestrator_run_id>>

    def submit_pipeline(self, snapshot, stack, base_environment, step_environments,
                        placeholder_run=None):
        import docker
        from zenml.config.global_config import GlobalConfiguration
        from zenml.entrypoints import StepEntrypointConfiguration

        settings = self.get_settings(snapshot)
        stores_path = GlobalConfiguration().local_stores_path
        run = RunInfo(
            pipeline_run_id=str(placeholder_run.id) if placeholder_run else "",
            orchestrator_run_id=str(uuid4()),
            pipeline_name=snapshot.pipeline_configuration.name,
            run_name=placeholder_run.name if placeholder_run else "run",
        )
        plans = {}
        for name, step in snapshot.step_configurations.items():
            kwargs = container_kwargs(
                image=self.get_image(snapshot=snapshot, step_name=name),
                entrypoint=StepEntrypointConfiguration.get_entrypoint_command(),
                arguments=StepEntrypointConfiguration.get_entrypoint_arguments(
                    step_name=name, snapshot_id=snapshot.id),
                environment=step_environments[name],
                stores_path=stores_path,
                run_id=run.orchestrator_run_id,
            )
            kwargs["environment"].update(PLAIN_LOGS)
            plans[name] = StepPlan(kwargs, list(step.spec.upstream_steps), None)
        Runner(docker.from_env(), plans, run, settings.max_parallelism).run()
        return None  # nothing to wait for: the run is over


class Runner:
    """Runs one pipeline's step containers.

    One thread per container follows its output and, when the container
    ends, puts ``(step, attempt, exit code)`` on a queue. The loop in `run`
    is the only place that decides: it starts what `ready_steps` allows,
    takes each end off the queue in turn and updates ``states`` (pending,
    running, completed, failed, skipped). The methods marked as yours are
    the pieces you write in notebook 4; the ones that say "notebook 5" do
    little yet: notebook 5 gives them their real work.
    """

    def __init__(self, client, plans: Dict[str, StepPlan], run: RunInfo,
                 max_parallelism: int) -> None:
        self.client, self.plans, self.run_info = client, plans, run
        self.max_parallelism = max_parallelism
        self.upstreams = {name: plan.upstream for name, plan in plans.items()}
        self.states = dict.fromkeys(run_order(self.upstreams), "pending")
        self.attempts = dict.fromkeys(plans, 0)
        self.retry_at: Dict[str, float] = {}  # notebook 5: steps waiting for a retry
        self.containers: Dict[str, Any] = {}
        self.ended: "queue.Queue" = queue.Queue()
        self.stop_requested = False  # notebook 5

    # <<piece:run>>

    def waiting(self) -> bool:
        """Whether a step still waits to start (for the first time, or again)."""
        return any(state in ("pending", "retrying") for state in self.states.values())

    def raise_if_stuck(self, started: List[str]) -> None:
        """Nothing runs, nothing waits for a retry, nothing started: the loop would wait forever."""
        if not started and not self.containers and not self.retry_at \
                and "pending" in self.states.values():
            raise RuntimeError("nothing runs, and ready_steps starts none of the "
                               f"pending steps: {self.states}")

    def remove_containers(self) -> None:
        """Remove every container of this run, whatever state it is in."""
        for container in self.client.containers.list(
                all=True, filters={"label": run_label_filter(self.run_info.pipeline_run_id)}):
            container.remove(force=True)

    def finish_record(self) -> None:
        """ZenML's record: a failed step recorded only itself; the run is marked failed."""
        if "failed" in self.states.values():
            _record_failed_run(self.run_info.pipeline_run_id)

    # <<piece:start_step>>

    # <<piece:follow_step>>

    def start_due_retries(self) -> None:
        """Notebook 5: start the retries whose delay is over. No retries yet."""

    def on_end(self, step: str, attempt: int, exit_code: int) -> None:
        """A container ended: completed, or failed and what needs it skipped (notebook 5
        makes this the failure policy, with retries)."""
        self.containers.pop(step, None)  # follow_step's follow_container removed it
        if exit_code == 0:
            self.states[step] = "completed"
            return
        logger.error("[%s] FAILED (exit code %d)", step, exit_code)
        self.states[step] = "failed"
        for other in downstream_of(step, self.upstreams):  # CONTINUE_ON_FAILURE
            if self.states[other] == "pending":
                self.states[other] = "skipped"
                logger.info("[%s] skipped: it needs %s", other, step)

    def check_stop_request(self, at_most_every: float = 2.0) -> bool:
        """Notebook 5: whether someone asked ZenML to stop the run. Not yet: False."""
        return False

    def on_interrupt(self) -> None:
        """Notebook 5: Ctrl-C. For now only `run`'s cleanup removes the containers."""
        logger.info("my_orchestrator: interrupted")


def _record_failed_run(pipeline_run_id: str) -> None:
    """Mark the run failed in ZenML's record (the failed step recorded only itself)."""
    from zenml.client import Client
    from zenml.orchestrators import publish_utils

    if pipeline_run_id and not Client().get_pipeline_run(pipeline_run_id).status.is_finished:
        publish_utils.publish_pipeline_run_status_update(  # ZenML's store wants a UUID
            pipeline_run_id=UUID(pipeline_run_id), status=ExecutionStatus.FAILED)


# <<piece:MyOrchestratorFlavor>>
