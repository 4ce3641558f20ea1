"""Tests for the pure scheduling state machine in `orchestrator.running.scheduler`.

Hand-made DAGs pin down each rule; property-based tests drive random DAGs
through a random simulated environment (successes, failures, retries, stops,
passing time) and check the invariants the runner relies on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from orchestrator.running.scheduler import (
    DagScheduler,
    ExecutionMode,
    Outcome,
    RetryPolicy,
    SchedulerError,
    StepState,
)

S = StepState
FINAL = {S.COMPLETED, S.FAILED, S.SKIPPED, S.STOPPED}

DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
FAN = {"src": [], "x": ["src"], "y": ["src"], "z": ["src"], "sink": ["x", "y", "z"]}
CHAIN = {"a": [], "b": ["a"], "c": ["b"]}
TWO_BRANCHES = {"a": [], "b": ["a"], "c": [], "d": ["c"]}


def scheduler(upstreams, parallelism=4, mode=ExecutionMode.CONTINUE_ON_FAILURE, **kw):
    """A scheduler with test-friendly defaults."""
    return DagScheduler(upstreams, max_parallelism=parallelism, mode=mode, **kw)


def run_all_successfully(sched: DagScheduler) -> list[str]:
    """Start every ready step and let it succeed, one at a time; return start order."""
    order = []
    while not sched.is_finished():
        step = sched.ready(0.0)[0]
        sched.start(step, 0.0)
        sched.succeeded(step, 0.0)
        order.append(step)
    return order


# --------------------------------------------------------------------------- enums


def test_execution_mode_values_match_zenml():
    assert [m.value for m in ExecutionMode] == [
        "fail_fast",
        "stop_on_failure",
        "continue_on_failure",
    ]


def test_mode_accepts_plain_strings():
    assert scheduler(CHAIN, mode="fail_fast").mode is ExecutionMode.FAIL_FAST


def test_final_states():
    assert {state for state in StepState if state.is_final} == FINAL


# --------------------------------------------------------------------------- graph


def test_graph_queries_on_diamond():
    sched = scheduler(DIAMOND)
    assert sched.steps == ("a", "b", "c", "d")
    assert sched.upstreams_of("d") == frozenset({"b", "c"})
    assert sched.downstream_of("a") == {"b", "c", "d"}
    assert sched.downstream_of("b") == {"d"}
    assert sched.downstream_of("d") == set()
    assert sched.levels() == [["a"], ["b", "c"], ["d"]]


def test_topological_order_is_stable():
    # "late" is listed first but needs "early"; "free" has no upstreams.
    sched = scheduler({"late": ["early"], "free": [], "early": []})
    assert sched.topological_order() == ["free", "early", "late"]


def test_levels_use_longest_path():
    sched = scheduler({"a": [], "b": ["a"], "c": ["a", "b"], "x": []})
    assert sched.levels() == [["a", "x"], ["b"], ["c"]]


def test_empty_pipeline_is_finished():
    sched = scheduler({})
    assert sched.is_finished()
    assert sched.ready(0.0) == []
    assert sched.levels() == []


# --------------------------------------------------------------------------- validation


def test_scheduler_error_is_a_value_error():
    assert issubclass(SchedulerError, ValueError)


def test_unknown_upstream_is_named():
    with pytest.raises(SchedulerError, match=r"'b'.*\['typo'\].*fix the name"):
        scheduler({"a": [], "b": ["typo"]})


def test_self_dependency_is_rejected():
    with pytest.raises(SchedulerError, match="'a' lists itself"):
        scheduler({"a": ["a"]})


def test_cycle_names_exactly_its_steps():
    # d hangs below the cycle and must not be blamed; e is unrelated.
    upstreams = {"e": [], "a": ["c"], "b": ["a"], "c": ["b"], "d": ["c"]}
    with pytest.raises(SchedulerError) as info:
        scheduler(upstreams)
    message = str(info.value)
    assert "a -> b -> c -> a" in message
    assert "'d'" not in message and "'e'" not in message
    assert "remove one" in message


def test_upstreams_given_as_a_string_are_rejected():
    with pytest.raises(SchedulerError, match=r"write \['a'\]"):
        scheduler({"a": [], "ab": "a"})


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, None])
def test_bad_parallelism(bad):
    with pytest.raises(SchedulerError, match="max_parallelism must be a whole number >= 1"):
        scheduler(CHAIN, parallelism=bad)


def test_unknown_mode_lists_valid_ones():
    with pytest.raises(SchedulerError, match="continue_on_failure"):
        scheduler(CHAIN, mode="yolo")


def test_retries_for_unknown_steps():
    with pytest.raises(SchedulerError, match=r"unknown step\(s\) \['nope'\]"):
        scheduler(CHAIN, retries={"nope": RetryPolicy(max_retries=1)})


@pytest.mark.parametrize(
    "kwargs",
    [{"max_retries": -1}, {"max_retries": 1.5}, {"delay": -1.0}, {"backoff": float("inf")}],
)
def test_bad_retry_policy(kwargs):
    with pytest.raises(SchedulerError):
        RetryPolicy(**kwargs)


def test_retry_delays_back_off():
    policy = RetryPolicy(max_retries=3, delay=2.0, backoff=3.0)
    assert [policy.delay_before_retry(n) for n in (1, 2, 3)] == [2.0, 6.0, 18.0]
    with pytest.raises(SchedulerError):
        policy.delay_before_retry(0)


def test_unknown_step_names_are_loud():
    sched = scheduler(CHAIN)
    for call in (sched.state, sched.attempts, sched.reason, sched.upstreams_of):
        with pytest.raises(SchedulerError, match="unknown step 'zz'"):
            call("zz")


# --------------------------------------------------------------------------- ready/start


def test_chain_runs_one_step_after_the_other():
    sched = scheduler(CHAIN, parallelism=3)
    assert sched.ready(0.0) == ["a"]
    assert sched.start("a", 0.0) == 1
    assert sched.ready(0.0) == []
    sched.succeeded("a", 1.0)
    assert sched.ready(1.0) == ["b"]


def test_ready_is_a_pure_query():
    sched = scheduler(DIAMOND)
    before = sched.snapshot()
    assert sched.ready(0.0) == sched.ready(0.0) == ["a"]
    assert sched.snapshot() == before


def test_fan_out_respects_parallelism_and_fan_in_waits_for_all():
    sched = scheduler(FAN, parallelism=2)
    sched.start("src", 0.0)
    sched.succeeded("src", 0.0)
    assert sched.ready(0.0) == ["x", "y"]
    sched.start("x", 0.0)
    sched.start("y", 0.0)
    assert sched.ready(0.0) == []
    sched.succeeded("x", 1.0)
    assert sched.ready(1.0) == ["z"]
    sched.start("z", 1.0)
    sched.succeeded("y", 2.0)
    sched.succeeded("z", 2.0)
    assert sched.ready(2.0) == ["sink"]


def test_steps_start_as_soon_as_their_upstreams_succeed_not_in_waves():
    sched = scheduler(TWO_BRANCHES, parallelism=2)
    sched.start("a", 0.0)
    sched.start("c", 0.0)
    sched.succeeded("a", 1.0)
    # c is still running, yet b may start now.
    assert sched.ready(1.0) == ["b"]


def test_parallelism_one_runs_in_pipeline_order():
    sched = scheduler(TWO_BRANCHES, parallelism=1)
    assert sched.ready(0.0) == ["a"]
    assert run_all_successfully(sched) == ["a", "b", "c", "d"]


def test_parallelism_one_follows_topological_order_when_listed_out_of_order():
    sched = scheduler({"late": ["early"], "free": [], "early": []}, parallelism=1)
    assert run_all_successfully(sched) == ["free", "early", "late"]


def test_any_eligible_step_may_be_started_not_only_the_first():
    sched = scheduler(TWO_BRANCHES, parallelism=1)
    assert sched.ready(0.0) == ["a"]
    sched.start("c", 0.0)
    assert sched.state("c") is S.RUNNING


def test_starting_a_step_that_is_not_ready_raises():
    sched = scheduler(CHAIN)
    with pytest.raises(SchedulerError, match=r"upstream step\(s\) \['a'\] have not completed"):
        sched.start("b", 0.0)
    sched.start("a", 0.0)
    with pytest.raises(SchedulerError, match="it is running"):
        sched.start("a", 0.0)


def test_starting_beyond_parallelism_raises():
    sched = scheduler(TWO_BRANCHES, parallelism=1)
    sched.start("a", 0.0)
    with pytest.raises(SchedulerError, match="max_parallelism"):
        sched.start("c", 0.0)


@pytest.mark.parametrize("report", ["succeeded", "failed", "stopped"])
def test_reporting_on_a_step_that_is_not_running_raises(report):
    sched = scheduler(CHAIN)
    args = {"succeeded": (0.0,), "failed": (0.0, "x"), "stopped": (0.0,)}[report]
    with pytest.raises(SchedulerError, match="it is pending"):
        getattr(sched, report)("a", *args)


def test_success_is_final():
    sched = scheduler(CHAIN)
    sched.start("a", 0.0)
    sched.succeeded("a", 0.0)
    with pytest.raises(SchedulerError, match="it is completed"):
        sched.failed("a", 0.0, "late")


# --------------------------------------------------------------------------- retries


def test_retries_wait_with_backoff_then_fail_finally():
    sched = scheduler(CHAIN, retries={"a": RetryPolicy(max_retries=2, delay=10, backoff=2)})
    assert sched.max_attempts("a") == 3
    assert sched.start("a", 0.0) == 1
    outcome = sched.failed("a", 5.0, "oom")
    assert outcome == Outcome(retry_at=15.0)
    assert sched.state("a") is S.RETRY_WAIT
    assert sched.reason("a") == "oom"
    assert sched.next_wakeup() == 15.0
    assert sched.ready(14.9) == []
    assert sched.ready(15.0) == ["a"]
    with pytest.raises(SchedulerError, match="retry is due at 15.0"):
        sched.start("a", 14.0)

    assert sched.start("a", 15.0) == 2
    assert sched.failed("a", 20.0, "oom").retry_at == 40.0
    assert sched.start("a", 40.0) == 3
    outcome = sched.failed("a", 41.0, "oom again")
    assert outcome.retry_at is None
    assert outcome.skipped == ("b", "c")
    assert sched.state("a") is S.FAILED
    assert sched.attempts("a") == 3
    assert sched.next_wakeup() is None
    assert sched.is_finished()


def test_backoff_zero_matches_zenml_default():
    # ZenML's StepRetryConfig defaults to backoff=0: only the first retry waits.
    policy = RetryPolicy(max_retries=3, delay=5, backoff=0)
    assert [policy.delay_before_retry(n) for n in (1, 2, 3)] == [5.0, 0.0, 0.0]


def test_retry_then_success_unblocks_downstream():
    sched = scheduler(CHAIN, retries={"a": RetryPolicy(max_retries=1)})
    sched.start("a", 0.0)
    assert sched.failed("a", 1.0, "flaky").retry_at == 1.0
    assert sched.start("a", 1.0) == 2
    sched.succeeded("a", 2.0)
    assert sched.state("a") is S.COMPLETED
    assert sched.reason("a") is None
    assert sched.ready(2.0) == ["b"]


def test_retry_wait_frees_its_slot_for_other_steps():
    sched = scheduler(TWO_BRANCHES, parallelism=1, retries={"a": RetryPolicy(1, delay=5)})
    sched.start("a", 0.0)
    sched.failed("a", 0.0, "flaky")
    assert sched.ready(0.0) == ["c"]
    sched.start("c", 0.0)
    assert sched.ready(5.0) == []  # a is due but the only slot is taken
    sched.succeeded("c", 6.0)
    assert sched.ready(6.0) == ["a"]  # earlier in pipeline order than d


# --------------------------------------------------------------------------- modes


def test_continue_on_failure_skips_only_downstream():
    upstreams = {**DIAMOND, "x": [], "e": ["d"]}
    sched = scheduler(upstreams, mode=ExecutionMode.CONTINUE_ON_FAILURE)
    sched.start("a", 0.0)
    sched.start("x", 0.0)
    sched.succeeded("a", 1.0)
    sched.start("b", 1.0)
    sched.start("c", 1.0)
    outcome = sched.failed("b", 2.0, "boom")
    assert outcome == Outcome(skipped=("d", "e"))
    assert sched.reason("d") == "upstream step 'b' failed"
    assert sched.reason("e") == "upstream step 'b' failed"
    assert sched.state("c") is S.RUNNING and sched.state("x") is S.RUNNING
    sched.succeeded("c", 3.0)
    sched.succeeded("x", 3.0)
    assert sched.is_finished()
    assert sched.snapshot() == {
        "a": S.COMPLETED, "b": S.FAILED, "c": S.COMPLETED, "d": S.SKIPPED,
        "x": S.COMPLETED, "e": S.SKIPPED,
    }
    assert sched.failed_steps() == ["b"]


def test_continue_on_failure_keeps_independent_branch_going():
    sched = scheduler(TWO_BRANCHES, parallelism=2)
    sched.start("a", 0.0)
    sched.failed("a", 0.0, "boom")
    assert sched.ready(0.0) == ["c"]


def test_stop_on_failure_lets_running_steps_finish():
    sched = scheduler(TWO_BRANCHES, mode=ExecutionMode.STOP_ON_FAILURE)
    sched.start("a", 0.0)
    sched.start("c", 0.0)
    outcome = sched.failed("a", 1.0, "boom")
    assert outcome.to_stop == ()
    assert outcome.skipped == ("b", "d")
    assert "'a' failed" in sched.reason("d") and "stop_on_failure" in sched.reason("d")
    assert sched.state("c") is S.RUNNING
    assert sched.ready(1.0) == []
    sched.succeeded("c", 2.0)
    assert sched.is_finished()
    assert sched.counts()[S.COMPLETED] == 1


def test_stop_on_failure_does_not_retry_steps_failing_afterwards():
    retries = {"c": RetryPolicy(max_retries=3)}
    sched = scheduler(TWO_BRANCHES, mode=ExecutionMode.STOP_ON_FAILURE, retries=retries)
    sched.start("a", 0.0)
    sched.start("c", 0.0)
    sched.failed("a", 1.0, "boom")
    assert sched.failed("c", 2.0, "also").retry_at is None
    assert sched.state("c") is S.FAILED
    assert sched.failed_steps() == ["a", "c"]
    assert sched.is_finished()


def test_fail_fast_stops_running_and_skips_the_rest():
    upstreams = {**TWO_BRANCHES, "x": []}
    retries = {"x": RetryPolicy(max_retries=1, delay=100)}
    sched = scheduler(upstreams, mode=ExecutionMode.FAIL_FAST, retries=retries)
    for step in ("a", "c", "x"):
        sched.start(step, 0.0)
    sched.failed("x", 0.0, "flaky")  # x now waits for its retry
    outcome = sched.failed("a", 1.0, "boom")
    assert outcome.to_stop == ("c",)
    assert outcome.skipped == ("b", "d", "x")
    assert sched.state("c") is S.STOPPING
    assert "'a' failed" in sched.reason("c")
    assert "attempt 1 had failed: flaky" in sched.reason("x")
    assert sched.ready(1000.0) == []
    assert sched.next_wakeup() is None
    assert not sched.is_finished()
    sched.stopped("c", 2.0)
    assert sched.state("c") is S.STOPPED
    assert "'a' failed" in sched.reason("c")
    assert sched.is_finished()


def test_fail_fast_step_that_succeeds_while_stopping_counts_as_completed():
    sched = scheduler(TWO_BRANCHES, mode=ExecutionMode.FAIL_FAST)
    sched.start("a", 0.0)
    sched.start("c", 0.0)
    sched.failed("a", 1.0, "boom")
    sched.succeeded("c", 1.5)
    assert sched.state("c") is S.COMPLETED
    assert sched.state("d") is S.SKIPPED
    assert sched.is_finished()


def test_failure_while_stopping_is_final_and_recorded():
    retries = {"c": RetryPolicy(max_retries=5)}
    sched = scheduler(TWO_BRANCHES, mode=ExecutionMode.FAIL_FAST, retries=retries)
    sched.start("a", 0.0)
    sched.start("c", 0.0)
    sched.failed("a", 1.0, "boom")
    assert sched.failed("c", 1.5, "killed").retry_at is None
    assert sched.failed_steps() == ["a", "c"]
    assert sched.is_finished()


# --------------------------------------------------------------------------- stop requests


def test_request_stop_stops_everything_and_blocks_new_starts():
    retries = {"b": RetryPolicy(max_retries=1), "c": RetryPolicy(max_retries=3)}
    sched = scheduler({**DIAMOND, "x": []}, retries=retries)
    sched.start("a", 0.0)
    sched.succeeded("a", 0.0)
    sched.start("b", 0.0)
    sched.start("c", 0.0)
    sched.failed("b", 0.0, "flaky")
    outcome = sched.request_stop("Ctrl-C")
    assert outcome.to_stop == ("c",)
    assert outcome.stopped == ("b", "d", "x")
    assert outcome.skipped == ()
    assert sched.stop_requested
    assert sched.state("d") is S.STOPPED and sched.reason("d") == "Ctrl-C"
    assert sched.ready(100.0) == []
    with pytest.raises(SchedulerError, match="stop was requested"):
        sched.start("x", 0.0)
    assert sched.request_stop("again") == Outcome()
    # A failure now is not retried, even though retries remain.
    assert sched.failed("c", 1.0, "terminated").retry_at is None
    assert sched.state("c") is S.FAILED
    assert sched.is_finished()


def test_stopped_step_keeps_the_stop_reason_unless_given_one():
    sched = scheduler(TWO_BRANCHES)
    sched.start("a", 0.0)
    sched.start("c", 0.0)
    sched.request_stop("user asked")
    sched.stopped("a", 1.0)
    sched.stopped("c", 1.0, "container exited 137")
    assert sched.reason("a") == "user asked"
    assert sched.reason("c") == "container exited 137"
    assert sched.counts()[S.STOPPED] == 4


def test_unrequested_stop_skips_downstream_so_the_run_can_end():
    sched = scheduler(TWO_BRANCHES)
    sched.start("a", 0.0)
    outcome = sched.stopped("a", 1.0)
    assert outcome.skipped == ("b",)
    assert sched.reason("b") == "upstream step 'a' was stopped"
    assert sched.ready(1.0) == ["c"]


# --------------------------------------------------------------------------- reporting


def test_counts_and_snapshot():
    sched = scheduler(DIAMOND)
    sched.start("a", 0.0)
    counts = sched.counts()
    assert set(counts) == set(StepState)
    assert counts[S.RUNNING] == 1 and counts[S.PENDING] == 3
    assert list(sched.snapshot()) == ["a", "b", "c", "d"]


def test_failed_steps_are_in_failure_order():
    sched = scheduler({"a": [], "b": [], "c": []})
    for step in ("a", "b", "c"):
        sched.start(step, 0.0)
    sched.failed("c", 1.0, "x")
    sched.failed("a", 2.0, "y")
    sched.succeeded("b", 3.0)
    assert sched.failed_steps() == ["c", "a"]


# =========================================================================== properties


@dataclass
class Scenario:
    """A random pipeline plus scheduler settings."""

    upstreams: dict[str, set[str]]
    parallelism: int
    mode: ExecutionMode
    retries: dict[str, RetryPolicy]

    def policy(self, step: str) -> RetryPolicy:
        return self.retries.get(step, RetryPolicy())

    def ancestors(self, step: str) -> set[str]:
        """Transitive upstreams, computed independently of the scheduler."""
        result: set[str] = set()
        todo = list(self.upstreams[step])
        while todo:
            up = todo.pop()
            if up not in result:
                result.add(up)
                todo.extend(self.upstreams[up])
        return result

    def build(self) -> DagScheduler:
        return DagScheduler(
            self.upstreams,
            max_parallelism=self.parallelism,
            mode=self.mode,
            retries=self.retries,
        )


retry_policies = st.builds(
    RetryPolicy,
    max_retries=st.integers(0, 2),
    delay=st.sampled_from([0.0, 0.5, 1.0, 3.0]),
    backoff=st.sampled_from([1.0, 2.0]),
)


@st.composite
def scenarios(draw, modes=st.sampled_from(ExecutionMode), parallelism=st.integers(1, 4)):
    """Random acyclic pipelines: upstreams only from earlier steps, order maybe shuffled."""
    n = draw(st.integers(1, 8))
    names = [f"s{i}" for i in range(n)]
    upstreams = {
        name: draw(st.sets(st.sampled_from(names[:i]), max_size=3)) if i else set()
        for i, name in enumerate(names)
    }
    pipeline_order = draw(st.permutations(names)) if draw(st.booleans()) else names
    return Scenario(
        upstreams={name: upstreams[name] for name in pipeline_order},
        parallelism=draw(parallelism),
        mode=draw(modes),
        retries=draw(st.dictionaries(st.sampled_from(names), retry_policies, max_size=n)),
    )


@dataclass
class Trace:
    """What the simulated environment did, for the final checks."""

    starts: list[tuple[str, int]] = field(default_factory=list)
    final_failures: list[str] = field(default_factory=list)
    any_failure: bool = False
    stop_requested: bool = False
    external_stops: set[str] = field(default_factory=set)


def expected_ready(sched: DagScheduler, sc: Scenario, now: float, retry_at, trace) -> list[str]:
    """What `ready` must return, from first principles: eager, pipeline order, slots."""
    halted = trace.stop_requested or (
        sc.mode is not ExecutionMode.CONTINUE_ON_FAILURE and trace.final_failures
    )
    if halted:
        return []
    states = sched.snapshot()
    active = sum(state in (S.RUNNING, S.STOPPING) for state in states.values())
    eligible = [
        step
        for step, state in states.items()
        if (state is S.PENDING and all(states[u] is S.COMPLETED for u in sc.upstreams[step]))
        or (state is S.RETRY_WAIT and retry_at[step] <= now)
    ]
    return eligible[: sc.parallelism - active]


def simulate(
    data, sc: Scenario, *, failures: bool, stops: bool, start_all: bool = False
) -> tuple[DagScheduler, Trace]:
    """Drive a scheduler with a random environment, checking every step's invariants."""
    sched = sc.build()
    trace = Trace()
    retry_at: dict[str, float] = {}
    now = 0.0
    # Some runs fail rarely, some mostly, to reach both kinds of corner.
    fail_weight = data.draw(st.integers(1, 4)) if failures else 0
    stop_round = data.draw(st.none() | st.integers(0, 15)) if stops else None
    for round_number in range(500):
        if sched.is_finished():
            break
        offered = sched.ready(now)
        assert offered == expected_ready(sched, sc, now, retry_at, trace)

        active = [s for s, st_ in sched.snapshot().items() if st_ in (S.RUNNING, S.STOPPING)]
        if start_all:
            to_start = offered
        else:
            to_start = data.draw(
                st.lists(st.sampled_from(offered), unique=True, min_size=0 if active else 1)
                if offered
                else st.just([])
            )
        for step in to_start:
            check_and_start(sched, sc, step, now, trace)

        active = [s for s, st_ in sched.snapshot().items() if st_ in (S.RUNNING, S.STOPPING)]
        progressed = bool(to_start)
        if active and (not progressed or data.draw(st.booleans())):
            step = data.draw(st.sampled_from(active))
            actions = ["succeed"] + ["fail"] * fail_weight + (["stop"] if failures else [])
            if sched.state(step) is S.STOPPING:
                actions.append("stop")
            finish(sched, sc, step, data.draw(st.sampled_from(actions)), now, trace, retry_at)
            progressed = True

        if round_number == stop_round:
            request_stop(sched, trace)
            progressed = True

        if progressed:
            now += data.draw(st.sampled_from([0.0, 0.25, 1.0]))
        else:
            wakeup = sched.next_wakeup()
            assert wakeup is not None and wakeup > now, "nothing can ever happen: deadlock"
            now = wakeup
    else:
        pytest.fail("the run did not finish")
    return sched, trace


