"""This machine's processes as the root set-up tools see them, read through psutil.

The set-up tools (`root_setup` starting the system dockerd, `swarm` starting
private engines, a registry and a relay) must tell whether a daemon named in a
pid file still runs, find the processes living in a network namespace, start
processes that outlive the Python process starting them, and end processes
surely. This module owns those operations; it knows nothing of Docker.

A zombie (a process that exited and was not yet reaped by its parent) counts
as gone everywhere here: it runs nothing and holds no port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import List, Optional, Sequence

import psutil

# Processes started by `spawn_detached`; kept so that they are reaped (not
# left as zombies) when this process is the one that ends them.
_children: List[subprocess.Popen] = []


def process_name(pid: int) -> Optional[str]:
    """The command name of a live process, or None.

    Args:
        pid: a process id.

    Returns:
        The kernel's command name of the process (psutil completes a name cut
        at the kernel's 15 characters from the command line), or None when no
        process has that pid or it is a zombie.
    """
    try:
        process = psutil.Process(pid)
        with process.oneshot():
            if process.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                return None
            return process.name()
    except (psutil.Error, ValueError):  # ValueError: a negative pid
        return None


def is_alive(pid: Optional[int]) -> bool:
    """Whether `pid` (None or 0: no process) names a live process that is not a zombie."""
    return bool(pid) and process_name(pid) is not None


def all_pids() -> List[int]:
    """The ids of every process this machine's process namespace shows."""
    return psutil.pids()


def command_line(pid: int) -> str:
    """A process's command line, its arguments joined by spaces ("" if unknown or gone)."""
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except (psutil.Error, ValueError):
        return ""


def netns_id(pid: int) -> Optional[str]:
    """The network namespace of a process, e.g. ``net:[4026532281]``, or None.

    Read from the ``/proc/PID/ns/net`` link (psutil has no namespaces); only
    root may read another user's.
    """
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def pids_in_netns(netns: str) -> List[int]:
    """The live processes (zombies left out) in the network namespace `netns` (`netns_id`)."""
    return [pid for pid in all_pids() if netns_id(pid) == netns and process_name(pid) is not None]


def spawn_detached(argv: Sequence[str], log_file: Path) -> subprocess.Popen:
    """Start a long-lived process in its own session (so a Ctrl-C of ours does not reach it).

    Args:
        argv: the program and its arguments.
        log_file: its stdout and stderr are appended here.

    Returns:
        The started process (kept, so that `terminate` and `reap_spawned` reap it).

    Raises:
        OSError: the program or the log file cannot be opened.
    """
    with open(log_file, "ab") as output:
        process = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,
        )
    _children.append(process)
    return process


def terminate(pids: Sequence[int], wait_seconds: float) -> None:
    """End processes: SIGTERM, then SIGKILL whatever is left; zombies count as gone.

    Args:
        pids: the processes to end (those already gone are skipped).
        wait_seconds: how long to wait after SIGTERM before SIGKILL; after
            SIGKILL it waits up to 5 s more, then returns whether or not all
            are gone.
    """
    for sig, wait in ((signal.SIGTERM, wait_seconds), (signal.SIGKILL, 5)):
        alive = [pid for pid in pids if process_name(pid) is not None]
        for pid in alive:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while alive and time.monotonic() < deadline:
            _poll_children()
            alive = [pid for pid in alive if process_name(pid) is not None]
            time.sleep(0.05)
        if not alive:
            return


def reap_spawned() -> None:
    """Reap the processes `spawn_detached` started that have ended, and forget them.

    Waits up to 1 s for each one still running.

    Raises:
        subprocess.TimeoutExpired: one of them still runs after that second.
    """
    for process in _children:
        if process.poll() is None:
            process.wait(timeout=1)
    _children[:] = [p for p in _children if p.returncode is None]


def _poll_children() -> None:
    for process in _children:
        process.poll()
