"""Run a pipeline's steps as containers, in DAG order, in parallel.

The runner joins the pure scheduler (`scheduler.py`) to the container
operations (`containers.py`). It owns the loop a user waits on: start every
step that is ready, stream its output, react when a step reports success or
its container exits (success, failure, retry, fail-fast), and make sure that
whatever happens, including Ctrl-C, no container of the run is left running
or lying around afterwards.

Two things keep a step's cost near the floor of one container per step:

- **early start** (`early_start.py`): a step's container is started while
  its upstream steps still run, warms up (imports, ZenML's preparation) and
  waits at its gate (`gates.py`) until they succeeded. Its timeout counts
  from the gate. A waiting container whose step will not run (skipped,
  stopped, the run interrupted) is removed.
- **the done line**: a step container prints the run's done marker once ZenML
  returned from the step (`step_entrypoint.py`); the runner checks ZenML's
  record once and starts the downstream steps, instead of polling ZenML
  every half second. The poll stays, rarely, as a fallback.

It knows nothing of ZenML: the orchestrator passes it a `RunPlan` (what to
run) and `RunHooks` (how to tell ZenML what happened).
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Union

import docker

from orchestrator.errors import MyDockerError
from orchestrator.running.attempt_output import follow_output, parse_report
from orchestrator.running.containers import ContainerExit, StepContainer
from orchestrator.running.early_start import steps_to_give_up, steps_to_start_early
from orchestrator.running.gates import Gates
from orchestrator.running.labels import STARTED_EARLY_LABEL, find_containers
from orchestrator.running.plan import RunPlan
from orchestrator.running.run_hooks import RunHooks
from orchestrator.running.run_outcome import StepFailure, raise_unless_succeeded
from orchestrator.running.scheduler import DagScheduler, StepState
from orchestrator.running.signals import signals_hurry, terminate_as_interrupt
from orchestrator.running.step_entrypoint import DONE, GATE_ENV, READY
from orchestrator.running.step_logs import StepLogFile, TracebackFolder
from orchestrator.running.step_timing import AttemptTiming, write_timings
from orchestrator.running.verdict import Verdict, judge_attempt

# How often the loop wakes up with nothing to do, to look for stop requests.
POLL_SECONDS = 0.5
# How often to ask ZenML whether someone requested a stop of this run.
STOP_CHECK_SECONDS = 2.0
# How often to ask ZenML which running steps have already recorded success:
# often when steps print no done line, rarely as a fallback when they do.
COMPLETION_CHECK_SECONDS = 0.5
COMPLETION_FALLBACK_SECONDS = 5.0
# Grace before SIGKILL when the user interrupts the client: they are waiting.
INTERRUPT_GRACE_SECONDS = 2
# A step whose success is recorded still runs ZenML's teardown (log upload);
# it is never cut short for that, unless it hangs for this long.
TEARDOWN_TIMEOUT_SECONDS = 300.0
# A container whose done line came (ZenML returned from the step, teardown
# included) only has to leave Python; still there this long after, its
# process lingers (a thread that is not a daemon, a child process) and is stopped.
DONE_EXIT_GRACE_SECONDS = 10.0
# A step's timeout counts once its container is ready; one still loading
# (imports, ZenML's preparation) this long past its timeout times out anyway.
WARM_UP_GRACE_SECONDS = 60.0
# How many levels below a running step containers start early (None: as many
# as max_parallelism allows). Measured on the 6-step chain: all levels at once
# beat one level ahead (benchmarks/README.md).
EARLY_START_DEPTH: Optional[int] = None
# CPU weight of a container waiting at its gate (Docker's default is 1024), so
# that on a busy machine the warm-up of steps that may already run comes
# first; set back to the default when its gate opens. None: no change.
EARLY_CPU_SHARES: Optional[int] = 128
DEFAULT_CPU_SHARES = 1024


@dataclass
class _Exited:
    """A step's container ended, or could not be created (`container` None)."""

    step_name: str
    attempt: int
    container: Optional[StepContainer]
    ended: ContainerExit
    folder: TracebackFolder
    log_file: StepLogFile


