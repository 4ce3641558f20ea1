"""Root-only set-up of a Debian machine without systemd: packages and the system dockerd.

The machines this project runs on have no systemd: a Docker engine is either
already running, or it has to be installed (Debian's ``docker.io``) and started
by hand, detached from the process that starts it so that it outlives it. That
needs root, and is done here: installing Debian packages with apt-get
(`apt_install`, used for ``docker.io`` and for ``debootstrap``), where the
system dockerd listens and keeps its files (`DaemonLayout`), removing the pid
files a dead daemon left (`remove_stale_pid_files`), and starting dockerd
(`start_dockerd`).

Deciding whether to start an engine at all, and waiting for it to answer, is
the run-time connection's part (`orchestrator.machine.engine.ensure_engine`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Tuple

from orchestrator.errors import DockerEngineUnavailableError
from orchestrator.machine.commands import Log, find_program, run_command, with_system_path
from orchestrator.machine.processes import process_name

# Where the system engine listens: dockerd's default, and the Docker CLI's.
DEFAULT_HOST = "unix:///var/run/docker.sock"
DEBIAN_VERSION_FILE = Path("/etc/debian_version")

# Daemons started by this process. Keeping a reference stops Python from
# warning that a subprocess is "still running" when the Popen object is
# garbage collected: the daemon is meant to outlive us.
_started_daemons: List[subprocess.Popen] = []


@dataclass(frozen=True)
class DaemonLayout:
    """Where a `dockerd` started by `start_dockerd` (for `ensure_engine`) listens and keeps its files.

    The defaults are Debian's standard places, which is what users and CI need.
    Other values exist so that a test can start a private second daemon without
    disturbing the engine other people are using on the same machine.

    Attributes:
        host: address the daemon listens on and clients connect to.
        pid_file: the daemon's pid file (a stale one makes dockerd refuse to start).
        exec_root: the daemon's state folder; its managed containerd keeps a pid
            file in ``<exec_root>/containerd``.
        data_root: where images and containers are stored.
        log_file: the daemon's stdout and stderr are appended here.
        extra_args: further dockerd command line arguments.
    """

    host: str = DEFAULT_HOST
    pid_file: Path = Path("/var/run/docker.pid")
    exec_root: Path = Path("/var/run/docker")
    data_root: Path = Path("/var/lib/docker")
    log_file: Path = Path("/var/log/dockerd.log")
    extra_args: Tuple[str, ...] = ()

    @property
    def containerd_pid_file(self) -> Path:
        """Pid file of the containerd that dockerd starts and manages itself."""
        return self.exec_root / "containerd" / "containerd.pid"

    def command(self) -> List[str]:
        """The dockerd command line.

        Only settings that differ from dockerd's defaults are passed, so that
        for the standard layout an /etc/docker/daemon.json still applies
        (dockerd refuses flags that repeat a daemon.json setting).
        """
        defaults = DaemonLayout()
        args = ["dockerd"]
        if self.host != defaults.host:
            args += ["--host", self.host]
        if self.pid_file != defaults.pid_file:
            args += ["--pidfile", str(self.pid_file)]
        if self.exec_root != defaults.exec_root:
            args += ["--exec-root", str(self.exec_root)]
        if self.data_root != defaults.data_root:
            args += ["--data-root", str(self.data_root)]
        return args + list(self.extra_args)

    def log_size(self) -> int:
        """Bytes in the daemon's log file now (0 when there is none yet): where
        the lines of a daemon started next begin."""
        try:
            return self.log_file.stat().st_size
        except OSError:
            return 0


def is_root_on_debian() -> bool:
    """Whether we may install and start system software the Debian way."""
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "geteuid")
        and os.geteuid() == 0
        and DEBIAN_VERSION_FILE.exists()
    )


def apt_install(packages: Iterable[str], log: Log) -> Tuple[bool, List[str]]:
    """Install Debian packages with apt-get, showing progress.

    Returns:
        Whether it worked, and the last output lines.
    """
    packages = list(packages)
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    log("Running apt-get update ...")
    code, tail = run_command(["apt-get", "update"], log, env=env)
    if code != 0:
        return False, tail
    log(f"Running apt-get install -y {' '.join(packages)} ...")
    code, tail = run_command(["apt-get", "install", "-y", *packages], log, env=env)
    return code == 0, tail


# --------------------------------------------------------------------------
# Stale pid files
# --------------------------------------------------------------------------


def pid_file_is_stale(
    content: Optional[str],
    process_name: Callable[[int], Optional[str]],
    expected_name: str,
) -> bool:
    """Decide whether a daemon's pid file is left over from a dead daemon.

    Pure function, so that the decision can be tested without processes.
    A pid file whose pid now belongs to an unrelated process is stale too: the
    machine may have been restored from a snapshot where /var/run survives,
    and dockerd would refuse to start (or trust a dead containerd) because of it.

    Args:
        content: the pid file's text, or None if there is no pid file.
        process_name: returns the command name of a live pid, None if no
            process has that pid.
        expected_name: the daemon's command name, e.g. ``dockerd``.

    Returns:
        True if the file exists and does not name a live `expected_name`.
    """
    if content is None:
        return False
    text = content.strip()
    if not text.isdigit() or int(text) <= 0:
        return True
    return process_name(int(text)) != expected_name


def _read_pid_file(path: Path) -> Optional[str]:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def remove_stale_pid_files(layout: DaemonLayout, log: Log) -> Optional[int]:
    """Remove pid files left by dead daemons; return the pid of a live dockerd.

    When dockerd is alive nothing is touched: it supervises its containerd,
    and may be restarting it right now.

    Returns:
        The pid of a dockerd that is alive (then none must be started), or None.
    """
    content = _read_pid_file(layout.pid_file)
    if content is not None and not pid_file_is_stale(content, process_name, "dockerd"):
        return int(content.strip())
    for path, name in ((layout.pid_file, "dockerd"), (layout.containerd_pid_file, "containerd")):
        content = _read_pid_file(path)
        if pid_file_is_stale(content, process_name, name):
            log(f"Removing stale pid file {path} (no {name} runs with pid {content.strip()}).")
            path.unlink(missing_ok=True)
    return None


# --------------------------------------------------------------------------
# Installing and starting dockerd
# --------------------------------------------------------------------------


def install_docker_if_missing(log: Log) -> None:
    """Install Debian's docker.io (dockerd, containerd, runc) if dockerd is missing.

    Args:
        log: where progress lines go.

    Raises:
        DockerEngineUnavailableError: apt-get failed, or installed no dockerd;
            the message holds apt-get's last lines.
    """
    if find_program("dockerd"):
        return
    log("dockerd is not installed; installing Debian's docker.io (about 30 s).")
    ok, tail = apt_install(["docker.io"], log)
    if not ok or not find_program("dockerd"):
        raise DockerEngineUnavailableError(
            "Installing docker.io with apt-get failed; last output:\n"
            + "\n".join(tail)
            + "\nFix the problem above (network? apt sources?) and run "
            "`python -m orchestrator.machine.engine` again."
        )


def start_dockerd(layout: DaemonLayout, log: Log) -> subprocess.Popen:
    """Start dockerd in its own session, so that it outlives this process.

    dockerd starts and supervises its own containerd when none runs, so
    containerd is not started here.

    Args:
        layout: where it listens and keeps its files; its output is appended to
            ``layout.log_file``.
        log: where progress lines go.

    Returns:
        The started dockerd (kept, so that Python does not warn about it).

    Raises:
        DockerEngineUnavailableError: dockerd could not be started.
    """
    layout.log_file.parent.mkdir(parents=True, exist_ok=True)
    command = layout.command()
    log(f"Starting {' '.join(command)} (log: {layout.log_file}).")
    env = {**os.environ, "PATH": with_system_path(os.environ.get("PATH", ""))}
    with open(layout.log_file, "ab") as log_file:
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                env=env,
            )
        except OSError as error:
            raise DockerEngineUnavailableError(f"Could not start dockerd: {error}.") from error
    _started_daemons.append(process)
    return process

