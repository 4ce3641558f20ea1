"""A parent image for pipeline images, made without a container registry.

ZenML builds every pipeline image FROM a parent image, by default
``zenmldocker/zenml:<zenml version>-py<python>`` pulled from Docker Hub. Where
no registry answers, that pull fails and so does every pipeline. This module
makes an equivalent parent image locally and tags it both with our own name and
with ZenML's default name, so that a pipeline that never sets ``parent_image``
builds offline too.

The image is built FROM ``python:<major.minor>-slim`` when a registry answers;
otherwise FROM a Debian root file system made with ``debootstrap`` and imported
into the engine (`orchestrator.machine.debian_base`). On top of that base it gets this machine's CA bundle (pip and
uv reach the package index only through it here), a venv in /opt/venv with
ZenML and uv installed.

Whether an image is up to date is decided by its labels (ZenML and Python
versions, a hash of the recipe, a hash of the CA bundle), never by its name:
an image someone tagged by hand is not trusted.

Command line::

    python -m orchestrator.machine.base_image [--force] [--print-name]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import io
import os
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, Optional, Sequence

import docker
import requests

from orchestrator.errors import BaseImageError, DockerEngineUnavailableError
from orchestrator.machine.commands import LineCondenser, Log
from orchestrator.machine.debian_base import check_debian_python, ensure_debian_base
from orchestrator.machine.engine import api_timeout, ensure_engine
from orchestrator.machine.image_labels import LABEL_PREFIX, get_image, has_labels, short_hash

PARENT_REPOSITORY = "my-docker/zenml-parent"
VENV = "/opt/venv"
# Inside the image the CA bundle lives at a path of its own that the
# environment variables point at: the system bundle
# (/etc/ssl/certs/ca-certificates.crt) is overwritten too, for tools that
# ignore those variables, but `update-ca-certificates` (run whenever a later
# `apt-get install` touches certificates) would regenerate it without our CA.
IMAGE_CA_BUNDLE = "/usr/local/share/my-docker/ca-bundle.crt"
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

# The recipe. Versions come in as build arguments, so the text (and its hash)
# only changes when the recipe does.
DOCKERFILE = f"""\
ARG BASE_IMAGE
FROM ${{BASE_IMAGE}}
ARG ZENML_VERSION
ARG PYTHON_VERSION
COPY ca-bundle.crt {IMAGE_CA_BUNDLE}
COPY ca-bundle.crt {SYSTEM_CA_BUNDLE}
ENV SSL_CERT_FILE={IMAGE_CA_BUNDLE} \\
    PIP_CERT={IMAGE_CA_BUNDLE} \\
    REQUESTS_CA_BUNDLE={IMAGE_CA_BUNDLE} \\
    VIRTUAL_ENV={VENV} \\
    PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    PYTHONUNBUFFERED=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    LANG=C.UTF-8
RUN python3 -c "import sys; v = '%d.%d' % sys.version_info[:2]; \\
    assert v == '${{PYTHON_VERSION}}', 'base image has Python ' + v + ', expected ${{PYTHON_VERSION}}'"
RUN python3 -m venv {VENV} \\
    && pip install --no-cache-dir --default-timeout=60 --retries=10 "zenml[local]==${{ZENML_VERSION}}" uv \\
    && python -c "import zenml; print('zenml', zenml.__version__, 'installed')"
"""

REGISTRY_PULL_TIMEOUT = 120  # seconds; a failing pull fails within a second here


# --------------------------------------------------------------------------
# Names and labels
# --------------------------------------------------------------------------


def host_python_version() -> str:
    """The host's Python as ``major.minor``, which the image must match."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def host_zenml_version() -> str:
    """The host's ZenML version, which the image must match exactly."""
    import zenml

    return zenml.__version__


def parent_image_name() -> str:
    """Our name for the parent image of the host's ZenML and Python versions."""
    return f"{PARENT_REPOSITORY}:{host_zenml_version()}-py{host_python_version()}"


