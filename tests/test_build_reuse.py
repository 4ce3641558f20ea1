"""No rebuild when nothing changed, on a stack made by the four reference commands (no
registry); any change that would change the image rebuilds it (issue "Per-step cost near
the floor"). Also: ZenML's uv installs compile bytecode.

Before the change every pipeline call built the step image again: ZenML only
reuses builds from a container registry.
"""

import io
import os
import platform
import time
import uuid

import pytest
from docker.errors import ImageNotFound
from zenml.client import Client
from zenml.config import DockerSettings
from zenml.config.build_configuration import BuildConfiguration
from zenml.enums import ExecutionStatus

from orchestrator.running.builds import (
    BUILD_CACHE_REPOSITORY,
    KEEP_PER_IMAGE,
    BuildCache,
    as_we_build,
    build_key,
    cache_tag,
    forget_build_cache,
    local_parent_tag,
)
from tests.push_registry import PushRegistry

PARENT_IMAGE = "my-docker/zenml-parent:0.98.0-py3.11"


@pytest.fixture
def repository(docker_client):
    """A repository name of this test's own for ZenML's builds; its tags and the
    build cache's go afterwards."""
    name = f"my-docker-reuse-test-{uuid.uuid4().hex[:8]}"
    yield name
    forget_build_cache(client=docker_client)
    for tag in [tag for image in docker_client.images.list(name=name) for tag in image.tags]:
        try:
            docker_client.images.remove(tag)
        except Exception:  # noqa: BLE001 - still used: the engine keeps it
            pass


def settings(repository, **docker):
    return {"docker": DockerSettings(parent_image=PARENT_IMAGE, target_repository=repository,
                                     **docker)}


def image_of(run):
    return run.build.get_image(component_key="orchestrator")


def test_an_unchanged_pipeline_reuses_its_image_and_a_change_rebuilds_it(
        project_dir, docker_client, repository, run_containers):
    from orchestrator.teaching.examples import settings_pipeline

    def call(value):
        pipeline = settings_pipeline.with_options(
            settings=settings(repository, environment={"MY_FLAG": value}))
        run = pipeline()
        assert run.status == ExecutionStatus.COMPLETED
        assert run.steps["read_environment"].output.load() == value  # the image's own ENV
        assert run_containers(run.id) == []
        return run

    before = set(BuildCache(docker_client).entries())
    first = call("one")
    built = docker_client.images.get(image_of(first))
    assert not image_of(first).startswith(BUILD_CACHE_REPOSITORY)  # ZenML built it
    (key,) = set(BuildCache(docker_client).entries()) - before
    assert docker_client.images.get(cache_tag(key)).id == built.id

    second = call("one")  # nothing changed: no build
    assert image_of(second) == cache_tag(key)
    assert second.build.id != first.build.id

    third = call("two")  # the Docker settings changed: built again
    assert not image_of(third).startswith(BUILD_CACHE_REPOSITORY)
    assert docker_client.images.get(image_of(third)).id != built.id
    assert len(set(BuildCache(docker_client).entries()) - before) == 2

    fourth = call("one")  # back: the earlier image is still kept
    assert image_of(fourth) == cache_tag(key)


@pytest.fixture
def key_of(project_dir, docker_client):
    """The content key of the image ZenML would build for some Docker settings."""
    stack = Client().active_stack

    def key(step_name=None, stack=stack, **docker):
        docker.setdefault("parent_image", PARENT_IMAGE)
        build = BuildConfiguration(key="orchestrator", step_name=step_name,
                                   settings=DockerSettings(**docker))
        return build_key(as_we_build(build), stack, docker_client)

    return key


def test_each_kind_of_change_that_changes_the_image_changes_the_key(key_of):
    base = key_of()
    assert base == key_of()  # deterministic
    changed = {
        "requirements": key_of(requirements=["six==1.16.0"]),
        "other requirements": key_of(requirements=["six==1.17.0"]),
        "integrations": key_of(required_integrations=["sklearn"]),
        "apt packages": key_of(apt_packages=["curl"]),
        "environment": key_of(environment={"A": "1"}),
        "runtime environment": key_of(runtime_environment={"A": "1"}),
        "installer": key_of(python_package_installer="pip"),
        "installer arguments": key_of(python_package_installer_args={"no-deps": None}),
        "user": key_of(user="1000"),
        "a step's own image": key_of(step_name="train"),
    }
    assert base not in changed.values()
    assert len(set(changed.values())) == len(changed), changed


