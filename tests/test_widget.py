"""The panel: its HTML and widgets for given statuses (fast), then on a real run.

The browser test (test_browser_panel.py) checks what a person sees in
JupyterLab; these check the pieces without a browser. Tests named
test_on_docker_* need the Docker engine and a ZenML store.
"""

import html
import time
from dataclasses import replace

from orchestrator.status.events import (
    AttemptPlaced,
    ContainerEvent,
    LogLine,
    ResourceSample,
    RunEnded,
    ZenmlFacts,
    ZenmlStepFact,
)
from orchestrator.status.model import RunStatus, StepPhase
from orchestrator.status.panel_html import WAITING_TITLE, header_html, timeline_html
from orchestrator.status.reducer import apply, new_run_status
from orchestrator.status.widget import LivePanel, RunPanel, in_notebook_kernel, live_panel

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


def test_the_step_table_names_each_steps_node_only_for_a_run_on_a_swarm():
    panel = RunPanel()
    one_engine = status_with(*run_step("load"), *run_step("left", t=104)[:2])
    panel.render_all(one_engine)
    assert ">node<" not in panel.table.value and "data-node" not in panel.table.value
    panel.render_all(status_with(*run_step("load"), AttemptPlaced("load", 1, "node-b", 100),
                                 *run_step("left", t=104)[:2],
                                 AttemptPlaced("left", 1, "node-a", 104)))
    table = panel.table.value
    assert ">node<" in table
    assert 'data-step="load" data-state="completed" data-node="node-b"' in table
    assert 'data-step="left" data-state="running" data-node="node-a"' in table
    assert 'data-step="right" data-state="pending">' in table
    assert "on node node-a" in panel.graph.value  # the step's box says it too


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
    from orchestrator.status.events import WatcherProblem

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

    assert set(graph_states(widget_panel.view).values()) == {"completed"}
    widget_panel.view.render_all(widget_status)
    table = widget_panel.view.table.value
    assert table.count('data-state="completed"') == 4, table
    assert [bar[:3] for bar in timeline_bars_shown(widget_panel.view)] == [
        (name, 1, "completed") for name in ("load_numbers", "double_left", "double_right",
                                             "total")]
    # The engine was sampled while the containers ran: memory, with no limit set.
    sampled = [s for s in widget_status.steps if s.usage is not None]
    assert sampled and all(s.usage.peak_memory_bytes > 0 for s in sampled)
    assert "(no limit)" in widget_panel.view.resources.value or "peak" in \
        widget_panel.view.resources.value
    assert (widget_panel.view.bar.value, widget_panel.view.bar.bar_style) == (4, "success")
    assert StepPhase.RUNNING in seen_states, "the panel never showed a running step"
    for panel in (text_panel, widget_panel):
        assert panel.status.ended and panel.status.outcome == "completed"
        assert panel.watcher.alive_threads == []


# --------------------------------------------------------------------------
# The graph, the timeline, resources, a step's log, stop and recent runs
# --------------------------------------------------------------------------

import re  # noqa: E402


def graph_states(panel):
    """Step -> state word, as the graph's boxes show them."""
    return dict(re.findall(r'<g data-step="([^"]*)" data-state="([^"]*)"', panel.graph.value))


def timeline_bars_shown(panel):
    """(step, attempt, state, started, ended) of every bar (a container's span) of the timeline."""
    return [(step, int(attempt), state, float(started), float(ended)) for step, attempt,
            started, ended, state in re.findall(
                r'data-bar="([^"]*)" data-attempt="(\d+)" data-started="([^"]*)" '
                r'data-ended="([^"]*)" data-state="([^"]*)"', panel.timeline.value)]


def timeline_segments_shown(panel):
    """(step, attempt, phase, started, ended) of every segment drawn on the timeline."""
    from html import unescape

    return [(step, int(attempt), unescape(phase), float(started), float(ended))
            for step, attempt, phase,
            started, ended in re.findall(
                r'data-step="([^"]*)" data-attempt="(\d+)" data-source="[^"]*" '
                r'data-oom="[01]" data-never-ran="[01]" data-phase="([^"]*)" '
                r'data-started="([^"]*)" data-ended="([^"]*)"', panel.timeline.value)]


def test_the_graph_is_the_runs_dag_coloured_by_each_steps_phase_with_a_legend():
    status = status_with(*run_step("load"), *run_step("left", exit_code=2))
    panel = RunPanel()
    panel.render_all(status)
    assert graph_states(panel) == {name: phase.value for name, phase in status.phases.items()}
    assert graph_states(panel)["join"] == "skipped"
    # One arrow per dependency, and every phase in the legend.
    assert panel.graph.value.count("data-edge=") == 4
    for phase in StepPhase:
        assert f'data-legend="{phase.value}"' in panel.graph.value
    assert "upstream step &#x27;left&#x27; failed" in panel.graph.value  # the box's tooltip


def test_the_graph_changes_live_and_shows_retries_and_out_of_memory_kills():
    steps = {"load": {"upstream": [], "max_retries": 2}}
    status = new_run_status(RUN_ID, steps)
    panel = RunPanel()
    panel.render_all(status)
    assert graph_states(panel) == {"load": "pending"}
    status = apply(status, ContainerEvent("create", "load", 1, "a" * 12, 1.0, run_id=RUN_ID))
    status = apply(status, ContainerEvent("start", "load", 1, "a" * 12, 2.0, run_id=RUN_ID))
    panel.render_all(status)
    assert graph_states(panel) == {"load": "running"}
    for action, t in (("oom", 3.0), ("die", 3.1)):
        status = apply(status, ContainerEvent(action, "load", 1, "a" * 12, t, 137, RUN_ID))
    status = apply(status, ContainerEvent("create", "load", 2, "b" * 12, 4.0, run_id=RUN_ID))
    panel.render_all(status)
    assert graph_states(panel) == {"load": "starting"}
    assert "try 2, OOM on 1" in panel.graph.value


