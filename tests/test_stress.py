"""Stress: many step containers writing to one local ZenML store at the same time.

Every step container of `my_docker` opens the same SQLite database (ZenML's
default local store, bind-mounted into each container) and writes to it: step
run records, artifact versions, metadata, heartbeats, statuses. SQLite allows
one writer at a time, so parallel steps must wait for each other instead of
failing with `sqlite3.OperationalError: database is locked`. This test runs a
wide pipeline (WIDTH parallel steps that each write an artifact and log
metadata, all allowed to run at once) several times in a row, and checks that
every run and step completed, every output and metadata value is right, and
no log line mentions a locked database.

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

WIDTH = 12  # parallel steps per run
RUNS = 3  # runs in a row
VALUES = 2000  # numbers per artifact
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
        from typing import Dict, List

        from zenml import log_metadata, pipeline, step

        WIDTH = {width}


        @step
        def seed() -> int:
            return {SEED}


        @step
        def payload(seed: int, index: int) -> Dict[str, List[int]]:
            """Writes an artifact (the return value) and step metadata."""
            values = [seed * index + k for k in range({VALUES})]
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
    durations = []
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
        steps = run.steps
        for i, name in enumerate(writers):
            assert steps[name].output.load() == {"values": _expected_values(i)}, name
            metadata = steps[name].run_metadata
            assert metadata.get("index") == i, (name, metadata)
            assert metadata.get("checksum") == sum(_expected_values(i)), (name, metadata)
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
          + ", ".join(f"{d:.0f} s" for d in durations))
