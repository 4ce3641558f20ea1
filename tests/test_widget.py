"""The panel: its HTML and widgets for given statuses (fast), then on a real run.

The browser test (test_browser_panel.py) checks what a person sees in
JupyterLab; these check the pieces without a browser. Tests named
test_on_docker_* need the Docker engine and a ZenML store.
"""

import time

from orchestrator.status.model import (
    ContainerEvent,
    LogLine,
    RunEnded,
    RunStatus,
    StepPhase,
    ZenmlFacts,
    ZenmlStepFact,
    apply,
    new_run_status,
)
from orchestrator.status.widget import (
    WAITING_TITLE,
    LivePanel,
    RunPanel,
    header_html,
    in_notebook_kernel,
    live_panel,
)

RUN_ID = "0c978854-d447-47c0-b746-76f6a6a72625"
STEPS = {"load": {"upstream": []}, "left": {"upstream": ["load"]},
         "right": {"upstream": ["load"]}, "join": {"upstream": ["left", "right"]}}


def status_with(*events, **kwargs):
    status = new_run_status(RUN_ID, STEPS, run_name="demo-run-1", pipeline_name="demo", **kwargs)
    for event in events:
        status = apply(status, event)
    return status


def run_step(step, t=100.0, exit_code=0):
    return [ContainerEvent("create", step, 1, f"{step:0<12}", t, run_id=RUN_ID),
            ContainerEvent("start", step, 1, f"{step:0<12}", t + 0.5, run_id=RUN_ID),
            ContainerEvent("die", step, 1, f"{step:0<12}", t + 3, exit_code, RUN_ID)]


def test_pytest_is_not_a_notebook_kernel():
    assert not in_notebook_kernel()


def test_the_header_says_what_run_it_shows_and_how_it_went():
    assert WAITING_TITLE in header_html(RunStatus(run_id=""))
    assert "no pipeline run was started" in header_html(
        RunStatus(run_id="", error="no pipeline run was started"))
    header = header_html(status_with(*run_step("load")))
    assert "demo-run-1" in header and ">demo<" in header and ">running<" in header


def test_the_panel_has_one_row_per_step_in_order_with_its_state_and_facts():
    status = status_with(*run_step("load"), LogLine("load", 1, "loaded 5 numbers", 102),
                         *run_step("left", t=104)[:2])
    panel = RunPanel()
    panel.render_all(status)
    table = panel.table.value
    rows = [part.split('"')[0] for part in table.split('data-step="')[1:]]
    assert rows == ["load", "left", "right", "join"]
    for name, state in [("load", "completed"), ("left", "running"), ("right", "pending"),
                        ("join", "waiting")]:
        assert f'data-step="{name}" data-state="{state}"' in table
    assert "loaded 5 numbers" in table and "load00000000" in table and "2.5s" in table
    assert (panel.bar.value, panel.bar.max, panel.bar.bar_style) == (1, 4, "info")
    assert "<b>1/4</b> steps finished" in panel.counts.value
    assert ">1 completed<" in panel.counts.value and ">2 waiting<" not in panel.counts.value


def test_the_bar_turns_red_at_the_first_failure_and_green_for_a_completed_run():
    failing = status_with(*run_step("load"), *run_step("left", exit_code=2))
    panel = RunPanel()
    panel.render_all(failing)
    assert panel.bar.bar_style == "danger"
    assert 'data-step="join" data-state="skipped"' in panel.table.value
    assert "upstream step &#x27;left&#x27; failed" in panel.table.value
    done = status_with(*run_step("load"), *run_step("left"), *run_step("right"),
                       *run_step("join"), ZenmlFacts("completed", {}, 200), RunEnded(201))
    panel.render(done)
    assert (panel.bar.value, panel.bar.bar_style) == (4, "success")
    assert ">completed<" in panel.header.value


def test_log_lines_and_names_are_escaped_not_executed():
    status = status_with(*run_step("load")[:2],
                         LogLine("load", 1, "<script>alert(1)</script>", 101))
    panel = RunPanel()
    panel.render_all(status)
    for part in (panel.table, panel.graph, panel.timeline):
        assert "<script>" not in part.value
    assert "&lt;script&gt;" in panel.table.value


def test_a_watcher_problem_is_shown_under_the_counts():
    from orchestrator.status.model import WatcherProblem

    status = apply(status_with(), WatcherProblem("Docker is not available", 1.0))
    assert "Docker is not available" in RunPanel(status).counts.value


def test_a_burst_of_updates_is_drawn_a_few_times_and_the_last_one_always():
    panel = RunPanel(min_interval=0.3)
    drawn = []
    panel.on_render = drawn.append
    statuses = [status_with(LogLine("load", 1, f"line {i}", 100 + i), *run_step("load")[:2])
                for i in range(50)]
    for status in statuses:
        panel.update(status)
    deadline = time.monotonic() + 5
    while panel.rendered is not statuses[-1] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert panel.rendered is statuses[-1]
    assert 1 <= len(drawn) <= 3, f"{len(drawn)} redraws for a burst of 50 updates"


def test_a_final_status_is_drawn_at_once():
    panel = RunPanel(min_interval=10)
    panel.update(status_with())
    final = status_with(ZenmlFacts("completed", {n: ZenmlStepFact("cached") for n in STEPS},
                                   5), RunEnded(6))
    panel.update(final)
    assert panel.rendered is final
    assert set(final.phases.values()) == {StepPhase.CACHED}


def test_outside_a_kernel_a_panel_is_text_and_in_a_notebook_also_a_widget():
    text_panel = LivePanel(widgets=False)
    assert text_panel.view is None
    assert repr(text_panel) == f"({WAITING_TITLE})"
    widget_panel = LivePanel(widgets=True)
    bundle = widget_panel._repr_mimebundle_()
    assert bundle["text/plain"] == f"({WAITING_TITLE})"
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == widget_panel.view.widget.model_id


# --------------------------------------------------------------------------
# On a real run
# --------------------------------------------------------------------------


def test_on_docker_a_with_block_that_starts_no_run_says_so(project_dir, capsys):
    started = time.monotonic()
    with live_panel(display=False) as panel:
        pass
    assert time.monotonic() - started < 15
    assert panel.status.error == "no pipeline run was started"
    assert repr(panel) == "(no pipeline run was started)"


def test_on_docker_live_panels_follow_a_run_as_widgets_and_as_text(project_dir, capsys):
    from orchestrator.teaching.examples import demo_pipeline

    widget_panel = LivePanel(widgets=True, poll_seconds=0.5)
    seen_states = set()
    widget_panel.view.on_render = lambda status: seen_states.update(
        s.phase for s in status.steps)
    widget_panel.attach_next(timeout=300)
    with live_panel(display=False) as text_panel:  # no kernel here: prints text
        run = demo_pipeline(seconds=2.0)
    widget_status = widget_panel.finish()
    assert str(run.id) == text_panel.status.run_id == widget_status.run_id

    out = capsys.readouterr().out
    for step in ("load_numbers", "double_left", "double_right", "total"):
        assert f"{step}: completed" in out, out
    assert "load_numbers: running" in out or "load_numbers: starting" in out, out
    assert "4/4 steps finished: 4 completed" in out, out

    table = widget_panel.view.table.value
    assert table.count('data-state="completed"') == 4, table
    assert (widget_panel.view.bar.value, widget_panel.view.bar.bar_style) == (4, "success")
    assert StepPhase.RUNNING in seen_states, "the panel never showed a running step"
    for panel in (text_panel, widget_panel):
        assert panel.status.ended and panel.status.outcome == "completed"
        assert panel.watcher.alive_threads == []