def test_the_timeline_has_one_bar_per_attempt_from_container_start_to_exit():
    steps = {"load": {"upstream": []}, "flaky": {"upstream": ["load"], "max_retries": 1}}
    status = new_run_status(RUN_ID, steps)
    for event in [("load", 1, "create", 100.0), ("load", 1, "start", 100.5),
                  ("load", 1, "die", 103.0, 0), ("flaky", 1, "create", 103.2),
                  ("flaky", 1, "start", 103.5), ("flaky", 1, "die", 106.0, 1),
                  ("flaky", 2, "create", 108.0), ("flaky", 2, "start", 108.4)]:
        step, attempt, action, t, *code = event
        status = apply(status, ContainerEvent(action, step, attempt, f"{step}{attempt}", t,
                                              code[0] if code else None, RUN_ID))
    panel = RunPanel()
    panel.render_all(status, now=110.0)
    assert timeline_bars_shown(panel) == [
        ("load", 1, "completed", 100.5, 103.0),
        ("flaky", 1, "retrying", 103.5, 106.0),
        ("flaky", 2, "running", 108.4, 110.0),  # grows until its exit
    ]
    assert 'data-live="1"' in panel.timeline.value and "so far" in panel.timeline.value
    panel.render_all(status, now=115.0)
    assert timeline_bars_shown(panel)[-1][-1] == 115.0
    assert re.search(r'data-tick="\d+"', panel.timeline.value)  # a time axis with ticks


def test_a_run_seen_after_its_containers_were_removed_has_zenmls_times_on_the_timeline():
    facts = ZenmlFacts("completed", {
        "load": ZenmlStepFact("completed", 1, 10.0, 12.0, runs=[("completed", 10.0, 12.0)]),
        "left": ZenmlStepFact("completed", 2, 16.0, 19.0, runs=[("failed", 12.5, 14.0),
                                                               ("completed", 16.0, 19.0)])},
        30.0)
    status = apply(apply(status_with(), facts), RunEnded(31.0))
    panel = RunPanel()
    panel.render_all(status)
    assert timeline_bars_shown(panel) == [("load", 1, "completed", 10.0, 12.0),
                                          ("left", 1, "retrying", 12.5, 14.0),
                                          ("left", 2, "completed", 16.0, 19.0)]
    assert "times as ZenML recorded them" in panel.timeline.value


def test_memory_is_shown_against_the_limit_and_an_out_of_memory_kill_is_named():
    from orchestrator.status.events import ResourceSample

    mib = 1024 * 1024
    status = status_with(*run_step("load")[:2],
                         ResourceSample("load", 1, 101.0, 0.8, 120 * mib, 384 * mib, 1.0))
    panel = RunPanel()
    panel.render_all(status)
    resources = panel.resources.value
    assert "120 MiB / 384 MiB limit (31%)" in resources and "0.80 of 1 cores" in resources
    assert 'data-memory="125829120" data-limit="402653184"' in resources
    assert "120 MiB / 384 MiB" in panel.table.value  # the steps table says it too
    killed = apply(apply(status, ContainerEvent("oom", "load", 1, "load00000000", 102.0,
                                                run_id=RUN_ID)),
                   ContainerEvent("die", "load", 1, "load00000000", 102.1, 137, RUN_ID))
    panel.render_all(killed)
    assert "killed: out of memory" in panel.resources.value
    assert 'data-oom="1"' in panel.resources.value
    assert "137 (out of memory)" in panel.table.value
    assert "peak 120 MiB / 384 MiB" in panel.table.value


def test_the_resources_tab_says_what_it_will_show_before_any_sample():
    panel = RunPanel()
    panel.render_all(status_with(*run_step("load")[:2]))
    assert "docker stats" in panel.resources.value


def test_the_resources_tab_lists_running_containers_first_then_the_rest_in_pipeline_order():
    steps = {"first": {"upstream": []}, "second": {"upstream": ["first"]},
             "third": {"upstream": ["second"]}}
    status = new_run_status(RUN_ID, steps)
    for step, start in (("first", 1.0), ("second", 5.0), ("third", 9.0)):
        status = apply(status, ContainerEvent("create", step, 1, f"{step:0<12}", start,
                                              run_id=RUN_ID))
        status = apply(status, ContainerEvent("start", step, 1, f"{step:0<12}", start + 0.1,
                                              run_id=RUN_ID))
        status = apply(status, ResourceSample(step, 1, start + 1, 0.5, 100 * 1024 * 1024))
        if step != "third":
            status = apply(status, ContainerEvent("die", step, 1, f"{step:0<12}", start + 3,
                                                  0, RUN_ID))
    panel = RunPanel()
    panel.render_all(status)
    order = re.findall(r'<tr data-step="([^"]*)"', panel.resources.value)
    assert order == ["third", "first", "second"], order
    # Names and container ids never break inside a word (a narrow panel scrolls the table).
    cells = re.findall(r'<td style="([^"]*)"[^>]*>(?:<code>)?(first|first0000000)<', panel.resources.value)
    assert len(cells) == 2 and all("white-space:nowrap" in style for style, _ in cells), cells