def zenml_default_parent_image_name() -> str:
    """The parent image ZenML uses when a pipeline sets none.

    Taken from ZenML itself, so that a ZenML upgrade that renames it is followed.
    """
    from zenml.utils.pipeline_docker_image_builder import DEFAULT_DOCKER_PARENT_IMAGE

    return DEFAULT_DOCKER_PARENT_IMAGE


def host_ca_bundle() -> Path:
    """The CA bundle this machine trusts, to be trusted inside the image too.

    Raises:
        BaseImageError: no bundle was found.
    """
    candidates = [os.environ.get("SSL_CERT_FILE"), SYSTEM_CA_BUNDLE]
    with contextlib.suppress(ImportError):
        import certifi

        candidates.append(certifi.where())
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise BaseImageError(
        f"No CA bundle found on this machine (looked at {SYSTEM_CA_BUNDLE} and "
        "$SSL_CERT_FILE); pip inside the image needs one to reach the package index."
    )


@dataclass(frozen=True)
class ParentRecipe:
    """Everything that decides what the parent image contains.

    Attributes:
        zenml_version: ZenML version to install (the host's).
        python_version: Python ``major.minor`` the image must have (the host's).
        ca_bundle: the CA bundle's bytes.
    """

    zenml_version: str
    python_version: str
    ca_bundle: bytes

    @classmethod
    def for_host(cls) -> "ParentRecipe":
        """The recipe matching this machine's ZenML, Python and CA bundle."""
        return cls(
            zenml_version=host_zenml_version(),
            python_version=host_python_version(),
            ca_bundle=host_ca_bundle().read_bytes(),
        )

    @property
    def labels(self) -> Dict[str, str]:
        """Labels that identify an image built from exactly this recipe."""
        return {
            f"{LABEL_PREFIX}.zenml-version": self.zenml_version,
            f"{LABEL_PREFIX}.python-version": self.python_version,
            f"{LABEL_PREFIX}.recipe": short_hash(DOCKERFILE.encode()),
            f"{LABEL_PREFIX}.ca-bundle": short_hash(self.ca_bundle),
        }

    def build_args(self, base_image: str) -> Dict[str, str]:
        """The Dockerfile's build arguments."""
        return {
            "BASE_IMAGE": base_image,
            "ZENML_VERSION": self.zenml_version,
            "PYTHON_VERSION": self.python_version,
        }

    def build_context(self) -> io.BytesIO:
        """A tar build context: the Dockerfile and the CA bundle, nothing else."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name, data in (("Dockerfile", DOCKERFILE.encode()), ("ca-bundle.crt", self.ca_bundle)):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
        buffer.seek(0)
        return buffer


def find_parent_image(
    client: docker.DockerClient, recipe: ParentRecipe
) -> Optional[docker.models.images.Image]:
    """Find an image built from `recipe`, by its labels.

    Our name is looked at first. Failing that, any image with the labels
    qualifies, but images built FROM the parent (ZenML's pipeline images)
    inherit its labels: the oldest labelled image is the parent itself.
    """
    image = get_image(client, parent_image_name())
    if image is not None and has_labels(image, recipe.labels):
        return image
    filters = {"label": [f"{key}={value}" for key, value in recipe.labels.items()]}
    candidates = client.images.list(filters=filters)
    if not candidates:
        return None
    return min(candidates, key=lambda candidate: candidate.attrs.get("Created", ""))


def canonical_image_name(name: str) -> str:
    """An image name as Docker Hub's short form, whatever registry prefix an engine adds.

    Podman reports a local image named ``my-docker/zenml-parent:TAG`` as
    ``localhost/my-docker/zenml-parent:TAG`` and a loaded
    ``zenmldocker/zenml:TAG`` as ``docker.io/zenmldocker/zenml:TAG``; Docker
    reports both as given. All spell the same image here.
    """
    for prefix in ("localhost/", "docker.io/library/", "docker.io/", "index.docker.io/library/",
                   "index.docker.io/"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def image_has_name(tags: Sequence[str], name: str) -> bool:
    """Whether an image's tags (as the engine reports them) include `name`."""
    wanted = canonical_image_name(name)
    return any(canonical_image_name(tag) == wanted for tag in tags)


def _tag_both_names(image: docker.models.images.Image, log: Log) -> None:
    """Point our name and ZenML's default parent name at `image`."""
    for name in (parent_image_name(), zenml_default_parent_image_name()):
        if not image_has_name(image.tags, name):
            repository, tag = name.rsplit(":", 1)
            image.tag(repository, tag)
            log(f"Tagged {image.short_id} as {name}.")


# --------------------------------------------------------------------------
# The base image (the Debian one made with debootstrap: `debian_base`)
# --------------------------------------------------------------------------


def pull_registry_base(client: docker.DockerClient, python_version: str, log: Log) -> Optional[str]:
    """Pull ``python:<major.minor>-slim`` if a registry answers.

    Returns:
        The pulled image's name, or None when no registry answers (any failure
        counts as that: the fallback works without one).
    """
    name = f"python:{python_version}-slim"
    log(f"Trying to pull {name} from a registry ...")
    try:
        with api_timeout(client, REGISTRY_PULL_TIMEOUT):
            client.images.pull("python", tag=f"{python_version}-slim")
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as error:
        reason = getattr(error, "explanation", None) or str(error)
        reason = " ".join(str(reason).split())[:160]
        log(f"No registry answers ({reason}); using a Debian base made with debootstrap.")
        return None
    log(f"Pulled {name}.")
    return name


# --------------------------------------------------------------------------
# The parent image
# --------------------------------------------------------------------------


def _build_line_kind(line: str) -> Optional[str]:
    """Show every "Step n/m" line, the builder's bookkeeping never, output now and then."""
    if line.startswith("Step "):
        return line
    if line.lstrip().startswith(("--->", "Removing intermediate container")):
        return None
    return "output"


def build_parent_image(
    client: docker.DockerClient,
    recipe: ParentRecipe,
    base_image: str,
    log: Log,
    no_cache: bool = False,
) -> docker.models.images.Image:
    """Build the parent image FROM `base_image`, streaming condensed output.

    Raises:
        BaseImageError: the build failed; the message holds its last lines.
    """
    name = parent_image_name()
    log(f"Phase 3/3: building {name} FROM {base_image} (about 50 s, pip installs zenml[local]) ...")
    start = time.monotonic()
    condenser = LineCondenser(log, key=_build_line_kind, interval=3)
    labels = {**recipe.labels, f"{LABEL_PREFIX}.base-image": base_image}
    image_id: Optional[str] = None
    try:
        for chunk in client.api.build(
            fileobj=recipe.build_context(),
            custom_context=True,
            tag=name,
            labels=labels,
            buildargs=recipe.build_args(base_image),
            rm=True,
            forcerm=True,
            nocache=no_cache,
            pull=False,
            decode=True,
            timeout=None,  # a quiet pip step must not be cut short
        ):
            for line in chunk.get("stream", "").splitlines():
                condenser.feed(line)
            if "error" in chunk:
                raise BaseImageError(
                    f"Building {name} failed: {chunk['error'].strip()}\nLast output:\n"
                    + "\n".join(condenser.tail)
                )
            image_id = chunk.get("aux", {}).get("ID", image_id)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        raise BaseImageError(f"Building {name} failed: {error}") from error
    image = get_image(client, image_id or name)
    if image is None:
        raise BaseImageError(f"The build of {name} finished but produced no image.")
    log(f"Built {name} ({image.short_id}) in {time.monotonic() - start:.0f} s.")
    return image


def ensure_parent_image(
    client: Optional[docker.DockerClient] = None,
    force: bool = False,
    log: Log = print,
) -> str:
    """Make sure the parent image for the host's ZenML and Python exists.

    Does nothing (but make sure ZenML's default parent name points at it) when
    an image with the right labels exists. Otherwise builds it, FROM
    ``python:<x.y>-slim`` if a registry answers, else FROM a Debian base made
    with debootstrap. One process at a time builds (a file lock in the
    temporary folder); the others wait, then find the image done.

    Args:
        client: a connected client; by default one from `ensure_engine`.
        force: rebuild the parent image (without layer cache) even if one
            exists. The Debian base is reused if it has the right labels.
        log: where progress lines go.

    Returns:
        The image name to use as ``DockerSettings(parent_image=...)``. ZenML's
        default parent name points at the same image.

    Raises:
        BaseImageError: the image could not be built; the message says why.
        DockerEngineUnavailableError: no Docker engine answers.
    """
    client = client or ensure_engine(log=log)
    recipe = ParentRecipe.for_host()
    name = parent_image_name()
    if not force and _use_existing(client, recipe, log):
        return name
    with _build_lock(log):
        # Another process may have built it while we waited for the lock.
        if not force and _use_existing(client, recipe, log):
            return name
        replaced = find_parent_image(client, recipe)
        base = pull_registry_base(client, recipe.python_version, log)
        if base is None:
            check_debian_python(recipe.python_version)
            base = ensure_debian_base(client, recipe.python_version, log)
        image = build_parent_image(client, recipe, base, log, no_cache=force)
        _tag_both_names(image, log)
        if replaced is not None and replaced.id != image.id:
            _remove_if_unused(client, replaced, log)
    return name


def _use_existing(client: docker.DockerClient, recipe: ParentRecipe, log: Log) -> bool:
    """Tag and use an up-to-date parent image if there is one."""
    existing = find_parent_image(client, recipe)
    if existing is None:
        return False
    _tag_both_names(existing, log)
    log(f"Parent image {parent_image_name()} ({existing.short_id}) is up to date.")
    return True


@contextlib.contextmanager
def _build_lock(log: Log) -> Iterator[None]:
    """Let one process at a time build (tests, notebooks and CLI may race).

    Two concurrent builds would each run debootstrap and pip for minutes and
    then overwrite each other's tags.
    """
    path = Path(tempfile.gettempdir()) / "my-docker-parent-image.lock"
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"Another process is building the parent image; waiting for it ({path}).")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_if_unused(client: docker.DockerClient, image: docker.models.images.Image, log: Log) -> None:
    """Remove a replaced parent image unless something still uses it.

    A forced rebuild leaves the previous image untagged but with the same
    labels; removing it keeps `find_parent_image` from ever picking it again.
    """
    try:
        image.reload()
        if not image.tags:
            client.images.remove(image.id)
            log(f"Removed the replaced image {image.short_id}.")
    except docker.errors.DockerException:
        pass  # still used by a container or by images built FROM it: keep it


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line: build the parent image if needed, print its name and id."""
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.machine.base_image",
        description="Make the ZenML parent image locally, with no registry.",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if an up-to-date image exists")
    parser.add_argument(
        "--print-name", action="store_true", help="print only the image name (progress goes to stderr)"
    )
    args = parser.parse_args(argv)

    def progress(line: str) -> None:
        print(line, file=sys.stderr if args.print_name else sys.stdout, flush=True)

    try:
        client = ensure_engine(log=progress)
        name = ensure_parent_image(client, force=args.force, log=progress)
        image = client.images.get(name)
    except (BaseImageError, DockerEngineUnavailableError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        print(f"error: the Docker engine failed: {error}", file=sys.stderr)
        return 1
    if args.print_name:
        print(name)
    else:
        print(f"Parent image: {name} ({image.id})")
        print(f"Also tagged:  {zenml_default_parent_image_name()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
