"""Running the machine's own programs (apt-get, debootstrap, dockerd) from Python.

The set-up tools start chatty programs whose full output would flood a
terminal or a notebook cell, and whose last lines are what explains a failure.
This module owns that: finding a program where root's tools live (a minimal
PATH may lack the sbin folders), running it with condensed progress
(`LineCondenser`, `run_command`), and reading the tail of a daemon's log file
(`log_tail`). It knows nothing of Docker.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections import deque
from pathlib import Path
from typing import Callable, Deque, List, Optional, Sequence, Tuple

Log = Callable[[str], None]

# Where root's tools live on Debian; a minimal PATH may lack the sbin folders.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Colour codes, as pip writes around its warnings even when not on a terminal.
_ANSI_CODES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class LineCondenser:
    """Show the progress of a chatty command without flooding the terminal.

    A line is shown when its "kind" (given by `key`) differs from the previous
    shown line's, or when `interval` seconds passed since the last shown line;
    never when its kind is None. The last lines are kept whether shown or not,
    to explain a failure.
    """

    def __init__(
        self,
        log: Log,
        prefix: str = "  ",
        interval: float = 5.0,
        key: Optional[Callable[[str], Optional[str]]] = None,
        keep: int = 30,
    ) -> None:
        self._log = log
        self._prefix = prefix
        self._interval = interval
        self._key = key or (lambda line: " ".join(line.split()[:2]))
        self._last_key: Optional[str] = None
        self._last_time = 0.0
        self.tail: Deque[str] = deque(maxlen=keep)

    def feed(self, line: str) -> None:
        """Take one output line; show it if it tells something new."""
        line = _ANSI_CODES.sub("", line).rstrip()
        if not line.strip():
            return
        self.tail.append(line if len(line) <= 400 else line[:400] + " [...]")
        key = self._key(line)
        now = time.monotonic()
        if key is None:
            return
        if key != self._last_key or now - self._last_time >= self._interval:
            self._log(f"{self._prefix}{line[:200]}")
            self._last_key = key
            self._last_time = now


def run_command(
    command: Sequence[str],
    log: Log,
    env: Optional[dict] = None,
    key: Optional[Callable[[str], Optional[str]]] = None,
) -> Tuple[int, List[str]]:
    """Run a command, showing condensed output lines as they come.

    Args:
        command: the program and its arguments.
        log: where progress lines go.
        env: extra environment variables.
        key: how to tell lines of a new kind apart (see `LineCondenser`).

    Returns:
        The exit code and the last output lines (to explain a failure).
    """
    condenser = LineCondenser(log, key=key)
    full_env = {**os.environ, **(env or {})}
    full_env["PATH"] = with_system_path(full_env.get("PATH", ""))
    try:
        process = subprocess.Popen(
            list(command),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            text=True,
            errors="replace",
        )
    except OSError as error:
        return 127, [f"cannot run {command[0]}: {error}"]
    assert process.stdout is not None
    for line in process.stdout:
        condenser.feed(line)
    return process.wait(), list(condenser.tail)


def with_system_path(path: str) -> str:
    """Append Debian's system folders to a PATH value where missing (dockerd, apt).

    Args:
        path: a PATH value (``os.pathsep``-separated folders; may be empty).

    Returns:
        The same folders in the same order, then those of `SYSTEM_PATH` it lacked.
    """
    parts = [p for p in path.split(os.pathsep) if p]
    parts += [p for p in SYSTEM_PATH.split(":") if p not in parts]
    return os.pathsep.join(parts)


def find_program(name: str) -> Optional[str]:
    """Find a program on PATH or in the system folders root's PATH has."""
    return shutil.which(name, path=with_system_path(os.environ.get("PATH", "")))



def log_tail(path: Path, offset: int = 0, lines: int = 20) -> str:
    """The last `lines` lines written to `path` after byte `offset`."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", errors="replace")
    except OSError as error:
        return f"(cannot read {path}: {error})"
    kept = text.splitlines()[-lines:]
    return "\n".join(kept) if kept else "(nothing was written)"

