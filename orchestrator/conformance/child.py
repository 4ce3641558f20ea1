"""A pipeline run started by another process, for the kit to stop or interrupt.

``python -m orchestrator.conformance.child --root R --module M --folder F --name N --image I``
runs the probe module ``M``'s ``long_pipeline`` on the stack named by
``ZENML_ACTIVE_STACK_ID`` (the kit sets it), from the project's source root
``R``, as a user would from a terminal. Ctrl-C (SIGINT) raises
KeyboardInterrupt here as it does in a terminal, whatever the parent's
signal dispositions were.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--module", required=True)
    parser.add_argument("--folder", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--seconds", type=float, default=600.0)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    from zenml.config import DockerSettings
    from zenml.utils import source_utils

    source_utils.set_custom_source_root(args.root)
    sys.path.insert(0, args.root)
    probe = importlib.import_module(args.module)
    settings = {"docker": DockerSettings(parent_image=args.image, skip_build=True)}
    probe.long_pipeline.with_options(settings=settings)(
        folder=args.folder, name=args.name, seconds=args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
