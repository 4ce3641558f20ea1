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

from tests import leftovers  # noqa: E402

_baseline = leftovers.Baseline(ids=None)
_found = []


def pytest_sessionstart(session: pytest.Session) -> None:
    global _baseline
    _baseline = leftovers.take_baseline()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _found[:] = leftovers.remove_new_containers(_baseline)
    if _found and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if _found:
        terminalreporter.section("containers left behind", sep="=", red=True, bold=True)
        terminalreporter.line(leftovers.report(_found))
