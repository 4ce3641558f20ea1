"""A step's output: kept whole in a file, shown folded in the client's log.

A failing ZenML step prints its traceback twice (ZenML logs it, then Python
prints it again as the process dies), often 100 lines or more each. Streamed
as is into the terminal or notebook that runs the pipeline, that buries the
one line that matters. So the client's log shows each traceback folded to
its exception line, once; the whole output of every attempt goes to a file
that the failure message, the status command and the panel point to.

`TracebackFolder` is pure (lines in, lines out) and unit-tested;
`StepLogFile` is the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Optional

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class LineSplitter:
    """Turns a container's output, as chunks of bytes, into lines of text.

    Docker's log stream cuts output anywhere, mid-line or mid-character;
    `feed` returns the lines a chunk completes, `rest` whatever is left once
    the stream ends. Lines are decoded as UTF-8 (bad bytes replaced), with
    the trailing carriage return and colour codes removed.
    """

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> List[str]:
        """The complete lines `chunk` ends."""
        self._buffer += chunk
        *complete, self._buffer = self._buffer.split(b"\n")
        return [_text(raw) for raw in complete]

    def rest(self) -> List[str]:
        """The last, unterminated line (if any), once the stream has ended."""
        rest, self._buffer = self._buffer, b""
        return [_text(rest)] if rest else []


def _text(raw: bytes) -> str:
    return _ANSI_ESCAPE.sub("", raw.decode("utf-8", errors="replace")).rstrip("\r")


_TRACEBACK_START = "Traceback (most recent call last):"
_CHAIN_LINES = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)
# rich's boxed tracebacks (ZenML's default when a terminal is attached).
_BOX_START, _BOX_SIDE, _BOX_END = "╭", "│", "╰"


class TracebackFolder:
    """Folds Python tracebacks (plain or rich-boxed) in a stream of lines.

    Feed it every line; it returns the lines to show. A traceback becomes its
    exception line with a note of how many lines were folded; an exception
    already shown (the same error printed again) is not shown twice.

    Attributes:
        exceptions: exception lines seen, in order, without repeats.
    """

    def __init__(self) -> None:
        self.exceptions: List[str] = []
        self._folded = 0  # lines folded in the traceback being read
        self._in_traceback = False
        self._in_box = False
        self._after_exception = False  # a chained traceback may follow

    def feed(self, line: str) -> List[str]:
        """The lines to show for one line of output (often none)."""
        text = line.strip()
        if self._after_exception:
            if not text or text in _CHAIN_LINES:
                return []
            self._after_exception = False
        if self._in_box:
            self._folded += 1
            if text.startswith(_BOX_END):
                self._in_box = False
                self._in_traceback = True  # the exception line follows the box
            return []
        if text.startswith(_BOX_START) and "Traceback" in text:
            self._in_box = True
            self._folded += 1
            return []
        if text == _TRACEBACK_START:
            self._in_traceback = True
            self._folded += 1
            return []
        if self._in_traceback:
            if not text or line[:1] in (" ", "\t") or text in _CHAIN_LINES \
                    or text.startswith(_BOX_SIDE):
                self._folded += 1
                return []
            return self._exception_line(text)
        return [line]

    def _exception_line(self, text: str) -> List[str]:
        folded, self._folded, self._in_traceback = self._folded, 0, False
        self._after_exception = True
        if text in self.exceptions:
            return []
        self.exceptions.append(text)
        return [f"{text}  [traceback of {folded} lines folded; see the step's log file]"]

    @property
    def exception(self) -> Optional[str]:
        """The last exception the step printed, if any."""
        return self.exceptions[-1] if self.exceptions else None


# What ZenML's step entrypoint prints in every container: true, but no help
# in telling why a step failed.
_ZENML_ROUTINE = re.compile(
    r"^(Downloading code from |Code download finished|Step `.*` has (started|finished)"
    r"|Initiating heartbeat for step|Failed to run step `|Failed preparing step `"
    r"|Using cached version of step|Caching (enabled|disabled))"
)


def meaningful_lines(lines: "list[str]") -> List[str]:
    """`lines` without ZenML's routine messages (code download, heartbeat, ...)."""
    return [line for line in lines if not _ZENML_ROUTINE.match(line.strip())]


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def log_file_name(step_name: str, attempt: int) -> str:
    """`<step>.<attempt>.log`, with characters unsafe in file names replaced."""
    return f"{_UNSAFE.sub('_', step_name).strip('.') or 'step'}.{attempt}.log"


def run_log_dir(run_id: str) -> Path:
    """Where the step logs of one run are kept: beside ZenML's own configuration.

    `<ZenML config directory>/my_docker/runs/<pipeline run id>/`, so that a
    private ZENML_CONFIG_PATH (a notebook's, a test's) keeps its logs too.
    """
    from zenml.config.global_config import GlobalConfiguration

    return Path(GlobalConfiguration().config_directory) / "my_docker" / "runs" / run_id


class StepLogFile:
    """The whole output of one attempt of one step, written as it comes."""

    def __init__(self, folder: Optional[Path], step_name: str, attempt: int) -> None:
        self.path: Optional[Path] = None
        self._file = None
        if folder is None:
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.path = folder / log_file_name(step_name, attempt)
            self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - open while the step runs
        except OSError:
            self.path = None  # no log file is better than no run

    def write(self, line: str) -> None:
        if self._file is not None:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
