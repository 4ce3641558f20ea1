"""Per-step cost on the local two-node swarm (`my_swarm`) next to `my_docker` on one engine.

    python -m benchmarks.swarm_overhead [--repetitions 3] [--length 6]

Runs `chain_pipeline` (trivial steps, each waiting for the one before, so
nothing overlaps: run time / steps is the cost of one step) on two stacks of
a private ZenML workspace: `my_stack` (`my_docker`, this machine's engine)
and `swarm_stack` (`my_swarm` on the local swarm, with its registry). One
warm-up run per stack (image build, push, first pull) is not counted; then
the repetitions alternate which stack goes first. Prints, per stack, the
median run time (ZenML's start to end of the run) and per step, and the
ratio swarm / my_docker. Needs the local swarm up (`sudo make swarm`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--length", type=int, default=6, help="steps in the chain")
    options = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="my-swarm-bench-"))
    os.environ["ZENML_CONFIG_PATH"] = str(root / "zenml-config")
    os.environ["ZENML_ANALYTICS_OPT_IN"] = "false"
    os.environ.setdefault("ZENML_LOGGING_VERBOSITY", "WARNING")
    project = root / "project"
    project.mkdir()
    os.chdir(project)

    from orchestrator.machine.base_image import ensure_parent_image
    from orchestrator.machine.engine import ensure_engine
    from orchestrator.machine.stack import register_stack
    from orchestrator.machine.swarm import LocalSwarm

    swarm = LocalSwarm()
    if not swarm.status().up:
        print("The local swarm is not up: start it as root (`sudo make swarm`).", file=sys.stderr)
        return 1
    ensure_parent_image(ensure_engine())
    register_stack(project, echo=lambda _line: None, in_process=True)
    from orchestrator.machine.stack import run_zenml

    for command in (
        "zenml orchestrator flavor register orchestrator.my_swarm_orchestrator.MySwarmOrchestratorFlavor",
        "zenml orchestrator register swarm_orchestrator -f my_swarm",
        f"zenml container-registry register swarm_registry -f default --uri={swarm.registry}",
        "zenml stack register swarm_stack -o swarm_orchestrator -a default -c swarm_registry",
    ):
        run_zenml(command, in_process=True)

    from zenml.client import Client

    from orchestrator.teaching.examples import chain_pipeline

    def one_run(stack: str) -> float:
        Client().activate_stack(stack)
        run = Client().get_pipeline_run(chain_pipeline(length=options.length).id)
        return (run.end_time - run.start_time).total_seconds()

    stacks = ["my_stack", "swarm_stack"]
    for stack in stacks:
        print(f"warm-up on {stack}: {one_run(stack):.1f} s (build, push, first pull; not counted)")
    seconds = {stack: [] for stack in stacks}
    for repetition in range(options.repetitions):
        for stack in stacks if repetition % 2 == 0 else reversed(stacks):
            seconds[stack].append(one_run(stack))
            print(f"  repetition {repetition + 1} {stack}: {seconds[stack][-1]:.1f} s", flush=True)
    print(f"\nchain of {options.length} trivial steps, {options.repetitions} interleaved repetitions:")
    medians = {stack: statistics.median(values) for stack, values in seconds.items()}
    for stack, median in medians.items():
        print(f"  {stack:12s} run median {median:6.1f} s   per step {median / options.length:5.2f} s")
    ratio = medians["swarm_stack"] / medians["my_stack"]
    print(f"  swarm / my_docker: {ratio:.2f}x per step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
