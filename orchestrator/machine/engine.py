"""The run-time connection to a Docker engine: which one, whether it answers, and why not.

Every run reaches its Docker engine through `connect` (or `ensure_engine`,
which may first have one started). Everything here turns "Docker is not there"
into a `DockerEngineUnavailableError` that says what was tried and what to do,
fitting the engine: rootful or rootless Docker, Podman, an engine chosen by a
docker context, a socket this user may not use (the ``docker`` group), instead
of a docker-py or requests traceback.

Which engine: the one the ``docker`` command would use (``DOCKER_HOST``, else
``DOCKER_CONTEXT``, else the CLI's current ``docker context``, else the default
socket; `resolve_target`), for the orchestrator and, through ``DOCKER_HOST``
set in the process, for ZenML's image build (`use_context_engine_everywhere`).
What kind of engine answers (rootful or rootless Docker, Podman) is read by
`read_engine_facts` and judged in `orchestrator.machine.engine_facts`.

When no engine answers, `ensure_engine` decides whether starting the system
engine here could help (root on Debian, no other engine chosen), has it
installed and started by the root set-up tools (`orchestrator.machine.root_setup`),
and waits for it to answer.

Run ``python -m orchestrator.machine.engine`` to start an engine if needed and print its
version, kind and the reason it was chosen.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, MutableMapping, Optional, Sequence

import docker
import docker.constants
import requests

from orchestrator.errors import DockerEngineUnavailableError
from orchestrator.machine.commands import Log, log_tail
from orchestrator.machine.engine_facts import EngineFacts, engine_facts, is_podman
from orchestrator.machine.root_setup import (
    DEFAULT_HOST,
    DaemonLayout,
    install_docker_if_missing,
    is_root_on_debian,
    remove_stale_pid_files,
    start_dockerd,
)

_HOW_TO_START = (
    "To start one: on a Debian machine, as root, run "
    "`python -m orchestrator.machine.engine` (it installs and starts Docker if needed); "
    "on macOS or Windows start Docker Desktop; on another Linux machine run "
    "`sudo systemctl start docker`."
)


# --------------------------------------------------------------------------
# Connecting
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineTarget:
    """The engine a client talks to, and why that one (for messages and for ZenML's build).

    Attributes:
        host: the engine's address (``unix://...``, ``tcp://...``, ``ssh://...``).
        source: what chose it: ``DOCKER_HOST``, ``DOCKER_CONTEXT``, ``docker context``
            (the CLI's current context) or ``default``.
        context: the docker context's name, when a context chose it.
        tls_dir: the context's TLS files (``ca.pem``, ``cert.pem``, ``key.pem``), if any.
        skip_tls_verify: the context says not to verify the engine's certificate.
    """

    host: str
    source: str
    context: Optional[str] = None
    tls_dir: Optional[str] = None
    skip_tls_verify: bool = True

    def describe(self) -> str:
        """``ADDRESS (from ...)``, as error messages say it."""
        if self.source == "DOCKER_HOST":
            return f"{self.host} (from DOCKER_HOST)"
        if self.source == "DOCKER_CONTEXT":
            return f"{self.host} (docker context '{self.context}', from DOCKER_CONTEXT)"
        if self.source == "docker context":
            return f"{self.host} (docker context '{self.context}', the CLI's current context)"
        return f"{self.host} (the default; DOCKER_HOST is not set, no docker context chosen)"


def docker_config_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The Docker CLI's configuration folder (``DOCKER_CONFIG``, else ``~/.docker``)."""
    configured = environ.get("DOCKER_CONFIG")
    return Path(configured) if configured else Path(os.path.expanduser("~")) / ".docker"


def resolve_target(environ: Mapping[str, str] = os.environ) -> EngineTarget:
    """Which engine the ``docker`` command would use here, in the CLI's own order.

    ``DOCKER_HOST``, else the context named by ``DOCKER_CONTEXT``, else the
    CLI's current context (``docker context use``, kept in ``config.json``),
    else the default socket. docker-py's `docker.from_env` reads only
    ``DOCKER_HOST``, so without this a user whose CLI talks to a rootless,
    Podman or remote context would get the orchestrator on another engine.

    Raises:
        DockerEngineUnavailableError: the chosen context does not exist or
            cannot be read; the message says which and what to do.
    """
    if environ.get("DOCKER_HOST"):
        return EngineTarget(environ["DOCKER_HOST"], "DOCKER_HOST")
    config_dir = docker_config_dir(environ)
    name, source = environ.get("DOCKER_CONTEXT"), "DOCKER_CONTEXT"
    if not name:
        name, source = _current_context_name(config_dir), "docker context"
    if not name or name == "default":
        return EngineTarget(DEFAULT_HOST, "default")
    return _context_target(config_dir, name, source)


def _current_context_name(config_dir: Path) -> Optional[str]:
    try:
        config = json.loads((config_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return config.get("currentContext") if isinstance(config, dict) else None


def _context_target(config_dir: Path, name: str, source: str) -> EngineTarget:
    """The engine of docker context `name` (the CLI's files; docker-py's context id)."""
    from docker.context.config import get_context_id

    context_id = get_context_id(name)
    meta_file = config_dir / "contexts" / "meta" / context_id / "meta.json"
    chosen_by = ("DOCKER_CONTEXT" if source == "DOCKER_CONTEXT"
                 else f"the CLI's current context in {config_dir / 'config.json'}")
    try:
        meta = json.loads(meta_file.read_text())
        endpoint = meta["Endpoints"]["docker"]
        host = str(endpoint["Host"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DockerEngineUnavailableError(
            f"The docker context '{name}' (chosen by {chosen_by}) cannot be read "
            f"({meta_file}: {error}). List the contexts with `docker context ls`; pick an "
            "existing one with `docker context use NAME` (or unset DOCKER_CONTEXT), or set "
            "DOCKER_HOST to the engine's address.") from error
    tls_dir = config_dir / "contexts" / "tls" / context_id / "docker"
    return EngineTarget(host, source, name, str(tls_dir) if tls_dir.is_dir() else None,
                        bool(endpoint.get("SkipTLSVerify", True)))


def engine_environment(target: EngineTarget) -> Dict[str, str]:
    """The ``DOCKER_*`` variables that make `docker.from_env` reach `target`.

    ZenML's image builder (`zenml.container_engines.DockerContainerEngine`)
    builds with `docker.from_env()`; with these set in the process it builds
    on the same engine as the orchestrator runs.
    """
    variables = {"DOCKER_HOST": target.host}
    if target.tls_dir:
        variables["DOCKER_CERT_PATH"] = target.tls_dir
        if not target.skip_tls_verify:
            variables["DOCKER_TLS_VERIFY"] = "1"
    return variables


def use_context_engine_everywhere(environ: MutableMapping[str, str] = os.environ) -> EngineTarget:
    """Make everything in this process that reads ``DOCKER_HOST`` use the resolved engine.

    When a docker context (not ``DOCKER_HOST``) chose the engine, sets
    ``DOCKER_HOST`` (and the TLS variables) in `environ`, so that ZenML's
    image build, docker-py's `from_env` and ``docker`` commands we start all
    use the engine the CLI uses. Nothing changes when ``DOCKER_HOST`` is set
    or no context is chosen.
    """
    target = resolve_target(environ)
    if target.context is not None:
        environ.update(engine_environment(target))
    return target


def _client_for(target: EngineTarget, timeout: float) -> docker.DockerClient:
    if target.source == "DOCKER_HOST":
        return docker.from_env(timeout=timeout)  # honours DOCKER_TLS_VERIFY, DOCKER_CERT_PATH
    return docker.DockerClient(base_url=target.host, timeout=timeout, tls=_tls_config(target))


def _tls_config(target: EngineTarget) -> Any:
    if not target.tls_dir:
        return False
    from docker.tls import TLSConfig

    folder = Path(target.tls_dir)
    cert = (str(folder / "cert.pem"), str(folder / "key.pem"))
    ca = folder / "ca.pem"
    return TLSConfig(client_cert=cert if Path(cert[0]).exists() else None,
                     ca_cert=str(ca) if ca.exists() else None,
                     verify=not target.skip_tls_verify)


def connect(timeout: float = 10, base_url: Optional[str] = None) -> docker.DockerClient:
    """Return a Docker client whose engine answers `ping()`.

    Args:
        timeout: seconds to wait for the engine to answer. It only bounds this
            check: the returned client uses docker-py's normal timeout, so
            that long calls made with it later (builds, waits) are not cut
            short.
        base_url: engine address such as ``unix:///var/run/docker.sock``. When
            not given, the engine the ``docker`` command would use
            (`resolve_target`: ``DOCKER_HOST``, ``DOCKER_CONTEXT``, the
            current docker context, the default socket).

    Returns:
        A connected client.

    Raises:
        DockerEngineUnavailableError: nothing answers; the message names the
            engine and the context tried, and what to do about it.
    """
    target = resolve_target() if base_url is None else EngineTarget(base_url, "given")
    try:
        client = _client_for(target, timeout)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as error:
        raise DockerEngineUnavailableError(_unavailable_message(target, error)) from error
    client.api.timeout = docker.constants.DEFAULT_TIMEOUT_SECONDS
    return client


@contextlib.contextmanager
def api_timeout(client: docker.DockerClient, seconds: Optional[float]) -> Iterator[None]:
    """Use another HTTP timeout for the calls made with `client` inside the block.

    docker-py takes the timeout of most calls from the client; a pull that
    never answers must not hang for long, an import of a large tar must not
    be cut short.

    Args:
        client: the client whose calls get the timeout.
        seconds: the timeout of each HTTP call; None waits for ever.
    """
    previous = client.api.timeout
    client.api.timeout = seconds
    try:
        yield
    finally:
        client.api.timeout = previous


def describe_target(base_url: Optional[str] = None) -> str:
    """Say which engine address a client would try, and why that one."""
    if base_url is not None:
        return base_url
    try:
        return resolve_target().describe()
    except DockerEngineUnavailableError as error:
        return str(error)


def engine_kind_of_address(host: str) -> str:
    """Guess, from an address alone, what kind of engine should answer there.

    Returns:
        ``rootless-docker``, ``podman``, ``remote`` or ``rootful-docker``.
    """
    if "podman" in host:
        return "podman"
    if host.startswith(("tcp://", "ssh://", "http://", "https://")):
        return "remote"
    if "/run/user/" in host or "rootless" in host:
        return "rootless-docker"
    return "rootful-docker"


def own_engine_sockets(environ: Optional[Mapping[str, str]] = None) -> List[str]:
    """Addresses of the sockets a rootless Docker or Podman of this user would listen
    on (in ``$XDG_RUNTIME_DIR``, else ``/run/user/<uid>``), where such a socket exists."""
    environ = os.environ if environ is None else environ
    runtime = Path(environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}")
    return [f"unix://{runtime / name}" for name in ("docker.sock", "podman/podman.sock",
                                                     "podman.sock")
            if (runtime / name).exists()]


def advice_for(target: EngineTarget, permission_denied: bool) -> str:
    """What to do when `target` does not answer, fitting the kind of engine it is,
    what chose it (DOCKER_HOST, DOCKER_CONTEXT, the CLI's context) and the engine
    sockets this user has."""
    kind = engine_kind_of_address(target.host)
    if kind == "podman":
        hint = ("This looks like Podman's Docker-compatible service: start it as the user "
                f"who owns it with `podman system service --time=0 {target.host} &` (or "
                "`systemctl --user start podman.socket`).")
    elif kind == "rootless-docker":
        hint = ("This looks like a rootless Docker engine: start it as its user with "
                "`dockerd-rootless.sh &` (XDG_RUNTIME_DIR set), or `systemctl --user start "
                "docker`.")
    elif kind == "remote":
        hint = (f"This engine is reached over the network ({target.host}): check that it "
                f"runs and that this machine can reach it (`docker -H {target.host} info`).")
    elif _normal_host(target.host) == _normal_host(DEFAULT_HOST):
        hint = _HOW_TO_START
        if permission_denied:
            hint = ("The engine's socket exists but this user may not use it: run as "
                    "root, or add the user to the `docker` group "
                    "(`sudo usermod -aG docker $USER`, then log in again). " + hint)
    else:  # a local socket that is not the system engine's: starting that would not help
        hint = (f"{target.host} is not the system engine's socket: start the engine that "
                "should listen there.")
    if kind != "rootful-docker" and permission_denied:
        hint = ("This user may not use that socket: it belongs to another user's engine. "
                + hint)
    own = [socket for socket in own_engine_sockets()
           if _normal_host(socket) != _normal_host(target.host)]
    if own:
        hint += (f" This user has engine sockets of their own ({', '.join(own)}: rootless "
                 f"Docker or Podman): to use one, `export DOCKER_HOST={own[0]}` (this shell)")
        if target.source in ("DOCKER_HOST", "DOCKER_CONTEXT"):
            hint += "."
        else:
            hint += (f", or `docker context create mine --docker host={own[0]}` then "
                     "`docker context use mine` (every shell, and the `docker` command).")
    if target.source == "DOCKER_CONTEXT":
        hint += (f" DOCKER_CONTEXT='{target.context}' chose this engine (`docker context use` "
                 "has no effect while it is set): unset DOCKER_CONTEXT, or set it to another "
                 "context (`docker context ls` lists them).")
    elif target.context is not None:
        hint += (f" The docker context '{target.context}' chose this engine: to use another, "
                 "`docker context use NAME` (`docker context ls` lists them; `default` is "
                 "the system engine), or set DOCKER_HOST.")
    elif target.source == "DOCKER_HOST":
        hint += " DOCKER_HOST chose this engine: unset it to use the docker context or the default."
    return hint


def _unavailable_message(target: EngineTarget, error: BaseException) -> str:
    """Build the message for an engine that does not answer."""
    denied = isinstance(_root_os_error(error), PermissionError)
    return (
        f"No Docker engine answers at {target.describe() if target.source != 'given' else target.host}: "
        f"{_short_reason(error)}. {advice_for(target, denied)}"
    )


def _error_chain(error: BaseException) -> Iterator[BaseException]:
    """The error and the errors it was raised from, outermost first."""
    seen = set()
    current: Optional[BaseException] = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _root_os_error(error: BaseException) -> Optional[OSError]:
    """The innermost operating system error behind a docker-py error, if any."""
    found = [
        e
        for e in _error_chain(error)
        # requests' errors are OSErrors too, but say nothing about the cause.
        if isinstance(e, OSError) and not isinstance(e, requests.exceptions.RequestException)
    ]
    return found[-1] if found else None


def _short_reason(error: BaseException) -> str:
    """One readable line instead of docker-py's long nested error text."""
    if any(isinstance(e, requests.exceptions.Timeout) for e in _error_chain(error)):
        return "it did not answer in time"
    root = _root_os_error(error)
    if isinstance(root, FileNotFoundError):
        return "the socket does not exist"
    if isinstance(root, ConnectionRefusedError):
        return "nothing listens there (connection refused)"
    if root is not None and root.strerror:
        return root.strerror
    return " ".join(str(error).split())[:300]


def read_engine_facts(client: docker.DockerClient) -> EngineFacts:
    """Ask an engine what kind it is (rootless? Podman? which limits hold?).

    Reads ``/info`` and ``/version``; for Podman also its own
    ``/v4.0.0/libpod/info``, which tells the truth about rootless mode and
    delegated cgroup controllers where the Docker-compatible answer does not.
    The answer is kept per client (one engine does not change its kind).
    """
    cached = getattr(client, "_my_docker_engine_facts", None)
    if cached is not None:
        return cached
    info = client.info()
    version = client.version()
    libpod = None
    if is_podman(version):
        try:
            answer = client.api.get(f"{client.api.base_url}/v4.0.0/libpod/info", timeout=10)
            if answer.ok:
                libpod = answer.json()
        except (requests.exceptions.RequestException, ValueError):
            libpod = None
    facts = engine_facts(info, version, libpod, address=_client_address(client))
    try:
        client._my_docker_engine_facts = facts  # type: ignore[attr-defined]
    except AttributeError:
        pass
    return facts


def _client_address(client: docker.DockerClient) -> str:
    base = str(client.api.base_url)
    if base.startswith("http+docker://"):  # a unix socket: docker-py hides its path
        adapter = client.api.adapters.get("http+docker://")
        socket_path = getattr(adapter, "socket_path", None)
        return f"unix://{socket_path}" if socket_path else base
    return base


# --------------------------------------------------------------------------
# Starting the engine when none answers (the root set-up itself: root_setup)
# --------------------------------------------------------------------------


def ensure_engine(
    wait_seconds: float = 60,
    log: Log = print,
    layout: Optional[DaemonLayout] = None,
) -> docker.DockerClient:
    """Return a client to a Docker engine, starting one if we can.

    Uses a running engine if one answers. Otherwise, as root on Debian,
    installs ``docker.io`` if needed and starts `dockerd` detached, so it keeps
    running after this process ends (there is no systemd to start it; the
    set-up is `orchestrator.machine.root_setup`'s), then waits for it to answer.

    Args:
        wait_seconds: how long to wait for a started daemon to answer.
        log: where progress lines go.
        layout: where the daemon listens and keeps its files; the default is
            the standard place (and then ``DOCKER_HOST`` is honoured).

    Returns:
        A connected client.

    Raises:
        DockerEngineUnavailableError: no engine answers and none could be
            started; the message says what to do.
    """
    base_url = layout.host if layout is not None else None
    try:
        return connect(timeout=5, base_url=base_url)
    except DockerEngineUnavailableError as error:
        first_error = error
    layout = layout or DaemonLayout()
    _check_we_can_start(layout, first_error)
    log(f"No Docker engine answers at {describe_target(base_url)}; starting one.")
    install_docker_if_missing(log)
    live_pid = remove_stale_pid_files(layout, log)
    log_offset = layout.log_size()  # the tail of a failure starts here
    process = None
    if live_pid is None:
        process = start_dockerd(layout, log)
    else:
        log(f"dockerd (pid {live_pid}) is already running; waiting for it to answer.")
    return _wait_for_engine(layout, process, wait_seconds, log_offset, log)


def _check_we_can_start(layout: DaemonLayout, error: DockerEngineUnavailableError) -> None:
    """Raise if starting a local daemon is not possible or would not help."""
    docker_host = os.environ.get("DOCKER_HOST")
    if layout == DaemonLayout() and docker_host and _normal_host(docker_host) != _normal_host(DEFAULT_HOST):
        raise DockerEngineUnavailableError(
            f"{error} DOCKER_HOST points at {docker_host}, so starting the system "
            "engine would not help: start the engine there, or unset DOCKER_HOST."
        ) from error
    target = resolve_target()
    if layout == DaemonLayout() and target.context is not None and \
            _normal_host(target.host) != _normal_host(DEFAULT_HOST):
        raise DockerEngineUnavailableError(
            f"{error} The docker context '{target.context}' points at {target.host}, so "
            "starting the system engine would not help: start the engine there, or "
            + ("unset DOCKER_CONTEXT." if target.source == "DOCKER_CONTEXT"
               else "`docker context use default`.")
        ) from error
    if sys.platform == "darwin":
        raise DockerEngineUnavailableError(
            f"{error} On macOS: start Docker Desktop (open -a Docker), wait until "
            "it says it is running, then try again."
        ) from error
    if not is_root_on_debian():
        why = "not root" if hasattr(os, "geteuid") and os.geteuid() != 0 else "not Debian"
        raise DockerEngineUnavailableError(
            f"{error} Cannot start one from here ({why}): run "
            "`sudo systemctl start docker`, or on Debian without systemd "
            "`sudo python -m orchestrator.machine.engine`."
        ) from error


def _normal_host(host: str) -> str:
    """Compare engine addresses regardless of the /run vs /var/run spelling."""
    return host.replace("unix:///var/run/", "unix:///run/").rstrip("/")


def _wait_for_engine(
    layout: DaemonLayout,
    process: Optional[subprocess.Popen],
    wait_seconds: float,
    log_offset: int,
    log: Log,
) -> docker.DockerClient:
    """Poll the engine until it answers, it dies, or time runs out."""
    start = time.monotonic()
    next_report = start + 5
    while True:
        try:
            client = connect(timeout=2, base_url=layout.host)
        except DockerEngineUnavailableError:
            client = None
        if client is not None:
            log(f"Docker engine answers after {time.monotonic() - start:.1f} s.")
            return client
        now = time.monotonic()
        if process is not None and process.poll() is not None:
            raise DockerEngineUnavailableError(
                f"dockerd exited with code {process.returncode} before answering. "
                f"Last lines of {layout.log_file}:\n{log_tail(layout.log_file, log_offset)}"
            )
        if now - start >= wait_seconds:
            raise DockerEngineUnavailableError(
                f"dockerd did not answer at {layout.host} within {wait_seconds:.0f} s. "
                f"Last lines of {layout.log_file}:\n{log_tail(layout.log_file, log_offset)}"
            )
        if now >= next_report:
            log(f"  ... waiting for dockerd ({now - start:.0f} s)")
            next_report = now + 5
        time.sleep(0.5)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line: make sure an engine answers and print its version."""
    del argv  # no options
    try:
        client = ensure_engine()
        version = client.version()
    except DockerEngineUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        print(f"error: the Docker engine answered, then failed: {error}", file=sys.stderr)
        return 1
    facts = read_engine_facts(client)
    print(
        f"Docker engine {version.get('Version', '?')} is running at {describe_target()} "
        f"(API {version.get('ApiVersion', '?')}): {facts.name.split(' at ')[0]}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