def check_and_start(sched, sc: Scenario, step: str, now: float, trace: Trace) -> None:
    """Start `step`, checking it was allowed to start at all."""
    assert not trace.stop_requested
    if sc.mode is not ExecutionMode.CONTINUE_ON_FAILURE:
        assert not trace.final_failures, "started a step after a final failure"
    assert all(sched.state(up) is S.COMPLETED for up in sc.upstreams[step])
    previous = sched.attempts(step)
    attempt = sched.start(step, now)
    assert attempt == previous + 1 <= 1 + sc.policy(step).max_retries
    trace.starts.append((step, attempt))
    active = sum(st_ in (S.RUNNING, S.STOPPING) for st_ in sched.snapshot().values())
    assert active <= sc.parallelism


def finish(sched, sc: Scenario, step: str, action: str, now: float, trace, retry_at) -> None:
    """End one attempt of a running or stopping step and check the consequences."""
    before = sched.snapshot()
    if action == "succeed":
        sched.succeeded(step, now)
        assert sched.state(step) is S.COMPLETED
        return
    if action == "stop":
        if before[step] is S.RUNNING:
            trace.external_stops.add(step)
        sched.stopped(step, now)
        assert sched.state(step) is S.STOPPED
        return

    trace.any_failure = True
    halted = trace.stop_requested or (
        sc.mode is not ExecutionMode.CONTINUE_ON_FAILURE and trace.final_failures
    )
    policy = sc.policy(step)
    outcome = sched.failed(step, now, "boom")
    if before[step] is S.RUNNING and not halted and sched.attempts(step) <= policy.max_retries:
        assert sched.state(step) is S.RETRY_WAIT
        delay = policy.delay * policy.backoff ** (sched.attempts(step) - 1)
        assert outcome == Outcome(retry_at=now + delay)
        retry_at[step] = outcome.retry_at
        event("retry scheduled")
        return

    assert sched.state(step) is S.FAILED and outcome.retry_at is None
    trace.final_failures.append(step)
    which = "first" if len(trace.final_failures) == 1 else "later"
    event(f"final failure, {sc.mode.value}, {which}")
    after = sched.snapshot()
    not_started = [s for s, x in before.items() if x in (S.PENDING, S.RETRY_WAIT)]
    running = [s for s, x in before.items() if x is S.RUNNING and s != step]
    if sc.mode is ExecutionMode.CONTINUE_ON_FAILURE:
        below = [s for s in not_started if step in sc.ancestors(s)]
        assert outcome.skipped == tuple(below)
        assert all(after[s] is S.SKIPPED for s in below)
        assert outcome.to_stop == ()
    else:
        assert outcome.skipped == tuple(not_started)
        assert all(after[s] is S.SKIPPED for s in not_started)
        if sc.mode is ExecutionMode.FAIL_FAST:
            assert outcome.to_stop == tuple(running)
            assert S.RUNNING not in after.values()
        else:
            assert outcome.to_stop == ()
            assert all(after[s] is S.RUNNING for s in running)
    for s in outcome.skipped:
        assert f"'{step}'" in sched.reason(s)


