"""Run a pipeline's steps as containers, in DAG order, in parallel.

The runner joins the pure scheduler (`dag.py`) to the container operations
(`containers.py`). It owns the loop a user waits on: start every step that is
ready, stream its output, react when a container exits (success, failure,
retry, fail-fast), and make sure that whatever happens, including Ctrl-C, no
container of the run is left running or lying around afterwards.

It knows nothing of ZenML: the orchestrator passes it a `RunPlan` (what to
run) and `RunHooks` (how to tell ZenML what happened).
"""

from __future__ import annotations

import collections
import contextlib
import queue
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Deque, Dict, List, Optional

import docker

from orchestrator.errors import MyDockerError, RunStoppedError, StepFailedError
from orchestrator.running.containers import ContainerExit, StepContainer
from orchestrator.running.labels import find_containers
from orchestrator.running.plan import RunPlan
from orchestrator.running.scheduler import DagScheduler, StepState
from orchestrator.running.step_logs import StepLogFile, TracebackFolder, meaningful_lines

# How often the loop wakes up with nothing to do, to look for stop requests.
POLL_SECONDS = 0.5
# How often to ask ZenML whether someone requested a stop of this run.
STOP_CHECK_SECONDS = 2.0
# How often to ask ZenML which running steps have already recorded success.
COMPLETION_CHECK_SECONDS = 0.5
# Grace before SIGKILL when the user interrupts the client: they are waiting.
INTERRUPT_GRACE_SECONDS = 2
# A step whose success is recorded still runs ZenML's teardown (log upload);
# it is never cut short for that, unless it hangs for this long.
TEARDOWN_TIMEOUT_SECONDS = 300.0
# How many of a failed step's last lines its failure message shows.
FAILURE_TAIL_LINES = 8


@dataclass(frozen=True)
class StepFailure:
    """A step that failed for good: which, how and what it printed last.

    Attributes:
        shown_lines: the step's last lines as the client's log showed them
            (tracebacks folded to their exception line).
        exception: the last exception line the step printed, if any.
        log_path: the file holding the whole output of the last attempt.
    """

    step_name: str
    attempts: int
    exit: ContainerExit
    shown_lines: tuple = ()
    exception: Optional[str] = None
    log_path: Optional[str] = None

    def describe(self) -> str:
        """Which step, how it ended, the error, its last lines and where the rest is."""
        cause = f": {self.exception}" if self.exception else ""
        lines = [line for line in meaningful_lines(list(self.shown_lines))
                 if not line.startswith(self.exception or "\0")]
        tail = "\n".join(f"    {line}" for line in lines[-FAILURE_TAIL_LINES:])
        text = (f"Step '{self.step_name}' failed{cause}\n"
                f"  how: {self.exit.describe()}, {self.attempts} attempt(s)\n"
                f"  last lines:\n{tail or '    (no output)'}")
        if self.log_path:
            text += f"\n  full log: {self.log_path}"
        return text


class RunHooks:
    """How the runner reports to the outside world; every method is optional.

    The orchestrator subclasses this to publish statuses to ZenML; tests can
    use it as is.
    """

    def log(self, message: str) -> None:
        print(message, flush=True)

    def step_line(self, step_name: str, line: str) -> None:
        self.log(f"[{step_name}] {line}")

    def stop_requested(self) -> bool:
        """Whether someone asked (from anywhere) to stop this run."""
        return False

    def completed_steps(self) -> set:
        """Steps whose success is already recorded, though their container may
        still be shutting down (ZenML's teardown takes about a second)."""
        return set()

    def recorded_end(self, step_name: str) -> bool:
        """Whether the step's latest attempt already recorded that it ended."""
        return False

    def recorded_success(self, step_name: str) -> Optional[bool]:
        """Whether the step recorded its own success; None if nobody records.

        Asked when a step's container exits: where the exit code and the
        record disagree (a step that called `sys.exit(0)` before returning),
        the record wins.
        """
        return None

    def attempt_ended(self, step_name: str, attempt: int, ended: ContainerExit,
                      state: StepState) -> None:
        """A container ended; `state` is the step's state in the scheduler after it."""

    def run_interrupted(self) -> None:
        """The client was interrupted; everything has been stopped and removed."""

    def run_crashed(self, reason: str) -> None:
        """The run could not go on (`reason`); everything has been stopped and removed."""

    def run_ended(self, scheduler: DagScheduler) -> None:
        """Every step reached a final state."""

    def run_reference(self) -> str:
        """How a user names this run to `python -m orchestrator.status`."""
        return "latest"


