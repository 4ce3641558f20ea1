"""ZenML's command line, as the package runs it: in a subprocess or in this process.

No Docker engine: only ZenML's client and a private configuration folder.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def test_zenml_init_run_in_process_leaves_the_source_root_as_it_was(tmp_path):
    """ZenML's `zenml` group, outside a project, makes the working directory the
    source root for the rest of the process: a later pipeline run from another
    project packed the first folder as its code (steps failed with
    ModuleNotFoundError in a test worker that had run `zenml init` in-process)."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    script = textwrap.dedent(f"""
        import os
        from zenml.utils import source_utils
        from orchestrator.machine.stack import run_zenml

        os.chdir({str(first)!r})
        run_zenml("zenml init", in_process=True)
        print("custom:", source_utils._CUSTOM_SOURCE_ROOT)
        os.chdir({str(second)!r})
        run_zenml("zenml init", in_process=True)
        print("root:", source_utils.get_source_root())
    """)
    environment = dict(os.environ, ZENML_CONFIG_PATH=str(tmp_path / "config"),
                       ZENML_ANALYTICS_OPT_IN="false")
    environment.pop("ZENML_REPOSITORY_PATH", None)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=environment, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "custom: None" in result.stdout, result.stdout
    assert f"root: {second}" in result.stdout, result.stdout


def _stacks_in(config, tmp_path):
    """'<active stack> <number of stacks>' as a ZenML process with `config` sees them."""
    script = ("from zenml.client import Client; c = Client(); "
              "print(c.active_stack_model.name, len(c.list_stacks().items))")
    environment = dict(os.environ, ZENML_CONFIG_PATH=str(config), ZENML_ANALYTICS_OPT_IN="false")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=environment, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def test_a_new_config_folder_gets_a_copy_of_an_empty_store_that_zenml_opens(tmp_path,
                                                                             monkeypatch):
    from orchestrator.machine.local_store import STORE_IN_CONFIG, seed_local_store

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    config = tmp_path / "config"
    config.mkdir()
    assert seed_local_store(config) is True
    (template,) = (tmp_path / "cache" / "my-docker").glob("zenml-*-empty-store.db")
    assert (config / STORE_IN_CONFIG).read_bytes() == template.read_bytes()
    assert seed_local_store(config) is False  # it has one: never overwritten
    assert _stacks_in(config, tmp_path) == "default 1"
    # A cache that cannot be written: nothing is seeded, ZenML makes its own store.
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "not-a-folder"))
    other = tmp_path / "other"
    other.mkdir()
    assert seed_local_store(other) is False and not (other / STORE_IN_CONFIG).exists()
    assert _stacks_in(other, tmp_path) == "default 1"


def test_making_the_store_template_leaves_the_project_it_is_made_from_as_it_was(
        tmp_path, monkeypatch):
    """The template's ZenML process once ran in the caller's working directory: in a
    project it rewrote the project's active project to the new store's, and every
    later ZenML process of that project warned that the project was gone (a test's
    `python -m orchestrator.status latest` printed the warning first)."""
    from orchestrator.machine.local_store import store_template

    project, config = tmp_path / "project", tmp_path / "config"
    project.mkdir()
    environment = dict(os.environ, ZENML_CONFIG_PATH=str(config), ZENML_ANALYTICS_OPT_IN="false")
    environment.pop("ZENML_REPOSITORY_PATH", None)
    subprocess.run([str(Path(sys.executable).with_name("zenml")), "init"], cwd=project,
                   env=environment, check=True, capture_output=True, timeout=300)
    before = (project / ".zen" / "config.yaml").read_text()
    monkeypatch.chdir(project)
    monkeypatch.delenv("ZENML_REPOSITORY_PATH", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # a new template is made
    assert store_template() is not None
    assert (project / ".zen" / "config.yaml").read_text() == before
