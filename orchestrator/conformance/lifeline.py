"""The kit's processes end with the process that started them.

The kit starts processes: one battery per stack (from a notebook, with
`Batteries`), and per battery the clients of the runs it stops or interrupts
(`child`). A process killed with SIGKILL runs no cleanup (a Jupyter kernel
shut down hard is killed with its process group), and what it started would
run on, with its step containers, for as long as the long step lasts. So each
of these processes watches its parent: once the parent is gone (the process
was re-parented), it interrupts itself as Ctrl-C would, so that its own
cleanup runs, and exits at the latest `grace_seconds` later.
"""

from __future__ import annotations

import os
import signal
import threading
import time

__all__ = ["follow_parent"]


def follow_parent(grace_seconds: float = 120.0, poll_seconds: float = 1.0) -> threading.Event:
    """Interrupt this process (SIGINT, as Ctrl-C) when its parent process is gone.

    Call it from the main thread. Ctrl-C raises KeyboardInterrupt from then
    on, whatever signal dispositions the parent left.

    Returns:
        An event set when the parent was found gone (before the interrupt), so
        that cleanup can tell a lost parent from an ordinary Ctrl-C.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parent = os.getppid()
    gone = threading.Event()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        gone.set()
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(grace_seconds)
        os._exit(3)  # cleanup hung: do not outlive the parent for long

    threading.Thread(target=watch, name="conformance-lifeline", daemon=True).start()
    return gone
