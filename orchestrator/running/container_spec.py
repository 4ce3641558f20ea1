"""Turn one step's settings into the arguments of one `docker create` call.

This module is pure: it reads settings and returns a `ContainerSpec`, so every
rule about what reaches a container (labels, environment, mounts, user,
resource limits, which `run_args` are allowed) is unit-tested without Docker.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from docker.models.containers import RUN_CREATE_KWARGS, RUN_HOST_CONFIG_KWARGS
from docker.types import DeviceRequest

from orchestrator.errors import InvalidSettingsError
from orchestrator.running.labels import step_labels

# The attempt number, as an environment variable inside the step container.
ATTEMPT_ENV = "MY_DOCKER_STEP_ATTEMPT"

# Variables holding a list of paths: ours and the user's are joined, not replaced.
PATH_LIST_VARIABLES = frozenset({"PYTHONPATH"})

# Where the orchestrator's own package is mounted inside every step container.
PACKAGE_MOUNT_ROOT = "/opt/my_docker/src"

# docker-py keyword arguments that `containers.create` accepts besides the
# plain create and host-config ones (it translates these itself).
_EXTRA_CREATE_KWARGS = {"volumes", "ports", "network", "network_driver_opt"}
_ALLOWED_RUN_ARGS = (
    set(RUN_CREATE_KWARGS) | set(RUN_HOST_CONFIG_KWARGS) | _EXTRA_CREATE_KWARGS
)
# Arguments the orchestrator owns: letting a user set them would break the
# step (command, entrypoint), the log collection (detach, auto_remove) or our
# ability to find the container again (name).
_OWNED_RUN_ARGS = {
    "command",
    "entrypoint",
    "detach",
    "auto_remove",
    "name",
    "stdin_open",
    "tty",
    "remove",
    "stream",
}
# Arguments that would give a step control over the host.
_FORBIDDEN_RUN_ARGS = {"privileged", "pid_mode", "userns_mode"}
_DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")


@dataclass
class ContainerSpec:
    """Everything needed to create one step container, as docker-py kwargs."""

    image: str
    entrypoint: List[str]
    command: List[str]
    name: str
    labels: Dict[str, str]
    environment: Dict[str, str]
    volumes: Dict[str, Dict[str, str]]
    user: Optional[str]
    extra: Dict[str, Any] = field(default_factory=dict)

    def create_kwargs(self) -> Dict[str, Any]:
        """The keyword arguments for `DockerClient.containers.create`."""
        kwargs: Dict[str, Any] = dict(self.extra)
        kwargs.update(
            image=self.image,
            entrypoint=self.entrypoint,
            command=self.command,
            name=self.name,
            labels=self.labels,
            environment=self.environment,
            volumes=self.volumes,
            detach=True,
        )
        if self.user is not None:
            kwargs["user"] = self.user
        return kwargs


@dataclass(frozen=True)
class ResourceRequest:
    """The part of ZenML's `ResourceSettings` a local container can honour."""

    cpu_count: Optional[float] = None
    memory_bytes: Optional[int] = None
    gpu_count: Optional[int] = None
    ignored: tuple = ()


