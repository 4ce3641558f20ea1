"""A dynamic pipeline run: ZenML runs the pipeline function on the host, each isolated step in its own container.

ZenML 0.98 runs a dynamic pipeline (`@pipeline(dynamic=True)`) by executing
its function: each step call is compiled when it happens, and ZenML's
`DynamicPipelineRunner` runs the step either *inline* (in the orchestration
process, in a thread) or *isolated* (handed to the orchestrator). ZenML
decides which, per step: isolated when the step says `runtime="isolated"`,
asks for resources (`ResourceSettings`) or has Docker settings of its own;
inline otherwise. An orchestrator cannot change that choice.

As ZenML's `local` orchestrator does, `my_docker` runs the orchestration on
the host, in the process that called the pipeline (or the detached process
of a non-blocking run). Unlike `local`, every isolated step runs in its own
labelled container, built from the same plan, template and container spec
as a static pipeline's step (`planning.plan_isolated_step`). What ZenML asks
of the orchestrator, and where it is done:

- `submit_isolated_step` -> `DynamicRun.submit`: start the step's container,
  or queue it while `max_parallelism` containers run;
- `get_isolated_step_status`, `wait_for_isolated_step` -> `DynamicRun.status`:
  ZenML's record of the step where it has ended, else the container's state
  (a container killed for memory, or past its timeout, is a failure with
  that reason, written to the step's record);
- `stop_isolated_step` (ZenML's FAIL_FAST), `_stop_run` (`zenml pipeline runs
  stop`), Ctrl-C and SIGTERM: the step records are marked STOPPING first, so
  that ZenML records STOPPED rather than FAILED, then the containers stop;
- `cleanup_isolated_step`: the container is removed once it has exited
  (ZenML's teardown inside it is never cut short).

ZenML does the rest: retries (each one a new step run, so a new container),
the order of steps, and the run's final status.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Deque, Dict, Iterator, List, Optional
from uuid import UUID

import docker
from zenml.enums import ExecutionStatus

from orchestrator.errors import MyDockerError, RunStoppedError
from orchestrator.machine.engine import connect
from orchestrator.running.containers import ContainerExit, StepContainer
from orchestrator.running.error_display import show_our_errors_briefly
from orchestrator.running.labels import (
    attempt_of,
    find_containers,
    find_step_run_container,
    step_of,
    step_run_of,
)
from orchestrator.running.orchestration_record import write_record
from orchestrator.running.plan import RunPlan
from orchestrator.running.planning import plan_isolated_step, warn_if_store_in_source_root
from orchestrator.running.reporting import claim_orchestrator_run_id, finish_run
from orchestrator.running.settings import ENV_ORCHESTRATOR_RUN_ID
from orchestrator.running.signals import handling
from orchestrator.running.step_logs import LineSplitter, StepLogFile, TracebackFolder, run_log_dir
from orchestrator.zenml_records import epoch_seconds, get_run, run_status, step_runs_of

if TYPE_CHECKING:
    from zenml.models import PipelineRunResponse, StepRunResponse

    from orchestrator.running.request import IsolatedStepRequest, RunRequest

logger = logging.getLogger("orchestrator.my_docker_orchestrator")

# ZenML's runner looks at running isolated steps every 10 s by default;
# steps started with .submit() wait for that look. Local containers and a
# local store are cheap to ask: once a second, unless the user chose.
MONITORING_INTERVAL_SECONDS = "1"
# How often a plain (blocking) call of an isolated step looks at it.
WAIT_POLL_SECONDS = 0.5
# How often the host looks for a stop requested from another process.
STOP_CHECK_SECONDS = 2.0
# Grace before SIGKILL when the user interrupts the client: they are waiting.
INTERRUPT_GRACE_SECONDS = 2
# A finished step's container still runs ZenML's teardown (log upload): the
# run waits this long for it at the end before removing it anyway.
TEARDOWN_TIMEOUT_SECONDS = 120.0

_OPEN = (ExecutionStatus.INITIALIZING, ExecutionStatus.PROVISIONING, ExecutionStatus.RUNNING)
_STOP_STATES = (ExecutionStatus.STOPPING, ExecutionStatus.STOPPED)


def _ended_in_record(status: ExecutionStatus) -> bool:
    """Whether a step run's record says it will not run on (RETRYING: another run will)."""
    return status.is_finished or status == ExecutionStatus.RETRYING


def _recorded_status(step_run_id: Any) -> ExecutionStatus:
    from zenml.client import Client

    return ExecutionStatus(Client().get_run_step(UUID(str(step_run_id)), hydrate=False).status)


