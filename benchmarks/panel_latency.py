"""How long a step container's change takes to show in the status model and the panel.

A pipeline runs in a subprocess (as a user's would, in another terminal);
this process watches it the way `live_panel()` does (`NextRun` finds the
run, a `RunWatcher` takes over its Docker event stream, a `RunPanel` view is
fed by the watcher) and, independently, listens to
Docker's event stream itself. For every create/start/die event of the run's
containers it compares Docker's own timestamp with the moment the model
(listener called) and the panel (widgets redrawn) first showed that fact.

    python benchmarks/panel_latency.py [--pipeline demo_pipeline] [--runs 1]

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

WORKDIR = Path(tempfile.mkdtemp(prefix="panel-latency-"))
# ZenML reads its config path once, at import: set it before anything imports zenml.
os.environ["ZENML_CONFIG_PATH"] = str(WORKDIR / "zenml-config")
os.environ["ZENML_ANALYTICS_OPT_IN"] = "false"
os.environ["ZENML_LOGGING_COLORS_DISABLED"] = "true"

def set_up_project() -> Path:
    from orchestrator.machine.stack import register_stack

    project = WORKDIR / "project"
    project.mkdir()
    register_stack(project, echo=None)
    os.chdir(project)
    return project


class Timeline:
    """When each (step, attempt, fact) was first seen by a consumer."""

    def __init__(self) -> None:
        self.first_seen: dict = {}
        self.lock = threading.Lock()

    def see(self, status) -> None:
        now = time.time()
        with self.lock:
            for step in status.steps:
                if not step.attempt:
                    continue
                facts = []
                if step.container_state is not None:
                    facts.append("create")
                if step.started_at is not None:
                    facts.append("start")
                if step.exit_code is not None:
                    facts.append("die")
                for fact in facts:
                    self.first_seen.setdefault((step.name, step.attempt, fact), now)


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


def measure_one(pipeline: str, project: Path) -> dict:
    from orchestrator.status.watcher import NextRun, RunWatcher
    from orchestrator.status.widget import RunPanel

    model, panel = Timeline(), Timeline()
    raw_events: list = []
    stop = threading.Event()
    threading.Thread(target=docker_event_times, args=(stop, raw_events), daemon=True).start()
    time.sleep(0.5)

    finder = NextRun()
    view = RunPanel()  # live_panel() makes its view before the run starts, too
    view.on_render = panel.see
    holder: dict = {}

    def attach() -> None:
        try:
            run = finder.wait(timeout=600, poll_seconds=0.25)
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
    log = open(WORKDIR / f"{pipeline}.log", "a")  # noqa: SIM115 - the child process writes it
    started = time.time()
    subprocess.run([sys.executable, "-c",
                    f"from orchestrator.teaching.examples import {pipeline}; {pipeline}()"],
                   cwd=project, stdout=log, stderr=subprocess.STDOUT, check=False)
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
    first = min(rows, key=lambda r: r["at"]) if rows else None
    if first is not None:
        print(f"  first container event {first['key']}: run found after "
              f"{(holder['found_at'] - first['at']) * 1000:.0f} ms, watcher started after "
              f"{(holder['attached_at'] - first['at']) * 1000:.0f} ms, shown after "
              f"{((first['model'] or 0) - first['at']) * 1000:.0f} ms")
    return {"rows": rows, "seconds": time.time() - started, "status": watcher.status}


def describe(name: str, values: list) -> str:
    if not values:
        return f"{name}: no data"
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(round(0.9 * (len(values) - 1))))]
    return (f"{name}: n={len(values)}  median={statistics.median(values) * 1000:.0f} ms  "
            f"p90={p90 * 1000:.0f} ms  max={values[-1] * 1000:.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default="demo_pipeline",
                        help="a pipeline of orchestrator.teaching.examples")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    all_rows = []
    try:
        project = set_up_project()
        for index in range(args.runs):
            result = measure_one(args.pipeline, project)
            status = result["status"]
            print(f"run {index + 1}: {status.run_name} {status.outcome} "
                  f"({result['seconds']:.0f} s, {len(result['rows'])} container events)")
            all_rows += result["rows"]
    finally:
        os.chdir(tempfile.gettempdir())
        shutil.rmtree(WORKDIR, ignore_errors=True)
    missing = [r["key"] for r in all_rows if r["model"] is None or r["panel"] is None]
    attached = [r for r in all_rows if not r["before_attach"]]
    print(describe("model, events after attach ",
                   [r["model"] - r["at"] for r in attached if r["model"]]))
    print(describe("panel, events after attach ",
                   [r["panel"] - r["at"] for r in attached if r["panel"]]))
    print(describe("model, all events (incl. before the run was found)",
                   [r["model"] - r["at"] for r in all_rows if r["model"]]))
    print(describe("panel, all events (incl. before the run was found)",
                   [r["panel"] - r["at"] for r in all_rows if r["panel"]]))
    if missing:
        print(f"never shown (overtaken by a later fact of the same container): {missing}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
