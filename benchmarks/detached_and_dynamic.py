"""Figures for dynamic pipelines and runs that do not block (issue 12).

    python -m benchmarks.detached_and_dynamic [--repetitions N]

Everything runs in a private ZENML_CONFIG_PATH and project folder, each
measurement in a fresh client process (as a user's terminal or kernel would
be), on the parent image (`skip_build`), interleaved over repetitions;
medians are printed. What is timed (wall clock):

- submit: a `synchronous=False` pipeline call, from the call to its return,
  in a process where ZenML is warm (its store opened, its integrations
  loaded, as in a notebook after its first cells), and in a cold one (the
  first ZenML call of the process); then how long the run itself took
  (until ZenML records its end), and the same pipeline called blocking;
- dynamic: `dynamic_fan_out(count=2)` (7 isolated steps, 1 inline; copied
  into the project folder as a user's module) called blocking on `my_docker`
  and on ZenML's `local_docker` (which runs every step inline in one
  container);
- stop: `zenml pipeline runs stop` of a detached dynamic run with two
  running steps: the command's duration, and until the run is STOPPED with
  no container left;
- kill: SIGKILL of a detached run's orchestration process: until its
  watchdog has recorded the run FAILED and removed its containers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO_ROOT = Path(__file__).resolve().parents[1]
PARENT_IMAGE = "my-docker/zenml-parent:0.98.0-py3.11"
BENCH_LABEL = "io.my-docker.benchmark"

# One measurement, in a fresh process: prints one JSON line "RESULT {...}".
CLIENT = textwrap.dedent(
    """
    import json, os, signal, subprocess, sys, time
    action, kind = sys.argv[1], sys.argv[2]
    started_process = time.monotonic()
    from zenml.client import Client
    from zenml.config import DockerSettings
    from zenml.enums import ExecutionStatus
    from orchestrator.teaching.dynamic_examples import dynamic_fan_out, dynamic_sleepers
    from orchestrator.teaching.examples import demo_pipeline, long_pipeline

    PARENT = %r
    if action != "submit-cold":
        from zenml.integrations.registry import integration_registry
        Client().zen_store
        integration_registry.activate_integrations()

    def settings(synchronous=True, **orchestrator):
        return {"docker": DockerSettings(skip_build=True, parent_image=PARENT),
                "orchestrator": {"synchronous": synchronous, **orchestrator}}

    def wait_for_end(run_id):
        while not Client().get_pipeline_run(run_id).status.is_finished:
            time.sleep(0.5)

    def wait_for_running(run_id, steps):
        while True:
            records = {s.name: s.status for s in Client().list_run_steps(
                pipeline_run_id=run_id, size=100).items}
            if all(records.get(name) == ExecutionStatus.RUNNING for name in steps):
                return
            time.sleep(0.5)

    def containers_left(run_id):
        out = subprocess.run(["docker", "ps", "-aq", "--filter",
                              f"label=io.my-docker.pipeline-run-id={run_id}"],
                             capture_output=True, text=True).stdout
        return len(out.split())

    def call(pipeline, synchronous, **kwargs):
        began = time.monotonic()
        run = pipeline.with_options(settings=settings(synchronous))(**kwargs)
        return run, time.monotonic() - began

    result = {}
    pipelines = {"static": (demo_pipeline, {"seconds": 2.0}),
                 "dynamic": (dynamic_fan_out, {"count": 2, "seconds": 1.0})}
    if action in ("submit", "submit-cold"):
        pipeline, kwargs = pipelines[kind]
        began = time.monotonic()
        run, result["call_seconds"] = call(pipeline, False, **kwargs)
        result["finished_at_return"] = run.status.is_finished
        wait_for_end(run.id)
        result["run_seconds"] = time.monotonic() - began
        result["status"] = Client().get_pipeline_run(run.id).status.value
    elif action == "blocking":
        pipeline, kwargs = pipelines[kind]
        run, result["call_seconds"] = call(pipeline, True, **kwargs)
        result["status"] = run.status.value
    elif action == "dynamic-on":
        # The pipeline from the project folder, as a user's module: local_docker's
        # container has only the code ZenML ships it, not this package.
        from bench_dynamic import dynamic_fan_out as user_fan_out
        Client().activate_stack(kind)
        extra = {} if kind == "my_stack" else {"run_args": {"labels": {%r: "1"}}}
        try:
            began = time.monotonic()
            run = user_fan_out.with_options(settings={
                "docker": DockerSettings(skip_build=True, parent_image=PARENT),
                "orchestrator": extra})(count=2, seconds=1.0)
            result["call_seconds"] = time.monotonic() - began
            result["status"] = run.status.value
        finally:
            Client().activate_stack("my_stack")
    elif action in ("stop", "kill"):
        if kind == "dynamic":
            run, _ = call(dynamic_sleepers, False, count=2, seconds=120)
            steps = ("sleeper_0", "sleeper_1")
        else:
            run, _ = call(long_pipeline, False, seconds=120)
            steps = ("long_left", "long_right")
        wait_for_running(run.id, steps)
        began = time.monotonic()
        if action == "stop":
            zenml = os.path.join(os.path.dirname(sys.executable), "zenml")
            subprocess.run([zenml, "pipeline", "runs", "stop", str(run.id), "-y"],
                           check=True, capture_output=True)
            result["command_seconds"] = time.monotonic() - began
        else:
            from orchestrator.running.orchestration_record import read_record
            from orchestrator.running.step_logs import run_log_dir
            os.kill(read_record(run_log_dir(str(run.id))).pid, signal.SIGKILL)
        wait_for_end(run.id)
        while containers_left(run.id):
            time.sleep(0.2)
        result["ended_seconds"] = time.monotonic() - began
        result["status"] = Client().get_pipeline_run(run.id).status.value
    print("RESULT " + json.dumps(result), flush=True)
    """ % (PARENT_IMAGE, BENCH_LABEL)
)


class Bench:
    """A private ZenML store and project, with my_stack and a local_docker stack."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="my-docker-bench12-"))
        self.project = self.root / "project"
        self.project.mkdir()
        self.env = {**os.environ, "ZENML_CONFIG_PATH": str(self.root / "zenml-config"),
                    "ZENML_ANALYTICS_OPT_IN": "false", "ZENML_LOGGING_COLORS_DISABLED": "true",
                    "PYTHONPATH": f"{REPO_ROOT}:{os.environ.get('PYTHONPATH', '')}"}
        self.log = open(self.root / "bench.log", "w")  # noqa: SIM115 - open for the whole run

    def zenml(self, *args: str) -> None:
        zenml = str(Path(sys.executable).with_name("zenml"))
        subprocess.run([zenml, *args], cwd=self.project, env=self.env, check=True,
                       stdout=self.log, stderr=subprocess.STDOUT)

    def setup(self) -> None:
        from orchestrator.machine.stack import REFERENCE_COMMANDS

        self.zenml("init")
        for command in REFERENCE_COMMANDS:
            self.zenml(*command.split()[1:])
        self.zenml("orchestrator", "register", "builtin_docker", "-f", "local_docker")
        self.zenml("stack", "register", "builtin_stack", "-o", "builtin_docker", "-a", "default")
        self.zenml("stack", "set", "my_stack")
        shutil.copy(REPO_ROOT / "orchestrator" / "teaching" / "dynamic_examples.py",
                    self.project / "bench_dynamic.py")

    def measure(self, action: str, kind: str) -> Dict[str, Any]:
        result = subprocess.run([sys.executable, "-c", CLIENT, action, kind], cwd=self.project,
                                env=self.env, capture_output=True, text=True, timeout=1800)
        self.log.write(result.stdout + result.stderr)
        line = next((line for line in result.stdout.splitlines()
                     if line.startswith("RESULT ")), None)
        if line is None:
            raise RuntimeError(f"{action} {kind} failed:\n{(result.stdout + result.stderr)[-3000:]}")
        if action == "dynamic-on" and kind != "my_stack":
            self.remove_local_docker_leftovers()
        return json.loads(line[len("RESULT "):])

    def remove_local_docker_leftovers(self) -> None:
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={BENCH_LABEL}"],
                             capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)

    def close(self) -> None:
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


