"""The run status model: the pure reducer (fast), then the watcher on real runs.

The pure tests feed the reducer hand-written events and event sequences
recorded from the real engine while pipelines ran (tests/data/status_*.json,
written by `python -m orchestrator.status --next --follow --record FILE`).
The integration tests (named test_on_docker_*, so `-k "not on_docker"` keeps
a run Docker-free) run real pipelines on the real engine with a watcher
attached.
"""

import io
import json
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.status.events import (
    AttemptPlaced,
    ContainerEvent,
    LogLine,
    RunEnded,
    WatcherProblem,
    ZenmlFacts,
    ZenmlStepFact,
    events_from_container,
    parse_docker_time,
)
from orchestrator.status.model import RunStatus, StepPhase, run_is_over
from orchestrator.status.reducer import apply, new_run_status, pipeline_order
from orchestrator.status.text import render_text

DATA = Path(__file__).parent / "data"
RUN_ID = "5e6e52c0-3a1f-4bbe-9ee1-ed2c78b7ca3d"
DIAMOND = {
    "load": {"upstream": []},
    "left": {"upstream": ["load"]},
    "right": {"upstream": ["load"], "max_retries": 1},
    "join": {"upstream": ["left", "right"]},
}


def diamond(**kwargs) -> RunStatus:
    return new_run_status(RUN_ID, DIAMOND, run_name="demo-run", pipeline_name="demo", **kwargs)


def ev(action, step, attempt=1, t=100.0, exit_code=None, run_id=RUN_ID, cid=None):
    return ContainerEvent(action, step, attempt, cid or f"{step[:4]:x<4}{attempt:08d}", t,
                          exit_code=exit_code, run_id=run_id)


def feed(status, *events):
    for event in events:
        status = apply(status, event)
    return status


def lifecycle(step, attempt=1, start=100.0, exit_code=0):
    return [ev("create", step, attempt, start), ev("start", step, attempt, start + 0.3),
            ev("die", step, attempt, start + 5.0, exit_code=exit_code)]


def zenml(run_status="running", t=200.0, **steps):
    return ZenmlFacts(run_status, {name: fact if isinstance(fact, ZenmlStepFact)
                                   else ZenmlStepFact(fact) for name, fact in steps.items()},
                      t)


# --------------------------------------------------------------------------
# Reading Docker
# --------------------------------------------------------------------------


RAW_DIE = {
    "status": "die", "id": "25563c90e895c823f5038f", "Type": "container", "Action": "die",
    "Actor": {"ID": "25563c90e895c823f5038f4a663be76437fe302c26855ac6bf1037f1b34b3100",
              "Attributes": {"exitCode": "3", "io.my-docker.attempt": "2",
                             "io.my-docker.managed-by": "my_docker",
                             "io.my-docker.pipeline-run-id": RUN_ID,
                             "io.my-docker.step": "load_numbers", "name": "x"}},
    "scope": "local", "time": 1795917910, "timeNano": 1795917910420319212,
}


def test_docker_event_is_read_with_its_labels_exit_code_and_nanosecond_time():
    event = ContainerEvent.from_docker(RAW_DIE)
    assert event == ContainerEvent("die", "load_numbers", 2, "25563c90e895",
                                   1795917910.420319212, exit_code=3, run_id=RUN_ID)


@pytest.mark.parametrize("change", [
    {"Action": "attach"}, {"Action": "exec_start: sh"}, {"Type": "network"},
    {"Actor": {"ID": "abc", "Attributes": {"name": "someone-elses"}}},
])
def test_docker_events_that_say_nothing_about_a_step_are_ignored(change):
    assert ContainerEvent.from_docker({**RAW_DIE, **change}) is None


def inspect_data(status="exited", exit_code=0, started="2026-11-29T02:05:10.5Z",
                 finished="2026-11-29T02:05:15.25Z", oom=False):
    return {
        "Id": "7a47630a28a3ffff", "Created": "2026-11-29T02:05:10.123456789Z",
        "Config": {"Labels": {"io.my-docker.step": "double_left", "io.my-docker.attempt": "1",
                              "io.my-docker.pipeline-run-id": RUN_ID}},
        "State": {"Status": status, "ExitCode": exit_code, "OOMKilled": oom,
                  "StartedAt": started, "FinishedAt": finished},
    }


def test_an_exited_containers_inspect_data_tells_its_whole_story():
    events = events_from_container(inspect_data(exit_code=2))
    assert [e.action for e in events] == ["create", "start", "die"]
    assert events[-1].exit_code == 2
    assert events[1].time == pytest.approx(parse_docker_time("2026-11-29T02:05:10.5Z"))
    assert all(e.container_id == "7a47630a28a3" and e.run_id == RUN_ID for e in events)


def test_a_created_container_that_never_started_has_no_start():
    data = inspect_data(status="created", started="0001-01-01T00:00:00Z",
                        finished="0001-01-01T00:00:00Z")
    assert [e.action for e in events_from_container(data)] == ["create"]


