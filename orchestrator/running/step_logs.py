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

import contextlib
import hashlib
import re
from pathlib import Path
from typing import List, Optional, Tuple, Union

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# The longest line the client's log shows (a longer one is cut there; the kept
# log file has it whole).
MAX_SHOWN_LINE_BYTES = 16 * 1024


class LineSplitter:
    """Turns a container's output, as chunks of bytes, into the lines to show.

    Docker's log stream cuts output anywhere, mid-line or mid-character;
    `feed` returns the lines a chunk completes, `rest` whatever is left once
    the stream ends. Its cost is linear in the output's size whatever the
    output's shape: each byte is looked at once, and a line keeps at most
    `max_line_bytes` (the rest of a longer line is counted, not kept).

    A carriage return rewrites the line on a terminal (progress bars print
    ``\r 10%`` ``\r 20%`` ... with no newline for minutes): a line shows what
    a terminal would have shown last, its last non-empty part after a
    carriage return, so a progress bar is one line, not megabytes. Lines are
    decoded as UTF-8 (bad bytes replaced), colour codes removed. This is for
    showing only: the kept log file gets the bytes as printed (`StepLogFile`).
    """

    def __init__(self, max_line_bytes: int = MAX_SHOWN_LINE_BYTES) -> None:
        self._max = max_line_bytes
        self._part = bytearray()  # the line's text after its last carriage return
        self._part_cut = 0  # bytes of that part beyond the limit, not kept
        self._shown: Optional[Tuple[bytes, int]] = None  # the last non-empty part before it

    def feed(self, chunk: bytes) -> List[str]:
        """The complete lines `chunk` ends."""
        lines = []
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                break
            self._add(chunk[start:end])
            lines.append(self._take())
            start = end + 1
        self._add(chunk[start:])
        return lines

    def rest(self) -> List[str]:
        """The last, unterminated line (if any), once the stream has ended."""
        if not self._part and self._shown is None:
            return []
        return [self._take()]

    def _add(self, piece: bytes) -> None:
        """Add a piece of a line (no newline in it): only its last parts can show."""
        first = piece.find(b"\r")
        if first < 0:
            self._extend(piece)
            return
        last = piece.rfind(b"\r")
        self._extend(piece[:first])
        self._close_part()
        between = piece[first + 1:last].rstrip(b"\r")
        if between:  # the last non-empty part between the first and last carriage return
            self._extend(between[between.rfind(b"\r") + 1:])
            self._close_part()
        self._extend(piece[last + 1:])

    def _close_part(self) -> None:
        """A carriage return: the part so far shows unless a non-empty one follows."""
        if self._part or self._part_cut:
            self._shown = (bytes(self._part), self._part_cut)
        self._part, self._part_cut = bytearray(), 0

    def _extend(self, data: bytes) -> None:
        room = self._max - len(self._part)
        if room > 0:
            self._part += data[:room]
        self._part_cut += max(0, len(data) - max(room, 0))

    def _take(self) -> str:
        if self._part or self._part_cut or self._shown is None:
            raw, cut = bytes(self._part), self._part_cut
        else:
            raw, cut = self._shown
        self._part, self._part_cut, self._shown = bytearray(), 0, None
        text = _text(raw)
        if cut:
            text += f" [... {cut} more bytes; see the step's log file]"
        return text


def _text(raw: bytes) -> str:
    return _ANSI_ESCAPE.sub("", raw.decode("utf-8", errors="replace")).rstrip("\r")


# A marker line being read longer than this is not one of ours.
_MAX_MARKER_LINE_BYTES = 64 * 1024


