"""What users may set for the my_docker orchestrator, and the names it owns.

The flavor module (`orchestrator.my_docker_orchestrator`) builds ZenML's config
class on these settings; the planning code reads them. Both import from here,
so that nothing imports the flavor module from below.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

from pydantic import Field
from zenml.config.base_settings import BaseSettings

FLAVOR_NAME = "my_docker"
ENV_ORCHESTRATOR_RUN_ID = "MY_DOCKER_ORCHESTRATOR_RUN_ID"


def default_parallelism() -> int:
    """Four containers per core: a step container spends most of its life
    waiting (on I/O, on the store, on work like `time.sleep`), and measured
    fan-outs on 2 cores finished sooner with 8 slots than with 4."""
    return 4 * (os.cpu_count() or 1)


class MyDockerOrchestratorSettings(BaseSettings):
    """Settings a pipeline or a step may set for the `my_docker` orchestrator."""

    run_args: Dict[str, Any] = Field(
        default_factory=dict,
        description="Extra arguments for docker-py's `containers.create` "
        "(the Python twin of `docker run` options), for example "
        "{'mem_limit': '1g', 'environment': {'X': '1'}}. Keys the orchestrator "
        "owns (command, entrypoint, name, detach) and host-control options "
        "(privileged, the Docker socket) are refused with a clear error.",
    )
    max_parallelism: Optional[int] = Field(
        default=None,
        ge=1,
        description="How many step containers may run at once. None means four "
        "per CPU core; 1 runs steps one at a time like ZenML's local_docker.",
    )
    keep_containers: bool = Field(
        default=False,
        description="Keep exited step containers for debugging instead of "
        "removing them once their output was collected.",
    )
    stop_grace_seconds: int = Field(
        default=10,
        ge=0,
        description="Seconds a container gets after SIGTERM before SIGKILL when "
        "a run is stopped gracefully, fails fast, or a step runs past its timeout.",
    )
    timeout_seconds: Optional[float] = Field(
        default=None,
        gt=0,
        description="Most seconds one attempt of a step may run (from its "
        "container's start). A container that runs longer is stopped (SIGTERM, "
        "then SIGKILL after stop_grace_seconds), the attempt fails with "
        "'timed out after N s', and the step is retried if its retry policy "
        "allows. None: no limit.",
    )