def test_what_zenml_and_python_versions_and_the_stack_are_part_of_the_key(
        key_of, monkeypatch, project_dir):
    import zenml

    base = key_of()
    client = Client()
    other = client.create_stack(f"reuse-test-{uuid.uuid4().hex[:6]}", components={
        "orchestrator": client.active_stack_model.components["orchestrator"][0].id,
        "artifact_store": client.active_stack_model.components["artifact_store"][0].id})
    try:
        from zenml.stack import Stack

        assert key_of(stack=Stack.from_model(other)) != base
    finally:
        client.delete_stack(other.id)
    monkeypatch.setattr(zenml, "__version__", "0.0.1")
    assert key_of() != base
    monkeypatch.undo()
    monkeypatch.setattr(platform, "python_version_tuple", lambda: ("3", "99", "0"))
    assert key_of() != base


def test_a_new_parent_image_under_the_same_name_changes_the_key(key_of, docker_client):
    name = f"my-docker-reuse-parent-{uuid.uuid4().hex[:6]}"
    parent = docker_client.images.get(PARENT_IMAGE)
    other = docker_client.images.get("my-docker/debian-python:bookworm")
    repository, tag = name, "test"
    parent.tag(repository, tag)
    try:
        before = key_of(parent_image=f"{repository}:{tag}")
        other.tag(repository, tag)  # the name now points at another image
        assert key_of(parent_image=f"{repository}:{tag}") != before
    finally:
        docker_client.images.remove(f"{repository}:{tag}")


def test_code_is_part_of_the_key_only_when_it_is_baked_into_the_image(key_of, project_dir):
    baked = {"allow_download_from_artifact_store": False,
             "allow_download_from_code_repository": False}
    marker = project_dir / f"reuse_test_{uuid.uuid4().hex[:6]}.py"
    before_download, before_baked = key_of(), key_of(**baked)
    marker.write_text("VALUE = 1\n")
    try:
        assert key_of() == before_download  # downloaded at run time: the image is the same
        changed = key_of(**baked)
        assert changed != before_baked
        marker.write_text("VALUE = 2\n")
        assert key_of(**baked) != changed
    finally:
        marker.unlink()


def test_builds_that_cannot_be_keyed_are_never_reused(key_of, tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"FROM {PARENT_IMAGE}\n")
    assert key_of(dockerfile=str(dockerfile)) is None  # its build context is not covered
    assert key_of(prevent_build_reuse=True) is None
    assert key_of(skip_build=True) is None
    assert key_of(parent_image="my-docker/no-such-image:never") is None


def test_old_cache_tags_are_pruned(docker_client, tmp_path):
    """The three most recently used per pipeline and image stay; older ones and those
    whose parent image name now points elsewhere go; other pipelines' are untouched."""
    cache = BuildCache(docker_client, folder=tmp_path)
    parent = docker_client.images.get(PARENT_IMAGE)
    keys = [f"prunetest{uuid.uuid4().hex[:8]}{i}" for i in range(KEEP_PER_IMAGE + 2)]
    try:
        for i, key in enumerate(keys[:-1]):
            cache.add(key, PARENT_IMAGE, pipeline="p", slot="orchestrator/", parent=PARENT_IMAGE)
            past = time.time() - 1000 + i
            os.utime(tmp_path / f"{key}.json", (past, past))
        other = keys[-1]
        cache.add(other, PARENT_IMAGE, pipeline="q", slot="orchestrator/", parent=PARENT_IMAGE)
        cache.prune("p", "orchestrator/")
        kept = set(cache.entries())
        assert kept == {*keys[1:-1], other}
        with pytest.raises(ImageNotFound):
            docker_client.images.get(cache_tag(keys[0]))  # the tag is gone ...
        assert docker_client.images.get(PARENT_IMAGE).id == parent.id  # ... not the image
        record = tmp_path / f"{keys[1]}.json"
        import json

        entry = json.loads(record.read_text())
        entry["parent_id"] = "sha256:not-the-current-one"
        record.write_text(json.dumps(entry))
        cache.prune("p", "orchestrator/")
        assert keys[1] not in cache.entries()  # its key can never match again
        (tmp_path / "gone").mkdir()
        gone = BuildCache(docker_client, folder=tmp_path, zenml_config=str(tmp_path / "gone"))
        gone.add(keys[0], PARENT_IMAGE, pipeline="p", slot="orchestrator/", parent=PARENT_IMAGE)
        assert keys[0] in cache.entries(everyone=True)
        (tmp_path / "gone").rmdir()
        cache.prune("q", "orchestrator/")  # anyone's prune: that configuration was deleted
        assert keys[0] not in cache.entries(everyone=True)
    finally:
        for key in keys:
            try:
                docker_client.images.remove(cache_tag(key))
            except Exception:  # noqa: BLE001 - already pruned
                pass