def test_a_steps_log_is_shown_whole_and_followed_while_it_runs(tmp_path):
    from orchestrator.status.logs import LogTail, log_path

    run_id = f"test-log-{time.monotonic_ns()}"
    path = log_path(run_id, "left", 1)
    path.parent.mkdir(parents=True)
    try:
        path.write_text("first line\nsecond <line>\n")
        steps = {"load": {"upstream": []}, "left": {"upstream": ["load"]}}
        status = new_run_status(run_id, steps)
        for action, t in (("create", 1.0), ("start", 2.0)):
            status = apply(status, ContainerEvent(action, "left", 1, "c" * 12, t,
                                                  run_id=run_id))
        panel = RunPanel()
        panel.render(status)
        assert panel.log_step == "left"  # a running step is shown by default
        assert "first line\nsecond &lt;line&gt;" in panel.shown_log()
        assert "following" in panel.shown_log() and str(path) in panel.shown_log()
        with open(path, "a") as handle:
            handle.write("third line\n")
        panel.render(status)
        assert "second &lt;line&gt;\nthird line" in panel.shown_log()
        status = apply(status, ContainerEvent("die", "left", 1, "c" * 12, 9.0, 3, run_id))
        panel.render(status)
        assert "following" not in panel.shown_log() and "exit code 3" in panel.shown_log()
        # A step that never ran has no log to pick; an attempt without a file says so.
        assert list(panel.log_tabs.titles) == ["left (failed)"]
        path.unlink()
        panel.show_log("left", 1)
        assert "first line" not in panel.shown_log() and "No output kept" in panel.shown_log()
    finally:
        for leftover in path.parent.glob("*"):
            leftover.unlink()
        path.parent.rmdir()
    # The tail reads only what was added, and keeps at most max_chars.
    small = tmp_path / "x.log"
    small.write_bytes("é".encode() * 3)
    tail = LogTail(small, max_chars=4)
    assert tail.read_new() and tail.text == "ééé" and not tail.read_new()
    with open(small, "ab") as handle:
        handle.write("éé".encode()[:3])  # a character cut in half
    assert tail.read_new() and tail.text == "éééé" and tail.cut == 0
    with open(small, "ab") as handle:
        handle.write("éé".encode()[3:] + b"x")
    assert tail.read_new() and tail.text == "éééx" and tail.cut == 2


def test_the_stop_button_asks_first_then_stops_once_and_is_off_once_the_run_ended():
    stops = []
    panel = RunPanel()
    panel.on_stop = lambda: stops.append(time.monotonic())
    panel.stop_grace = lambda: 7
    running = status_with(*run_step("load")[:2])
    panel.render(running)
    assert not panel.stop_button.disabled
    panel.stop_button.click()
    assert panel.confirm.layout.display == "flex" and stops == []
    assert "SIGKILL after 7 s" in panel.confirm_text.value
    panel.confirm_no.click()
    assert panel.confirm.layout.display == "none" and stops == []
    panel.stop_button.click()
    panel.confirm_yes.click()
    deadline = time.monotonic() + 5
    while not stops and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(stops) == 1 and panel.stop_button.disabled
    assert "zenml pipeline runs stop" in panel.message.value
    ended = apply(running, RunEnded(200))
    panel.render(ended)
    assert panel.stop_button.disabled


def test_while_the_kernel_runs_the_pipeline_the_stop_button_is_off_and_says_why():
    panel = RunPanel()
    panel.on_stop = lambda: None
    panel.set_busy(True)  # a live_panel() block: clicks would wait for the cell
    panel.render(status_with(*run_step("load")[:2]))
    assert panel.stop_button.disabled and "Interrupt the kernel" in panel.stop_button.tooltip
    panel.set_busy(False)  # the block ended and the run goes on (synchronous=False)
    assert not panel.stop_button.disabled and "asks first" in panel.stop_button.tooltip


def test_when_the_block_ends_the_stop_button_never_comes_on_over_a_run_that_has_ended():
    panel = RunPanel()
    panel.on_stop = lambda: None
    panel.set_busy(True)
    running = status_with(*run_step("load")[:2])
    panel.render(running)  # the last reading the watcher drew while the cell ran
    seen = []
    panel.stop_button.observe(lambda change: seen.append(change["new"]), "disabled")
    ended = apply(running, RunEnded(200))
    panel.block_ended(ended)  # the pipeline call returned; the final reading
    assert panel.rendered is ended and panel.stop_button.disabled
    assert False not in seen, seen  # what a browser would have drawn meanwhile
    goes_on = RunPanel()
    goes_on.on_stop = lambda: None
    goes_on.set_busy(True)
    goes_on.render(running)
    goes_on.block_ended(None)  # synchronous=False: the run goes on after the block
    assert not goes_on.stop_button.disabled


def test_tabs_not_shown_are_redrawn_at_most_every_hidden_interval():
    panel = RunPanel(hidden_interval=0.5)
    first = status_with(*run_step("load")[:2])
    panel.render(first, now=101.0)
    timeline = panel.timeline.value
    assert panel.selected_tab == "graph" and "data-started" in timeline
    panel.render(first, now=102.0)  # a tick: only the graph is drawn again
    assert panel.timeline.value == timeline
    time.sleep(0.6)
    panel.render(first, now=103.0)  # the hidden tabs' turn
    assert panel.timeline.value != timeline and 'data-ended="103.000"' in panel.timeline.value
    panel.tabs.selected_index = 1  # picked: drawn at once
    panel.render(first, now=104.0)
    assert 'data-ended="104.000"' in panel.timeline.value