def median(values: List[float]) -> Optional[float]:
    return statistics.median(values) if values else None


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.detached_and_dynamic")
    parser.add_argument("--repetitions", type=int, default=3)
    args = parser.parse_args(argv)
    plan = [("submit", "static"), ("blocking", "static"), ("submit", "dynamic"),
            ("blocking", "dynamic"), ("submit-cold", "static"), ("dynamic-on", "my_stack"),
            ("dynamic-on", "builtin_stack"), ("stop", "dynamic"), ("kill", "dynamic"),
            ("kill", "static")]
    bench = Bench()
    results: Dict[str, List[Dict[str, Any]]] = {f"{a} {k}": [] for a, k in plan}
    try:
        bench.setup()
        for repetition in range(args.repetitions):
            order = plan if repetition % 2 == 0 else list(reversed(plan))
            for action, kind in order:
                results[f"{action} {kind}"].append(bench.measure(action, kind))
                print(f"rep {repetition + 1}: {action} {kind}: "
                      f"{results[f'{action} {kind}'][-1]}", flush=True)
    finally:
        bench.close()
        loads = os.getloadavg()
    print(f"\nmedians of {args.repetitions} interleaved repetitions "
          f"(load average at the end {loads[0]:.1f} on {os.cpu_count()} cores)")
    for key, runs in results.items():
        figures = {name: median([r[name] for r in runs if isinstance(r.get(name), float)])
                   for name in ("call_seconds", "run_seconds", "command_seconds",
                                "ended_seconds")}
        shown = ", ".join(f"{name} {value:.1f} s" for name, value in figures.items()
                          if value is not None)
        statuses = sorted({r.get("status") for r in runs})
        print(f"  {key:24s} {shown}  (status: {', '.join(map(str, statuses))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