def test_an_out_of_memory_kill_is_read_from_inspect_data():
    events = events_from_container(inspect_data(exit_code=137, oom=True))
    assert [e.action for e in events] == ["create", "start", "oom", "die"]
    status = feed(diamond(), *[replace(e, step="load") for e in events])
    assert status.step("load").phase == StepPhase.FAILED
    assert "out of memory" in status.step("load").reason


@pytest.mark.parametrize("text, expected", [
    ("2026-11-29T02:05:10Z", 1795917910.0),
    ("2026-11-29T02:05:10.420319212Z", 1795917910.420319212),
    ("2026-11-29T03:05:10.5+01:00", 1795917910.5),
    ("0001-01-01T00:00:00Z", None), ("", None), (None, None), ("yesterday", None),
])
def test_docker_times_are_parsed_to_epoch_seconds(text, expected):
    assert parse_docker_time(text) == (None if expected is None else pytest.approx(expected))


# --------------------------------------------------------------------------
# The model and the reducer
# --------------------------------------------------------------------------


def test_steps_come_in_declaration_order_with_upstream_steps_first():
    assert pipeline_order({"a": [], "c": ["b"], "b": ["a"], "d": []}) == ["a", "b", "c", "d"]
    assert pipeline_order(DIAMOND_UPSTREAMS) == ["load", "left", "right", "join"]


DIAMOND_UPSTREAMS = {name: spec["upstream"] for name, spec in DIAMOND.items()}


def test_before_anything_happens_roots_are_pending_and_the_rest_wait():
    status = diamond()
    assert status.phases == {"load": StepPhase.PENDING, "left": StepPhase.WAITING,
                             "right": StepPhase.WAITING, "join": StepPhase.WAITING}
    assert status.step("join").reason == "waiting for left, right"
    assert status.outcome == "initializing"
    assert status.summary() == "0/4 steps finished: 1 pending, 3 waiting"


def test_a_container_goes_starting_running_completed_and_frees_its_downstreams():
    status = diamond()
    create, start, die = lifecycle("load")
    status = apply(status, create)
    assert status.step("load").phase == StepPhase.STARTING
    status = apply(status, start)
    load = status.step("load")
    assert (load.phase, load.container_id, load.started_at) == (
        StepPhase.RUNNING, create.container_id, start.time)
    assert load.duration(now=start.time + 2) == pytest.approx(2.0)
    assert status.outcome == "running"
    status = apply(status, die)
    load = status.step("load")
    assert (load.phase, load.exit_code) == (StepPhase.COMPLETED, 0)
    assert load.duration() == pytest.approx(4.7)
    assert status.step("left").phase == StepPhase.PENDING
    assert status.step("join").phase == StepPhase.WAITING
    assert status.finished_count == 1


def test_a_failed_step_skips_everything_downstream_at_once():
    status = feed(diamond(), *lifecycle("load"), *lifecycle("left", exit_code=1))
    assert status.step("left").phase == StepPhase.FAILED
    assert status.step("left").reason == "exit code 1"
    assert status.step("join").phase == StepPhase.SKIPPED
    assert status.step("join").reason == "upstream step 'left' failed"
    assert status.step("right").phase == StepPhase.PENDING  # continue_on_failure


def test_in_fail_fast_mode_nothing_new_starts_after_a_failure():
    status = feed(diamond(execution_mode="fail_fast"), *lifecycle("load"),
                  *lifecycle("left", exit_code=1))
    assert status.step("right").phase == StepPhase.SKIPPED


def test_a_failed_attempt_with_retries_left_is_retrying_then_the_next_attempt_counts():
    status = feed(diamond(), *lifecycle("load"), *lifecycle("right", exit_code=1))
    right = status.step("right")
    assert (right.phase, right.attempt) == (StepPhase.RETRYING, 1)
    assert "attempt 1 failed" in right.reason
    assert status.step("join").phase == StepPhase.WAITING
    status = apply(status, ev("create", "right", attempt=2, t=120))
    right = status.step("right")
    assert (right.phase, right.attempt, right.exit_code) == (StepPhase.STARTING, 2, None)
    status = feed(status, *lifecycle("right", attempt=2, start=120, exit_code=1))
    assert status.step("right").phase == StepPhase.FAILED  # max_retries=1: no third try


def test_late_news_of_an_older_attempt_changes_nothing():
    status = feed(diamond(), *lifecycle("load"), *lifecycle("right", exit_code=1),
                  *lifecycle("right", attempt=2, start=120))
    assert apply(status, ev("die", "right", attempt=1, t=130, exit_code=1)) is status
    assert apply(status, LogLine("right", 1, "old", 131)) is status


