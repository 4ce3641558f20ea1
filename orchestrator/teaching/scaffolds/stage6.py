# ruff: noqa: F821  (a template: the pieces are put in at the marked lines)
"""my_orchestrator: the orchestrator you build in the tutorial (stage 6 of 6: notebook 6).

Every step runs in a Docker container of its own, started as soon as its
upstream steps completed, up to ``max_parallelism`` at once. A failure is
handled by the pipeline's execution mode, a failed container is retried in a
new one, ``ResourceSettings`` become container limits, a run can be stopped
from any process, Ctrl-C leaves nothing behind, the containers carry the
package's labels (so its live panel follows your runs) and ``fetch_status``
answers from the containers and ZenML's records.

The functions between the two rulers are yours (or the reference solution
where you have not written one yet: the banner above each says which); the
rest is the scaffolding the notebooks give you. ZenML imports this module
in every step container to load the stack, so at module level it imports
only ZenML; the rest is imported inside the functions that run on your
machine.
"""

import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Type
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

# <<piece:ready_steps>>

# <<piece:after_failure>>

# <<piece:retry_delay>>

# <<piece:resource_limits>>

# <<piece:stop_containers>>

# <<piece:container_labels>>

# <<piece:merge_status>>

# ============================ scaffolding ============================


def run_label_filter(pipeline_run_id: str) -> str:
    """The Docker label filter that finds one run's containers."""
    from orchestrator.running.labels import PIPELINE_RUN_ID_LABEL

    return f"{PIPELINE_RUN_ID_LABEL}={pipeline_run_id}"


class MyOrchestratorSettings(BaseSettings):
    """What a pipeline (or a step) may set under ``settings={"orchestrator": {...}}``."""

    max_parallelism: int = 4  # step containers running at once
    stop_grace_seconds: int = 5  # SIGTERM to SIGKILL when a step is stopped


class MyOrchestratorConfig(BaseOrchestratorConfig, MyOrchestratorSettings):
    """A registered component's options; they are the settings' defaults."""

    @property
    def is_local(self) -> bool:
        return True

    @property
    def is_synchronous(self) -> bool:
        return True  # the pipeline call returns when the run is over

    @property
    def handles_step_retries(self) -> bool:
        return True  # we retry whole containers (ZenML must not retry inside one)


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

    def get_orchestrator_run_id(self) -> str:
        # Asked inside each step container: the id comes in its environment.
        try:
            return os.environ[RUN_ID_VARIABLE]
        except KeyError:
            raise RuntimeError(f"{RUN_ID_VARIABLE} is not set: not in a step container "
                               "of my_orchestrator") from None

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

    def fetch_status(self, run, include_steps: bool = False):
        import docker
        from zenml.client import Client

        from orchestrator.running.labels import client_is_gone, step_of

        record = Client().get_pipeline_run(run.id)
        recorded_steps = {name: step.status for name, step in record.steps.items()}
        found = docker.from_env().containers.list(
            all=True, filters={"label": run_label_filter(str(run.id))})
        containers = {step_of(c.labels): c.status for c in found}
        client_alive = not (found and all(client_is_gone(c.labels) for c in found))
        status, steps = merge_status(record.status, recorded_steps, containers, client_alive)
        return status, (steps if include_steps else None)


