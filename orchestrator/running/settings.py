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
# Settings of the whole run: read from the pipeline's settings; a step's own
# value is ignored, with a warning (run_args and timeout_seconds are per step).
RUN_LEVEL_SETTINGS = ("max_parallelism", "start_early", "keep_containers",
                      "stop_grace_seconds", "synchronous", "future_poll_seconds")


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
    start_early: bool = Field(
        default=True,
        description="Start a step's container while its upstream steps still "
        "run, so that Python, ZenML and the step's imports load meanwhile; the "
        "step itself waits in it until they succeeded. Waiting containers count "
        "against max_parallelism and give their slot up to a step that may "
        "start. False: a container starts only when its step may.",
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
    synchronous: bool = Field(
        default=True,
        description="True: the pipeline call returns when the run is over. "
        "False: it returns as soon as the run is submitted, and the run goes "
        "on in a detached orchestration process on this machine, which "
        "survives the terminal or notebook kernel that started it; follow it "
        "with watch_run(...) or `python -m orchestrator.status RUN --follow`, "
        "read its log with `--logs`, stop it with `zenml pipeline runs stop`.",
    )
    future_poll_seconds: Optional[float] = Field(
        default=0.5,
        gt=0,
        description="Dynamic pipelines: how often a pipeline function waiting "
        "for a submitted isolated step (`future.load()`, `.result()`) asks "
        "ZenML whether it finished. ZenML's own wait doubles its pause up to "
        "64 s, so the function may resume a minute after the step ended. "
        "None keeps ZenML's wait. This replaces a private method of ZenML "
        "0.98 for the run's duration; if ZenML changes it, ZenML's wait is "
        "used and a warning says so.",
    )
    timeout_seconds: Optional[float] = Field(
        default=None,
        gt=0,
        description="Most seconds one attempt of a step may run, counted from "
        "when its work may start: its container started (for one started early: "
        "its upstream steps succeeded) and Python and ZenML loaded in it (one "
        "still loading a minute past the timeout times out too). A container "
        "that runs longer is stopped (SIGTERM, "
        "then SIGKILL after stop_grace_seconds), the attempt fails with "
        "'timed out after N s', and the step is retried if its retry policy "
        "allows. An isolated step of a dynamic pipeline counts from its "
        "container's start, loading included (ZenML's own entrypoint says "
        "nothing when it is ready): allow for it. None: no limit.",
    )