class IsolatedStep:
    """One isolated step run and its container, watched by one thread on the host.

    Attributes:
        step_run_id, step_name, attempt: ZenML's step run, its invocation id,
            and its version (1, then 2 for the first retry, ...).
        container: the started container (None while queued).
        ended: how the container ended, set once ZenML's record of it was
            made true (None while it runs).
        stopped: it was stopped on request (a stop is not a failure).
        timed_out: the timeout it ran past, if it did.
    """

    def __init__(self, step_run_id: str, step_name: str, attempt: int,
                 plan: Optional[RunPlan], command_step: bool = False) -> None:
        self.step_run_id = step_run_id
        self.step_name = step_name
        self.attempt = attempt
        self.plan = plan
        self.command_step = command_step
        self.container: Optional[StepContainer] = None
        self.ended: Optional[ContainerExit] = None
        self.stopped = False
        self.timed_out: Optional[float] = None
        self.watcher: Optional[threading.Thread] = None

    @property
    def queued(self) -> bool:
        return self.container is None and self.ended is None

    @property
    def label(self) -> str:
        retry = f" (attempt {self.attempt})" if self.attempt > 1 else ""
        return f"[{self.step_name}]{retry}"


class DynamicRun:
    """The host's side of one dynamic run: its isolated steps' containers.

    ZenML's step launcher calls `stack.orchestrator`, a different object from
    the one running `submit_dynamic_pipeline`, so runs are found through a
    registry of this process (`for_pipeline_run`), and containers from an
    earlier orchestration process (a resumed run) through their labels.
    """

    def __init__(self, client: docker.DockerClient, orchestrator_run_id: str, *,
                 max_parallelism: int, grace_seconds: int, keep_containers: bool) -> None:
        self.client = client
        self.orchestrator_run_id = orchestrator_run_id
        self.max_parallelism = max_parallelism
        self.grace_seconds = grace_seconds
        self.keep_containers = keep_containers
        self.pipeline_run_id: Optional[str] = None
        self.run_name = ""
        self.steps: Dict[str, IsolatedStep] = {}  # step run id -> step
        self._queue: Deque[IsolatedStep] = collections.deque()
        self._lock = threading.RLock()
        self.stopping = False
        self._inline_noted: set = set()
        self.started_at = time.time()

    # -- the registry ---------------------------------------------------------
    _registry: Dict[str, "DynamicRun"] = {}  # pipeline run id or orchestrator run id -> run
    _registry_lock = threading.Lock()

    def register(self, pipeline_run_id: str, run_name: str) -> None:
        self.pipeline_run_id = pipeline_run_id
        self.run_name = run_name
        with DynamicRun._registry_lock:
            DynamicRun._registry[pipeline_run_id] = self
            DynamicRun._registry[self.orchestrator_run_id] = self

    def unregister(self) -> None:
        with DynamicRun._registry_lock:
            for key in [k for k, run in DynamicRun._registry.items() if run is self]:
                del DynamicRun._registry[key]

    @classmethod
    def for_pipeline_run(cls, pipeline_run_id: Any) -> Optional["DynamicRun"]:
        """The run this process orchestrates that `pipeline_run_id` belongs to
        (a nested pipeline's child run belongs to its parent's)."""
        key = str(pipeline_run_id)
        with cls._registry_lock:
            found = cls._registry.get(key)
        if found is not None:
            return found
        run = get_run(UUID(key))
        with cls._registry_lock:
            found = cls._registry.get(run.orchestrator_run_id or "")
            if found is not None:
                cls._registry[key] = found
        return found

    # -- submitting -------------------------------------------------------------
    def submit(self, request: "IsolatedStepRequest") -> None:
        """Start an isolated step's container, or queue it; return at once.

        Raises:
            InvalidSettingsError, ImageNotFoundError, MyDockerError: the step's
                container cannot be made (ZenML records the step as failed,
                with this reason).
        """
        step_run_info = request.step_run_info
        plan = plan_isolated_step(request=request, client=self.client,
                                  orchestrator_run_id=self.orchestrator_run_id)
        step = IsolatedStep(str(step_run_info.step_run_id), step_run_info.pipeline_step_name,
                            int(step_run_info.step_run.version), plan,
                            command_step=step_run_info.config.command is not None)
        plan.spec_for(step.step_name, step.attempt)  # invalid run_args fail here, not later
        with self._lock:
            if self.stopping:
                raise RunStoppedError(f"{step.label} not started: the run is stopping.")
            self.steps[step.step_run_id] = step
            if self._running_count() >= self.max_parallelism:
                self._queue.append(step)
                logger.info("%s queued: %d container(s) already run (max_parallelism)",
                            step.label, self.max_parallelism)
                return
            self._start(step)  # raises: the launcher records the step as failed

    def _running_count(self) -> int:
        return sum(1 for s in self.steps.values() if s.container is not None and s.ended is None)

    def _start(self, step: IsolatedStep) -> None:
        """Create and start the step's container and its watcher (lock held)."""
        assert step.plan is not None
        spec = step.plan.spec_for(step.step_name, step.attempt, warn=_warn)
        try:
            step.container = StepContainer.start(self.client, spec, step.step_name, step.attempt)
        except BaseException:
            self.steps.pop(step.step_run_id, None)
            raise
        logger.info("%s started in container %s", step.label, step.container.short_id)
        self._watch(step)

    def _start_queued(self) -> None:
        """Start queued steps while there are free slots (lock held)."""
        while self._queue and not self.stopping and self._running_count() < self.max_parallelism:
            step = self._queue.popleft()
            try:
                self._start(step)
            except Exception as error:  # noqa: BLE001 - recorded as the step's failure
                logger.error("%s could not start: %s", step.label, error)
                step.ended = ContainerExit.refused(str(error))
                self.steps[step.step_run_id] = step
                _publish_failure(step.step_run_id, f"Step '{step.step_name}' could not "
                                 f"start: {error}")

    # -- watching ----------------------------------------------------------------
    def _watch(self, step: IsolatedStep) -> None:
        step.watcher = threading.Thread(target=self._follow, args=(step,), daemon=True,
                                        name=f"my-docker-{step.step_name}")
        step.watcher.start()

    def _follow(self, step: IsolatedStep) -> None:
        """Stream one container's output, enforce its timeout, settle its end."""
        assert step.container is not None
        plan = step.plan
        log_file = StepLogFile(plan.log_dir if plan else run_log_dir(self.pipeline_run_id or ""),
                               step.step_name, step.attempt)
        folder = TracebackFolder()
        shown: Deque[str] = collections.deque(maxlen=32)
        limit = plan.steps[step.step_name].timeout_seconds if plan else None
        timer = None
        if limit is not None:
            timer = threading.Timer(limit, self._time_out, args=(step, limit))
            timer.daemon = True
            timer.start()

        lines = LineSplitter()

        def show(new_lines: List[str]) -> None:
            for line in new_lines:
                if not line.strip():
                    continue
                step.container.keep_tail(line)
                for visible in folder.feed(line):
                    shown.append(visible)
                    logger.info("[%s] %s", step.step_name, visible)

        def on_chunk(chunk: bytes) -> None:
            # The kept log gets the output exactly as printed, as a static
            # step's does; the client's log gets it as lines.
            log_file.write_bytes(chunk)
            show(lines.feed(chunk))

        try:
            step.container.follow_output(on_chunk)
            show(lines.rest())
        finally:
            log_file.close()
            if timer is not None:
                timer.cancel()
        ended = replace(step.container.wait(), last_lines=tuple(shown))
        if step.timed_out is not None:
            ended = replace(ended, error=f"timed out after {step.timed_out:g} s "
                                         f"({ended.describe()})")
        try:
            self._settle(step, ended, folder.exception,
                         str(log_file.path) if log_file.path else None)
        except Exception as error:  # noqa: BLE001 - ZenML's monitoring settles it then
            logger.warning("%s could not record how its container ended: %s", step.label, error)
        with self._lock:
            step.ended = ended
            self._start_queued()
        if not self.keep_containers:
            step.container.remove()

    def _time_out(self, step: IsolatedStep, limit: float) -> None:
        """The step's attempt ran past its timeout: stop its container."""
        if step.ended is not None:
            return
        try:
            if _ended_in_record(_recorded_status(step.step_run_id)):
                return  # it has ended; its container is only tearing down
        except Exception:  # noqa: BLE001 - a busy store: the clock decides
            pass
        step.timed_out = limit
        logger.info("%s ran past its timeout of %g s: stopping its container (grace %d s)",
                    step.label, limit, self.grace_seconds)
        step.container.stop(self.grace_seconds)

    def _settle(self, step: IsolatedStep, ended: ContainerExit,
                exception: Optional[str], log_path: Optional[str]) -> None:
        """Make ZenML's record of a step whose container ended true.

        The step records its own end when it gets that far. When it did not
        (killed for memory, past its timeout, stopped, a crash), its record
        gets the reason, so that ZenML retries it or fails it with that
        reason, and a plain call raises it.
        """
        from zenml.orchestrators import publish_utils

        recorded = _recorded_status(step.step_run_id)
        if _ended_in_record(recorded):
            if recorded == ExecutionStatus.COMPLETED and not ended.succeeded:
                logger.info("%s container exited with %s after the step had completed",
                            step.label, ended.describe())
            else:
                logger.info("%s %s", step.label, _describe_record(recorded, ended))
            return
        if recorded == ExecutionStatus.STOPPING or step.stopped:
            publish_utils.publish_stopped_step_run(UUID(step.step_run_id))
            logger.info("%s stopped (%s)", step.label, ended.describe())
            return
        if step.command_step and ended.succeeded:
            return  # nothing inside records a command step: ZenML does, from our status
        if ended.succeeded:
            how = ("its container exited with code 0, but ZenML did not record the step "
                   "as completed (did the step call sys.exit() or os._exit()?)")
        else:
            how = ended.describe()
        message = f"Step '{step.step_name}' failed: {how}"
        if exception and ended.error is None and not ended.oom_killed:
            message += f"; last error: {exception}"
        if log_path:
            message += f" (full log: {log_path})"
        _publish_failure(step.step_run_id, message)
        logger.info("%s failed: %s", step.label, how)

    # -- statuses ------------------------------------------------------------------
    def status(self, step_run: "StepRunResponse") -> ExecutionStatus:
        """An isolated step run's status, for ZenML's runner.

        ZenML's record where it says the step ended (so that steps waiting
        for it start while its container finishes ZenML's teardown), else
        the container's state: queued -> PROVISIONING, running -> RUNNING,
        exited -> COMPLETED or FAILED (its record already holds the reason),
        or STOPPED when it was stopped on request.
        """
        step = self.steps.get(str(step_run.id)) or self.adopt(step_run)
        recorded = _recorded_status(step_run.id)
        if _ended_in_record(recorded):
            return recorded
        if step is None:
            # No container at all (removed by someone, or never made): it
            # runs nothing, so it did not succeed.
            return ExecutionStatus.FAILED
        if step.queued:
            return ExecutionStatus.STOPPED if step.stopped else ExecutionStatus.PROVISIONING
        if step.ended is None:
            return ExecutionStatus.RUNNING
        if step.stopped:
            return ExecutionStatus.STOPPED
        return ExecutionStatus.COMPLETED if step.ended.succeeded else ExecutionStatus.FAILED

    def adopt(self, step_run: "StepRunResponse") -> Optional[IsolatedStep]:
        """Watch the container of a step run started by an earlier orchestration
        process (a resumed run), found by its step-run-id label."""
        container = find_step_run_container(self.client, str(step_run.id))
        if container is None:
            return None
        labels = container.labels
        step = IsolatedStep(str(step_run.id), step_of(labels) or step_run.name,
                            attempt_of(labels), plan=None)
        step.container = StepContainer(container, step.step_name, step.attempt)
        with self._lock:
            known = self.steps.setdefault(step.step_run_id, step)
            if known is not step:
                return known
        if container.status in ("created", "running", "restarting"):
            logger.info("%s watching its running container %s again", step.label,
                        step.container.short_id)
            self._watch(step)
        else:
            state = container.attrs.get("State", {})
            step.ended = ContainerExit(exit_code=int(state.get("ExitCode", -1)),
                                       oom_killed=bool(state.get("OOMKilled")), last_lines=())
        return step

    # -- stopping ------------------------------------------------------------------
    def stop_step(self, step_run_id: str, *, graceful: bool = True,
                  grace_seconds: Optional[int] = None) -> None:
        """Stop one step: its record STOPPING first, then its container (or its place in the queue)."""
        step = self.steps.get(step_run_id)
        if step is None or step.ended is not None:
            return
        step.stopped = True
        mark_stopping(step_run_id)
        with self._lock:
            if step.queued:
                with contextlib.suppress(ValueError):
                    self._queue.remove(step)
                step.ended = ContainerExit(exit_code=-1, oom_killed=False, last_lines=(),
                                           error="stopped before it started")
                _publish_stopped(step_run_id)
                return
        grace = self.grace_seconds if grace_seconds is None else grace_seconds
        threading.Thread(target=_stop_container, args=(step.container.container, graceful, grace),
                         daemon=True, name=f"my-docker-stop-{step.step_name}").start()

    def stop_all(self, *, graceful: bool = True, grace_seconds: Optional[int] = None) -> None:
        """Stop every step of the run; nothing new starts."""
        with self._lock:
            self.stopping = True
            open_steps = [s.step_run_id for s in self.steps.values() if s.ended is None]
        for step_run_id in open_steps:
            self.stop_step(step_run_id, graceful=graceful, grace_seconds=grace_seconds)

    def note_inline_steps(self, *, at_the_end: bool = False) -> None:
        """Say which steps ZenML runs inline, here on the host: once per step,
        while it runs, or at the end of the run for those too quick to be seen."""
        if self.pipeline_run_id is None:
            return
        inline = []
        for step_run in step_runs_of(self.pipeline_run_id):
            if step_run.name in self._inline_noted or str(step_run.id) in self.steps:
                continue
            status = ExecutionStatus(step_run.status)
            created = epoch_seconds(step_run.created) or 0.0
            if created < self.started_at - 1.0 or status == ExecutionStatus.CACHED:
                continue  # reused from before a resume, or not run at all
            if status == ExecutionStatus.RUNNING or at_the_end:
                self._inline_noted.add(step_run.name)
                inline.append(step_run.name)
        if inline:
            logger.info("%s %s inline, in the orchestration process on the host, not in a "
                        "container: ZenML's choice for a dynamic pipeline's step without "
                        "runtime='isolated', resources or Docker settings of its own",
                        ", ".join(f"[{name}]" for name in inline),
                        "ran" if at_the_end else "runs")

    # -- the end -------------------------------------------------------------------
    def finish(self) -> None:
        """After ZenML's runner returned (or raised): no container, no open record left.

        Containers still finishing ZenML's teardown get TEARDOWN_TIMEOUT_SECONDS;
        then every container of the run is removed (unless kept), and every
        isolated step record still open is ended.
        """
        with self._lock:
            self.stopping = True
            watchers = [s.watcher for s in self.steps.values() if s.watcher is not None]
            queued = list(self._queue)
            self._queue.clear()
        for step in queued:
            step.ended = ContainerExit(exit_code=-1, oom_killed=False, last_lines=(),
                                       error="never started")
            _publish_stopped(step.step_run_id)
        deadline = time.monotonic() + TEARDOWN_TIMEOUT_SECONDS
        for watcher in watchers:
            watcher.join(timeout=max(0.1, deadline - time.monotonic()))
        for step in self.steps.values():
            if step.ended is None and step.container is not None:
                logger.warning("%s container still running %.0f s after the run ended: "
                               "removing it", step.label, TEARDOWN_TIMEOUT_SECONDS)
                step.container.remove()
            try:
                still_open = _recorded_status(step.step_run_id) in _OPEN + (
                    ExecutionStatus.STOPPING,)
            except Exception:  # noqa: BLE001 - a busy store: ZenML's runner settled it
                still_open = False
            if still_open:
                _publish_stopped(step.step_run_id)
        if not self.keep_containers:
            remove_containers(self.client, self.orchestrator_run_id)
        with contextlib.suppress(Exception):  # a note only
            self.note_inline_steps(at_the_end=True)


