"""A two-node Docker Swarm on this one machine, for tests, the tutorial and users without a cluster.

`LocalSwarm.up()` starts, as root:

- a private **network namespace** (held open by a `sleep` process) with only a
  loopback interface. Everything of the swarm lives in it, because a `dockerd
  --bridge none` deletes any interface named ``docker0`` in its namespace when it
  starts: in the host's namespace that is the machine engine's bridge, and new
  containers there fail with "could not find bridge docker0" until that engine is
  restarted (moby's `removeDefaultBridgeInterface`). In the private namespace
  nothing the swarm's engines do can touch the host's interfaces;
- two **Docker engines**, ``node-a`` and ``node-b`` by default, each with its own
  data root, exec root, socket, pid file and cgroup parent, in its own mount and
  UTS namespace (so its host name is the node's name, and its mounts vanish with
  it). An engine can advertise less memory than the machine has: its mount
  namespace gets a copy of ``/proc/meminfo`` with another ``MemTotal``, which is
  what Docker reports to Swarm, so Swarm's reservation scheduling treats the
  node as that small. Nodes may also advertise generic resources
  (``--node-generic-resource``) and carry node labels;
- a **swarm**: node-a initialises it (advertised on 127.0.0.2), the others join
  as workers (127.0.0.3, ...). The routing-mesh network ``ingress`` is removed:
  steps use host networking, and two engines in one namespace would both want
  VXLAN port 4789;
- a **registry** (Debian's ``docker-registry``) on the host's ``127.0.0.1:PORT``,
  which Docker trusts without TLS (127.0.0.0/8 is an insecure registry by
  default), so the machine's engine pushes there and the nodes pull from there;
- a **relay** (`orchestrator.machine.netns_relay`) that makes the registry port
  and the ZenML server port (8237 unless told) on the host's 127.0.0.1 answer on
  127.0.0.1 inside the namespace too: image names and the server URL mean the
  same thing for the machine and for step containers on the nodes.

`LocalSwarm.down()` leaves nothing: it stops the engines, ends every process in
the namespace (so the namespace and its interfaces go), stops the registry and
the relay, removes the engines' cgroups and the whole state folder. The
machine's own engine is never talked to.

The nodes asked for and the status found are plain values
(`orchestrator.machine.swarm_model`); processes and mounts are read through
`orchestrator.machine.processes` and `orchestrator.machine.mounts`.

Command line (as root)::

    python -m orchestrator.machine.swarm up [--root DIR] [--registry-port N] [--forward PORT ...]
    python -m orchestrator.machine.swarm status
    python -m orchestrator.machine.swarm down
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import docker
import requests

from orchestrator.errors import MyDockerError
from orchestrator.machine.commands import Log, find_program, log_tail
from orchestrator.machine.mounts import cgroup_hierarchies, mount_points
from orchestrator.machine.processes import (
    all_pids,
    command_line,
    is_alive,
    netns_id,
    pids_in_netns,
    process_name,
    reap_spawned,
    spawn_detached,
    terminate,
)
from orchestrator.machine.swarm_model import (
    DEFAULT_NODES,
    NodeStatus,
    SwarmNodeSpec,
    SwarmStatus,
)

DEFAULT_ROOT = Path(os.environ.get("LOCAL_SWARM_ROOT", "/var/tmp/local-swarm"))
DEFAULT_REGISTRY_PORT = int(os.environ.get("LOCAL_SWARM_REGISTRY_PORT", "5000"))
ZENML_LOCAL_SERVER_PORT = 8237  # `zenml login --local` listens there unless told otherwise
SWARM_PORT = 2377
_UNIX_SOCKET_PATH_MAX = 107


class LocalSwarmError(MyDockerError):
    """The local swarm cannot be started, reached or taken down; the message says why and what to do."""


class LocalSwarm:
    """A swarm of private Docker engines on this machine (see the module docstring).

    Args:
        root: folder for all its state (engines' data, registry storage, logs);
            removed by `down()`.
        nodes: the engines; the first one is the manager.
        registry_port: port of the registry on 127.0.0.1.
        forward_ports: further host ports on 127.0.0.1 the nodes must reach
            (ZenML's local server port by default).
    """

    def __init__(
        self,
        root: Path = DEFAULT_ROOT,
        nodes: Sequence[SwarmNodeSpec] = DEFAULT_NODES,
        registry_port: int = DEFAULT_REGISTRY_PORT,
        forward_ports: Sequence[int] = (ZENML_LOCAL_SERVER_PORT,),
    ) -> None:
        if not nodes:
            raise LocalSwarmError("A local swarm needs at least one node.")
        names = [node.name for node in nodes]
        if len(set(names)) != len(names):
            raise LocalSwarmError(f"Node names must differ: {names}.")
        self.root = Path(root).resolve()
        self.nodes = tuple(nodes)
        self.registry_port = registry_port
        self.forward_ports = tuple(sorted({registry_port, *forward_ports}))
        self._state_file = self.root / "state.json"
        # A name of our own under every cgroup hierarchy, so that `down` removes only ours.
        self._cgroup_prefix = "local-swarm-" + hashlib.sha1(str(self.root).encode()).hexdigest()[:8]

    # ------------------------------------------------------------------ names

    @property
    def registry(self) -> str:
        """The registry as image names use it, e.g. ``127.0.0.1:5000``."""
        return f"127.0.0.1:{self.registry_port}"

    def docker_host(self, node: str) -> str:
        """The ``DOCKER_HOST`` of one node's engine, e.g. ``unix:///var/tmp/local-swarm/node-a/docker.sock``."""
        return f"unix://{self._node_dir(node)}/docker.sock"

    @property
    def manager_url(self) -> str:
        """The ``DOCKER_HOST`` of the manager (the first node): where services are created."""
        return self.docker_host(self.nodes[0].name)

    def client(self, node: Optional[str] = None, timeout: int = 30) -> docker.DockerClient:
        """A docker-py client of one node's engine (the manager when `node` is None)."""
        return docker.DockerClient(base_url=self.docker_host(node or self.nodes[0].name), timeout=timeout)

    def _node_dir(self, node: str) -> Path:
        return self.root / node

    # ------------------------------------------------------------------- up

    def up(self, log: Log = print, wait_seconds: float = 60) -> SwarmStatus:
        """Start the local swarm, or return at once if it is already up.

        A swarm left half-started (a crash, a killed engine) is taken down and
        started again.

        Returns:
            The status, with every node ready.

        Raises:
            LocalSwarmError: not root, a program is missing, a port is taken, an
                engine does not start (with its log), or nodes do not become ready.
        """
        current = self.status()
        if current.up:
            self._check_same_layout()
            log(f"The local swarm in {self.root} is already up.")
            return current
        if self._state_file.exists() or self._leftover_engine_pids():
            log("Taking down what is left of a previous local swarm ...")
            self.down(log=lambda _line: None)
        self._check_can_start()
        began = time.monotonic()
        self.root.mkdir(parents=True, exist_ok=True)
        state: Dict[str, object] = {
            "registry_port": self.registry_port,
            "forward_ports": list(self.forward_ports),
            "nodes": [dict(asdict(node), labels=dict(node.labels),
                           generic_resources=dict(node.generic_resources)) for node in self.nodes],
        }
        try:
            holder = self._start_namespace_holder()
            state.update(holder_pid=holder, netns=netns_id(holder))
            self._write_state(state)
            state["registry_pid"] = self._start_registry()
            self._write_state(state)
            state["relay_pid"] = self._start_relay(holder)
            self._write_state(state)
            state["engine_pids"] = {}
            for node in self.nodes:
                state["engine_pids"][node.name] = self._start_engine(node, holder)  # type: ignore[index]
                self._write_state(state)
            for node in self.nodes:
                self._wait_for_engine(node, wait_seconds)
            self._form_swarm(wait_seconds)
            self._wait_for_registry(wait_seconds)
        except BaseException:
            log("Starting the local swarm failed; taking down what was started ...")
            self.down(log=lambda _line: None)
            raise
        log(f"Local swarm up in {time.monotonic() - began:.1f} s: "
            f"{', '.join(node.name for node in self.nodes)}; registry {self.registry}; "
            f"manager DOCKER_HOST={self.manager_url}")
        return self.status()

    def _check_can_start(self) -> None:
        if not sys.platform.startswith("linux"):
            raise LocalSwarmError("The local swarm needs Linux (network and mount namespaces).")
        if os.geteuid() != 0:
            raise LocalSwarmError(
                "The local swarm starts its own Docker engines in a network namespace, which needs "
                "root: run it with sudo (`sudo python -m orchestrator.machine.swarm up`), or point "
                "my_swarm at an existing swarm instead."
            )
        missing = {
            "dockerd": "apt-get install docker.io",
            "docker-registry": "apt-get install docker-registry",
            "unshare": "apt-get install util-linux",
            "nsenter": "apt-get install util-linux",
            "ip": "apt-get install iproute2",
        }
        absent = [f"{name} ({how})" for name, how in missing.items() if not find_program(name)]
        if absent:
            raise LocalSwarmError("Programs the local swarm needs are missing: " + "; ".join(absent) + ".")
        longest = self.root / self.nodes[0].name / "exec" / "containerd" / "containerd-debug.sock"
        if len(str(longest)) > _UNIX_SOCKET_PATH_MAX - 10:
            raise LocalSwarmError(
                f"The state folder {self.root} is too long a path for the engines' unix sockets; "
                "choose a shorter one with --root (or LOCAL_SWARM_ROOT)."
            )
        if not _port_is_free(self.registry_port):
            raise LocalSwarmError(
                f"Port {self.registry_port} on 127.0.0.1 is already in use, so the registry cannot "
                f"listen there. Choose another with --registry-port (or LOCAL_SWARM_REGISTRY_PORT)."
            )
        for node in self.nodes:
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", node.name):
                raise LocalSwarmError(f"Node name {node.name!r} is not a valid host name.")
            if not node.address.startswith("127."):
                raise LocalSwarmError(f"Node {node.name} must be advertised on a 127.x address, not {node.address}.")

    def _check_same_layout(self) -> None:
        state = self._read_state()
        if state.get("registry_port") != self.registry_port or [n["name"] for n in state.get("nodes", [])] != [
            n.name for n in self.nodes
        ]:
            raise LocalSwarmError(
                f"A local swarm with other settings is already up in {self.root} "
                f"(registry port {state.get('registry_port')}, nodes "
                f"{[n['name'] for n in state.get('nodes', [])]}); run `down` first."
            )
        missing = set(self.forward_ports) - set(state.get("forward_ports", []))
        if missing:
            raise LocalSwarmError(
                f"The local swarm in {self.root} does not relay port(s) {sorted(missing)}; "
                "run `down`, then `up` with those --forward ports."
            )

    def _start_namespace_holder(self) -> int:
        process = spawn_detached(
            ["unshare", "--net", "--", "sh", "-c", "ip link set lo up && exec sleep infinity"],
            self.root / "netns.log",
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if process_name(process.pid) == "sleep" and netns_id(process.pid) != netns_id(os.getpid()):
                return process.pid
            if process.poll() is not None:
                break
            time.sleep(0.05)
        raise LocalSwarmError(
            "Could not create a network namespace for the local swarm:\n" + log_tail(self.root / "netns.log")
        )

    def _start_registry(self) -> int:
        folder = self.root / "registry"
        (folder / "data").mkdir(parents=True, exist_ok=True)
        config = folder / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.registry_port}\n"
        )
        return spawn_detached(["docker-registry", "serve", str(config)], folder / "registry.log").pid

    def _start_relay(self, holder: int) -> int:
        argv = [sys.executable, "-m", "orchestrator.machine.netns_relay", "--netns", f"/proc/{holder}/ns/net"]
        for port in self.forward_ports:
            argv += ["--port", str(port)]
        process = spawn_detached(argv, self.root / "relay.log")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if "relaying" in log_tail(self.root / "relay.log"):
                return process.pid
            if process.poll() is not None:
                break
            time.sleep(0.05)
        raise LocalSwarmError("The port relay into the swarm's namespace did not start:\n"
                              + log_tail(self.root / "relay.log"))

    def _engine_argv(self, node: SwarmNodeSpec) -> List[str]:
        folder = self._node_dir(node.name)
        argv = [
            "dockerd",
            "--data-root", str(folder / "data"),
            "--exec-root", str(folder / "exec"),
            "--host", self.docker_host(node.name),
            "--pidfile", str(folder / "docker.pid"),
            "--bridge", "none", "--iptables=false", "--ip-masq=false", "--ip-forward=false",
            "--userland-proxy=false",
            "--cgroup-parent", f"/{self._cgroup_prefix}-{node.name}",
            "--shutdown-timeout", "5",
        ]
        for name, count in sorted(node.generic_resources.items()):
            argv += ["--node-generic-resource", f"{name}={count}"]
        return argv

    def _start_engine(self, node: SwarmNodeSpec, holder: int) -> int:
        folder = self._node_dir(node.name)
        folder.mkdir(parents=True, exist_ok=True)
        inner = f"hostname {node.name}"
        if node.memory_bytes:
            meminfo = folder / "meminfo"
            meminfo.write_text(_meminfo_with_total(Path("/proc/meminfo").read_text(), node.memory_bytes))
            inner += f" && mount --bind {meminfo} /proc/meminfo"
        inner += " && exec " + " ".join(_shell_quote(arg) for arg in self._engine_argv(node))
        # nsenter and unshare exec (no fork), and so does `sh -c 'exec ...'`: the pid is dockerd's.
        process = spawn_detached(
            ["nsenter", f"--net=/proc/{holder}/ns/net", "--",
             "unshare", "--mount", "--uts", "--propagation", "slave", "--", "sh", "-c", inner],
            folder / "dockerd.log",
        )
        return process.pid

    def _wait_for_engine(self, node: SwarmNodeSpec, wait_seconds: float) -> None:
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            try:
                self.client(node.name, timeout=5).ping()
                return
            except (docker.errors.DockerException, requests.exceptions.RequestException):
                time.sleep(0.2)
        raise LocalSwarmError(
            f"The engine of {node.name} did not answer within {wait_seconds:.0f} s. Its log:\n"
            + log_tail(self._node_dir(node.name) / "dockerd.log")
        )

    def _form_swarm(self, wait_seconds: float) -> None:
        manager_spec, *workers = self.nodes
        manager = self.client()
        manager.swarm.init(
            advertise_addr=manager_spec.address, listen_addr=f"{manager_spec.address}:{SWARM_PORT}",
            task_history_retention_limit=1,
        )
        # Host networking only: the routing mesh is not needed, and two engines in
        # one namespace would compete for its VXLAN port.
        for network in manager.networks.list(names=["ingress"]):
            network.remove()
        token = manager.swarm.attrs["JoinTokens"]["Worker"]
        for worker in workers:
            self.client(worker.name).swarm.join(
                remote_addrs=[f"{manager_spec.address}:{SWARM_PORT}"], join_token=token,
                listen_addr=f"{worker.address}:{SWARM_PORT}", advertise_addr=worker.address,
            )
        deadline = time.monotonic() + wait_seconds
        while True:
            nodes = {n.attrs["Description"]["Hostname"]: n for n in manager.nodes.list()}
            ready = [name for name, n in nodes.items() if n.attrs["Status"]["State"] == "ready"]
            if len(ready) == len(self.nodes):
                break
            if time.monotonic() > deadline:
                raise LocalSwarmError(f"Only {sorted(ready)} of the swarm's nodes became ready "
                                      f"within {wait_seconds:.0f} s.")
            time.sleep(0.2)
        for spec in self.nodes:
            node = nodes[spec.name]
            node.update({
                "Availability": "active", "Role": node.attrs["Spec"]["Role"],
                "Labels": {**node.attrs["Spec"].get("Labels", {}), **dict(spec.labels)},
            })

    def _wait_for_registry(self, wait_seconds: float) -> None:
        deadline = time.monotonic() + wait_seconds
        while not _registry_answers(self.registry):
            if time.monotonic() > deadline:
                raise LocalSwarmError("The registry did not answer:\n"
                                      + log_tail(self.root / "registry" / "registry.log"))
            time.sleep(0.1)

    # ---------------------------------------------------------------- status

    def status(self) -> SwarmStatus:
        """Look at every part of the local swarm; never raises for a broken one.

        Returns:
            `up` is True only when the namespace, registry, relay and every
            engine are alive and every node is ready.
        """
        state = self._read_state()
        result = SwarmStatus(root=str(self.root), up=False)
        if not state:
            return result
        result.manager_url = self.manager_url
        result.registry = f"127.0.0.1:{state.get('registry_port')}"
        result.forwarded_ports = list(state.get("forward_ports", []))
        holder = state.get("holder_pid")
        # Only root may read another user's /proc/PID/ns: others see the holder process alone.
        if not holder or process_name(holder) != "sleep" or (
                os.geteuid() == 0 and netns_id(holder) != state.get("netns")):
            result.problems.append("the swarm's network namespace is gone")
        if not is_alive(state.get("relay_pid")):
            result.problems.append("the port relay is not running")
        result.registry_answers = _registry_answers(result.registry)
        if not result.registry_answers:
            result.problems.append("the registry does not answer")
        swarm_nodes: Dict[str, dict] = {}
        try:
            swarm_nodes = {n.attrs["Description"]["Hostname"]: n.attrs for n in self.client(timeout=5).nodes.list()}
        except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
            result.problems.append(f"the manager does not answer: {_first_line(error)}")
        for spec in state.get("nodes", []):
            name = spec["name"]
            pid = state.get("engine_pids", {}).get(name)
            node = NodeStatus(name=name, docker_host=self.docker_host(name),
                              engine_running=process_name(pid) == "dockerd" if pid else False)
            attrs = swarm_nodes.get(name)
            if attrs:
                node.state = attrs["Status"]["State"]
                node.availability = attrs["Spec"]["Availability"]
                node.memory_bytes = attrs["Description"]["Resources"].get("MemoryBytes")
                node.labels = dict(attrs["Spec"].get("Labels") or {})
            if not node.engine_running:
                result.problems.append(f"the engine of {name} is not running")
            elif node.state != "ready":
                result.problems.append(f"{name} is not ready in the swarm ({node.state})")
            result.nodes.append(node)
        result.up = not result.problems
        return result

    # ------------------------------------------------------------------ down

    def down(self, log: Log = print, wait_seconds: float = 30) -> None:
        """Stop everything `up` started and remove the state folder.

        Safe to call when the swarm is down or half-started. Never touches the
        machine's engine: every process it ends is one this swarm started or one
        living in the swarm's own network namespace.

        Raises:
            LocalSwarmError: something could not be removed (the message names it).
        """
        began = time.monotonic()
        state = self._read_state()
        netns = state.get("netns")
        holder = state.get("holder_pid")
        if holder and netns_id(holder) != netns:
            holder = None  # the pid now belongs to someone else
        self._remove_services()
        engines = [pid for pid in state.get("engine_pids", {}).values() if process_name(pid) == "dockerd"]
        engines += [pid for pid in self._leftover_engine_pids() if pid not in engines]
        terminate(engines, wait_seconds)
        if netns:
            # containerd, shims and container processes of killed engines; all are ours
            terminate([pid for pid in pids_in_netns(netns) if pid != holder], 10)
        for key, marker in (("relay_pid", "netns_relay"), ("registry_pid", "docker-registry")):
            pid = state.get(key)
            if pid and marker in command_line(pid):
                terminate([pid], 10)
        if holder:
            terminate([holder], 10)
        if netns and pids_in_netns(netns):
            raise LocalSwarmError(f"Processes are still in the swarm's namespace: {pids_in_netns(netns)}.")
        self._remove_cgroups()
        mounted = [m for m in mount_points() if Path(m) == self.root or self.root in Path(m).parents]
        if mounted:
            raise LocalSwarmError(f"Still mounted under {self.root}, so it is not removed: {mounted}.")
        if self.root.exists():
            shutil.rmtree(self.root)
        reap_spawned()
        log(f"Local swarm in {self.root} is down ({time.monotonic() - began:.1f} s).")

    def _remove_services(self) -> None:
        """Remove every service first: their containers stop within the stop grace period."""
        try:
            manager = self.client(timeout=10)
            for service in manager.services.list():
                service.remove()
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            pass  # no manager: the engines are killed below anyway

    def _leftover_engine_pids(self) -> List[int]:
        """dockerd processes whose data root lies in our folder (a lost state file)."""
        marker = f"--data-root {self.root}/"
        found = []
        for pid in all_pids():
            if process_name(pid) == "dockerd" and marker in command_line(pid):
                found.append(pid)
        return found

    def _remove_cgroups(self) -> None:
        for hierarchy in cgroup_hierarchies():
            for top in Path(hierarchy).glob(f"{self._cgroup_prefix}-*"):
                for folder in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                    _rmdir(folder)
                _rmdir(top)

    # ----------------------------------------------------------------- state

    def _read_state(self) -> dict:
        try:
            return json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _write_state(self, state: Mapping[str, object]) -> None:
        temporary = self._state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=2))
        temporary.replace(self._state_file)

    # ---------------------------------------------------------------- helpers


