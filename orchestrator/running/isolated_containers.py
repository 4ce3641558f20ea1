"""The host's side of a dynamic run: each isolated step's container, from its start to its removal.

ZenML's dynamic runner hands each isolated step to the orchestrator
(`isolated_steps`); `DynamicRun` starts the step's container from the same
plan as a static step's (`planning.plan_isolated_step`), or queues it while
`max_parallelism` containers run, and one thread per container follows it:
its output (`attempt_output`), its timeout, and its end, which is made true
in ZenML's record (`isolated_records`) where the step could not write it
(killed for memory, past its timeout, stopped, crashed). Its status for
ZenML's runner is read from the record where the step has ended, else from
the container (`isolated_status`). Stops mark the step records STOPPING
first, then stop the containers; at the end of the run every container goes
(`DynamicRun.finish`). The helpers at the end stop and remove a dynamic run's
containers from any process, found by their labels.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Deque, Dict, List, Optional
from uuid import UUID

import docker
from zenml.enums import ExecutionStatus

from orchestrator.errors import RunStoppedError
from orchestrator.running.attempt_output import follow_output
from orchestrator.running.containers import ContainerExit, StepContainer
from orchestrator.running.isolated_records import (
    OPEN_STATES,
    ended_in_record,
    mark_stopping,
    publish_failure,
    publish_stopped,
    recorded_status,
)
from orchestrator.running.labels import (
    attempt_of,
    find_containers,
    find_step_run_container,
    step_of,
    step_run_of,
)
from orchestrator.running.plan import RunPlan
from orchestrator.running.planning import plan_isolated_step
from orchestrator.running.step_logs import StepLogFile, run_log_dir
from orchestrator.running.verdict import Verdict, judge_attempt, recorded_outcome
from orchestrator.zenml_records import epoch_seconds, get_run, step_runs_of

if TYPE_CHECKING:
    from zenml.models import StepRunResponse

    from orchestrator.running.request import IsolatedStepRequest

logger = logging.getLogger("orchestrator.my_docker_orchestrator")

# A finished step's container still runs ZenML's teardown (log upload): the
# run waits this long for it at the end before removing it anyway.
TEARDOWN_TIMEOUT_SECONDS = 120.0
# Docker's states of a container that has not exited.
LIVE_STATES = ("created", "running", "restarting")


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

    @classmethod
    def of_container(cls, container: Any, step_run: "StepRunResponse") -> "IsolatedStep":
        """The step run of a container found by its step-run-id label (one that another
        process started): running (`ended` None), or how it ended."""
        labels = container.labels
        step = cls(str(step_run.id), step_of(labels) or step_run.name, attempt_of(labels),
                   plan=None)
        step.container = StepContainer(container, step.step_name, step.attempt)
        if container.status not in LIVE_STATES:
            state = container.attrs.get("State", {})
            step.ended = ContainerExit(exit_code=int(state.get("ExitCode", -1)),
                                       oom_killed=bool(state.get("OOMKilled")), last_lines=())
        return step

    @property
    def queued(self) -> bool:
        return self.container is None and self.ended is None

    @property
    def label(self) -> str:
        retry = f" (attempt {self.attempt})" if self.attempt > 1 else ""
        return f"[{self.step_name}]{retry}"


def isolated_status(step: Optional[IsolatedStep], recorded: ExecutionStatus) -> ExecutionStatus:
    """An isolated step run's status for ZenML's runner: the one rule.

    ZenML's record where it says the step ended (so that steps waiting for it
    start while its container finishes ZenML's teardown), else its container's
    state: no container at all (removed by someone, or never made: it runs
    nothing, so it did not succeed) -> FAILED; queued -> PROVISIONING (STOPPED
    if stopped); running -> RUNNING; exited -> STOPPED when it was stopped on
    request, else COMPLETED or FAILED by its exit (a failure's reason is in
    its record already).

    Args:
        step: the step run and its container as this process knows it (or as
            found by its label: `IsolatedStep.of_container`); None if it has none.
        recorded: the step run's status in ZenML's record.
    """
    if ended_in_record(recorded):
        return recorded
    if step is None:
        return ExecutionStatus.FAILED
    if step.queued:
        return ExecutionStatus.STOPPED if step.stopped else ExecutionStatus.PROVISIONING
    if step.ended is None:
        return ExecutionStatus.RUNNING
    if step.stopped:
        return ExecutionStatus.STOPPED
    return ExecutionStatus.COMPLETED if step.ended.succeeded else ExecutionStatus.FAILED


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
                publish_failure(step.step_run_id, f"Step '{step.step_name}' could not "
                                 f"start: {error}")

    # -- watching ----------------------------------------------------------------
    def _watch(self, step: IsolatedStep) -> None:
        step.watcher = threading.Thread(target=self._follow, args=(step,), daemon=True,
                                        name=f"my-docker-{step.step_name}")
        step.watcher.start()

    def _follow(self, step: IsolatedStep) -> None:
        """Stream one container's output (`attempt_output`), enforce its timeout, settle its end."""
        assert step.container is not None
        plan = step.plan
        log_file = StepLogFile(plan.log_dir if plan else run_log_dir(self.pipeline_run_id or ""),
                               step.step_name, step.attempt)
        limit = plan.steps[step.step_name].timeout_seconds if plan else None
        timer = None
        if limit is not None:
            timer = threading.Timer(limit, self._time_out, args=(step, limit))
            timer.daemon = True
            timer.start()
        try:
            # No marker lines: an isolated step's plan has no done marker.
            output = follow_output(step.container, log_file, show_line=lambda line: logger.info(
                "[%s] %s", step.step_name, line))
        finally:
            if timer is not None:
                timer.cancel()
        ended = replace(step.container.wait(), last_lines=output.last_lines)
        if step.timed_out is not None:
            ended = replace(ended, error=f"timed out after {step.timed_out:g} s "
                                         f"({ended.describe()})")
        try:
            self._settle(step, ended, output.folder.exception,
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
            if ended_in_record(recorded_status(step.step_run_id)):
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

        recorded = recorded_status(step.step_run_id)
        if ended_in_record(recorded):
            if recorded == ExecutionStatus.COMPLETED and not ended.succeeded:
                logger.info("%s container exited with %s after the step had completed",
                            step.label, ended.describe())
            else:
                logger.info("%s %s", step.label, _describe_record(recorded, ended))
            return
        # What the attempt was (`verdict`): its record has not ended, so it did not
        # succeed, except a command step, which records nothing inside (ZenML
        # records it from `status`): its exit code decides, unless it was stopped.
        stopped_here = step.stopped or recorded == ExecutionStatus.STOPPING
        judgement = judge_attempt(
            ended, stopping=step.stopped, stop_known=False,
            recorded_success=lambda: (None if step.command_step and not stopped_here
                                      else recorded_outcome(recorded)),
            stop_requested=lambda: recorded == ExecutionStatus.STOPPING)
        if judgement.verdict in (Verdict.STOPPED, Verdict.STOPPED_ELSEWHERE):
            publish_utils.publish_stopped_step_run(UUID(step.step_run_id))
            logger.info("%s stopped (%s)", step.label, ended.describe())
            return
        if judgement.verdict == Verdict.SUCCEEDED:
            return  # a command step: ZenML records it, from our status
        how = judgement.ended.describe()
        message = f"Step '{step.step_name}' failed: {how}"
        if exception and ended.error is None and not ended.oom_killed:
            message += f"; last error: {exception}"
        if log_path:
            message += f" (full log: {log_path})"
        publish_failure(step.step_run_id, message)
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
        return isolated_status(step, recorded_status(step_run.id))

    def adopt(self, step_run: "StepRunResponse") -> Optional[IsolatedStep]:
        """Watch the container of a step run started by an earlier orchestration
        process (a resumed run), found by its step-run-id label."""
        container = find_step_run_container(self.client, str(step_run.id))
        if container is None:
            return None
        step = IsolatedStep.of_container(container, step_run)
        with self._lock:
            known = self.steps.setdefault(step.step_run_id, step)
            if known is not step:
                return known
        if step.ended is None:
            logger.info("%s watching its running container %s again", step.label,
                        step.container.short_id)
            self._watch(step)
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
                publish_stopped(step_run_id)
                return
        grace = self.grace_seconds if grace_seconds is None else grace_seconds
        threading.Thread(target=stop_container, args=(step.container.container, graceful, grace),
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
            publish_stopped(step.step_run_id)
        deadline = time.monotonic() + TEARDOWN_TIMEOUT_SECONDS
        for watcher in watchers:
            watcher.join(timeout=max(0.1, deadline - time.monotonic()))
        for step in self.steps.values():
            if step.ended is None and step.container is not None:
                logger.warning("%s container still running %.0f s after the run ended: "
                               "removing it", step.label, TEARDOWN_TIMEOUT_SECONDS)
                step.container.remove()
            try:
                still_open = recorded_status(step.step_run_id) in OPEN_STATES + (
                    ExecutionStatus.STOPPING,)
            except Exception:  # noqa: BLE001 - a busy store: ZenML's runner settled it
                still_open = False
            if still_open:
                publish_stopped(step.step_run_id)
        if not self.keep_containers:
            remove_containers(self.client, self.orchestrator_run_id)
        with contextlib.suppress(Exception):  # a note only
            self.note_inline_steps(at_the_end=True)


# -- helpers: log lines; a dynamic run's containers stopped or removed, from any process --


def _warn(message: str) -> None:
    logger.warning(message)


def _describe_record(status: ExecutionStatus, ended: ContainerExit) -> str:
    if status == ExecutionStatus.COMPLETED:
        return "completed"
    if status == ExecutionStatus.RETRYING:
        return f"failed ({ended.describe()}); ZenML retries it"
    return f"{status.value} ({ended.describe()})"


def stop_container(container: Any, graceful: bool, grace_seconds: int) -> None:
    """SIGTERM then SIGKILL after the grace (Docker's stop), or SIGKILL at once."""
    try:
        if graceful:
            container.stop(timeout=grace_seconds)
        else:
            container.kill()
    except docker.errors.DockerException:
        pass  # gone, or not running any more


def stop_dynamic_containers(containers: List[Any], *, graceful: bool, grace_seconds: int) -> int:
    """Stop a dynamic run's running containers together, their step records STOPPING first.

    Returns:
        How many containers were running.
    """
    running = [c for c in containers if c.status in LIVE_STATES]
    for container in running:
        step_run_id = step_run_of(container.labels)
        if step_run_id:
            mark_stopping(step_run_id)
    stoppers = [threading.Thread(target=stop_container, args=(c, graceful, grace_seconds),
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