def request_stop(sched: DagScheduler, trace: Trace) -> None:
    """Ask the run to stop and check every step reacted."""
    before = sched.snapshot()
    outcome = sched.request_stop("user stop")
    trace.stop_requested = True
    event(f"stop request, stopping {bool(outcome.to_stop)}")
    assert outcome.to_stop == tuple(s for s, x in before.items() if x is S.RUNNING)
    assert outcome.stopped == tuple(
        s for s, x in before.items() if x in (S.PENDING, S.RETRY_WAIT)
    )
    after = sched.snapshot().values()
    assert not {S.RUNNING, S.PENDING, S.RETRY_WAIT} & set(after)
    assert sched.next_wakeup() is None


def check_final(sched: DagScheduler, sc: Scenario, trace: Trace) -> None:
    """Invariants of every finished run."""
    states = sched.snapshot()
    assert sched.is_finished()
    assert set(states.values()) <= FINAL
    assert sum(sched.counts().values()) == len(sc.upstreams)
    assert sched.failed_steps() == trace.final_failures
    assert sched.ready(10**9) == [] and sched.next_wakeup() is None
    for step, state in states.items():
        attempts = sched.attempts(step)
        assert attempts == sum(1 for s, _ in trace.starts if s == step)
        assert attempts <= 1 + sc.policy(step).max_retries
        if state in (S.COMPLETED, S.FAILED):
            assert attempts >= 1
        else:
            assert sched.reason(step)
        if attempts == 0:
            assert state in (S.SKIPPED, S.STOPPED)
        if state is S.COMPLETED:
            assert all(states[u] is S.COMPLETED for u in sc.upstreams[step])
        if state is S.STOPPED and attempts == 0:
            assert trace.stop_requested
    if not trace.stop_requested:
        # Without a stop request, a step is skipped exactly when something above
        # it failed or was stopped, in any mode with a failure only in CONTINUE.
        for step, state in states.items():
            doomed = any(states[a] in (S.FAILED, S.STOPPED) for a in sc.ancestors(step))
            if sc.mode is ExecutionMode.CONTINUE_ON_FAILURE:
                assert (state is S.SKIPPED) == doomed
            elif doomed:
                assert state is S.SKIPPED
    if not trace.any_failure and not trace.stop_requested and not trace.external_stops:
        assert set(states.values()) == {S.COMPLETED}


