"""The rules for starting step containers early, and a step's timing phases (pure, no Docker)."""

from orchestrator.running.early_start import steps_to_give_up, steps_to_start_early
from orchestrator.running.scheduler import DagScheduler, RetryPolicy, StepState
from orchestrator.running.step_timing import AttemptTiming, phases

CHAIN = {"a": [], "b": ["a"], "c": ["b"], "d": ["c"]}


def chain(max_parallelism=8, **kwargs):
    return DagScheduler(CHAIN, max_parallelism=max_parallelism, **kwargs)


def test_nothing_starts_early_before_an_upstream_step_runs():
    scheduler = chain()
    assert steps_to_start_early(scheduler, set(), 8) == []


def test_the_levels_below_a_running_step_start_early_breadth_first():
    scheduler = chain()
    scheduler.start("a", 0)
    assert steps_to_start_early(scheduler, set(), 8) == ["b", "c", "d"]
    assert steps_to_start_early(scheduler, set(), 8, depth=1) == ["b"]
    assert steps_to_start_early(scheduler, {"b"}, 8, depth=1) == ["c"]


def test_waiting_containers_count_against_max_parallelism():
    scheduler = chain(max_parallelism=3)
    scheduler.start("a", 0)
    assert steps_to_start_early(scheduler, set(), 3) == ["b", "c"]
    assert steps_to_start_early(scheduler, {"b", "c"}, 3) == []
    assert steps_to_start_early(chain(max_parallelism=1), set(), 1) == []


def test_the_step_needed_soonest_comes_first_across_branches():
    upstreams = {"a": [], "p": [], "a1": ["a"], "a2": ["a1"], "p1": ["p"]}
    scheduler = DagScheduler(upstreams, max_parallelism=4)
    scheduler.start("a", 0)
    scheduler.start("p", 0)
    # Two free slots: both first levels before the second level of either branch.
    assert steps_to_start_early(scheduler, set(), 4) == ["a1", "p1"]


def test_retries_and_steps_below_a_retrying_step_do_not_start_early():
    scheduler = chain(retries={"a": RetryPolicy(max_retries=1, delay=5)})
    scheduler.start("a", 0)
    scheduler.failed("a", 1, "boom")
    assert scheduler.state("a") is StepState.RETRY_WAIT
    assert steps_to_start_early(scheduler, set(), 8) == []


def test_a_stopped_or_failed_run_starts_nothing_early():
    scheduler = chain()
    scheduler.start("a", 0)
    scheduler.request_stop("user")
    assert steps_to_start_early(scheduler, set(), 8) == []
    failing = chain(mode="fail_fast")
    failing.start("a", 0)
    failing.failed("a", 1, "boom")
    assert steps_to_start_early(failing, set(), 8) == []
    assert failing.state("b") is StepState.SKIPPED  # the runner removes b's waiting container


def test_a_step_that_may_start_takes_a_waiting_containers_slot():
    upstreams = {"a": [], "b": ["a"], "c": ["b"], "x": ["a"], "y": ["a"]}
    scheduler = DagScheduler(upstreams, max_parallelism=3)
    scheduler.start("a", 0)
    early = set(steps_to_start_early(scheduler, set(), 3))
    assert early == {"b", "x"}  # breadth first: y waits for a slot
    scheduler.succeeded("a", 1)
    assert scheduler.ready(1) == ["b", "x", "y"]
    for step in ("b", "x"):  # their waiting containers are let through
        scheduler.start(step, 1)
        early.discard(step)
    assert steps_to_give_up(scheduler, early, 3) == []
    early = set(steps_to_start_early(scheduler, early, 3))
    assert early == {"c"}  # the slot a freed: b runs, so c may wait
    scheduler.start("y", 1)  # y needs a fresh container and there is no slot
    assert steps_to_give_up(scheduler, early, 3) == ["c"]