def test_a_refused_stop_is_explained_in_the_panel():
    def refuse():
        raise RuntimeError("Run is already stopped.")

    panel = RunPanel()
    panel.on_stop = refuse
    panel.render(status_with(*run_step("load")[:2]))
    panel.stop_button.click()
    panel.confirm_yes.click()
    deadline = time.monotonic() + 5
    while "already stopped" not in panel.message.value and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "Run is already stopped." in panel.message.value
    assert not panel.stop_button.disabled  # it may be tried again


def test_picking_a_recent_run_asks_the_owner_to_show_it_and_code_changes_do_not():
    picked = []
    panel = RunPanel()
    panel.on_pick_run = picked.append
    panel.render(status_with())
    panel.set_recent_runs([("newer · running", "id-2"), ("demo-run-1 · completed", RUN_ID),
                           ("older · failed", "id-0")])
    assert panel.runs.value == RUN_ID and picked == []
    panel.runs.value = "id-0"  # what a user's choice in the browser does
    assert picked == ["id-0"]
    other = RunStatus(run_id="id-0", run_name="older")
    panel.render(other)  # the owner attached: the list follows, without asking again
    assert panel.runs.value == "id-0" and picked == ["id-0"]


def test_closing_a_live_panel_closes_every_widget_and_its_watcher():
    panel = LivePanel(widgets=True)
    parts = panel.view._all_widgets()
    assert len(parts) > 10 and all(part.comm is not None for part in parts)
    panel.view.widget.close()  # as when the front end closes it
    assert panel.closed
    assert all(part.comm is None for part in parts)
    assert panel.watcher is None and panel._cancel.is_set()


def test_a_slow_redraw_makes_the_panel_redraw_less_often():
    class SlowPanel(RunPanel):
        def _draw_tab(self, *args, **kwargs):
            time.sleep(0.1)  # as a big pipeline's graph would take
            super()._draw_tab(*args, **kwargs)

    panel = SlowPanel(min_interval=0.01)
    drawn = []
    panel.on_render = drawn.append
    start = time.monotonic()
    statuses = [status_with(LogLine("load", 1, f"line {i}", 100 + i)) for i in range(60)]
    for status in statuses:  # 60 changes in about 1.2 s
        panel.update(status)
        time.sleep(0.02)
    deadline = time.monotonic() + 5
    while panel.rendered is not statuses[-1] and time.monotonic() < deadline:
        time.sleep(0.01)
    elapsed = time.monotonic() - start
    assert panel.rendered is statuses[-1]
    # Each redraw takes >= 0.1 s, so redraws come at most every 0.4 s.
    assert len(drawn) <= elapsed / 0.4 + 1, (len(drawn), elapsed)


def test_on_docker_a_detached_run_is_followed_after_its_block_and_stopped_from_the_panel(
        project_dir, docker_client, run_containers):
    """synchronous=False: the pipeline call returns at once; the panel follows the run on,
    and its stop (the Stop button's path: ZenML's stop_run) ends it with nothing left."""
    from orchestrator.teaching.examples import long_pipeline

    detached = long_pipeline.with_options(settings={"orchestrator": {"synchronous": False}})
    with live_panel(display=False) as panel:
        detached(seconds=120.0)
    assert panel.watcher.alive_threads, "the panel stopped following a run that goes on"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if panel.status.step("long_left").phase == StepPhase.RUNNING:
            break
        time.sleep(0.5)
    assert panel.status.step("long_left").phase == StepPhase.RUNNING, panel.text()
    panel.stop_run()
    assert panel.wait(timeout=180), panel.text()
    final = panel.status
    assert final.outcome == "stopped", panel.text()
    assert final.step("long_left").phase == StepPhase.STOPPED, panel.text()
    assert panel.watcher.alive_threads == []
    deadline = time.monotonic() + 60  # the detached process removes its containers
    while run_containers(final.run_id) and time.monotonic() < deadline:
        time.sleep(1)
    assert run_containers(final.run_id) == []


def test_on_docker_an_out_of_memory_kill_is_named_and_retried_on_every_view(project_dir):
    from zenml import pipeline
    from zenml.config import ResourceSettings, StepRetryConfig

    from orchestrator.teaching.examples import hog_memory_on_first_attempt

    hog = hog_memory_on_first_attempt.with_options(
        settings={"resources": ResourceSettings(memory="384MiB")},
        retry=StepRetryConfig(max_retries=1, delay=1, backoff=1))

    @pipeline(enable_cache=False, name="panel_memory_pipeline")
    def memory_pipeline():
        hog(megabytes=800)

    panel = LivePanel(widgets=True, poll_seconds=0.5)
    panel.attach_next(timeout=300)
    memory_pipeline()
    final = panel.finish()
    step = final.step("hog_memory_on_first_attempt")
    first, second = step.attempts
    assert first.oom_killed and first.phase == StepPhase.RETRYING, final
    assert first.reason == "attempt 1: out of memory"
    assert second.phase == StepPhase.COMPLETED == step.phase and not second.oom_killed
    view = panel.view
    view.render_all(final)
    assert "try 2, OOM on 1" in view.graph.value
    assert [bar[:3] for bar in timeline_bars_shown(view)] == [
        ("hog_memory_on_first_attempt", 1, "retrying"),
        ("hog_memory_on_first_attempt", 2, "completed")]
    assert "out of memory" in view.timeline.value  # the first bar's tooltip
    assert 'data-attempt="1" data-oom="1"' in view.resources.value
    assert "killed: out of memory" in view.resources.value
    assert f"of {384} MiB" in view.resources.value  # the second attempt's peak, limit


