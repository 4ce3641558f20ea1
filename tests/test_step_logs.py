"""A step's output: kept as printed, shown as lines, tracebacks folded. Pure, no Docker needed."""

import random
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.running.step_logs import (
    LineSplitter,
    MarkerFilter,
    TracebackFolder,
    log_file_name,
    meaningful_lines,
)

PLAIN = """\
Step `train` has started.
working on it
Failed to run step `train`: boom
Traceback (most recent call last):
  File "/app/steps.py", line 3, in train
    raise ValueError("boom")
ValueError: boom
Traceback (most recent call last):
  File "<frozen runpy>", line 198, in _run_module_as_main
  File "/app/steps.py", line 3, in train
    raise ValueError("boom")
ValueError: boom
""".splitlines()

CHAINED = """\
Traceback (most recent call last):
  File "x.py", line 1, in f
KeyError: 'output'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "x.py", line 2, in g
InputResolutionError: No step output found
done
""".splitlines()

BOXED = """\
╭───── Traceback (most recent call last) ─────╮
│ /app/steps.py:3 in train                    │
│ ❱ 3     raise ValueError("boom")            │
╰─────────────────────────────────────────────╯
ValueError: boom
after
""".splitlines()


def feed_all(lines):
    folder = TracebackFolder()
    shown = [out for line in lines for out in folder.feed(line)]
    return folder, shown


def test_a_traceback_printed_twice_is_shown_once_as_its_exception():
    folder, shown = feed_all(PLAIN)
    assert shown[:3] == PLAIN[:3]
    assert len(shown) == 4
    assert shown[3].startswith("ValueError: boom  [traceback of 3 lines folded")
    assert folder.exception == "ValueError: boom"


def test_chained_exceptions_show_each_exception_line_and_go_on():
    folder, shown = feed_all(CHAINED)
    assert [line.split("  [")[0] for line in shown] == [
        "KeyError: 'output'", "InputResolutionError: No step output found", "done"]
    assert folder.exception == "InputResolutionError: No step output found"


def test_rich_boxed_tracebacks_are_folded_too():
    folder, shown = feed_all(BOXED)
    assert [line.split("  [")[0] for line in shown] == ["ValueError: boom", "after"]


def test_output_without_tracebacks_passes_unchanged():
    lines = ["a", "  indented", "b: c"]
    assert feed_all(lines)[1] == lines


def test_zenml_routine_lines_are_not_meaningful():
    lines = ["Downloading code from artifact store path `/x`.", "Code download finished.",
             "Step `s` has started.", "Initiating heartbeat for step: s (id)", "my output"]
    assert meaningful_lines(lines) == ["my output"]


def test_log_file_names_are_safe():
    assert log_file_name("train", 2) == "train.2.log"  # a plain name as it is
    odd = log_file_name("prep 1/../x", 2)
    assert odd.startswith("prep_1_.._x~") and odd.endswith(".2.log")
    assert "/" not in log_file_name("../../etc", 1)


NAMES = st.one_of(st.text(min_size=1, max_size=150),
                  st.from_regex(r"[a-zA-Z0-9 _./-]{1,12}", fullmatch=True))


def test_non_ascii_step_names_get_their_own_log_files():
    """Fault 2 (caracal-pipeline/caracal#661): three parallel steps named in
    Chinese, Japanese and Russian all wrote `_.1.log`."""
    names = ["数据加载", "モデル学習", "обучение", "prep 1", "prep-1", "prep_1", "prép/1",
             "Prep_1", "x" * 120, "x" * 121, ".", "..", "_"]
    files = {log_file_name(name, 1) for name in names}
    assert len(files) == len(names), files
    assert log_file_name("数据加载", 1).startswith("数据加载~")


@settings(max_examples=100, deadline=None)
@given(st.lists(NAMES, min_size=2, max_size=6, unique=True), st.integers(1, 12))
def test_distinct_steps_and_attempts_never_share_a_log_file(names, attempt):
    files = [log_file_name(name, number) for name in names for number in (attempt, attempt + 1)]
    assert len(set(files)) == len(files)
    for file_name in files:
        assert "/" not in file_name and "\0" not in file_name
        assert not file_name.startswith(".")
        assert len(file_name.encode("utf-8")) <= 255  # any file system's limit


# -- the output stream: as printed to the file, lines to show -----------------------

def chunked(data: bytes, seed: int):
    """`data` cut at random places, as Docker's stream cuts it."""
    rng = random.Random(seed)
    position = 0
    while position < len(data):
        size = rng.randint(1, 7)
        yield data[position:position + size]
        position += size


def shown_lines(data: bytes, splitter=None):
    """What a terminal shows of each line: its last non-empty part after a carriage return."""
    lines = []
    pieces = data.split(b"\n")
    for number, line in enumerate(pieces):
        if number == len(pieces) - 1 and not line:
            break  # no unterminated last line
        parts = [part for part in line.split(b"\r") if part]
        if number == len(pieces) - 1 and not parts:
            break  # an unterminated last line that shows nothing
        lines.append(parts[-1].decode("utf-8", "replace") if parts else "")
    return lines


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200).map(lambda b: b.replace(b"\x1b", b"")), st.integers(0, 10 ** 6))
def test_lines_shown_do_not_depend_on_where_the_stream_was_cut(data, seed):
    splitter = LineSplitter()
    lines = [line for chunk in chunked(data, seed) for line in splitter.feed(chunk)]
    lines += splitter.rest()
    assert lines == shown_lines(data)


def test_a_carriage_return_flood_costs_time_in_proportion_to_its_size():
    """Fault 1 (docker/docker-py#2996): 64 MB of progress printed with carriage
    returns and no newline was split again as one growing line at every chunk
    (quadratic: still busy minutes after the step ended)."""
    progress = b"".join(b"\rdownloading %3d%%" % (i % 100) for i in range(1000))
    chunk = (progress * 20)[:16 * 1024]  # Docker sends 16 KiB pieces of a line
    splitter = LineSplitter()
    started = time.monotonic()
    for _ in range(64 * 64):  # 64 MiB
        assert splitter.feed(chunk) == []
    assert splitter.feed(b"\rdone 100%\n") == ["done 100%"]
    assert time.monotonic() - started < 10
    long = LineSplitter(max_line_bytes=100)
    for _ in range(1000):
        long.feed(b"y" * 1000)
    [line] = long.feed(b"\n")
    assert line.startswith("y" * 100) and "999900 more bytes" in line


WORDS = st.from_regex(r"(ready|done \{\"[a-z]{1,5}\": [0-9]{1,4}\})", fullmatch=True)
OUTPUT = st.binary(max_size=60)
MARKER = "my_docker step done:4f2a"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(OUTPUT, WORDS), max_size=8), st.integers(0, 10 ** 6))
def test_marker_lines_are_taken_out_and_every_other_byte_is_kept_as_printed(pieces, seed):
    stream = b"".join(piece if isinstance(piece, bytes) else
                      f"\n{MARKER} {piece}\n".encode() for piece in pieces)
    markers = MarkerFilter(MARKER)
    kept, said = [], []
    for chunk in chunked(stream, seed):
        for piece in markers.feed(chunk):
            (kept if isinstance(piece, bytes) else said).append(piece)
    kept.append(markers.rest())
    assert b"".join(kept) == b"".join(p for p in pieces if isinstance(p, bytes))
    assert said == [p for p in pieces if isinstance(p, str)]


def test_without_a_marker_every_byte_passes():
    markers = MarkerFilter(None)
    assert markers.feed(b"a\n\rb") == [b"a\n\rb"] and markers.rest() == b""