def test_a_killed_container_is_stopped_and_an_oom_one_failed():
    stopped = feed(diamond(), *lifecycle("load"), ev("create", "left"), ev("start", "left"),
                   ev("kill", "left", t=101), ev("die", "left", t=102, exit_code=143))
    assert stopped.step("left").phase == StepPhase.STOPPED
    assert stopped.step("join").phase == StepPhase.SKIPPED
    oom = feed(diamond(), ev("create", "load"), ev("start", "load"), ev("oom", "load"),
               ev("die", "load", exit_code=137))
    assert oom.step("load").phase == StepPhase.FAILED


def test_a_container_removed_while_running_is_stopped():
    status = feed(diamond(), ev("create", "load"), ev("start", "load"),
                  ev("destroy", "load", t=107))
    load = status.step("load")
    assert (load.phase, load.container_state, load.finished_at) == (
        StepPhase.STOPPED, "removed", 107)


def test_events_of_another_run_are_ignored():
    status = diamond()
    assert apply(status, ev("create", "load", run_id="another-run")) is status


def test_a_step_the_snapshot_did_not_list_is_added_at_the_end():
    status = feed(diamond(), ev("create", "surprise"))
    assert [s.name for s in status.steps][-1] == "surprise"
    assert status.step("surprise").phase == StepPhase.STARTING


def test_each_attempt_keeps_the_node_it_ran_on_and_the_step_names_its_latest():
    """A my_swarm task's node: kept per attempt, first word stays, news of another run ignored."""
    status = feed(diamond(), AttemptPlaced("right", 1, "node-a", 100, run_id=RUN_ID),
                  *lifecycle("right", exit_code=1))
    right = status.step("right")
    assert (right.node, right.phase, right.latest.container_id) == (
        "node-a", StepPhase.RETRYING, "righ00000001")
    assert apply(status, AttemptPlaced("right", 1, "node-b", 106)) is status  # a task never moves
    assert apply(status, AttemptPlaced("right", 2, "node-b", 106, run_id="another-run")) is status
    status = feed(status, ev("create", "right", attempt=2, t=110),
                  AttemptPlaced("right", 2, "node-b", 110.2))
    right = status.step("right")
    assert [(a.number, a.node) for a in right.attempts] == [(1, "node-a"), (2, "node-b")]
    assert (right.node, right.phase) == ("node-b", StepPhase.STARTING)
    assert status.on_nodes and not diamond().on_nodes and status.step("load").node is None


def test_a_node_known_before_any_container_fact_waits_for_zenml_to_say_how_it_went():
    """The node record of a run whose services are gone: the attempt exists, ZenML decides."""
    status = feed(diamond(), AttemptPlaced("load", 1, "node-b", 0.0))
    load = status.step("load")
    assert (load.attempt, load.node, load.container_state, load.phase) == (
        1, "node-b", None, StepPhase.PENDING)
    status = apply(status, zenml("completed", load=ZenmlStepFact("completed", started_at=90,
                                                                finished_at=95)))
    load = status.step("load")
    assert (load.phase, load.duration()) == (StepPhase.COMPLETED, 5.0)


def test_the_last_log_line_is_kept_and_cut_to_a_sane_length():
    status = feed(diamond(), *lifecycle("load")[:2], LogLine("load", 1, "  hello  ", 101),
                  LogLine("load", 1, "   ", 102))
    assert status.step("load").last_line == "hello"
    status = apply(status, LogLine("load", 1, "x" * 1000, 103))
    assert len(status.step("load").last_line) == 240


def test_zenml_decides_cached_steps_which_never_have_a_container():
    status = feed(diamond(), zenml(load="cached"))
    assert status.step("load").phase == StepPhase.CACHED
    assert status.step("left").phase == StepPhase.PENDING


def test_zenmls_final_word_on_the_current_attempt_beats_a_container_still_shutting_down():
    status = feed(diamond(), *lifecycle("load")[:2], zenml(load="completed"))
    load = status.step("load")
    assert (load.phase, load.container_alive) == (StepPhase.COMPLETED, True)
    assert load.duration(now=load.started_at + 3) == pytest.approx(3)  # still ticking


def test_a_new_attempts_container_beats_zenmls_word_on_the_previous_attempt():
    status = feed(diamond(), *lifecycle("load"), *lifecycle("right", exit_code=1),
                  zenml(right=ZenmlStepFact("failed", attempts=1)),
                  ev("create", "right", 2, 120), ev("start", "right", 2, 121))
    assert status.step("right").phase == StepPhase.RUNNING


def test_a_run_seen_only_through_zenml_shows_zenmls_statuses_and_times():
    facts = zenml("completed", load=ZenmlStepFact("completed", 1, 10.0, 12.5),
                  left=ZenmlStepFact("completed", 1, 13.0, 14.0),
                  right=ZenmlStepFact("completed", 2, 13.0, 20.0),
                  join=ZenmlStepFact("completed", 1, 21.0, 22.0))
    status = feed(diamond(), facts)
    assert set(status.phases.values()) == {StepPhase.COMPLETED}
    load = status.step("load")
    assert (load.start_time, load.end_time, load.duration(), load.container_id) == (
        10.0, 12.5, 2.5, None)
    assert status.step("right").zenml_attempts == 2
    assert run_is_over(status)
    status = apply(status, RunEnded(300.0))
    assert status.outcome == "completed"


