"""``python -m orchestrator.conformance --stack NAME``: the conformance kit in a terminal.

Run it in your ZenML project folder. It prints one line per property and
exits with 0 when every checked property passed, 1 when one failed, 2 when
the battery could not be set up.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    from orchestrator.conformance.properties import PROPERTIES, PROPERTY_KEYS

    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.conformance",
        description="Run the conformance battery on a registered stack's orchestrator.",
        epilog="properties: " + "; ".join(f"{p.key}: {p.title}" for p in PROPERTIES))
    parser.add_argument("--stack", required=True, help="name of a registered stack")
    parser.add_argument("--only", nargs="+", choices=PROPERTY_KEYS, metavar="PROPERTY",
                        help="check only these properties")
    parser.add_argument("--image", help="image for the probe steps (default: the parent "
                        "image with a writable /app)")
    parser.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    args = parser.parse_args(argv)

    from orchestrator.conformance import run_conformance
    from orchestrator.conformance.lifeline import follow_parent

    follow_parent()  # a battery whose starter was killed cleans up and ends
    from orchestrator.conformance.battery import ConformanceSetupError
    from orchestrator.errors import MyDockerError

    try:
        report = run_conformance(args.stack, args.only, image=args.image)
    except (ConformanceSetupError, MyDockerError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.text())
    if args.json:
        args.json.write_text(report.to_json())
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
