"""A Debian base image with Python, made with debootstrap where no registry answers.

The parent image (`orchestrator.machine.base_image`) is built FROM
``python:<major.minor>-slim`` when a registry answers. Where none does, this
module makes the base locally, as root on Debian: a minimal Debian root file
system with Python made by ``debootstrap`` (installed with apt-get if missing),
imported into the engine like ``docker import``, labelled with a hash of its
recipe so that it is reused until the recipe changes. Its Python is Debian's,
so it serves only a host with the same Python minor version
(`check_debian_python`).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator

import docker
import requests

from orchestrator.errors import BaseImageError
from orchestrator.machine.commands import Log, find_program, run_command
from orchestrator.machine.engine import api_timeout
from orchestrator.machine.image_labels import LABEL_PREFIX, get_image, has_labels, short_hash
from orchestrator.machine.mounts import mounts_below
from orchestrator.machine.root_setup import apt_install, is_root_on_debian

# Debian base made with debootstrap when no registry answers.
DEBIAN_SUITE = "bookworm"
DEBIAN_PYTHON = "3.11"  # the python3 that bookworm ships
DEBIAN_BASE_IMAGE = f"my-docker/debian-python:{DEBIAN_SUITE}"
DEBOOTSTRAP_ARGS = (
    "--variant=minbase",
    "--include=python3,python3-venv,python3-pip,ca-certificates",
    DEBIAN_SUITE,
)
# Left out of the imported image: package downloads and indexes (~100 MB that
# `apt-get update` recreates) and the kernel file systems Docker mounts itself.
ROOTFS_EXCLUDES = (
    "./var/cache/apt/archives/*.deb",
    "./var/lib/apt/lists/*",
    "./proc/*",
    "./sys/*",
    "./dev/*",
)
# `docker import` makes an image with no configuration at all; give it what
# the Dockerfile step and later users expect of a Debian image.
BASE_IMAGE_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["/bin/bash"]',
)


def _debian_base_labels() -> Dict[str, str]:
    recipe = repr((DEBOOTSTRAP_ARGS, ROOTFS_EXCLUDES, BASE_IMAGE_CHANGES)).encode()
    return {
        f"{LABEL_PREFIX}.base-recipe": short_hash(recipe),
        f"{LABEL_PREFIX}.python-version": DEBIAN_PYTHON,
    }


def ensure_debian_base(client: docker.DockerClient, python_version: str, log: Log) -> str:
    """Return a Debian image with Python, making it with debootstrap if missing.

    Args:
        client: a connected client of the engine that gets the image.
        python_version: the host's Python ``major.minor`` (named in the advice
            when the base cannot be made).
        log: where progress lines go.

    Returns:
        The base image's name (`DEBIAN_BASE_IMAGE`).

    Raises:
        BaseImageError: the base cannot be made (not root, debootstrap failed).
    """
    labels = _debian_base_labels()
    image = get_image(client, DEBIAN_BASE_IMAGE)
    if image is not None and has_labels(image, labels):
        log(f"Using the existing base {DEBIAN_BASE_IMAGE} ({image.short_id}).")
        return DEBIAN_BASE_IMAGE
    _require_debootstrap(python_version, log)
    rootfs = Path(tempfile.mkdtemp(prefix="my-docker-rootfs-", dir="/var/tmp"))
    try:
        debootstrap(rootfs, log)
        import_rootfs(client, rootfs, DEBIAN_BASE_IMAGE, labels, log)
    finally:
        _remove_tree(rootfs, log)
    return DEBIAN_BASE_IMAGE


def _require_debootstrap(python_version: str, log: Log) -> None:
    """Make sure debootstrap can run: we are root, and it is installed."""
    if not is_root_on_debian():
        raise BaseImageError(
            "No registry answers, so the base image must be made with debootstrap, "
            "which needs root on Debian. Run `sudo python -m orchestrator.machine.base_image`, "
            f"or make a registry reachable (python:{python_version}-slim)."
        )
    if find_program("debootstrap"):
        return
    log("debootstrap is not installed; installing it with apt-get.")
    ok, tail = apt_install(["debootstrap"], log)
    if not ok or not find_program("debootstrap"):
        raise BaseImageError("Installing debootstrap failed; last output:\n" + "\n".join(tail))


def _debootstrap_line_kind(line: str) -> str:
    """Group debootstrap's per-package lines, so that phases show, not packages.

    It says "I: Retrieving x" then "I: Validating x" for each of ~125 packages.
    """
    words = line.split()
    verb = words[1] if len(words) > 1 else line
    return "Retrieving" if verb == "Validating" else verb


def debootstrap(target: Path, log: Log) -> None:
    """Build a minimal Debian root file system with Python in `target` (~80 s).

    Raises:
        BaseImageError: debootstrap failed.
    """
    command = ["debootstrap", *DEBOOTSTRAP_ARGS, str(target)]
    log(f"Phase 1/3: {' '.join(command)} (about 80 s) ...")
    start = time.monotonic()
    code, tail = run_command(command, log, key=_debootstrap_line_kind)
    if code != 0:
        debootstrap_log = target / "debootstrap" / "debootstrap.log"
        raise BaseImageError(
            f"debootstrap failed with exit code {code}; last output:\n"
            + "\n".join(tail)
            + (f"\n(full log: {debootstrap_log})" if debootstrap_log.exists() else "")
        )
    log(f"debootstrap finished in {time.monotonic() - start:.0f} s.")


def import_rootfs(
    client: docker.DockerClient,
    rootfs: Path,
    name: str,
    labels: Dict[str, str],
    log: Log,
) -> str:
    """Turn a root file system folder into an image, like ``docker import``.

    The tar stream comes from GNU tar (it handles device files, hard links and
    ownership faithfully) and goes straight to the engine through docker-py,
    so no tar file is written to disk and no docker CLI is needed.

    Returns:
        The new image's id.

    Raises:
        BaseImageError: tar or the import failed.
    """
    log(f"Phase 2/3: importing {rootfs} as {name} ...")
    start = time.monotonic()
    command = ["tar", "--numeric-owner", "-C", str(rootfs)]
    command += [f"--exclude={pattern}" for pattern in ROOTFS_EXCLUDES]
    command += ["-c", "."]
    label_change = "LABEL " + " ".join(f"{key}={value}" for key, value in labels.items())
    repository, tag = name.rsplit(":", 1)
    # tar's messages go to a file: a full stderr pipe nobody reads would stall it.
    with tempfile.TemporaryFile() as tar_errors:
        tar = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=tar_errors)
        try:
            with api_timeout(client, 600):
                result = client.api.import_image(
                    src=_chunks_with_progress(tar.stdout, log),
                    repository=repository,
                    tag=tag,
                    changes=[*BASE_IMAGE_CHANGES, label_change],
                    stream_src=True,
                )
        except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
            tar.kill()
            raise BaseImageError(f"Importing the root file system failed: {error}") from error
        finally:
            tar.wait()
        if tar.returncode != 0:
            tar_errors.seek(0)
            message = tar_errors.read().decode(errors="replace").strip()
            raise BaseImageError(f"tar of {rootfs} failed ({tar.returncode}): {message}")
    image = get_image(client, name)
    if image is None or not has_labels(image, labels):
        raise BaseImageError(f"The import did not produce {name} with its labels: {result!r}")
    log(f"Imported {name} ({image.short_id}) in {time.monotonic() - start:.0f} s.")
    return image.id


def _chunks_with_progress(stream, log: Log, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """Read `stream` in chunks, reporting the amount sent every few seconds."""
    sent = 0
    next_report = time.monotonic() + 3
    for chunk in iter(lambda: stream.read(chunk_size), b""):
        sent += len(chunk)
        if time.monotonic() >= next_report:
            log(f"  ... {sent / 1e6:.0f} MB sent")
            next_report = time.monotonic() + 3
        yield chunk
    log(f"  {sent / 1e6:.0f} MB sent")


def _remove_tree(path: Path, log: Log) -> None:
    """Delete a root file system folder, but never through a mount point.

    A failed debootstrap can leave /proc, /sys or a bind-mounted /dev mounted
    inside the target; deleting through those would delete the host's files.
    """
    for point in mounts_below(path):
        subprocess.run(["umount", "--lazy", point], check=False, capture_output=True)
    remaining = mounts_below(path)
    if remaining:
        log(f"Not deleting {path}: still mounted there: {', '.join(remaining)}. Unmount, then delete it.")
        return
    shutil.rmtree(path, ignore_errors=True)


def check_debian_python(python_version: str) -> None:
    """Refuse a Debian base whose Python differs from the host's.

    ZenML runs steps with the Python of the image, and needs the same minor
    version as the client that pickled the pipeline.

    Raises:
        BaseImageError: the versions differ; the message says what to do.
    """
    if python_version != DEBIAN_PYTHON:
        raise BaseImageError(
            f"The host runs Python {python_version}, but no registry answers and "
            f"Debian {DEBIAN_SUITE}'s python3 is {DEBIAN_PYTHON}: the image needs the "
            f"host's Python minor version. Use Python {DEBIAN_PYTHON} on the host, or "
            f"make a registry reachable (python:{python_version}-slim)."
        )