PROPERTY = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY
@given(sc=scenarios(), data=st.data())
def test_random_runs_keep_every_invariant(sc, data):
    sched, trace = simulate(data, sc, failures=True, stops=True)
    check_final(sched, sc, trace)


@settings(PROPERTY, max_examples=150)
@given(sc=scenarios(), data=st.data())
def test_random_runs_without_stop_requests(sc, data):
    sched, trace = simulate(data, sc, failures=True, stops=False)
    check_final(sched, sc, trace)


@settings(PROPERTY, max_examples=60)
@given(sc=scenarios(), data=st.data())
def test_runs_without_failures_complete_every_step_once(sc, data):
    sched, trace = simulate(data, sc, failures=False, stops=False)
    check_final(sched, sc, trace)
    assert set(sched.snapshot().values()) == {S.COMPLETED}
    assert sorted(step for step, _ in trace.starts) == sorted(sc.upstreams)


@settings(PROPERTY, max_examples=60)
@given(sc=scenarios(parallelism=st.just(1)), data=st.data())
def test_parallelism_one_runs_in_topological_order(sc, data):
    sched, trace = simulate(data, sc, failures=False, stops=False, start_all=True)
    assert [step for step, _ in trace.starts] == sched.topological_order()


@settings(PROPERTY, max_examples=100)
@given(sc=scenarios())
def test_topological_order_and_levels_respect_dependencies(sc):
    sched = sc.build()
    order = sched.topological_order()
    assert sorted(order) == sorted(sc.upstreams)
    position = {step: i for i, step in enumerate(order)}
    level = {step: i for i, layer in enumerate(sched.levels()) for step in layer}
    for step, ups in sc.upstreams.items():
        assert all(position[u] < position[step] for u in ups)
        assert level[step] == (1 + max(level[u] for u in ups) if ups else 0)
        assert sched.downstream_of(step) == {s for s in sc.upstreams if step in sc.ancestors(s)}
    if list(sc.upstreams) == sorted(sc.upstreams, key=lambda s: int(s[1:])):
        assert order == list(sc.upstreams)  # already a valid order: kept as is
