"""Containers a test session leaves on the Docker engine, whoever created them.

Both suites use this one check: `tests/conftest.py` (the test suite) and
`notebooks/conftest.py` (`pytest --nbmake notebooks/`). At session start it
records the id of every container on the engine; at the end, every container
that was not there at the start is a leftover, labelled by this orchestrator or
not (a step container, a container of one of ZenML's image builds, one a test
or notebook made itself): a user sees them all in `docker ps -a`.

So the check assumes that nothing else creates containers on the same engine
during the session, as in CI.

When a session runs its tests in parallel (pytest-xdist: `-n N`), each worker
checks only what is provably its own, the containers labelled with one of its
pipeline runs or with its own client pid (`remove_containers_of`), and the
controller makes the engine-wide check once, after every worker has ended
(`ControllerCheck`): a container that appeared on the engine during the
session and is still there fails it, labelled or not, as in a serial session. Leftovers are removed after being reported, so
that they do not pile up, except those that may be another process's work on
a shared engine, which are reported and left alone (`docker rm -f NAME`
removes one): a container still running, or one whose orchestrator client
(its client-host and client-pid labels) is another process still alive on this
machine, unless it belongs to one of the session's own pipeline runs. The next
session is not affected either way: it only counts containers new to it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Collection, FrozenSet, List, Optional

import docker
from docker.errors import APIError, NotFound
from docker.models.containers import Container

from orchestrator.errors import DockerEngineUnavailableError
from orchestrator.machine.engine import connect
from orchestrator.running.labels import CLIENT_HOST_LABEL, CLIENT_PID_LABEL, PIPELINE_RUN_ID_LABEL
from tests import parallel


@dataclass(frozen=True)
class Baseline:
    """The containers on the engine when the session started.

    `ids` is None when no engine answered then (a session of pure unit tests,
    or one that starts the engine itself): if an engine answers at the end,
    every container on it counts as new.
    """

    ids: Optional[FrozenSet[str]]


@dataclass(frozen=True)
class Leftover:
    """What a report says about one leftover container."""

    name: str
    image: str
    status: str
    labels: dict
    kept_because: Optional[str]  # None: removed

    def describe(self) -> str:
        labels = ", ".join(f"{key}={value}" for key, value in sorted(self.labels.items())) or "no labels"
        kept = f" [NOT removed: {self.kept_because}]" if self.kept_because else ""
        return f"{self.name} (image {self.image}, {self.status}; {labels}){kept}"


def _reason_to_keep(container: Container, labels: dict, owned: Collection[str]) -> Optional[str]:
    """Why a leftover may be another process's work, or None to remove it."""
    if labels.get(PIPELINE_RUN_ID_LABEL) in owned:
        return None
    if container.status in ("running", "restarting", "paused"):
        return "still running, it may not be this session's"
    pid = labels.get(CLIENT_PID_LABEL, "")
    if labels.get(CLIENT_HOST_LABEL) == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, another user's
        return f"its client process {pid} still runs and may still collect it"
    return None


def _client() -> Optional[docker.DockerClient]:
    """A client of the engine the orchestrator would use, or None if none answers."""
    try:
        return connect(timeout=5)
    except DockerEngineUnavailableError:
        return None


def _all_containers(client: docker.DockerClient) -> List[Container]:
    # ignore_removed: a container removed between docker-py's list and its
    # inspect of it (a run cleaning up at that moment) is simply not there.
    return client.containers.list(all=True, ignore_removed=True)


def take_baseline() -> Baseline:
    """Record the ids of every container on the engine now (none if no engine answers)."""
    client = _client()
    if client is None:
        return Baseline(ids=None)
    try:
        return Baseline(ids=frozenset(c.id for c in _all_containers(client)))
    finally:
        client.close()


