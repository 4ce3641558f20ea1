"""The swarm as the client sees it: its nodes, its services and tasks, its logs.

Everything here talks to the swarm's manager through docker-py (and, for
cleanup, to the nodes' engines where they can be reached); the runner decides
what to run. Services are found by the same labels as `my_docker`'s step
containers (`orchestrator.running.labels`), never by state kept elsewhere, so
a stop request from another process finds them too.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

import docker
import requests

from orchestrator.errors import InvalidSettingsError, MyDockerError
from orchestrator.running.labels import label_filters
from orchestrator.running.step_logs import LineSplitter

# Task states after which Swarm will do nothing more with a task.
TERMINAL_TASK_STATES = frozenset({"complete", "failed", "rejected", "shutdown", "orphaned", "remove"})
# Where the local swarm's manager listens unless told otherwise (`orchestrator.machine.swarm`).
LOCAL_SWARM_ROOT = os.environ.get("LOCAL_SWARM_ROOT", "/var/tmp/local-swarm")


class SwarmUnavailableError(MyDockerError):
    """The swarm's manager cannot be reached, or the engine is not a swarm manager."""


class ClusterStackError(InvalidSettingsError):
    """The stack cannot work on this cluster (a store or path the nodes cannot reach)."""


@dataclass(frozen=True)
class SwarmNode:
    """One node as the manager describes it.

    Attributes:
        hostname: the node's host name (what `node.hostname==...` matches).
        address: the address it is advertised on.
        state: Swarm's node state (ready, down, ...); availability: active, pause, drain.
        memory_bytes, nano_cpus: what it offers to reservations.
        generic_resources: named resources it offers, e.g. {"gpu": 1}.
    """

    id: str
    hostname: str
    address: str
    state: str
    availability: str
    memory_bytes: int
    nano_cpus: int
    labels: Mapping[str, str] = field(default_factory=dict)
    generic_resources: Mapping[str, int] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return self.state == "ready" and self.availability == "active"

    @property
    def on_this_machine(self) -> bool:
        """Advertised on a loopback address: an engine on this very machine."""
        try:
            return ipaddress.ip_address(self.address).is_loopback
        except ValueError:
            return False


def default_manager_url() -> str:
    """Where the manager is when the orchestrator's `manager_url` is not set:
    ``DOCKER_HOST`` if it is set, else the local swarm's manager socket."""
    return os.environ.get("DOCKER_HOST") or f"unix://{LOCAL_SWARM_ROOT}/node-a/docker.sock"


def connect_manager(url: Optional[str], timeout: int = 60) -> docker.DockerClient:
    """A docker-py client of the swarm's manager.

    Raises:
        SwarmUnavailableError: nothing answers at `url`, or that engine is not
            a swarm manager (says what to do).
    """
    url = url or default_manager_url()
    try:
        client = docker.DockerClient(base_url=url, timeout=timeout)
        info = client.info()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        raise SwarmUnavailableError(
            f"No swarm manager answers at {url} ({_first_line(error)}). Start the local swarm "
            "(as root: `sudo make swarm`, or `sudo python -m orchestrator.machine.swarm up`), or "
            "set the orchestrator's manager_url to your swarm's manager "
            "(`zenml orchestrator update <name> --manager_url=ssh://user@host`)."
        ) from None
    swarm = info.get("Swarm") or {}
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
        raise SwarmUnavailableError(
            f"The Docker engine at {url} is not a swarm manager (swarm state "
            f"{swarm.get('LocalNodeState') or 'inactive'}). Point manager_url at a manager of "
            "your swarm, or start the local swarm (`sudo make swarm`)."
        )
    return client