# -- helpers shared by the run and by other processes -------------------------------


def _warn(message: str) -> None:
    logger.warning(message)


def _describe_record(status: ExecutionStatus, ended: ContainerExit) -> str:
    if status == ExecutionStatus.COMPLETED:
        return "completed"
    if status == ExecutionStatus.RETRYING:
        return f"failed ({ended.describe()}); ZenML retries it"
    return f"{status.value} ({ended.describe()})"


def _publish_failure(step_run_id: str, message: str) -> None:
    """Record a step run as failed, with `message` as its error (ZenML may make it RETRYING)."""
    from zenml.models import ExceptionInfo
    from zenml.orchestrators import publish_utils

    publish_utils.publish_step_run_status_update(
        step_run_id=UUID(step_run_id), status=ExecutionStatus.FAILED,
        exception_info=ExceptionInfo(traceback=message, message=message,
                                     source="orchestrator.errors.MyDockerError"))


def _publish_stopped(step_run_id: str) -> None:
    from zenml.orchestrators import publish_utils

    with contextlib.suppress(Exception):  # ended meanwhile
        publish_utils.publish_stopped_step_run(UUID(step_run_id))


def mark_stopping(step_run_id: str) -> None:
    """Mark a step run that has not ended STOPPING: ZenML then records it STOPPED
    (not FAILED) once its container is gone."""
    from zenml.client import Client
    from zenml.models import StepRunUpdate

    try:
        if _recorded_status(step_run_id) in _OPEN:
            Client().zen_store.update_run_step(
                UUID(step_run_id), StepRunUpdate(status=ExecutionStatus.STOPPING))
    except Exception as error:  # noqa: BLE001 - stopping the container matters more
        logger.debug("Could not mark step run %s stopping: %s", step_run_id, error)