def remove_new_containers(baseline: Baseline, owned_run_ids: Collection[str] = ()) -> List[Leftover]:
    """Find every container that is not in `baseline`, remove it, and return
    what was found (empty: nothing was left behind).

    Containers that may be another process's work are reported but kept
    (see the module's docstring), unless their pipeline-run-id label is in
    `owned_run_ids` (the session's own pipeline runs).
    """
    client = _client()
    if client is None:  # no engine now: nothing can be left on it
        return []
    found = []
    owned = frozenset(owned_run_ids)
    try:
        for container in _all_containers(client):
            if baseline.ids is not None and container.id in baseline.ids:
                continue
            labels = dict(container.labels or {})
            kept_because = _reason_to_keep(container, labels, owned)
            if kept_because is None:
                try:
                    container.remove(force=True, v=True)
                except NotFound:
                    pass  # removed meanwhile (the docker-py model still has its facts)
                except APIError as error:
                    kept_because = f"removal failed: {error.explanation or error}"
            found.append(
                Leftover(
                    name=container.name,
                    image=container.attrs.get("Config", {}).get("Image") or container.attrs.get("Image", "?"),
                    status=container.status,
                    labels=labels,
                    kept_because=kept_because,
                )
            )
    finally:
        client.close()
    return found


def remove_containers_of(run_ids: Collection[str], client_pid: int) -> List[Leftover]:
    """Find, remove and return the containers labelled with one of `run_ids`
    or with `client_pid` as their orchestrator client on this host.

    A parallel worker's own check: other workers' containers are on the same
    engine at the same time, so it judges only what its labels prove is its
    own; the controller's engine-wide check counts everything else.
    """
    client = _client()
    if client is None:
        return []
    owned = frozenset(run_ids)
    host = socket.gethostname()
    found = []
    try:
        for container in _all_containers(client):
            labels = dict(container.labels or {})
            mine = labels.get(PIPELINE_RUN_ID_LABEL) in owned or (
                labels.get(CLIENT_HOST_LABEL) == host and labels.get(CLIENT_PID_LABEL) == str(client_pid))
            if not mine:
                continue
            kept_because = None
            try:
                container.remove(force=True, v=True)
            except NotFound:
                pass
            except APIError as error:
                kept_because = f"removal failed: {error.explanation or error}"
            found.append(Leftover(
                name=container.name,
                image=container.attrs.get("Config", {}).get("Image") or container.attrs.get("Image", "?"),
                status=container.status, labels=labels, kept_because=kept_because))
    finally:
        client.close()
    return found


def register_controller_check(config) -> None:
    """In the controller of a parallel session, register the engine-wide check
    once (both conftests ask when a session collects tests and notebooks)."""
    if parallel.is_controller(config) and not config.pluginmanager.has_plugin("my_docker_leftovers"):
        config.pluginmanager.register(ControllerCheck(), "my_docker_leftovers")


class ControllerCheck:
    """The engine-wide leftover check of a parallel session, made by its controller.

    Registered as a pytest plugin in the controller only. The baseline is taken
    before any worker starts; the check runs once every worker has ended, if
    any of them reported using the engine (`parallel.USED_ENGINE` in its
    `workeroutput`), so that a session of pure tests never touches the engine.
    A leftover fails the session (its exit status) and is named in the summary.
    """

    def __init__(self) -> None:
        self.baseline = Baseline(ids=None)
        self.used_engine = False
        self.found: List[Leftover] = []

    def pytest_sessionstart(self, session) -> None:
        self.baseline = take_baseline()

    def pytest_testnodedown(self, node, error) -> None:
        if getattr(node, "workeroutput", {}).get(parallel.USED_ENGINE):
            self.used_engine = True

    def pytest_sessionfinish(self, session, exitstatus) -> None:
        if not self.used_engine:
            return
        self.found = remove_new_containers(self.baseline)
        if self.found and session.exitstatus == 0:
            session.exitstatus = 1

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.found:
            terminalreporter.section("containers left behind", sep="=", red=True, bold=True)
            terminalreporter.line(report(self.found))


def report(leftovers: List[Leftover]) -> str:
    """A failure message naming each leftover container."""
    lines = [f"{len(leftovers)} container(s) created during this session were left behind on the engine:"]
    lines += [f"  - {leftover.describe()}" for leftover in leftovers]
    return "\n".join(lines)