def list_nodes(client: docker.DockerClient) -> List[SwarmNode]:
    """Every node of the swarm, as the manager sees it now."""
    nodes = []
    for node in client.nodes.list():
        attrs = node.attrs
        description = attrs.get("Description", {})
        resources = description.get("Resources", {})
        generic: Dict[str, int] = {}
        for entry in resources.get("GenericResources") or []:
            discrete = entry.get("DiscreteResourceSpec")
            if discrete:
                generic[discrete["Kind"]] = generic.get(discrete["Kind"], 0) + int(discrete["Value"])
            named = entry.get("NamedResourceSpec")
            if named:
                generic[named["Kind"]] = generic.get(named["Kind"], 0) + 1
        nodes.append(SwarmNode(
            id=node.id, hostname=description.get("Hostname", node.id[:12]),
            address=attrs.get("Status", {}).get("Addr", ""),
            state=attrs.get("Status", {}).get("State", "unknown"),
            availability=attrs.get("Spec", {}).get("Availability", "active"),
            memory_bytes=int(resources.get("MemoryBytes") or 0),
            nano_cpus=int(resources.get("NanoCPUs") or 0),
            labels=dict(attrs.get("Spec", {}).get("Labels") or {}),
            generic_resources=generic,
        ))
    return nodes


def check_stores_reachable(nodes: Sequence[SwarmNode], *, store_type: str, store_url: str,
                           artifact_store_is_local: bool, artifact_path: str,
                           shared_paths: bool,
                           reachable_ports: Optional[Sequence[int]] = None) -> None:
    """Refuse a stack whose stores some node cannot reach.

    A step task may run on any node: it reads and writes ZenML's store and the
    artifact store from there. A SQLite store and a local artifact store are
    paths on the client's machine: fine when every node is an engine on this
    machine (the local swarm), or when those paths are mounted at the same
    place on every node (NFS; say so with `shared_paths=True`). A ZenML
    server on this machine's loopback address (``zenml login --local``)
    means each node itself to a node elsewhere; on the local swarm, whose
    nodes live in a network namespace of their own, only the host ports in
    `reachable_ports` answer them (None: not the local swarm).

    Raises:
        ClusterStackError: naming the store and what to use instead.
    """
    remote = [node.hostname for node in nodes if not node.on_this_machine]
    _check_server_reachable(remote, store_type, store_url, reachable_ports)
    if not remote or shared_paths:
        return
    if store_type == "sql" and store_url.startswith("sqlite"):
        raise ClusterStackError(
            f"ZenML's store is a SQLite file on this machine ({store_url}), which the swarm's "
            f"node(s) {', '.join(remote)} cannot open. Connect to a ZenML server every node "
            "reaches (`zenml login <server-url>`, or `zenml login --local` on a machine the "
            "nodes reach), or, if that file's folder is mounted at the same path on every "
            "node (NFS), set the orchestrator's shared_paths=True."
        )
    if artifact_store_is_local:
        raise ClusterStackError(
            f"The stack's artifact store is a local folder ({artifact_path}), which the swarm's "
            f"node(s) {', '.join(remote)} cannot reach. Register an artifact store every node "
            "reaches (S3, GCS, Azure, or a MinIO bucket: `zenml artifact-store register ... -f s3`) "
            "or mount the folder at the same path on every node (NFS) and set the "
            "orchestrator's shared_paths=True."
        )


def _check_server_reachable(remote: Sequence[str], store_type: str, store_url: str,
                            reachable_ports: Optional[Sequence[int]]) -> None:
    if store_type != "rest":
        return
    parsed = urllib.parse.urlsplit(store_url)
    host = parsed.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        return
    if remote:
        raise ClusterStackError(
            f"ZenML's server is at {store_url}, this machine's loopback address, which on the "
            f"swarm's node(s) {', '.join(remote)} means the node itself. Connect to the server "
            "by an address every node reaches (`zenml login http://<this machine's name>:<port>`, "
            "or a ZenML server of your team).")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    if reachable_ports is not None and port not in reachable_ports:
        raise ClusterStackError(
            f"ZenML's server listens on port {port} of this machine, but the local swarm's nodes "
            f"reach only its ports {', '.join(map(str, sorted(reachable_ports)))}. Start the "
            "local server on the port they reach (`zenml logout --local`, then `zenml login "
            "--local`: port 8237), or restart the swarm forwarding that port (`sudo python -m "
            f"orchestrator.machine.swarm down`, then `up --forward {port}`).")


