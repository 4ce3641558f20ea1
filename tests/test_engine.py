"""Tests for `orchestrator.machine.engine`, against real Docker engines.

The shared engine on /var/run/docker.sock is only used, never stopped: other
people use it at the same time. Starting an engine is tested with a private
second dockerd (own socket, pid file, state and data folders, no networking),
which is stopped again at the end of the test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import docker
import pytest

from orchestrator.errors import DockerEngineUnavailableError
from orchestrator.machine import commands, engine, processes, root_setup

REPO_ROOT = Path(__file__).resolve().parents[1]


def _run_cli(env_changes: dict) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "DOCKER_HOST"}
    env.update(env_changes)
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.machine.engine"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --------------------------------------------------------------------------
# connect
# --------------------------------------------------------------------------


@pytest.mark.engine
def test_connect_returns_a_client_that_answers() -> None:
    client = engine.connect()
    assert client.ping() is True
    # The short check timeout must not stick to the client used for long calls.
    assert client.api.timeout == docker.constants.DEFAULT_TIMEOUT_SECONDS


def test_connect_to_nothing_says_what_was_tried_and_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/nothing.sock")
    with pytest.raises(DockerEngineUnavailableError) as caught:
        engine.connect(timeout=2)
    message = str(caught.value)
    assert "unix:///tmp/nothing.sock" in message
    assert "DOCKER_HOST" in message
    # Not the system engine's socket: starting the system engine would not help.
    assert "start the engine that should listen there" in message
    assert "systemctl start docker" not in message and "unset it" in message
    # The docker-py error is kept as the cause, not shown as the message.
    assert isinstance(caught.value.__cause__, docker.errors.DockerException)


def test_connect_with_base_url_where_nothing_listens() -> None:
    with pytest.raises(DockerEngineUnavailableError, match="connection refused"):
        engine.connect(timeout=2, base_url="tcp://127.0.0.1:1")


def test_ensure_engine_does_not_start_a_local_engine_for_a_remote_docker_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/nothing.sock")
    with pytest.raises(DockerEngineUnavailableError, match="unset DOCKER_HOST"):
        engine.ensure_engine(wait_seconds=1, log=lambda line: None)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


@pytest.mark.engine
def test_cli_prints_the_engine_version() -> None:
    result = _run_cli({})
    assert result.returncode == 0, result.stderr
    version = docker.from_env().version()["Version"]
    assert version in result.stdout


def test_cli_error_is_a_message_not_a_traceback() -> None:
    result = _run_cli({"DOCKER_HOST": "unix:///tmp/nothing.sock"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "No Docker engine answers at unix:///tmp/nothing.sock" in result.stderr


# --------------------------------------------------------------------------
# Stale pid files (pure logic)
# --------------------------------------------------------------------------

PROCESSES = {100: "dockerd", 200: "containerd", 300: "bash"}


def _name_of(pid: int):
    return PROCESSES.get(pid)


@pytest.mark.parametrize(
    ("content", "expected_name", "stale"),
    [
        (None, "dockerd", False),  # no pid file: nothing to remove
        ("100\n", "dockerd", False),  # names a live dockerd
        ("200", "containerd", False),  # names a live containerd
        ("999\n", "dockerd", True),  # no such process
        ("300\n", "dockerd", True),  # pid reused by another program
        ("100", "containerd", True),  # a dockerd is not a containerd
        ("", "dockerd", True),  # empty file
        ("garbage", "dockerd", True),
        ("0", "dockerd", True),
        ("-5", "dockerd", True),
    ],
)
def test_pid_file_is_stale(content, expected_name: str, stale: bool) -> None:
    assert root_setup.pid_file_is_stale(content, _name_of, expected_name) is stale


def test_process_name_of_this_process_and_of_no_process() -> None:
    assert processes.process_name(os.getpid()) == Path(f"/proc/{os.getpid()}/comm").read_text().strip()
    assert processes.process_name(2**22 + 12345) is None


def test_log_tail_shows_only_new_lines(tmp_path: Path) -> None:
    log = tmp_path / "dockerd.log"
    log.write_text("old 1\nold 2\n")
    offset = log.stat().st_size
    with log.open("a") as handle:
        handle.write("".join(f"new {i}\n" for i in range(30)))
    tail = commands.log_tail(log, offset, lines=20)
    assert "old" not in tail
    assert tail.splitlines() == [f"new {i}" for i in range(10, 30)]


def test_line_condenser_shows_new_kinds_and_keeps_a_tail() -> None:
    shown = []
    condenser = commands.LineCondenser(shown.append, prefix="", interval=3600, keep=3)
    for line in ["I: Retrieving a", "I: Retrieving b", "I: Validating a", "", "I: Validating b"]:
        condenser.feed(line)
    assert shown == ["I: Retrieving a", "I: Validating a"]
    assert list(condenser.tail) == ["I: Retrieving b", "I: Validating a", "I: Validating b"]


def test_line_condenser_strips_colour_codes_and_shortens_the_tail() -> None:
    condenser = commands.LineCondenser(lambda line: None)
    condenser.feed("\x1b[91mERROR: " + "x" * 1000 + "\x1b[0m\n")
    (line,) = condenser.tail
    assert line.startswith("ERROR: x") and "\x1b" not in line and len(line) < 450


def test_daemon_layout_passes_only_non_default_settings() -> None:
    assert root_setup.DaemonLayout().command() == ["dockerd"]
    private = root_setup.DaemonLayout(pid_file=Path("/x/docker.pid"), extra_args=("--bridge=none",))
    assert private.command() == ["dockerd", "--pidfile", "/x/docker.pid", "--bridge=none"]


# --------------------------------------------------------------------------
# Starting a daemon (a private one, beside the shared engine)
# --------------------------------------------------------------------------


@pytest.fixture
def private_layout() -> Iterator[root_setup.DaemonLayout]:
    """A dockerd layout of its own under a short /tmp path (socket paths are limited)."""
    root = Path(tempfile.mkdtemp(prefix="mdt-", dir="/tmp"))
    # A bridge of its own. Not `--bridge=none`: a dockerd started with it
    # deletes the docker0 interface, breaking the shared engine's networking.
    bridge = f"mdt{os.getpid() % 100000}"
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    layout = root_setup.DaemonLayout(
        host=f"unix://{root}/docker.sock",
        pid_file=root / "docker.pid",
        exec_root=root / "exec",
        data_root=root / "data",
        log_file=root / "dockerd.log",
        # No firewall rules: they would touch the shared engine's network.
        extra_args=(f"--bridge={bridge}", "--iptables=false", "--ip-masq=false"),
    )
    yield layout
    _stop_private_daemon(layout)
    subprocess.run(["ip", "link", "delete", bridge], check=False)
    shutil.rmtree(root, ignore_errors=True)


def _stop_private_daemon(layout: root_setup.DaemonLayout) -> None:
    """Stop the daemon the test started (by its pid) and wait until it is gone."""
    content = layout.pid_file.read_text().strip() if layout.pid_file.exists() else ""
    if not content.isdigit() or processes.process_name(int(content)) != "dockerd":
        return
    pid = int(content)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while processes.process_name(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    if processes.process_name(pid) is not None:
        os.kill(pid, signal.SIGKILL)
    mounts = Path("/proc/self/mounts").read_text()
    root = str(layout.pid_file.parent)
    for line in mounts.splitlines():
        point = line.split()[1]
        if point.startswith(root + "/"):
            subprocess.run(["umount", "--lazy", point], check=False)


@pytest.mark.needs_root  # a network interface and a second dockerd
def test_ensure_engine_starts_a_detached_daemon_despite_stale_pid_files(
    private_layout: root_setup.DaemonLayout,
) -> None:
    # Leftovers of a machine restored from a snapshot: pid files whose pids now
    # belong to unrelated processes (here: this test process).
    private_layout.pid_file.write_text(f"{os.getpid()}\n")
    private_layout.containerd_pid_file.parent.mkdir(parents=True)
    private_layout.containerd_pid_file.write_text(f"{os.getpid()}\n")
    lines = []

    client = engine.ensure_engine(wait_seconds=60, log=lines.append, layout=private_layout)

    assert client.ping() is True
    assert any("stale pid file" in line for line in lines)
    pid = int(private_layout.pid_file.read_text())
    assert processes.process_name(pid) == "dockerd"
    # Its own session, so it survives the end of the process that started it.
    assert os.getsid(pid) == pid != os.getsid(0)
    assert private_layout.log_file.stat().st_size > 0
    # dockerd started and manages its own containerd.
    containerd_pid = int(private_layout.containerd_pid_file.read_text())
    assert processes.process_name(containerd_pid) == "containerd"

    # A second call finds it running and starts nothing.
    lines.clear()
    engine.ensure_engine(wait_seconds=5, log=lines.append, layout=private_layout)
    assert lines == []


@pytest.mark.needs_root  # a network interface and a second dockerd
def test_ensure_engine_reports_the_log_when_dockerd_cannot_start(
    private_layout: root_setup.DaemonLayout,
) -> None:
    broken = root_setup.DaemonLayout(
        host=private_layout.host,
        pid_file=private_layout.pid_file,
        exec_root=private_layout.exec_root,
        data_root=private_layout.data_root,
        log_file=private_layout.log_file,
        extra_args=("--no-such-option",),
    )
    with pytest.raises(DockerEngineUnavailableError) as caught:
        engine.ensure_engine(wait_seconds=20, log=lambda line: None, layout=broken)
    message = str(caught.value)
    assert "dockerd exited" in message
    assert "no-such-option" in message  # from the daemon's log


# --------------------------------------------------------------------------
# docker context: the CLI's engine is the orchestrator's and ZenML's build's
# --------------------------------------------------------------------------


def _docker_cli(*args: str, config: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")}
    env["DOCKER_CONFIG"] = str(config)
    return subprocess.run(["docker", *args], env=env, check=True, capture_output=True,
                          text=True, timeout=60).stdout.strip()


def test_a_context_whose_engine_is_down_is_named_with_advice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _docker_cli("context", "create", "laptop", "--docker",
                "host=unix:///run/user/4242/docker.sock", config=tmp_path)
    _docker_cli("context", "use", "laptop", config=tmp_path)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    with pytest.raises(DockerEngineUnavailableError) as caught:
        engine.connect(timeout=2)
    message = str(caught.value)
    assert "unix:///run/user/4242/docker.sock" in message
    assert "docker context 'laptop'" in message and "docker context use" in message
    assert "dockerd-rootless.sh" in message  # a rootless engine's socket: its own advice
    assert "docker` group" not in message
    # Nor does ensure_engine start the system engine for it.
    with pytest.raises(DockerEngineUnavailableError, match="context 'laptop'"):
        engine.ensure_engine(wait_seconds=1, log=lambda line: None)


@pytest.mark.needs_root  # a network interface and a second dockerd
def test_the_current_context_chooses_the_engine_for_us_and_for_zenmls_build(
        private_layout: root_setup.DaemonLayout, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two engines (the shared one, a private one) and a context naming the private
    one: the orchestrator and ZenML's image build both use the context's engine."""
    from zenml.container_engines import get_container_engine
    from zenml.image_builders import BuildContext

    private = engine.ensure_engine(wait_seconds=60, log=lambda line: None, layout=private_layout)
    # Both daemons share /etc/docker's key (same ID): their data roots tell them apart.
    shared_id = docker.DockerClient(base_url=root_setup.DEFAULT_HOST).info()["DockerRootDir"]
    private_id = private.info()["DockerRootDir"]
    assert private_id != shared_id
    config = tmp_path / "docker-config"
    _docker_cli("context", "create", "second", "--docker", f"host={private_layout.host}",
                config=config)
    _docker_cli("context", "use", "second", config=config)
    # Recorded first as they are now, so that the end of the test restores them
    # (use_context_engine_everywhere below sets DOCKER_HOST in os.environ).
    monkeypatch.setenv("DOCKER_HOST", "unset-below")
    monkeypatch.delenv("DOCKER_HOST")
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(config))

    # The CLI, the orchestrator and our stack validator agree.
    assert _docker_cli("info", "--format", "{{.DockerRootDir}}", config=config) == private_id
    assert engine.connect().info()["DockerRootDir"] == private_id
    assert engine.describe_target().endswith("(docker context 'second', the CLI's current context)")

    # ZenML's image build (docker-py's from_env) lands on the same engine.
    target = engine.use_context_engine_everywhere()
    assert os.environ["DOCKER_HOST"] == private_layout.host == target.host
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM scratch\nLABEL io.my-docker.test=context\n")
    context = BuildContext()
    context.add_file(str(dockerfile), "Dockerfile")
    tag = f"my-docker-context-test:{os.getpid()}"
    get_container_engine().build(image_name=tag, build_context=context)
    assert private.images.get(tag).labels == {"io.my-docker.test": "context"}
    with pytest.raises(docker.errors.ImageNotFound):
        docker.DockerClient(base_url=root_setup.DEFAULT_HOST).images.get(tag)

    # DOCKER_CONTEXT wins over the current context, DOCKER_HOST over both.
    monkeypatch.setenv("DOCKER_CONTEXT", "default")
    monkeypatch.delenv("DOCKER_HOST")
    assert engine.connect().info()["DockerRootDir"] == shared_id
    monkeypatch.setenv("DOCKER_CONTEXT", "second")
    monkeypatch.setenv("DOCKER_HOST", root_setup.DEFAULT_HOST)
    assert engine.connect().info()["DockerRootDir"] == shared_id


@pytest.mark.engine
def test_the_shared_engine_is_rootful_docker_and_steps_keep_the_callers_ids() -> None:
    from orchestrator.running.planning import step_user

    client = engine.connect()
    facts = engine.read_engine_facts(client)
    assert (facts.product, facts.rootless, facts.memory_limit, facts.cpu_limit) == \
        ("Docker", False, True, True)
    assert facts.address == root_setup.DEFAULT_HOST
    assert step_user(client) == f"{os.getuid()}:{os.getgid()}"
