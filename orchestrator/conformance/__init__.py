"""The conformance kit: does an orchestrator do what ZenML users expect of a local Docker one?

It runs a fixed battery of small pipelines on any registered stack and
reports property by property (`properties.PROPERTIES`): one container per
step, labels the live panel can follow, parallel overlap of independent
steps, each execution mode, retry of a killed container, resource limits
reaching Docker, stop from another process, client interrupt, nothing left
behind, and fetch_status agreeing with what happened.

In a notebook::

    from orchestrator.conformance import run_conformance, show_conformance
    report = run_conformance("my_stack")            # every property
    show_conformance([report])                      # a table

In a terminal, in your ZenML project::

    python -m orchestrator.conformance --stack my_stack [--only labels parallel] [--json FILE]

The kit changes nothing of the stack or the project it is given: the stack
is chosen for its own process only, its probe module is put into the
project folder (ZenML ships that folder to step containers) and taken out
again, and every container of its runs is removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, List, Mapping, Optional, Sequence, Union

from orchestrator.conformance.properties import (
    PROPERTIES,
    PROPERTY_KEYS,
    Property,
    Verdict,
    judge,
    properties_up_to,
)
from orchestrator.conformance.report import Report, reports_html, reports_text

__all__ = [
    "PROPERTIES", "PROPERTY_KEYS", "Property", "Report", "Verdict", "properties_up_to",
    "run_conformance", "run_conformance_many", "show_conformance",
]


def run_conformance(stack: str, properties: Optional[Iterable[str]] = None, *,
                    image: Optional[str] = None, echo: Callable[[str], None] = print) -> Report:
    """Run the battery on `stack` and judge the `properties` (default: all).

    Args:
        stack: the name of a registered stack (its orchestrator is tested).
        properties: property keys (see `PROPERTY_KEYS`); others are reported
            as not checked.
        image: the image the probe steps run in (default: the package's
            parent image with a writable /app, see `conformance.image`).
        echo: where progress lines go.

    Returns:
        The report.

    Raises:
        ValueError: an unknown property key.
        ConformanceSetupError: not in a ZenML project, or no such stack.
    """
    from zenml.client import Client
    from zenml.enums import StackComponentType

    from orchestrator.conformance.battery import collect_facts

    keys = list(properties) if properties is not None else list(PROPERTY_KEYS)
    unknown = [key for key in keys if key not in PROPERTY_KEYS]
    if unknown:
        raise ValueError(f"Unknown propert{'y' if len(unknown) == 1 else 'ies'} {unknown}; "
                         f"choose from {list(PROPERTY_KEYS)}.")
    started = time.monotonic()
    facts = collect_facts(stack, keys, image=image, echo=echo)
    model = Client().get_stack(stack)
    flavor = model.components[StackComponentType.ORCHESTRATOR][0].flavor_name
    run_seconds = {key: run.seconds for key, run in facts.runs.items()}
    runs = {key: {"notes": run.notes, "steps": run.steps, "status": run.status}
            for key, run in list(facts.runs.items()) + [(k, c.run) for k, c in facts.clients.items()]}
    return Report(stack=model.name, flavor=flavor, verdicts=judge(facts, keys),
                  seconds=time.monotonic() - started, run_seconds=run_seconds, runs=runs)


def run_conformance_many(stacks: Sequence[str],
                         properties: Optional[Union[Iterable[str], Mapping[str, Iterable[str]]]]
                         = None, *, echo: Callable[[str], None] = print,
                         timeout: float = 1200.0) -> List[Report]:
    """Run the battery on several stacks at the same time, one process per stack.

    Each process is ``python -m orchestrator.conformance --stack NAME`` in
    this project folder; their batteries never touch each other's runs,
    files or containers, and the verdicts are judged by orderings, not
    durations, so they hold on a machine kept busy by the others.

    Args:
        properties: the property keys for every stack, or a mapping stack ->
            keys (default: all properties).

    Returns:
        One report per stack, in the order given (a battery that could not
        run gives a report whose every checked property failed, saying why).
    """
    if isinstance(properties, Mapping):
        wanted = {stack: list(properties[stack]) for stack in stacks}
    else:
        every = list(properties) if properties is not None else list(PROPERTY_KEYS)
        wanted = dict.fromkeys(stacks, every)
    folder = Path(tempfile.mkdtemp(prefix="my-docker-conformance-"))
    started = time.monotonic()
    processes = {}
    for stack in stacks:
        keys = wanted[stack]
        command = [sys.executable, "-m", "orchestrator.conformance", "--stack", stack,
                   "--json", str(folder / f"{stack}.json"), "--only", *keys]
        with (folder / f"{stack}.log").open("w") as log:
            processes[stack] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                                cwd=os.getcwd())
    echo(f"conformance: {len(stacks)} batteries running at once: {', '.join(stacks)}")
    reports = {}
    try:
        for stack, process in processes.items():
            try:
                process.wait(timeout=max(1.0, started + timeout - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            result = folder / f"{stack}.json"
            if result.exists():
                reports[stack] = Report.from_json(result.read_text())
            else:
                tail = " | ".join((folder / f"{stack}.log").read_text().splitlines()[-5:])
                keys = wanted[stack]
                reports[stack] = Report(stack=stack, flavor="?", seconds=0.0, verdicts={
                    key: Verdict(key, False if key in keys else None,
                                 f"the battery did not run: {tail}" if key in keys
                                 else "not checked") for key in PROPERTY_KEYS})
            echo(f"conformance: {reports[stack].summary()}")
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
        shutil.rmtree(folder, ignore_errors=True)
    return [reports[stack] for stack in stacks]


def show_conformance(reports: Sequence[Report], keys: Optional[Sequence[str]] = None) -> None:
    """Display reports side by side (HTML in a notebook, text elsewhere)."""
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display

        if get_ipython() is None:
            raise ImportError
        display(HTML(reports_html(reports, keys)))
    except ImportError:
        print(reports_text(reports))
