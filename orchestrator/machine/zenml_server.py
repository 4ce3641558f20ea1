"""ZenML's own local server: the store every node of a swarm can reach.

A step task on another node cannot open the SQLite file ZenML keeps on the
client's machine; on a cluster, clients and steps talk to a ZenML server.
ZenML ships one: ``zenml login --local`` starts it on this machine and
connects the current ZenML configuration to it, ``zenml logout --local``
shuts it down and goes back to the local SQLite store. This module runs
those two commands for the swarm tests and notebook 8, and makes sure a
server started here does not outlive the process that started it (a notebook
whose cell failed, a test session that crashed).

The local swarm's nodes reach the host's port `ZENML_LOCAL_SERVER_PORT`
(`orchestrator.machine.swarm` forwards it into their network namespace), as
a real cluster's nodes would reach the server's URL.
"""

from __future__ import annotations

import atexit
import os
import socket
from typing import Callable

from orchestrator.errors import MyDockerError
from orchestrator.machine.stack import run_zenml
from orchestrator.machine.swarm import ZENML_LOCAL_SERVER_PORT

_started_here = False


class ServerPortTakenError(MyDockerError):
    """Something already listens on the port ZenML's local server would use."""


def port_is_taken(port: int = ZENML_LOCAL_SERVER_PORT) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port`."""
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def start_local_server(port: int = ZENML_LOCAL_SERVER_PORT,
                       echo: Callable[[str], None] = print) -> str:
    """Start ZenML's local server and connect this process's ZenML configuration to it.

    Everything registered or run afterwards is recorded in the server, not in
    the SQLite file. It takes about 15 s.

    Args:
        port: where it listens on 127.0.0.1 (the local swarm's nodes reach 8237).
        echo: where the command line is shown.

    Returns:
        The server's URL (``http://127.0.0.1:<port>``).

    Raises:
        ServerPortTakenError: the port is taken (another server, another program).
        Exception: ZenML's own error if the server does not start.
    """
    global _started_here
    if port_is_taken(port):
        raise ServerPortTakenError(
            f"Port {port} on 127.0.0.1 is taken, so ZenML's local server cannot start there. "
            "If it is a ZenML server you started, shut it down with `zenml logout --local` "
            "(with the same ZENML_CONFIG_PATH); otherwise stop what listens there.")
    os.environ.setdefault("ZENML_AUTO_OPEN_DASHBOARD", "false")  # no browser from a test
    command = f"zenml login --local --port {port}"
    echo(f"$ {command}")
    if not _started_here:
        atexit.register(_stop_at_exit)
    _started_here = True
    run_zenml(command, in_process=True)
    return f"http://127.0.0.1:{port}"


def stop_local_server(echo: Callable[[str], None] = print) -> bool:
    """Shut ZenML's local server down; this process goes back to the local SQLite store.

    Returns:
        Whether the port is free afterwards.
    """
    global _started_here
    echo("$ zenml logout --local")
    run_zenml("zenml logout --local", in_process=True)
    _started_here = False
    return not port_is_taken()


def _stop_at_exit() -> None:
    if _started_here:
        try:
            stop_local_server(echo=lambda _: None)
        except Exception:  # noqa: BLE001 - the process ends anyway
            pass
