"""Every notebook again, as root: CI's second pass over the tutorial.

A reader may well be root (a container's Jupyter, a VM's only user): step
containers then run as root and the files they write belong to root. CI runs
every notebook once as an unprivileged user in the docker group (`make test`,
nbmake, each notebook as stored) and then, with this module, once more as root.

This pass runs the conformance kit in notebook 6 only, on the reader's finished
file, for the properties where the user's uid plays a part (`ROOT_KIT`: a
killed container retried, a stop and a Ctrl-C from other processes, nothing
left behind: signals, processes, files and containers owned by root). The
unprivileged pass checks all twelve on the same file (notebook 6 under nbmake);
the others (one container per step, labels, overlap, the execution modes,
limits, fetch_status) are the orchestrator's logic, the same for any user.
Notebooks 2 to 5 run subsets of those twelve on earlier states of the same file,
and notebook 7 runs the kit on the package's orchestrator and on `local_docker`,
which are not the reader's and do not change with the user: the unprivileged
pass checks them all on the same engine. Each battery starts a dozen pipelines;
skipping these here halves the pass (a CI-like run of 2026-12-07: 1,137 s with
them), and the root pass runs beside the rootless engines' batteries.

Deselected unless asked for (pyproject.toml's `addopts`):

    sudo python -m pytest -m root_pass tests/test_notebooks_as_root.py -n 2 --dist loadgroup
"""

import os

import pytest

from orchestrator.conformance import PROPERTY_KEYS
from orchestrator.teaching.notebooks import read_summary
from tests.test_notebooks import EXPECTED, execute

pytestmark = pytest.mark.root_pass

# The notebooks with a `run_kit` parameter, and the one that keeps its battery.
WITH_KIT_PARAMETER = {"02_anatomy", "03_one_container_per_step", "04_scheduling",
                      "05_failures", "06_watching_live", "07_putting_it_together"}
KEEPS_ITS_KIT = "06_watching_live"
ROOT_KIT = ["retry_killed", "stop", "interrupt", "nothing_left_behind"]

# Longest first (as root in CI, 2026-12-07): two workers then end at about the same time.
LONGEST_FIRST = ["06_watching_live", "07_putting_it_together", "08_swarm", "04_scheduling",
                 "01_setup", "03_one_container_per_step", "05_failures", "02_anatomy"]
assert sorted(LONGEST_FIRST) == sorted(EXPECTED)


@pytest.mark.usefixtures("parent_image")
@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xdist_group(name), id=name) for name in LONGEST_FIRST])
def test_the_notebook_runs_to_its_summary_as_root(name, tmp_path):
    assert os.geteuid() == 0, "this pass runs as root: sudo python -m pytest -m root_pass ..."
    parameters = {}
    if name in WITH_KIT_PARAMETER:
        parameters["run_kit"] = name == KEEPS_ITS_KIT
    if name == KEEPS_ITS_KIT:
        parameters["kit_only"] = ROOT_KIT
    summary = read_summary(execute(name, tmp_path, **parameters))  # LookupError: it stopped
    assert summary["notebook"] == name
    if name == KEEPS_ITS_KIT:
        assert set(summary["conformance"]) == set(ROOT_KIT) <= set(PROPERTY_KEYS), \
            summary["conformance"]
        assert all(summary["conformance"].values()), summary["conformance"]
