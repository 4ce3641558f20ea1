"""The same recorded run, read by `fetch_status`, the panel and the text view, gives
every step the same phase at every moment.

The recordings are real event sequences from the engine (tests/data/status_*.json,
written by `python -m orchestrator.status --next --follow --record FILE`): a clean
run, a failing run (skipped steps), a retried step, a stopped run (killed steps,
never-started steps) and a fail-fast run (a step stopped because another failed).
"""

import html
import re

import pytest
from zenml.enums import ExecutionStatus

from orchestrator.status.fetch import PHASE_TO_EXECUTION_STATUS, execution_statuses
from orchestrator.status.model import StepPhase
from orchestrator.status.panel_html import graph_html, table_html
from orchestrator.status.text import render_text
from tests.test_status import replay

RECORDINGS = ["status_demo_pipeline.json", "status_failing_pipeline.json",
              "status_retry_pipeline.json", "status_stopped_pipeline.json",
              "status_fail_fast_pipeline.json"]


def panel_phases(status):
    """Step -> phase, as the panel's table shows them (its rows' data-state)."""
    rows = re.findall(r'<tr data-step="([^"]*)" data-state="([^"]*)"', table_html(status))
    return {html.unescape(step): StepPhase(state) for step, state in rows}


def graph_phases(status):
    """Step -> phase, as the panel's graph colours them (its boxes' data-state)."""
    boxes = re.findall(r'<g data-step="([^"]*)" data-state="([^"]*)"', graph_html(status))
    return {html.unescape(step): StepPhase(state) for step, state in boxes}


def text_phases(status):
    """Step -> phase, as the text table shows them (its STATE column)."""
    lines = render_text(status, color=False).splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("STEP"))
    found = {}
    for line in lines[header + 1:header + 1 + len(status.steps)]:
        name, phase = line.split()[:2]
        found[name] = StepPhase(phase)
    return found


def fetch_phases(status):
    """Step -> ZenML status, as `fetch_status` reports them."""
    return execution_statuses(status, client_gone=False)[1]


@pytest.mark.parametrize("recording", RECORDINGS)
def test_fetch_status_the_panel_and_the_text_agree_at_every_moment(recording):
    history = replay(recording)
    for moment, status in enumerate(history):
        model = status.phases
        assert panel_phases(status) == model, (recording, moment)
        assert graph_phases(status) == model, (recording, moment)
        assert text_phases(status) == model, (recording, moment)
        reported = fetch_phases(status)
        expected = {name: PHASE_TO_EXECUTION_STATUS[phase] for name, phase in model.items()
                    if phase in PHASE_TO_EXECUTION_STATUS}
        assert reported == expected, (recording, moment)


def test_the_recordings_cover_retried_killed_skipped_and_stopped_steps():
    finals = {name: replay(name)[-1] for name in RECORDINGS}
    seen = {phase for status in finals.values() for phase in status.phases.values()}
    assert {StepPhase.COMPLETED, StepPhase.FAILED, StepPhase.SKIPPED, StepPhase.STOPPED} <= seen
    retried = replay("status_retry_pipeline.json")
    assert any(s.step("flaky").phase == StepPhase.RETRYING for s in retried)
    stopped = finals["status_stopped_pipeline.json"]
    assert stopped.step("long_left").phase == StepPhase.STOPPED
    assert stopped.step("long_left").exit_code == 137  # killed by the stop
    assert stopped.step("join_two").phase == StepPhase.SKIPPED  # never started
    fail_fast = finals["status_fail_fast_pipeline.json"]
    assert fail_fast.step("fail_after").phase == StepPhase.FAILED
    assert fail_fast.step("slow_branch").phase == StepPhase.STOPPED


def test_fetch_status_of_the_recorded_runs_in_zenml_terms():
    stopped = replay("status_stopped_pipeline.json")[-1]
    run_status, steps = execution_statuses(stopped, client_gone=False)
    assert run_status == ExecutionStatus.STOPPED
    assert steps == {"first_value": ExecutionStatus.COMPLETED,
                     "long_left": ExecutionStatus.STOPPED,
                     "long_right": ExecutionStatus.STOPPED}
    failing = replay("status_failing_pipeline.json")[-1]
    run_status, steps = execution_statuses(failing, client_gone=False)
    assert run_status == ExecutionStatus.FAILED
    assert steps["fail_with"] == ExecutionStatus.FAILED and "after_failure" not in steps