def test_a_container_started_early_shows_its_wait_apart_on_the_timeline():
    steps = {"load": {"upstream": []}, "left": {"upstream": ["load"]}}
    status = new_run_status(RUN_ID, steps)
    for step, action, t, code, early in [
            ("load", "create", 100.0, None, False), ("load", "start", 100.5, None, False),
            ("left", "create", 100.6, None, True), ("left", "start", 101.0, None, True),
            ("load", "die", 105.0, 0, False)]:
        status = apply(status, ContainerEvent(action, step, 1, f"{step}0", t, code, RUN_ID,
                                              started_early=early))
    status = apply(status, ZenmlFacts("running", {
        "load": ZenmlStepFact("completed", 1, 102.0, 104.0, runs=[("completed", 102.0, 104.0)]),
        "left": ZenmlStepFact("running", 1, 105.5, None, runs=[("running", 105.5, None)])},
        106.0))
    panel = RunPanel()
    panel.render_all(status, now=110.0)
    assert ("left", 1, "running", 101.0, 110.0) in timeline_bars_shown(panel)
    # Live, where its warm-up ended is not known yet: said so, not drawn as work.
    assert timeline_segments_shown(panel) == [
        ("load", 1, "warm-up", 100.5, 102.0), ("load", 1, "the step's work", 102.0, 104.0),
        ("load", 1, "ZenML's finish", 104.0, 105.0),
        ("left", 1, "warm-up or waiting", 101.0, 105.5),
        ("left", 1, "the step's work", 105.5, 110.0)]
    for kind in ("warm-up", "warm-up or waiting", "the step&#x27;s work", "ZenML&#x27;s finish"):
        assert f'data-legend="{kind}"' in panel.timeline.value
    assert 'data-legend="waiting at the gate"' not in panel.timeline.value
    # Once the runner's record says when it was warm (and when its gate let it
    # through), the wait is drawn apart, in the legend's words.
    from orchestrator.status.timeline import StageTimes

    html = timeline_html(status, 110.0, {("left", 1): StageTimes(ready=103.0, gate=105.2)})
    panel.timeline.value = html
    assert [seg for seg in timeline_segments_shown(panel) if seg[0] == "left"] == [
        ("left", 1, "warm-up", 101.0, 103.0), ("left", 1, "waiting at the gate", 103.0, 105.2),
        ("left", 1, "warm-up", 105.2, 105.5), ("left", 1, "the step's work", 105.5, 110.0)]
    assert 'data-legend="waiting at the gate"' in html

    from orchestrator.status.text import render_timeline

    row = next(line for line in render_timeline(status, now=110.0, width=44).splitlines()
               if line.startswith("left"))
    bars = row.split("|", 1)[1]
    assert bars.lstrip().startswith(":") and bars.rstrip().endswith(">")


# --------------------------------------------------------------------------
# The graph's drawing: ids of its own, edges around boxes
# --------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from orchestrator.status.drawing import dag_layout, dag_svg, edge_route  # noqa: E402


def _crosses_box(a, b, box):
    """Whether the segment a-b passes through the inside of `box` (x, y, w, h)."""
    x, y, w, h = box
    inner = (x + 0.5, y + 0.5, x + w - 0.5, y + h - 0.5)
    steps = 200
    for i in range(steps + 1):
        px = a[0] + (b[0] - a[0]) * i / steps
        py = a[1] + (b[1] - a[1]) * i / steps
        if inner[0] < px < inner[2] and inner[1] < py < inner[3]:
            return True
    return False


@st.composite
def dags(draw):
    count = draw(st.integers(2, 14))
    names = [f"s{i}" for i in range(count)]
    return {name: sorted(set(draw(st.lists(st.sampled_from(names[:i]), max_size=3))))
            if i else [] for i, name in enumerate(names)}


@settings(max_examples=150, deadline=None)
@given(dags(), st.integers(1, 5))
def test_no_edge_of_the_graph_passes_through_a_box(upstreams, max_rows):
    layout = dag_layout(upstreams, max_rows=max_rows)
    boxes = {step: (x, y, layout.box_width, layout.box_height)
             for step, (x, y) in layout.position.items()}
    for step, ups in upstreams.items():
        for up in ups:
            points = edge_route(layout, up, step)
            assert points[0] == (boxes[up][0] + layout.box_width, boxes[up][1] + 17)
            assert points[-1] == (boxes[step][0], boxes[step][1] + 17)
            for a, b in zip(points, points[1:]):
                for other, box in boxes.items():
                    assert not _crosses_box(a, b, box), (up, step, other, points)
                assert 0 <= a[1] <= layout.height and 0 <= b[1] <= layout.height


def test_an_edge_that_skips_a_column_goes_around_the_box_between():
    upstreams = {"load": [], "middle": ["load"], "join": ["load", "middle"]}
    layout = dag_layout(upstreams)
    assert len(edge_route(layout, "load", "middle")) == 2  # next door: straight
    around = edge_route(layout, "load", "join")
    mx, my = layout.position["middle"]
    assert len(around) > 2 and not any(
        _crosses_box(a, b, (mx, my, layout.box_width, layout.box_height))
        for a, b in zip(around, around[1:]))


def test_two_drawings_never_share_an_id_and_each_arrow_uses_its_own_marker():
    upstreams = {"a": [], "b": ["a"]}
    first, second = dag_svg(upstreams), dag_svg(upstreams)
    ids = [re.findall(r' id="([^"]+)"', svg) for svg in (first, second)]
    assert ids[0] and ids[1] and not set(ids[0]) & set(ids[1])
    for svg, own in zip((first, second), ids):
        assert set(re.findall(r'url\(#([^)]+)\)', svg)) <= set(own)
    # Two panels: each its own prefix, kept from one redraw to the next.
    one, two = RunPanel(), RunPanel()
    status = status_with(*run_step("load"))
    for panel in (one, two, one):
        panel.render_all(status)
    one_ids = set(re.findall(r' id="([^"]+)"', one.graph.value))
    two_ids = set(re.findall(r' id="([^"]+)"', two.graph.value))
    assert one_ids and two_ids and not one_ids & two_ids
    before = one.graph.value
    one.render_all(status)
    assert one.graph.value == before


