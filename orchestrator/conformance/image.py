"""An image any orchestrator can run steps in without a build: the parent image plus a writable /app.

ZenML's step entrypoint unpacks the pipeline's code into ``/app`` and works
there. Images ZenML builds have a world-writable ``/app``; the parent image
used as it is (``DockerSettings(skip_build=True)``) has none, so a step that
runs as an ordinary user fails with ``PermissionError: '/app'``. ``my_docker``
mounts a private tmpfs at ``/app`` in that case, but the conformance kit must
treat every orchestrator alike, and the tutorial's own orchestrator should not
need the trick: this two-line image gives every one of them what a ZenML build
would, once, instead of a build per pipeline run (about ten seconds each with
no registry to keep builds in).
"""

from __future__ import annotations

import io
import re
from typing import Any, Optional

PARENT_ID_LABEL = "io.my-docker.conformance.parent-id"
REPOSITORY = "my-docker/skip-build"


def _tag_for(parent: str) -> str:
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "-", parent.split("/")[-1]).strip("-.")[:120]
    return f"{REPOSITORY}:{tag or 'latest'}"


def step_image(client: Any = None, parent_image: Optional[str] = None) -> str:
    """The name of an image FROM `parent_image` with a world-writable /app (built if needed).

    Args:
        client: a `docker.DockerClient` (default: the engine `connect()` finds).
        parent_image: the image to start from (default: the package's parent
            image, made if missing by `orchestrator.machine.base_image`).

    Returns:
        The image's name; it is rebuilt when the parent image changed.

    Raises:
        DockerEngineUnavailableError: no engine answers.
        docker.errors.BuildError: the engine could not build it.
    """
    import docker

    from orchestrator.machine.base_image import ensure_parent_image
    from orchestrator.machine.engine import connect

    client = client or connect()
    parent = parent_image or ensure_parent_image(client, log=lambda line: None)
    parent_id = client.images.get(parent).id
    name = _tag_for(parent)
    try:
        existing = client.images.get(name)
        if (existing.labels or {}).get(PARENT_ID_LABEL) == parent_id:
            return name
    except docker.errors.ImageNotFound:
        pass
    dockerfile = (
        f"FROM {parent}\n"
        "RUN mkdir -p /app && chmod 1777 /app\n"
        f'LABEL {PARENT_ID_LABEL}="{parent_id}"\n'
    )
    # rm and forcerm: no intermediate container is left behind, even on failure.
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=name, rm=True,
                        forcerm=True, pull=False)
    return name