def _stop_container(container: Any, graceful: bool, grace_seconds: int) -> None:
    """SIGTERM then SIGKILL after the grace (Docker's stop), or SIGKILL at once."""
    try:
        if graceful:
            container.stop(timeout=grace_seconds)
        else:
            container.kill()
    except docker.errors.DockerException:
        pass  # gone, or not running any more


def stop_run_containers(client: docker.DockerClient, containers: List[Any], *,
                        graceful: bool, grace_seconds: int) -> int:
    """Stop a dynamic run's running containers together, their step records STOPPING first.

    Returns:
        How many containers were running.
    """
    running = [c for c in containers if c.status in ("created", "running", "restarting")]
    for container in running:
        step_run_id = step_run_of(container.labels)
        if step_run_id:
            mark_stopping(step_run_id)
    stoppers = [threading.Thread(target=_stop_container, args=(c, graceful, grace_seconds),
                                 daemon=True) for c in running]
    for thread in stoppers:
        thread.start()
    for thread in stoppers:
        thread.join()
    return len(running)


def remove_containers(client: docker.DockerClient, orchestrator_run_id: str) -> None:
    """Remove every container of a run (its child runs' too), running or not."""
    for container in find_containers(client, orchestrator_run_id=orchestrator_run_id):
        with contextlib.suppress(docker.errors.DockerException):
            container.remove(force=True)


