"""The panel as a person sees and uses it: JupyterLab in a real (headless) browser, real runs.

A private JupyterLab server (loopback, random port and token) serves a copy
of tests/browser/panel_demo.ipynb; its kernel uses this test session's ZenML
store and project folder. Chromium opens the notebook and runs all cells from
the menu; then the journey below reads the rendered page and clicks in it as
a user would, while each cell runs:

1. a pipeline with `ResourceSettings(memory="300MiB")`: its graph changes
   while the cell executes and ends with every step completed; its Stop
   button is off while the cell (the kernel) is busy; the Resources tab,
   picked while the cell runs, shows a running container's memory against
   the 300 MiB limit; the Timeline tab's bars have the containers' own
   start and exit times (Docker's events, read by this test), in the same
   order and with the same overlaps;
2. a failing pipeline: the failed step's whole output (its log file) is
   shown in the panel, after picking the step in "log of";
3. a long pipeline submitted with `synchronous=False` (the cell ends, the
   panel goes on following the run), stopped with the panel's Stop button
   and its confirmation: the panel shows the run stopped and no container
   of the run is left on the engine;
4. `watch_run("latest")`: picking an older run in "recent runs" attaches the
   panel to it (its graph shows that run's phases).

The journey runs once (a module fixture); each test checks one of its
findings. Screenshots go to artifacts/ (repository root): browser_panel_*.png.
"""

import importlib.util
import os
import re
import shutil
import threading
import time
from pathlib import Path

import pytest


def _load_helper(name):
    """Import tests/browser/<name>.py by path: works whether or not tests/ is a package."""
    path = Path(__file__).parent / "browser" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"browser_test_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_lab = _load_helper("lab")
JupyterLab, notebook_env = _lab.JupyterLab, _lab.notebook_env

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = Path(__file__).parent / "browser" / "panel_demo.ipynb"
ARTIFACTS = REPO_ROOT / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
DEMO_STEPS = ["load_numbers", "double_left", "double_right", "total"]
FAILING_PHASES = {"first_value": "completed", "fail_with": "failed",
                  "after_failure": "skipped", "independent": "completed"}
# A step after the failure never runs its code: skipped, or stopped when its
# container had been started early (waiting for its upstream) and was stopped.
NEVER_RAN = ("skipped", "stopped")


def failing_phases_match(graph):
    """Whether a graph shows the failing pipeline's phases."""
    rest = {step: phase for step, phase in graph.items() if step != "after_failure"}
    expected = {step: phase for step, phase in FAILING_PHASES.items()
                if step != "after_failure"}
    return rest == expected and graph.get("after_failure") in NEVER_RAN
STAGE_TIMEOUT = 600  # seconds for one cell, on a busy shared machine
PANEL = ".my-docker-run-panel"

# One reading of the page: each code cell (its marker, prompt, output's end) and
# each panel (which cell it is in, its run, graph, bars, resources, log).
READ_PAGE = """() => {
  const codeCells = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')];
  const cells = codeCells.map(c => {
    const source = (c.querySelector('.jp-InputArea-editor') || {}).innerText || '';
    const marker = (source.match(/# panel: (\\w+)/) || [])[1] || '';
    return {marker, prompt: ((c.querySelector('.jp-InputPrompt') || {}).innerText || '').trim(),
            output: ((c.querySelector('.jp-OutputArea') || {}).innerText || '').slice(-3000)};
  });
  const panels = [...document.querySelectorAll('%s')].map(p => {
    const cell = codeCells.indexOf(p.closest('.jp-CodeCell'));
    const header = p.querySelector('.widget-html');
    return {
      marker: cell >= 0 ? cells[cell].marker : '',
      run: ((header && header.querySelector('code')) || {}).innerText || '',
      text: p.innerText,
      graph: Object.fromEntries([...p.querySelectorAll('.md-graph-svg g[data-step]')]
                                .map(g => [g.dataset.step, g.dataset.state])),
      bars: [...p.querySelectorAll('.md-timeline-svg rect[data-step]')].map(r => ({
        step: r.dataset.step, attempt: +r.dataset.attempt, state: r.dataset.state,
        started: +r.dataset.started, ended: +r.dataset.ended, source: r.dataset.source})),
      resources: [...p.querySelectorAll('table.md-resources tr[data-step]')].map(r => ({
        step: r.dataset.step, memory: r.dataset.memory, limit: r.dataset.limit,
        text: r.innerText})),
      log: (p.querySelector('.md-log-text') || {}).innerText || '',
      logTitle: (p.querySelector('.md-log-title') || {}).innerText || '',
      stopDisabled: !!(p.querySelector('button.md-stop') || {}).disabled,
      message: (p.querySelector('.md-message') || {}).innerText || '',
    };
  });
  return {cells, panels};
}""" % PANEL


