"""What users may set for the my_swarm orchestrator, and the names it owns.

The flavor module (`orchestrator.my_swarm_orchestrator`) builds ZenML's config
class on these; the planning code reads them. Kept light: it is imported in
every step container.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Literal, Optional

from pydantic import Field
from zenml.config.base_settings import BaseSettings

FLAVOR_NAME = "my_swarm"
ENV_ORCHESTRATOR_RUN_ID = "MY_SWARM_ORCHESTRATOR_RUN_ID"

# One-replica service with restart condition "none" (the default), or a Swarm job.
ServiceMode = Literal["replicated", "replicated-job"]


@dataclass(frozen=True)
class SwarmCluster:
    """Where a registered `my_swarm` orchestrator runs (its config, as plain data).

    Attributes:
        manager_url: the manager's Docker API (None: the local swarm's).
        shared_paths: every node sees the client's local paths (the local swarm).
        mount_package: bind-mount this package into every step's task.
    """

    manager_url: Optional[str]
    shared_paths: bool
    mount_package: bool


class MySwarmOrchestratorSettings(BaseSettings):
    """Settings a pipeline or a step may set for the `my_swarm` orchestrator."""

    placement_constraints: List[str] = Field(
        default_factory=list,
        description="Swarm placement constraints for the step's task, as in "
        "`docker service create --constraint`, e.g. ['node.hostname==node-b'] "
        "or ['node.labels.size==large']. Combined with the resources from "
        "ZenML's ResourceSettings, which Swarm reserves on the chosen node.",
    )
    max_parallelism: Optional[int] = Field(
        default=None,
        ge=1,
        description="How many step services may run at once (None: 8). Swarm "
        "still places each by its reservations: a task that fits on no node "
        "now waits in Swarm's queue (shown as 'waits for a node').",
    )
    service_mode: ServiceMode = Field(
        default="replicated",
        description="'replicated': one replica with restart condition none, so "
        "the task runs once; removing the service removes its task and its "
        "container on every Docker version. 'replicated-job': a Swarm job; "
        "Docker 20.10 keeps a removed job's task in the manager's store and "
        "its container on the node (measured), so the orchestrator then "
        "removes the containers itself on the nodes it can reach.",
    )
    keep_services: bool = Field(
        default=False,
        description="Keep each step's service (and its exited task) for "
        "debugging instead of removing it once its output was collected.",
    )
    stop_grace_seconds: int = Field(
        default=10,
        ge=0,
        description="Seconds a task gets after SIGTERM before SIGKILL when a "
        "run is stopped, fails fast or a step runs past its timeout.",
    )
    timeout_seconds: Optional[float] = Field(
        default=None,
        gt=0,
        description="Most seconds one attempt may run once its task started; "
        "longer, it is stopped and fails with 'timed out after N s' (retried "
        "per the step's retry policy). None: no limit.",
    )
    synchronous: bool = Field(
        default=True,
        description="True: the pipeline call returns when the run is over. "
        "False: it returns as soon as the run is submitted, and the run goes "
        "on in a detached orchestration process on this machine, which "
        "survives the terminal or notebook kernel that started it; follow it "
        "with watch_run(...) or `python -m orchestrator.status RUN --follow`, "
        "read its log with `--logs`, stop it with `zenml pipeline runs stop`.",
    )
    pending_timeout_seconds: float = Field(
        default=600,
        gt=0,
        description="Most seconds a task may wait for a node that can hold it "
        "(its reservations and constraints); then the attempt fails with "
        "Swarm's reason.",
    )