class MarkerFilter:
    """Takes the orchestrator's marker lines out of a container's output bytes.

    The step entrypoint writes its "ready" and "done" lines into the step's
    output as ``\n<marker> <what>\n`` (`step_entrypoint`); the leading newline
    is its own, so that the line stands alone after output that did not end
    with one. `feed` returns, in order, the output's other bytes, unchanged,
    and what each marker line said (the text after the marker, a `str`). It
    passes bytes on as they come, holding back only the few at a chunk's end
    that may begin a marker line, so its cost is linear in the output's size.
    """

    def __init__(self, marker: Optional[str]) -> None:
        self._pattern = b"\n" + marker.encode("utf-8") if marker else None
        self._held = b""
        self._said: Optional[bytearray] = None  # a marker line being read

    def feed(self, chunk: bytes) -> "List[Union[bytes, str]]":
        """The output's bytes (`bytes`) and the marker lines' words (`str`), in order."""
        if self._pattern is None:
            return [chunk] if chunk else []
        data = self._held + chunk if self._held else chunk
        self._held = b""
        pieces: "List[Union[bytes, str]]" = []
        position = 0
        while position < len(data):
            if self._said is not None:
                end = data.find(b"\n", position)
                stop = len(data) if end < 0 else end
                if len(self._said) < _MAX_MARKER_LINE_BYTES:
                    self._said += data[position:stop]
                if end < 0:
                    break
                pieces.append(self._said.decode("utf-8", errors="replace").strip())
                self._said = None
                position = end + 1
                continue
            hit = data.find(self._pattern, position)
            if hit < 0:
                held = self._prefix_at_end(data, position)
                if len(data) - held > position:
                    pieces.append(data[position:len(data) - held])
                self._held = data[len(data) - held:]
                break
            if hit > position:
                pieces.append(data[position:hit])
            self._said = bytearray()
            position = hit + len(self._pattern)
        return pieces

    def rest(self) -> bytes:
        """Bytes held back at the stream's end (they were the step's, not a marker)."""
        held, self._held, self._said = self._held, b"", None
        return held

    def _prefix_at_end(self, data: bytes, position: int) -> int:
        """How many bytes at the end of `data` may begin a marker line."""
        assert self._pattern is not None
        start = max(position, len(data) - len(self._pattern) + 1)
        newline = data.find(b"\n", start)
        while newline >= 0:
            if self._pattern.startswith(data[newline:]):
                return len(data) - newline
            newline = data.find(b"\n", newline + 1)
        return 0


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


_UNSAFE = re.compile(r"[^\w.-]+")  # \w: letters of any script, digits, _
# A step name used as is in a file name: lower case (file systems that ignore
# case cannot mix up two names), no leading dot, short.
_PLAIN_NAME = re.compile(r"[a-z0-9_-][a-z0-9_.-]{0,99}")


def log_file_name(step_name: str, attempt: int) -> str:
    """`<step>.<attempt>.log`: one file per step name and attempt, for any names.

    A plain name (lower-case letters, digits, ``_.-``) is used as it is.
    Any other name (``数据加载``, ``prép/1``, ``Train``, a very long one) becomes
    its readable part (letters of any script, digits, ``_.-``; at most 120
    bytes), then ``~`` and a hash of the whole name: two names never share a
    file (a plain name has no ``~``, and names with one differ in their hash).
    """
    if _PLAIN_NAME.fullmatch(step_name):
        stem = step_name
    else:
        name = step_name.encode("utf-8", "surrogatepass")
        digest = hashlib.sha256(name).hexdigest()[:12]
        readable = _UNSAFE.sub("_", name.decode("utf-8", "replace")).strip("._")
        readable = readable.encode("utf-8")[:120].decode("utf-8", "ignore")
        stem = f"{readable or 'step'}~{digest}"
    return f"{stem}.{attempt}.log"


def run_log_dir(run_id: str) -> Path:
    """Where the step logs of one run are kept: beside ZenML's own configuration.

    `<ZenML config directory>/my_docker/runs/<pipeline run id>/`, so that a
    private ZENML_CONFIG_PATH (a notebook's, a test's) keeps its logs too.
    """
    from zenml.config.global_config import GlobalConfiguration

    return Path(GlobalConfiguration().config_directory) / "my_docker" / "runs" / run_id


class StepLogFile:
    """The whole output of one attempt of one step, written as it comes.

    The runner writes the container's output bytes exactly as the step
    printed them (`write_bytes`); lines of its own (a refusal) go in as text.
    """

    def __init__(self, folder: Optional[Path], step_name: str, attempt: int) -> None:
        self.path: Optional[Path] = None
        self._file = None
        if folder is None:
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.path = folder / log_file_name(step_name, attempt)
            self._file = open(self.path, "wb")  # noqa: SIM115 - open while the step runs
        except OSError:
            self.path = None  # no log file is better than no run

    def write_bytes(self, data: bytes) -> None:
        """Append output exactly as printed."""
        if self._file is not None and data:
            self._file.write(data)
            self._file.flush()

    def write(self, line: str) -> None:
        """Append one line of text."""
        self.write_bytes(line.encode("utf-8", errors="replace") + b"\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        """Delete the file of an attempt whose container never ran its step.

        Only unlinked: the thread following that container may still write to
        it, and a later attempt may open a file of the same name.
        """
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
