"""A pipeline run started by another process, for the kit to stop or interrupt.

``python -m orchestrator.conformance.child --root R --module M --folder F --name N --image I``
runs the probe module ``M``'s ``long_pipeline`` on the stack named by
``ZENML_ACTIVE_STACK_ID`` (the kit sets it), from the project's source root
``R``, as a user would from a terminal. Ctrl-C (SIGINT) raises
KeyboardInterrupt here as it does in a terminal, whatever the parent's
signal dispositions were. If the kit's process dies without cleaning up
(SIGKILL), this one interrupts itself and removes the containers its run's
notes name: they would otherwise run for the whole long step.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--module", required=True)
    parser.add_argument("--folder", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--seconds", type=float, default=600.0)
    args = parser.parse_args(argv)
    from orchestrator.conformance.lifeline import follow_parent

    parent_gone = follow_parent()

    from zenml.config import DockerSettings
    from zenml.utils import source_utils

    source_utils.set_custom_source_root(args.root)
    sys.path.insert(0, args.root)
    probe = importlib.import_module(args.module)
    settings = {"docker": DockerSettings(parent_image=args.image, skip_build=True)}
    try:
        probe.long_pipeline.with_options(settings=settings)(
            folder=args.folder, name=args.name, seconds=args.seconds)
    finally:
        if parent_gone.is_set():
            _remove_noted_containers(Path(args.folder))
    return 0


def _remove_noted_containers(folder: Path) -> None:
    """Remove the containers the run's probe steps noted (the kit would have)."""
    import docker

    client = docker.from_env()
    for path in folder.glob("*.json"):
        try:
            container_id = json.loads(path.read_text()).get("container_id")
            if container_id:
                client.containers.get(container_id).remove(force=True)
        except Exception:  # noqa: BLE001 - gone already, or a half-written note
            pass


if __name__ == "__main__":
    sys.exit(main())
