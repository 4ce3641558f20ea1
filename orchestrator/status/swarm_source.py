"""The live source of a `my_swarm` run: its Swarm tasks, read from the swarm's manager.

A `my_swarm` run's step containers live on the swarm's nodes, whose engines
are usually out of reach (a real cluster): the machine's own Docker events
say nothing of them. What every swarm offers is its manager, which knows each
step attempt's service and task: labels (step, attempt, run), the task's
state, node, container id, exit code and times. `SwarmSource.poll` lists the
run's tasks (one request) and turns them into the status model's events
(`events_from_task`: create, start, kill, die; `AttemptPlaced` for the node);
the reducer ignores what it already knows, so each poll may repeat facts.
A task that is gone (the runner removes each service once its task ended)
becomes a `destroy` after `GONE_SECONDS`, time enough for ZenML's record of
how the step ended, which the reducer trusts first. Each running task's
output comes through the manager (`ServiceLogFollower`), for the last log line.

`RunWatcher` (`orchestrator.status.watcher`) uses this source instead of the
machine's Docker events when `swarm_manager_of(run)` says the run's stack
runs on `my_swarm`. The swarm's client code (`orchestrator.swarm.cluster`,
docker-py) is imported only when a swarm run is followed.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from orchestrator.running.labels import attempt_of, label_filters, pipeline_run_of, step_of
from orchestrator.running.step_entrypoint import DONE_LINE_PREFIX
from orchestrator.running.step_timing import docker_time
from orchestrator.status.events import AttemptPlaced, ContainerEvent, Event, LogLine, int_or

# A task the manager no longer lists is declared removed after this many
# seconds (its service was removed; how it ended comes from ZenML meanwhile).
GONE_SECONDS = 3.0
# Swarm's task states after which Swarm does nothing more.
ENDED_STATES = frozenset({"complete", "failed", "rejected", "shutdown", "orphaned", "remove"})
# Desired states that mean the task is being stopped (its service removed, or scaled down).
_STOPPING = frozenset({"shutdown", "remove"})


def swarm_manager_of(run: Any) -> Optional[str]:
    """The manager URL of the swarm a ZenML run runs on, or None if it is not a my_swarm run.

    Read from the run's stack in ZenML's record: its orchestrator's flavor and
    `manager_url` ("" when it is not set: DOCKER_HOST, else the local swarm).
    A run whose stack was deleted is taken as not a swarm run.
    """
    from orchestrator.swarm.settings import FLAVOR_NAME

    try:
        stack = getattr(run, "stack", None)
        components = getattr(stack, "components", None) or {}
    except Exception:  # noqa: BLE001 - an old or partial record: follow it as my_docker
        return None
    for kind, found in components.items():
        if str(getattr(kind, "value", kind)) != "orchestrator":
            continue
        for component in found:
            if component.flavor_name == FLAVOR_NAME:
                return (component.configuration or {}).get("manager_url") or ""
    return None


def task_key(task: Mapping[str, Any]) -> Optional[Tuple[str, int]]:
    """(step, attempt) of one of our tasks, from its container labels; None for others."""
    labels = ((task.get("Spec") or {}).get("ContainerSpec") or {}).get("Labels") or {}
    step = step_of(labels)
    return None if step is None else (step, attempt_of(labels))


def events_from_task(task: Mapping[str, Any], node: Optional[str]) -> List[Event]:
    """The events one Swarm task has been through, as far as the manager says (pure).

    Args:
        task: the task as the manager lists it (Docker's API, `GET /tasks`).
        node: the host name of the task's node, None before it is placed.

    Returns:
        `ContainerEvent`s and, once placed, `AttemptPlaced`: create (the task's
        creation), placed, start (the time it became running, only while it runs:
        a task first seen ended has no start we know), kill (its service is
        being removed while it runs, or it ended `shutdown`) and die (the
        exit code Swarm recorded; -1 when there is none or a task that did
        not end by itself says 0, e.g. rejected).
    """
    key = task_key(task)
    if key is None:
        return []
    step, attempt = key
    labels = task["Spec"]["ContainerSpec"].get("Labels") or {}
    status = task.get("Status") or {}
    state = status.get("State", "")
    container = status.get("ContainerStatus") or {}
    common = {"step": step, "attempt": attempt,
              "container_id": str(container.get("ContainerID") or "")[:12],
              "run_id": pipeline_run_of(labels)}
    changed_at = docker_time(status.get("Timestamp")) or 0.0
    events: List[Event] = [ContainerEvent(
        "create", time=docker_time(task.get("CreatedAt")) or changed_at, **common)]
    if node:
        events.append(AttemptPlaced(step, attempt, node, changed_at, run_id=common["run_id"]))
    if state == "running":
        events.append(ContainerEvent("start", time=changed_at, **common))
        if task.get("DesiredState") in _STOPPING:
            events.append(ContainerEvent("kill", time=changed_at, **common))
    elif state in ENDED_STATES:
        if state == "shutdown":
            events.append(ContainerEvent("kill", time=changed_at, **common))
        if state == "complete":
            code = 0
        elif state == "failed":
            code = int_or(container.get("ExitCode"), -1)
        else:  # it did not end by itself: never a success, even if its container says 0
            code = int_or(container.get("ExitCode"), 0) or -1
        events.append(ContainerEvent("die", time=changed_at, exit_code=code, **common))
    return events


class SwarmSource:
    """One run's tasks on a swarm, polled from its manager, and their output.

    Not thread-safe: `poll` is called from one thread (the watcher's). Log
    lines arrive from one follower thread per running task, through `on_line`.

    Args:
        client: a docker-py client of the swarm's manager (closed by `close`).
        run_id: the ZenML pipeline run id (its services carry it as a label).
        on_line: called with each line a task prints; None: no logs followed.
    """

    def __init__(self, client: Any, run_id: str,
                 on_line: Optional[Callable[[LogLine], None]] = None) -> None:
        self.client = client
        self.run_id = run_id
        self._on_line = on_line
        self._nodes: Dict[str, str] = {}
        self._tasks: Dict[Tuple[str, int], Dict[str, Any]] = {}  # latest seen of each attempt
        self._missing_since: Dict[Tuple[str, int], float] = {}
        self._gone: set = set()
        self._followers: Dict[str, Any] = {}  # service id -> ServiceLogFollower
        self._finished: set = set()  # services whose output was read to its end
        self._lock = threading.Lock()
        self._closed = False

    def poll(self, now: Optional[float] = None, gone_seconds: float = GONE_SECONDS) -> List[Event]:
        """Read the run's tasks once; the events they tell (repeats included).

        Args:
            gone_seconds: a task missing this long is removed (`destroy`, at the
                time it was first missed); 0 once the run is known to be over.

        Raises:
            docker.errors.DockerException, requests.exceptions.RequestException:
                the manager did not answer.
        """
        now = time.time() if now is None else now
        tasks = self.client.api.tasks(filters={"label": label_filters(pipeline_run_id=self.run_id)})
        events: List[Event] = []
        seen = set()
        for task in sorted(tasks, key=lambda t: t.get("CreatedAt", "")):
            key = task_key(task)
            if key is None:
                continue
            seen.add(key)
            self._tasks[key] = task
            self._missing_since.pop(key, None)
            events += events_from_task(task, self._node_name(task.get("NodeID")))
            self._follow(task)
        for key, task in self._tasks.items():
            if key in seen or key in self._gone:
                continue
            since = self._missing_since.setdefault(key, now)
            if now - since >= gone_seconds:
                self._gone.add(key)
                container = (task.get("Status") or {}).get("ContainerStatus") or {}
                events.append(ContainerEvent("destroy", key[0], key[1],
                                             str(container.get("ContainerID") or "")[:12], since,
                                             run_id=self.run_id))
            self._finish(task.get("ServiceID", ""))
        return events

    def _node_name(self, node_id: Optional[str]) -> Optional[str]:
        if not node_id:
            return None
        if node_id not in self._nodes:
            from orchestrator.swarm.cluster import node_names

            try:
                self._nodes.update(node_names(self.client))
            except Exception:  # noqa: BLE001 - named by its id until the manager answers
                return node_id[:12]
        return self._nodes.get(node_id, node_id[:12])

    # -- output ------------------------------------------------------------------
    def _follow(self, task: Mapping[str, Any]) -> None:
        """Follow a running task's output; stop following one that ended."""
        service_id = task.get("ServiceID", "")
        state = (task.get("Status") or {}).get("State", "")
        if state in ENDED_STATES:
            self._finish(service_id)
            return
        if self._on_line is None or state != "running" or service_id in self._finished:
            return
        with self._lock:
            if self._closed or service_id in self._followers:
                return
            from orchestrator.swarm.cluster import ServiceLogFollower

            step, attempt = task_key(task) or ("", 1)
            self._followers[service_id] = ServiceLogFollower(
                self.client, service_id, lambda line: self._line(step, attempt, line))

    def _line(self, step: str, attempt: int, line: str) -> None:
        text = line.strip()
        if text and DONE_LINE_PREFIX not in text and self._on_line is not None:  # the runner's
            self._on_line(LogLine(step, attempt, text, time.time()))

    def _finish(self, service_id: str, quiet_seconds: float = 0.2) -> None:
        """Read a service's output to its end and close the stream (Swarm's never ends)."""
        with self._lock:
            follower = self._followers.pop(service_id, None)
            self._finished.add(service_id)
        if follower is not None:
            follower.finish(quiet_seconds=quiet_seconds, timeout=0.5)

    @property
    def alive_threads(self) -> List[str]:
        """Names of the log followers' threads still running."""
        with self._lock:
            followers = list(self._followers.values())
        return [follower._thread.name for follower in followers if follower._thread.is_alive()]

    def close(self) -> None:
        """Stop following every output and close the manager's client."""
        with self._lock:
            self._closed = True
            services = list(self._followers)
        for service_id in services:
            self._finish(service_id, quiet_seconds=0.0)
        try:
            self.client.close()
        except Exception:  # noqa: BLE001
            pass


def connect_swarm_source(manager_url: str, run_id: str,
                         on_line: Optional[Callable[[LogLine], None]] = None) -> SwarmSource:
    """A `SwarmSource` of one run on the swarm whose manager is at `manager_url` ("" default).

    Raises:
        orchestrator.swarm.cluster.SwarmUnavailableError: the manager does not
            answer, or is not a swarm manager (says what to do).
    """
    from orchestrator.swarm.cluster import connect_manager

    return SwarmSource(connect_manager(manager_url or None, timeout=10), run_id, on_line)


def placements_recorded(run_id: str) -> List[AttemptPlaced]:
    """The nodes the run's runner recorded beside its logs (on the client's machine):
    what names the nodes of a run whose services are gone."""
    from orchestrator.running.step_logs import run_log_dir
    from orchestrator.swarm.runner import read_nodes

    recorded = read_nodes(run_log_dir(run_id))
    return [AttemptPlaced(step, int_or(attempt, 1), node, 0.0, run_id=run_id)
            for step, attempts in recorded.items() for attempt, node in attempts.items()]


def clients_gone(run: Any) -> bool:
    """Whether the client driving a my_swarm run died: every task of it left on the
    swarm names a client process on this machine that is gone (then no further
    step can start). False when no task is left, or the manager does not answer.
    """
    from orchestrator.running.labels import client_is_gone

    manager = swarm_manager_of(run)
    if manager is None:
        return False
    try:
        source = connect_swarm_source(manager, str(run.id))
    except Exception:  # noqa: BLE001 - unknown: never call a healthy run failed
        return False
    try:
        tasks = source.client.api.tasks(filters={"label": label_filters(pipeline_run_id=str(run.id))})
    except Exception:  # noqa: BLE001
        tasks = []
    finally:
        source.close()
    labels = [((t.get("Spec") or {}).get("ContainerSpec") or {}).get("Labels") or {} for t in tasks]
    return bool(labels) and all(client_is_gone(one) for one in labels)
