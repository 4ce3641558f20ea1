"""The main job: register `my_docker` with the reference commands and run a pipeline.

    python -m orchestrator.teaching.demo [--seconds 3] [--count 5]

Run it from a project folder (a fresh clone of this repository is one). It
uses your normal ZenML configuration, like any ZenML command, and is safe to
run again: what is already registered is left as it is.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from orchestrator.machine.stack import register_stack


def start_pipeline_process(count: int, seconds: float, log_path: Path) -> subprocess.Popen:
    """Run the example pipeline in a child process, its full log to a file.

    The terminal then shows the live status table instead of raw log lines,
    read the way any other process would see the run: from its containers
    and ZenML.
    """
    code = (
        "from orchestrator.teaching.examples import demo_pipeline; "
        f"demo_pipeline(count={count!r}, seconds={seconds!r})"
    )
    log_file = open(log_path, "w")  # noqa: SIM115 - the child process writes it
    return subprocess.Popen([sys.executable, "-c", code], stdout=log_file,
                            stderr=subprocess.STDOUT, cwd=Path.cwd())


def wait_for_new_run(process: subprocess.Popen, known: set, log_path: Path):
    """The run the child process started, once ZenML has recorded it."""
    from orchestrator.zenml_records import runs_not_in

    waited = 0.0
    while True:
        fresh = runs_not_in(known, limit=5)
        if fresh:
            return fresh[0]
        if process.poll() is not None:
            return None
        if waited % 10 == 0:
            print(f"  ZenML is building the step image... ({waited:.0f} s, log: {log_path})",
                  flush=True)
        time.sleep(1)
        waited += 1


def log_tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5, help="how many numbers to load")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="how long each of the two parallel steps works")
    args = parser.parse_args(argv)
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")

    from orchestrator.errors import MyDockerError

    project = Path.cwd()
    try:
        from orchestrator.machine.base_image import ensure_parent_image
        from orchestrator.machine.engine import ensure_engine

        ensure_parent_image(client=ensure_engine())
        register_stack(project)
    except (MyDockerError, RuntimeError) as error:
        print(f"\nError: {error}", file=sys.stderr)
        return 1

    from orchestrator.status.cli import follow_in_terminal
    from orchestrator.zenml_records import get_run, known_run_ids

    print("\nRunning demo_pipeline: load_numbers -> double_left | double_right -> total,"
          " each step in its own container.", flush=True)
    known = known_run_ids()
    log_path = Path(tempfile.gettempdir()) / f"my-docker-demo-{os.getpid()}.log"
    started = time.monotonic()
    process = start_pipeline_process(args.count, args.seconds, log_path)
    try:
        run = wait_for_new_run(process, known, log_path)
        if run is None:
            print(f"\nThe pipeline process ended before its run started:\n{log_tail(log_path)}",
                  file=sys.stderr)
            return 1
        print()
        follow_in_terminal(str(run.id))
        process.wait()
    except KeyboardInterrupt:
        print("\nInterrupted: stopping the run's containers...", file=sys.stderr)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        return 130
    elapsed = time.monotonic() - started
    run = get_run(run.id, hydrate=True)
    if process.returncode != 0 or run.status.value != "completed":
        print(f"\nThe run did not succeed ({run.status.value}). Last log lines:\n"
              f"{log_tail(log_path)}", file=sys.stderr)
        return 1
    total = run.steps["total"].output.load()
    print(f"\nRun {run.name}: {run.status.value} in {elapsed:.1f} s, ZenML's image build "
          f"included; total = {total}.\nFull log: {log_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
