"""Tests for `orchestrator.machine.base_image`, against the real Docker engine.

The first run on a machine builds the parent image (a few minutes with no
registry: debootstrap, import, pip install); later runs find it by its labels
and only check it.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Iterator, List

import docker
import pytest
import zenml

from orchestrator.errors import BaseImageError
from orchestrator.machine import base_image, debian_base, image_labels, mounts
from orchestrator.machine.engine import ensure_engine

pytestmark = pytest.mark.engine  # every test here builds or runs images

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    return ensure_engine()


@pytest.fixture(scope="module")
def parent(client: docker.DockerClient) -> str:
    """The parent image name, built if this machine has none yet."""
    return base_image.ensure_parent_image(client)


def _python_in(client: docker.DockerClient, image: str, code: str) -> str:
    output = client.containers.run(image, ["python", "-c", code], remove=True)
    return output.decode().strip()


def test_names_follow_the_host_versions() -> None:
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert base_image.parent_image_name() == f"my-docker/zenml-parent:{zenml.__version__}-py{python}"
    assert base_image.zenml_default_parent_image_name() == f"zenmldocker/zenml:{zenml.__version__}-py{python}"


def test_parent_image_has_the_labels(client: docker.DockerClient, parent: str) -> None:
    assert parent == base_image.parent_image_name()
    labels = client.images.get(parent).labels
    assert labels["org.my-docker.zenml-version"] == zenml.__version__
    assert labels["org.my-docker.python-version"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert labels == {**labels, **base_image.ParentRecipe.for_host().labels}


def test_zenml_default_parent_name_points_at_the_same_image(client: docker.DockerClient, parent: str) -> None:
    default = client.images.get(base_image.zenml_default_parent_image_name())
    assert default.id == client.images.get(parent).id


def test_image_runs_the_host_zenml_version(client: docker.DockerClient, parent: str) -> None:
    code = "import sys, zenml; print(zenml.__version__, '%d.%d' % sys.version_info[:2])"
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert _python_in(client, parent, code) == f"{zenml.__version__} {python}"


def test_image_trusts_the_ca_bundle_and_has_a_venv_with_uv(client: docker.DockerClient, parent: str) -> None:
    code = (
        "import os, shutil, urllib.request; "
        "urllib.request.urlopen('https://pypi.org/simple/pip/', timeout=20); "
        "print(os.environ['VIRTUAL_ENV'], os.environ['SSL_CERT_FILE'], bool(shutil.which('uv')))"
    )
    assert _python_in(client, parent, code) == f"{base_image.VENV} {base_image.IMAGE_CA_BUNDLE} True"


def test_second_call_is_a_fast_no_op(client: docker.DockerClient, parent: str) -> None:
    image_id = client.images.get(parent).id
    lines: List[str] = []
    start = time.monotonic()
    assert base_image.ensure_parent_image(client, log=lines.append) == parent
    elapsed = time.monotonic() - start
    assert client.images.get(parent).id == image_id
    assert elapsed < 5, f"a no-op call took {elapsed:.1f} s"
    assert not any("Phase" in line for line in lines), lines
    assert any("up to date" in line for line in lines)


def test_cli_prints_the_name(parent: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator.machine.base_image", "--print-name"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == parent


@pytest.fixture
def descendant(client: docker.DockerClient, parent: str) -> Iterator[str]:
    """An image built FROM the parent, as ZenML builds pipeline images: it inherits the labels."""
    name = "my-docker/test-descendant:latest"
    dockerfile = f"FROM {parent}\nRUN echo step > /step.txt\n".encode()
    image, _ = client.images.build(fileobj=_dockerfile_tar(dockerfile), custom_context=True, tag=name,
                                   rm=True, forcerm=True)
    yield name
    client.images.remove(image.id, force=True)


def _dockerfile_tar(dockerfile: bytes) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    buffer.seek(0)
    return buffer


def test_label_search_picks_the_parent_not_an_image_built_from_it(
    client: docker.DockerClient, parent: str, descendant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = base_image.ParentRecipe.for_host()
    assert image_labels.has_labels(client.images.get(descendant), recipe.labels)
    # As if our tag had been removed: only the labels can find the image.
    monkeypatch.setattr(base_image, "parent_image_name", lambda: "my-docker/zenml-parent:untagged")
    found = base_image.find_parent_image(client, recipe)
    assert found is not None and found.id == client.images.get(parent).id


def test_an_unlabelled_image_under_our_name_is_not_trusted(
    client: docker.DockerClient, parent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like the image the lead tagged by hand: right name, no labels."""
    name = "my-docker/test-unlabelled:latest"
    image, _ = client.images.build(
        fileobj=_dockerfile_tar(b"FROM scratch\nENV MADE_BY=hand\n"), custom_context=True, tag=name,
        rm=True, forcerm=True,  # docker-py's default keeps the ENV step's container (image "")
    )
    try:
        monkeypatch.setattr(base_image, "parent_image_name", lambda: name)
        found = base_image.find_parent_image(client, base_image.ParentRecipe.for_host())
        assert found is not None and found.id == client.images.get(parent).id != image.id
    finally:
        client.images.remove(image.id, force=True)


def test_labels_change_with_the_ca_bundle() -> None:
    recipe = base_image.ParentRecipe.for_host()
    other = base_image.ParentRecipe(recipe.zenml_version, recipe.python_version, b"another CA bundle")
    assert other.labels != recipe.labels
    assert {k: v for k, v in other.labels.items() if "ca-bundle" not in k} == {
        k: v for k, v in recipe.labels.items() if "ca-bundle" not in k
    }


def test_debian_base_needs_the_hosts_python() -> None:
    debian_base.check_debian_python(debian_base.DEBIAN_PYTHON)
    with pytest.raises(BaseImageError, match=r"Python 3\.12.*python:3\.12-slim"):
        debian_base.check_debian_python("3.12")


@pytest.mark.needs_root  # mount --bind
def test_rootfs_removal_never_deletes_through_a_mount() -> None:
    """A failed debootstrap may leave host folders mounted inside the target."""
    with tempfile.TemporaryDirectory() as host_dir:
        sentinel = Path(host_dir) / "device-like-file"
        sentinel.write_text("host data")
        rootfs = Path(tempfile.mkdtemp(prefix="my-docker-rootfs-test-"))
        (rootfs / "dev").mkdir()
        subprocess.run(["mount", "--bind", host_dir, str(rootfs / "dev")], check=True)
        try:
            debian_base._remove_tree(rootfs, log=lambda line: None)
        finally:
            if mounts.mounts_below(rootfs):
                subprocess.run(["umount", str(rootfs / "dev")], check=False)
        assert sentinel.read_text() == "host data"
        assert not rootfs.exists()
        assert not mounts.mounts_below(rootfs)
