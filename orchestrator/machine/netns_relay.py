"""Make this host's loopback ports reachable from inside another network namespace.

The local swarm (`orchestrator.machine.swarm`) keeps its Docker engines in a
network namespace of their own, so that nothing they do can touch the host's
interfaces (a `dockerd --bridge none` in the host's namespace deletes the host
engine's `docker0`). Their step containers use host networking, which then means
that private namespace: its `127.0.0.1` is not the host's. Yet the registry the
nodes pull from and the ZenML server the steps report to listen on the host's
`127.0.0.1`, under names (`127.0.0.1:5000/zenml:...`, `http://127.0.0.1:8237`)
that must mean the same thing on both sides.

This relay listens on `127.0.0.1:PORT` *inside* the namespace and forwards each
connection to `127.0.0.1:PORT` on the host. A socket belongs to the namespace of
the thread that created it, so the listening sockets are made after a
`setns(2)` into the target namespace and everything else after switching back.

Run: ``python -m orchestrator.machine.netns_relay --netns /proc/PID/ns/net --port 5000 --port 8237``
(as root; it runs until it is sent SIGTERM).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import socket
import sys
import threading
from typing import Iterable, List, Optional, Sequence, Tuple

CLONE_NEWNET = 0x40000000
_CHUNK = 256 * 1024


def _setns(fd: int) -> None:
    """Move the calling thread into the network namespace behind `fd`.

    Python 3.11 has no `os.setns` (3.12 has), so libc is called directly.

    Raises:
        OSError: when the kernel refuses (not root, not a namespace file).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"setns into a network namespace failed: {os.strerror(error)}")


def listen_inside(netns_path: str, ports: Iterable[int]) -> List[Tuple[socket.socket, int]]:
    """Open listening sockets on 127.0.0.1:port inside the namespace at `netns_path`.

    Returns:
        (listening socket, port) pairs; the calling thread is back in its own
        namespace when this returns.

    Raises:
        OSError: the namespace cannot be entered or a port is taken inside it.
    """
    home = os.open("/proc/self/task/%d/ns/net" % threading.get_native_id(), os.O_RDONLY)
    target = os.open(netns_path, os.O_RDONLY)
    try:
        _setns(target)
        try:
            return [(socket.create_server(("127.0.0.1", port)), port) for port in ports]
        finally:
            _setns(home)
    finally:
        os.close(home)
        os.close(target)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy bytes one way until the source closes, then half-close the sink."""
    try:
        while True:
            data = source.recv(_CHUNK)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def _serve(listener: socket.socket, port: int) -> None:
    """Accept connections inside the namespace; connect each to the host's port."""
    while True:
        try:
            inner, _ = listener.accept()
        except OSError:
            return
        try:
            outer = socket.create_connection(("127.0.0.1", port), timeout=10)
            outer.settimeout(None)
        except OSError:
            inner.close()  # nothing listens on the host: the client sees a closed connection
            continue
        for sock in (inner, outer):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for source, sink in ((inner, outer), (outer, inner)):
            threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def relay(netns_path: str, ports: Sequence[int]) -> None:
    """Relay `ports` into the namespace until SIGTERM or SIGINT."""
    listeners = listen_inside(netns_path, ports)
    for listener, port in listeners:
        threading.Thread(target=_serve, args=(listener, port), daemon=True).start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"relaying 127.0.0.1 ports {', '.join(map(str, ports))} into {netns_path}", flush=True)
    stop.wait()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--netns", required=True, help="a network namespace file, e.g. /proc/PID/ns/net")
    parser.add_argument("--port", type=int, action="append", required=True, help="a port (repeatable)")
    options = parser.parse_args(argv)
    try:
        relay(options.netns, options.port)
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
