"""The panel as a person sees it: JupyterLab in a real (headless) browser.

A private JupyterLab server (loopback, random port and token) serves a copy
of tests/browser/panel_demo.ipynb; its kernel uses this test session's ZenML
store and project folder. Chromium opens the notebook, runs all cells from
the menu, and the test reads the rendered page while the pipeline runs:

* the panel must update while its cell is still executing (a step shown
  running while the cell's prompt is still `[*]`): updates made from the
  watcher's background threads really reach the browser;
* at the end it must show every step completed, with the progress counts;
* `watch_run("latest")` in a later cell must show the same run.

Screenshots go to artifacts/ (repository root): browser_panel.png (the page),
browser_panel_widget.png (the panel at the end), browser_panel_running.png (the
panel while steps ran), browser_panel_failure.png on failure.
"""

import importlib.util
import os
import re
import shutil
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
STEPS = ["load_numbers", "double_left", "double_right", "total"]
RUN_TIMEOUT = 900  # seconds for the whole notebook, on a busy shared machine
PANEL = ".my-docker-run-panel"

# One reading of the page: every panel's text, and whether the cell holding the
# `with live_panel()` block is still executing (its prompt shows `[*]`).
READ_PAGE = """() => {
  const panels = [...document.querySelectorAll('%s')].map(p => p.innerText);
  const cells = [...document.querySelectorAll('.jp-Notebook .jp-Cell')];
  const live = cells.find(c => (c.querySelector('.jp-InputArea-editor') || {}).innerText
                               ?.includes('with live_panel()'));
  const prompt = live ? (live.querySelector('.jp-InputPrompt') || {}).innerText || '' : '';
  const errors = [...document.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
      .map(e => e.innerText).filter(t => /Error|Traceback/.test(t));
  return {panels, prompt, errors};
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


def finished_panel(text):
    """Whether a panel's text shows the run completed with all steps counted."""
    return "4/4 steps finished" in text and re.search(r"run\s+\S+\s+completed", text)


def test_the_panel_updates_live_in_jupyterlab_and_ends_with_every_step_completed(
        project_dir, tmp_path, playwright_chromium):
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    state = tmp_path / "jupyter"
    state.mkdir()
    ARTIFACTS.mkdir(exist_ok=True)
    env = notebook_env(os.environ, project_dir)

    with JupyterLab(root, state, env) as lab:
        page = playwright_chromium.new_page(viewport={"width": 1500, "height": 1100})
        readings = []
        running_shot = ARTIFACTS / "browser_panel_running.png"
        running_shot.unlink(missing_ok=True)
        mid_run_shot_taken = False
        try:
            page.goto(lab.url(NOTEBOOK.name), timeout=120_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            # The kernel is up when the status bar says so ("Python 3 (ipykernel) | Idle").
            page.get_by_text(re.compile(r"\| Idle$")).first.wait_for(timeout=180_000)
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

            deadline = time.monotonic() + RUN_TIMEOUT
            while time.monotonic() < deadline:
                reading = page.evaluate(READ_PAGE)
                readings.append(reading)
                assert not reading["errors"], "a cell failed:\n" + "\n".join(reading["errors"])
                panels = reading["panels"]
                if (not mid_run_shot_taken and panels and reading["prompt"].strip() == "[*]:"
                        and re.search(r"\brunning\b", panels[0])):
                    # The first running moment, replaced by one with some steps done.
                    page.locator(PANEL).first.screenshot(path=str(running_shot))
                    mid_run_shot_taken = bool(
                        re.search(r"\b[1-3]/4 steps finished", panels[0])
                        and re.search(r"(double_left|double_right|total)\s+running", panels[0]))
                if len(panels) == 2 and all(finished_panel(p) for p in panels):
                    break
                time.sleep(0.5)
            else:
                last = readings[-1] if readings else {}
                raise AssertionError(
                    f"the panels did not show a completed run within {RUN_TIMEOUT} s; "
                    f"last reading: {last}")

            live_panel_text, watched_text = readings[-1]["panels"]
            for text in (live_panel_text, watched_text):
                for step in STEPS:
                    assert re.search(rf"{step}\s+completed", text), text
                assert "4/4 steps finished" in text and "4 completed" in text, text
            # The live panel knew each step's container; the later one only ZenML's record.
            assert len(re.findall(r"\b[0-9a-f]{12}\b", live_panel_text)) == 4, live_panel_text

            during = [r for r in readings if r["prompt"].strip() == "[*]:" and r["panels"]]
            assert during, "never saw the panel while its cell was executing"
            assert any(re.search(r"\brunning\b", r["panels"][0]) and
                       "4/4 steps finished" not in r["panels"][0] for r in during), (
                "the panel never showed a running step while its cell executed: "
                "background updates did not reach the browser")

            widget = page.locator(PANEL).first
            widget.scroll_into_view_if_needed()
            widget.screenshot(path=str(ARTIFACTS / "browser_panel_widget.png"))
            page.screenshot(path=str(ARTIFACTS / "browser_panel.png"), full_page=False)
        except BaseException:
            page.screenshot(path=str(ARTIFACTS / "browser_panel_failure.png"), full_page=True)
            print(f"screenshot: {ARTIFACTS / 'browser_panel_failure.png'}\n"
                  f"last readings: {readings[-3:]}\nJupyterLab log:\n{lab.log_tail()}")
            raise
        finally:
            page.close()
