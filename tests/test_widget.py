"""The panel: its HTML and widgets for given statuses (fast), then on a real run.

The browser test (test_browser_panel.py) checks what a person sees in
JupyterLab; these check the pieces without a browser. Tests named
test_on_docker_* need the Docker engine and a ZenML store.
"""

import time

from orchestrator.status.model import (
    AttemptPlaced,
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
    """(step, attempt, state, started, ended) of every bar of the timeline."""
    return [(step, int(attempt), state, float(started), float(ended)) for state, step, attempt,
            started, ended in re.findall(
                r'data-state="([^"]*)" data-start="[^"]*" data-end="[^"]*" data-step="([^"]*)" '
                r'data-attempt="(\d+)" data-started="([^"]*)" data-ended="([^"]*)"',
                panel.timeline.value)]


def test_the_graph_is_the_runs_dag_coloured_by_each_steps_phase_with_a_legend():
    status = status_with(*run_step("load"), *run_step("left", exit_code=2))
    panel = RunPanel()
    panel.render_all(status)
    assert graph_states(panel) == {name: phase.value for name, phase in status.phases.items()}
    assert graph_states(panel)["join"] == "skipped"
    # One arrow per dependency, and every phase in the legend.
    assert panel.graph.value.count("<line") == 4
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
    from orchestrator.status.model import ResourceSample

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
        assert panel.log_step.value == "left"  # a running step is shown by default
        assert "first line\nsecond &lt;line&gt;" in panel.log.value
        assert "following" in panel.log.value and str(path) in panel.log.value
        with open(path, "a") as handle:
            handle.write("third line\n")
        panel.render(status)
        assert "second &lt;line&gt;\nthird line" in panel.log.value
        status = apply(status, ContainerEvent("die", "left", 1, "c" * 12, 9.0, 3, run_id))
        panel.render(status)
        assert "following" not in panel.log.value and "exit code 3" in panel.log.value
        # A step that never ran has no log to pick; an attempt without a file says so.
        assert [value for _, value in panel.log_step.options] == ["left"]
        path.unlink()
        panel.show_log("left", 1)
        assert "first line" not in panel.log.value and "No output kept" in panel.log.value
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
    assert 'data-work-started="105.500"' in panel.timeline.value
    assert panel.timeline.value.count('data-wait="1"') == 1  # only the early one waited
    assert "waited for its upstream steps until 5.0 s" in panel.timeline.value

    from orchestrator.status.text import render_timeline

    row = next(line for line in render_timeline(status, now=110.0, width=44).splitlines()
               if line.startswith("left"))
    bars = row.split("|", 1)[1]
    assert bars.lstrip().startswith(":") and bars.rstrip().endswith(">")
