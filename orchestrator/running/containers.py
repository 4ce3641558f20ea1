"""A pipeline step as a Docker container: create, start, stream, wait, stop, remove.

Everything here talks to the Docker engine through docker-py and knows nothing
of the DAG: the runner decides *which* step runs, this module makes it run and
reports how it ended. Containers are found again by their labels, never by
keeping state elsewhere, so another process (a stop request, the status panel)
sees the same truth.
"""

from __future__ import annotations

import collections
import io
import tarfile
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Deque, Dict, Iterator, List, Mapping, Optional, Tuple

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container
from docker.models.images import Image
from requests.exceptions import RequestException

from orchestrator.errors import ImageNotFoundError, InvalidSettingsError, MyDockerError
from orchestrator.running.container_spec import ContainerSpec
from orchestrator.running.labels import trial_labels

LOG_TAIL_LINES = 60
# How long a step's container is followed without an answer from the engine
# (its socket dropped, the engine restarted) before giving up on it.
ENGINE_RETRY_SECONDS = 60.0


class _Retry:
    """Waits between tries while the engine does not answer, for ENGINE_RETRY_SECONDS in all."""

    def __init__(self) -> None:
        self._deadline: Optional[float] = None

    def reset(self) -> None:
        """The engine answered: the next trouble gets the whole time again."""
        self._deadline = None

    def wait(self) -> bool:
        """Sleep a moment before the next try; False once the time is up."""
        now = time.monotonic()
        if self._deadline is None:
            self._deadline = now + ENGINE_RETRY_SECONDS
        if now >= self._deadline:
            return False
        time.sleep(min(1.0, self._deadline - now))
        return True


@dataclass(frozen=True)
class ContainerExit:
    """How a step container ended.

    Attributes:
        exit_code: the process's exit code (-1 when it never ran).
        oom_killed: the kernel killed it for exceeding its memory limit.
        last_lines: its last lines of output.
        error: why the step failed although the exit code does not say so
            (the engine refused the container, or the step's record
            disagrees with its exit code).
    """

    exit_code: int
    oom_killed: bool
    last_lines: tuple
    error: Optional[str] = None

    @classmethod
    def refused(cls, reason: str) -> "ContainerExit":
        """A container that could not be created or started."""
        return cls(exit_code=-1, oom_killed=False, last_lines=(), error=reason)

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and self.error is None

    def describe(self) -> str:
        """A one-line human explanation of the exit."""
        if self.error is not None:
            return self.error
        if self.oom_killed:
            return f"exit code {self.exit_code}, killed: out of memory (raise the memory limit)"
        if self.exit_code == 137:
            return "exit code 137 (killed)"
        if self.exit_code == 143:
            return "exit code 143 (terminated)"
        return f"exit code {self.exit_code}"


def require_image(client: docker.DockerClient, image: str) -> Image:
    """The engine's image called `image`; fails early, and clearly, if there is none.

    Raises:
        ImageNotFoundError: the engine has no such image (says what to do).
    """
    try:
        return client.images.get(image)
    except ImageNotFound as error:
        raise ImageNotFoundError(
            f"The Docker image '{image}' does not exist on this Docker engine "
            "(`docker images` lists those that do). If you named it in "
            "run_args['image'], build or load it first. If ZenML built it, "
            "it was removed after the build: run the pipeline again."
        ) from error


def image_environment(image: Image) -> Dict[str, str]:
    """The variables an image sets with ENV (its `Config.Env`)."""
    entries = (image.attrs.get("Config") or {}).get("Env") or []
    return dict(entry.split("=", 1) for entry in entries if "=" in entry)


class AppDir(Enum):
    """What ZenML's working directory /app looks like to a step's user."""

    WRITABLE = "writable"
    MISSING = "missing"
    EMPTY_READ_ONLY = "empty, not writable"
    FULL_READ_ONLY = "has files, not writable"


APP_DIR = "/app"
_app_dir_cache: Dict[Tuple[str, Optional[str]], AppDir] = {}


