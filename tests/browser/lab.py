"""A private JupyterLab server for browser tests, started and stopped by the test.

It listens on loopback only, on a free port, behind a random token, serves
one folder, and keeps its configuration, runtime files and workspaces in a
temporary folder so that nothing of the user's own Jupyter setup is read or
changed. Every kernel it starts is shut down with it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

# JupyterLab plugins that pop up notices over the page: not what we test.
QUIET_PLUGINS = {"@jupyterlab/apputils-extension:announcements": True}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class JupyterLab:
    """`with JupyterLab(root, state_dir, env) as lab: page.goto(lab.url("x.ipynb"))`."""

    def __init__(self, root_dir: Path, state_dir: Path, env: Mapping[str, str],
                 start_timeout: float = 120) -> None:
        self.root_dir = Path(root_dir)
        self.state_dir = Path(state_dir)
        self.env = dict(env)
        self.start_timeout = start_timeout
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.log_path = self.state_dir / "jupyterlab.log"
        self.process: Optional[subprocess.Popen] = None

    # -- addresses -------------------------------------------------------------
    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, notebook: str) -> str:
        return f"{self.base}/lab/tree/{notebook}?token={self.token}"

    def api(self, path: str, method: str = "GET", timeout: float = 10) -> Any:
        request = urllib.request.Request(
            f"{self.base}/api/{path}", method=method,
            headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    # -- life ------------------------------------------------------------------
    def __enter__(self) -> "JupyterLab":
        config = self.state_dir / "config"
        (config / "labconfig").mkdir(parents=True, exist_ok=True)
        (config / "labconfig" / "page_config.json").write_text(
            json.dumps({"disabledExtensions": QUIET_PLUGINS}))
        env = dict(self.env)
        env.update(
            JUPYTER_CONFIG_DIR=str(config),
            JUPYTER_RUNTIME_DIR=str(self.state_dir / "runtime"),
            JUPYTER_DATA_DIR=str(self.state_dir / "data"),
            JUPYTERLAB_WORKSPACES_DIR=str(self.state_dir / "workspaces"),
        )
        command = [
            sys.executable, "-m", "jupyterlab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}", "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                        env=env, cwd=self.root_dir, start_new_session=True)
        log.close()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode} while "
                                   f"starting:\n{self.log_tail()}")
            try:
                self.api("status", timeout=2)
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.5)
        self.__exit__(None, None, None)
        raise RuntimeError(f"JupyterLab did not answer within {self.start_timeout:.0f} s:\n"
                           f"{self.log_tail()}")

    def kernels(self) -> list:
        try:
            return self.api("kernels")
        except Exception:  # noqa: BLE001 - the server is going away
            return []

    def __exit__(self, *exc_info: Any) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        for kernel in self.kernels():
            try:
                self.api(f"kernels/{kernel['id']}", method="DELETE", timeout=30)
            except Exception:  # noqa: BLE001
                pass
        try:
            self.api("shutdown", method="POST", timeout=10)
        except Exception:  # noqa: BLE001
            pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def notebook_env(base: Mapping[str, str], project_dir: Path,
                 extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The server's (and so its kernels') environment: the test session's ZenML store
    (ZENML_CONFIG_PATH, inherited) and project folder (ZENML_REPOSITORY_PATH)."""
    env = dict(base)
    env.update(ZENML_REPOSITORY_PATH=str(project_dir), ZENML_ANALYTICS_OPT_IN="false",
               ZENML_LOGGING_COLORS_DISABLED="true", PYTHONUNBUFFERED="1")
    env.update(extra or {})
    if "ZENML_CONFIG_PATH" not in env:
        raise RuntimeError("ZENML_CONFIG_PATH is not set: the notebook would use the "
                           "user's own ZenML store.")
    return env