class Runner:
    """Runs one pipeline's step containers.

    One thread per container follows its output and, when the container
    ends, puts ``(step, attempt, exit code)`` on a queue. The loop in `run`
    is the only place that decides: it starts what `ready_steps` allows,
    takes each end off the queue in turn and updates ``states`` (pending,
    running, retrying, stopping, completed, failed, skipped, stopped).
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

    def run(self) -> None:
        try:
            while self.containers or any(s in ("pending", "retrying") for s in self.states.values()):
                self._start_what_may_start()
                try:
                    step, attempt, exit_code = self.ended.get(timeout=0.5)
                except queue.Empty:
                    self._check_stop_request()
                    continue
                self._on_end(step, attempt, exit_code)
        except KeyboardInterrupt:
            logger.info("my_orchestrator: interrupted, stopping %d container(s)",
                        len(self.containers))
            stop_containers(self.client, run_label_filter(self.run_info.pipeline_run_id),
                            True, 2)
            self.states.update({s: "stopped" for s, v in self.states.items() if not _final(v)})
            self._finish_record()
            raise
        finally:  # whatever happened: no container of this run stays on the engine
            for container in self.client.containers.list(
                    all=True, filters={"label": run_label_filter(self.run_info.pipeline_run_id)}):
                container.remove(force=True)
        self._finish_record()
        failed = [s for s, v in self.states.items() if v == "failed"]
        if failed:
            raise RuntimeError(f"step(s) failed: {', '.join(failed)}")
        if self.stop_requested:
            raise RuntimeError("the run was stopped")

    # -- starting --------------------------------------------------------
    def _start_what_may_start(self) -> None:
        now = time.monotonic()
        for step, due in list(self.retry_at.items()):
            running = sum(1 for v in self.states.values() if v == "running")
            if due <= now and running < self.max_parallelism:
                del self.retry_at[step]
                self._start(step)
        started = ready_steps(self.upstreams, self.states, self.max_parallelism)
        for step in started:
            self._start(step)
        if not started and not self.containers and not self.retry_at \
                and "pending" in self.states.values():
            raise RuntimeError("nothing runs, and ready_steps starts none of the "
                               f"pending steps: {self.states}")

    def _start(self, step: str) -> None:
        self.attempts[step] += 1
        attempt = self.attempts[step]
        labels = container_labels(self.run_info, step, attempt)
        container = self.client.containers.run(**self.plans[step].kwargs, labels=labels)
        self.containers[step] = container
        self.states[step] = "running"
        logger.info("[%s] started in container %s (attempt %d)", step, container.short_id, attempt)
        threading.Thread(target=self._follow, args=(step, attempt, container), daemon=True).start()

    def _follow(self, step: str, attempt: int, container) -> None:
        """In a thread of its own: the container's lines as they come, then its end."""
        try:
            for line in container.logs(stream=True, follow=True):
                logger.info("[%s] %s", step, line.decode(errors="replace").rstrip())
            exit_code = container.wait()["StatusCode"]
        except Exception as error:  # noqa: BLE001 - removed under our feet
            logger.info("[%s] lost its container: %s", step, error)
            exit_code = -1
        self.ended.put((step, attempt, exit_code))

    # -- reacting ----------------------------------------------------------
    def _on_end(self, step: str, attempt: int, exit_code: int) -> None:
        container = self.containers.pop(step, None)
        if container is not None:
            container.remove(force=True)
        if self.states[step] == "stopping" or (exit_code != 0 and self._check_stop_request(0)):
            self.states[step] = "stopped"
            return
        if exit_code == 0:
            self.states[step] = "completed"
            return
        delay = retry_delay(self.plans[step].retry, attempt)
        if delay is not None:
            logger.info("[%s] attempt %d failed (exit code %d); retrying in %.0f s",
                        step, attempt, exit_code, delay)
            self.states[step] = "retrying"
            self.retry_at[step] = time.monotonic() + delay
            return
        logger.error("[%s] FAILED (exit code %d)", step, exit_code)
        self.states[step] = "failed"
        to_stop, to_skip = after_failure(self.mode, step, self.upstreams, self.states)
        for other in to_skip:
            self.states[other] = "skipped"
            logger.info("[%s] skipped", other)
        for other in to_stop:
            self._stop(other)
        if self.mode != ExecutionMode.CONTINUE_ON_FAILURE:  # no new attempt either
            for other in list(self.retry_at):
                del self.retry_at[other]
                self.states[other] = "stopped"

    def _stop(self, step: str) -> None:
        container = self.containers.get(step)
        if container is not None and self.states[step] == "running":
            self.states[step] = "stopping"
            threading.Thread(target=container.stop, kwargs={"timeout": self.grace_seconds},
                             daemon=True).start()

    def _check_stop_request(self, at_most_every: float = 2.0) -> bool:
        """Whether someone asked ZenML to stop this run; if so, stop everything now."""
        if self.stop_requested:
            return True
        from zenml.client import Client

        if not self.run_info.pipeline_run_id or \
                time.monotonic() - self._last_stop_check < at_most_every:
            return False
        self._last_stop_check = time.monotonic()
        status = Client().get_pipeline_run(self.run_info.pipeline_run_id).status
        if status not in (ExecutionStatus.STOPPING, ExecutionStatus.STOPPED):
            return False
        self.stop_requested = True
        logger.info("my_orchestrator: stop requested")
        for step, state in self.states.items():
            if state in ("pending", "retrying"):
                self.states[step] = "stopped"
            elif state == "running":
                self.states[step] = "stopping"
        self.retry_at.clear()
        # The same call as _stop_run: every container of the run, by its label.
        threading.Thread(target=stop_containers, daemon=True, args=(
            self.client, run_label_filter(self.run_info.pipeline_run_id), True,
            self.grace_seconds)).start()
        return True

    # -- ZenML's record ----------------------------------------------------
    def _finish_record(self) -> None:
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
            publish_utils.publish_pipeline_run_status_update(
                pipeline_run_id=self.run_info.pipeline_run_id, status=status)


def _final(state: str) -> bool:
    return state in ("completed", "failed", "skipped", "stopped")


class MyOrchestratorFlavor(BaseOrchestratorFlavor):
    """The flavor: a name, and where the config and implementation are."""

    @property
    def name(self) -> str:
        return "my_orchestrator"

    @property
    def config_class(self) -> Type[BaseOrchestratorConfig]:
        return MyOrchestratorConfig

    @property
    def implementation_class(self) -> Type[ContainerizedOrchestrator]:
        return MyOrchestrator
