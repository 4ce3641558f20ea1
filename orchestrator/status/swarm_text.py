"""The terminal view of a run on a swarm, naming the node of each step attempt.

The common view (`orchestrator.status`): `read_status` reads a `my_swarm`
run's tasks from the swarm's manager (`orchestrator.status.swarm_source`) and
the nodes the run recorded, joined with ZenML's records by the one pure
model, and `render_text` draws the step table with its NODE column. Below it,
every attempt's node (the table names the latest attempt's only), so a
retried step shows where each try ran.

    python -m orchestrator.status.swarm_text [RUN|latest]

(`python -m orchestrator.status RUN [--follow]` shows the same table.) A view
like the others of `orchestrator.status`: it reads `swarm`'s facts, and
`swarm` knows nothing of it.
"""

from __future__ import annotations

import sys
from typing import List, Optional, Sequence

from orchestrator.status.model import RunStatus


def nodes_text(status: RunStatus) -> str:
    """'NODES (step: attempt -> node)', then one line per step: '  train: 1 -> node-a, 2 -> node-b'."""
    lines: List[str] = ["NODES (step: attempt -> node)"]
    for step in status.steps:
        placed = ", ".join(f"{attempt.number} -> {attempt.node}" for attempt in step.attempts
                           if attempt.node)
        lines.append(f"  {step.name}: {placed or '-'}")
    return "\n".join(lines)


def swarm_status_text(ref: str = "latest", width: Optional[int] = None) -> str:
    """The run's step table, then the node of every attempt.

    Raises:
        LookupError: no such run (as `orchestrator.status` does).
    """
    from orchestrator.status.text import render_text
    from orchestrator.status.watcher import read_status

    status = read_status(ref)
    return "\n".join([render_text(status, width=width), "", nodes_text(status)])


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line: print the view of one run (default: the latest)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        print(swarm_status_text(args[0] if args else "latest"))
    except LookupError as error:
        print(f"error: {error.args[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
