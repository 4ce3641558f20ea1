"""The terminal view of a run on the local swarm, naming the node of each step.

The step table is `my_docker`'s own (`orchestrator.status.text.render_text`),
from the same facts and the same pure model: the task containers on the
nodes' engines carry the same labels as step containers, so their inspect
data feeds `orchestrator.status.fetch.status_from_facts` unchanged, joined
with ZenML's records. Below it, the node each attempt ran on, as the run
recorded it (`runner.NODES_FILE`) and as the live containers say.

    python -m orchestrator.swarm.status [RUN|latest]
"""

from __future__ import annotations

import sys
from typing import Any, Dict, List, Optional, Sequence

import docker
import requests

from orchestrator.running.labels import attempt_of, label_filters, step_of
from orchestrator.running.step_logs import run_log_dir
from orchestrator.swarm.runner import read_nodes


def node_containers(run_id: str) -> Dict[str, List[Dict[str, Any]]]:
    """Node host name -> inspect data of the run's containers on it (local swarm nodes only)."""
    from orchestrator.machine.swarm import LocalSwarm

    swarm = LocalSwarm()
    found: Dict[str, List[Dict[str, Any]]] = {}
    for node in swarm.nodes:
        try:
            engine = swarm.client(node.name, timeout=10)
            containers = engine.containers.list(all=True, ignore_removed=True,
                                                filters={"label": label_filters(pipeline_run_id=run_id)})
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            continue
        found[node.name] = [container.attrs for container in containers]
    return found


def swarm_status_text(ref: str = "latest", width: Optional[int] = None) -> str:
    """The run's step table, then the node of every attempt.

    Raises:
        KeyError, zenml errors: no such run (as `orchestrator.status` does).
    """
    from orchestrator.status.fetch import status_from_facts
    from orchestrator.status.records import resolve_run, step_runs_of
    from orchestrator.status.text import render_text

    run = resolve_run(ref)
    run_id = str(run.id)
    live = node_containers(run_id)
    status = status_from_facts(run, [attrs for containers in live.values() for attrs in containers],
                               step_runs_of(run.id))
    nodes = read_nodes(run_log_dir(run_id))
    for node, containers in live.items():
        for attrs in containers:
            labels = attrs.get("Config", {}).get("Labels") or {}
            step = step_of(labels)
            if step:
                nodes.setdefault(step, {})[str(attempt_of(labels))] = node
    lines = [render_text(status, width=width), "", "NODES (step: attempt -> node)"]
    for step in status.steps:
        attempts = nodes.get(step.name, {})
        placed = ", ".join(f"{attempt} -> {node}" for attempt, node in
                           sorted(attempts.items(), key=lambda item: int(item[0])))
        lines.append(f"  {step.name}: {placed or '-'}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line: print the view of one run (default: the latest)."""
    args = list(sys.argv[1:] if argv is None else argv)
    print(swarm_status_text(args[0] if args else "latest"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
