# ruff: noqa: F821, F401  (a template: the pieces, put in at the marked lines, use these names)
"""my_orchestrator: the orchestrator you build in the tutorial (stage 5 of 6: notebook 5).

Every step runs in a Docker container of its own, started as soon as its
upstream steps completed, up to ``max_parallelism`` at once. A failure is
handled by the pipeline's execution mode, a failed container is retried in a
new one, ``ResourceSettings`` become container limits, a run can be stopped
from any process (its containers are found by their labels), and Ctrl-C
leaves nothing behind.

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
import time
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

# <<piece:after_failure>>

# <<piece:retry_delay>>

# <<piece:resource_limits>>

# <<piece:stop_containers>>

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
    """Labels that say which run, step and attempt a container belongs to."""
    return {MANAGED_BY_LABEL: MANAGED_BY_VALUE, PIPELINE_RUN_ID_LABEL: run.pipeline_run_id,
            STEP_LABEL: step_name, ATTEMPT_LABEL: str(attempt),
            CLIENT_HOST_LABEL: socket.gethostname(), CLIENT_PID_LABEL: str(os.getpid())}


def run_label_filter(pipeline_run_id: str) -> str:
    """The Docker label filter that finds one run's containers."""
    return f"{PIPELINE_RUN_ID_LABEL}={pipeline_run_id}"


# <<piece:MyOrchestratorConfig@5>>


@dataclass
class StepPlan:
    """One step: its container's arguments, what it waits for, its retry policy."""

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
        return [ExecutionMode.FAIL_FAST, ExecutionMode.STOP_ON_FAILURE,
                ExecutionMode.CONTINUE_ON_FAILURE]

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
            kwargs.update(resource_limits(step.config.resource_settings))
            plans[name] = StepPlan(kwargs, list(step.spec.upstream_steps), step.config.retry)
        Runner(docker.from_env(), plans, run, settings.max_parallelism,
               snapshot.pipeline_configuration.execution_mode,
               settings.stop_grace_seconds).run()
        return None  # nothing to wait for: the run is over

    def _stop_run(self, run, graceful: bool = False) -> None:
        # `zenml pipeline runs stop` (any process): ZenML marked the run
        # STOPPING; stopping its containers lets the runner finish the record.
        import docker

        stop_containers(docker.from_env(), run_label_filter(str(run.id)), graceful,
                        self.config.stop_grace_seconds)


class Runner:
    """Runs one pipeline's step containers.

    One thread per container follows its output and, when the container
    ends, puts ``(step, attempt, exit code)`` on a queue. The loop in `run`
    is the only place that decides: it starts what `ready_steps` allows,
    takes each end off the queue in turn and updates ``states`` (pending,
    running, retrying, stopping, completed, failed, skipped, stopped).
    The methods marked as yours are the pieces you write in notebooks 4 and 5.
    """

    def __init__(self, client, plans: Dict[str, StepPlan], run: RunInfo,
                 max_parallelism: int, mode: ExecutionMode, grace_seconds: int) -> None:
        self.client, self.plans, self.run_info = client, plans, run
        self.max_parallelism, self.mode, self.grace_seconds = max_parallelism, mode, grace_seconds
        self.upstreams = {name: plan.upstream for name, plan in plans.items()}
        self.states = dict.fromkeys(run_order(self.upstreams), "pending")
        self.attempts = dict.fromkeys(plans, 0)
        self.retry_at: Dict[str, float] = {}
        self.containers: Dict[str, Any] = {}
        self.ended: "queue.Queue" = queue.Queue()
        self.stop_requested = False
        self._last_stop_check = 0.0

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

    # <<piece:start_step>>

    # <<piece:follow_step>>

    # <<piece:start_due_retries>>

    # <<piece:on_end>>

    def stop_step(self, step: str) -> None:
        """Stop one running step's container (in a thread: the loop goes on)."""
        container = self.containers.get(step)
        if container is not None and self.states[step] == "running":
            self.states[step] = "stopping"
            threading.Thread(target=_stop_quietly, args=(container, self.grace_seconds),
                             daemon=True).start()

    def stop_asked(self, at_most_every: float) -> bool:
        """Whether ZenML's record says someone asked to stop this run (asked at most so often)."""
        from zenml.client import Client

        if not self.run_info.pipeline_run_id or \
                time.monotonic() - self._last_stop_check < at_most_every:
            return False
        self._last_stop_check = time.monotonic()
        status = Client().get_pipeline_run(self.run_info.pipeline_run_id).status
        return status in (ExecutionStatus.STOPPING, ExecutionStatus.STOPPED)

    def stop_all(self, grace_seconds: int, wait: bool = False) -> None:
        """Stop every container of this run, found by its label (as `_stop_run` does)."""
        stopping = threading.Thread(target=stop_containers, daemon=True, args=(
            self.client, run_label_filter(self.run_info.pipeline_run_id), True, grace_seconds))
        stopping.start()
        if wait:
            stopping.join()

    # <<piece:check_stop_request>>

    # <<piece:on_interrupt>>

    # -- ZenML's record ----------------------------------------------------
    def finish_record(self) -> None:
        """Give every step record a final status, and the run one if it did not succeed.

        A step records its own end from inside its container; a container that
        was killed, stopped or never got that far could not.
        """
        from zenml.client import Client
        from zenml.orchestrators import publish_utils

        if not self.run_info.pipeline_run_id:
            return
        record = Client().get_pipeline_run(self.run_info.pipeline_run_id)
        for name, step_run in record.steps.items():
            if not step_run.status.is_finished:
                if self.states.get(name) == "stopped":
                    publish_utils.publish_stopped_step_run(step_run.id)
                else:
                    publish_utils.publish_failed_step_run(step_run.id)
        states = set(self.states.values())
        if "failed" in states:
            status = ExecutionStatus.FAILED
        elif "stopped" in states:
            status = ExecutionStatus.STOPPING  # ZenML settles it as STOPPED
        else:
            return
        if not Client().get_pipeline_run(self.run_info.pipeline_run_id).status.is_finished:
            publish_utils.publish_pipeline_run_status_update(  # ZenML's store wants a UUID
                pipeline_run_id=UUID(self.run_info.pipeline_run_id), status=status)


def _stop_quietly(container, grace_seconds: int) -> None:
    """SIGTERM, SIGKILL after the grace; nothing if it ended and was removed meanwhile."""
    try:
        container.stop(timeout=grace_seconds)
    except Exception:  # noqa: BLE001 - docker's NotFound: it is gone already
        pass


# <<piece:MyOrchestratorFlavor>>
