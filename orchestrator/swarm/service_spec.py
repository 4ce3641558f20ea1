"""One step attempt as the arguments of docker-py's `services.create` (pure, no Docker).

The container part (image, command, environment, labels, mounts, user) is
the same `ContainerSpec` a `my_docker` step container gets
(`orchestrator.running.container_spec`), so every rule about what reaches a
step is shared. What a service adds is said here: the service mode (its task
runs once, Swarm never restarts it), host networking, and where Swarm may
place it: ZenML's `ResourceSettings` become *reservations* (Swarm puts the
task only on a node with that much left) and equal *limits* (the step cannot
use more), GPUs a generic resource ``gpu``, plus the step's placement
constraints.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from docker.types import Mount, Resources, RestartPolicy, ServiceMode

from orchestrator.errors import InvalidSettingsError
from orchestrator.running.container_spec import ContainerSpec, ResourceRequest

# Swarm's name for a generic resource that counts GPUs (`--node-generic-resource gpu=N`).
GPU_RESOURCE = "gpu"
# Docker refuses a memory limit below 6 MiB.
_MIN_MEMORY = 6 * 1024 * 1024
_SERVICE_NAME_MAX = 63
_CONSTRAINT = re.compile(r"^\s*[A-Za-z][\w.\-]*\s*(==|!=)\s*\S.*$")


@dataclass(frozen=True)
class StepPlacement:
    """Where Swarm may run a step, and what it reserves there.

    Attributes:
        constraints: Swarm placement constraints (``node.hostname==node-b``).
        nano_cpus: CPUs reserved and the limit, in units of 1e-9 CPU (None: none).
        memory_bytes: memory reserved and the limit (None: none).
        generic_resources: named node resources reserved, e.g. {"gpu": 1}.
    """

    constraints: Tuple[str, ...] = ()
    nano_cpus: Optional[int] = None
    memory_bytes: Optional[int] = None
    generic_resources: Mapping[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """A short text for logs, e.g. ``memory 4.0 GiB, constraints node.labels.size==large``."""
        parts = []
        if self.memory_bytes:
            parts.append(f"memory {self.memory_bytes / 2**30:.1f} GiB")
        if self.nano_cpus:
            parts.append(f"{self.nano_cpus / 1e9:g} CPU")
        parts.extend(f"{count} {name}" for name, count in sorted(self.generic_resources.items()))
        if self.constraints:
            parts.append("constraints " + ", ".join(self.constraints))
        return ", ".join(parts) or "anywhere"


def placement_for(request: ResourceRequest, constraints: List[str], step_name: str) -> StepPlacement:
    """ZenML's resource request and the step's constraints as a `StepPlacement`.

    Raises:
        InvalidSettingsError: a constraint is not ``key==value`` / ``key!=value``,
            or the memory is below Docker's minimum.
    """
    for constraint in constraints:
        if not isinstance(constraint, str) or not _CONSTRAINT.match(constraint):
            raise InvalidSettingsError(
                f"Step '{step_name}': placement constraint {constraint!r} is not of the form "
                "'key==value' or 'key!=value' (for example 'node.hostname==node-b' or "
                "'node.labels.size==large'). Fix placement_constraints."
            )
    if request.memory_bytes is not None and request.memory_bytes < _MIN_MEMORY:
        raise InvalidSettingsError(
            f"Step '{step_name}' asks for {request.memory_bytes} bytes of memory; Docker needs "
            "at least 6 MiB. Raise ResourceSettings.memory."
        )
    return StepPlacement(
        constraints=tuple(c.strip() for c in constraints),
        nano_cpus=int(round(request.cpu_count * 1e9)) if request.cpu_count else None,
        memory_bytes=request.memory_bytes,
        generic_resources={GPU_RESOURCE: int(request.gpu_count)} if request.gpu_count else {},
    )


def service_name(container_name: str) -> str:
    """A valid Swarm service name (at most 63 characters) from a step container's name.

    Kept readable (its start) and unique (a hash of the whole name).
    """
    if len(container_name) <= _SERVICE_NAME_MAX:
        return container_name
    digest = hashlib.sha256(container_name.encode()).hexdigest()[:10]
    head = container_name[: _SERVICE_NAME_MAX - len(digest) - 1].rstrip("-._")
    return f"{head}-{digest}"


def service_kwargs(spec: ContainerSpec, placement: StepPlacement, *, mode: str,
                   grace_seconds: int) -> Dict[str, Any]:
    """The keyword arguments of `DockerClient.services.create` for one step attempt.

    Args:
        spec: the step container's spec (`RunPlan.spec_for`).
        placement: reservations, limits and constraints.
        mode: "replicated" (one replica, never restarted) or "replicated-job".
        grace_seconds: SIGTERM-to-SIGKILL grace when the task is stopped.

    Returns:
        kwargs with `image` and `command` included; service and container
        carry the same labels, so either can be found by them.
    """
    resources = Resources(
        cpu_limit=placement.nano_cpus, cpu_reservation=placement.nano_cpus,
        mem_limit=placement.memory_bytes, mem_reservation=placement.memory_bytes,
        generic_resources=dict(placement.generic_resources) or None,
    )
    kwargs: Dict[str, Any] = {
        "image": spec.image,
        "command": list(spec.entrypoint),
        "args": list(spec.command),
        "name": service_name(spec.name),
        "labels": dict(spec.labels),
        "container_labels": dict(spec.labels),
        "env": [f"{key}={value}" for key, value in spec.environment.items()],
        "mounts": mounts_of(spec),
        "mode": ServiceMode(mode, replicas=1) if mode == "replicated" else ServiceMode(mode),
        "restart_policy": RestartPolicy(condition="none", max_attempts=0),
        "networks": ["host"],
        "resources": resources,
        "constraints": list(placement.constraints),
        "stop_grace_period": int(grace_seconds * 1e9),
    }
    if spec.user is not None:
        kwargs["user"] = spec.user
    return kwargs


def mounts_of(spec: ContainerSpec) -> List[Mount]:
    """The spec's bind mounts and tmpfs folders as Swarm mounts."""
    mounts = [
        Mount(target=bind["bind"], source=source, type="bind",
              read_only=bind.get("mode", "rw") == "ro")
        for source, bind in spec.volumes.items()
    ]
    for target, options in dict(spec.extra.get("tmpfs") or {}).items():
        mode = re.search(r"mode=([0-7]+)", options or "")
        mounts.append(Mount(target=target, source=None, type="tmpfs",
                            tmpfs_mode=int(mode.group(1), 8) if mode else None))
    return mounts
