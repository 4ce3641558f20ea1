"""Signals while a run loop runs: SIGTERM and SIGHUP as Ctrl-C, then a hurried cleanup.

Every run loop (the docker runner's, the swarm runner's) wraps its loop in
`terminate_as_interrupt`, so that a `kill` or a closed terminal stops and
removes the run's containers as Ctrl-C does, and its cleanup in
`signals_hurry`, so that a second signal speeds the cleanup up instead of
breaking it halfway. Python lets only the main thread handle signals: both
do nothing in another thread.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Callable, Iterable, Iterator


@contextlib.contextmanager
def handling(signals: Iterable[int], handler: Callable[[int, Any], None]) -> Iterator[None]:
    """`handler` for these signals while the block runs; the previous handlers after.

    In the main thread only (Python lets no other thread handle signals):
    elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def terminate_as_interrupt():
    """Treat SIGTERM and SIGHUP like Ctrl-C while the run loop runs.

    By default they end Python at once, with no `finally`, which would leave
    the run's containers running. Signals can only be handled in the main
    thread; elsewhere (e.g. a run started from a worker thread) this does
    nothing.
    """
    def _interrupt(signum, frame):
        raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")

    with handling((signal.SIGTERM, signal.SIGHUP), _interrupt):
        yield


@contextlib.contextmanager
def signals_hurry(hurry: Callable[[str], None]):
    """While the run is cleaned up, Ctrl-C, SIGTERM and SIGHUP call `hurry` instead of raising.

    A user who presses Ctrl-C again while the containers are being stopped
    wants it over sooner, not a cleanup broken halfway (containers left
    running, the run's record open). Only in the main thread, as signals are.
    """
    def _again(signum, frame):
        hurry(signal.Signals(signum).name)

    with handling((signal.SIGINT, signal.SIGTERM, signal.SIGHUP), _again):
        yield
