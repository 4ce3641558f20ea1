"""The leftover check stays strict when the suite runs in parallel (`make test`: `-n N`).

A test session of its own, in a subprocess, with this suite's conftest: one test
leaves an unlabelled container behind (as a test that ran `docker create`, or a
build's intermediate container, would). Run serially and on two workers, the
session must fail and name that container; the check then removes it.
"""

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

LEAKY_TESTS = textwrap.dedent("""
    def test_leaves_a_container(docker_client, parent_image):
        docker_client.containers.create(parent_image, ["true"], name={name!r})

    def test_a_pure_test_beside_it():
        assert True
""")


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_container_left_by_any_test_fails_the_session(tmp_path, docker_client, workers):
    name = f"my-docker-leftover-probe-{uuid.uuid4().hex[:8]}"
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.conftest"]\n')
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    engine: needs an engine\n    needs_root: root\n")
    (tmp_path / "test_leaky.py").write_text(LEAKY_TESTS.format(name=name))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    env.pop("ZENML_CONFIG_PATH", None)  # the inner session makes its own
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "test_leaky.py", "-p", "no:cacheprovider", "-q",
             "-n", workers, "--dist", "loadgroup"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        output = result.stdout + result.stderr
        assert result.returncode != 0, output[-3000:]
        assert "left behind" in output and name in output, output[-3000:]
        assert "2 passed" in output, output[-3000:]  # the tests themselves passed: the check failed it
    finally:
        leftover = docker_client.containers.list(all=True, ignore_removed=True,
                                                 filters={"name": name})
        for container in leftover:
            container.remove(force=True)
    assert not leftover, f"the check did not remove {name}"