def validate_run_args(run_args: Mapping[str, Any]) -> None:
    """Reject `run_args` that docker-py does not know or that we must own.

    Raises:
        InvalidSettingsError: naming the bad key and what to do instead.
    """
    for key, value in run_args.items():
        if key in _OWNED_RUN_ARGS:
            raise InvalidSettingsError(
                f"run_args['{key}'] cannot be set: the my_docker orchestrator "
                f"sets '{key}' itself for every step container. Remove it "
                "from the orchestrator's run_args."
            )
        if key in _FORBIDDEN_RUN_ARGS and value:
            raise InvalidSettingsError(
                f"run_args['{key}'] is refused: step containers never get "
                "control over the host. Remove it from run_args."
            )
        if key not in _ALLOWED_RUN_ARGS:
            close = difflib.get_close_matches(key, sorted(_ALLOWED_RUN_ARGS), n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise InvalidSettingsError(
                f"run_args has an unknown key '{key}': it is not an argument of "
                "docker-py's containers.create()." + hint + " See "
                "https://docker-py.readthedocs.io/en/stable/containers.html."
            )
    for host_path in _bind_sources(run_args.get("volumes")):
        if host_path.rstrip("/") in _DOCKER_SOCKETS:
            raise InvalidSettingsError(
                f"run_args['volumes'] mounts the Docker socket ({host_path}): "
                "that would give a step control of the Docker engine. Remove it."
            )
    for key in ("environment", "labels", "volumes"):
        value = run_args.get(key)
        if value is not None and not isinstance(value, (dict, list)):
            raise InvalidSettingsError(
                f"run_args['{key}'] must be a dict (or a list), got "
                f"{type(value).__name__}."
            )


def _bind_sources(volumes: Any) -> List[str]:
    """Host paths of a docker-py `volumes` argument (dict or list form)."""
    if isinstance(volumes, dict):
        return [str(path) for path in volumes]
    if isinstance(volumes, list):
        return [str(entry).split(":", 1)[0] for entry in volumes]
    return []


def _volumes_as_dict(volumes: Any) -> Dict[str, Dict[str, str]]:
    """Normalise docker-py's list form ('src:dst[:mode]') to its dict form."""
    if not volumes:
        return {}
    if isinstance(volumes, dict):
        return {str(k): dict(v) for k, v in volumes.items()}
    result: Dict[str, Dict[str, str]] = {}
    for entry in volumes:
        parts = str(entry).split(":")
        if len(parts) < 2:
            raise InvalidSettingsError(
                f"run_args['volumes'] entry '{entry}' must look like "
                "'/host/path:/container/path[:ro|rw]'."
            )
        mode = parts[2] if len(parts) > 2 else "rw"
        result[parts[0]] = {"bind": parts[1], "mode": mode}
    return result


def _environment_as_dict(environment: Any) -> Dict[str, str]:
    """Normalise docker-py's list form ('KEY=value') to a dict."""
    if not environment:
        return {}
    if isinstance(environment, dict):
        return {str(k): str(v) for k, v in environment.items()}
    return dict(str(item).split("=", 1) for item in environment)


def resource_request(resource_settings: Any) -> ResourceRequest:
    """Read the fields of ZenML's `ResourceSettings` that Docker can honour.

    Args:
        resource_settings: a `zenml.config.ResourceSettings` (or None).
    """
    if resource_settings is None:
        return ResourceRequest()
    memory = resource_settings.get_memory(unit="B") if resource_settings.memory else None
    ignored = []
    if getattr(resource_settings, "gpu_class", None):
        ignored.append("gpu_class")
    for name in ("min_replicas", "max_replicas", "autoscaling_metric",
                 "autoscaling_target", "max_concurrency"):
        if getattr(resource_settings, name, None) is not None:
            ignored.append(name)
    if getattr(resource_settings, "resources", None):
        ignored.append("resources")
    return ResourceRequest(
        cpu_count=resource_settings.cpu_count,
        memory_bytes=int(memory) if memory else None,
        gpu_count=resource_settings.gpu_count or None,
        ignored=tuple(ignored),
    )


def resource_limits(
    request: ResourceRequest,
    *,
    host_cpus: int,
    gpu_runtime_available: bool,
    warn: Callable[[str], None],
    step_name: str,
) -> Dict[str, Any]:
    """Translate a resource request into docker-py host-config arguments.

    Anything that cannot be honoured on this machine is reported through
    `warn` instead of being silently dropped.
    """
    limits: Dict[str, Any] = {}
    if request.cpu_count:
        cpus = request.cpu_count
        if cpus > host_cpus:
            warn(
                f"Step '{step_name}' asks for {cpus:g} CPUs but this Docker "
                f"engine has {host_cpus}; limiting it to {host_cpus}."
            )
            cpus = host_cpus
        limits["nano_cpus"] = int(round(cpus * 1e9))
    if request.memory_bytes:
        if request.memory_bytes < 6 * 1024 * 1024:
            raise InvalidSettingsError(
                f"Step '{step_name}' asks for {request.memory_bytes} bytes of "
                "memory; Docker needs at least 6 MiB. Raise ResourceSettings.memory."
            )
        limits["mem_limit"] = request.memory_bytes
        # Same value for memory+swap: the limit means what it says, no swap.
        limits["memswap_limit"] = request.memory_bytes
    if request.gpu_count:
        if gpu_runtime_available:
            limits["device_requests"] = [
                DeviceRequest(count=request.gpu_count, capabilities=[["gpu"]])
            ]
        else:
            warn(
                f"Step '{step_name}' asks for {request.gpu_count} GPU(s) but this "
                "Docker engine has no GPU runtime (nvidia); it runs without GPUs."
            )
    if request.ignored:
        warn(
            f"Step '{step_name}': ResourceSettings field(s) "
            f"{', '.join(request.ignored)} have no meaning for local containers "
            "and are ignored."
        )
    return limits


# Docker's rule for container names; anything else is refused by the engine.
_CONTAINER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_NAME_PART_CHARS = 60


def _name_part(text: str) -> str:
    """`text` with every character Docker refuses in names made a dash."""
    part = re.sub(r"[^a-zA-Z0-9_.-]+", "-", text)
    return part.strip("-._")[:_NAME_PART_CHARS].strip("-._")


def container_name(pipeline_run_name: str, step_name: str, attempt: int, run_id: str) -> str:
    """A readable, valid and unique container name for one attempt of one step.

    Readable: the run and step names, shortened and with the characters Docker
    refuses replaced. Unique: step names that only differ in such characters
    (``prep 1``, ``prep-1``, ``prep_1``) would read the same, so a short hash
    of the exact step name follows, then the run id and the attempt.

    Returns:
        A name matching ``[a-zA-Z0-9][a-zA-Z0-9_.-]*``, at most 150 characters.
    """
    step_hash = hashlib.sha256(step_name.encode("utf-8")).hexdigest()[:10]
    parts = [_name_part(pipeline_run_name), _name_part(step_name), step_hash,
             _name_part(run_id)[:8] or "run", f"a{int(attempt)}"]
    name = "-".join(part for part in parts if part)
    if not _CONTAINER_NAME.match(name):  # a name part started with "_" or "."
        name = "s-" + name
    return name


def merge_environment(
    ours: Mapping[str, str],
    user_layers: Sequence[Mapping[str, str]] = (),
    *,
    defaults: Mapping[str, str] = (),  # type: ignore[assignment]
    image_environment: Mapping[str, str] = (),  # type: ignore[assignment]
    warn: Optional[Callable[[str], None]] = None,
    step_name: str = "",
) -> Dict[str, str]:
    """A step container's environment: the user's, with ours merged in, nothing dropped.

    Args:
        ours: what the orchestrator must set (run id, stores path, the
            package on PYTHONPATH). Wins over the user's value, with a
            warning, except for path lists (PYTHONPATH), where our entries
            come first and the user's follow.
        user_layers: the user's variables, lowest precedence first (for
            example DockerSettings.environment, the step's environment,
            run_args['environment']).
        defaults: what we set only when neither the user nor the image does
            (HOME for an unknown uid, plain log lines).
        image_environment: the image's own variables (its ENV lines): a
            container's variables replace the image's, so an image's
            PYTHONPATH is merged like the user's, and defaults yield to it.
        warn: told about every user value that had to give way.

    Returns:
        Variable name -> value, to pass as the container's environment.
    """
    image_env = dict(image_environment or {})
    user: Dict[str, str] = {}
    for layer in user_layers:
        user.update({str(k): str(v) for k, v in (layer or {}).items()})
    result = {key: str(value) for key, value in dict(defaults or {}).items()
              if key not in user and key not in image_env}
    result.update(user)
    for key, value in ours.items():
        theirs = user.get(key, image_env.get(key) if key in PATH_LIST_VARIABLES else None)
        if key in PATH_LIST_VARIABLES and theirs:
            entries = [e for e in f"{value}:{theirs}".split(":") if e]
            result[key] = ":".join(dict.fromkeys(entries))
            continue
        if key in user and user[key] != str(value) and warn is not None:
            warn(f"Step '{step_name}': the environment variable {key} is set by the "
                 f"my_docker orchestrator itself; your value {user[key]!r} is replaced "
                 f"by {value!r}. Remove it from your settings.")
        result[key] = str(value)
    return result


def build_spec(
    *,
    image: str,
    entrypoint: List[str],
    arguments: List[str],
    step_name: str,
    attempt: int,
    labels: Mapping[str, str],
    environment: Mapping[str, str],
    mounts: Mapping[str, Dict[str, str]],
    user: Optional[str],
    run_args: Mapping[str, Any],
    limits: Mapping[str, Any],
    name: str,
    user_environment: Mapping[str, str] = (),  # type: ignore[assignment]
    default_environment: Mapping[str, str] = (),  # type: ignore[assignment]
    image_environment: Mapping[str, str] = (),  # type: ignore[assignment]
    tmpfs: Mapping[str, str] = (),  # type: ignore[assignment]
    warn: Optional[Callable[[str], None]] = None,
) -> ContainerSpec:
    """Combine our fixed choices with the user's settings into a spec.

    Our environment (`environment`), labels and mounts win over the user's
    on the same key, because the step cannot run (or be found) without
    them; path lists such as PYTHONPATH are merged instead (see
    `merge_environment`). A user may set `user`, `image` and `tmpfs` in
    `run_args`; everything else is passed on as given.

    Args:
        user_environment: the step's environment from ZenML (lower
            precedence than run_args['environment']).
        default_environment: variables set only if nobody else sets them.
        image_environment: the image's ENV, so that its PYTHONPATH is kept.
        tmpfs: container path -> tmpfs options the orchestrator needs (a
            writable /app for any uid).
        warn: told when a user value gives way to ours.

    Raises:
        InvalidSettingsError: `run_args` are invalid (see `validate_run_args`).
    """
    validate_run_args(run_args)
    extra = dict(run_args)
    env = merge_environment(
        {**environment, ATTEMPT_ENV: str(attempt)},  # lets a step know it is retried
        [user_environment, _environment_as_dict(extra.pop("environment", None))],
        defaults=default_environment,
        image_environment=image_environment,
        warn=warn,
        step_name=step_name,
    )
    all_labels = {str(k): str(v) for k, v in (extra.pop("labels", None) or {}).items()}
    all_labels.update(labels)
    all_labels.update(step_labels(step_name, attempt))
    volumes = _volumes_as_dict(extra.pop("volumes", None))
    volumes.update(mounts)
    image = extra.pop("image", image)
    chosen_user = extra.pop("user", user)
    extra_hosts = dict(extra.pop("extra_hosts", None) or {})
    extra_hosts.setdefault("host.docker.internal", "host-gateway")
    extra["extra_hosts"] = extra_hosts
    if tmpfs:
        extra["tmpfs"] = {**dict(tmpfs), **dict(extra.get("tmpfs") or {})}
    for key, value in limits.items():
        extra.setdefault(key, value)
    return ContainerSpec(
        image=image,
        entrypoint=list(entrypoint),
        command=list(arguments),
        name=name,
        labels=all_labels,
        environment=env,
        volumes=volumes,
        user=None if chosen_user is None else str(chosen_user),
        extra=extra,
    )
