"""A user who `pip install`ed the package runs a pipeline from their own folder.

ZenML loads the active stack (our custom flavor included) inside every step
container. The pipeline's folder does not contain our package here, and the
package is a regular (not editable) install in a separate virtual environment,
so this only passes if the orchestrator brings its own code into each container.
"""

import os
import site
import subprocess
import sys
import textwrap
import venv

from tests.conftest import REPO_ROOT, zenml_cli

USER_PIPELINE = textwrap.dedent(
    """
    from zenml import pipeline, step


    @step
    def where_is_the_orchestrator() -> str:
        import orchestrator
        return orchestrator.__file__


    @pipeline(enable_cache=False)
    def users_pipeline():
        where_is_the_orchestrator()


    if __name__ == "__main__":
        import orchestrator
        print("HOST", orchestrator.__file__)
        run = users_pipeline()
        print("STATUS", run.status.value)
        print("CONTAINER", run.steps["where_is_the_orchestrator"].output.load())
    """
)


def test_installed_package_runs_from_another_folder(project_dir, tmp_path):
    environment = tmp_path / "venv"
    venv.create(environment, system_site_packages=True, with_pip=False)
    python = environment / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--no-build-isolation", str(REPO_ROOT)],
        check=True, capture_output=True, text=True,
    )
    if sys.prefix != sys.base_prefix:
        # The tests run in a venv themselves (scripts/as_unprivileged_user.sh):
        # ZenML is in that venv, not in the system's site-packages that the
        # new venv sees. Add that venv's site-packages after the new venv's
        # own, once our package is installed there (a path in a .pth file:
        # the editable install of this package in that venv stays inactive).
        own_site = next(environment.glob("lib/python*/site-packages"))
        (own_site / "outer-venv.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    user_project = tmp_path / "users_project"
    user_project.mkdir()
    (user_project / "run.py").write_text(USER_PIPELINE)
    zenml_cli("zenml init", user_project)
    zenml_cli("zenml stack set my_stack", user_project)

    result = subprocess.run(
        [str(python), "run.py"], cwd=user_project, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": ""}, timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines()
                 if line.startswith(("HOST ", "STATUS ", "CONTAINER ")))
    assert str(environment) in lines["HOST"], "the venv's installed copy is used on the host"
    assert lines["STATUS"] == "completed"
    assert lines["CONTAINER"].startswith("/opt/my_docker/src/orchestrator/")
