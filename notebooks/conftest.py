"""The notebook suite (`pytest --nbmake notebooks/`) leaves no container behind.

The same check as the test suite's (`tests/leftovers.py`): every container that
appears on the engine during the session, labelled or not, is a leftover; it is
reported and removed, and the session fails. nbmake's notebook items take no
fixtures, so the check uses session hooks instead of an autouse fixture.

pytest loads this file for any path under notebooks/; nbmake collects only
`.ipynb` files, so it is not mistaken for a notebook.
"""

import sys
from pathlib import Path

import pytest

# The helper lives in the `tests` package at the repository root, which is not
# on sys.path when pytest is started as `pytest` rather than `python -m pytest`.
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests import leftovers, parallel  # noqa: E402

_baseline = leftovers.Baseline(ids=None)
_found = []


def pytest_configure(config: pytest.Config) -> None:
    """Notebooks run in parallel (`-n N`): the controller checks the engine once,
    after every worker has ended; the workers do not check (each would count the
    other's containers)."""
    leftovers.register_controller_check(config)
    parallel.GroupTimes.register(config)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items) -> None:
    """Mark each notebook `notebook` (so that `-m 'needs_root or notebook'` runs the
    tests that need root and the notebooks in one session); group and order."""
    for item in items:
        if str(item.fspath).endswith(".ipynb"):
            item.add_marker(pytest.mark.notebook)
    parallel.group_and_order(config, items)


def pytest_sessionstart(session: pytest.Session) -> None:
    global _baseline
    if parallel.is_worker(session.config):
        session.config.workeroutput[parallel.USED_ENGINE] = True
    elif not parallel.is_controller(session.config):
        _baseline = leftovers.take_baseline()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if parallel.is_worker(config) or parallel.is_controller(config):
        return
    _found[:] = leftovers.remove_new_containers(_baseline)
    if _found and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_notebook_times = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Each notebook's run time, for the summary (also in a parallel session's controller)."""
    if report.when == "call" and report.nodeid.split("@")[0].endswith(".ipynb"):
        _notebook_times[report.nodeid.split("::")[0]] = (report.duration, report.outcome)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if _notebook_times:
        terminalreporter.section("each notebook's run time", sep="=")
        for nodeid, (seconds, outcome) in sorted(_notebook_times.items()):
            terminalreporter.line(f"{seconds:7.1f} s  {outcome:7}  {nodeid}")
        terminalreporter.line(f"{sum(s for s, _ in _notebook_times.values()):7.1f} s  in all")
    if _found:
        terminalreporter.section("containers left behind", sep="=", red=True, bold=True)
        terminalreporter.line(leftovers.report(_found))