# --------------------------------------------------------------------------
# The timeline's phases (pure: a status in, segments out)
# --------------------------------------------------------------------------

from orchestrator.status.model import Attempt, StepStatus, ZenmlRun  # noqa: E402
from orchestrator.status.timeline import (  # noqa: E402
    SEGMENT_KINDS,
    WORK,
    StageTimes,
    attempt_segments,
)

moments = st.floats(0, 100, allow_nan=False, allow_infinity=False)


def test_a_failed_attempt_is_split_at_the_ready_line_the_orchestrator_saw():
    from orchestrator.running.step_timing import AttemptTiming
    from orchestrator.status.timeline import WAITING, WARM_UP, stage_times

    failed = AttemptTiming("s", 1, started_early=True, ready_seen=12.0, gate_opened=15.0)
    succeeded = AttemptTiming("s", 2, started_early=True, ready_seen=22.5, gate_opened=24.0,
                              inside={"stages": [["stack and step module", 22.0],
                                                 ["waited for upstream steps", 23.9]]})
    stages = stage_times([failed, succeeded])
    assert stages[("s", 1)] == StageTimes(12.0, 15.0)  # what the orchestrator saw
    assert stages[("s", 2)] == StageTimes(22.0, 23.9)  # the container's own clock wins
    step = StepStatus("s", (), attempts=(Attempt(1, "c" * 12, "exited", 10.0, 10.0, 18.0, 1,
                                                 started_early=True),),
                      zenml_runs=(ZenmlRun("failed", 15.5, 17.5),))
    kinds = [(seg.kind, seg.start, seg.end) for seg in attempt_segments(
        step, step.attempts[0], end=18.0, live=False, stages=stages[("s", 1)])]
    assert kinds[:3] == [(WARM_UP, 10.0, 12.0), (WAITING, 12.0, 15.0), (WARM_UP, 15.0, 15.5)]
    # The two warm-ups are told apart in their tooltips: the second is ZenML opening the run.
    from orchestrator.status.timeline import describe_segment, step_bars

    (bar,) = step_bars(step, now=20.0, ended=True, stages={("s", 1): stages[("s", 1)]})
    first, _, second = (describe_segment(bar, seg, 10.0) for seg in bar.segments[:3])
    assert "Python, ZenML" in first and "after the gate" in second, (first, second)


def test_a_container_removed_at_its_gate_is_split_but_never_hides_the_attempt_that_ran():
    from orchestrator.running.step_timing import AttemptTiming
    from orchestrator.status.timeline import stage_times

    skipped = AttemptTiming("skipped", 1, started_early=True, ready_seen=5.0, given_up=True)
    replaced = AttemptTiming("s", 1, started_early=True, ready_seen=3.0, given_up=True)
    fresh = AttemptTiming("s", 1, ready_seen=9.0)
    for timings in ([skipped, replaced, fresh], [fresh, replaced, skipped]):
        stages = stage_times(timings)
        assert stages[("skipped", 1)] == StageTimes(5.0, None)
        assert stages[("s", 1)] == StageTimes(9.0, None)
    # Removed before its ready line: it was warming up all along, and is drawn so.
    early_end = AttemptTiming("late", 1, started_early=True, given_up=True)
    stages = stage_times([early_end])[("late", 1)]
    assert stages.never_ready
    step = StepStatus("late", (), attempts=(Attempt(1, "c" * 12, "removed", 1.0, 1.0, 4.0, 137,
                                                    started_early=True, never_ran=True),))
    segments = attempt_segments(step, step.attempts[0], end=4.0, live=False, stages=stages)
    assert [(seg.kind, seg.start, seg.end) for seg in segments] == [("warm-up", 1.0, 4.0)]


def test_a_hairline_wait_between_two_warm_ups_is_drawn_as_one_warm_up():
    from orchestrator.status.timeline import WARM_UP

    step = StepStatus("s", (), attempts=(Attempt(1, "c" * 12, "exited", 10.0, 10.0, 14.0, 0,
                                                 started_early=True),),
                      zenml_runs=(ZenmlRun("completed", 12.3, 13.5),))
    segments = attempt_segments(step, step.attempts[0], end=14.0, live=False,
                                stages=StageTimes(12.0, 12.0002))
    assert [(seg.kind, seg.start, seg.end) for seg in segments][:2] == [
        (WARM_UP, 10.0, 12.3), (WORK, 12.3, 13.5)]


@st.composite
def attempts_with_runs(draw):
    start = draw(moments)
    end = start + draw(st.floats(0, 50, allow_nan=False))
    early = draw(st.booleans())
    run = None
    if draw(st.booleans()):
        began = draw(st.floats(start - 5, end + 5, allow_nan=False))
        ended = draw(st.one_of(st.none(), st.floats(began, began + 60, allow_nan=False)))
        run = ZenmlRun("completed" if ended is not None else "running", began, ended)
    stages = None
    if draw(st.booleans()):
        stages = StageTimes(draw(st.one_of(st.none(), st.floats(start - 5, end + 5))),
                            draw(st.one_of(st.none(), st.floats(start - 5, end + 5))))
    attempt = Attempt(1, "c" * 12, "exited", start, start, end, 0, started_early=early,
                      never_ran=draw(st.booleans()) and early and run is None)
    step = StepStatus("s", attempts=(attempt,), zenml_runs=(run,) if run else ())
    return step, attempt, end, draw(st.booleans()), stages


