"""How a test session runs in parallel (pytest-xdist, `make test`'s `-n N --dist loadgroup`).

Each test file and each notebook is a group that one worker runs from start to
end, so that a module's shared pipeline run (a module-scoped fixture) is made
once; files that share one resource of the machine are put in one group, and
so are notebooks 6 and 7 (7 reuses what 6 saved, as in a reader's run). The
groups are handed out longest first (`--no-loadscope-reorder` keeps this order),
so that the session does not end with one worker busy on a long file it started
last. Both conftests (tests/ and notebooks/) call `group_and_order`, and
register `GroupTimes`, which prints where the session's time went.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Dict, List

import pytest

# Files that must not run at the same time as each other: one worker, one after the other.
SHARED_GROUPS = {
    # ZenML's local server on port 8237, which the swarm's nodes reach.
    "test_swarm.py": "local-zenml-server",
    "test_zenml_server.py": "local-zenml-server",
    # Notebook 7 shows the reader's verdicts that notebook 6 saved (the same file, kit
    # and ZenML): run after notebook 6, as a reader does, it does not run that battery again.
    "06_watching_live.ipynb": "notebooks-6-and-7",
    "07_putting_it_together.ipynb": "notebooks-6-and-7",
}

# The longest groups first (from `make test`'s durations on 2 cores); groups not
# named here come after, in collection order.
SLOWEST_FIRST = [
    # CI's root session (tests/test_notebooks_as_root.py's groups, and needs_root tests):
    # its two longest notebooks first, one per worker.
    "06_watching_live", "07_putting_it_together",
    # `make test`:
    "notebooks-6-and-7", "test_dynamic_pipelines.py", "test_notebooks.py", "test_conformance.py",
    "test_detached_runs.py", "local-zenml-server", "test_public_report_faults.py",
    "test_step_speed.py", "test_real_user_faults.py", "08_swarm", "test_run_control.py",
    "03_one_container_per_step.ipynb", "02_anatomy.ipynb", "05_failures.ipynb", "04_scheduling.ipynb",
    "test_stress.py", "test_build_reuse.py", "test_pipelines_on_docker.py", "test_browser_panel.py",
    "01_setup.ipynb", "test_status.py", "test_tutorial_checks.py", "test_widget.py", "08_swarm.ipynb",
    "test_installed_package.py", "test_leftover_check.py",
]

# The key a worker sets in its `workeroutput` when it used the engine.
USED_ENGINE = "my_docker_used_engine"


def is_worker(config: pytest.Config) -> bool:
    """True in a pytest-xdist worker process."""
    return hasattr(config, "workerinput")


def is_controller(config: pytest.Config) -> bool:
    """True in the process that hands tests to workers (`-n N` with N > 0)."""
    return not is_worker(config) and getattr(config.option, "dist", "no") != "no"


def group_of(item: pytest.Item) -> str:
    """The group an item runs in: the one its `xdist_group` mark names (the root pass's
    notebooks), else its file's, or the shared group its file is in."""
    marked = next(item.iter_markers("xdist_group"), None)
    if marked is not None and marked.args:
        return str(marked.args[0])
    name = Path(str(item.fspath)).name
    return SHARED_GROUPS.get(name, name)


def group_and_order(config: pytest.Config, items: List[pytest.Item]) -> None:
    """With `--dist loadgroup`: put each item in its group, the longest groups first."""
    if not getattr(config.option, "loadgroup", False):
        return
    rank = {name: index for index, name in enumerate(SLOWEST_FIRST)}
    for item in items:
        if not any(True for _ in item.iter_markers("xdist_group")):
            item.add_marker(pytest.mark.xdist_group(group_of(item)))
    items.sort(key=lambda item: rank.get(group_of(item), len(rank)))  # stable: file order within


class GroupTimes:
    """The time each group took and each worker was busy, printed at the end of a session.

    It shows where a parallel session's time goes: a session lasts as long as its
    busiest worker, and a group longer than the others' share keeps one worker
    busy after the rest have finished (then split it, or rank it first in
    SLOWEST_FIRST). Times are setup + call + teardown, in seconds, as the
    controller receives them (pytest-xdist's node ids end in `@group`).
    """

    name = "my-docker-group-times"

    def __init__(self) -> None:
        self.groups: Dict[str, float] = collections.defaultdict(float)
        self.workers: Dict[str, float] = collections.defaultdict(float)
        self.worker_of: Dict[str, str] = {}

    @classmethod
    def register(cls, config: pytest.Config) -> None:
        """Register once per session (both conftests call this), in the controller only."""
        if is_controller(config) and not config.pluginmanager.has_plugin(cls.name):
            config.pluginmanager.register(cls(), cls.name)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        group = report.nodeid.rpartition("@")[2] if "@" in report.nodeid else "(no group)"
        worker = getattr(getattr(report, "node", None), "gateway", None)
        worker_id = getattr(worker, "id", "?")
        self.groups[group] += report.duration
        self.workers[worker_id] += report.duration
        self.worker_of[group] = worker_id

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.groups:
            return
        terminalreporter.section("each group's time (longest first) and each worker's", sep="=")
        for group, seconds in sorted(self.groups.items(), key=lambda item: -item[1]):
            terminalreporter.line(f"{seconds:7.1f} s  {self.worker_of[group]:4}  {group}")
        terminalreporter.line("busy: " + ", ".join(
            f"{worker} {seconds:.0f} s" for worker, seconds in sorted(self.workers.items())))
