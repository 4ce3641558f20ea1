"""The main job: register `my_docker` with the reference commands and run a pipeline.

    python -m orchestrator.demo [--seconds 3] [--count 5]

Run it from a project folder (a fresh clone of this repository is one). It
uses your normal ZenML configuration, like any ZenML command, and is safe to
run again: what is already registered is left as it is.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

REFERENCE_COMMANDS = [
    "zenml orchestrator flavor register orchestrator.my_docker_orchestrator.MyDockerOrchestratorFlavor",
    "zenml orchestrator register my_docker_orchestrator -f my_docker",
    "zenml stack register my_stack -o my_docker_orchestrator -a default",
    "zenml stack set my_stack",
]


def zenml_command(command: str, cwd: Path) -> None:
    """Run one `zenml ...` command line as a user would, showing it."""
    print(f"$ {command}", flush=True)
    args = command.split()
    args[0] = str(Path(sys.executable).with_name("zenml"))
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(
            f"`{command}` failed:\n{result.stdout}{result.stderr}".rstrip()
        )


def already_registered(command: str) -> bool:
    """Whether what `command` registers exists already (so it is skipped)."""
    from zenml.client import Client
    from zenml.enums import StackComponentType

    client = Client()
    try:
        if command.startswith("zenml orchestrator flavor register"):
            client.get_flavor_by_name_and_type("my_docker", StackComponentType.ORCHESTRATOR)
        elif command.startswith("zenml orchestrator register"):
            client.get_stack_component(StackComponentType.ORCHESTRATOR, "my_docker_orchestrator")
        elif command.startswith("zenml stack register"):
            client.get_stack("my_stack")
        else:
            return False
    except KeyError:
        return False
    return True


def register_stack(project: Path) -> None:
    """`zenml init` and the four reference commands, each only if needed."""
    if not (project / ".zen").exists():
        zenml_command("zenml init", project)
    for command in REFERENCE_COMMANDS:
        if already_registered(command):
            print(f"$ {command}   (already registered)")
        else:
            zenml_command(command, project)
    from zenml.client import Client

    # The commands ran in other processes; make this one use the stack too.
    Client().activate_stack("my_stack")


def summary_table(run) -> str:
    """One line per step: status, duration and when it started."""
    steps = sorted(run.steps.values(), key=lambda s: s.start_time or run.start_time)
    origin = min(s.start_time for s in steps if s.start_time)
    lines = [f"{'step':<16}{'status':<12}{'started at':>11}{'took':>8}"]
    for step in steps:
        start = (step.start_time - origin).total_seconds() if step.start_time else 0
        took = (step.end_time - step.start_time).total_seconds() if step.end_time else 0
        lines.append(f"{step.name:<16}{step.status.value:<12}{start:>10.1f}s{took:>7.1f}s")
    return "\n".join(lines)


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
        from orchestrator.base_image import ensure_parent_image
        from orchestrator.engine import ensure_engine

        ensure_parent_image(client=ensure_engine())
        register_stack(project)
        from orchestrator.examples import demo_pipeline

        print("\nRunning demo_pipeline: load_numbers -> double_left | double_right -> total,"
              " each step in its own container.\n", flush=True)
        started = time.monotonic()
        run = demo_pipeline(count=args.count, seconds=args.seconds)
        elapsed = time.monotonic() - started
    except MyDockerError as error:
        print(f"\nError: {error}", file=sys.stderr)
        return 1
    print()
    print(summary_table(run))
    total = run.steps["total"].output.load()
    print(f"\nRun {run.name}: {run.status.value} in {elapsed:.1f} s "
          f"(including ZenML's image build); total = {total}.")
    return 0 if run.status.value == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
