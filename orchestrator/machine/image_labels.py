"""How this project's images are recognised in an engine: by labels, never by name.

The parent image (`orchestrator.machine.base_image`) and the Debian base it may
be built FROM (`orchestrator.machine.debian_base`) carry labels that say what
they were made from (versions, hashes of their recipes). An image is trusted
only when its labels match: someone may have tagged another image by hand
with the same name. This module owns the label names and the look-ups.
"""

from __future__ import annotations

import hashlib
from typing import Dict, Optional

import docker

LABEL_PREFIX = "org.my-docker"


def short_hash(data: bytes) -> str:
    """The first 12 hex digits of `data`'s SHA-256: a label value that changes with `data`."""
    return hashlib.sha256(data).hexdigest()[:12]


def has_labels(image: docker.models.images.Image, labels: Dict[str, str]) -> bool:
    """Whether `image` carries every label of `labels`, each with the same value."""
    found = image.labels or {}
    return all(found.get(key) == value for key, value in labels.items())


def get_image(client: docker.DockerClient, name: str) -> Optional[docker.models.images.Image]:
    """The image called `name` (or with that id) in `client`'s engine, or None.

    Raises:
        docker.errors.APIError: the engine failed otherwise than "no such image".
    """
    try:
        return client.images.get(name)
    except docker.errors.ImageNotFound:
        return None