def app_dir_state(client: docker.DockerClient, image: Image, user: Optional[str]) -> AppDir:
    """Whether `user` ("uid:gid") can write /app in `image`, read from the image itself.

    A container is created (never started) and /app's owner and mode are
    read from the engine's archive of it, so no shell is needed in the
    image. Answers are remembered per image and user for this process.
    """
    uid, _, gid = (user or "0").partition(":")
    if uid in ("0", "root"):
        return AppDir.WRITABLE
    key = (image.id, user)
    if key not in _app_dir_cache:
        container = client.containers.create(image.id, command=["true"], user=user,
                                             entrypoint=["true"], network_disabled=True)
        try:
            _app_dir_cache[key] = _read_app_dir(container, uid, gid)
        finally:
            container.remove(force=True)
    return _app_dir_cache[key]


def _read_app_dir(container: Container, uid: str, gid: str) -> AppDir:
    try:
        chunks, _ = container.get_archive(APP_DIR)
    except NotFound:
        return AppDir.MISSING
    with tarfile.open(fileobj=_ChunkReader(chunks), mode="r|") as archive:
        members = iter(archive)
        top = next(members, None)
        has_files = next(members, None) is not None
    if top is None:
        return AppDir.MISSING
    mode = top.mode
    writable = bool(
        mode & 0o002
        or (str(top.uid) == uid and mode & 0o200)
        or (str(top.gid) == gid and mode & 0o020)
    )
    if writable:
        return AppDir.WRITABLE
    return AppDir.FULL_READ_ONLY if has_files else AppDir.EMPTY_READ_ONLY


