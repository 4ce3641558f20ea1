"""The rule both runners use to decide what an ended attempt was (pure, no Docker)."""

import pytest

from orchestrator.running.containers import ContainerExit
from orchestrator.running.verdict import Verdict, judge_attempt, recorded_outcome


def exit_(code, error=None, oom=False):
    return ContainerExit(exit_code=code, oom_killed=oom, last_lines=(), error=error)


def judge(ended, *, stopping=False, stop_known=False, recorded=None, stop_requested=False,
          timed_out_after=None, what="container"):
    asked = []

    def recorded_success():
        asked.append("record")
        return recorded

    def requested():
        asked.append("stop")
        return stop_requested

    judgement = judge_attempt(ended, stopping=stopping, stop_known=stop_known,
                              recorded_success=recorded_success, stop_requested=requested,
                              timed_out_after=timed_out_after, what=what)
    return judgement, asked


def test_without_a_record_the_exit_code_decides():
    assert judge(exit_(0))[0].verdict == Verdict.SUCCEEDED
    failed, _ = judge(exit_(3))
    assert (failed.verdict, failed.ended.describe()) == (Verdict.FAILED, "exit code 3")


def test_zenmls_record_beats_the_exit_code_both_ways():
    done, _ = judge(exit_(1), recorded=True)
    assert done.verdict == Verdict.SUCCEEDED
    assert done.note == "container exited with exit code 1 after the step had completed"
    sys_exit, _ = judge(exit_(0), recorded=False, what="task")
    assert sys_exit.verdict == Verdict.FAILED
    assert sys_exit.ended.exit_code == -1
    assert sys_exit.ended.error.startswith("its task exited with code 0, but ZenML did not record")


def test_an_error_of_the_runner_is_a_failure_without_asking_zenml():
    refused, asked = judge(exit_(-1, error="the engine refused it"), recorded=True)
    assert refused.verdict == Verdict.FAILED
    assert "record" not in asked


def test_an_attempt_we_were_stopping_is_stopped():
    assert judge(exit_(143), stopping=True)[0].verdict == Verdict.STOPPED


def test_a_stop_requested_elsewhere_is_asked_for_only_when_nothing_else_decided():
    elsewhere, asked = judge(exit_(137), stop_requested=True)
    assert elsewhere.verdict == Verdict.STOPPED_ELSEWHERE
    assert asked == ["record", "stop"]
    _, asked = judge(exit_(0))
    assert asked == ["record"]
    known, asked = judge(exit_(1), stop_known=True, stop_requested=True)
    assert known.verdict == Verdict.FAILED and "stop" not in asked


@pytest.mark.parametrize("stop_requested", [False, True])
def test_a_timeout_is_a_failure_that_says_so_even_while_a_stop_is_requested(stop_requested):
    timed_out, _ = judge(exit_(137), timed_out_after=2.5, stop_requested=stop_requested)
    assert timed_out.verdict == Verdict.FAILED
    assert timed_out.ended.error == "timed out after 2.5 s (exit code 137 (killed))"


def test_a_step_that_completed_before_its_timeout_struck_succeeded():
    assert judge(exit_(137), recorded=True, timed_out_after=2.0)[0].verdict == Verdict.SUCCEEDED


def test_every_status_zenml_counts_as_a_success_is_one_and_no_other():
    """Fault 5 (zenml-io/zenml#3719): a step ZenML found in its cache inside the
    container records CACHED and exits 0; it succeeded, like COMPLETED."""
    from zenml.enums import ExecutionStatus

    for status in ExecutionStatus:
        assert recorded_outcome(status) == status.is_successful, status
        assert recorded_outcome(status.value) == status.is_successful, status


def test_an_attempt_recorded_as_cached_succeeded_whatever_its_exit():
    for code in (0, 1, 137):
        judgement, _ = judge(exit_(code), recorded=recorded_outcome("cached"))
        assert judgement.verdict == Verdict.SUCCEEDED, code
    still_running, _ = judge(exit_(0), recorded=recorded_outcome("running"))
    assert still_running.verdict == Verdict.FAILED
