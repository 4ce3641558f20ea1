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

Modules:

- `probe`, `image`: the battery's steps, shipped as user code, and the small
  image they run in;
- `battery`, `child`: running the battery on a stack and collecting facts;
  the runs another process starts (to stop or interrupt);
- `notes`: the probe steps' notes, read while the runs go on (each step's
  container inspected, the retry step's first one killed, waiting steps
  released);
- `properties`, `report`: the pure judges, and the report as text and HTML;
- `saved`: reports kept per orchestrator source (notebook 7 reuses notebook
  6's verdicts on the same file).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
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

STAGGER_SECONDS = 2.0

__all__ = [
    "PROPERTIES", "PROPERTY_KEYS", "Property", "Report", "Verdict", "properties_up_to",
    "Batteries", "run_conformance", "run_conformance_many", "show_conformance",
    "start_conformance_many",
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


class Batteries:
    """Batteries running in the background, one process per stack.

    Each process is ``python -m orchestrator.conformance --stack NAME`` in
    this project folder; their batteries never touch each other's runs,
    files or containers, and the verdicts are judged by orderings, not
    durations, so they hold on a machine kept busy by the others (or by
    whatever this process does meanwhile). `reports` waits for them.
    """

    def __init__(self, stacks: Sequence[str],
                 properties: Optional[Union[Iterable[str], Mapping[str, Iterable[str]]]] = None,
                 *, echo: Callable[[str], None] = print) -> None:
        if isinstance(properties, Mapping):
            self.wanted = {stack: list(properties[stack]) for stack in stacks}
        else:
            every = list(properties) if properties is not None else list(PROPERTY_KEYS)
            self.wanted = dict.fromkeys(stacks, every)
        self.stacks = list(stacks)
        self.echo = echo
        self.folder = Path(tempfile.mkdtemp(prefix="my-docker-conformance-"))
        self.started = time.monotonic()
        self.processes = {}
        for number, stack in enumerate(self.stacks):
            if number:
                time.sleep(STAGGER_SECONDS)  # not all importing ZenML at the same instant
            command = [sys.executable, "-m", "orchestrator.conformance", "--stack", stack,
                       "--json", str(self.folder / f"{stack}.json"),
                       "--only", *self.wanted[stack]]
            with (self.folder / f"{stack}.log").open("w") as log:
                # Its own session: a kernel killed with its process group does not
                # take the battery with it mid-run; the battery sees its parent
                # gone and cleans up (`lifeline`).
                self.processes[stack] = subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT, cwd=os.getcwd(),
                    start_new_session=True)
        atexit.register(self.interrupt)  # this process ends before `reports`: stop them
        echo(f"conformance: {len(self.stacks)} batteries running at once: {', '.join(stacks)}")

    def interrupt(self) -> None:
        """Ctrl-C to every battery still running: each stops its runs and removes its containers."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)

    def reports(self, timeout: float = 1200.0) -> List[Report]:
        """Wait for every battery (at most `timeout` seconds from their start); their reports.

        Returns:
            One report per stack, in the order given (a battery that could
            not run gives a report whose every checked property failed,
            saying why).
        """
        reports = {}
        try:
            for stack, process in self.processes.items():
                try:
                    process.wait(timeout=max(1.0, self.started + timeout - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                reports[stack] = self._report(stack)
                self.echo(f"conformance: {reports[stack].summary()}")
        finally:
            atexit.unregister(self.interrupt)
            for process in self.processes.values():
                if process.poll() is None:
                    process.kill()
            shutil.rmtree(self.folder, ignore_errors=True)
        return [reports[stack] for stack in self.stacks]

    def _report(self, stack: str) -> Report:
        result = self.folder / f"{stack}.json"
        if result.exists():
            return Report.from_json(result.read_text())
        tail = " | ".join((self.folder / f"{stack}.log").read_text().splitlines()[-5:])
        keys = self.wanted[stack]
        return Report(stack=stack, flavor="?", seconds=0.0, verdicts={
            key: Verdict(key, False if key in keys else None,
                         f"the battery did not run: {tail}" if key in keys else "not checked")
            for key in PROPERTY_KEYS})


def start_conformance_many(stacks: Sequence[str],
                           properties: Optional[Union[Iterable[str], Mapping[str, Iterable[str]]]]
                           = None, *, echo: Callable[[str], None] = print) -> Batteries:
    """Start the battery on several stacks at once, in the background (see `Batteries`).

    Args:
        properties: the property keys for every stack, or a mapping stack ->
            keys (default: all properties).
    """
    return Batteries(stacks, properties, echo=echo)


def run_conformance_many(stacks: Sequence[str],
                         properties: Optional[Union[Iterable[str], Mapping[str, Iterable[str]]]]
                         = None, *, echo: Callable[[str], None] = print,
                         timeout: float = 1200.0) -> List[Report]:
    """Run the battery on several stacks at the same time, one process per stack.

    Returns:
        One report per stack, in the order given (see `Batteries.reports`).
    """
    return start_conformance_many(stacks, properties, echo=echo).reports(timeout)


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