@pytest.fixture(scope="module")
def playwright_chromium():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's `chromium` package "
                    "(`apt-get install -y chromium`); `playwright install` cannot "
                    "download browsers here.")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class DockerEventLog:
    """Every start/die/destroy of our containers, from Docker's own event stream."""

    def __init__(self, client):
        from orchestrator.running.labels import container_events

        self.events = []
        self._stream = container_events(client)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        try:
            for raw in self._stream:
                if raw.get("Action") in ("create", "start", "die", "destroy"):
                    self.events.append(raw)
        except Exception:  # noqa: BLE001 - closed at the end
            pass

    def of_run(self, run_id):
        return [e for e in self.events
                if e["Actor"]["Attributes"].get("io.my-docker.pipeline-run-id") == run_id]

    def close(self):
        self._stream.close()
        self._thread.join(timeout=10)


class Journey:
    """Drives the notebook in the browser and keeps what it saw."""

    def __init__(self, page, lab, docker_events):
        self.page = page
        self.lab = lab
        self.docker_events = docker_events
        self.readings = []
        self.found = {}  # what the tests check
        self.error = None
        self.started = time.monotonic()
        self.trace = []  # what the journey did, when: written to artifacts/ for debugging

    def note(self, text):
        self.trace.append(f"{time.monotonic() - self.started:7.1f} s  {text}")
        (ARTIFACTS / "browser_panel_journey.log").write_text("\n".join(self.trace) + "\n")

    # -- reading the page ----------------------------------------------------
    def read(self):
        reading = self.page.evaluate(READ_PAGE)
        self.readings.append(reading)
        return reading

    @staticmethod
    def cell(reading, marker):
        return next(c for c in reading["cells"] if c["marker"] == marker)

    @staticmethod
    def panel(reading, marker):
        return next((p for p in reading["panels"] if p["marker"] == marker), None)

    def panel_locator(self, marker):
        cell = self.page.locator(".jp-Notebook .jp-CodeCell",
                                 has_text=f"# panel: {marker}")
        return cell.locator(PANEL).first

    def executing(self, reading, marker):
        return self.cell(reading, marker)["prompt"] == "[*]:"

    def executed(self, reading, marker):
        return bool(re.fullmatch(r"\[\d+\]:", self.cell(reading, marker)["prompt"]))

    def check_not_stuck(self, reading, marker):
        """Run All stops at a failing cell: then our cell never runs."""
        prompts = [c["prompt"] for c in reading["cells"]]
        mine = [c["marker"] for c in reading["cells"]].index(marker)
        done = [i for i, p in enumerate(prompts) if re.fullmatch(r"\[\d+\]:", p)]
        if done and "[*]:" not in prompts and max(done) < mine \
                and all(p in ("[ ]:", "") for p in prompts[max(done) + 1:mine + 1]):
            last = reading["cells"][max(done)]
            raise AssertionError(f"Run All stopped before cell '{marker}': the cell before "
                                 f"failed. Its output ends:\n{last['output']}")

    def wait_for(self, marker, condition, what, timeout=STAGE_TIMEOUT, on_reading=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reading = self.read()
            self.check_not_stuck(reading, marker)
            if on_reading is not None:
                on_reading(reading)
            if condition(reading):
                return reading
            time.sleep(0.4)
        last = self.readings[-1]
        raise AssertionError(f"cell '{marker}': {what} did not happen within {timeout} s; "
                             f"prompts: {[c['prompt'] for c in last['cells']]}; "
                             f"last panel: {self.panel(last, marker)}")

    def click_tab(self, marker, title):
        self.note(f"{marker}: click the {title} tab")
        self.panel_locator(marker).locator(".lm-TabBar-tab", has_text=title).first.click()

    def shot(self, marker, name):
        locator = self.panel_locator(marker)
        locator.scroll_into_view_if_needed()
        locator.screenshot(path=str(ARTIFACTS / f"browser_panel_{name}.png"))

    # -- the journey ---------------------------------------------------------
    def run(self):
        page = self.page
        page.goto(self.lab.url(NOTEBOOK.name), timeout=120_000)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        # The kernel is up when the status bar says so ("Python 3 (ipykernel) | Idle").
        page.get_by_text(re.compile(r"\| Idle$")).first.wait_for(timeout=180_000)
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        self.limited_run()
        self.failing_run()
        self.stopped_run()
        self.recent_runs()

    def limited_run(self):
        marker = "limited"
        graphs_while_running = []
        memory_rows = []
        state = {"resources_tab": False}

        def watch(reading):
            panel = self.panel(reading, marker)
            if panel is None or not self.executing(reading, marker):
                return
            if panel["graph"] and (not graphs_while_running
                                   or graphs_while_running[-1] != panel["graph"]):
                graphs_while_running.append(panel["graph"])
                state.setdefault("stop_while_busy", []).append(panel["stopDisabled"])
            running = [s for s, p in panel["graph"].items() if p == "running"]
            if running and not state["resources_tab"] and not state.get("live_shot"):
                self.shot(marker, "graph_live")  # the first moment a step runs
                state["live_shot"] = True
            if running and not state["resources_tab"] and state.get("live_shot") \
                    and len(graphs_while_running) >= 2:
                self.click_tab(marker, "Resources")
                state["resources_tab"] = True
            if state["resources_tab"] and panel["resources"] != state.get("rows"):
                state["rows"] = panel["resources"]
                self.note(f"limited: resources {panel['resources']}")
            live_rows = [r for r in panel["resources"] if "limit" in r["text"]]
            if live_rows:
                if not memory_rows:
                    self.shot(marker, "memory")
                memory_rows.extend(live_rows)

        self.note("limited: waiting for the run")
        self.wait_for(marker, lambda r: self.executed(r, marker), "the limited run's end",
                      on_reading=watch)
        self.note(f"limited: ended; graphs while running: {graphs_while_running}")
        self.found["graphs_while_running"] = graphs_while_running
        self.found["stop_while_busy"] = state.get("stop_while_busy", [])
        self.found["memory_rows"] = memory_rows
        self.click_tab(marker, "Graph")
        reading = self.wait_for(marker, lambda r: self.panel(r, marker)["graph"], "the graph")
        self.found["final_graph"] = self.panel(reading, marker)["graph"]
        self.shot(marker, "graph_final")
        self.click_tab(marker, "Timeline")
        reading = self.wait_for(marker, lambda r: self.panel(r, marker)["bars"], "the timeline")
        panel = self.panel(reading, marker)
        self.found["limited_run"] = panel["run"]
        self.found["bars"] = panel["bars"]
        self.shot(marker, "timeline")

    def failing_run(self):
        marker = "failing"
        self.note("failing: waiting for the run")
        self.wait_for(marker, lambda r: self.executed(r, marker), "the failing run's end")
        panel = self.panel_locator(marker)
        # Show another step's log first, then the failed step's: as a user would.
        select = panel.locator(".md-log-step select")
        select.select_option(label="independent (completed)")
        self.wait_for(marker, lambda r: "independent" in self.panel(r, marker)["logTitle"],
                      "the log of 'independent'", timeout=60)
        select.select_option(label="fail_with (failed)")
        reading = self.wait_for(
            marker, lambda r: self.panel(r, marker)["logTitle"].startswith("fail_with")
            and self.panel(r, marker)["log"].strip(), "the log of 'fail_with'", timeout=60)
        panel_reading = self.panel(reading, marker)
        self.found["failing_run"] = panel_reading["run"]
        self.found["failing_log"] = panel_reading["log"]
        self.found["failing_log_title"] = panel_reading["logTitle"]
        self.found["failing_graph"] = panel_reading["graph"]
        self.shot(marker, "failing_log")

    def stopped_run(self):
        marker = "stop"
        self.note("stop: waiting for long_left to run")
        # synchronous=False: the cell ends at once, the panel goes on following the run.
        reading = self.wait_for(marker, lambda r: self.executed(r, marker)
                                and self.panel(r, marker)
                                and self.panel(r, marker)["graph"].get("long_left") == "running"
                                and not self.panel(r, marker)["stopDisabled"],
                                "a running long_left with the Stop button on")
        self.found["stop_cell_output"] = self.cell(reading, marker)["output"]
        panel = self.panel_locator(marker)
        panel.locator("button.md-stop").click()
        panel.locator("button.md-confirm-stop").wait_for(state="visible", timeout=30_000)
        self.shot(marker, "stop_confirmation")
        clicked = time.monotonic()
        panel.locator("button.md-confirm-stop").click()
        self.note("stop: confirmed")
        reading = self.wait_for(
            marker, lambda r: re.search(r"run\s+\S+\s+stopped", self.panel(r, marker)["text"])
            and self.panel(r, marker)["graph"].get("join_two") in NEVER_RAN,
            "the panel showing the run stopped", timeout=180)
        self.found["stop_seconds"] = time.monotonic() - clicked
        panel_reading = self.panel(reading, marker)
        self.found["stopped_run"] = panel_reading["run"]
        self.found["stopped_text"] = panel_reading["text"]
        self.found["stopped_graph"] = panel_reading["graph"]
        self.found["stop_disabled_after"] = panel_reading["stopDisabled"]
        self.shot(marker, "stopped")
        self.note(f"stop: stopped after {self.found['stop_seconds']:.1f} s")

    def recent_runs(self):
        marker = "watched"
        self.note("watched: waiting for the panel")
        self.wait_for(marker, lambda r: self.executed(r, marker)
                      and self.panel(r, marker) is not None
                      and self.panel(r, marker)["run"], "the watched panel")
        failing = self.found["failing_run"]
        select = self.panel_locator(marker).locator(".md-runs select")
        deadline = time.monotonic() + 60
        labels = []
        while time.monotonic() < deadline:
            # (ipywidgets writes the labels' spaces as no-break spaces)
            labels = [label.replace("\xa0", " ") for label in
                      select.evaluate("s => [...s.options].map(o => o.textContent)")]
            if any(label.startswith(failing + " ") for label in labels):
                break
            time.sleep(0.5)
        self.found["recent_labels"] = labels
        self.note(f"watched: recent runs {labels}; picking {failing!r}")
        index = next(i for i, label in enumerate(labels) if label.startswith(failing + " "))
        select.select_option(index=index)
        reading = self.wait_for(
            marker, lambda r: self.panel(r, marker)["run"] == failing
            and failing_phases_match(self.panel(r, marker)["graph"]),
            "the panel attached to the picked run", timeout=90)
        self.found["picked"] = self.panel(reading, marker)
        self.shot(marker, "recent_runs")


@pytest.fixture(scope="module")
def journey(project_dir, tmp_path_factory, playwright_chromium, docker_client):
    root = tmp_path_factory.mktemp("notebooks")
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    state = tmp_path_factory.mktemp("jupyter")
    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob("browser_panel_*.png"):
        old.unlink()
    env = notebook_env(os.environ, project_dir)
    docker_events = DockerEventLog(docker_client)
    with JupyterLab(root, state, env) as lab:
        page = playwright_chromium.new_page(viewport={"width": 1500, "height": 1100})
        trip = Journey(page, lab, docker_events)
        try:
            trip.run()
        except BaseException as error:  # noqa: BLE001 - each test reports it
            trip.error = error
            page.screenshot(path=str(ARTIFACTS / "browser_panel_failure.png"), full_page=True)
            print(f"screenshot: {ARTIFACTS / 'browser_panel_failure.png'}\n"
                  f"last reading: {trip.readings[-1] if trip.readings else None}\n"
                  f"JupyterLab log:\n{lab.log_tail()}")
        finally:
            page.close()
            (ARTIFACTS / "browser_panel_journey.log").write_text(
                "\n".join(trip.trace + [f"error: {trip.error!r}"]) + "\n")
    docker_events.close()
    return trip


def found(journey, *keys):
    """What the journey found, or its error if it never got there."""
    missing = [key for key in keys if key not in journey.found]
    if missing:
        raise AssertionError(f"the browser journey did not get to {missing}: "
                             f"{journey.error!r}") from journey.error
    return [journey.found[key] for key in keys]


def run_id_of(run_name):
    from zenml.client import Client

    return str(Client().get_pipeline_run(run_name).id)


def test_the_graph_changes_while_the_cell_runs_and_ends_with_every_step_completed(journey):
    graphs, final = found(journey, "graphs_while_running", "final_graph")
    assert len(graphs) >= 2, f"the graph never changed while its cell executed: {graphs}"
    assert any("running" in graph.values() for graph in graphs), graphs
    assert final == dict.fromkeys(DEMO_STEPS, "completed"), final


def test_while_its_cell_runs_the_panels_stop_button_is_off(journey):
    (while_busy,) = found(journey, "stop_while_busy")
    assert while_busy and all(while_busy), while_busy


def test_memory_is_shown_against_the_resource_settings_limit(journey):
    (rows,) = found(journey, "memory_rows")
    assert rows, "the Resources tab never showed a running container's memory"
    limit = 300 * 1024 * 1024
    assert all(int(row["limit"]) == limit for row in rows), rows
    assert all(0 < int(row["memory"]) < limit for row in rows), rows
    assert any(re.search(r"\d+ MiB / 300 MiB limit \(\d+%\)", row["text"]) for row in rows), rows


def test_the_timeline_bars_have_the_containers_own_start_and_exit_times(journey):
    run_name, bars = found(journey, "limited_run", "bars")
    events = journey.docker_events.of_run(run_id_of(run_name))
    containers = {}
    for raw in events:
        labels = raw["Actor"]["Attributes"]
        key = (labels["io.my-docker.step"], int(labels["io.my-docker.attempt"]))
        containers.setdefault(key, {}).setdefault(raw["Action"], raw["timeNano"] / 1e9)
    shown = {(bar["step"], bar["attempt"]): bar for bar in bars}
    assert set(shown) == {key for key, seen in containers.items() if "start" in seen}, (
        shown, containers)
    for key, bar in shown.items():
        assert bar["source"] == "container" and bar["state"] == "completed", bar
        assert bar["started"] == pytest.approx(containers[key]["start"], abs=0.05), key
        assert bar["ended"] == pytest.approx(containers[key]["die"], abs=0.05), key
    # The same order of starts, and the same pairs running at the same time.
    by_start = sorted(shown, key=lambda k: shown[k]["started"])
    assert by_start == sorted(shown, key=lambda k: containers[k]["start"])

    def overlap(a, b):
        return a[0] < b[1] and b[0] < a[1]

    for a in shown:
        for b in shown:
            if a < b:
                docker_a = (containers[a]["start"], containers[a]["die"])
                docker_b = (containers[b]["start"], containers[b]["die"])
                panel_a = (shown[a]["started"], shown[a]["ended"])
                panel_b = (shown[b]["started"], shown[b]["ended"])
                assert overlap(panel_a, panel_b) == overlap(docker_a, docker_b), (a, b)
    # The two branches ran in parallel, and the pictures show it.
    assert overlap((shown[("double_left", 1)]["started"], shown[("double_left", 1)]["ended"]),
                   (shown[("double_right", 1)]["started"],
                    shown[("double_right", 1)]["ended"]))


def test_a_failing_steps_whole_log_is_reachable_from_the_panel(journey):
    from orchestrator.status.logs import log_path

    run_name, log, title, graph = found(journey, "failing_run", "failing_log",
                                        "failing_log_title", "failing_graph")
    assert failing_phases_match(graph), graph
    kept = log_path(run_id_of(run_name), "fail_with", 1).read_text()
    assert "this step fails on purpose" in kept and "Traceback" in kept
    assert log.strip() == kept.strip(), "the panel did not show the whole log file"
    assert title.startswith("fail_with · attempt 1 · failed"), title


def test_the_stop_button_ends_a_running_pipeline_and_leaves_no_container(journey, docker_client):
    from orchestrator.running.labels import find_containers

    run_name, text, graph, disabled = found(journey, "stopped_run", "stopped_text",
                                            "stopped_graph", "stop_disabled_after")
    run_id = run_id_of(run_name)
    assert re.search(r"run\s+\S+\s+stopped", text), text
    assert graph["long_left"] == "stopped" and graph["long_right"] == "stopped", graph
    assert graph["join_two"] in NEVER_RAN, graph
    assert disabled, "the Stop button stayed on after the run ended"
    assert find_containers(docker_client, pipeline_run_id=run_id) == []
    actions = [raw["Action"] for raw in journey.docker_events.of_run(run_id)]
    assert actions.count("destroy") == actions.count("create"), actions
    from zenml.client import Client

    assert str(Client().get_pipeline_run(run_id).status.value) == "stopped"


def test_picking_an_older_run_in_recent_runs_attaches_the_panel_to_it(journey):
    labels, picked, failing, stopped = found(journey, "recent_labels", "picked", "failing_run",
                                             "stopped_run")
    assert labels[0].startswith(stopped + " "), labels  # newest first
    assert any(label.startswith(failing + " · failed") for label in labels), labels
    assert picked["run"] == failing and failing_phases_match(picked["graph"]), picked
    assert re.search(r"run\s+\S+\s+failed", picked["text"]), picked["text"]
