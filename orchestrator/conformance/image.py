"""An image any orchestrator can run steps in without a build, as any user.

ZenML's step entrypoint unpacks the pipeline's code into ``/app`` and works
there, and ZenML keeps its configuration under ``$HOME/.config``. Images
ZenML builds have a world-writable ``/app``; the parent image used as it is
(``DockerSettings(skip_build=True)``) has none, and for a user other than
root (steps run as the caller's uid) its ``HOME`` is ``/``, which only root
may write: such a step fails with ``PermissionError``. ``my_docker`` gives
its containers a private ``/app`` and ``HOME=/tmp`` itself, but the
conformance kit must treat every orchestrator alike, and the tutorial's own
orchestrator should not need those tricks: this small image, ``FROM`` the
parent image with a writable ``/app`` and ``HOME=/tmp``, is built once and
serves every run, instead of a ZenML build per run (there is no registry to
keep builds in).
"""

from __future__ import annotations

import io
import re
from typing import Any, Optional

PARENT_ID_LABEL = "io.my-docker.conformance.parent-id"
RECIPE_LABEL = "io.my-docker.conformance.recipe"
RECIPE = "RUN mkdir -p /app && chmod 1777 /app\nENV HOME=/tmp\n"
REPOSITORY = "my-docker/skip-build"


def _tag_for(parent: str) -> str:
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "-", parent.split("/")[-1]).strip("-.")[:120]
    return f"{REPOSITORY}:{tag or 'latest'}"


def step_image(client: Any = None, parent_image: Optional[str] = None) -> str:
    """The name of an image FROM `parent_image` with a world-writable /app and HOME=/tmp.

    Args:
        client: a `docker.DockerClient` (default: the engine `connect()` finds).
        parent_image: the image to start from (default: the package's parent
            image, made if missing by `orchestrator.machine.base_image`).

    Returns:
        The image's name; it is rebuilt when the parent image or the recipe changed.

    Raises:
        DockerEngineUnavailableError: no engine answers.
        docker.errors.BuildError: the engine could not build it.
    """
    import hashlib

    import docker

    from orchestrator.machine.base_image import ensure_parent_image
    from orchestrator.machine.engine import connect

    client = client or connect()
    parent = parent_image or ensure_parent_image(client, log=lambda line: None)
    parent_id = client.images.get(parent).id
    name = _tag_for(parent)
    recipe = hashlib.sha256(RECIPE.encode()).hexdigest()[:12]
    try:
        labels = client.images.get(name).labels or {}
        if labels.get(PARENT_ID_LABEL) == parent_id and labels.get(RECIPE_LABEL) == recipe:
            return name
    except docker.errors.ImageNotFound:
        pass
    dockerfile = (f"FROM {parent}\n{RECIPE}"
                  f'LABEL {PARENT_ID_LABEL}="{parent_id}" {RECIPE_LABEL}="{recipe}"\n')
    # rm and forcerm: no intermediate container is left behind, even on failure.
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=name, rm=True,
                        forcerm=True, pull=False)
    return name