class _ChunkReader(io.RawIOBase):
    """A file object over docker-py's stream of byte chunks, for `tarfile`."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:  # type: ignore[override]
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def check_with_engine(client: docker.DockerClient, specs: Mapping[str, ContainerSpec]) -> None:
    """Let the engine check every distinct kind of container before any starts.

    A container is created (not started) and removed for each distinct set
    of options, so that whatever the engine refuses (a memory limit below
    its minimum, a swap limit below the memory limit, an unknown runtime, a
    bad mount) fails the run before its first step, naming the step.

    Raises:
        InvalidSettingsError: the engine refused a step's container options.
        ImageNotFoundError: a step's image does not exist.
    """
    checked = set()
    for step_name, spec in specs.items():
        kwargs = spec.create_kwargs()
        # Not named, and labelled as trials (no pipeline run, no step):
        # watchers of the run must not take them for the step's, yet a run
        # whose client dies right here gets them removed with it (`orphans`).
        kwargs.pop("name", None)
        kwargs["labels"] = trial_labels(kwargs.get("labels") or {})
        signature = repr(sorted((k, repr(v)) for k, v in kwargs.items()
                                if k not in ("labels", "environment", "command")))
        if signature in checked:
            continue
        checked.add(signature)
        container = _create(client, spec, step_name, kwargs)
        container.remove(force=True)


def _create(client: docker.DockerClient, spec: ContainerSpec, step_name: str,
            kwargs: Dict[str, Any]) -> Container:
    """`containers.create`, with the engine's refusals told in our words."""
    try:
        return client.containers.create(**kwargs)
    except ImageNotFound as error:
        raise ImageNotFoundError(
            f"Step '{step_name}': the image '{spec.image}' does not exist on "
            "this Docker engine. Run `python -m orchestrator.machine.base_image` or "
            "check DockerSettings(parent_image=...) (with skip_build=True it is the "
            "step's image)."
        ) from error
    except TypeError as error:
        raise InvalidSettingsError(
            f"Step '{step_name}': docker-py rejected the container arguments: "
            f"{error}. Check the orchestrator's run_args."
        ) from error
    except APIError as error:
        raise InvalidSettingsError(
            f"Step '{step_name}': the Docker engine refused the step's container: "
            f"{error.explanation or error}. Check the orchestrator's run_args and "
            "the step's ResourceSettings."
        ) from error
    except (DockerException, ValueError) as error:  # docker-py's own checks, before the engine
        raise InvalidSettingsError(
            f"Step '{step_name}': docker-py could not turn the step's settings into a "
            f"container: {error}. Check the orchestrator's run_args (for example "
            "mem_limit='512m') and the step's ResourceSettings."
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
            "orchestrator.machine.base_image` to build ZenML's default parent image "
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

    @property
    def name(self) -> str:
        """The container's name (unique: run, step and attempt are in it)."""
        return self.container.name

    @classmethod
    def start(cls, client: docker.DockerClient, spec: ContainerSpec, step_name: str,
              attempt: int) -> "StepContainer":
        """Create and start the container described by `spec`."""
        container = _create(client, spec, step_name, spec.create_kwargs())
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

    def follow_output(self, on_chunk: Callable[[bytes], None]) -> None:
        """Pass the container's output to `on_chunk` as Docker sends it, until it exits.

        The bytes are what the step printed (stdout and stderr as Docker
        merges them), in pieces cut anywhere; nothing is decoded or split
        here, so any output costs time in proportion to its size.

        A stream that breaks while the container runs (the engine restarted,
        its socket dropped) is followed again, for up to
        ENGINE_RETRY_SECONDS without an answer: Docker sends the log from its
        start, and the bytes already passed on are skipped, so nothing is
        lost or repeated. Once the container has exited, its output is read
        once more to the end (a followed stream may end before Docker stored
        the last piece).
        """
        received = 0
        last_read = False  # the container has exited: read what is left, once
        retry = _Retry()
        while True:
            skip = received
            try:
                for chunk in self.container.logs(stream=True, follow=not last_read):
                    if skip:
                        if len(chunk) <= skip:
                            skip -= len(chunk)
                            continue
                        chunk, skip = chunk[skip:], 0
                    received += len(chunk)
                    retry.reset()
                    on_chunk(chunk)
            except NotFound:
                return  # removed under us (stop/interrupt)
            except (DockerException, OSError, RequestException):
                last_read = False  # broken: find out why below
            else:
                if last_read:
                    return
            state = self._state()
            if state == "gone":
                return
            if state == "exited":
                # A followed stream may end before Docker stored the output's
                # last piece (a line without a newline): read once more, to the end.
                last_read = True
                continue
            # The stream ended, or broke, while the container runs (or the
            # engine does not answer): it was cut; follow it again.
            if not retry.wait():
                return  # no engine for ENGINE_RETRY_SECONDS: the caller's wait tells

    def keep_tail(self, line: str) -> None:
        """Remember one shown line among the last LOG_TAIL_LINES (the exit's `last_lines`)."""
        self.tail.append(line)

    def _state(self) -> Optional[str]:
        """The container's status ("running", "exited", ...), "gone" if removed,
        None if the engine does not answer."""
        try:
            self.container.reload()
        except NotFound:
            return "gone"
        except (DockerException, OSError, RequestException):
            return None
        return self.container.status

    def wait(self) -> ContainerExit:
        """Block until the container exits and say how it ended.

        A lost connection to the engine is retried for up to
        ENGINE_RETRY_SECONDS without an answer; after that the exit is
        reported as an error saying so.
        """
        retry = _Retry()
        while True:
            try:
                result = self.container.wait()
                exit_code = int(result.get("StatusCode", -1))
                self.container.reload()
                oom = bool(self.container.attrs.get("State", {}).get("OOMKilled"))
            except NotFound:
                exit_code, oom = 137, False  # removed by a stop/interrupt
            except (DockerException, OSError, RequestException) as error:
                if retry.wait():
                    continue
                return ContainerExit(exit_code=-1, oom_killed=False, last_lines=tuple(self.tail),
                                     error=f"lost the Docker engine for "
                                           f"{ENGINE_RETRY_SECONDS:g} s ({error})")
            return ContainerExit(exit_code=exit_code, oom_killed=oom,
                                 last_lines=tuple(self.tail))

    def set_cpu_shares(self, shares: int) -> None:
        """Change the container's CPU weight while it runs (`docker update --cpu-shares`)."""
        try:
            self.container.update(cpu_shares=shares)
        except (NotFound, APIError):
            pass  # gone already, or an engine that cannot: it only runs slower

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