@settings(max_examples=300, deadline=None)
@given(attempts_with_runs())
def test_a_containers_phases_never_overlap_and_its_work_is_the_steps_own(case):
    step, attempt, end, live, stages = case
    segments = attempt_segments(step, attempt, end=end, live=live, stages=stages)
    assert all(seg.kind in SEGMENT_KINDS for seg in segments)
    if end > attempt.started_at:  # (a container that lived no time has no phase to draw)
        assert segments and segments[0].start == attempt.started_at
    for before, after in zip(segments, segments[1:]):
        assert before.end <= after.start + 1e-9, segments  # in order, never overlapping
    assert all(attempt.started_at <= seg.start <= seg.end <= end for seg in segments)
    works = [seg for seg in segments if seg.kind == WORK]
    run = step.zenml_runs[0] if step.zenml_runs else None
    if run is not None and attempt.started_at <= run.started_at <= end:
        # The step's work is the step run's own start and end (cut at the container's exit).
        assert len(works) == 1 and works[0].start == run.started_at
        assert works[0].end == (end if run.finished_at is None else min(run.finished_at, end))
    else:
        assert works == []  # no step run in this container: no work drawn
    if not attempt.started_early:
        assert all(seg.kind not in ("waiting at the gate", "warm-up or waiting")
                   for seg in segments)


def test_a_container_that_only_waited_and_was_removed_shows_no_work_and_no_exit_code():
    steps = {"source": {"upstream": []}, "fails": {"upstream": []},
             "after": {"upstream": ["fails"]}}
    status = new_run_status(RUN_ID, steps, run_name="demo-run-1")
    for step, action, t, code, early in [
            ("source", "create", 100.0, None, False), ("source", "start", 100.2, None, False),
            ("fails", "create", 100.0, None, False), ("fails", "start", 100.3, None, False),
            ("after", "create", 100.4, None, True), ("after", "start", 100.6, None, True),
            ("source", "die", 104.0, 0, False), ("fails", "die", 106.0, 1, False),
            ("after", "die", 106.5, 137, True), ("after", "destroy", 106.6, None, True)]:
        status = apply(status, ContainerEvent(action, step, 1, f"{step:0<12}", t, code, RUN_ID,
                                              started_early=early))
    status = apply(status, ResourceSample("after", 1, 103.0, 0.5, 200 * 1024 * 1024))
    status = apply(status, ZenmlFacts("failed", {
        "source": ZenmlStepFact("completed", 1, 101.0, 103.5, runs=[("completed", 101.0, 103.5)]),
        "fails": ZenmlStepFact("failed", 1, 101.5, 105.5, runs=[("failed", 101.5, 105.5)])},
        107.0))
    status = apply(status, RunEnded(108.0))
    after = status.step("after")
    assert after.phase == StepPhase.SKIPPED and after.latest.never_ran
    assert not status.step("fails").latest.never_ran
    panel = RunPanel()
    panel.render_all(status)
    segments = [seg for seg in timeline_segments_shown(panel) if seg[0] == "after"]
    assert segments == [("after", 1, "warm-up or waiting", 100.6, 106.5)]
    assert 'data-bar="after" data-attempt="1"' in panel.timeline.value
    assert "its step never ran" in panel.timeline.value
    row = re.search(r'<tr data-step="after".*?</tr>', panel.table.value).group(0)
    assert "137" not in row and "MiB" not in row and "killed" not in row, row
    # Neither a start time nor a duration (the container's wait is not the
    # step's), and the reason rather than a line the waiting container printed.
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    assert cells[4] == "" and cells[5] == "", cells
    assert after.reason in html.unescape(cells[-1]), cells
    failed_row = re.search(r'<tr data-step="fails".*?</tr>', panel.table.value).group(0)
    assert ">1<" in failed_row  # a step that ran keeps its exit code
    from orchestrator.status.text import render_text

    text_row = next(line for line in render_text(status).splitlines()
                    if line.startswith("after "))
    assert "137" not in text_row and text_row.endswith(after.reason), text_row
    # after the try and the container: no time, no duration, no exit, then the reason
    assert text_row.split()[2:] == ["1", "after0000000", *after.reason.split()], text_row


