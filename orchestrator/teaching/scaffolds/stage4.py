# ruff: noqa: F821  (a template: the pieces are put in at the marked lines)
"""my_orchestrator: the orchestrator you build in the tutorial (stage 4 of 6: notebook 4).

Every step runs in a Docker container of its own, started as soon as its
upstream steps completed, up to ``max_parallelism`` at once: one thread per
container waits for its end, one loop decides what starts next. A failure
skips the steps that need the failed one and lets the others go on
(CONTINUE_ON_FAILURE, the one execution mode this stage supports).

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

# ============================ scaffolding ============================

RUN_LABEL = "my-orchestrator.pipeline-run-id"


def container_labels(run: RunInfo, step_name: str, attempt: int) -> Dict[str, str]:
    """Labels that say which run and step a container belongs to."""
    return {RUN_LABEL: run.pipeline_run_id, "my-orchestrator.step": step_name,
            "my-orchestrator.attempt": str(attempt)}


def run_label_filter(pipeline_run_id: str) -> str:
    """The Docker label filter that finds one run's containers."""
    return f"{RUN_LABEL}={pipeline_run_id}"


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


class MyOrchestratorSettings(BaseSettings):
    """What a pipeline (or a step) may set under ``settings={"orchestrator": {...}}``."""

    max_parallelism: int = 4  # step containers running at once


class MyOrchestratorConfig(BaseOrchestratorConfig, MyOrchestratorSettings):
    """A registered component's options; they are the settings' defaults."""

    @property
    def is_local(self) -> bool:
        return True

    @property
    def is_synchronous(self) -> bool:
        return True  # the pipeline call returns when the run is over


class MyOrchestrator(ContainerizedOrchestrator):
    """Runs every step in its own container, along the graph, in parallel."""

    @property
    def settings_class(self) -> Type[BaseSettings]:
        return MyOrchestratorSettings

    @property
    def supported_execution_modes(self) -> List[ExecutionMode]:
        # What this stage really does when a step fails (see Runner._on_end).
        return [ExecutionMode.CONTINUE_ON_FAILURE]

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
        kwargs, upstreams = {}, {}
        for name, step in snapshot.step_configurations.items():
            kwargs[name] = container_kwargs(
                image=self.get_image(snapshot=snapshot, step_name=name),
                entrypoint=StepEntrypointConfiguration.get_entrypoint_command(),
                arguments=StepEntrypointConfiguration.get_entrypoint_arguments(
                    step_name=name, snapshot_id=snapshot.id),
                environment=step_environments[name],
                stores_path=stores_path,
                run_id=run.orchestrator_run_id,
            )
            kwargs[name]["environment"].update(PLAIN_LOGS)
            upstreams[name] = list(step.spec.upstream_steps)
        Runner(docker.from_env(), kwargs, upstreams, run, settings.max_parallelism).run()
        return None  # nothing to wait for: the run is over


class Runner:
    """Runs one pipeline's step containers.

    One thread per container follows its output and, when the container
    ends, puts ``(step, exit code)`` on a queue. The loop in `run` is the
    only place that decides: it starts what `ready_steps` allows, takes each
    end off the queue in turn and updates ``states`` (pending, running,
    completed, failed, skipped).
    """

    def __init__(self, client, kwargs: Dict[str, Dict[str, Any]],
                 upstreams: Dict[str, List[str]], run: RunInfo, max_parallelism: int) -> None:
        self.client, self.kwargs, self.run_info = client, kwargs, run
        self.upstreams, self.max_parallelism = upstreams, max_parallelism
        self.states = dict.fromkeys(run_order(upstreams), "pending")
        self.containers: Dict[str, Any] = {}
        self.ended: "queue.Queue" = queue.Queue()

    def run(self) -> None:
        try:
            while self.containers or "pending" in self.states.values():
                started = ready_steps(self.upstreams, self.states, self.max_parallelism)
                for step in started:
                    self._start(step)
                if not started and not self.containers:
                    raise RuntimeError("nothing runs, and ready_steps starts none of the "
                                       f"pending steps: {self.states}")
                try:
                    step, exit_code = self.ended.get(timeout=0.5)
                except queue.Empty:
                    continue
                self._on_end(step, exit_code)
        finally:  # whatever happened (Ctrl-C too): no container of this run stays behind
            for container in self.client.containers.list(
                    all=True, filters={"label": run_label_filter(self.run_info.pipeline_run_id)}):
                container.remove(force=True)
        failed = [s for s, v in self.states.items() if v == "failed"]
        if failed:
            _record_failed_run(self.run_info.pipeline_run_id)
            raise RuntimeError(f"step(s) failed: {', '.join(failed)}")

    def _start(self, step: str) -> None:
        labels = container_labels(self.run_info, step, 1)
        container = self.client.containers.run(**self.kwargs[step], labels=labels)
        self.containers[step] = container
        self.states[step] = "running"
        logger.info("[%s] started in container %s", step, container.short_id)
        threading.Thread(target=self._follow, args=(step, container), daemon=True).start()

    def _follow(self, step: str, container) -> None:
        """In a thread of its own: the container's lines as they come, then its end."""
        try:
            for line in container.logs(stream=True, follow=True):
                logger.info("[%s] %s", step, line.decode(errors="replace").rstrip())
            exit_code = container.wait()["StatusCode"]
        except Exception as error:  # noqa: BLE001 - removed under our feet
            logger.info("[%s] lost its container: %s", step, error)
            exit_code = -1
        self.ended.put((step, exit_code))

    def _on_end(self, step: str, exit_code: int) -> None:
        self.containers.pop(step).remove(force=True)
        if exit_code == 0:
            self.states[step] = "completed"
            return
        logger.error("[%s] FAILED (exit code %d)", step, exit_code)
        self.states[step] = "failed"
        for other in downstream_of(step, self.upstreams):  # CONTINUE_ON_FAILURE
            if self.states[other] == "pending":
                self.states[other] = "skipped"
                logger.info("[%s] skipped: it needs %s", other, step)


def _record_failed_run(pipeline_run_id: str) -> None:
    """Mark the run failed in ZenML's record (the failed step recorded only itself)."""
    from zenml.client import Client
    from zenml.orchestrators import publish_utils

    if pipeline_run_id and not Client().get_pipeline_run(pipeline_run_id).status.is_finished:
        publish_utils.publish_pipeline_run_status_update(
            pipeline_run_id=pipeline_run_id, status=ExecutionStatus.FAILED)


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