@contextlib.contextmanager
def _terminate_as_interrupt():
    """Treat SIGTERM and SIGHUP like Ctrl-C while the run loop runs.

    By default they end Python at once, with no `finally`, which would leave
    the run's containers running. Signals can only be handled in the main
    thread; elsewhere (e.g. a run started from a worker thread) this does
    nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _interrupt(signum, frame):
        raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class DagRunner:
    """Executes one `RunPlan` against one Docker engine."""

    def __init__(self, client: docker.DockerClient, plan: RunPlan,
                 hooks: Optional[RunHooks] = None) -> None:
        self.client = client
        self.plan = plan
        self.hooks = hooks or RunHooks()
        self.scheduler = DagScheduler(
            plan.upstreams,
            max_parallelism=plan.max_parallelism,
            mode=plan.mode,
            retries=plan.retries,
        )
        self._active: Dict[str, StepContainer] = {}
        self._exits: "queue.Queue[tuple]" = queue.Queue()
        self._stoppers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="my-docker-stop")
        self.failures: List[StepFailure] = []
        self._started_at: Dict[str, float] = {}  # step -> its running attempt's start
        self._timed_out: Dict[str, float] = {}  # step -> the timeout its attempt ran past
        self.stop_reason: Optional[str] = None
        self._drain_deadline: Optional[float] = None

    # -- the loop ---------------------------------------------------------
    def run(self) -> DagScheduler:
        """Run every step to a final state; raise if the run did not succeed.

        Raises:
            StepFailedError: one or more steps failed (names them, with exit
                codes and last log lines).
            RunStoppedError: the run was stopped by a stop request.
            KeyboardInterrupt: the client was interrupted; all of the run's
                containers were stopped and removed first.
        """
        try:
            with _terminate_as_interrupt():
                self._loop()
        except KeyboardInterrupt:
            self._abort("client interrupted")
            raise
        except BaseException as error:
            self._abort(f"the orchestrator failed: {error}", crashed=True)
            raise
        finally:
            self._stoppers.shutdown(wait=True)
            self._remove_leftovers()
        self.hooks.run_ended(self.scheduler)
        return self._result()

    def _loop(self) -> None:
        last_stop_check = last_completion_check = time.monotonic()
        while self._keep_looping():
            now = time.monotonic()
            for step_name in self.scheduler.ready(now):
                self._start(step_name, now)
            self._enforce_timeouts(now)
            try:
                ended = self._exits.get(timeout=self._sleep_time(now))
            except queue.Empty:
                pass
            else:
                self._on_exit(*ended)
            if time.monotonic() - last_completion_check >= COMPLETION_CHECK_SECONDS:
                last_completion_check = time.monotonic()
                self._release_completed_steps()
            if time.monotonic() - last_stop_check >= STOP_CHECK_SECONDS:
                last_stop_check = time.monotonic()
                if self.stop_reason is None and self.hooks.stop_requested():
                    self._request_stop("stop requested for this run")

    def _keep_looping(self) -> bool:
        """Until every step is final and every container has exited.

        Containers of completed steps may still be shutting down (their
        success is seen before their exit); ZenML's teardown inside them
        (log upload) is never cut short, unless it hangs for
        TEARDOWN_TIMEOUT_SECONDS.
        """
        if not self.scheduler.is_finished():
            return True
        if not self._active:
            return False
        now = time.monotonic()
        if self._drain_deadline is None:
            self._drain_deadline = now + TEARDOWN_TIMEOUT_SECONDS
        if now < self._drain_deadline:
            return True
        names = ", ".join(sorted(self._active))
        self.hooks.log(f"Step container(s) of {names} still running "
                       f"{TEARDOWN_TIMEOUT_SECONDS:.0f} s after their step completed: removing them")
        return False

    def _sleep_time(self, now: float) -> float:
        wakeup = self.scheduler.next_wakeup()
        if wakeup is None:
            return POLL_SECONDS
        return min(POLL_SECONDS, max(0.0, wakeup - now))

    def _enforce_timeouts(self, now: float) -> None:
        """Stop every running attempt that has run past its step's timeout."""
        for step_name in list(self._active):
            limit = self.plan.steps[step_name].timeout_seconds
            if limit is None or step_name in self._timed_out:
                continue
            if self.scheduler.state(step_name) != StepState.RUNNING:
                continue  # completed (tearing down) or being stopped already
            if now - self._started_at[step_name] > limit:
                # A step that already recorded its end (it failed, and its
                # container is slow to exit) did not time out: it is only cut short.
                self._timed_out[step_name] = limit
                if self.hooks.recorded_end(step_name):
                    self._timed_out[step_name] = 0.0
                self.hooks.log(f"[{step_name}] ran past its timeout of {limit:g} s: stopping "
                               f"its container (grace {self.plan.grace_seconds} s)")
                self._stop_async(step_name)

    # -- starting and watching ------------------------------------------
    def _start(self, step_name: str, now: float) -> None:
        attempt = self.scheduler.start(step_name, now)
        log_file = StepLogFile(self.plan.log_dir, step_name, attempt)
        try:
            spec = self.plan.spec_for(step_name, attempt)
            container = StepContainer.start(self.client, spec, step_name, attempt)
        except MyDockerError as error:
            # The engine refused this container: a failed attempt of this
            # step, handled by the execution mode like any other failure.
            log_file.write(str(error))
            log_file.close()
            self.hooks.log(f"[{step_name}] could not start: {error}")
            self._exits.put((step_name, attempt,
                             ContainerExit.refused(str(error)), TracebackFolder(), log_file))
            return
        self._active[step_name] = container
        self._started_at[step_name] = time.monotonic()
        retry_note = f", attempt {attempt}" if attempt > 1 else ""
        self.hooks.log(
            f"[{step_name}] started in container {container.short_id}{retry_note}"
        )
        threading.Thread(
            target=self._watch, args=(container, log_file), daemon=True,
            name=f"my-docker-{step_name}",
        ).start()

    def _watch(self, container: StepContainer, log_file: StepLogFile) -> None:
        """Stream one container's output, then report its exit to the loop.

        Every line goes to the attempt's log file; the client's log gets the
        lines with tracebacks folded (see `step_logs`).
        """
        folder = TracebackFolder()
        shown: Deque[str] = collections.deque(maxlen=FAILURE_TAIL_LINES * 4)

        def on_line(line: str) -> None:
            log_file.write(line)
            for visible in folder.feed(line):
                shown.append(visible)
                self.hooks.step_line(container.step_name, visible)

        try:
            container.follow_logs(on_line)
        finally:
            log_file.close()
        ended = container.wait()
        ended = replace(ended, last_lines=tuple(shown))
        self._exits.put((container.step_name, container.attempt, ended, folder, log_file))

    # -- reacting to exits -----------------------------------------------
    def _release_completed_steps(self) -> None:
        """Start downstream steps as soon as ZenML recorded a step's success.

        A step's outputs are stored and its run marked completed about a
        second before its container has finished shutting down; waiting for
        the exit would add that second to every level of the graph.
        """
        running = [name for name in self._active
                   if self.scheduler.state(name) == StepState.RUNNING]
        if not running:
            return
        completed = self.hooks.completed_steps()
        for step_name in running:
            if step_name in completed:
                self.scheduler.succeeded(step_name, time.monotonic())
                self.hooks.log(f"[{step_name}] completed")

    def _on_exit(self, step_name: str, attempt: int, ended: ContainerExit,
                 folder: TracebackFolder, log_file: StepLogFile) -> None:
        container = self._active.pop(step_name, None)
        if container is not None and not self.plan.keep_containers:
            container.remove()
        now = time.monotonic()
        state = self.scheduler.state(step_name)
        if state == StepState.COMPLETED:
            if not ended.succeeded:  # success was recorded; only the shutdown failed
                self.hooks.log(f"[{step_name}] container exited with {ended.describe()} "
                               "after the step had completed")
            return
        succeeded = self._succeeded(step_name, ended)
        limit = self._timed_out.pop(step_name, None)
        if limit and not succeeded:
            ended = replace(ended, error=f"timed out after {limit:g} s ({ended.describe()})")
        if succeeded:
            self.scheduler.succeeded(step_name, now)
            self.hooks.log(f"[{step_name}] completed")
        elif state == StepState.STOPPING:
            self.scheduler.stopped(step_name, now)
            self.hooks.log(f"[{step_name}] stopped ({ended.describe()})")
        elif self.stop_reason is None and ended.error is None and self.hooks.stop_requested():
            # Killed by a stop request from another process: not a failure.
            self._request_stop("stop requested for this run")
            self.scheduler.stopped(step_name, now, self.stop_reason)
            self.hooks.log(f"[{step_name}] stopped ({ended.describe()})")
        else:
            if ended.succeeded:
                ended = replace(ended, exit_code=-1, error=(
                    "its container exited with code 0, but ZenML did not record the step "
                    "as completed (did the step call sys.exit() or os._exit()?)"))
            failure = StepFailure(step_name, attempt, ended, ended.last_lines,
                                  folder.exception,
                                  str(log_file.path) if log_file.path else None)
            self._on_failure(failure, now)
        self.hooks.attempt_ended(step_name, attempt, ended, self.scheduler.state(step_name))

    def _succeeded(self, step_name: str, ended: ContainerExit) -> bool:
        """The step's own record, where there is one; else the exit code."""
        if ended.error is not None:
            return False
        recorded = self.hooks.recorded_success(step_name)
        if recorded is None:
            return ended.succeeded
        if recorded and not ended.succeeded:
            self.hooks.log(f"[{step_name}] container exited with {ended.describe()} "
                           "after the step had completed")
        return recorded

    def _on_failure(self, failure: StepFailure, now: float) -> None:
        step_name, ended = failure.step_name, failure.exit
        outcome = self.scheduler.failed(step_name, now, ended.describe())
        if outcome.retry_at is not None:
            delay = max(0.0, outcome.retry_at - now)
            self.hooks.log(
                f"[{step_name}] attempt {failure.attempts} failed ({ended.describe()}); "
                f"retrying in {delay:.0f}s"
            )
        else:
            self.failures.append(failure)
            self.hooks.log(f"[{step_name}] FAILED: {ended.describe()}")
        for skipped in outcome.skipped:
            self.hooks.log(f"[{skipped}] skipped: {self.scheduler.reason(skipped)}")
        for other in outcome.to_stop:
            self._stop_async(other)

    def _request_stop(self, reason: str) -> None:
        self.stop_reason = reason
        outcome = self.scheduler.request_stop(reason)
        self.hooks.log(f"Stopping the run: {reason}")
        for step_name in outcome.to_stop:
            self._stop_async(step_name)

    def _stop_async(self, step_name: str) -> None:
        container = self._active.get(step_name)
        if container is not None:
            self.hooks.log(f"[{step_name}] stopping container {container.short_id}")
            self._stoppers.submit(container.stop, self.plan.grace_seconds)

    # -- endings -----------------------------------------------------------
    def _abort(self, reason: str, crashed: bool = False) -> None:
        """Interrupted or crashed: stop and remove every container we started."""
        self.stop_reason = self.stop_reason or reason
        try:
            self.scheduler.request_stop(self.stop_reason)
        except Exception:  # noqa: BLE001 - never mask the original error
            pass
        active = list(self._active.values())
        if active:
            self.hooks.log(f"{'Failed' if crashed else 'Interrupted'}: stopping "
                           f"{len(active)} running container(s)")
        for container in active:
            self._stoppers.submit(container.stop, INTERRUPT_GRACE_SECONDS)
        self._stoppers.shutdown(wait=True)
        for container in active:
            container.remove()
        self._active.clear()
        try:
            if crashed:
                self.hooks.run_crashed(reason)
            else:
                self.hooks.run_interrupted()
        except Exception as error:  # noqa: BLE001
            self.hooks.log(f"Could not record the run's end in ZenML: {error}")

    def _remove_leftovers(self) -> None:
        """Remove any container of this run still on the engine (unless kept)."""
        if self.plan.keep_containers or not self.plan.orchestrator_run_id:
            return
        for container in find_containers(
            self.client, orchestrator_run_id=self.plan.orchestrator_run_id
        ):
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass

    def _result(self) -> DagScheduler:
        if self.failures:
            skipped = [s for s in self.scheduler.steps
                       if self.scheduler.state(s) == StepState.SKIPPED]
            message = "\n".join(f.describe() for f in self.failures)
            if skipped:
                message += f"\nSkipped because of the failure: {', '.join(skipped)}"
            message += ("\nEvery step's output: python -m orchestrator.status "
                        f"{self.hooks.run_reference()} --logs")
            raise StepFailedError(message, self.failures)
        if self.stop_reason is not None:
            counts = self.scheduler.counts()
            stopped = [s for s in self.scheduler.steps
                       if self.scheduler.state(s) == StepState.STOPPED]
            never_started = [s for s in stopped if self.scheduler.attempts(s) == 0]
            raise RunStoppedError(
                f"The run was stopped ({self.stop_reason}): "
                f"{counts.get(StepState.COMPLETED, 0)} step(s) completed, "
                f"{len(stopped) - len(never_started)} stopped while running, "
                f"{len(never_started)} never started."
            )
        return self.scheduler