def test_one_colour_and_one_word_per_state_on_every_view():
    from orchestrator.status.drawing import STATE_STROKES
    from orchestrator.status.panel_html import BADGE_COLOURS

    # A stopped run: the progress bar, the header's badge, the table's badge and
    # the graph's outline share the stopped colour.
    events = [*run_step("load"), ContainerEvent("create", "left", 1, "l" * 12, 104.0,
                                                 run_id=RUN_ID),
              ContainerEvent("start", "left", 1, "l" * 12, 104.2, run_id=RUN_ID),
              ContainerEvent("kill", "left", 1, "l" * 12, 106.0, run_id=RUN_ID),
              ContainerEvent("die", "left", 1, "l" * 12, 106.1, 137, RUN_ID),
              ZenmlFacts("stopped", {}, 107.0), RunEnded(108.0)]
    stopped = status_with(*events)
    assert stopped.outcome == "stopped"
    panel = RunPanel()
    panel.render_all(stopped)
    purple = BADGE_COLOURS[StepPhase.STOPPED][0]
    assert purple == STATE_STROKES["stopped"]
    assert panel.bar.style.bar_color == purple
    assert f"background:{purple}" in panel.header.value
    assert f"background:{purple}" in re.search(r'<tr data-step="left".*?</tr>',
                                              panel.table.value).group(0)
    assert f'stroke="{purple}"' in panel.graph.value
    # The stopped step's exit code is no failure's (not red), and its last
    # column says it was stopped, not how the stop ended ZenML's code.
    row = re.search(r'<tr data-step="left".*?</tr>', panel.table.value).group(0)
    assert "c62828" not in row and ">137<" in row, row
    assert re.findall(r"<td[^>]*>(.*?)</td>", row)[-1].startswith("stopped"), row
    # Stopped with no reason of its own (ZenML's record said "stopped"): the word,
    # never the traceback ZenML printed as the stop ended it.
    told = replace(stopped.step("left"), reason="",
                   last_line="zenml.exceptions.IllegalOperationError: finished steps ...")
    assert told.phase == StepPhase.STOPPED and told.shown_line == ("stopped", True)
    # Its log is the one opened (not the completed step's): how the stop ended it.
    opened = RunPanel()
    opened.render(stopped)
    assert opened.log_step == "left", opened.log_step
    # A container that exists but does not run yet: "starting" on the graph and
    # in the Resources tab alike.
    starting = status_with(*run_step("load"),
                           ContainerEvent("create", "left", 1, "l" * 12, 104.0, run_id=RUN_ID),
                           ContainerEvent("start", "left", 1, "l" * 12, 104.0, run_id=RUN_ID))
    starting = apply(starting, ContainerEvent("create", "right", 1, "r" * 12, 104.0,
                                              run_id=RUN_ID))
    starting = apply(starting, ResourceSample("right", 1, 105.0, 0.1, 50 * 1024 * 1024))
    panel.render_all(starting)
    assert graph_states(panel)["right"] == "starting"
    row = re.search(r'<tr data-step="right".*?</tr>', panel.resources.value).group(0)
    assert ">starting<" in row and ">running<" not in row
    # After the run ended, an attempt followed by another one was retried.
    steps = {"flaky": {"upstream": [], "max_retries": 1}}
    status = new_run_status(RUN_ID, steps)
    for attempt, action, t, code in [(1, "create", 1.0, None), (1, "start", 1.1, None),
                                     (1, "die", 2.0, 1), (2, "create", 3.0, None),
                                     (2, "start", 3.1, None), (2, "die", 4.0, 0)]:
        status = apply(status, ContainerEvent(action, "flaky", attempt, f"f{attempt}", t,
                                              code, RUN_ID))
    status = apply(status, RunEnded(5.0))
    panel = RunPanel()
    panel.render_all(status)
    panel.show_log("flaky")
    labels = [label for label, _ in panel.log_attempt.options]
    assert labels == ["attempt 2 (completed)", "attempt 1 (retried (exit code 1))"], labels
    titles = re.findall(r"<title>([^<]*)</title>", panel.timeline.value)
    assert not any("retrying" in title for title in titles), titles
    assert any("attempt 1" in title and "retried (exit code 1)" in title for title in titles)


def test_every_started_step_has_its_log_in_the_page_and_redraws_never_take_a_pick_back():
    """While the cell runs the kernel hears no click: the browser shows a picked tab
    from what it holds, so every step's log is kept current in its own tab, and a
    redraw selects a tab only when the panel's own choice changes (a first failure)."""
    from orchestrator.status.logs import log_path

    run_id = f"test-logs-{time.monotonic_ns()}"
    folder = log_path(run_id, "left", 1).parent
    folder.mkdir(parents=True)
    try:
        for step in ("load", "left", "right"):
            log_path(run_id, step, 1).write_text(f"{step} says hello\n")
        status = new_run_status(run_id, STEPS)
        for event in [*run_step("load")] + [
                ContainerEvent(action, step, 1, f"{step:0<12}", t, run_id=run_id)
                for step in ("left", "right") for action, t in (("create", 104.0),
                                                                ("start", 104.5))]:
            status = apply(status, replace(event, run_id=run_id))
        panel = RunPanel()
        picks = []
        panel.log_tabs.observe(lambda change: picks.append(change["new"]), "selected_index")
        panel.render(status)
        assert panel.log_step == "left"  # a running step, by default
        picks.clear()
        for step in ("load", "left", "right"):
            view = panel._log_views[step]
            assert f"{step} says hello" in view.text.value  # each tab holds its own log
            assert view.text.layout.flex_flow == "column-reverse"  # its end in view
            assert "flex:none" in view.text.value  # the text never scrolls by itself
        for line in range(5):
            with open(log_path(run_id, "right", 1), "a") as handle:
                handle.write(f"line {line}\n")
            panel.render(status)
        assert picks == [], picks  # redraws left the pick alone
        assert "line 4" in panel._log_views["right"].text.value  # the other tab follows too
        status = apply(status, ContainerEvent("die", "right", 1, "right0000000", 110.0, 1,
                                              run_id))
        panel.render(status)
        assert panel.log_step == "right" and len(picks) == 1  # the first failure is shown
    finally:
        for leftover in folder.glob("*"):
            leftover.unlink()
        folder.rmdir()


def test_a_log_title_says_the_attempts_phase_now_even_without_new_output():
    status = status_with(ContainerEvent("create", "load", 1, "a" * 12, 1.0, run_id=RUN_ID))
    panel = RunPanel()
    panel.render(status)
    assert "attempt 1 · starting" in panel.shown_log()
    panel.render(apply(status, ContainerEvent("start", "load", 1, "a" * 12, 2.0,
                                              run_id=RUN_ID)))
    assert "attempt 1 · running" in panel.shown_log()
