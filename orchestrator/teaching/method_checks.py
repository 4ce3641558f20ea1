"""Checks of the pieces that are methods: the orchestrator's run id, the runner's loop,
its start of a container and its reaction to each end, stop and Ctrl-C, and the
live `fetch_status` (notebooks 2, 4, 5 and 6).

Each method is called with a stand-in for ``self``: a small object with the
attributes and helper methods the scaffolding's class has, which records
what the method did. The loop's stand-in simulates containers (each "runs"
until the loop takes its end off the queue), so that the order of starts,
how many ran at once and what happened at the end can be seen exactly. The
checks of `start_step` and `follow_step` start real containers on the
engine (of the check's own, removed at the end).
"""

from __future__ import annotations

import os
import queue
import threading
import time
import uuid
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Optional

from orchestrator.teaching.check_base import ExerciseCheckError, _Checker, _removed, variable_kept

FINAL = ("completed", "failed", "skipped", "stopped")


# --------------------------------------------------------------------------
# notebook 2
# --------------------------------------------------------------------------


def check_get_orchestrator_run_id(get_orchestrator_run_id: Callable) -> List[str]:
    from orchestrator.teaching.solutions import RUN_ID_VARIABLE

    c = _Checker("get_orchestrator_run_id")
    with variable_kept(RUN_ID_VARIABLE):
        for value in ("run-1111", "run-2222"):
            os.environ[RUN_ID_VARIABLE] = value
            first = c.call_shown(f"get_orchestrator_run_id(self) with {RUN_ID_VARIABLE}="
                                 f"{value!r}", get_orchestrator_run_id, None)
            second = get_orchestrator_run_id(None)
            c.expect(first == value and second == value,
                     f"returns {RUN_ID_VARIABLE} of the step's environment ({value!r}), the "
                     "same on every call", [first, second],
                     "every step of one run must give ZenML the same id: ZenML finds the run's "
                     "record by it (a new uuid per call makes each step a run of its own)")
        del os.environ[RUN_ID_VARIABLE]
        shown = f"get_orchestrator_run_id(self) with {RUN_ID_VARIABLE} not set"
        try:
            got: Any = get_orchestrator_run_id(None)
        except Exception as error:  # noqa: BLE001 - any clear error is right
            got = None
            c.verified.append(f"outside a step (variable not set): an error "
                              f"({type(error).__name__})")
        else:
            c.fail("outside a step (variable not set): an error, not an id", shown, got,
                   "an id made up on the spot belongs to no run: the step's record would "
                   "go nowhere")
    return c.verified


# --------------------------------------------------------------------------
# notebook 4: the loop
# --------------------------------------------------------------------------


