"""A pipeline step as a Docker container: create, start, stream, wait, stop, remove.

Everything here talks to the Docker engine through docker-py and knows nothing
of the DAG: the runner decides *which* step runs, this module makes it run and
reports how it ended. Containers are found again by their labels, never by
keeping state elsewhere, so another process (a stop request, the status panel)
sees the same truth.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Callable, Deque, Dict, List, Optional

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container

from orchestrator.container_spec import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    ORCHESTRATOR_RUN_ID_LABEL,
    PIPELINE_RUN_ID_LABEL,
    ContainerSpec,
)
from orchestrator.errors import ImageNotFoundError, InvalidSettingsError, MyDockerError

LOG_TAIL_LINES = 60


@dataclass(frozen=True)
class ContainerExit:
    """How a step container ended."""

    exit_code: int
    oom_killed: bool
    last_lines: tuple

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0

    def describe(self) -> str:
        """A one-line human explanation of the exit."""
        if self.oom_killed:
            return f"exit code {self.exit_code}, killed: out of memory (raise the memory limit)"
        if self.exit_code == 137:
            return "exit code 137 (killed)"
        if self.exit_code == 143:
            return "exit code 143 (terminated)"
        return f"exit code {self.exit_code}"


def require_image(client: docker.DockerClient, image: str) -> None:
    """Fail early, and clearly, when the engine does not have `image`."""
    try:
        client.images.get(image)
    except ImageNotFound as error:
        raise ImageNotFoundError(
            f"The Docker image '{image}' does not exist on this Docker engine "
            "(`docker images` lists those that do). If you named it in "
            "run_args['image'], build or load it first. If ZenML built it, "
            "it was removed after the build: run the pipeline again."
        ) from error


def require_parent_image(client: docker.DockerClient, image: str) -> None:
    """Make sure ZenML's `docker build` will find its FROM image.

    A local image is used as is; otherwise we try to pull it, as `docker
    build` would, and explain what to do when no registry has it.
    """
    try:
        client.images.get(image)
        return
    except ImageNotFound:
        pass
    try:
        client.images.pull(image)
    except DockerException as error:
        raise ImageNotFoundError(
            f"The parent image '{image}' is not on this Docker engine and could "
            "not be pulled (no registry reachable?). Run `python -m "
            "orchestrator.base_image` to build ZenML's default parent image "
            "offline, or set DockerSettings(parent_image=...) to an image you "
            "have locally."
        ) from error


class StepContainer:
    """One running (or finished) step container and its log tail."""

    def __init__(self, container: Container, step_name: str, attempt: int) -> None:
        self.container = container
        self.step_name = step_name
        self.attempt = attempt
        self.tail: Deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)

    @property
    def short_id(self) -> str:
        return self.container.short_id

    @classmethod
    def start(cls, client: docker.DockerClient, spec: ContainerSpec, step_name: str,
              attempt: int) -> "StepContainer":
        """Create and start the container described by `spec`."""
        try:
            container = client.containers.create(**spec.create_kwargs())
        except ImageNotFound as error:
            raise ImageNotFoundError(
                f"Step '{step_name}': the image '{spec.image}' does not exist on "
                "this Docker engine. Run `python -m orchestrator.base_image` or "
                "check the image in run_args/DockerSettings."
            ) from error
        except TypeError as error:
            raise InvalidSettingsError(
                f"Step '{step_name}': docker-py rejected the container arguments: "
                f"{error}. Check the orchestrator's run_args."
            ) from error
        except APIError as error:
            raise InvalidSettingsError(
                f"Step '{step_name}': the Docker engine refused to create the "
                f"container: {error.explanation or error}. Check run_args and "
                "ResourceSettings."
            ) from error
        step_container = cls(container, step_name, attempt)
        try:
            container.start()
        except APIError as error:
            step_container.remove()
            raise MyDockerError(
                f"Step '{step_name}': the Docker engine could not start the "
                f"container: {error.explanation or error}."
            ) from error
        return step_container

    def follow_logs(self, on_line: Callable[[str], None]) -> None:
        """Stream the container's output line by line until it exits."""
        buffer = b""
        try:
            for chunk in self.container.logs(stream=True, follow=True):
                buffer += chunk
                while b"\n" in buffer:
                    raw, buffer = buffer.split(b"\n", 1)
                    self._emit(raw, on_line)
        except (DockerException, OSError):
            pass  # the container was removed under us (stop/interrupt)
        if buffer:
            self._emit(buffer, on_line)

    def _emit(self, raw: bytes, on_line: Callable[[str], None]) -> None:
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        if line.strip():
            self.tail.append(line)
            on_line(line)

    def wait(self) -> ContainerExit:
        """Block until the container exits and say how it ended."""
        try:
            result = self.container.wait()
            exit_code = int(result.get("StatusCode", -1))
            self.container.reload()
            oom = bool(self.container.attrs.get("State", {}).get("OOMKilled"))
        except NotFound:
            exit_code, oom = 137, False  # removed by a stop/interrupt
        return ContainerExit(exit_code=exit_code, oom_killed=oom, last_lines=tuple(self.tail))

    def stop(self, grace_seconds: int) -> None:
        """SIGTERM, then SIGKILL after `grace_seconds` (Docker's own stop)."""
        try:
            self.container.stop(timeout=grace_seconds)
        except NotFound:
            pass

    def remove(self) -> None:
        """Remove the container, even if it still runs."""
        try:
            self.container.remove(force=True)
        except NotFound:
            pass
        except APIError as error:
            if "already in progress" not in str(error):
                raise


def run_filters(orchestrator_run_id: Optional[str] = None,
                pipeline_run_id: Optional[str] = None) -> Dict[str, List[str]]:
    """Docker label filters that select our containers (of one run, if given)."""
    labels = [f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"]
    if orchestrator_run_id:
        labels.append(f"{ORCHESTRATOR_RUN_ID_LABEL}={orchestrator_run_id}")
    if pipeline_run_id:
        labels.append(f"{PIPELINE_RUN_ID_LABEL}={pipeline_run_id}")
    return {"label": labels}


def find_containers(client: docker.DockerClient, *, orchestrator_run_id: Optional[str] = None,
                    pipeline_run_id: Optional[str] = None) -> List[Container]:
    """All our containers (running or exited), optionally of one run."""
    # ignore_removed: a container removed between docker-py's list and its
    # inspect of each entry (a run cleaning up) is not an error.
    return client.containers.list(
        all=True, filters=run_filters(orchestrator_run_id, pipeline_run_id),
        ignore_removed=True,
    )


def stop_containers(containers: List[Container], *, graceful: bool, grace_seconds: int) -> None:
    """Stop containers: SIGTERM then SIGKILL if graceful, SIGKILL at once if not."""
    for container in containers:
        try:
            if graceful:
                container.stop(timeout=grace_seconds)
            else:
                container.kill()
        except (NotFound, APIError):
            pass  # already gone or already stopped
