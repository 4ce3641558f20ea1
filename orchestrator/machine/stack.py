"""The four reference commands, and `register_stack()`: the one way we register `my_stack`.

The demo, the notebooks, the tests and the benchmarks all register the stack
the way a user does, with the same four command lines; this module holds
them and runs them, either as `zenml` processes (exactly what a user types)
or inside this process (a new `zenml` process costs seconds just to import
ZenML, which adds up in a notebook).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

# The reference registration commands, exactly as a user types them.
REFERENCE_COMMANDS = (
    "zenml orchestrator flavor register orchestrator.my_docker_orchestrator.MyDockerOrchestratorFlavor",
    "zenml orchestrator register my_docker_orchestrator -f my_docker",
    "zenml stack register my_stack -o my_docker_orchestrator -a default",
    "zenml stack set my_stack",
)
STACK_NAME = "my_stack"
ORCHESTRATOR_NAME = "my_docker_orchestrator"
FLAVOR_NAME = "my_docker"

Echo = Callable[[str], None]


def zenml_executable() -> str:
    """The `zenml` command of this Python (not whichever is first on PATH)."""
    return str(Path(sys.executable).with_name("zenml"))


def run_zenml(command: str, cwd: Optional[Union[str, Path]] = None, *,
              in_process: bool = False, env: Optional[dict] = None) -> Any:
    """Run one ``zenml ...`` command line.

    Args:
        command: the command line, starting with ``zenml``.
        cwd: where to run it (a subprocess only; in-process runs in the
            current directory).
        in_process: call ZenML's command line interface in this process
            instead of starting `zenml`.
        env: the subprocess's environment (default: this process's).

    Returns:
        The completed process (subprocess) or the command's result (in-process).

    Raises:
        ValueError: the line does not start with ``zenml``.
        RuntimeError: the subprocess failed (with its output).
        Exception: in-process, whatever the command raised (ZenML's own error).
    """
    words = shlex.split(command)
    if not words or words[0] != "zenml":
        raise ValueError(f"not a zenml command line: {command!r}")
    if in_process:
        return _run_in_process(words[1:])
    result = subprocess.run([zenml_executable(), *words[1:]], cwd=cwd, env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"`{command}` failed ({result.returncode}):\n{result.stdout}{result.stderr}".rstrip())
    return result


def _run_in_process(arguments: Sequence[str]) -> Any:
    """ZenML's command line interface, called in this process.

    ZenML's `zenml` group, run outside a ZenML project (as `zenml init` is),
    makes the working directory the process's source root for good
    (`set_custom_source_root`): in a long-lived process every later pipeline
    run would pack that folder as its code, wherever it runs from. The source
    root is put back as it was.
    """
    import rich
    from zenml.cli.cli import cli
    from zenml.console import console
    from zenml.utils import source_utils

    # In a notebook, rich would render spinners as widgets; plain text reads
    # like the terminal and keeps the output in order.
    consoles = {id(c): c for c in (console, rich.get_console())}.values()
    previous = [(c, c.is_jupyter) for c in consoles]
    for c in consoles:
        c.is_jupyter = False
    source_root = source_utils._CUSTOM_SOURCE_ROOT
    try:
        return cli.main(list(arguments), prog_name="zenml", standalone_mode=False)
    finally:
        source_utils.set_custom_source_root(source_root)
        for c, was_jupyter in previous:
            c.is_jupyter = was_jupyter
        sys.stdout.flush()


def is_done(command: str) -> bool:
    """Whether what a reference command (or ``zenml init``) does is already done here."""
    from zenml.client import Client
    from zenml.enums import StackComponentType

    client = Client()
    if command == "zenml init":
        return (Path.cwd() / ".zen").exists()
    if command.startswith("zenml orchestrator flavor register"):
        try:
            client.get_flavor_by_name_and_type(FLAVOR_NAME, StackComponentType.ORCHESTRATOR)
        except KeyError:
            return False
        return True
    if command.startswith("zenml orchestrator register"):
        return client.list_stack_components(
            name=ORCHESTRATOR_NAME, type=StackComponentType.ORCHESTRATOR).total > 0
    if command.startswith("zenml stack register"):
        return client.list_stacks(name=STACK_NAME).total > 0
    if command.startswith("zenml stack set"):
        return client.active_stack_model.name == STACK_NAME
    return False


def register_stack(project_dir: Union[str, Path], *, echo: Optional[Echo] = print,
                   in_process: bool = False, skip_done: bool = True) -> None:
    """``zenml init`` and the four reference commands in `project_dir`, then use `my_stack`.

    Safe to run again: with `skip_done`, a command whose effect is already
    there is skipped (and says so). Afterwards this process, too, uses
    `my_stack` (commands run in other processes do not change it).

    Args:
        project_dir: the project folder (becomes ZenML's source root).
        echo: shows each command line as it runs (None: silent).
        in_process: run the commands inside this process (see `run_zenml`).
        skip_done: skip commands whose effect is already there.

    Raises:
        RuntimeError: a command failed, or `my_stack` is not active afterwards.
    """
    import os

    project_dir = Path(project_dir)
    show = echo or (lambda line: None)
    previous = Path.cwd()
    os.chdir(project_dir)
    try:
        for command in ("zenml init", *REFERENCE_COMMANDS):
            if skip_done and is_done(command):
                show(f"$ {command}   (already done)")
                continue
            show(f"$ {command}")
            run_zenml(command, project_dir, in_process=in_process)
        from zenml.client import Client

        client = Client()
        client.activate_root(project_dir)
        if client.active_stack_model.name != STACK_NAME:
            client.activate_stack(STACK_NAME)
        if client.active_stack_model.name != STACK_NAME:
            raise RuntimeError(f"the active stack is not {STACK_NAME!r} after registration.")
    finally:
        if not in_process:
            os.chdir(previous)