# ---------------------------------------------------------------------- pure helpers


def _meminfo_with_total(meminfo: str, total_bytes: int) -> str:
    """`/proc/meminfo` text with MemTotal replaced (kB, as the kernel writes it)."""
    lines = []
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            line = f"MemTotal:       {total_bytes // 1024} kB"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _shell_quote(text: str) -> str:
    return text if re.fullmatch(r"[A-Za-z0-9_./:=,@%+-]+", text) else "'" + text.replace("'", "'\\''") + "'"


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _registry_answers(registry: str) -> bool:
    try:
        return requests.get(f"http://{registry}/v2/", timeout=2).status_code == 200
    except requests.exceptions.RequestException:
        return False


def _rmdir(folder: Path) -> None:
    try:
        folder.rmdir()
    except FileNotFoundError:
        pass
    except OSError as error:
        raise LocalSwarmError(f"Cannot remove the cgroup {folder}: {error}.") from error


# ---------------------------------------------------------------------- command line


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line: `up`, `down` or `status` (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m orchestrator.machine.swarm",
                                     description="A two-node Docker Swarm on this machine (needs root).")
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help=f"state folder (default {DEFAULT_ROOT})")
    parser.add_argument("--registry-port", type=int, default=DEFAULT_REGISTRY_PORT,
                        help=f"registry port on 127.0.0.1 (default {DEFAULT_REGISTRY_PORT})")
    parser.add_argument("--forward", type=int, action="append", metavar="PORT",
                        help=f"a host port on 127.0.0.1 the nodes must reach (repeatable; default "
                             f"{ZENML_LOCAL_SERVER_PORT}, ZenML's local server)")
    options = parser.parse_args(argv)
    swarm = LocalSwarm(root=options.root, registry_port=options.registry_port,
                       forward_ports=options.forward or (ZENML_LOCAL_SERVER_PORT,))
    try:
        if options.action == "up":
            print(swarm.up().describe())
        elif options.action == "down":
            swarm.down()
        else:
            found = swarm.status()
            print(found.describe())
            return 0 if found.up or not found.nodes else 1
    except LocalSwarmError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        print(f"error: an engine of the local swarm answered with an error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
