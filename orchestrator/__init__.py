"""my_docker: a ZenML orchestrator flavor that runs each step in its own Docker container.

The names a user needs, importable from here::

    from orchestrator import MyDockerOrchestratorSettings, live_panel, watch_run

- settings: `MyDockerOrchestratorSettings` (``settings={"orchestrator": ...}``);
- watching runs: `live_panel`, `watch_run` (notebook panel), `read_status`,
  `follow_in_terminal` (text);
- setting up: `register_stack` (the four reference commands);
- errors: `MyDockerError` and its kinds.

The package, by responsibility (each subpackage's docstring lists its modules);
imports point down, with no cycle (`tests/test_layout.py`):

- `my_docker_orchestrator`, `my_swarm_orchestrator`: the flavors (ZenML's
  interface), glue only: they resolve what a run needs into plain data
  (`running.request`) and hand it down;
- `errors`: every error raised on purpose, each saying what to do;
- `running`: running a pipeline (planning, scheduler, containers, runner,
  dynamic and detached runs, reporting to ZenML);
- `status`: what a run's steps are doing (model, ZenML records, watcher,
  `fetch_status`, views);
- `swarm`: the `my_swarm` flavor's running code, on a Docker Swarm;
- `machine`: a Docker engine, the parent image, the registered stack, the
  local swarm, ZenML's local server;
- `conformance`: the conformance kit;
- `teaching`: notebook helpers, example pipelines, the demo.

Names are imported on first use: ZenML imports this package inside every
step container (to load the flavor), which must stay light.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "MyDockerOrchestratorSettings": "orchestrator.running.settings",
    "MyDockerOrchestratorFlavor": "orchestrator.my_docker_orchestrator",
    "live_panel": "orchestrator.status.widget",
    "watch_run": "orchestrator.status.widget",
    "read_status": "orchestrator.status.watcher",
    "follow_in_terminal": "orchestrator.status.cli",
    "register_stack": "orchestrator.machine.stack",
    "MyDockerError": "orchestrator.errors",
    "StepFailedError": "orchestrator.errors",
    "RunStoppedError": "orchestrator.errors",
    "InvalidSettingsError": "orchestrator.errors",
    "ImageNotFoundError": "orchestrator.errors",
    "DockerEngineUnavailableError": "orchestrator.errors",
    "StopRefused": "orchestrator.errors",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562)."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
    value = getattr(import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(_PUBLIC))
