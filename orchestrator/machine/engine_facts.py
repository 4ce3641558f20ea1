"""What kind of container engine answers, and what that means for step containers.

Three kinds of engine answer the Docker API on a Linux machine: rootful Docker
(root or the ``docker`` group), rootless Docker (``dockerd-rootless.sh``, its
daemon inside the user's own user namespace) and Podman's Docker-compatible
service (``podman system service``), usually rootless too. They differ in two
ways that matter to the orchestrator:

- **Who writes the caller's files.** Step containers write ZenML's store,
  which is bind-mounted from the caller's files. On a rootful engine a
  container process running as the caller's uid:gid writes them as the
  caller. In a rootless engine's user namespace only container uid 0 is the
  caller on the host; any other uid is one of the caller's subordinate uids
  (uid 1001 inside lands as 101000 on the host) and cannot write the store
  ("attempt to write a readonly database"). So steps run as ``0:0`` there.
- **Which `ResourceSettings` are enforced.** A rootless engine on cgroup v1
  (or without delegated cgroup v2 controllers) cannot limit memory or CPU and
  drops limits without an error. Docker's ``info`` says so (``MemoryLimit``,
  ``CpuCfsQuota``); Podman's Docker-compatible ``info`` claims both even
  where nothing is enforced, so for Podman its own libpod ``info``
  (``host.cgroupControllers``) is read instead.

Everything here is pure: it reads the engine's answers (as plain dicts) and
decides; `orchestrator.machine.engine.read_engine_facts` asks the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Tuple

DOCKER = "Docker"
PODMAN = "Podman"


@dataclass(frozen=True)
class EngineFacts:
    """The facts about one engine that change how step containers are made.

    Attributes:
        product: ``Docker`` or ``Podman``.
        version: the engine's version, as it reports it.
        rootless: the daemon runs in an unprivileged user's user namespace.
        memory_limit: memory limits of containers are enforced.
        cpu_limit: CPU limits (CFS quota, ``nano_cpus``) are enforced.
        address: where the engine was reached (for messages).
    """

    product: str = DOCKER
    version: str = "?"
    rootless: bool = False
    memory_limit: bool = True
    cpu_limit: bool = True
    address: str = ""

    @property
    def name(self) -> str:
        """How messages name the engine: ``rootless Podman 4.3.1 at unix:///...``."""
        kind = f"{'rootless' if self.rootless else 'rootful'} {self.product} {self.version}"
        return f"{kind} at {self.address}" if self.address else kind


def _security_options(info: Mapping[str, Any]) -> Sequence[str]:
    return [str(option) for option in (info.get("SecurityOptions") or [])]


def is_podman(version: Mapping[str, Any]) -> bool:
    """Whether a Docker-API ``version`` answer comes from Podman's service."""
    for component in version.get("Components") or []:
        if "podman" in str(component.get("Name", "")).lower():
            return True
    return "podman" in str(version.get("Platform", {}).get("Name", "")).lower()


def engine_facts(info: Mapping[str, Any], version: Mapping[str, Any],
                 libpod_info: Optional[Mapping[str, Any]] = None,
                 address: str = "") -> EngineFacts:
    """Decide what kind of engine answered, from its own answers.

    Args:
        info: the Docker API's ``/info`` answer (``docker info``).
        version: the Docker API's ``/version`` answer.
        libpod_info: Podman's own ``/v4.0.0/libpod/info`` answer, when the
            engine is Podman and it answered; None otherwise.
        address: where the engine was reached, for messages.
    """
    podman = is_podman(version) or libpod_info is not None
    if podman:
        host = (libpod_info or {}).get("host") or {}
        security = host.get("security") or {}
        if "rootless" in security:
            rootless = bool(security["rootless"])
        else:  # no libpod answer: the compatible info's security options
            rootless = any("rootless" in option for option in _security_options(info))
        version_text = str((libpod_info or {}).get("version", {}).get("Version")
                           or _component_version(version, "podman")
                           or version.get("Version") or "?")
        if libpod_info is not None:
            # Podman's compatible info claims limits it cannot apply; its
            # own list of delegated cgroup controllers tells the truth.
            controllers = {str(c) for c in host.get("cgroupControllers") or []}
            memory, cpu = "memory" in controllers, "cpu" in controllers
        else:
            memory = cpu = not rootless  # unknown: assume the worst for rootless
        return EngineFacts(PODMAN, version_text, rootless, memory, cpu, address)
    rootless = any("name=rootless" in option for option in _security_options(info))
    return EngineFacts(
        DOCKER,
        str(version.get("Version") or info.get("ServerVersion") or "?"),
        rootless,
        bool(info.get("MemoryLimit", True)),
        bool(info.get("CpuCfsQuota", True)),
        address,
    )


def _component_version(version: Mapping[str, Any], name: str) -> Optional[str]:
    for component in version.get("Components") or []:
        if name in str(component.get("Name", "")).lower():
            return str(component.get("Version") or "") or None
    return None


def step_user_for(facts: EngineFacts, uid: int, gid: int) -> str:
    """The container user a step runs as, so that it writes the caller's files as the caller.

    Rootful engine: the caller's ``uid:gid``. Rootless engine (Docker or
    Podman): ``0:0``, which is the caller on the host; any other uid would
    be a subordinate uid that cannot write the caller's store.
    """
    if facts.rootless:
        return "0:0"
    return f"{uid}:{gid}"


def unenforced_limits(facts: EngineFacts, limits: Mapping[str, Any]) -> Tuple[str, ...]:
    """Which of a container's resource limits (docker-py kwargs) this engine would drop.

    Returns:
        The `ResourceSettings` names whose limits the engine cannot enforce
        (``memory``, ``cpu_count``), in that order; empty when all hold.
    """
    dropped = []
    if not facts.memory_limit and (limits.get("mem_limit") or limits.get("memswap_limit")):
        dropped.append("memory")
    if not facts.cpu_limit and (limits.get("nano_cpus") or limits.get("cpu_quota")
                                or limits.get("cpu_period")):
        dropped.append("cpu_count")
    return tuple(dropped)


def unenforced_message(facts: EngineFacts, dropped_by_step: Mapping[str, Sequence[str]]) -> str:
    """A warning, before the first step, naming the settings this engine will not enforce."""
    steps = ", ".join(f"'{step}' ({', '.join(names)})"
                      for step, names in sorted(dropped_by_step.items()))
    why = ("its cgroups are not delegated to the user (cgroup v1, or cgroup v2 without "
           "the memory and cpu controllers delegated)" if facts.rootless
           else "it reports that it cannot apply them")
    return (f"The engine ({facts.name}) cannot enforce the ResourceSettings of "
            f"step(s) {steps}: {why}. The steps run WITHOUT those limits. To have them "
            "enforced, use a rootful engine or a rootless one on cgroup v2 with "
            "delegated controllers (https://rootlesscontaine.rs/getting-started/common/cgroup2/).")
