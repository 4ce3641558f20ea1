"""The local swarm's plain data: the nodes asked for, and what `LocalSwarm.status()` finds.

`orchestrator.machine.swarm` starts and ends the local swarm; what it is asked
to start (`SwarmNodeSpec`, `DEFAULT_NODES`) and what it reports about a running
one (`SwarmStatus`, `NodeStatus`, with the text a terminal shows) are plain
values, kept here apart from the machinery that starts engines and namespaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple

GiB = 1 << 30


@dataclass(frozen=True)
class SwarmNodeSpec:
    """One engine of the local swarm.

    Attributes:
        name: the node's host name, as Swarm shows it (`node.hostname==NAME` pins a job to it).
        address: the loopback address it is advertised on (127.0.0.2, 127.0.0.3, ...).
        memory_bytes: memory it advertises to Swarm (None: the machine's real memory).
        labels: node labels, for constraints such as `node.labels.size==large`.
        generic_resources: named resources it offers, e.g. {"gpu": 1}; a service
            that reserves them runs only where they are left.
    """

    name: str
    address: str
    memory_bytes: Optional[int] = None
    labels: Mapping[str, str] = field(default_factory=dict)
    generic_resources: Mapping[str, int] = field(default_factory=dict)


DEFAULT_NODES: Tuple[SwarmNodeSpec, ...] = (
    SwarmNodeSpec("node-a", "127.0.0.2", memory_bytes=2 * GiB, labels={"size": "small"}),
    SwarmNodeSpec("node-b", "127.0.0.3", memory_bytes=8 * GiB, labels={"size": "large"}),
)


@dataclass
class NodeStatus:
    """What `status()` found about one node."""

    name: str
    docker_host: str
    engine_running: bool
    state: Optional[str] = None  # Swarm's node state: ready, down, unknown
    availability: Optional[str] = None
    memory_bytes: Optional[int] = None  # as Swarm sees it
    labels: Dict[str, str] = field(default_factory=dict)


@dataclass
class SwarmStatus:
    """What `status()` found: every part of the local swarm and whether it answers."""

    root: str
    up: bool
    manager_url: Optional[str] = None
    registry: Optional[str] = None
    registry_answers: bool = False
    forwarded_ports: List[int] = field(default_factory=list)
    nodes: List[NodeStatus] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)

    def describe(self) -> str:
        """A few lines for a terminal."""
        if not self.up and not self.nodes:
            lines = [f"The local swarm is down (state folder {self.root})."]
        else:
            lines = [f"Local swarm in {self.root}: {'up' if self.up else 'NOT healthy'}"]
            lines.append(f"  manager:  DOCKER_HOST={self.manager_url}")
            answers = "answers" if self.registry_answers else "does NOT answer"
            lines.append(f"  registry: {self.registry} ({answers})")
            lines.append(f"  host ports reachable from the nodes: {', '.join(map(str, self.forwarded_ports))}")
            for node in self.nodes:
                memory = f"{node.memory_bytes / GiB:.1f} GiB" if node.memory_bytes else "?"
                labels = ", ".join(f"{k}={v}" for k, v in sorted(node.labels.items())) or "-"
                engine = "engine up" if node.engine_running else "engine DOWN"
                lines.append(
                    f"  {node.name:8s} {node.state or '?':8s} {node.availability or '?':7s} "
                    f"memory {memory:9s} labels {labels:14s} {engine}  {node.docker_host}"
                )
        lines.extend(f"  problem: {problem}" for problem in self.problems)
        return "\n".join(lines)

