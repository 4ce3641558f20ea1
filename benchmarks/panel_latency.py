"""How fast the live panel follows a run, and what a redraw costs, for 10 and 100 steps.

Two measurements, printed as medians (the machine is shared and noisy):

1. **Redraw cost** (no Docker): statuses of a wide pipeline with 10 and 100
   steps (a source, parallel steps, some retried, some running with memory
   samples, a join) are drawn by the panel (`RunPanel`): the tab shown (what
   every update costs), every tab, and each part alone, with the HTML size
   a redraw sends to the browser.
2. **Update latency** on real runs: a wide pipeline of N steps (written into
   a private project folder, as a user's would be) runs in a subprocess; this
   process watches it the way `live_panel()` does (`NextRun` finds the run,
   a `RunWatcher` takes over its Docker event stream, a `RunPanel` is fed by
   the watcher) and, independently, listens to Docker's event stream itself.
   For every create/start/die of the run's containers it compares Docker's
   own timestamp with the moment the model (listener called) and the panel
   (widgets redrawn) first showed that fact. Goal: median <= 100 ms, worst
   <= 1 s (events after the watcher attached; events before it are shown
   as soon as it attaches and are listed apart).

    python benchmarks/panel_latency.py [--steps 10 100] [--runs 1] [--redraw-only]

It makes its own ZenML store and project folder in a temporary directory
(the four reference commands), so it never touches anyone else's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List

WORKDIR = Path(tempfile.mkdtemp(prefix="panel-latency-"))
# ZenML reads its config path once, at import: set it before anything imports zenml.
os.environ["ZENML_CONFIG_PATH"] = str(WORKDIR / "zenml-config")
os.environ["ZENML_ANALYTICS_OPT_IN"] = "false"
os.environ["ZENML_LOGGING_COLORS_DISABLED"] = "true"

# A wide pipeline of `steps` steps: one source, steps - 2 parallel steps, a join.
WIDE_PIPELINE = '''
from zenml import pipeline, step


@step(enable_cache=False)
def source() -> int:
    return 1


@step(enable_cache=False)
def branch() -> None:
    pass


@step(enable_cache=False)
def join() -> None:
    pass


@pipeline(enable_cache=False, name="wide_{steps}")
def wide() -> None:
    source()
    names = []
    for i in range({steps} - 2):
        branch(id=f"branch_{{i:03d}}", after="source")
        names.append(f"branch_{{i:03d}}")
    join(after=names)


if __name__ == "__main__":
    wide()
'''


# --------------------------------------------------------------------------
# 1. Redraw cost
# --------------------------------------------------------------------------


def synthetic_status(steps: int):
    """A wide run in the middle: 60% of branches done (every 7th retried), the rest running."""
    from orchestrator.status.events import ContainerEvent, ResourceSample
    from orchestrator.status.reducer import apply, new_run_status

    run_id = "0" * 8 + "-bench-" + str(steps)
    spec = {"source": {"upstream": []}}
    branches = [f"branch_{i:03d}" for i in range(steps - 2)]
    for name in branches:
        spec[name] = {"upstream": ["source"], "max_retries": 1}
    spec["join"] = {"upstream": branches}
    status = new_run_status(run_id, spec, run_name=f"wide_{steps}-bench", pipeline_name="wide")

    def event(action, step, attempt, t, code=None):
        return ContainerEvent(action, step, attempt, f"{step[-6:]}{attempt:06d}", t, code, run_id)

    t0 = 1_000.0
    for e in (event("create", "source", 1, t0), event("start", "source", 1, t0 + 0.5),
              event("die", "source", 1, t0 + 3, 0)):
        status = apply(status, e)
    for i, name in enumerate(branches):
        t = t0 + 3 + 0.3 * i
        status = apply(apply(status, event("create", name, 1, t)), event("start", name, 1, t + 0.2))
        status = apply(status, ResourceSample(name, 1, t + 1, 0.5, 100 << 20, 300 << 20, 1.0))
        if i < 0.6 * len(branches):
            retried = i % 7 == 0
            status = apply(status, event("die", name, 1, t + 3, 1 if retried else 0))
            if retried:
                status = apply(apply(status, event("create", name, 2, t + 4)),
                               event("start", name, 2, t + 4.2))
    return status


def timed(action: Callable[[], object], repetitions: int) -> List[float]:
    action()  # warm (caches, imports)
    times = []
    for _ in range(repetitions):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return times


def redraw_parts(panel, status, now: float) -> Dict[str, Callable[[], object]]:
    """What is timed: a panel update, a redraw of every tab, and each part alone.

    The clock moves on by 0.1 s between calls, so running steps' bars and
    durations change as in a live run (an unchanged value is not sent).
    """
    import json
    from itertools import count

    from orchestrator.status import panel_html

    ticks = count()

    def clock() -> float:
        return now + 0.1 * next(ticks)

    def message() -> object:
        # What the kernel encodes for the browser when every tab changed.
        return json.dumps({"value": [panel.graph.value, panel.timeline.value,
                                     panel.table.value, panel.resources.value]})

    return {
        "update (tab shown)": lambda: panel.render(status, clock()),
        "every tab": lambda: panel.render_all(status, clock()),
        "  graph": lambda: panel_html.graph_html(status),
        "  timeline": lambda: panel_html.timeline_html(status, clock()),
        "  steps table": lambda: panel_html.table_html(status, clock()),
        "  resources": lambda: panel_html.resources_html(status),
        "  JSON of all tabs": message,
    }


def redraw_cost(steps_list: List[int], repetitions: int = 30) -> None:
    from orchestrator.status import panel_html
    from orchestrator.status.widget import RunPanel

    print("Redraw cost (this process; ms per redraw, median / max of "
          f"{repetitions}; KB of HTML sent):")
    for steps in steps_list:
        status = synthetic_status(steps)
        now = status.updated_at + 5
        parts = redraw_parts(RunPanel(), status, now)
        sizes = {"  graph": len(panel_html.graph_html(status)),
                 "  timeline": len(panel_html.timeline_html(status, now)),
                 "  steps table": len(panel_html.table_html(status, now)),
                 "  resources": len(panel_html.resources_html(status))}
        print(f"  {steps} steps:")
        for name, action in parts.items():
            times = timed(action, repetitions)
            size = f"  {sizes[name] / 1024:.0f} KB" if name in sizes else ""
            print(f"    {name:<20} {statistics.median(times) * 1000:6.1f} / "
                  f"{max(times) * 1000:6.1f} ms{size}")


# --------------------------------------------------------------------------
# 2. Update latency on real runs
# --------------------------------------------------------------------------


def set_up_project() -> Path:
    from orchestrator.machine.stack import register_stack

    project = WORKDIR / "project"
    project.mkdir()
    register_stack(project, echo=None)
    os.chdir(project)
    return project


class FirstSeen:
    """When each (step, attempt, fact) was first seen by a consumer."""

    def __init__(self) -> None:
        self.first_seen: Dict[tuple, float] = {}
        self.lock = threading.Lock()

    def see(self, status) -> None:
        now = time.time()
        with self.lock:
            for step in status.steps:
                for attempt in step.attempts:
                    facts = []
                    if attempt.container_state is not None:
                        facts.append("create")
                    if attempt.started_at is not None:
                        facts.append("start")
                    if attempt.exit_code is not None:
                        facts.append("die")
                    for fact in facts:
                        self.first_seen.setdefault((step.name, attempt.number, fact), now)


def docker_event_times(stop: threading.Event, found: list) -> None:
    """Our own subscription to Docker's events: the reference timestamps."""
    import docker

    client = docker.from_env()
    stream = client.events(decode=True, filters={
        "type": "container", "label": ["io.my-docker.managed-by=my_docker"]})
    threading.Thread(target=lambda: (stop.wait(), stream.close()), daemon=True).start()
    try:
        for raw in stream:
            if raw.get("Action") in ("create", "start", "die"):
                found.append(raw)
    except Exception:  # noqa: BLE001 - closed at the end
        pass
    client.close()