# -- the run ------------------------------------------------------------------------


def run_dynamic_pipeline(request: "RunRequest", *, detached: bool = False) -> None:
    """Run a dynamic pipeline's function here, with ZenML's runner; return when it ends.

    ZenML's runner loads the orchestrator from the snapshot's stack and hands
    it each isolated step; the flavor hands them to this run (`submit_isolated_step`).

    Args:
        request: its `environment` is ZenML's environment for the
            orchestration (store access, secrets), set while the run goes
            on; its `placeholder_run` is the run (a new one, or one ZenML
            resumes or retries: it then keeps its orchestrator run id, and
            finished steps are reused).
        detached: this is the detached process of a non-blocking run.

    Raises:
        RunStoppedError: the run was stopped.
        KeyboardInterrupt: the client was interrupted (everything stopped and
            removed first, the run recorded as stopped).
        Exception: whatever the pipeline function raised (a failed step's
            error, for example), as ZenML raises it.
    """
    from zenml.constants import ENV_ZENML_DYNAMIC_PIPELINE_MONITORING_INTERVAL
    from zenml.execution.pipeline.dynamic.runner import DynamicPipelineRunner
    from zenml.utils.env_utils import temporary_environment

    from orchestrator.running.settings import default_parallelism

    snapshot, placeholder_run, settings = request.snapshot, request.placeholder_run, request.settings
    show_our_errors_briefly()
    warn_if_store_in_source_root(snapshot)
    request.stack.check_local_paths()
    orchestrator_run_id = claim_orchestrator_run_id(placeholder_run)
    run = DynamicRun(connect(), orchestrator_run_id,
                     max_parallelism=settings.max_parallelism or default_parallelism(),
                     grace_seconds=settings.stop_grace_seconds,
                     keep_containers=settings.keep_containers)
    host_environment = {**request.environment, ENV_ORCHESTRATOR_RUN_ID: orchestrator_run_id}
    host_environment.setdefault(
        ENV_ZENML_DYNAMIC_PIPELINE_MONITORING_INTERVAL,
        os.environ.get(ENV_ZENML_DYNAMIC_PIPELINE_MONITORING_INTERVAL,
                       MONITORING_INTERVAL_SECONDS))
    if placeholder_run is not None:  # this process takes the run over (a resume, a retry)
        write_record(run_log_dir(str(placeholder_run.id)), str(placeholder_run.id),
                     detached=detached, supervisor_pid=os.getppid() if detached else None)
    started = time.monotonic()
    try:
        with temporary_environment(host_environment), \
                prompt_isolated_futures(settings.future_poll_seconds), \
                _interrupt_stops_the_run(run):
            runner = DynamicPipelineRunner(snapshot=snapshot, run=placeholder_run)
            run.register(str(runner.run.id), runner.run.name)
            if placeholder_run is None:
                write_record(run_log_dir(str(runner.run.id)), str(runner.run.id),
                             detached=detached,
                             supervisor_pid=os.getppid() if detached else None)
            logger.info("Running dynamic pipeline '%s' in this process: each isolated step "
                        "in its own container (up to %d at a time), the other steps inline, "
                        "here. Each step's full output: %s",
                        snapshot.pipeline_configuration.name, run.max_parallelism,
                        run_log_dir(str(runner.run.id)))
            with _stop_watcher(run, runner):
                runner.run_pipeline()
    except KeyboardInterrupt:
        run.stop_all(grace_seconds=INTERRUPT_GRACE_SECONDS)
        _end_unfinished_run(run, ExecutionStatus.STOPPED, "The client was interrupted.")
        raise
    except BaseException as error:
        run.stop_all(grace_seconds=INTERRUPT_GRACE_SECONDS)
        if _was_stopped(run):
            raise RunStoppedError(_stopped_message(run)) from error
        _end_unfinished_run(run, ExecutionStatus.FAILED, f"The orchestration failed: {error}")
        raise
    finally:
        try:
            run.finish()
        finally:
            run.unregister()
    logger.info("Dynamic run '%s' finished in %.1f s.", run.run_name, time.monotonic() - started)
    if _was_stopped(run):
        raise RunStoppedError(_stopped_message(run))