class _SimulatedEnds:
    """The runner's queue of ends, for simulated containers.

    ``get`` ends the running step started LAST (so ends come in another order
    than starts), raising `queue.Empty` once at `quiet_at` (a quiet half
    second) and KeyboardInterrupt at `interrupt_at` (the reader's Ctrl-C).
    """

    def __init__(self, runner: "_LoopRunner", quiet_at: Optional[int],
                 interrupt_at: Optional[int]) -> None:
        self.runner, self.quiet_at, self.interrupt_at = runner, quiet_at, interrupt_at
        self.calls = 0

    def get(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls > 200:
            raise ExerciseCheckError(
                "run: your code fails a check.\n  claim:          the loop ends once nothing "
                "runs and nothing waits\n  yours returned: it asked for an end 200 times\n"
                "  why it matters: a loop that never ends hangs the pipeline call")
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        if self.calls == self.quiet_at or not self.runner.running_order:
            raise queue.Empty
        step = self.runner.running_order.pop()
        attempt = self.runner.attempts[step]
        return step, attempt, self.runner.exit_codes.get(step, 0)

    def put(self, item: Any) -> None:  # pragma: no cover - not used by the loop
        raise AssertionError("the loop takes ends off the queue; it does not put them")


class _LoopRunner:
    """A stand-in for the scaffolding's Runner: simulated containers, everything recorded."""

    def __init__(self, upstreams: Dict[str, List[str]], max_parallelism: int,
                 exit_codes: Optional[Dict[str, int]] = None, quiet_at: Optional[int] = 1,
                 interrupt_at: Optional[int] = None, stop_at_quiet: bool = False) -> None:
        self.upstreams, self.max_parallelism = upstreams, max_parallelism
        self.exit_codes = exit_codes or {}
        self.states = dict.fromkeys(upstreams, "pending")
        self.attempts = dict.fromkeys(upstreams, 0)
        self.retry_at: Dict[str, float] = {}
        self.containers: Dict[str, Any] = {}
        self.stop_requested = False
        self.stop_at_quiet = stop_at_quiet
        self.ended = _SimulatedEnds(self, quiet_at, interrupt_at)
        self.running_order: List[str] = []
        self.started: List[str] = []
        self.peak = 0
        self.early: List[str] = []  # started before an upstream step completed
        self.calls: Dict[str, int] = dict.fromkeys(("start_due_retries", "check_stop_request", "remove_containers", "finish_record", "on_interrupt", "on_end"), 0)
        self.removed_while_running: List[str] = []

    def __repr__(self) -> str:
        return "runner"

    # what the scaffolding gives
    def waiting(self) -> bool:
        return any(state in ("pending", "retrying") for state in self.states.values())

    def raise_if_stuck(self, started: List[str]) -> None:
        if not started and not self.containers and not self.retry_at \
                and "pending" in self.states.values():
            raise RuntimeError(f"nothing runs, and nothing starts: {self.states}")

    def remove_containers(self) -> None:
        self.calls["remove_containers"] += 1
        self.removed_while_running = list(self.containers)
        self.containers.clear()

    def finish_record(self) -> None:
        self.calls["finish_record"] += 1

    # the other pieces (given here as the reference does them)
    def start_step(self, step: str) -> None:
        if self.states[step] != "pending":
            raise ExerciseCheckError(
                f"run: your code fails a check.\n  claim:          a step starts only while "
                f"pending\n  yours returned: it started {step!r}, which is "
                f"{self.states[step]}\n  why it matters: each step runs once (use the steps "
                "ready_steps returns)")
        if any(self.states[up] != "completed" for up in self.upstreams[step]):
            self.early.append(step)
        self.attempts[step] += 1
        self.states[step] = "running"
        self.containers[step] = f"<container of {step}>"
        self.running_order.append(step)
        self.started.append(step)
        self.peak = max(self.peak, len(self.containers))

    def start_due_retries(self) -> None:
        self.calls["start_due_retries"] += 1

    def check_stop_request(self, at_most_every: float = 2.0) -> bool:
        self.calls["check_stop_request"] += 1
        if self.stop_at_quiet and not self.stop_requested:
            self.stop_requested = True
            for step, state in self.states.items():
                if state == "pending":
                    self.states[step] = "stopped"
                elif state == "running":
                    self.states[step] = "stopping"
        return self.stop_requested

    def on_end(self, step: str, attempt: int, exit_code: int) -> None:
        self.calls["on_end"] += 1
        self.containers.pop(step, None)
        if self.states[step] == "stopping":
            self.states[step] = "stopped"
        elif exit_code == 0:
            self.states[step] = "completed"
        else:
            self.states[step] = "failed"
            changed = True
            while changed:
                changed = False
                for other, ups in self.upstreams.items():
                    if self.states[other] == "pending" and any(
                            self.states[up] in ("failed", "skipped") for up in ups):
                        self.states[other] = "skipped"
                        changed = True

    def on_interrupt(self) -> None:
        self.calls["on_interrupt"] += 1
        for step, state in self.states.items():
            if state not in FINAL:
                self.states[step] = "stopped"


def _run_loop(c: _Checker, run: Callable, runner: _LoopRunner, shown: str) -> Optional[BaseException]:
    """Call the reader's loop; return what it raised (None if it returned)."""
    c.last_input = shown
    try:
        run(runner)
    except ExerciseCheckError:
        raise
    except BaseException as error:  # noqa: BLE001 - the check looks at what was raised
        return error
    return None


def check_run(run: Callable) -> List[str]:
    c = _Checker("run")
    fan = {"src": [], "b0": ["src"], "b1": ["src"], "b2": ["src"], "join": ["b0", "b1", "b2"]}
    shown = ("run(runner) on src -> b0, b1, b2 -> join, max_parallelism={cap} (simulated "
             "containers: each ends when the loop takes its end off the queue, the last "
             "started first; one quiet half second: queue.Empty){extra}")

    runner = _LoopRunner(fan, 2)
    raised = _run_loop(c, run, runner, shown.format(cap=2, extra=""))
    c.expect(raised is None, "a run where every step succeeds returns (no exception)",
             f"it raised {type(raised).__name__}: {raised}" if raised else None,
             "the pipeline call must return when the run is over; a queue.Empty means only "
             "that no container ended in the last half second: ask again")
    c.expect(all(state == "completed" for state in runner.states.values()),
             "every step completed, each started once", runner.states,
             "the loop goes on until nothing runs and nothing waits")
    c.expect(not runner.early, "no step started before its upstream steps completed",
             runner.early, "a step reads its upstream steps' outputs")
    c.expect(runner.peak == 2, "max_parallelism=2: two branches ran at once, never more",
             f"at most {runner.peak} at once", "start every step ready_steps returns, then "
             "wait for the next end: waiting for each step's end before starting the next "
             "is the one-at-a-time runner of notebook 3")
    c.expect(runner.calls["check_stop_request"] >= 1,
             "when no end came (queue.Empty): check_stop_request, then loop again",
             f"check_stop_request called {runner.calls['check_stop_request']} times",
             "a quiet moment is when a stop asked from another process is noticed (notebook 5)")
    c.expect(runner.calls["start_due_retries"] >= runner.calls["on_end"],
             "each turn starts the due retries too (start_due_retries)",
             f"{runner.calls['start_due_retries']} calls for {runner.calls['on_end']} ends",
             "notebook 5's retries start from there")
    c.expect(runner.calls["remove_containers"] == 1 and runner.calls["finish_record"] == 1,
             "at the end: remove_containers once, then finish_record",
             {k: runner.calls[k] for k in ("remove_containers", "finish_record")},
             "no container stays behind; ZenML's record gets the run's end")

    runner = _LoopRunner(fan, 4)
    _run_loop(c, run, runner, shown.format(cap=4, extra=""))
    c.expect(runner.peak == 3, "max_parallelism=4: the three branches ran at once",
             f"at most {runner.peak} at once", "independent steps start together")

    runner = _LoopRunner(fan, 2, exit_codes={"b1": 1})
    raised = _run_loop(c, run, runner, shown.format(cap=2, extra="; b1 exits with code 1"))
    c.expect(isinstance(raised, RuntimeError) and "b1" in str(raised),
             "a failed step: a RuntimeError that names it, after the run ended",
             f"{type(raised).__name__}: {raised}" if raised else "it returned",
             "the pipeline call must fail when a step failed (ZenML shows the message)")
    c.expect(runner.calls["remove_containers"] == 1 and runner.calls["finish_record"] == 1,
             "a failed run too: remove_containers, finish_record",
             {k: runner.calls[k] for k in ("remove_containers", "finish_record")},
             "the record must say the run failed")

    runner = _LoopRunner(fan, 2, quiet_at=None, interrupt_at=2)
    raised = _run_loop(c, run, runner, shown.format(
        cap=2, extra="; Ctrl-C (KeyboardInterrupt) while waiting for the second end"))
    c.expect(isinstance(raised, KeyboardInterrupt), "Ctrl-C goes on up (raise it again)",
             f"{type(raised).__name__}: {raised}" if raised else "it returned",
             "the reader pressed Ctrl-C to stop everything, the pipeline call included")
    c.expect(runner.calls["on_interrupt"] == 1 and runner.calls["remove_containers"] == 1,
             "Ctrl-C: on_interrupt, and the containers removed (in a `finally`)",
             {k: runner.calls[k] for k in ("on_interrupt", "remove_containers")},
             f"containers still running were {runner.removed_while_running}: without the "
             "cleanup they would run on with nobody waiting for them")

    runner = _LoopRunner(fan, 2, stop_at_quiet=True)
    raised = _run_loop(c, run, runner, shown.format(
        cap=2, extra="; at the quiet moment, check_stop_request says a stop was asked"))
    c.expect(isinstance(raised, RuntimeError),
             "a stopped run: a RuntimeError after the running steps ended",
             f"{type(raised).__name__}: {raised}" if raised else "it returned",
             "a stopped run did not succeed; the pipeline call must not say it did")
    return c.verified


# --------------------------------------------------------------------------
# notebook 4: one container's start, and following it
# --------------------------------------------------------------------------


class _StartRunner:
    """A stand-in Runner for `start_step`, with the real Docker client."""

    def __init__(self, client: Any, kwargs: Dict[str, Any], run_id: str) -> None:
        self.client = client
        self.plans = {"train": SimpleNamespace(kwargs=kwargs, upstream=[], retry=None)}
        self.run_info = SimpleNamespace(pipeline_run_id=run_id, orchestrator_run_id="orch-1",
                                        pipeline_name="check", run_name="check-run")
        self.states = {"train": "pending"}
        self.attempts = {"train": 0}
        self.containers: Dict[str, Any] = {}
        self.ended: "queue.Queue" = queue.Queue()
        self.followed: List[Any] = []
        self.release = threading.Event()

    def follow_step(self, step: str, attempt: int, container: Any) -> None:
        self.followed.append((step, attempt, container.id, threading.current_thread().name))
        self.release.wait(30)  # a container that runs a while


def check_start_step(start_step: Callable, image: str = "") -> List[str]:
    from orchestrator.conformance.image import step_image
    from orchestrator.machine.engine import connect
    from orchestrator.teaching.solutions import ATTEMPT_LABEL, PIPELINE_RUN_ID_LABEL, STEP_LABEL

    c = _Checker("start_step")
    client = connect()
    token = "check-" + uuid.uuid4().hex[:10]
    image = image or step_image(client)
    kwargs = {"image": image, "command": ["sh", "-c", "sleep 20"], "entrypoint": [],
              "detach": True}
    runner = _StartRunner(client, kwargs, token)
    try:
        for attempt in (1, 2):
            runner.release.clear()
            done = threading.Event()
            result: List[Any] = []

            def call(result: List[Any] = result, done: threading.Event = done) -> None:
                try:
                    start_step(runner, "train")
                except BaseException as error:  # noqa: BLE001 - shown below
                    result.append(error)
                done.set()

            threading.Thread(target=call, daemon=True).start()
            shown = (f"start_step(runner, 'train') (attempt {attempt}; the plan's kwargs run "
                     "`sleep 20` detached)")
            returned = done.wait(20)
            c.expect(returned, "returns at once, while the container runs",
                     "it did not return within 20 s", "the loop must go on starting other "
                     "steps: follow the container in a thread (threading.Thread(target="
                     "self.follow_step, ...).start()), do not call follow_step yourself",
                     given=shown)
            runner.release.set()
            if result:
                c.fail("it returns an answer", shown,
                       f"it raised {type(result[0]).__name__}: {result[0]}",
                       "an exception here stops the whole pipeline run")
            container = runner.containers.get("train")
            c.expect(container is not None and runner.states["train"] == "running",
                     "the step's container is in runner.containers, its state 'running'",
                     {"containers": list(runner.containers), "states": runner.states},
                     "the loop counts running containers for its free slots", given=shown)
            labels = client.containers.get(container.id).labels
            c.expect(runner.attempts["train"] == attempt
                     and labels.get(ATTEMPT_LABEL) == str(attempt)
                     and labels.get(STEP_LABEL) == "train"
                     and labels.get(PIPELINE_RUN_ID_LABEL) == token,
                     f"attempt {attempt}: attempts counted, the container carries "
                     "container_labels(run_info, step, attempt)",
                     {"attempts": runner.attempts, "labels": {k: labels.get(k) for k in (
                         STEP_LABEL, ATTEMPT_LABEL, PIPELINE_RUN_ID_LABEL)}},
                     "the labels find a run's containers (stop, cleanup, the panel); the "
                     "attempt tells a retry from the first try", given=shown)
            deadline = time.monotonic() + 10
            while len(runner.followed) < attempt and time.monotonic() < deadline:
                time.sleep(0.05)
            followed = runner.followed[attempt - 1] if len(runner.followed) >= attempt else None
            c.expect(followed is not None and followed[:3] == ("train", attempt, container.id)
                     and followed[3] != threading.current_thread().name,
                     f"follow_step('train', {attempt}, container) runs in a thread of its own",
                     followed, "its end reaches the loop through the queue", given=shown)
            container.remove(force=True)
            runner.states["train"] = "pending"
            runner.containers.clear()
    finally:
        runner.release.set()
        for leftover in client.containers.list(
                all=True, ignore_removed=True,
                filters={"label": f"{PIPELINE_RUN_ID_LABEL}={token}"}):
            try:
                leftover.remove(force=True)
            except Exception:  # noqa: BLE001
                pass
        client.close()
    return c.verified


def check_follow_step(follow_step: Callable, image: str = "") -> List[str]:
    from orchestrator.conformance.image import step_image
    from orchestrator.machine.engine import connect

    c = _Checker("follow_step")
    client = connect()
    token = uuid.uuid4().hex[:10]
    labels = {"io.my-docker.exercise-check": token}
    image = image or step_image(client)
    runner = SimpleNamespace(ended=queue.Queue())
    made = []
    try:
        container = client.containers.run(image, ["sh", "-c", "echo working; exit 3"],
                                          entrypoint=[], detach=True, labels=labels)
        made.append(container)
        shown = "follow_step(runner, 'train', 2, <a started container: echo working; exit 3>)"
        c.call_shown(shown, follow_step, runner, "train", 2, container)
        got = runner.ended.get_nowait() if not runner.ended.empty() else "nothing on the queue"
        c.expect(got == ("train", 2, 3), "puts (step, attempt, exit code) on runner.ended: "
                 "('train', 2, 3)", got, "the loop learns of each end from the queue, and "
                 "the attempt tells which try ended", given=shown)
        c.expect(_removed(client, container.id), "the container is gone after its end "
                 "(follow_container removes it)", "still on the engine",
                 "a run must leave no container behind", given=shown)
        gone = client.containers.run(image, ["sh", "-c", "exit 0"], entrypoint=[],
                                     detach=True, labels=labels)
        made.append(gone)
        gone.remove(force=True)
        shown = "follow_step(runner, 'train', 1, <a container removed under our feet>)"
        c.call_shown(shown, follow_step, runner, "train", 1, gone)
        got = runner.ended.get_nowait() if not runner.ended.empty() else "nothing on the queue"
        c.expect(got == ("train", 1, -1), "a container lost under our feet: ('train', 1, -1) "
                 "on the queue, no exception", got, "an exception would end the thread "
                 "silently, and the loop would wait for that end forever", given=shown)
    finally:
        for made_container in made:
            try:
                made_container.remove(force=True)
            except Exception:  # noqa: BLE001
                pass
        client.close()
    return c.verified


# --------------------------------------------------------------------------
# notebook 5: retries, the reaction to an end, stop, Ctrl-C
# --------------------------------------------------------------------------


class _PolicyRunner:
    """A stand-in Runner for notebook 5's methods: records starts and stops."""

    def __init__(self, upstreams: Dict[str, List[str]], states: Dict[str, str],
                 mode: Any = None, retry: Any = None, max_parallelism: int = 4,
                 stop_asked: bool = False) -> None:
        self.upstreams, self.states = upstreams, dict(states)
        self.mode, self.max_parallelism, self.grace_seconds = mode, max_parallelism, 7
        self.plans = {name: SimpleNamespace(kwargs={}, upstream=ups, retry=retry)
                      for name, ups in upstreams.items()}
        self.containers = {name: f"<container of {name}>" for name, state in states.items()
                           if state in ("running", "stopping")}
        self.retry_at: Dict[str, float] = {}
        self.stop_requested = False
        self._stop_asked = stop_asked
        self.started: List[str] = []
        self.stopped_steps: List[str] = []
        self.stop_all_calls: List[Any] = []
        self.records = 0

    def __repr__(self) -> str:
        return f"<runner: states {self.states}>"

    def start_step(self, step: str) -> None:
        self.started.append(step)
        self.states[step] = "running"
        self.containers[step] = f"<container of {step}>"

    def stop_step(self, step: str) -> None:
        self.stopped_steps.append(step)
        if self.states[step] == "running":
            self.states[step] = "stopping"

    def stop_asked(self, at_most_every: float) -> bool:
        return self._stop_asked

    def check_stop_request(self, at_most_every: float = 2.0) -> bool:
        return self.stop_requested  # on_end's own question: nobody asked here

    def stop_all(self, grace_seconds: int, wait: bool = False) -> None:
        self.stop_all_calls.append((grace_seconds, wait))

    def finish_record(self) -> None:
        self.records += 1


def check_start_due_retries(start_due_retries: Callable) -> List[str]:
    c = _Checker("start_due_retries")
    graph = {"a": [], "b": [], "c": [], "d": []}
    now = time.monotonic()
    runner = _PolicyRunner(graph, {"a": "retrying", "b": "retrying", "c": "running",
                                   "d": "pending"}, max_parallelism=4)
    runner.retry_at = {"a": now - 1, "b": now + 60}
    c.call_shown("start_due_retries(runner): a due a second ago, b due in a minute, "
                 "1 running of 4 slots", start_due_retries, runner)
    c.expect(runner.started == ["a"] and list(runner.retry_at) == ["b"],
             "starts a (its delay is over), not b (a minute to go); a leaves retry_at",
             {"started": runner.started, "retry_at": sorted(runner.retry_at)},
             "the delay is the retry policy's promise: a step retried at once may hit the "
             "same busy service again")
    runner = _PolicyRunner(graph, {"a": "retrying", "b": "retrying", "c": "running",
                                   "d": "running"}, max_parallelism=3)
    runner.retry_at = {"a": now - 2, "b": now - 1}
    c.call_shown("start_due_retries(runner): a and b both due, 2 running of 3 slots",
                 start_due_retries, runner)
    c.expect(runner.started == ["a"] and list(runner.retry_at) == ["b"],
             "one free slot: only a starts; b stays due in retry_at for a later turn",
             {"started": runner.started, "retry_at": sorted(runner.retry_at)},
             "a retry takes a slot like any start: max_parallelism holds for retries too")
    return c.verified


def check_on_end(on_end: Callable) -> List[str]:
    from zenml.config.retry_config import StepRetryConfig
    from zenml.enums import ExecutionMode

    c = _Checker("on_end")
    graph = {"src": [], "slow": ["src"], "bad": ["src"], "after_bad": ["bad"]}
    states = {"src": "completed", "slow": "running", "bad": "running", "after_bad": "pending"}

    runner = _PolicyRunner(graph, states, ExecutionMode.CONTINUE_ON_FAILURE)
    c.call(on_end, runner, "slow", 1, 0)
    c.expect(runner.states["slow"] == "completed" and "slow" not in runner.containers,
             "exit code 0: the step is completed, its container leaves runner.containers",
             {"state": runner.states["slow"], "containers": sorted(runner.containers)},
             "its slot is free again for the next step")

    before = time.monotonic()
    runner = _PolicyRunner(graph, states, ExecutionMode.FAIL_FAST,
                           retry=StepRetryConfig(max_retries=2, delay=30, backoff=2))
    c.call(on_end, runner, "bad", 1, 137)
    due = runner.retry_at.get("bad")
    c.expect(runner.states["bad"] == "retrying" and due is not None
             and before + 29 <= due <= time.monotonic() + 31,
             "attempt 1 of a step with retries left (delay 30 s) fails: 'retrying', due in "
             "retry_delay's 30 s (retry_at, on time.monotonic())",
             {"state": runner.states["bad"], "due in": None if due is None
              else round(due - time.monotonic())},
             "a retry waits its delay; the loop's start_due_retries starts it when due")
    c.expect(runner.stopped_steps == [] and runner.states["after_bad"] == "pending",
             "a failure that will be retried does not apply the execution mode",
             {"stopped": runner.stopped_steps, "after_bad": runner.states["after_bad"]},
             "only the final failure counts: FAIL_FAST must not stop the run for a retry")

    runner = _PolicyRunner(graph, states, ExecutionMode.FAIL_FAST,
                           retry=StepRetryConfig(max_retries=1, delay=0, backoff=1))
    c.call(on_end, runner, "bad", 2, 1)
    c.expect(runner.states["bad"] == "failed" and runner.states["after_bad"] == "skipped"
             and runner.stopped_steps == ["slow"],
             "FAIL_FAST, final failure (no retry left): failed, after_bad skipped, slow "
             "stopped (stop_step)",
             {"states": runner.states, "stopped": runner.stopped_steps},
             "after_failure says what to stop and skip; on_end must do it")

    runner = _PolicyRunner(graph, dict(states, slow="retrying"), ExecutionMode.STOP_ON_FAILURE)
    runner.retry_at = {"slow": time.monotonic() + 60}
    c.call(on_end, runner, "bad", 1, 1)
    c.expect(runner.states["slow"] == "stopped" and not runner.retry_at,
             "STOP_ON_FAILURE: a step waiting for its retry is stopped, retry_at emptied",
             {"slow": runner.states["slow"], "retry_at": sorted(runner.retry_at)},
             "no new attempt starts after a final failure, unless CONTINUE_ON_FAILURE")

    runner = _PolicyRunner(graph, dict(states, bad="stopping"), ExecutionMode.FAIL_FAST)
    c.call(on_end, runner, "bad", 1, 143)
    c.expect(runner.states["bad"] == "stopped" and runner.states["after_bad"] == "pending",
             "a step that was being stopped ends 'stopped', not failed, and nothing is skipped",
             {"bad": runner.states["bad"], "after_bad": runner.states["after_bad"]},
             "we stopped it: its exit code says nothing about the step's code")
    return c.verified


def check_check_stop_request(check_stop_request: Callable) -> List[str]:
    c = _Checker("check_stop_request")
    graph = {"a": [], "b": [], "c": [], "d": []}
    states = {"a": "completed", "b": "running", "c": "retrying", "d": "pending"}
    runner = _PolicyRunner(graph, states, stop_asked=False)
    got = c.call(check_stop_request, runner, 2.0)
    c.expect(got is False and runner.states == states and not runner.stop_all_calls,
             "nobody asked: False, nothing changes", {"returned": got,
                                                      "states": runner.states},
             "the run goes on")
    runner = _PolicyRunner(graph, states, stop_asked=True)
    runner.retry_at = {"c": time.monotonic() + 30}
    got = c.call(check_stop_request, runner, 2.0)
    c.expect(got is True and runner.stop_requested is True,
             "a stop was asked: True, and runner.stop_requested set",
             {"returned": got, "stop_requested": runner.stop_requested},
             "run reports the stopped run at its end")
    c.expect(runner.states == {"a": "completed", "b": "stopping", "c": "stopped",
                               "d": "stopped"} and not runner.retry_at,
             "running -> stopping; pending and retrying -> stopped; retry_at emptied",
             {"states": runner.states, "retry_at": sorted(runner.retry_at)},
             "nothing new may start; what runs ends as its containers are stopped")
    c.expect(runner.stop_all_calls == [(7, False)] or runner.stop_all_calls == [(7,)],
             "the containers are stopped: stop_all(self.grace_seconds) once",
             runner.stop_all_calls, "a stop that never stops the containers leaves the "
             "run going until every step finishes on its own")
    asked_before = list(runner.stop_all_calls)
    got = c.call(check_stop_request, runner, 2.0)
    c.expect(got is True and runner.stop_all_calls == asked_before,
             "asked again after the stop: True, without stopping again",
             {"returned": got, "stop_all calls": len(runner.stop_all_calls)},
             "the loop asks every quiet half second")
    return c.verified


def check_on_interrupt(on_interrupt: Callable) -> List[str]:
    c = _Checker("on_interrupt")
    graph = {"a": [], "b": [], "c": [], "d": []}
    runner = _PolicyRunner(graph, {"a": "completed", "b": "running", "c": "retrying",
                                   "d": "pending"})
    c.call_shown("on_interrupt(runner) with a completed, b running, c retrying, d pending",
                 on_interrupt, runner)
    c.expect(len(runner.stop_all_calls) == 1 and runner.stop_all_calls[0][-1] is True,
             "stops the run's containers and waits for that (stop_all(..., wait=True))",
             runner.stop_all_calls, "Ctrl-C must not leave steps running with nobody "
             "waiting for them")
    c.expect(runner.states == {"a": "completed", "b": "stopped", "c": "stopped",
                               "d": "stopped"},
             "every step not finished is 'stopped'; finished ones keep their state",
             runner.states, "the record must say which steps were cut short")
    c.expect(runner.records == 1, "then finish_record(): ZenML's record of the stop",
             f"finish_record called {runner.records} times",
             "otherwise the dashboard shows the run running forever")
    return c.verified


# --------------------------------------------------------------------------
# notebook 6: who runs the loop, and fetch_status
# --------------------------------------------------------------------------


def _dead_pid() -> int:
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def check_client_is_gone(client_is_gone: Callable) -> List[str]:
    import socket
    import subprocess
    import sys

    from orchestrator.teaching.solutions import CLIENT_HOST_LABEL, CLIENT_PID_LABEL

    c = _Checker("client_is_gone")
    host = socket.gethostname()

    def labels(pid: Any, on: str = host) -> Dict[str, str]:
        return {CLIENT_HOST_LABEL: on, CLIENT_PID_LABEL: str(pid)}

    got = c.call(client_is_gone, labels(os.getpid()))
    c.expect(got is False, "this process (alive): False", got,
             "a live run must not be called failed")
    got = c.call(client_is_gone, labels(_dead_pid()))
    c.expect(got is True, "a process that exited and was reaped: True", got,
             "nobody will start the run's next step: fetch_status says FAILED")
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        import psutil

        while time.monotonic() < deadline and psutil.Process(zombie.pid).status() \
                != psutil.STATUS_ZOMBIE:
            time.sleep(0.05)
        got = c.call(client_is_gone, labels(zombie.pid))
        c.expect(got is True, "a process that exited but was not reaped yet (a zombie): True",
                 got, "a zombie's pid still exists (psutil.pid_exists says True), but it "
                 "runs nothing: ask psutil.Process(pid).status()")
    finally:
        zombie.wait()
    got = c.call(client_is_gone, labels(_dead_pid(), on="another-host.example"))
    c.expect(got is False, "a pid on another machine: False (cannot be told: alive)", got,
             "a pid means nothing on another host; calling a live run failed is worse")
    got = c.call(client_is_gone, {CLIENT_HOST_LABEL: host, CLIENT_PID_LABEL: "not-a-pid"})
    c.expect(got is False, "a pid label that is not a number: False, no exception", got,
             "a container labelled by someone else must not break fetch_status")
    return c.verified


class _Found:
    """A container as docker-py lists it: its labels and its state (data, not a client)."""

    def __init__(self, step: str, status: str, pid: int) -> None:
        import socket

        from orchestrator.teaching.solutions import (
            CLIENT_HOST_LABEL,
            CLIENT_PID_LABEL,
            STEP_LABEL,
        )

        self.labels = {STEP_LABEL: step, CLIENT_HOST_LABEL: socket.gethostname(),
                       CLIENT_PID_LABEL: str(pid)}
        self.status = status

    def __repr__(self) -> str:
        return f"<container of {self.labels} {self.status}>"


def check_fetch_status(fetch_status: Callable) -> List[str]:
    from zenml.enums import ExecutionStatus as S

    c = _Checker("fetch_status")
    run = SimpleNamespace(id="run-1")
    alive, dead = os.getpid(), _dead_pid()

    def orchestrator(recorded_run: Any, recorded_steps: Dict[str, Any],
                     found: List[_Found]) -> Any:
        return SimpleNamespace(recorded=lambda r: (recorded_run, dict(recorded_steps)),
                               run_containers=lambda r: list(found))

    cases = [
        ("a run going on: the record says RUNNING, step b's container runs",
         (S.RUNNING, {"a": S.COMPLETED}, [_Found("b", "running", alive)]),
         (S.RUNNING, {"a": S.COMPLETED, "b": S.RUNNING}),
         "ZenML's record of b comes when b ends; its container says it runs now"),
        ("the process running the loop died: the record still says RUNNING, b's container "
         "exited", (S.RUNNING, {"a": S.COMPLETED}, [_Found("b", "exited", dead)]),
         (S.FAILED, {"a": S.COMPLETED, "b": S.FAILED}),
         "nobody will finish that record: the run is over, failed"),
        ("a stopped run: the record says STOPPING, no container left",
         (S.STOPPING, {"a": S.COMPLETED}, []), (S.STOPPED, {"a": S.COMPLETED}),
         "a status that says RUNNING (or STOPPING) after the run stopped never settles"),
    ]
    for claim, (recorded_run, recorded_steps, found), (status, steps), why in cases:
        me = orchestrator(recorded_run, recorded_steps, found)
        shown = (f"fetch_status(self, run, include_steps=True) where self.recorded(run) = "
                 f"({recorded_run.value}, {recorded_steps}) and self.run_containers(run) = "
                 f"{found}")
        got = c.call_shown(shown, fetch_status, me, run, True)
        c.expect(isinstance(got, tuple) and len(got) == 2 and got[0] == status
                 and got[1] == steps, f"{claim}: {status.value}, steps {steps}", got, why,
                 given=shown)
    me = orchestrator(S.RUNNING, {"a": S.COMPLETED}, [_Found("b", "running", alive)])
    got = c.call_shown("fetch_status(self, run) (include_steps left False)", fetch_status,
                       me, run)
    c.expect(isinstance(got, tuple) and len(got) == 2 and got[1] is None,
             "include_steps=False: (status, None)", got,
             "ZenML asks for the steps only when it needs them")
    return c.verified


METHOD_CHECKS: Dict[str, Callable[..., List[str]]] = {
    "get_orchestrator_run_id": check_get_orchestrator_run_id,
    "run": check_run,
    "start_step": check_start_step,
    "follow_step": check_follow_step,
    "start_due_retries": check_start_due_retries,
    "on_end": check_on_end,
    "check_stop_request": check_check_stop_request,
    "on_interrupt": check_on_interrupt,
    "client_is_gone": check_client_is_gone,
    "fetch_status": check_fetch_status,
}