def test_a_failed_run_that_ended_skips_the_steps_that_never_started():
    status = feed(diamond(execution_mode="stop_on_failure"), *lifecycle("load"),
                  zenml("failed", load="completed"), RunEnded(400))
    assert status.phases == {"load": StepPhase.COMPLETED, "left": StepPhase.SKIPPED,
                             "right": StepPhase.SKIPPED, "join": StepPhase.SKIPPED}
    assert status.step("left").reason == "never started"
    assert status.outcome == "failed"


def test_when_a_run_is_stopped_running_steps_stop_and_the_rest_never_start():
    status = feed(diamond(), *lifecycle("load"), ev("create", "left"), ev("start", "left"),
                  zenml("stopping", load="completed", left="running"))
    assert status.step("right").phase == StepPhase.SKIPPED
    assert status.step("right").reason == "the run was stopped"
    assert status.step("left").phase == StepPhase.RUNNING
    status = feed(status, ev("kill", "left", t=110), ev("die", "left", t=111, exit_code=137),
                  zenml("stopped", load="completed", left="stopped"))
    assert status.step("left").phase == StepPhase.STOPPED
    assert run_is_over(status)
    assert apply(status, RunEnded(112)).outcome == "stopped"


def test_a_container_that_exits_because_the_run_was_stopped_before_its_step_began_is_stopped():
    """ZenML refuses to begin a step of a stopped run, so a container that was
    starting exits 1 on its own (no kill): the step was stopped, not failed,
    until ZenML itself records a failure of that attempt."""
    status = feed(diamond(), *lifecycle("load"), *lifecycle("left", start=110, exit_code=1),
                  zenml("stopped", load="completed"))
    left = status.step("left")
    assert (left.phase, left.reason) == (
        StepPhase.STOPPED, "the run was stopped before the step began (exit code 1)")
    assert status.step("join").reason == "upstream step 'left' stopped"
    ran_and_failed = apply(status, zenml("stopped", load="completed",
                                         left=ZenmlStepFact("failed", attempts=1)))
    assert ran_and_failed.step("left").phase == StepPhase.FAILED
    not_stopped = feed(diamond(), *lifecycle("load"), *lifecycle("left", start=110, exit_code=1))
    assert not_stopped.step("left").phase == StepPhase.FAILED


def test_after_the_end_only_zenml_readings_and_problems_still_count():
    ended = feed(diamond(), *lifecycle("load"), zenml("completed"), RunEnded(400))
    assert apply(ended, ev("create", "left")) is ended
    assert apply(ended, WatcherProblem("boom", 401)).error == "boom"


def test_zenml_calls_a_run_failed_early_but_it_is_over_only_when_nothing_more_can_happen():
    status = feed(diamond(), *lifecycle("load"), *lifecycle("left", exit_code=1),
                  zenml("failed", left="failed"))
    assert status.step("right").phase == StepPhase.PENDING
    assert not run_is_over(status)  # right may still start (continue_on_failure)
    assert run_is_over(status, quiet_for=60)  # ...but not forever
    status = feed(status, ev("create", "right"), ev("start", "right"))
    assert not run_is_over(status)
    assert status.outcome == "running"
    status = feed(status, ev("die", "right", exit_code=1))
    assert not run_is_over(status)  # a retry is coming
    status = feed(status, *lifecycle("right", 2, 130))
    assert run_is_over(status)


def test_a_run_zenml_has_not_finished_is_never_over():
    assert not run_is_over(diamond(), quiet_for=3600)


def test_the_same_facts_applied_twice_change_nothing():
    events = [*lifecycle("load"), LogLine("load", 1, "done", 105),
              zenml("running", load="completed"), *lifecycle("left", start=110)]
    once = feed(diamond(), *events)
    assert feed(once, *events) == once


@settings(max_examples=60, deadline=None)
@given(order=st.permutations(range(4)), exit_code=st.sampled_from([0, 1, 137]))
def test_the_order_in_which_a_containers_events_arrive_does_not_change_the_result(
        order, exit_code):
    events = [ev("create", "left", t=100), ev("start", "left", t=101),
              ev("die", "left", t=105, exit_code=exit_code), LogLine("left", 1, "bye", 104)]
    base = feed(diamond(), *lifecycle("load"))
    expected = feed(base, *events)
    shuffled = feed(base, *[events[i] for i in order])
    left, want = shuffled.step("left"), expected.step("left")
    assert (left.phase, left.exit_code, left.started_at, left.finished_at, left.last_line) == (
        want.phase, want.exit_code, want.started_at, want.finished_at, want.last_line)


def test_unknown_inputs_are_refused_clearly():
    with pytest.raises(TypeError, match="does not know events of type str"):
        apply(diamond(), "start")


