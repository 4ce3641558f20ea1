"""The check of the runner's loop, `run` (notebook 4), on simulated containers.

The reader's `run` is called with a stand-in for ``self``: a runner whose
containers are simulated (each "runs" until the loop takes its end off the
queue; the last started ends first) and which records what the loop did, so
that the order of starts, how many ran at once, and what happened at a
failure, at a stop asked from outside and at Ctrl-C can be seen exactly. The
other pieces the loop calls (`start_step`, `on_end`, ...) are given here as
the reference does them; no engine is needed.
"""

from __future__ import annotations

import queue
from typing import Any, Callable, Dict, List, Optional

from orchestrator.teaching.check_base import ExerciseCheckError, _Checker

FINAL = ("completed", "failed", "skipped", "stopped")


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