@dataclass
class _Done:
    """A step's container printed its done line: ZenML returned from the step."""

    step_name: str
    attempt: int
    container: StepContainer
    report: Optional[Dict[str, Any]]


@dataclass
class _Ready:
    """A step's container finished its warm-up (imports, ZenML's preparation)."""

    step_name: str
    container: StepContainer


@dataclass
class _Early:
    """A container started before its step may run, waiting at its gate."""

    container: StepContainer
    log_file: StepLogFile
    timing: AttemptTiming
    ready_at: Optional[float] = None  # monotonic time its warm-up was done


_Event = Union[_Exited, _Done, _Ready]


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
        self._active: Dict[str, StepContainer] = {}  # step -> its started attempt's container
        self._early: Dict[str, _Early] = {}  # step -> its container waiting at the gate
        self._given_up: Set[int] = set()  # id() of containers removed before their gate
        self._early_refused: Set[str] = set()  # steps the engine refused to start early
        self._gates = Gates(Path(plan.gate_dir)) if plan.gate_dir else None
        self._events: "queue.Queue[_Event]" = queue.Queue()
        self._stoppers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="my-docker-stop")
        self.failures: List[StepFailure] = []
        self.timings: List[AttemptTiming] = []  # every attempt's clock readings
        self._timing: Dict[str, AttemptTiming] = {}  # step -> its running attempt's
        self._started_at: Dict[str, float] = {}  # step -> its running attempt's start
        self._ready_at: Dict[str, float] = {}  # step -> when its container's warm-up was done
        self._timed_out: Dict[str, float] = {}  # step -> the timeout its attempt ran past
        self.stop_reason: Optional[str] = None
        self._drain_deadline: Optional[float] = None
        self._done_at: Dict[str, float] = {}  # step -> when its done line came (monotonic)
        self._lingering: Set[str] = set()  # steps whose container was stopped after its done line
        self._hurrying = False  # a signal came during the cleanup: no grace any more

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
        if self._gates is not None:
            self._gates.keep_alive()
        ended_by: Optional[BaseException] = None
        try:
            with terminate_as_interrupt():
                self._loop()
        except BaseException as error:  # noqa: BLE001 - raised again after the cleanup
            ended_by = error
        # A second Ctrl-C during the cleanup must not cut it short: it hurries it.
        with signals_hurry(self._hurry):
            if isinstance(ended_by, KeyboardInterrupt):
                self._abort("client interrupted")
            elif ended_by is not None:
                self._abort(f"the orchestrator failed: {ended_by}", crashed=True)
            self._stoppers.shutdown(wait=True)
            self._remove_leftovers()
            if self._gates is not None:
                self._gates.remove()
            if self.plan.log_dir is not None:
                write_timings(self.plan.log_dir, self.timings)
        if ended_by is not None:
            raise ended_by
        self.hooks.run_ended(self.scheduler)
        if self._hurrying:  # interrupted while the run ended: cleaned up, then told
            raise KeyboardInterrupt("interrupted while the run ended")
        raise_unless_succeeded(self.scheduler, self.failures, self.stop_reason,
                               self.hooks.run_reference())
        return self.scheduler

    def _loop(self) -> None:
        completion_every = (COMPLETION_FALLBACK_SECONDS if self.plan.done_marker
                            else COMPLETION_CHECK_SECONDS)
        last_stop_check = last_completion_check = time.monotonic()
        while self._keep_looping():
            now = time.monotonic()
            for step_name in self.scheduler.ready(now):
                self._start(step_name, now)
            if self._gates is not None:
                self._start_steps_early()
            self._enforce_timeouts(now)
            self._stop_lingering(now)
            try:
                event = self._events.get(timeout=self._sleep_time(now))
            except queue.Empty:
                pass
            else:
                self._handle(event)
            self._remove_unneeded_early()
            if time.monotonic() - last_completion_check >= completion_every:
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
        self._remove_unneeded_early()
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
        """Stop every running attempt that has run past its step's timeout.

        An attempt's time counts from when its step's work starts: when its
        container is started (for one started early: when its gate opens) or,
        if later, when the container's warm-up is done (its ready line), so
        that neither the wait for upstream steps nor imports slowed down by a
        busy machine count. A container not ready WARM_UP_GRACE_SECONDS past
        its timeout times out too (a hanging import); one that prints no
        ready line (ZenML's own entrypoint) counts from its start.
        """
        for step_name in list(self._active):
            limit = self.plan.steps[step_name].timeout_seconds
            if limit is None or step_name in self._timed_out:
                continue
            if self.scheduler.state(step_name) != StepState.RUNNING:
                continue  # completed (tearing down) or being stopped already
            started = self._started_at[step_name]
            ready = self._ready_at.get(step_name)
            if ready is not None:
                overdue = now - max(started, ready) > limit
            elif self.plan.done_marker:  # it will say when it is ready
                overdue = now - started > limit + WARM_UP_GRACE_SECONDS
            else:
                overdue = now - started > limit
            if overdue:
                # A step that already recorded its end (it failed, and its
                # container is slow to exit) did not time out: it is only cut short.
                self._timed_out[step_name] = limit
                if self.hooks.recorded_end(step_name):
                    self._timed_out[step_name] = 0.0
                self.hooks.log(f"[{step_name}] ran past its timeout of {limit:g} s: stopping "
                               f"its container (grace {self.plan.grace_seconds} s)")
                self._stop_async(step_name)

    def _stop_lingering(self, now: float) -> None:
        """Stop a completed step's container that outlives its done line.

        After the done line ZenML has returned from the step and recorded it;
        the process has only to exit. One that is still there after
        DONE_EXIT_GRACE_SECONDS waits for something of the step's own (a
        thread that is not a daemon): the run does not wait for it.
        """
        for step_name, done_at in list(self._done_at.items()):
            container = self._active.get(step_name)
            if container is None or self.scheduler.state(step_name) != StepState.COMPLETED:
                self._done_at.pop(step_name, None)
                continue
            if now - done_at < DONE_EXIT_GRACE_SECONDS:
                continue
            self._done_at.pop(step_name)
            self._lingering.add(step_name)
            self.hooks.log(f"[{step_name}] its process still runs {DONE_EXIT_GRACE_SECONDS:g} s "
                           "after ZenML recorded the step completed (a thread that is not a "
                           "daemon, or a child process?): stopping its container")
            self._stoppers.submit(container.stop, 0)

    # -- starting and watching ------------------------------------------
    def _start(self, step_name: str, now: float) -> None:
        """Let a ready step run: open its waiting container's gate, or start a fresh one."""
        attempt = self.scheduler.start(step_name, now)
        early = self._early.pop(step_name, None)
        if early is not None and early.timing.attempt == attempt:
            self._open_gate(step_name, early)
            return
        if early is not None:
            self._give_up(step_name, early)
        for other in steps_to_give_up(self.scheduler, set(self._early), self.plan.max_parallelism):
            self.hooks.log(f"[{other}] giving up its early container's slot to '{step_name}'")
            self._give_up(other, self._early.pop(other))
        started = self._launch(step_name, attempt, early=False)
        if started is None:
            return
        container, timing, _ = started
        self._running(step_name, container, timing)
        retry_note = f", attempt {attempt}" if attempt > 1 else ""
        self.hooks.log(f"[{step_name}] started in container {container.short_id}{retry_note}")

    def _open_gate(self, step_name: str, early: _Early) -> None:
        container = early.container
        try:
            self._gates.open(container.name)  # type: ignore[union-attr]
        except OSError as error:  # the gate folder is gone: the step cannot run
            self._running(step_name, container, early.timing)
            self._events.put(_Exited(step_name, early.timing.attempt, container,
                                     ContainerExit.refused(f"could not open its gate: {error}"),
                                     TracebackFolder(), early.log_file))
            return
        early.timing.gate_opened = time.time()
        if early.timing.lowered_cpu:  # off the loop: a slow engine must not delay others
            self._stoppers.submit(container.set_cpu_shares, DEFAULT_CPU_SHARES)
        self._running(step_name, container, early.timing)
        if early.ready_at is not None:
            self._ready_at[step_name] = early.ready_at
        self.hooks.log(f"[{step_name}] started in container {container.short_id} "
                       "(started early, now let through)")

    def _running(self, step_name: str, container: StepContainer, timing: AttemptTiming) -> None:
        self._active[step_name] = container
        self._timing[step_name] = timing
        self._started_at[step_name] = time.monotonic()
        self._ready_at.pop(step_name, None)

    def _start_steps_early(self) -> None:
        """Start the containers of steps whose upstream steps are under way (`early_start`)."""
        chosen = steps_to_start_early(self.scheduler, set(self._early) | self._early_refused,
                                      self.plan.max_parallelism, EARLY_START_DEPTH)
        for step_name in chosen:
            if step_name in self._early_refused:
                continue
            started = self._launch(step_name, 1, early=True)
            if started is None:
                self._early_refused.add(step_name)  # it starts when it is ready instead
                continue
            container, timing, log_file = started
            self._early[step_name] = _Early(container, log_file, timing)
            waiting_for = ", ".join(sorted(self.scheduler.upstreams_of(step_name)))
            self.hooks.log(f"[{step_name}] container {container.short_id} started early: "
                           f"the step waits for {waiting_for}")

    def _launch(self, step_name: str, attempt: int, *, early: bool):
        """Create and start one attempt's container and follow its output.

        Returns:
            (container, timing, log file), or None when the engine refused it (for a
            step that was ready, reported as a failed attempt).
        """
        log_file = StepLogFile(self.plan.log_dir, step_name, attempt)
        timing = AttemptTiming(step=step_name, attempt=attempt, started_early=early,
                               create_called=time.time())
        try:
            spec = self.plan.spec_for(step_name, attempt)
            if early:
                spec.environment[GATE_ENV] = self._gates.gate_of(spec.name)  # type: ignore[union-attr]
                spec.labels[STARTED_EARLY_LABEL] = "true"
                if EARLY_CPU_SHARES and "cpu_shares" not in spec.extra:
                    spec.extra["cpu_shares"] = EARLY_CPU_SHARES
                    timing.lowered_cpu = True
            container = StepContainer.start(self.client, spec, step_name, attempt)
        except MyDockerError as error:
            if early:
                log_file.discard()
                return None
            # The engine refused this container: a failed attempt of this
            # step, handled by the execution mode like any other failure.
            log_file.write(str(error))
            log_file.close()
            self.hooks.log(f"[{step_name}] could not start: {error}")
            self._events.put(_Exited(step_name, attempt, None,
                                     ContainerExit.refused(str(error)), TracebackFolder(), log_file))
            return None
        timing.start_returned = time.time()
        timing.container = spec.name
        self.timings.append(timing)
        threading.Thread(target=self._watch, args=(container, log_file, timing), daemon=True,
                         name=f"my-docker-{step_name}").start()
        return container, timing, log_file

    def _watch(self, container: StepContainer, log_file: StepLogFile,
                timing: AttemptTiming) -> None:
        """Follow one container's output (`attempt_output`), then report its exit to the loop.

        Its marker lines become events: "ready" (its warm-up is done) and
        "done" (ZenML returned from the step).
        """
        def said(words: str) -> None:
            kind, _, report = words.partition(" ")
            if kind == READY:
                self._events.put(_Ready(container.step_name, container))
            elif kind == DONE:
                self._events.put(_Done(container.step_name, container.attempt, container,
                                       parse_report(report)))

        output = follow_output(
            container, log_file, done_marker=self.plan.done_marker, on_marker=said,
            show_line=lambda line: self.hooks.step_line(container.step_name, line))
        ended = container.wait()
        timing.exit_seen = time.time()
        timing.read_docker_times(container.container.attrs)
        ended = replace(ended, last_lines=output.last_lines)
        self._events.put(_Exited(container.step_name, container.attempt, container, ended,
                                 output.folder, log_file))

    # -- reacting to events -----------------------------------------------
    def _handle(self, event: _Event) -> None:
        if isinstance(event, _Ready):
            early = self._early.get(event.step_name)
            if early is not None and early.container is event.container:
                early.ready_at = time.monotonic()
                early.timing.ready_seen = time.time()
            elif self._active.get(event.step_name) is event.container:
                self._ready_at[event.step_name] = time.monotonic()
                timing = self._timing.get(event.step_name)
                if timing is not None:
                    timing.ready_seen = time.time()
            return
        if isinstance(event, _Done):
            self._on_done(event)
            return
        if event.container is not None and id(event.container) in self._given_up:
            return  # removed before its gate opened: it never ran its step
        early = self._early.get(event.step_name)
        if early is not None and early.container is event.container:
            # It ended before its step could run in it (its warm-up crashed, or it
            # thought its orchestrator gone): no attempt of the step. The step
            # gets a fresh container when it may start, not another early one.
            self.hooks.log(f"[{event.step_name}] its early container ended before the step "
                           f"could start ({event.ended.describe()}); it starts afresh when ready")
            self._early_refused.add(event.step_name)
            self._give_up(event.step_name, self._early.pop(event.step_name))
            return
        self._on_exit(event)

    def _on_done(self, event: _Done) -> None:
        """A step's container says ZenML returned from the step: release its downstream steps.

        ZenML's record is asked once, because the record wins: the done line
        only saves the polling.
        """
        step_name = event.step_name
        timing = self._timing.get(step_name)
        if self._active.get(step_name) is not event.container or timing is None:
            return
        timing.done_seen, timing.inside = time.time(), event.report
        if self.scheduler.state(step_name) == StepState.COMPLETED:
            self._done_at[step_name] = time.monotonic()  # the poll saw it first
            return
        if self.scheduler.state(step_name) != StepState.RUNNING:
            return
        if self.hooks.recorded_success(step_name) is False:
            return  # its exit decides, as without a done line
        self.scheduler.succeeded(step_name, time.monotonic())
        timing.success_known = time.time()
        self._done_at[step_name] = time.monotonic()
        self.hooks.log(f"[{step_name}] completed")

    def _release_completed_steps(self) -> None:
        """Start downstream steps as soon as ZenML recorded a step's success.

        A step's outputs are stored and its run marked completed about a
        second before its container has finished shutting down; waiting for
        the exit would add that second to every level of the graph. With done
        lines this poll is only a fallback.
        """
        running = [name for name in self._active
                   if self.scheduler.state(name) == StepState.RUNNING]
        if not running:
            return
        completed = self.hooks.completed_steps()
        for step_name in running:
            if step_name in completed:
                self.scheduler.succeeded(step_name, time.monotonic())
                self._timing[step_name].success_known = time.time()
                self.hooks.log(f"[{step_name}] completed")

    def _on_exit(self, event: _Exited) -> None:
        step_name, attempt, ended = event.step_name, event.attempt, event.ended
        container = self._active.pop(step_name, None)
        if container is not None and not self.plan.keep_containers:
            container.remove()
            if step_name in self._timing:
                self._timing[step_name].removed = time.time()
        now = time.monotonic()
        state = self.scheduler.state(step_name)
        if state == StepState.COMPLETED:
            if step_name in self._lingering:
                self._lingering.discard(step_name)
            elif not ended.succeeded:  # success was recorded; only the shutdown failed
                self.hooks.log(f"[{step_name}] container exited with {ended.describe()} "
                               "after the step had completed")
            return
        judgement = judge_attempt(
            ended, stopping=state == StepState.STOPPING, stop_known=self.stop_reason is not None,
            recorded_success=lambda: self.hooks.recorded_success(step_name),
            stop_requested=self.hooks.stop_requested,
            timed_out_after=self._timed_out.pop(step_name, None))
        ended = judgement.ended
        if judgement.note:
            self.hooks.log(f"[{step_name}] {judgement.note}")
        if judgement.verdict == Verdict.SUCCEEDED:
            self.scheduler.succeeded(step_name, now)
            self.hooks.log(f"[{step_name}] completed")
        elif judgement.verdict == Verdict.STOPPED:
            self.scheduler.stopped(step_name, now)
            self.hooks.log(f"[{step_name}] stopped ({ended.describe()})")
        elif judgement.verdict == Verdict.STOPPED_ELSEWHERE:
            self._request_stop("stop requested for this run")
            self.scheduler.stopped(step_name, now, self.stop_reason)
            self.hooks.log(f"[{step_name}] stopped ({ended.describe()})")
        else:
            log_path = event.log_file.path
            failure = StepFailure(step_name, attempt, ended, ended.last_lines,
                                  event.folder.exception, str(log_path) if log_path else None)
            self._on_failure(failure, now)
        self.hooks.attempt_ended(step_name, attempt, ended, self.scheduler.state(step_name))

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

    # -- containers started early that will not run ----------------------
    def _remove_unneeded_early(self) -> None:
        """Remove the waiting containers of steps that will not run (skipped, stopped)."""
        for step_name in list(self._early):
            if self.scheduler.state(step_name) is not StepState.PENDING:
                self._give_up(step_name, self._early.pop(step_name))

    def _give_up(self, step_name: str, early: _Early) -> None:
        """Remove a container that waits at its gate; its step never ran in it.

        Its log file (warm-up lines only) goes too. Its timing stays, marked
        `given_up` (the timeline draws its warm-up and wait; `read_timings`
        leaves it out by default: it is no attempt of the step).
        """
        self._given_up.add(id(early.container))
        early.log_file.discard()
        early.timing.given_up, early.timing.removed = True, time.time()
        self._stoppers.submit(early.container.remove)

    # -- endings -----------------------------------------------------------
    def _hurry(self, signal_name: str) -> None:
        """Another signal during the cleanup: kill the run's containers now (a signal handler).

        The cleanup goes on as before (records, removal); only the grace
        before SIGKILL is gone. The kill runs in a thread of its own: a
        signal handler must not wait on the engine.
        """
        if self._hurrying:
            return
        self._hurrying = True
        threading.Thread(target=self._kill_all, args=(signal_name,), daemon=True,
                         name="my-docker-hurry").start()

    def _kill_all(self, signal_name: str) -> None:
        """SIGKILL every container of this run still running (by label)."""
        self.hooks.log(f"{signal_name} again: killing the run's containers without waiting "
                       "(the cleanup goes on)")
        containers = [container.container for container in list(self._active.values())]
        if self.plan.orchestrator_run_id:
            try:
                containers += find_containers(
                    self.client, orchestrator_run_id=self.plan.orchestrator_run_id)
            except docker.errors.DockerException:
                pass
        for container in containers:
            try:
                container.kill()
            except docker.errors.DockerException:
                pass  # exited, removed, or never started

    def _abort(self, reason: str, crashed: bool = False) -> None:
        """Interrupted or crashed: stop and remove every container we started."""
        self.stop_reason = self.stop_reason or reason
        try:
            self.scheduler.request_stop(self.stop_reason)
        except Exception:  # noqa: BLE001 - never mask the original error
            pass
        if not crashed:
            self.hooks.run_stopping()
        active = list(self._active.values())
        waiting = [early.container for early in self._early.values()]
        self._early.clear()
        if active or waiting:
            self.hooks.log(f"{'Failed' if crashed else 'Interrupted'}: stopping "
                           f"{len(active)} running container(s)"
                           + (f", removing {len(waiting)} waiting one(s)" if waiting else ""))
        for container in active:
            self._stoppers.submit(container.stop, 0 if self._hurrying else INTERRUPT_GRACE_SECONDS)
        for container in waiting:
            self._stoppers.submit(container.remove)
        self._stoppers.shutdown(wait=True)
        for container in active:
            container.remove()
        self._active.clear()
        self.hooks.run_aborted(crashed=crashed, reason=reason)

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
