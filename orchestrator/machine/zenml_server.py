"""ZenML's own local server: the store every node of a swarm can reach.

A step task on another node cannot open the SQLite file ZenML keeps on the
client's machine; on a cluster, clients and steps talk to a ZenML server.
ZenML ships one: ``zenml login --local`` starts it on this machine and
connects the current ZenML configuration to it, ``zenml logout --local``
shuts it down and goes back to the local SQLite store. This module runs
those two commands for the swarm tests and notebook 8, and makes sure a
server started here does not outlive the process that started it: at its
normal exit (a notebook whose cell failed, a test session that crashed) and,
through a small watchdog process of its own session, when it is killed (a
kernel killed with SIGKILL or SIGTERM).

    python -m orchestrator.machine.zenml_server --stop-when-gone PID

is that watchdog: it shuts down the server of its ZENML_CONFIG_PATH once
process PID has ended.

The local swarm's nodes reach the host's port `ZENML_LOCAL_SERVER_PORT`
(`orchestrator.machine.swarm` forwards it into their network namespace), as
a real cluster's nodes would reach the server's URL.
"""

from __future__ import annotations

import argparse
import atexit
import os
import socket
import subprocess
import sys
import time
from typing import Callable, List, Optional

from orchestrator.errors import MyDockerError
from orchestrator.machine.stack import run_zenml
from orchestrator.machine.swarm import ZENML_LOCAL_SERVER_PORT

_started_here = False
_watchdog: Optional[subprocess.Popen] = None


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

    Everything registered or run afterwards goes through the server (the
    local server serves this configuration's own records over HTTP, so what
    was registered before is there too). It takes about 15 s.

    Args:
        port: where it listens on 127.0.0.1 (the local swarm's nodes reach 8237).
        echo: where the command line is shown.

    Returns:
        The server's URL (``http://127.0.0.1:<port>``).

    Raises:
        ServerPortTakenError: the port is taken (another server, another program).
        Exception: ZenML's own error if the server does not start.
    """
    global _started_here, _watchdog
    url = f"http://127.0.0.1:{port}"
    if port_is_taken(port):
        if _started_here and _store_url() == url:
            echo(f"ZenML's local server started by this process already runs at {url}")
            return url  # a notebook cell run again
        raise ServerPortTakenError(
            f"Port {port} on 127.0.0.1 is taken, so ZenML's local server cannot start there"
            + "".join(f"; {holder}" for holder in _servers_listening()) + ". Shut a ZenML "
            "server down with `ZENML_CONFIG_PATH=<its config folder> zenml logout --local` "
            "(or end its process); otherwise stop what listens there.")
    os.environ.setdefault("ZENML_AUTO_OPEN_DASHBOARD", "false")  # no browser from a test
    command = f"zenml login --local --port {port}"
    echo(f"$ {command}")
    if not _started_here:
        atexit.register(_stop_at_exit)
    _started_here = True
    _watchdog = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.machine.zenml_server", "--stop-when-gone",
         str(os.getpid())], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)  # survives a killed process group
    try:
        run_zenml(command, in_process=True)
    except BaseException:
        _started_here = False
        _watchdog.terminate()
        _watchdog = None
        raise
    return url


def stop_local_server(echo: Callable[[str], None] = print) -> bool:
    """Shut ZenML's local server down; this process goes back to the local SQLite store.

    Returns:
        Whether the port is free afterwards.
    """
    global _started_here, _watchdog
    echo("$ zenml logout --local")
    run_zenml("zenml logout --local", in_process=True)
    _started_here = False
    if _watchdog is not None:
        _watchdog.terminate()
        _watchdog.wait(timeout=10)
        _watchdog = None
    return not port_is_taken()


def _store_url() -> Optional[str]:
    """The store this process's ZenML configuration names (read, not connected to)."""
    try:
        from zenml.config.global_config import GlobalConfiguration

        return str(GlobalConfiguration().store_configuration.url)
    except Exception:  # noqa: BLE001 - no configuration to read: not ours then
        return None


def _servers_listening() -> List[str]:
    """ZenML local servers running on this machine, as 'a ZenML server runs as process N (...)'."""
    import psutil

    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        words = process.info.get("cmdline") or []
        if any("local_daemon_entrypoint" in word for word in words):
            found.append(f"a ZenML server runs as process {process.info['pid']} "
                         f"({' '.join(words)[:300]})")
    return found


def _stop_at_exit() -> None:
    if _started_here:
        try:
            stop_local_server(echo=lambda _: None)
        except Exception:  # noqa: BLE001 - the process ends anyway
            pass


def _stop_when_gone(pid: int, poll_seconds: float = 1.0) -> None:
    """Wait until process `pid` has ended; then shut the local server down if it still runs."""
    import psutil

    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(poll_seconds)
    if port_is_taken():
        run_zenml("zenml logout --local", in_process=True)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.machine.zenml_server",
                                     description="Shut ZenML's local server down once a "
                                     "process has ended (the watchdog of start_local_server).")
    parser.add_argument("--stop-when-gone", type=int, metavar="PID", required=True,
                        help="shut this config's local server down once process PID ends")
    options = parser.parse_args(argv)
    _stop_when_gone(options.stop_when_gone)
    return 0


if __name__ == "__main__":
    sys.exit(main())