def check_fits_somewhere(step_name: str, memory_bytes: Optional[int], nano_cpus: Optional[int],
                         generic: Mapping[str, int], nodes: Sequence[SwarmNode]) -> None:
    """Refuse a step that no node of the swarm could ever hold.

    Raises:
        InvalidSettingsError: naming what it reserves and what the largest node offers.
    """
    usable = [node for node in nodes if node.usable]
    if not usable:
        raise SwarmUnavailableError("No node of the swarm is ready and active: "
                                    + ", ".join(f"{n.hostname} {n.state}/{n.availability}" for n in nodes))

    if not nodes_that_can_hold(usable, memory_bytes=memory_bytes, nano_cpus=nano_cpus,
                               generic=generic):
        offers = "; ".join(
            f"{n.hostname}: {n.memory_bytes / 2**30:.1f} GiB, {n.nano_cpus / 1e9:g} CPU"
            + "".join(f", {c} {k}" for k, c in sorted(n.generic_resources.items()))
            for n in usable)
        wants = ", ".join(filter(None, [
            f"{memory_bytes / 2**30:.1f} GiB" if memory_bytes else "",
            f"{nano_cpus / 1e9:g} CPU" if nano_cpus else "",
            *(f"{c} {k}" for k, c in sorted(generic.items()))]))
        raise InvalidSettingsError(
            f"Step '{step_name}' reserves {wants}, more than any node of the swarm offers "
            f"({offers}). Lower its ResourceSettings, or add a node that can hold it."
        )


def nodes_that_can_hold(nodes: Sequence[SwarmNode], *, memory_bytes: Optional[int] = None,
                        nano_cpus: Optional[int] = None,
                        generic: Optional[Mapping[str, int]] = None) -> List[str]:
    """Host names of the nodes whose whole capacity covers a step's reservations.

    What Swarm's scheduler checks first (before what other tasks already
    reserve there): a node offering less than a step reserves can never run it.
    """
    return [node.hostname for node in nodes
            if (memory_bytes or 0) <= node.memory_bytes and (nano_cpus or 0) <= node.nano_cpus
            and all(count <= node.generic_resources.get(kind, 0)
                    for kind, count in (generic or {}).items())]


# -- services and tasks ----------------------------------------------------------


def find_services(client: docker.DockerClient, *, orchestrator_run_id: Optional[str] = None,
                  pipeline_run_id: Optional[str] = None) -> List[Any]:
    """Our step services (of one run, if given), found by their labels."""
    return client.services.list(filters={"label": label_filters(orchestrator_run_id, pipeline_run_id)})


def latest_task(client: docker.DockerClient, service_id: str) -> Optional[Dict[str, Any]]:
    """The service's newest task (its only one, for our services), or None."""
    try:
        tasks = client.api.tasks(filters={"service": service_id})
    except docker.errors.NotFound:
        return None
    return max(tasks, key=lambda t: t.get("CreatedAt", "")) if tasks else None


def node_names(client: docker.DockerClient) -> Dict[str, str]:
    """Node id -> host name."""
    return {node.id: node.hostname for node in list_nodes(client)}


def remove_services(client: docker.DockerClient, services: Iterable[Any]) -> None:
    """Remove services (their running tasks get SIGTERM, then SIGKILL after their grace)."""
    for service in services:
        try:
            service.remove()
        except docker.errors.NotFound:
            pass