def measure_one(steps: int, project: Path) -> dict:
    from orchestrator.status.next_run import NextRun
    from orchestrator.status.watcher import RunWatcher
    from orchestrator.status.widget import RunPanel

    script = project / f"wide_{steps}.py"
    script.write_text(WIDE_PIPELINE.format(steps=steps))
    model, panel = FirstSeen(), FirstSeen()
    draws: List[float] = []
    raw_events: list = []
    stop = threading.Event()
    threading.Thread(target=docker_event_times, args=(stop, raw_events), daemon=True).start()
    time.sleep(0.5)

    finder = NextRun()
    view = RunPanel()  # live_panel() makes its view before the run starts, too

    def drawn(status) -> None:
        panel.see(status)
        draws.append(view.draw_seconds)

    view.on_render = drawn
    holder: dict = {}

    def attach() -> None:
        try:
            run = finder.wait(timeout=900, poll_seconds=0.25)
            holder["found_at"] = time.time()
            watcher = RunWatcher(run, poll_seconds=1.0, on_change=model.see,
                                 events=finder.take_events())
            watcher.subscribe(view.update)
            holder["watcher"] = watcher.start()
            holder["attached_at"] = time.time()
        finally:
            finder.close()

    attacher = threading.Thread(target=attach, daemon=True)
    attacher.start()
    log = open(WORKDIR / f"wide_{steps}.log", "a")  # noqa: SIM115 - the child process writes it
    started = time.time()
    subprocess.run([sys.executable, script.name], cwd=project, stdout=log,
                   stderr=subprocess.STDOUT, check=False)
    attacher.join(timeout=60)
    watcher = holder["watcher"]
    watcher.wait(timeout=120)
    stop.set()
    run_id = watcher.run_id
    rows = []
    for raw in raw_events:
        labels = raw["Actor"]["Attributes"]
        if labels.get("io.my-docker.pipeline-run-id") != run_id:
            continue  # someone else's run on the same engine
        key = (labels["io.my-docker.step"], int(labels["io.my-docker.attempt"]), raw["Action"])
        at = raw["timeNano"] / 1e9
        rows.append({"key": key, "at": at, "before_attach": at < holder["attached_at"],
                     "model": model.first_seen.get(key), "panel": panel.first_seen.get(key)})
    return {"rows": rows, "seconds": time.time() - started, "status": watcher.status,
            "draws": draws, "threads_left": watcher.alive_threads}


