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
   the 300 MiB limit; a step's log tab picked while the cell runs is shown at
   once and stays; the Timeline tab's bars have the containers' own start
   and exit times (Docker's events, read by this test), in the same order
   and with the same overlaps;
2. a failing pipeline (a failed step, a skipped step whose container was
   started early and only waited): the failed step's log opens with its
   last line in view and is its whole log file; the timeline's work
   segments are the step runs' own start and end (ZenML's record), in their
   order; the skipped step's container shows no work and no exit code; at
   800 px with the file browser open the Stop button and every tab are on
   screen; both panels on the page draw their own arrowheads;
3. a long pipeline submitted with `synchronous=False` (the cell ends, the
   panel goes on following the run), stopped with the panel's Stop button
   and its confirmation: the panel shows the run stopped and no container
   of the run is left on the engine;
4. `watch_run("latest")`: picking an older run in "recent runs" attaches the
   panel to it (its graph shows that run's phases).

The journey runs once (a module fixture); each test checks one of its
findings. Screenshots go to artifacts/ (repository root): browser_panel_*.png,
among them the failing run's panel at 1,100 px and at 800 px with the file
browser open (browser_panel_1100.png, browser_panel_800.png).
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
WORK = "the step's work"

# Where the visible log box of a panel stands: its last line, and whether that
# line is inside the box as it is shown (no scrolling by the reader).
LOG_END = """p => {
  const box = [...p.querySelectorAll('.md-log-view')].find(b => b.offsetParent !== null);
  if (!box) return null;
  const pre = box.querySelector('.md-log-text');
  const text = pre.textContent, end = text.replace(/\\s+$/, '').length;
  const last = text.slice(0, end).split('\\n').pop();
  const range = document.createRange();
  range.setStart(pre.firstChild, end - last.length);
  range.setEnd(pre.firstChild, end);
  const rects = [...range.getClientRects()], outer = box.getBoundingClientRect();
  return {last, rects: rects.length, outer: [outer.top, outer.bottom],
          inside: rects.length > 0 && rects.every(r => r.top >= outer.top - 1
                                                   && r.bottom <= outer.bottom + 1),
          scrollHeight: box.scrollHeight, clientHeight: box.clientHeight};
}"""

# Whether an element is on screen and not covered or clipped: the page's
# topmost element at its centre is it (or inside it).
# How far a panel reaches past its output area, and each shown log box past its
# own width, in pixels (0: nothing scrolls sideways).
SIDEWAYS = """p => {
  const out = p.closest('.jp-OutputArea-output') || p.parentElement;
  const shown = [...p.querySelectorAll('.md-log-view')].filter(v => v.offsetParent !== null);
  return {panel: p.scrollWidth - p.clientWidth, output: out.scrollWidth - out.clientWidth,
          logs: shown.map(v => v.scrollWidth - v.clientWidth)};
}"""

ON_SCREEN = """e => {
  const r = e.getBoundingClientRect();
  const x = r.left + r.width / 2, y = r.top + r.height / 2;
  if (r.width < 8 || r.height < 8 || x < 0 || y < 0 || x > innerWidth || y > innerHeight)
    return false;
  const top = document.elementFromPoint(x, y);
  return !!top && (e === top || e.contains(top));
}"""

# Each panel's graph: every arrow's marker is found by its id in the same <svg>
# (an id shared by two drawings is found in the first one only: a hidden first
# panel would take the second one's arrowheads).
ARROWS = """() => [...document.querySelectorAll('.md-graph-svg')].map(svg => {
  const refs = [...svg.querySelectorAll('[marker-end]')]
    .map(e => e.getAttribute('marker-end').match(/#([^)]+)/)[1]);
  return {arrows: refs.length,
          own: refs.every(id => { const m = document.getElementById(id);
                                  return !!m && svg.contains(m)
                                    && document.querySelectorAll('[id="' + id + '"]').length === 1; })};
})"""
PANEL = ".my-docker-run-panel"

# One reading of the page: each code cell (its marker, prompt, output's end) and
# each panel (which cell it is in, its run, graph, bars, resources, log).
READ_PAGE = """() => {
  const shown = (root, selector) => [...root.querySelectorAll(selector)]
    .find(e => e.offsetParent !== null);
  const codeCells = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')];
  const cells = codeCells.map(c => {
    const source = (c.querySelector('.jp-InputArea-editor') || {}).innerText || '';
    const marker = (source.match(/# panel: (\\w+)/) || [])[1] || '';
    return {marker, prompt: ((c.querySelector('.jp-InputPrompt') || {}).innerText || '').trim(),
            output: ((c.querySelector('.jp-OutputArea') || {}).innerText || '').slice(-3000)};
  });
  const panels = [...document.querySelectorAll('%s')].map(p => {
    const cell = codeCells.indexOf(p.closest('.jp-CodeCell'));
    const header = p.querySelector('.md-header');
    return {
      marker: cell >= 0 ? cells[cell].marker : '',
      run: ((header && header.querySelector('code')) || {}).innerText || '',
      text: p.innerText,
      graph: Object.fromEntries([...p.querySelectorAll('.md-graph-svg g[data-step]')]
                                .map(g => [g.dataset.step, g.dataset.state])),
      bars: [...p.querySelectorAll('.md-timeline span[data-bar]')].map(r => ({
        step: r.dataset.bar, attempt: +r.dataset.attempt, state: r.dataset.state,
        started: +r.dataset.started, ended: +r.dataset.ended, source: r.dataset.source,
        neverRan: r.dataset.neverRan === '1'})),
      segments: [...p.querySelectorAll('.md-timeline-svg rect[data-phase]')].map(r => ({
        step: r.dataset.step, attempt: +r.dataset.attempt, phase: r.dataset.phase,
        started: +r.dataset.started, ended: +r.dataset.ended})),
      rows: [...p.querySelectorAll('table.md-steps tr[data-step]')].map(r => ({
        step: r.dataset.step, state: r.dataset.state,
        cells: [...r.cells].map(c => c.textContent.trim())})),
      resources: [...p.querySelectorAll('table.md-resources tr[data-step]')].map(r => ({
        step: r.dataset.step, memory: r.dataset.memory, limit: r.dataset.limit,
        text: r.innerText})),
      log: (shown(p, '.md-log-text') || {}).innerText || '',
      logTitle: (shown(p, '.md-log-title') || {}).innerText || '',
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

    def show_file_browser(self, shown):
        """Open (or close) JupyterLab's left sidebar with the file browser."""
        browser = self.page.locator("#filebrowser")
        if browser.is_visible() != shown:
            self.page.locator('.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="filebrowser"]'
                              ).first.click()
            self.page.wait_for_timeout(400)

    def layout_shots(self, marker, tag):
        """The user's view of a panel at 1,100 px, then at 800 px with the file browser
        open (JupyterLab's default): artifacts/browser_panel_<width>[_<tag>].png."""
        suffix = f"_{tag}" if tag else ""
        for width, files in ((1100, False), (800, True)):
            self.page.set_viewport_size({"width": width, "height": 1000})
            self.show_file_browser(files)
            locator = self.panel_locator(marker)
            locator.scroll_into_view_if_needed()
            locator.evaluate("p => p.scrollIntoView({block: 'start'})")
            self.page.wait_for_timeout(600)
            self.page.screenshot(path=str(ARTIFACTS / f"browser_panel_{width}{suffix}.png"))
            self.found.setdefault("sideways", {})[f"{width}{suffix}"] = locator.evaluate(SIDEWAYS)
        self.page.set_viewport_size({"width": 1500, "height": 1100})
        self.show_file_browser(False)

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
            if panel["graph"].get("load_numbers") == "completed" and "picked_at" not in state \
                    and any(p == "running" for p in panel["graph"].values()):
                # As a user would while the cell runs: another step's log.
                self.note("limited: pick the log of load_numbers while the cell runs")
                self.panel_locator(marker).locator(".md-log-tabs .lm-TabBar-tab",
                                                   has_text="load_numbers").first.click()
                state["picked_at"] = time.monotonic()
            if "picked_at" in state:
                state.setdefault("titles_after_pick", []).append(
                    (round(time.monotonic() - state["picked_at"], 2), panel["logTitle"]))
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
        self.found["titles_after_pick"] = state.get("titles_after_pick", [])
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
        # The failed step's log is shown by default, opened at its end.
        reading = self.wait_for(
            marker, lambda r: self.panel(r, marker)["logTitle"].startswith("fail_with")
            and self.panel(r, marker)["log"].strip(), "the log of 'fail_with'", timeout=60)
        panel.scroll_into_view_if_needed()
        self.found["failing_log_end"] = panel.evaluate(LOG_END)
        # Another step's log, then the failed step's again: as a user would.
        panel.locator(".md-log-tabs .lm-TabBar-tab", has_text="independent").first.click()
        self.wait_for(marker, lambda r: "independent" in self.panel(r, marker)["logTitle"],
                      "the log of 'independent'", timeout=60)
        panel.locator(".md-log-tabs .lm-TabBar-tab", has_text="fail_with").first.click()
        reading = self.wait_for(
            marker, lambda r: self.panel(r, marker)["logTitle"].startswith("fail_with")
            and self.panel(r, marker)["log"].strip(), "the log of 'fail_with'", timeout=60)
        panel_reading = self.panel(reading, marker)
        self.found["failing_run"] = panel_reading["run"]
        self.found["failing_log"] = panel_reading["log"]
        self.found["failing_log_title"] = panel_reading["logTitle"]
        self.found["failing_graph"] = panel_reading["graph"]
        self.found["failing_rows"] = panel_reading["rows"]
        self.shot(marker, "failing_log")
        self.click_tab(marker, "Timeline")
        reading = self.wait_for(marker, lambda r: self.panel(r, marker)["segments"],
                                "the failing run's timeline")
        self.found["failing_bars"] = self.panel(reading, marker)["bars"]
        self.found["failing_segments"] = self.panel(reading, marker)["segments"]
        self.found["arrows"] = self.page.evaluate(ARROWS)
        self.narrow_page(marker)
        self.layout_shots(marker, "")

    def narrow_page(self, marker):
        """JupyterLab at 800 px with its file browser open: is every control on screen?"""
        self.page.set_viewport_size({"width": 800, "height": 1000})
        self.show_file_browser(True)
        panel = self.panel_locator(marker)
        panel.evaluate("p => p.scrollIntoView({block: 'start'})")
        self.page.wait_for_timeout(600)
        self.found["narrow_panel_width"] = panel.evaluate("p => p.getBoundingClientRect().width")
        self.found["narrow_stop"] = panel.locator("button.md-stop").evaluate(ON_SCREEN)
        tabs = panel.locator(".md-tabs .lm-TabBar-tab")
        self.found["narrow_tabs"] = {tabs.nth(i).inner_text(): tabs.nth(i).evaluate(ON_SCREEN)
                                     for i in range(tabs.count())}
        self.found["narrow_timeline_fits"] = panel.evaluate(
            """p => { const t = p.querySelector('.md-timeline-scroll');
                      const r = t.getBoundingClientRect(), o = p.getBoundingClientRect();
                      return r.right <= o.right + 1 && r.left >= o.left - 1; }""")
        self.page.set_viewport_size({"width": 1500, "height": 1100})
        self.show_file_browser(False)

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


def test_picking_another_steps_log_while_the_cell_runs_shows_that_log(journey):
    (titles,) = found(journey, "titles_after_pick")
    shown = [i for i, (_, title) in enumerate(titles) if title.startswith("load_numbers")]
    assert shown, f"the picked log never showed while the cell ran: {titles}"
    first = shown[0]
    assert titles[first][0] < 5.0, titles  # at once, not once the cell ended
    after = titles[first:]
    assert len(after) >= 3 and all(t.startswith("load_numbers") for _, t in after), (
        f"the pick was taken back while the cell ran: {titles}")


def test_the_failing_runs_timeline_draws_each_steps_work_where_zenml_says_it_ran(journey):
    from zenml.client import Client

    from orchestrator.running.labels import STARTED_EARLY_LABEL
    from orchestrator.zenml_records import epoch_seconds

    run_name, bars, segments = found(journey, "failing_run", "failing_bars",
                                     "failing_segments")
    run = Client().get_pipeline_run(run_name)
    own = {name: (epoch_seconds(step.start_time), epoch_seconds(step.end_time))
           for name, step in run.steps.items()
           if step.start_time is not None and str(step.status.value) != "skipped"}
    work = {seg["step"]: (seg["started"], seg["ended"]) for seg in segments
            if seg["phase"] == WORK}
    assert set(work) == set(own), (work, own)
    for step, (start, end) in own.items():
        assert work[step][0] == pytest.approx(start, abs=0.01), (step, work[step], own[step])
        assert work[step][1] == pytest.approx(end, abs=0.01), (step, work[step], own[step])
    assert sorted(work, key=lambda s: work[s][0]) == sorted(own, key=lambda s: own[s][0])
    # Within a container, phases follow one another and never overlap.
    for bar in bars:
        mine = sorted((seg for seg in segments if seg["step"] == bar["step"]
                       and seg["attempt"] == bar["attempt"]), key=lambda seg: seg["started"])
        assert mine and mine[0]["started"] == pytest.approx(bar["started"], abs=0.002)
        for a, b in zip(mine, mine[1:]):
            assert a["ended"] <= b["started"] + 0.002, mine
    # Some container was started early (its upstream step still ran): after_failure's.
    events = journey.docker_events.of_run(run_id_of(run_name))
    early = {raw["Actor"]["Attributes"]["io.my-docker.step"] for raw in events
             if raw["Actor"]["Attributes"].get(STARTED_EARLY_LABEL) == "true"}
    assert "after_failure" in early, early


def test_a_skipped_steps_container_shows_no_exit_code_and_no_work(journey):
    bars, segments, rows = found(journey, "failing_bars", "failing_segments", "failing_rows")
    skipped = [bar for bar in bars if bar["step"] == "after_failure"]
    assert skipped and all(bar["neverRan"] and bar["state"] == "skipped" for bar in skipped), bars
    assert not [seg for seg in segments if seg["step"] == "after_failure"
                and seg["phase"] == WORK], segments
    row = next(row for row in rows if row["step"] == "after_failure")
    exit_cell, memory_cell = row["cells"][6], row["cells"][7]
    assert exit_cell == "" and memory_cell == "", row
    failed = next(row for row in rows if row["step"] == "fail_with")
    assert failed["cells"][6] == "1", failed  # a step that ran keeps its exit code


def test_the_failed_steps_log_opens_with_its_last_line_in_view(journey):
    from orchestrator.status.logs import log_path

    run_name, end = found(journey, "failing_run", "failing_log_end")
    kept = log_path(run_id_of(run_name), "fail_with", 1).read_text()
    last = [line for line in kept.splitlines() if line.strip()][-1]
    assert end is not None and end["last"].strip() == last.strip(), (end, last)
    assert end["inside"], f"the last line is not in view without scrolling: {end}"
    assert end["scrollHeight"] > end["clientHeight"], end  # (a log longer than its box)


def test_at_800_px_with_the_file_browser_open_stop_and_every_tab_are_on_screen(journey):
    width, stop, tabs, fits = found(journey, "narrow_panel_width", "narrow_stop",
                                    "narrow_tabs", "narrow_timeline_fits")
    assert width < 500, width  # (the file browser took its share)
    assert stop, "the Stop button is not on screen"
    assert set(tabs) == {"Graph", "Timeline", "Steps", "Resources"} and all(tabs.values()), tabs
    assert fits, "the timeline is wider than the panel"


def test_the_panel_and_its_log_box_never_scroll_sideways(journey):
    (sideways,) = found(journey, "sideways")
    # (a widget 100% wide plus its margins made the panel scroll by 4 px at every width)
    assert sideways and all(seen["panel"] <= 0 and seen["output"] <= 0
                            and all(x <= 0 for x in seen["logs"])
                            for seen in sideways.values()), sideways


def test_two_panels_on_one_page_both_draw_arrowheads(journey):
    (arrows,) = found(journey, "arrows")
    drawn = [graph for graph in arrows if graph["arrows"]]
    assert len(drawn) >= 2 and all(graph["own"] for graph in drawn), arrows


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