def wait_until_gone(client: docker.DockerClient, service_ids: Sequence[str],
                    node_engines: Mapping[str, docker.DockerClient], label_filter: List[str],
                    timeout: float) -> List[str]:
    """Wait until no task of the removed services is left, and no container of
    ours on the nodes we can reach (removing exited ones Swarm leaves behind).

    Returns:
        What is still there after `timeout` seconds (empty when all is gone).
    """
    deadline = time.monotonic() + timeout
    while True:
        left: List[str] = []
        try:
            tasks = [t for t in client.api.tasks() if t.get("ServiceID") in set(service_ids)]
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            tasks = []
        left += [f"task {t['ID'][:12]} ({t['Status']['State']})" for t in tasks
                 if t["Status"]["State"] not in TERMINAL_TASK_STATES]
        for hostname, engine in node_engines.items():
            try:
                containers = engine.containers.list(all=True, ignore_removed=True,
                                                    filters={"label": label_filter})
            except (docker.errors.DockerException, requests.exceptions.RequestException):
                continue
            for container in containers:
                if container.status in ("exited", "dead", "created"):
                    try:
                        container.remove(force=True)  # Swarm 20.10 leaves a removed job's container
                    except docker.errors.APIError:
                        pass
                left.append(f"container {container.name} on {hostname} ({container.status})")
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def local_node_engines(nodes: Sequence[SwarmNode]) -> Dict[str, docker.DockerClient]:
    """Clients of the nodes' own engines where they can be reached from here.

    Those of the local swarm (`orchestrator.machine.swarm`) are at known
    sockets; a real cluster's nodes are usually not reachable, and then
    Swarm's own removal is relied on.
    """
    engines = {}
    for node in nodes:
        path = os.path.join(LOCAL_SWARM_ROOT, node.hostname, "docker.sock")
        if node.on_this_machine and os.path.exists(path):
            engines[node.hostname] = docker.DockerClient(base_url=f"unix://{path}", timeout=30)
    return engines


# -- logs ------------------------------------------------------------------------


class ServiceLogFollower:
    """Streams a service's output, line by line, to `on_line` in a thread.

    `on_bytes`, if given, gets the output as printed (a step's kept log), in
    pieces cut anywhere, before the lines they complete go to `on_line`.
    Swarm's log stream of a service does not end when its task does, so
    `finish()` waits until no output came for a short while, then cuts the
    connection.
    """

    def __init__(self, client: docker.DockerClient, service_id: str,
                 on_line: Callable[[str], None],
                 on_bytes: Optional[Callable[[bytes], None]] = None) -> None:
        self._api = client.api
        self._service_id = service_id
        self._on_line = on_line
        self._on_bytes = on_bytes
        self._last_output = time.monotonic()
        self._response: Any = None
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True,
                                        name=f"swarm-logs-{service_id[:8]}")
        self._thread.start()

    def _follow(self) -> None:
        splitter = LineSplitter()
        try:
            url = self._api._url("/services/{0}/logs", self._service_id)
            self._response = self._api._get(url, params={"follow": 1, "stdout": 1, "stderr": 1},
                                            stream=True)
            if self._closed.is_set():
                return
            for chunk in self._api._multiplexed_response_stream_helper(self._response):
                self._last_output = time.monotonic()
                if self._on_bytes is not None:
                    self._on_bytes(chunk)
                for line in splitter.feed(chunk):
                    self._on_line(line)
        except Exception:  # noqa: BLE001 - the connection is cut on purpose by finish()
            pass
        for line in splitter.rest():
            self._on_line(line)

    def finish(self, quiet_seconds: float = 0.4, timeout: float = 3.0) -> None:
        """Wait for the last output (quiet for `quiet_seconds`), then stop following."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and time.monotonic() - self._last_output < quiet_seconds:
            time.sleep(0.05)
        self._closed.set()
        response = self._response
        if response is not None:
            try:
                sock = self._api._get_raw_response_socket(response)
                getattr(sock, "_sock", sock).shutdown(socket.SHUT_RDWR)
            except Exception:  # noqa: BLE001 - already closed
                pass
        self._thread.join(timeout=2)


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
