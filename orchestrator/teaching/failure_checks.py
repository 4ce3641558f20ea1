"""The checks of the runner's reactions (notebook 5): retries, an end, a stop, Ctrl-C.

`start_due_retries`, `on_end`, `check_stop_request` and `on_interrupt` are
called with a stand-in runner that holds the steps' states, the retry policy
and the execution mode, and records which steps were started and stopped;
nothing runs on an engine.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any, Callable, Dict, List

from orchestrator.teaching.check_base import _Checker


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
