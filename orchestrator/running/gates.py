"""The host side of the gates that step containers started early wait at.

A container started before its upstream steps succeeded runs its warm-up
(see `step_entrypoint`), then waits until a file named after it exists in the
run's gate folder. Opening a gate is creating that file. The folder lives in
ZenML's local stores folder, which every step container already has mounted
at the same path (ZenML's database and artifact store are there), so no
mount is added. A file is used rather than a signal because a signal sent
before the container's Python installed its handler is lost (Python is the
container's init process, which ignores signals it has no handler for),
while a file that exists stays there.

While the run goes on, a thread touches the folder's alive file: a waiting
container whose orchestrator died (killed, machine asleep) sees it grow old
and leaves instead of waiting forever.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Optional

from orchestrator.running.step_entrypoint import ALIVE_FILE

# How often the alive file is touched (the containers give up after
# step_entrypoint.ORPHANED_AFTER_SECONDS without a touch).
TOUCH_SECONDS = 10.0


# Below ZenML's local stores folder: one folder per run.
GATES_FOLDER = "my_docker_gates"


def create_gate_folder(local_stores_path: str) -> Path:
    """A new, empty gate folder for one run, readable by any uid a step may run as.

    Args:
        local_stores_path: ZenML's local stores folder, mounted at the same
            path in every step container.
    """
    parent = Path(local_stores_path) / GATES_FOLDER
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="run-", dir=parent))
    folder.chmod(0o755)
    (folder / ALIVE_FILE).touch()
    return folder


class Gates:
    """One run's gate folder: open gates, keep the alive file fresh, remove it at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._stop = threading.Event()
        self._toucher: Optional[threading.Thread] = None

    def gate_of(self, container_name: str) -> str:
        """The file a container waits for (the same path inside and outside)."""
        return str(self.folder / container_name)

    def open(self, container_name: str) -> None:
        """Let the container named `container_name` run its step.

        Raises:
            OSError: the gate folder is gone or not writable.
        """
        (self.folder / container_name).touch()

    def keep_alive(self) -> None:
        """Start touching the alive file every TOUCH_SECONDS (a daemon thread)."""
        def touch_until_stopped() -> None:
            while not self._stop.wait(TOUCH_SECONDS):
                try:
                    (self.folder / ALIVE_FILE).touch()
                except OSError:
                    return
        self._toucher = threading.Thread(target=touch_until_stopped, daemon=True,
                                         name="my-docker-gates-alive")
        self._toucher.start()

    def remove(self) -> None:
        """Stop touching and delete the folder (containers still waiting then leave)."""
        self._stop.set()
        shutil.rmtree(self.folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.folder.parent.rmdir()  # when no other run uses it