def test_asking_for_a_step_that_does_not_exist_names_the_real_ones():
    with pytest.raises(KeyError, match="no step 'nope'.*load"):
        diamond().step("nope")


# --------------------------------------------------------------------------
# Text rendering
# --------------------------------------------------------------------------


def test_the_text_table_has_a_header_progress_and_one_row_per_step_in_order():
    status = feed(diamond(), *lifecycle("load"), LogLine("load", 1, "numbers loaded", 104),
                  ev("create", "left", t=106), ev("start", "left", t=106.5))
    text = render_text(status, now=110.0)
    lines = text.splitlines()
    assert lines[0] == "Run demo-run  (demo): RUNNING"
    assert lines[1].startswith("[######------------------] 1/4 steps finished: "
                               "1 completed, 1 running, 1 pending, 1 waiting")
    assert lines[2].split() == ["STEP", "STATE", "TRY", "CONTAINER", "STARTED", "DURATION",
                                "EXIT", "LAST", "LOG", "LINE"]
    assert [line.split()[0] for line in lines[3:]] == ["load", "left", "right", "join"]
    assert lines[3].split()[1:4] == ["completed", "1", "load00000001"]
    assert "4.7s" in lines[3] and lines[3].endswith("0     numbers loaded")
    assert "3.5s" in lines[4] and "running" in lines[4]
    assert lines[6].endswith("waiting for left, right")


def test_the_text_table_has_a_node_column_only_for_a_run_on_a_swarm():
    status = feed(diamond(), *lifecycle("load"), ev("create", "left", t=106))
    assert "NODE" not in render_text(status)
    placed = feed(status, AttemptPlaced("load", 1, "node-b", 100),
                  AttemptPlaced("left", 1, "node-a", 106))
    lines = render_text(placed, now=110.0).splitlines()
    assert lines[2].split()[:5] == ["STEP", "STATE", "TRY", "CONTAINER", "NODE"]
    assert lines[3].split()[:5] == ["load", "completed", "1", "load00000001", "node-b"]
    assert lines[4].split()[:5] == ["left", "starting", "1", "left00000001", "node-a"]
    assert lines[5].split()[:2] == ["right", "pending"]  # no attempt: an empty cell


