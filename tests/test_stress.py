"""Stress: many step containers writing to one local ZenML store at the same time.

Every step container of `my_docker` opens the same SQLite database (ZenML's
default local store, bind-mounted into each container) and writes to it: step
run records, artifact versions, metadata, heartbeats, statuses. SQLite allows
one writer at a time, so parallel steps must wait for each other instead of
failing with `sqlite3.OperationalError: database is locked`. This test runs a
wide pipeline (WIDTH parallel steps that each log metadata several times and
write an artifact, all allowed to run at once) several times in a row, and
checks that the writers really were inside their steps at the same time, that
every run and step completed exactly once, that every output and metadata
value is right, and that no log line mentions a locked database.

ZenML 0.98 opens SQLite with a 60 s busy timeout (`timeout` in
`SqlZenStoreConfiguration.get_sqlalchemy_config`), so a writer waits for the
lock instead of failing; this test is what shows that this holds for our
one-container-per-step execution.

The pipeline is written into the project folder as a user would write it: the
project folder is ZenML's source root, so the code reaches the containers
through ZenML's code upload, like any user's pipeline.
"""

import importlib
import logging
import re
import sys
import textwrap
import time

import pytest

WIDTH = 10  # parallel steps per run, all allowed to run at once
RUNS = 3  # runs in a row
VALUES = 2000  # numbers per artifact
ROUNDS = 5  # metadata writes per step, spread over its run time
SEED = 7
# What a store that cannot cope with concurrent writers says (SQLAlchemy
# wraps sqlite3's errors in `OperationalError`).
LOCK_ERRORS = ("database is locked", "OperationalError", "database table is locked")

MODULE_NAME = "stress_pipeline"


def _module_source(width: int) -> str:
    """The user's pipeline file: seed -> `width` parallel writers -> gather."""
    params = ", ".join(f"p{i}: Dict[str, List[int]]" for i in range(width))
    names = ", ".join(f"p{i}" for i in range(width))
    return textwrap.dedent(f'''\
        """Written by tests/test_stress.py: parallel steps sharing one SQLite store."""
        import time
        from typing import Dict, List

        from zenml import log_metadata, pipeline, step

        WIDTH = {width}


        @step
        def seed() -> int:
            return {SEED}


        @step
        def payload(seed: int, index: int) -> Dict[str, List[int]]:
            """Writes step metadata several times, then an artifact (the return value).

            The writes are spread out so that the parallel steps' writes overlap.
            """
            values = [seed * index + k for k in range({VALUES})]
            for round_ in range({ROUNDS}):
                log_metadata(metadata={{f"round_{{round_}}": round_}})
                time.sleep(0.3)
            log_metadata(metadata={{"index": index, "checksum": sum(values)}})
            return {{"values": values}}


        @step
        def gather({params}) -> int:
            """Reads every artifact back, in another container."""
            return sum(sum(p["values"]) for p in ({names},))


        @pipeline(enable_cache=False)
        def stress_pipeline() -> None:
            source = seed()
            parts = [payload(source, index=i, id=f"payload_{{i}}") for i in range(WIDTH)]
            gather(*parts)
        ''')


def _expected_values(index: int):
    return [SEED * index + k for k in range(VALUES)]


def _most_at_once(intervals):
    """The largest number of (start, end) intervals that overlap at one moment."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


@pytest.fixture
def stress_module(project_dir):
    """Writes the pipeline file into the project and imports it."""
    path = project_dir / f"{MODULE_NAME}.py"
    path.write_text(_module_source(WIDTH))
    sys.path.insert(0, str(project_dir))
    try:
        yield importlib.import_module(MODULE_NAME)
    finally:
        sys.path.remove(str(project_dir))
        sys.modules.pop(MODULE_NAME, None)
        path.unlink()


def test_parallel_steps_share_the_sqlite_store(stress_module, run_containers, caplog):
    from zenml.client import Client

    caplog.set_level(logging.INFO)
    pipeline = stress_module.stress_pipeline.with_options(
        settings={"orchestrator.my_docker": {"max_parallelism": WIDTH}}
    )
    writers = [f"payload_{i}" for i in range(WIDTH)]
    durations, overlaps = [], []
    for attempt in range(RUNS):
        started = time.monotonic()
        response = pipeline()
        durations.append(time.monotonic() - started)
        run = Client().get_pipeline_run(response.id)

        assert run.status.value == "completed", f"run {attempt + 1}: {run.status}"
        assert run_containers(run.id) == [], "step containers were left behind"
        step_runs = Client().list_run_steps(pipeline_run_id=run.id, size=100).items
        names = sorted(s.name for s in step_runs)
        # Exactly one step run per step: nothing was retried or duplicated.
        assert names == sorted(["seed", "gather", *writers])
        assert all(s.status.value == "completed" for s in step_runs), [
            (s.name, s.status) for s in step_runs
        ]
        # The writers really ran side by side (ZenML's own start/end stamps):
        # otherwise this test would prove nothing about concurrent writers.
        overlaps.append(_most_at_once(
            [(s.start_time, s.end_time) for s in step_runs if s.name in writers]))
        assert overlaps[-1] >= WIDTH // 2, (
            f"run {attempt + 1}: at most {overlaps[-1]} writer steps ran at once"
        )
        steps = run.steps
        for i, name in enumerate(writers):
            assert steps[name].output.load() == {"values": _expected_values(i)}, name
            metadata = steps[name].run_metadata
            assert metadata.get("index") == i, (name, metadata)
            assert metadata.get("checksum") == sum(_expected_values(i)), (name, metadata)
            assert [metadata.get(f"round_{r}") for r in range(ROUNDS)] == list(range(ROUNDS))
        expected_total = sum(sum(_expected_values(i)) for i in range(WIDTH))
        assert steps["gather"].output.load() == expected_total

    # Plain text: no colour codes, no ZenML `highlight` backticks.
    log_text = re.sub(r"\x1b\[[0-9;]*m", "", caplog.text).replace("`", "")
    # The scan below is only meaningful if the containers' output is in it:
    # every step's own "has finished" line, forwarded by the orchestrator.
    for name in ["seed", "gather", *writers]:
        assert f"[{name}]" in log_text and f"{name} has finished" in log_text, (
            f"no output of step {name} was collected; the log scan would be blind"
        )
    bad = [line for line in log_text.splitlines()
           if any(marker.lower() in line.lower() for marker in LOCK_ERRORS)]
    assert not bad, "lock errors in the logs:\n" + "\n".join(bad[:20])
    print(f"{RUNS} runs of {WIDTH} parallel writers: "
          + ", ".join(f"{d:.0f} s" for d in durations)
          + f"; at most {overlaps} writers inside their step at once")