def describe(name: str, values: list) -> str:
    if not values:
        return f"{name}: no data"
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(round(0.9 * (len(values) - 1))))]
    return (f"{name}: n={len(values)}  median={statistics.median(values) * 1000:.0f} ms  "
            f"p90={p90 * 1000:.0f} ms  max={values[-1] * 1000:.0f} ms")


def update_latency(steps_list: List[int], runs: int) -> None:
    project = set_up_project()
    for steps in steps_list:
        all_rows, draws = [], []
        for index in range(runs):
            result = measure_one(steps, project)
            status = result["status"]
            print(f"{steps} steps, run {index + 1}: {status.run_name} {status.outcome} "
                  f"({result['seconds']:.0f} s, {len(result['rows'])} container events, "
                  f"{len(result['draws'])} redraws, watcher threads left: "
                  f"{result['threads_left'] or 'none'})")
            all_rows += result["rows"]
            draws += result["draws"]
        attached = [r for r in all_rows if not r["before_attach"]]
        print("  " + describe("model, events after attach ",
                              [r["model"] - r["at"] for r in attached if r["model"]]))
        print("  " + describe("panel, events after attach ",
                              [r["panel"] - r["at"] for r in attached if r["panel"]]))
        print("  " + describe("panel, all events (incl. before the run was found)",
                              [r["panel"] - r["at"] for r in all_rows if r["panel"]]))
        print("  " + describe("panel redraw (tab shown)", draws))
        missing = [r["key"] for r in all_rows if r["model"] is None or r["panel"] is None]
        if missing:
            print(f"  never shown (overtaken by a later fact of the same container): {missing}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 100],
                        help="pipeline sizes (default: 10 100)")
    parser.add_argument("--runs", type=int, default=1, help="real runs per size")
    parser.add_argument("--redraw-only", action="store_true",
                        help="only the redraw cost (no Docker, no pipeline run)")
    args = parser.parse_args()
    if min(args.steps) < 3:
        parser.error("--steps: a wide pipeline has at least 3 steps (source, branch, join)")
    try:
        redraw_cost(args.steps)
        if not args.redraw_only:
            update_latency(args.steps, args.runs)
    finally:
        os.chdir(tempfile.gettempdir())
        shutil.rmtree(WORKDIR, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