def test_the_text_table_can_be_cut_to_a_width_and_coloured():
    status = feed(diamond(), *lifecycle("load"), LogLine("load", 1, "y" * 200, 104))
    text = render_text(status, width=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" in text
    coloured = render_text(status, color=True)
    assert "\x1b[32mcompleted\x1b[0m" in coloured


def test_the_text_timeline_draws_one_bar_per_attempt_where_it_ran():
    from orchestrator.status.text import render_timeline

    assert render_timeline(diamond()) == "(no step has started yet)"
    status = feed(diamond(), ev("create", "load", t=100), ev("start", "load", t=100),
                  ev("die", "load", t=110, exit_code=0),
                  ev("create", "left", t=110), ev("start", "left", t=110),
                  ev("create", "right", t=110), ev("start", "right", t=110),
                  ev("die", "right", t=115, exit_code=1),
                  ev("create", "right", 2, 120), ev("start", "right", 2, 120))
    text = render_timeline(status, now=140.0, width=52)
    rows = dict(line.split(" |", 1) for line in text.splitlines()[:4])
    rows = {name.strip(): bars for name, bars in rows.items()}
    assert rows["load"].startswith("#" * 10) and rows["load"].endswith("#")
    # left runs from 10 s to now (40 s): from a quarter of the 44 columns to the end.
    assert rows["left"].index(">") == 11 and rows["left"].endswith(">")
    # right: attempt 1 failed and was retried (~), attempt 2 runs (>), a gap between.
    assert rows["right"].strip().startswith("~") and "~ " in rows["right"]
    assert rows["right"].rstrip().endswith(">")
    assert rows["join"].strip() == ""
    assert "0 s" in text and "40 s" in text and "# completed" in text
    coloured = render_timeline(status, now=140.0, width=52, color=True)
    assert "\x1b[" in coloured


def test_a_watcher_problem_is_shown_in_the_text():
    status = apply(diamond(), WatcherProblem("could not read ZenML: locked", 1.0))
    assert "! could not read ZenML: locked" in render_text(status)


# --------------------------------------------------------------------------
# Every attempt kept (the timeline), and resource samples
# --------------------------------------------------------------------------


def test_every_attempt_is_kept_with_its_own_times_and_how_it_went():
    status = feed(diamond(), *lifecycle("load"),
                  ev("create", "right", 1, 110), ev("start", "right", 1, 110.5),
                  ev("oom", "right", 1, 114), ev("die", "right", 1, 114, exit_code=137),
                  *lifecycle("right", attempt=2, start=120))
    right = status.step("right")
    assert [a.number for a in right.attempts] == [1, 2]
    first, second = right.attempts
    assert (first.started_at, first.finished_at, first.exit_code, first.oom_killed) == (
        110.5, 114, 137, True)
    assert (second.started_at, second.finished_at, second.exit_code) == (120.3, 125.0, 0)
    # The latest attempt is the step's; an earlier one failed and was retried.
    assert (right.attempt, right.exit_code, right.phase) == (2, 0, StepPhase.COMPLETED)
    assert (second.phase, second.reason) == (right.phase, right.reason)
    assert first.phase == StepPhase.RETRYING and first.reason == "attempt 1: out of memory"


def test_an_attempt_shares_its_steps_phase_while_it_is_the_latest():
    status = feed(diamond(), *lifecycle("load"), *lifecycle("right", exit_code=1))
    (only,) = status.step("right").attempts
    assert (only.phase, only.reason) == (StepPhase.RETRYING, "attempt 1 failed (exit code 1)")
    status = apply(status, ev("create", "right", 2, 120))
    first, second = status.step("right").attempts
    assert (first.phase, first.reason) == (StepPhase.RETRYING, "attempt 1: exit code 1")
    assert second.phase == StepPhase.STARTING == status.step("right").phase


def test_late_news_of_an_older_attempt_goes_to_that_attempt_never_to_the_latest():
    status = feed(diamond(), *lifecycle("load"), ev("create", "right", 1, 110),
                  ev("start", "right", 1, 111), *lifecycle("right", attempt=2, start=120)[:2])
    late = apply(status, ev("die", "right", attempt=1, t=115, exit_code=9))
    right = late.step("right")
    assert (right.attempt, right.exit_code, right.phase) == (2, None, StepPhase.RUNNING)
    assert right.attempts[0].exit_code == 9 and right.attempts[0].finished_at == 115
    # Attached late: attempt 2's container listed before attempt 1's, same result.
    events = [*lifecycle("right", attempt=2, start=120),
              *lifecycle("right", attempt=1, start=100, exit_code=1)]
    either = feed(feed(diamond(), *lifecycle("load")), *events)
    assert [a.number for a in either.step("right").attempts] == [1, 2]
    assert either.step("right").phase == StepPhase.COMPLETED


def test_resource_samples_keep_the_latest_use_and_the_peak_per_attempt():
    from orchestrator.status.events import ResourceSample

    status = feed(diamond(), *lifecycle("load")[:2])
    mib = 1024 * 1024
    for t, used in [(101, 100), (102, 300), (103, 200)]:
        status = apply(status, ResourceSample("load", 1, t, 0.5, used * mib, 384 * mib, 1.0))
    usage = status.step("load").usage
    assert (usage.memory_bytes, usage.peak_memory_bytes, usage.memory_limit) == (
        200 * mib, 300 * mib, 384 * mib)
    assert usage.memory_fraction == pytest.approx(200 / 384)
    assert (usage.cpu_cores, usage.cpu_limit) == (0.5, 1.0)
    older = apply(status, ResourceSample("load", 1, 102.5, 0.1, 999 * mib))
    assert older is status  # an older sample changes nothing
    unknown = apply(status, ResourceSample("load", 7, 104, 0.1, mib))
    assert unknown is status  # a sample of an attempt not seen yet
    assert apply(status, ResourceSample("load", 1, 104, 0.1, mib)).phases == status.phases


def test_zenml_keeps_every_step_run_and_the_earlier_ones_were_retried():
    facts = zenml("completed", right=ZenmlStepFact(
        "completed", 2, 13.0, 20.0, runs=[["failed", 5.0, 9.0], ["completed", 13.0, 20.0]]))
    status = feed(diamond(), facts)
    runs = status.step("right").zenml_runs
    assert [(r.status, r.started_at, r.finished_at) for r in runs] == [
        ("failed", 5.0, 9.0), ("completed", 13.0, 20.0)]
    assert [r.phase for r in runs] == [StepPhase.RETRYING, StepPhase.COMPLETED]
    again = ZenmlFacts.from_json(facts.to_json())  # recordings round-trip
    assert again == facts and apply(status, again) is status


# --------------------------------------------------------------------------
# Recorded runs: real event sequences from the engine
# --------------------------------------------------------------------------


def replay(name):
    """Replay a recording; returns the statuses after every input."""
    data = json.loads((DATA / name).read_text())
    status = new_run_status(data["run_id"], data["steps"], run_name=data["run_name"],
                            pipeline_name=data["pipeline_name"],
                            execution_mode=data["execution_mode"])
    history = [status]
    for item in data["inputs"]:
        (kind, value), = item.items()
        if kind == "docker":
            event = ContainerEvent.from_docker(value)
        elif kind == "container_event":
            event = ContainerEvent(**value)
        elif kind == "zenml":
            event = ZenmlFacts.from_json(value)
        elif kind == "log":
            event = LogLine(**value)
        elif kind == "attempt_placed":
            event = AttemptPlaced(**value)
        else:
            raise AssertionError(f"unknown input kind {kind!r} in {name}")
        if event is not None:
            status = apply(status, event)
            history.append(status)
    if run_is_over(status):
        history.append(apply(status, RunEnded(status.updated_at + 1)))
    return history


def phase_sequence(history, step):
    """The distinct phases a step went through, in order."""
    seen = []
    for status in history:
        phase = status.step(step).phase
        if not seen or seen[-1] != phase:
            seen.append(phase)
    return seen


def assert_never_leaves_a_final_phase(history):
    for step in history[-1].steps:
        sequence = phase_sequence(history, step.name)
        finals = [i for i, p in enumerate(sequence) if p.is_final]
        if finals:
            assert len(sequence) == finals[0] + 1, f"{step.name} left a final phase: {sequence}"


def test_recorded_demo_run_every_step_goes_running_then_completed():
    history = replay("status_demo_pipeline.json")
    final = history[-1]
    assert final.ended and final.outcome == "completed"
    assert [s.name for s in final.steps] == ["load_numbers", "double_left", "double_right",
                                             "total"]
    for step in final.steps:
        assert step.phase == StepPhase.COMPLETED
        assert step.exit_code == 0 and step.container_id and step.duration() > 0
        assert StepPhase.RUNNING in phase_sequence(history, step.name)
    assert phase_sequence(history, "total") == [
        StepPhase.WAITING, StepPhase.PENDING, StepPhase.STARTING, StepPhase.RUNNING,
        StepPhase.COMPLETED]
    assert_never_leaves_a_final_phase(history)


def test_recorded_failing_run_shows_failed_and_skipped():
    history = replay("status_failing_pipeline.json")
    final = history[-1]
    assert final.ended and final.outcome == "failed"
    assert final.phases == {"fail_with": StepPhase.FAILED, "first_value": StepPhase.COMPLETED,
                            "after_failure": StepPhase.SKIPPED,
                            "independent": StepPhase.COMPLETED}
    assert final.step("fail_with").exit_code not in (None, 0)
    assert phase_sequence(history, "after_failure") == [StepPhase.WAITING, StepPhase.SKIPPED]
    assert "fails on purpose" in final.step("fail_with").last_line
    # ZenML called the run failed while 'independent' still had to run:
    assert any(s.zenml_status == "failed" and not run_is_over(s) for s in history)
    assert_never_leaves_a_final_phase(history)


def test_recorded_retried_step_shows_retrying_then_completes_on_attempt_two():
    history = replay("status_retry_pipeline.json")
    final = history[-1]
    assert final.outcome == "completed"
    flaky = final.step("flaky")
    assert (flaky.phase, flaky.attempt, flaky.zenml_attempts) == (StepPhase.COMPLETED, 2, 2)
    assert phase_sequence(history, "flaky")[-5:] == [
        StepPhase.RUNNING, StepPhase.RETRYING, StepPhase.STARTING, StepPhase.RUNNING,
        StepPhase.COMPLETED]
    retrying = next(s for s in history if s.step("flaky").phase == StepPhase.RETRYING)
    assert retrying.step("after").phase == StepPhase.WAITING  # not skipped: a retry comes
    assert final.step("after").phase == StepPhase.COMPLETED
    assert_never_leaves_a_final_phase(history)


# --------------------------------------------------------------------------
# The watcher on real runs (real engine, real ZenML store)
# --------------------------------------------------------------------------


def in_background(target):
    """Run `target()` in a thread; returns (thread, result holder)."""
    result = {}

    def run():
        try:
            result["value"] = target()
        except BaseException as error:  # noqa: BLE001 - reported by the test
            result["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_on_docker_a_watcher_sees_every_step_of_a_run_start_and_complete(project_dir,
                                                                   run_containers):
    from orchestrator.status.next_run import NextRun
    from orchestrator.status.watcher import RunWatcher
    from orchestrator.teaching.examples import demo_pipeline

    changes = []
    finder = NextRun()
    thread, found = in_background(lambda: RunWatcher(
        finder.wait(timeout=300), poll_seconds=0.5, on_change=changes.append,
        events=finder.take_events()).start())
    try:
        run = demo_pipeline(seconds=2.0)
        thread.join(timeout=30)
    finally:
        finder.close()
    assert "value" in found, f"the watcher did not attach: {found.get('error')}"
    watcher = found["value"]
    final = watcher.finish()

    assert final.run_id == str(run.id) and final.ended and final.outcome == "completed"
    assert [s.name for s in final.steps] == ["load_numbers", "double_left", "double_right",
                                             "total"]
    for step in final.steps:
        assert step.phase == StepPhase.COMPLETED, render_text(final)
        assert step.exit_code == 0 and len(step.container_id) == 12, render_text(final)
        assert step.duration() > 0 and step.last_line, render_text(final)
    running_seen = {s.name for status in changes for s in status.steps
                    if s.phase == StepPhase.RUNNING}
    assert running_seen >= {"double_left", "double_right", "total"}, running_seen
    assert watcher.alive_threads == []
    assert run_containers(run.id) == []


def test_on_docker_a_watcher_of_a_failing_run_shows_failed_skipped_and_ends_itself(project_dir):
    from orchestrator.errors import StepFailedError
    from orchestrator.status.cli import follow_in_terminal
    from orchestrator.teaching.examples import failing_pipeline

    printed = io.StringIO()
    thread, result = in_background(lambda: follow_in_terminal(
        None, printed, poll_seconds=0.5, wait_timeout=300))
    with pytest.raises(StepFailedError):
        failing_pipeline()
    returned = time.monotonic()
    thread.join(timeout=60)
    assert "value" in result, (
        f"follow_in_terminal did not end by itself: {result.get('error')}\n{printed.getvalue()}")
    final = result["value"]
    assert time.monotonic() - returned < 30
    assert final.ended and final.outcome == "failed"
    assert final.phases == {"fail_with": StepPhase.FAILED, "first_value": StepPhase.COMPLETED,
                            "after_failure": StepPhase.SKIPPED,
                            "independent": StepPhase.COMPLETED}, render_text(final)
    assert final.step("fail_with").exit_code not in (None, 0)
    text = printed.getvalue()
    assert "fail_with: failed" in text and "after_failure: skipped" in text, text
    assert text.rstrip().endswith(render_text(final).splitlines()[-1])


def test_on_docker_a_finished_run_is_read_from_zenml_without_its_containers(project_dir):
    import docker

    from orchestrator.status.watcher import RunWatcher, read_status
    from orchestrator.zenml_records import resolve_run

    status = read_status("latest")
    assert status.ended and status.outcome in ("completed", "failed")
    assert all(s.phase.is_final for s in status.steps), render_text(status)
    assert all(s.container_id is None for s in status.steps)  # removed after the run
    assert all(s.duration() is not None for s in status.steps
               if s.phase == StepPhase.COMPLETED)

    # No engine at all: the watcher still shows ZenML's record, and says why.
    no_engine = docker.DockerClient(base_url="unix:///nonexistent/docker.sock", version="1.41")
    watcher = RunWatcher(resolve_run("latest"), docker_client=no_engine,
                         poll_seconds=0.2).start()
    assert watcher.wait(timeout=30), "the watcher of a finished run did not end"
    assert "Docker is not available" in watcher.status.error
    assert watcher.status.phases == status.phases
    assert watcher.alive_threads == []


def test_a_store_that_does_not_answer_is_told_as_such_however_deep_the_cause():
    import requests

    from orchestrator.status.cli import _is_unreachable_store

    try:
        try:
            raise requests.exceptions.ConnectionError("Max retries exceeded")
        except requests.exceptions.ConnectionError as cause:
            raise RuntimeError("Error connecting to URL 'http://127.0.0.1:8237'") from cause
    except RuntimeError as wrapped:  # what ZenML's REST store raises
        assert _is_unreachable_store(wrapped)
    assert _is_unreachable_store(ConnectionRefusedError())
    assert not _is_unreachable_store(ValueError("a bug of ours: shown as a traceback"))


def test_on_docker_the_command_line_prints_a_run_and_explains_a_wrong_name(project_dir):
    command = [sys.executable, "-m", "orchestrator.status"]
    shown = subprocess.run(command + ["latest"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("Run ") and "steps finished" in shown.stdout
    assert "STEP" in shown.stdout and "STATE" in shown.stdout
    followed = subprocess.run(command + ["latest", "--follow"], capture_output=True, text=True,
                              timeout=120)
    assert followed.returncode == 0, followed.stderr
    assert "steps finished" in followed.stdout  # a finished run: printed once, returns
    timeline = subprocess.run(command + ["latest", "--timeline"], capture_output=True,
                              text=True, timeout=120)
    assert timeline.returncode == 0, timeline.stderr
    table, _, chart = timeline.stdout.partition("\n\n")
    assert "STEP" in table and "# completed" in chart and "0 s" in chart, timeline.stdout
    assert any(line.split("|", 1)[1].strip() for line in chart.splitlines() if " |" in line)
    wrong = subprocess.run(command + ["no-such-run"], capture_output=True, text=True,
                           timeout=120)
    assert wrong.returncode == 2
    assert "No pipeline run matches 'no-such-run'" in wrong.stderr


def test_a_run_that_ended_before_any_step_started_is_over_at_once_with_its_reason():
    """Refused by the engine before the first step (or stopped at once): ZenML's
    record says failed and no step ever started. One look tells it, with why;
    before, the views said RUNNING until the run had been quiet for a while."""
    reason = "Docker refused the step container of 'a': Minimum memoryswap limit ..."
    facts = ZenmlFacts("failed", {}, 200.0, run_reason=reason)
    status = apply(diamond(), facts)
    assert run_is_over(status, quiet_for=0.0)
    assert status.outcome == "failed" and status.ended_because == reason
    assert all(step.phase == StepPhase.SKIPPED for step in status.steps)
    assert render_text(status).splitlines()[0] == f"Run demo-run  (demo): FAILED ({reason})"
