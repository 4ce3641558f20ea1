"""A conformance report: one verdict per property, as text (terminal) and HTML (notebook)."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from orchestrator.conformance.properties import BY_KEY, PROPERTY_KEYS, Verdict

_COLOURS = {True: "#bbf7d0", False: "#fecaca", None: "#f3f4f6"}


@dataclass
class Report:
    """What the kit found about one stack's orchestrator.

    Attributes:
        stack: the stack's name.
        flavor: its orchestrator's flavor.
        verdicts: property key -> verdict (every property; unchecked ones
            have ``passed is None``).
        seconds: how long the battery took.
        run_seconds: battery run name -> seconds its pipeline call took.
        runs: battery run name -> what happened in it: ``notes`` (the probe
            steps' notes), ``steps`` (ZenML's step statuses), ``status``.
    """

    stack: str
    flavor: str
    verdicts: Dict[str, Verdict]
    seconds: float = 0.0
    run_seconds: Dict[str, float] = field(default_factory=dict)
    runs: Dict[str, dict] = field(default_factory=dict)

    @property
    def checked(self) -> List[str]:
        return [key for key, verdict in self.verdicts.items() if verdict.passed is not None]

    @property
    def failed(self) -> List[str]:
        """Keys of the properties that failed."""
        return [key for key, verdict in self.verdicts.items() if verdict.passed is False]

    @property
    def passed(self) -> List[str]:
        return [key for key, verdict in self.verdicts.items() if verdict.passed]

    @property
    def all_passed(self) -> bool:
        return bool(self.checked) and not self.failed

    def summary(self) -> str:
        return (f"{self.stack} ({self.flavor}): {len(self.passed)} of {len(self.checked)} "
                f"properties pass ({self.seconds:.0f} s)")

    def text(self) -> str:
        """A plain-text table, one property per line."""
        width = max(len(key) for key in PROPERTY_KEYS)
        lines = [self.summary()]
        for key in PROPERTY_KEYS:
            verdict = self.verdicts[key]
            if verdict.passed is None and verdict.detail == "not checked":
                continue
            lines.append(f"  {verdict.mark:4}  {key:{width}}  {verdict.detail}")
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps({
            "stack": self.stack, "flavor": self.flavor, "seconds": round(self.seconds, 1),
            "run_seconds": {k: round(v, 1) for k, v in self.run_seconds.items()},
            "runs": self.runs,
            "verdicts": {k: {"passed": v.passed, "detail": v.detail}
                         for k, v in self.verdicts.items()},
        }, indent=2)

    @classmethod
    def from_json(cls, text: str) -> "Report":
        data = json.loads(text)
        return cls(stack=data["stack"], flavor=data["flavor"], seconds=data["seconds"],
                   run_seconds=data.get("run_seconds", {}), runs=data.get("runs", {}),
                   verdicts={k: Verdict(k, v["passed"], v["detail"])
                             for k, v in data["verdicts"].items()})

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        return reports_html([self])


def reports_html(reports: Sequence[Report], keys: Optional[Sequence[str]] = None) -> str:
    """An HTML table: one row per property, one column per report (hover for details)."""
    keys = list(keys or [k for k in PROPERTY_KEYS
                         if any(r.verdicts[k].passed is not None for r in reports)])
    head = "".join(f"<th style='padding:4px 8px'>{html.escape(r.stack)}<br>"
                   f"<small>{html.escape(r.flavor)}, {r.seconds:.0f} s</small></th>"
                   for r in reports)
    rows = []
    for key in keys:
        cells = []
        for report in reports:
            verdict = report.verdicts[key]
            cells.append(
                f"<td style='background:{_COLOURS[verdict.passed]};padding:4px 8px' "
                f"title='{html.escape(verdict.detail, quote=True)}'><b>{verdict.mark}</b> "
                f"<small>{html.escape(verdict.detail[:90])}</small></td>")
        prop = BY_KEY[key]
        rows.append(f"<tr><td style='padding:4px 8px'><code>{key}</code><br><small>"
                    f"{html.escape(prop.title)} (notebook {prop.notebook})</small></td>"
                    + "".join(cells) + "</tr>")
    return ("<table style='border-collapse:collapse;font-size:13px'>"
            f"<tr><th style='text-align:left;padding:4px 8px'>property</th>{head}</tr>"
            + "".join(rows) + "</table>")


def reports_text(reports: Sequence[Report]) -> str:
    """Several reports as one plain-text table (a column per report)."""
    keys = [k for k in PROPERTY_KEYS if any(r.verdicts[k].passed is not None for r in reports)]
    width = max([len(k) for k in keys] + [8])
    header = f"{'property':{width}}  " + "  ".join(f"{r.stack[:14]:14}" for r in reports)
    lines = [header]
    for key in keys:
        lines.append(f"{key:{width}}  " + "  ".join(f"{r.verdicts[key].mark:14}" for r in reports))
    return "\n".join(lines)
