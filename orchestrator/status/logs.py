"""A step attempt's whole output, as the orchestrator keeps it: read once, or followed.

The runner writes every line of every attempt to
`run_log_dir(run_id)/<step>.<attempt>.log` (`orchestrator.running.step_logs`)
as it comes, and keeps the file after the container is removed: it is the
run's record of its steps' output. `LogTail` reads such a file and, while the
step runs, what was added since the last read (like `tail -f`, by polling:
no thread of its own; the panel calls `read_new()` when it redraws).
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any, Dict

# The most text one view keeps (the end of a longer log; the file has it all).
MAX_SHOWN_CHARS = 500_000


def log_path(run_id: str, step: str, attempt: int) -> Path:
    """Where the orchestrator keeps the output of one attempt of one step."""
    from orchestrator.running.step_logs import log_file_name, run_log_dir

    return run_log_dir(run_id) / log_file_name(step, attempt)


class LogTail:
    """The output of one attempt, read so far from its log file.

    Attributes:
        path: the file.
        text: what was read so far (the last MAX_SHOWN_CHARS characters).
        cut: how many characters from the start are not in `text`.
    """

    def __init__(self, path: Path, max_chars: int = MAX_SHOWN_CHARS) -> None:
        self.path = Path(path)
        self.max_chars = max_chars
        self.text = ""
        self.cut = 0
        self._offset = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    @property
    def exists(self) -> bool:
        return self.path.is_file()

    def read_new(self) -> bool:
        """Read what was added to the file since the last call; True if anything was.

        A missing file (the attempt has not started, or ran on another
        machine) reads as nothing; a file that shrank (rewritten) is read
        again from its start.
        """
        try:
            size = self.path.stat().st_size
        except OSError:
            return False
        if size < self._offset:
            self.text, self.cut, self._offset = "", 0, 0
            self._decoder.reset()
        if size == self._offset:
            return False
        with open(self.path, "rb") as handle:
            handle.seek(self._offset)
            data = handle.read(size - self._offset)
        self._offset += len(data)
        added = self._decoder.decode(data)
        if not added:
            return False
        self.text += added
        if len(self.text) > self.max_chars:
            extra = len(self.text) - self.max_chars
            self.text = self.text[extra:]
            self.cut += extra
        return True


def kept_stage_times(run_id: str) -> Dict[Any, Any]:
    """When each attempt's container was warmed up and left its gate, as the runner kept it.

    Read from the run's ``timings.json`` beside its logs, which the runner
    writes when the run ends: {} before that, or for a run of another machine.
    Keys are (step, attempt), values `orchestrator.status.timeline.StageTimes`.
    """
    from orchestrator.running.step_logs import run_log_dir
    from orchestrator.running.step_timing import read_timings
    from orchestrator.status.timeline import stage_times

    try:
        return stage_times(read_timings(run_log_dir(run_id), given_up=True))
    except Exception:  # noqa: BLE001 - no ZenML configuration to find the folder
        return {}
