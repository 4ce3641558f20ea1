"""ZenML's image builds on a my_docker stack: checked, compiled, reused, leaving nothing behind.

ZenML builds the step image before `submit_pipeline`; the orchestrator sees
the builds in `get_docker_builds` (three times per pipeline call) and in its
stack validator. What happens there:

- a missing parent image is reported before `docker build` fails deep inside
  with a registry error;
- docker-py's build options `rm` and `forcerm` are turned on, because ZenML
  builds with docker-py's default `rm=False`, which leaves one stopped
  container per build step on the engine;
- **a parent image on this engine is built from as it is, never pulled.**
  ZenML pulls a parent image before building unless it is "local", i.e.
  has no registry digest (`is_image_local`); an image gets one when it was
  pushed or pulled, so after `docker push` of one's parent image every build
  pulled it again, and failed deep inside ZenML's build on a machine with no
  registry ("Get https://registry-1.docker.io/v2/: no such host"). On a stack
  without a container registry nothing leaves this engine, so we build as
  `docker build` does without `--pull`: from the local image, under a local
  name of ours (``my-docker-local-parent:<image id>``, the same content plus
  one label, so that ZenML sees an image without a digest). To build from a
  newer version of the parent image, `docker pull` it first. With a
  container registry in the stack, ZenML's choice stands;
- `uv pip install` (ZenML's default installer) is told to compile bytecode:
  without it, pandas, scikit-learn and the like ship without `.pyc` files,
  and every step container compiles them again at import (measured: 3.5 CPU-s
  instead of 1.1 to import pandas and scikit-learn);
- **a build is reused without a container registry.** ZenML reuses a build
  only from a registry ("it's not clear whether the images exist on the
  current machine", build_utils.find_existing_build), so on a stack made by
  the four reference commands every pipeline call builds again. We key each
  image on what decides its content: ZenML's own checksum of the build
  settings (Docker settings, requirements files' contents, stack
  requirements), the parent image's id on this engine, ZenML's and Python's
  versions, the stack, and the code when it is baked into the image. After a
  build, the image is tagged ``my-docker-build-cache:<key>``; a later call with
  the same key gets `DockerSettings(skip_build=True, parent_image=<that tag>)`,
  so ZenML runs the steps from it without building. Any change to one of
  those inputs changes the key, so the image is built again. Images built
  from a Dockerfile of the user's are never reused (their build context is
  not covered), nor are those with `DockerSettings(prevent_build_reuse=True)`.

Old cache tags are pruned whenever a new one is added: per ZenML
configuration, pipeline and image, the three most recently used are kept; a
tag whose parent image name now points at another image, or whose ZenML
configuration folder is gone (a test's or a notebook's private one), can
never match again and goes at once. Each tag is recorded in the user's cache
folder (``~/.cache/my_docker/build_cache/``, one small JSON file per tag,
touched on every reuse), and only tags recorded there are ever removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from zenml.logger import get_logger

if TYPE_CHECKING:
    from zenml.config import DockerSettings
    from zenml.config.build_configuration import BuildConfiguration
    from zenml.config.docker_settings import DockerBuildConfig
    from zenml.models import PipelineSnapshotBase, PipelineSnapshotResponse
    from zenml.stack import Stack

BUILD_CACHE_REPOSITORY = "my-docker-build-cache"
# Per pipeline and image, how many cached images (tags) are kept.
KEEP_PER_IMAGE = 3

logger = get_logger("orchestrator.my_docker_orchestrator")


def engine_answers(stack: "Stack") -> Tuple[bool, str]:
    """The stack validator: (True, "") if a Docker engine answers, else (False, why)."""
    from orchestrator.errors import DockerEngineUnavailableError
    from orchestrator.machine.engine import connect, use_context_engine_everywhere

    try:
        use_context_engine_everywhere()
        connect()
    except DockerEngineUnavailableError as error:
        return False, str(error)
    return True, ""


def prepare_builds(builds: List["BuildConfiguration"],
                   snapshot: Optional["PipelineSnapshotBase"] = None) -> List["BuildConfiguration"]:
    """`builds` as we want them built, reusing an earlier local image where one fits.

    Args:
        builds: ZenML's build configurations for the orchestrator.
        snapshot: the pipeline's snapshot (its name groups the cached images);
            without it nothing is reused.

    Raises:
        ImageNotFoundError: a parent image is neither local nor pullable.
    """
    from zenml.client import Client
    from zenml.utils.pipeline_docker_image_builder import DEFAULT_DOCKER_PARENT_IMAGE

    from orchestrator.machine.engine import connect, use_context_engine_everywhere
    from orchestrator.running.containers import require_parent_image

    # ZenML builds with `docker.from_env()` (DOCKER_HOST only): the docker
    # context's engine, if one chose it, becomes DOCKER_HOST for this process.
    use_context_engine_everywhere()
    cli = builds_with_cli(Client().active_stack)
    prepared = [as_we_build(build, cli=cli) for build in builds]
    client = None
    for build in prepared:
        settings = build.settings
        if settings.dockerfile or settings.skip_build:
            continue
        client = client or connect()
        require_parent_image(client, settings.parent_image or DEFAULT_DOCKER_PARENT_IMAGE)
    if client is None:
        return prepared
    stack = Client().active_stack
    if stack.container_registry is not None:
        return prepared  # ZenML reuses builds itself, and pulls what it pushes
    ready = []
    for build in prepared:
        reused = _reused(build, stack, client) if snapshot is not None else build
        ready.append(reused if reused is not build else from_local_parent(build, client))
    return ready


def as_we_build(build: "BuildConfiguration", cli: bool = False) -> "BuildConfiguration":
    """A build configuration with our changes: no build containers left, bytecode compiled.

    Args:
        cli: ZenML builds with a ``docker build``/``podman build`` command
            (`builds_with_cli`), not docker-py: options are spelled as flags.
    """
    settings = compiling_bytecode(removing_build_containers(build.settings, cli=cli))
    return build.model_copy(update={"settings": settings})


def builds_with_cli(stack: "Stack") -> bool:
    """Whether ZenML's image build for `stack` runs a CLI instead of docker-py.

    ZenML's local image builder builds with Podman's CLI when the container
    engine is Podman (configured, or found alone: no ``docker`` command), and
    with the ``docker`` CLI when the builder's ``use_subprocess_call`` is set.
    Build options then become command line flags (``--force-rm``), where
    docker-py's spelling (``forcerm``) would be an unknown flag.
    """
    import shutil

    from zenml.config.global_config import GlobalConfiguration
    from zenml.enums import ContainerEngineType

    builder = getattr(stack, "image_builder", None)
    if getattr(getattr(builder, "config", None), "use_subprocess_call", False):
        return True
    configured = GlobalConfiguration().container_engine
    if configured:
        return ContainerEngineType(configured) == ContainerEngineType.PODMAN
    return shutil.which("docker") is None and shutil.which("podman") is not None


def removing_build_containers(settings: "DockerSettings", cli: bool = False) -> "DockerSettings":
    """`settings` with the build options that remove build containers turned on."""
    update = {"build_config": _with_removal(settings.build_config, cli)}
    if settings.dockerfile:  # ZenML builds the parent image too
        update["parent_image_build_config"] = _with_removal(settings.parent_image_build_config,
                                                            cli)
    return settings.model_copy(update=update)


def removal_options(options: Dict[str, Any], cli: bool) -> Dict[str, Any]:
    """Build `options` that remove every build container, spelled for the builder.

    docker-py spells it ``forcerm``; the ``docker build`` and ``podman build``
    commands spell it ``--force-rm`` (ZenML turns the extra option
    ``force_rm`` into that flag, and ``forcerm`` into ``--forcerm``, which
    both commands refuse). A user's own spelling is translated the same way.
    """
    result = {key: value for key, value in options.items() if key not in ("forcerm", "force_rm")}
    result["rm"] = True
    result["force_rm" if cli else "forcerm"] = True
    return result


def _with_removal(config: Optional["DockerBuildConfig"], cli: bool = False) -> "DockerBuildConfig":
    from zenml.config.docker_settings import DockerBuildConfig, DockerBuildOptions

    config = config or DockerBuildConfig()
    # Without the unset (None) options: ZenML's snapshot gives every option a
    # value, and docker-py refuses ZenML's name for an empty cache_from
    # ("unexpected keyword argument 'cachefrom'"), so any build option of the
    # user's made every build fail.
    options = config.build_options.model_dump(exclude_none=True) if config.build_options else {}
    options = removal_options(options, cli)
    return config.model_copy(update={"build_options": DockerBuildOptions.model_validate(options)})


_BYTECODE_ARGS = ("compile-bytecode", "no-compile-bytecode", "compile", "no-compile")


def compiling_bytecode(settings: "DockerSettings") -> "DockerSettings":
    """`settings` whose `uv pip install` compiles bytecode, unless the user chose.

    pip compiles by default; uv does not (`uv pip install --compile-bytecode`).
    """
    from zenml.config.docker_settings import PythonPackageInstaller

    args = dict(settings.python_package_installer_args)
    if settings.python_package_installer != PythonPackageInstaller.UV or \
            any(name in args for name in _BYTECODE_ARGS):
        return settings
    args["compile-bytecode"] = None
    return settings.model_copy(update={"python_package_installer_args": args})


# -- reusing local builds -------------------------------------------------------------


def build_key(build: "BuildConfiguration", stack: "Stack", client: Any) -> Optional[str]:
    """The content key of the image ZenML builds for `build`, or None: never reuse it.

    Covers what ZenML's own reuse checks (`compute_settings_checksum`: Docker
    settings, the contents of every requirements file, stack requirements,
    entrypoint, extra files; same stack, ZenML and Python version), plus the
    parent image's id on this engine (ZenML checks a registry digest instead)
    and, when the image includes the code, the code's contents.
    """
    import zenml
    from docker.errors import ImageNotFound
    from zenml.utils.pipeline_docker_image_builder import DEFAULT_DOCKER_PARENT_IMAGE

    settings = build.settings
    if settings.skip_build or settings.prevent_build_reuse or settings.dockerfile:
        return None
    try:
        parent_id = client.images.get(settings.parent_image or DEFAULT_DOCKER_PARENT_IMAGE).id
    except ImageNotFound:
        return None
    digest = hashlib.sha256()
    for part in (build.compute_settings_checksum(stack=stack), parent_id, zenml.__version__,
                 ".".join(platform.python_version_tuple()[:2]), str(stack.id),
                 build.key, build.step_name or ""):
        digest.update(part.encode() + b"\0")
    if build.should_include_files(code_repository=None):
        digest.update(code_checksum(settings).encode())
    return digest.hexdigest()[:40]


def code_checksum(settings: "DockerSettings") -> str:
    """A checksum of the files ZenML copies into an image that includes the code.

    The same files ZenML's build context takes: the source root, minus what
    the dockerignore file excludes.
    """
    from zenml.config.docker_settings import DockerBuildConfig
    from zenml.image_builders import BuildContext
    from zenml.utils import source_utils

    build_config = settings.build_config or DockerBuildConfig()
    context = BuildContext(root=source_utils.get_source_root(),
                           dockerignore_file=build_config.dockerignore or settings.dockerignore)
    digest = hashlib.sha256()
    for archive_path, path in sorted(context.get_files().items()):
        digest.update(archive_path.encode() + b"\0")
        try:
            with open(path, "rb") as source:
                for block in iter(lambda: source.read(1 << 20), b""):
                    digest.update(block)
        except OSError:
            digest.update(b"<unreadable>")
    return digest.hexdigest()


def _reused(build: "BuildConfiguration", stack: "Stack", client: Any) -> "BuildConfiguration":
    """`build` pointed at a cached image of the same key, if there is one."""
    from docker.errors import ImageNotFound

    key = build_key(build, stack, client)
    if key is None:
        return build
    tag = cache_tag(key)
    try:
        client.images.get(tag)
    except ImageNotFound:
        return build
    logger.debug("Reusing %s instead of building again.", tag)
    settings = build.settings.model_copy(update={"skip_build": True, "parent_image": tag})
    return build.model_copy(update={"settings": settings})


def cache_tag(key: str) -> str:
    return f"{BUILD_CACHE_REPOSITORY}:{key}"


# -- building from a local parent image as it is ----------------------------------------


def from_local_parent(build: "BuildConfiguration", client: Any) -> "BuildConfiguration":
    """`build` with a parent image that ZenML will not pull before building.

    ZenML pulls the parent image when it has a registry digest (see the
    module's docstring); such an image is replaced by a local alias of it
    (`local_parent_tag`), made once per image id. ZenML's default parent
    image is never pulled by ZenML, and a build from the user's Dockerfile
    builds its own parent: both are left as they are.
    """
    from docker.errors import ImageNotFound
    from zenml.utils.pipeline_docker_image_builder import DEFAULT_DOCKER_PARENT_IMAGE

    settings = build.settings
    parent = settings.parent_image
    if settings.skip_build or settings.dockerfile or not parent or \
            parent == DEFAULT_DOCKER_PARENT_IMAGE:
        return build
    try:
        image = client.images.get(parent)
    except ImageNotFound:
        return build  # docker build pulls it, as ZenML would
    if not image.attrs.get("RepoDigests"):
        return build  # ZenML does not pull it
    alias = local_parent_tag(image.id)
    try:
        client.images.get(alias)
    except ImageNotFound:
        _make_local_parent(client, parent, alias)
        logger.info(
            "The parent image %s has a registry digest (it was pushed or pulled), so "
            "ZenML would pull it again before building, which fails without a registry. "
            "Building from the image on this engine as it is, named %s here (to build "
            "from a newer version, `docker pull %s` first).", parent, alias, parent)
    updated = settings.model_copy(update={"parent_image": alias})
    return build.model_copy(update={"settings": updated})


LOCAL_PARENT_REPOSITORY = "my-docker-local-parent"
LOCAL_PARENT_LABEL = "io.my-docker.local-parent-of"


def local_parent_tag(image_id: str) -> str:
    """The local name of the parent image with id `image_id` (``sha256:...``)."""
    return f"{LOCAL_PARENT_REPOSITORY}:{image_id.split(':')[-1][:24]}"


def _make_local_parent(client: Any, parent: str, alias: str) -> None:
    """Build `alias`: the image `parent` plus a label; untag older aliases of `parent`.

    A new image id is needed: a registry digest belongs to the image, not to
    one of its names. Docker's layer cache makes it instant after the first
    time (and gives the same id, so ZenML's build cache hits too).
    """
    import io

    from orchestrator.machine.base_image import canonical_image_name

    dockerfile = f"FROM {parent}\nLABEL {LOCAL_PARENT_LABEL}={json.dumps(parent)}\n"
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=alias, pull=False,
                        rm=True, forcerm=True)
    for older in client.images.list(filters={"label": f"{LOCAL_PARENT_LABEL}={parent}"}):
        for tag in older.tags:  # Podman names them localhost/...
            if canonical_image_name(tag).startswith(f"{LOCAL_PARENT_REPOSITORY}:") and \
                    canonical_image_name(tag) != alias:
                try:
                    client.images.remove(tag)  # an untag: images built from it keep it
                except Exception as error:  # noqa: BLE001 - tidying only
                    logger.debug("Could not untag %s: %s", tag, error)


def remember_builds(orchestrator: Any, snapshot: "PipelineSnapshotResponse",
                    stack: "Stack", client: Any, log: Any = logger.info) -> None:
    """Tag this run's freshly built images for reuse, note reused ones as used, prune.

    Called once per run, after ZenML built (or reused) the images. Never
    fails the run: a problem is logged and the next call builds again.
    """
    from zenml.orchestrators import ContainerizedOrchestrator

    if snapshot.build is None or stack.container_registry is not None:
        return
    try:
        cli = builds_with_cli(stack)
        builds = [as_we_build(build, cli=cli) for build in
                  ContainerizedOrchestrator.get_docker_builds(orchestrator, snapshot)]
        cache = BuildCache(client)
        pipeline = snapshot.pipeline_configuration.name
        for build in builds:
            key = build_key(build, stack, client)
            if key is None:
                continue
            try:
                image = snapshot.build.get_image(component_key=build.key, step=build.step_name)
            except KeyError:
                continue
            if image == cache_tag(key):
                cache.used(key)
                log(f"Reused the image built for an earlier run ({image}): same Docker "
                    "settings, requirements and parent image, so no build.")
                continue
            cache.add(key, image, pipeline=pipeline, slot=f"{build.key}/{build.step_name or ''}",
                      parent=build.settings.parent_image)
    except Exception as error:  # noqa: BLE001 - reuse is an optimisation, never a failure
        logger.warning("Could not keep this run's image for reuse (%s); the next run "
                       "builds it again.", error)


class BuildCache:
    """The cached images recorded in the user's cache folder, one JSON file per tag."""

    def __init__(self, client: Any, folder: Optional[Path] = None,
                 zenml_config: Optional[str] = None) -> None:
        self.client = client
        self.folder = folder or build_cache_folder()
        self.zenml_config = zenml_config or _zenml_config_directory()

    def entries(self, everyone: bool = False) -> Dict[str, Dict[str, Any]]:
        """Key -> its record (image id, pipeline, slot, parent, ZenML config, last use).

        Args:
            everyone: every ZenML configuration's entries, not only this one's.
        """
        found = {}
        for path in self.folder.glob("*.json"):
            try:
                entry = {**json.loads(path.read_text()), "last_used": path.stat().st_mtime}
            except (OSError, ValueError):
                continue
            if everyone or entry.get("zenml_config") == self.zenml_config:
                found[path.stem] = entry
        return found

    def used(self, key: str) -> None:
        """Mark a cached image as used now (pruning keeps the most recently used)."""
        try:
            os.utime(self.folder / f"{key}.json")
        except OSError:
            pass

    def add(self, key: str, image: str, *, pipeline: str, slot: str,
            parent: Optional[str]) -> None:
        """Tag `image` as the cached image of `key`, record it, then prune."""
        from zenml.utils.pipeline_docker_image_builder import DEFAULT_DOCKER_PARENT_IMAGE

        built = self.client.images.get(image)
        parent = parent or DEFAULT_DOCKER_PARENT_IMAGE
        record = {"tag": cache_tag(key), "image_id": built.id, "pipeline": pipeline,
                  "slot": slot, "parent": parent,
                  "parent_id": self.client.images.get(parent).id, "created": time.time(),
                  "zenml_config": self.zenml_config}
        built.tag(BUILD_CACHE_REPOSITORY, key)
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"{key}.json").write_text(json.dumps(record, indent=1))
        self.prune(pipeline, slot)

    def prune(self, pipeline: str, slot: str) -> List[str]:
        """Remove the cache tags that will not be used again.

        Those of (pipeline, slot) in this configuration beyond the
        KEEP_PER_IMAGE most recently used, those whose parent image changed,
        and anyone's whose ZenML configuration folder is gone.

        Returns:
            The keys removed.
        """
        everyone = self.entries(everyone=True)
        same = sorted(((key, entry) for key, entry in everyone.items()
                       if entry.get("zenml_config") == self.zenml_config
                       and entry.get("pipeline") == pipeline and entry.get("slot") == slot),
                      key=lambda item: item[1]["last_used"], reverse=True)
        stale = [key for rank, (key, entry) in enumerate(same)
                 if rank >= KEEP_PER_IMAGE or not self._parent_unchanged(entry)]
        stale += [key for key, entry in everyone.items()
                  if not os.path.isdir(str(entry.get("zenml_config")))]
        return [key for key in dict.fromkeys(stale) if self.remove(key, everyone[key])]

    def _parent_unchanged(self, entry: Dict[str, Any]) -> bool:
        from docker.errors import ImageNotFound

        try:
            return self.client.images.get(entry["parent"]).id == entry.get("parent_id")
        except (ImageNotFound, KeyError):
            return False

    def remove(self, key: str, entry: Dict[str, Any]) -> bool:
        """Untag one cached image (Docker deletes it if nothing else uses it); forget it.

        Returns:
            False if the engine refused (a container still uses it): tried again next time.
        """
        from docker.errors import APIError, ImageNotFound

        try:
            image = self.client.images.get(entry["tag"])
            if image.id == entry.get("image_id"):
                self.client.images.remove(entry["tag"])
        except ImageNotFound:
            pass
        except APIError:
            return False
        (self.folder / f"{key}.json").unlink(missing_ok=True)
        return True


def build_cache_folder() -> Path:
    """Where this user's cached images are recorded (every ZenML configuration's)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "my_docker" / "build_cache"


def _zenml_config_directory() -> str:
    from zenml.config.global_config import GlobalConfiguration

    return str(Path(GlobalConfiguration().config_directory).resolve())


def forget_build_cache(zenml_config: Optional[str] = None, client: Any = None) -> int:
    """Remove every cache tag of one ZenML configuration (default: the current one).

    For a private configuration about to be deleted (a test session, a
    notebook's workspace); the next build anywhere would prune them anyway.

    Returns:
        How many tags were removed.
    """
    from orchestrator.machine.engine import connect

    cache = BuildCache(client or connect(),
                       zenml_config=str(Path(zenml_config).resolve()) if zenml_config else None)
    return sum(cache.remove(key, entry) for key, entry in cache.entries().items())
