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
from typing import Callable


@contextlib.contextmanager
def terminate_as_interrupt():
    """Treat SIGTERM and SIGHUP like Ctrl-C while the run loop runs.

    By default they end Python at once, with no `finally`, which would leave
    the run's containers running. Signals can only be handled in the main
    thread; elsewhere (e.g. a run started from a worker thread) this does
    nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _interrupt(signum, frame):
        raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def signals_hurry(hurry: Callable[[str], None]):
    """While the run is cleaned up, Ctrl-C, SIGTERM and SIGHUP call `hurry` instead of raising.

    A user who presses Ctrl-C again while the containers are being stopped
    wants it over sooner, not a cleanup broken halfway (containers left
    running, the run's record open). Only in the main thread, as signals are.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _again(signum, frame):
        hurry(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, _again)
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