def test_phases_of_an_early_started_attempt():
    timing = AttemptTiming(
        step="b", attempt=1, started_early=True, create_called=100.0, start_returned=100.3,
        gate_opened=105.0, done_seen=106.2, success_known=106.25, exit_seen=106.6,
        removed=106.7, docker_created=100.1, docker_started=100.25, docker_finished=106.5,
        inside={"process_started": 100.26, "python_ready": [100.3, 0.05], "children_cpu": 0.1,
                "stages": [["import zenml", 101.3, 1.0], ["store and snapshot", 102.0, 1.6],
                           ["code", 102.1, 1.65], ["stack and step module", 102.5, 1.9],
                           ["waited for upstream steps", 105.02, 1.91],
                           ["run record and inputs", 105.6, 2.1], ["step function", 105.7, 2.15],
                           ["outputs, publish, teardown", 106.1, 2.3]]})
    found = {p.name: p for p in phases(timing)}
    assert round(found["create + start calls (orchestrator)"].seconds, 3) == 0.3
    assert round(found["Python imports (zenml)"].seconds, 3) == 1.0
    assert round(found["Python imports (zenml)"].cpu, 3) == 0.95
    assert round(found["waiting for upstream steps (early start)"].seconds, 3) == 2.52
    assert round(found["step function"].cpu, 3) == 0.05
    assert round(found["done line -> process exit"].seconds, 3) == 0.4
    assert round(found["removal (orchestrator)"].seconds, 3) == 0.1


def test_phases_of_a_container_that_reported_nothing():
    timing = AttemptTiming(step="a", attempt=1, create_called=1.0, start_returned=1.2,
                           exit_seen=3.0, removed=3.1, docker_finished=2.9)
    names = [p.name for p in phases(timing)]
    assert names == ["create + start calls (orchestrator)", "exit -> seen by orchestrator",
                     "removal (orchestrator)"]


# -- how the status model shows a container that waits at its gate ---------------

def _status_of_chain():
    from orchestrator.status.reducer import new_run_status

    return new_run_status("run", {"a": {"upstream": []}, "b": {"upstream": ["a"]}})


def _event(action, step, container, t, early=False, exit_code=None):
    from orchestrator.status.events import ContainerEvent

    return ContainerEvent(action, step, 1, container, t, exit_code=exit_code, run_id="run",
                          started_early=early)


def test_a_waiting_container_is_starting_not_running():
    from orchestrator.status.model import StepPhase
    from orchestrator.status.reducer import apply

    status = _status_of_chain()
    for event in (_event("create", "a", "aaa", 1), _event("start", "a", "aaa", 2),
                  _event("create", "b", "bbb", 3, early=True),
                  _event("start", "b", "bbb", 4, early=True)):
        status = apply(status, event)
    assert status.step("a").phase is StepPhase.RUNNING
    assert status.step("b").phase is StepPhase.STARTING
    assert status.step("b").reason == "started early, waits for a"
    status = apply(status, _event("die", "a", "aaa", 5, exit_code=0))
    assert status.step("b").phase is StepPhase.RUNNING  # its gate opens now


def test_a_waiting_container_removed_after_its_upstream_failed_is_skipped_not_stopped():
    from orchestrator.status.model import StepPhase
    from orchestrator.status.reducer import apply

    status = _status_of_chain()
    for event in (_event("create", "a", "aaa", 1), _event("start", "a", "aaa", 2),
                  _event("create", "b", "bbb", 3, early=True),
                  _event("start", "b", "bbb", 4, early=True),
                  _event("die", "a", "aaa", 5, exit_code=1),
                  _event("kill", "b", "bbb", 6, early=True),
                  _event("die", "b", "bbb", 6, early=True, exit_code=137),
                  _event("destroy", "b", "bbb", 7, early=True)):
        status = apply(status, event)
    assert status.step("a").phase is StepPhase.FAILED
    assert status.step("b").phase is StepPhase.SKIPPED


def test_a_fresh_container_replaces_a_waiting_one_that_gave_its_slot_up():
    from orchestrator.status.model import StepPhase
    from orchestrator.status.reducer import apply

    status = _status_of_chain()
    for event in (_event("create", "a", "aaa", 1), _event("start", "a", "aaa", 2),
                  _event("create", "b", "old", 3, early=True),
                  _event("start", "b", "old", 4, early=True),
                  _event("die", "a", "aaa", 5, exit_code=0),
                  _event("create", "b", "new", 6), _event("start", "b", "new", 7),
                  _event("die", "b", "old", 8, early=True, exit_code=137),
                  _event("destroy", "b", "old", 9, early=True)):
        status = apply(status, event)
    assert status.step("b").container_id == "new"
    assert status.step("b").phase is StepPhase.RUNNING