def _was_stopped(run: DynamicRun) -> bool:
    if run.pipeline_run_id is None:
        return False
    try:
        return run_status(run.pipeline_run_id) in _STOP_STATES
    except Exception:  # noqa: BLE001 - unknown: say what ZenML's runner said
        return False


def _stopped_message(run: DynamicRun) -> str:
    counts: Dict[str, int] = collections.Counter(
        ExecutionStatus(s.status).value for s in step_runs_of(run.pipeline_run_id))
    done = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no step ran"
    return (f"The run {run.run_name} was stopped: {done}. Every step's output: "
            f"python -m orchestrator.status {run.run_name} --logs")


def _end_unfinished_run(run: DynamicRun, status: ExecutionStatus, reason: str) -> None:
    """Record the run's end where ZenML's runner could not (it was interrupted)."""
    if run.pipeline_run_id is None:
        return
    try:
        finish_run(run.pipeline_run_id, status=status, reason=reason)
    except Exception as error:  # noqa: BLE001 - never hide the original error
        logger.warning("Could not record the run's end in ZenML: %s", error)


@contextlib.contextmanager
def _interrupt_stops_the_run(run: DynamicRun) -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP stop the run's containers first, then interrupt.

    Without this, ZenML's runner catches the KeyboardInterrupt in the
    pipeline function and waits for every running isolated step to *finish*
    before it records the run failed. Here the run is marked STOPPING and its
    containers are stopped (grace INTERRUPT_GRACE_SECONDS) in the background,
    so ZenML's wait ends within seconds and the steps end STOPPED. Signals
    can only be handled in the main thread; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop_in_background() -> None:
        if run.pipeline_run_id is not None:
            with contextlib.suppress(Exception):  # the run may have ended meanwhile
                from zenml.orchestrators.publish_utils import publish_pipeline_run_status_update

                publish_pipeline_run_status_update(
                    pipeline_run_id=UUID(run.pipeline_run_id), status=ExecutionStatus.STOPPING,
                    status_reason="The client was interrupted.")
        run.stop_all(grace_seconds=INTERRUPT_GRACE_SECONDS)

    def interrupt(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        logger.warning("Interrupted (%s): stopping the run's step containers.", name)
        threading.Thread(target=stop_in_background, daemon=True,
                         name="my-docker-interrupt").start()
        raise KeyboardInterrupt(name)

    with handling((signal.SIGINT, signal.SIGTERM, signal.SIGHUP), interrupt):
        yield


@contextlib.contextmanager
def _stop_watcher(run: DynamicRun, runner: Any) -> Iterator[None]:
    """Notice a stop requested from anywhere (`zenml pipeline runs stop`).

    ZenML's runner does not look at its run's status, and with a local store
    a step's heartbeat does not carry it either; so the host looks, every
    STOP_CHECK_SECONDS. On a stop, ZenML's runner is told to start nothing
    new and the run's steps are stopped. The same look notes steps that run
    inline, on the host.
    """
    from zenml.exceptions import RunStoppedException

    done = threading.Event()

    def watch() -> None:
        while not done.wait(STOP_CHECK_SECONDS):
            try:
                status = run_status(run.pipeline_run_id)
                run.note_inline_steps()
            except Exception:  # noqa: BLE001 - a busy store: look again later
                continue
            if status in _STOP_STATES:
                logger.warning("Run %s is %s: stopping its steps.", run.run_name, status.value)
                runner.request_shutdown(RunStoppedException("The run was stopped."))
                run.stop_all()
                return

    thread = threading.Thread(target=watch, name="my-docker-stop-watcher", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()


# -- an optional patch of one private ZenML method ------------------------------------

_patch_lock = threading.Lock()
_patch_users = [0]


@contextlib.contextmanager
def prompt_isolated_futures(interval: Optional[float]) -> Iterator[None]:
    """While a run goes on, a pipeline function waiting on a submitted isolated
    step's future asks every `interval` seconds instead of ZenML's backoff.

    ZenML 0.98's `_IsolatedStepFuture._wait_for_step_to_finish` (private)
    waits 1, 2, 4 ... 64 s between looks, so `future.load()` may return up
    to a minute after the step ended. Its loop is replaced by the same loop
    with a fixed pause: the same statuses end the wait (not PROVISIONING,
    RUNNING or RETRYING), the submission is re-checked on each round. If the
    method is not where 0.98 has it, ZenML's own wait is kept, with a
    warning. `future_poll_seconds=None` turns this off.
    """
    if interval is None:
        yield
        return
    try:
        from zenml.execution.pipeline.dynamic import outputs
        from zenml.execution.pipeline.dynamic.utils import get_latest_step_run

        future_class = outputs._IsolatedStepFuture
        original = future_class.__dict__["_wait_for_step_to_finish"]
    except (ImportError, AttributeError, KeyError):
        logger.warning("ZenML's isolated-step futures are not where ZenML 0.98 keeps them: "
                       "future.load() uses ZenML's own wait (up to 64 s between looks).")
        yield
        return
    waiting = {ExecutionStatus.PROVISIONING, ExecutionStatus.RUNNING, ExecutionStatus.RETRYING}

    def wait_for_step_to_finish(future: Any) -> Any:
        while True:
            if future._wrapped:  # the submission may have failed, or been replaced by a retry
                future._wrapped.result()
            step_run = get_latest_step_run(future.pipeline_run_id, future.invocation_id,
                                           hydrate=False)
            if step_run.status not in waiting:
                return step_run
            time.sleep(interval)

    with _patch_lock:
        _patch_users[0] += 1
        future_class._wait_for_step_to_finish = wait_for_step_to_finish
    try:
        yield
    finally:
        with _patch_lock:
            _patch_users[0] -= 1
            if _patch_users[0] == 0:
                future_class._wait_for_step_to_finish = original


# -- what the flavor calls for isolated steps ----------------------------------------


def submit_isolated_step(request: "IsolatedStepRequest") -> None:
    """ZenML's `submit_isolated_step`: start the step's container (or queue it); do not wait.

    Raises:
        MyDockerError: the container cannot be made or started.
    """
    step_run_info = request.step_run_info
    run = DynamicRun.for_pipeline_run(step_run_info.run_id)
    if run is None:
        raise MyDockerError(
            f"Step '{step_run_info.pipeline_step_name}' of run {step_run_info.run_name} was "
            "submitted outside a dynamic run orchestrated by this process; my_docker runs "
            "isolated steps only for dynamic pipelines it orchestrates itself.")
    run.submit(request)


def isolated_step_status(step_run: "StepRunResponse") -> ExecutionStatus:
    """ZenML's `get_isolated_step_status` (see `DynamicRun.status`)."""
    run = DynamicRun.for_pipeline_run(step_run.pipeline_run_id)
    if run is not None:
        return run.status(step_run)
    # Asked from a process that does not orchestrate the run: the container tells.
    recorded = _recorded_status(step_run.id)
    if _ended_in_record(recorded):
        return recorded
    container = find_step_run_container(connect(), str(step_run.id))
    if container is None:
        return ExecutionStatus.FAILED
    if container.status in ("created", "running", "restarting"):
        return ExecutionStatus.RUNNING
    state = container.attrs.get("State", {})
    return ExecutionStatus.COMPLETED if state.get("ExitCode") == 0 else ExecutionStatus.FAILED


def wait_for_isolated_step(step_run: "StepRunResponse") -> ExecutionStatus:
    """ZenML's `wait_for_isolated_step`: the status every WAIT_POLL_SECONDS until it ends.

    (ZenML's own wait backs off to 16 s between looks.)
    """
    while True:
        try:
            status = isolated_step_status(step_run)
        except Exception as error:  # noqa: BLE001 - fall back to ZenML's record, as ZenML does
            logger.warning("Could not read step %s's container: %s", step_run.name, error)
            status = _recorded_status(step_run.id)
        if _ended_in_record(status):
            return status
        time.sleep(WAIT_POLL_SECONDS)


def stop_isolated_step(step_run: "StepRunResponse", grace_seconds: int) -> None:
    """ZenML's `stop_isolated_step` (FAIL_FAST): SIGTERM, SIGKILL after the grace."""
    run = DynamicRun.for_pipeline_run(step_run.pipeline_run_id)
    if run is not None and str(step_run.id) in run.steps:
        run.stop_step(str(step_run.id), grace_seconds=grace_seconds)
        return
    client = connect()
    container = find_step_run_container(client, str(step_run.id))
    if container is not None:
        stop_run_containers(client, [container], graceful=True, grace_seconds=grace_seconds)


def cleanup_isolated_step(step_run: "StepRunResponse", keep_containers: bool) -> None:
    """ZenML's `cleanup_isolated_step`: the container goes once it has exited.

    The watcher of a container this process follows removes it at its exit;
    here only a container nobody follows (one that had exited before a
    resumed run looked at it) is removed.
    """
    if keep_containers:
        return
    run = DynamicRun.for_pipeline_run(step_run.pipeline_run_id)
    step = run.steps.get(str(step_run.id)) if run is not None else None
    if step is not None and step.watcher is not None:
        return
    container = find_step_run_container(connect(), str(step_run.id))
    if container is not None and container.status not in ("created", "running", "restarting"):
        with contextlib.suppress(docker.errors.DockerException):
            container.remove(force=True)


def stop_dynamic_run(run: "PipelineRunResponse", *, graceful: bool, grace_seconds: int) -> int:
    """ZenML's `_stop_run` for a dynamic run, from any process (`zenml pipeline runs stop`).

    ZenML has marked the run STOPPING. Its isolated steps' records are marked
    STOPPING and their containers stopped (SIGTERM then SIGKILL, or SIGKILL
    at once); the orchestration process notices within STOP_CHECK_SECONDS and
    ends the run. If that process is gone, the run is ended here.

    Returns:
        How many containers were running.
    """
    from orchestrator.running.orphans import settle_if_orphaned

    client = connect()
    containers = (find_containers(client, orchestrator_run_id=run.orchestrator_run_id)
                  if run.orchestrator_run_id
                  else find_containers(client, pipeline_run_id=str(run.id)))
    running = stop_run_containers(client, containers, graceful=graceful,
                                  grace_seconds=grace_seconds)
    settle_if_orphaned(run.id)
    return running
