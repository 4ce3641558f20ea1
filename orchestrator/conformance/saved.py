"""Reports kept per orchestrator source: the same file, kit and ZenML give the same verdicts.

Notebook 6 runs the whole battery on the reader's file; notebook 7 shows
that very file's verdicts next to `my_docker`'s and `local_docker`'s. A
battery costs minutes on a 2-core machine, so notebook 6 saves its report
under a key made of the code the verdicts depend on: the orchestrator
file's code, every module of this package (the kit, and what the reader's
file imports from the package, such as the label schema) and ZenML's
version. Notebook 7 uses it when the key matches (nothing changed since)
and runs the battery again otherwise. Only reports where every checked
property passed are kept: a failure may come from the machine of the moment
(a load that timed a client out), and is worth a new battery.

Reports live in ``$XDG_CACHE_HOME/my-docker/conformance/`` (default
``~/.cache/my-docker/conformance/``), one JSON file per key; deleting the
folder only costs a battery.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional

from orchestrator.conformance.report import Report

PACKAGE_FOLDER = Path(__file__).parent.parent  # orchestrator/


def reports_folder() -> Path:
    """Where saved reports live (not created here)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "my-docker" / "conformance"


def report_key(source_text: str) -> str:
    """A hex digest of `source_text`, this package's sources and ZenML's version."""
    from zenml import __version__ as zenml_version

    digest = hashlib.sha256()
    for part in [source_text, zenml_version,
                 *(path.read_text() for path in sorted(PACKAGE_FOLDER.rglob("*.py")))]:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def save_report(source_text: str, report: Report) -> Optional[Path]:
    """Keep `report` as the verdicts on the orchestrator whose source is `source_text`.

    Returns:
        The file written, or None when some checked property failed (not kept).

    Raises:
        OSError: the cache folder cannot be written.
    """
    if not report.all_passed:
        return None
    folder = reports_folder()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{report_key(source_text)}.json"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(report.to_json())
    temporary.replace(path)
    return path


def saved_report(source_text: str) -> Optional[Report]:
    """The report saved for exactly this source (and kit, and ZenML), else None."""
    path = reports_folder() / f"{report_key(source_text)}.json"
    try:
        report = Report.from_json(path.read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none saved, or unreadable: the battery runs again
    return report if report.all_passed else None