def test_uv_installs_in_zenml_built_images_compile_bytecode(project_dir, docker_client,
                                                             repository):
    """A pipeline with requirements gets `.pyc` files for them, built at build time."""
    from orchestrator.teaching.examples import settings_pipeline

    run = settings_pipeline.with_options(
        settings=settings(repository, requirements=["six==1.17.0"]))()
    assert run.status == ExecutionStatus.COMPLETED
    item = run.build.images["orchestrator"]
    assert "--compile-bytecode" in (item.dockerfile or "")
    code = ("import pathlib, sys, six; "
            "path = pathlib.Path(six.__file__); "
            "tag = sys.implementation.cache_tag; "
            "print((path.parent / '__pycache__' / f'six.{tag}.pyc').exists())")
    output = docker_client.containers.run(image_of(run), ["python", "-c", code], remove=True,
                                          user="65534:65534")
    assert output.decode().strip() == "True"


@pytest.fixture
def pushed_parent(docker_client):
    """A throwaway image FROM the parent image, pushed to a registry that is gone since:
    it has a registry digest, as a user's parent image has once pushed (or pulled).
    The shared parent image is not touched; the images made here are removed."""
    name = f"my-docker-digest-test-{uuid.uuid4().hex[:8]}"
    shared = docker_client.images.get(PARENT_IMAGE).attrs["RepoDigests"]
    image, _ = docker_client.images.build(
        fileobj=io.BytesIO(f"FROM {PARENT_IMAGE}\nLABEL io.my-docker.test={name}\n".encode()),
        tag=f"{name}:parent", pull=False, rm=True, forcerm=True)
    tags = [f"{name}:parent"]
    try:
        with PushRegistry() as registry:
            remote = f"{registry.address}/{name}"
            image.tag(remote, "parent")
            tags.append(f"{remote}:parent")  # the digest lives as long as this name does
            for line in docker_client.images.push(remote, tag="parent", stream=True,
                                                  decode=True):
                assert "error" not in line, line
        image.reload()
        assert image.attrs["RepoDigests"], "the push gave it no digest"
        yield f"{name}:parent", name
    finally:
        for tag in [local_parent_tag(image.id), *tags]:
            try:
                docker_client.images.remove(tag)  # images built from it go with the repository's
            except ImageNotFound:
                pass
        assert docker_client.images.get(PARENT_IMAGE).attrs["RepoDigests"] == shared


def test_a_parent_image_with_a_registry_digest_is_built_from_without_a_pull(
        project_dir, docker_client, repository, pushed_parent, run_containers):
    """ZenML pulls a parent image that has a registry digest before building; with no
    registry reachable that failed deep inside ZenML's build (the CI, once the parent
    image had been pushed by an experiment). The image on the engine is used as it is."""
    from orchestrator.teaching.examples import settings_pipeline

    parent, label = pushed_parent
    run = settings_pipeline.with_options(settings={"docker": DockerSettings(
        parent_image=parent, target_repository=repository,
        environment={"MY_FLAG": "from the pushed parent"})})()
    assert run.status == ExecutionStatus.COMPLETED
    assert run.steps["read_environment"].output.load() == "from the pushed parent"
    built = docker_client.images.get(image_of(run))
    assert built.labels.get("io.my-docker.test") == label  # built FROM that image's content
    assert run_containers(run.id) == []


def test_the_reference_stack_has_no_registry(project_dir):
    """What the reuse is for: a stack made by the four reference commands as they are."""
    assert Client().active_stack.container_registry is None
