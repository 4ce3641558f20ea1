"""Folding tracebacks in a step's live output: pure, no Docker needed."""

from orchestrator.running.step_logs import TracebackFolder, log_file_name, meaningful_lines

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
    assert log_file_name("prep 1/../x", 2) == "prep_1_.._x.2.log"
    assert "/" not in log_file_name("../../etc", 1)
