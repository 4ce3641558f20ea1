"""The conformance kit: every judge can fail, and the battery tells orchestrators apart.

* Pure tests of each property's judge: facts that break the property must
  fail it (a kit that cannot fail is a defect), facts that keep it must pass.
* The command line: clear errors for a stack that does not exist.
* Real batteries, all at once (one process each, as notebook 7 runs them):
  the tutorial's final file with one reference solution made wrong fails the
  matching property. The whole battery on `my_docker` (all pass), on ZenML's
  `local_docker` (exactly the properties it lacks fail) and on the final
  file with every reference solution (all pass) is run and asserted by
  notebook 7 (and the last on its own by notebook 6), which `make test` and
  CI's unprivileged pass run under nbmake: running those three batteries
  here too would add about eight minutes to each CI pass.
* The kit's processes end with whoever started them (SIGKILL included).
"""

import subprocess
import sys

import pytest

from orchestrator.conformance.properties import (
    PROPERTY_KEYS,
    REQUESTED_CPUS,
    REQUESTED_MEMORY_BYTES,
    BatteryFacts,
    ClientFacts,
    RunFacts,
    Verdict,
    expected_statuses,
    judge,
)
from orchestrator.conformance.report import Report, reports_html, reports_text
from orchestrator.running.labels import (
    ATTEMPT_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    PIPELINE_RUN_ID_LABEL,
    STEP_LABEL,
)

KIT = "kit-container"


def note(time, container="c1", **facts):
    return {"time": time, "pid": 10, "container_id": container, **facts}


def labels_for(run_id, step, attempt=1):
    return {MANAGED_BY_LABEL: MANAGED_BY_VALUE, PIPELINE_RUN_ID_LABEL: run_id,
            STEP_LABEL: step, ATTEMPT_LABEL: str(attempt)}


def good_shape():
    limits = {"memory_bytes": REQUESTED_MEMORY_BYTES, "cpus": REQUESTED_CPUS}
    run = RunFacts(status="completed", run_id="r1", steps={
        "branch_a": "completed", "branch_b": "completed", "victim": "completed"})
    run.notes = {
        "branch_a.started": note(0.0, "a" * 64, limits=limits),
        "branch_b.started": note(0.5, "b" * 64, limits={}),
        "branch_a.ended": note(3.0, "a" * 64),
        "branch_b.ended": note(3.2, "b" * 64),
        "victim.attempt1": note(0.2, "v" * 64),
        "victim.killed": {"time": 0.4, "ok": True},
        "victim.attempt2": note(2.0, "w" * 64),
    }
    run.containers = {"a" * 64: {"labels": labels_for("r1", "branch_a")},
                      "b" * 64: {"labels": labels_for("r1", "branch_b")},
                      "v" * 64: {"labels": labels_for("r1", "victim", 1)},
                      "w" * 64: {"labels": labels_for("r1", "victim", 2)}}
    return run


def mode_run(mode, *, slow_end=True, after_slow=False, after_fail=False, slow_status="completed"):
    run = RunFacts(status="failed", run_id=mode)
    run.notes = {"slow.started": note(0.0), "fail_soon.started": note(0.1),
                 "fail_soon.failing": note(1.0)}
    if slow_end:
        run.notes["slow.ended"] = note(2.0)
    if after_slow:
        run.notes["after_slow.started"] = note(3.0)
        run.notes["after_slow.ended"] = note(3.5)
    if after_fail:
        run.notes["after_fail.started"] = note(3.0)
    run.steps = {"slow": slow_status, "fail_soon": "failed"}
    if after_slow:
        run.steps["after_slow"] = "completed"
    return run


def good_facts():
    facts = BatteryFacts(kit_container_id=KIT, containers_checked=9)
    facts.runs["shape"] = good_shape()
    facts.runs["fail_fast"] = mode_run("fail_fast", slow_end=False, slow_status="stopped")
    facts.runs["stop_on_failure"] = mode_run("stop_on_failure")
    facts.runs["continue_on_failure"] = mode_run("continue_on_failure", after_slow=True)
    stop_run = RunFacts(status="stopped", notes={"long_stop.started": note(0.0)})
    facts.clients["stop"] = ClientFacts(run=stop_run, exit_seconds=3.0,
                                        container_running_after=False)
    interrupt_run = RunFacts(status="stopped", notes={"long_interrupt.started": note(0.0)})
    facts.clients["interrupt"] = ClientFacts(run=interrupt_run, exit_seconds=2.0,
                                             container_running_after=False)
    for kind in ("shape_with_victim", "running", "stopped"):
        expected = expected_statuses(kind)
        facts.fetched.append((kind, expected, (expected[0], dict(expected[1]))))
    return facts


def verdict(facts, key):
    return judge(facts, [key])[key]


def test_good_facts_pass_every_property():
    verdicts = judge(good_facts(), PROPERTY_KEYS)
    assert {key: v.passed for key, v in verdicts.items()} == dict.fromkeys(PROPERTY_KEYS, True), \
        {key: v.detail for key, v in verdicts.items() if not v.passed}


def test_unrequested_properties_are_not_checked():
    verdicts = judge(good_facts(), ["parallel"])
    assert verdicts["parallel"].passed is True
    assert all(v.passed is None for key, v in verdicts.items() if key != "parallel")


def breaking(change):
    facts = good_facts()
    change(facts)
    return facts


# property -> ways to break it (each must fail it)
BREAKERS = {
    "one_container_per_step": [
        lambda f: [n.update(container_id=None) for k, n in f.runs["shape"].notes.items()
                   if k.startswith("branch")],  # ran in no container (in-process)
        lambda f: f.runs["shape"].notes["branch_b.started"].update(container_id="a" * 64),
        lambda f: f.runs["shape"].notes["branch_a.started"].update(container_id=KIT),
    ],
    "labels": [
        lambda f: f.runs["shape"].containers["a" * 64].update(labels={}),
        lambda f: f.runs["shape"].containers["w" * 64]["labels"].update({ATTEMPT_LABEL: "1"}),
        lambda f: f.runs["shape"].containers["b" * 64]["labels"].update(
            {PIPELINE_RUN_ID_LABEL: "another run"}),
    ],
    "parallel": [
        lambda f: f.runs["shape"].notes.update(
            {"branch_b.started": note(3.5, "b" * 64), "branch_b.ended": note(6.0, "b" * 64)}),
        lambda f: f.runs["shape"].notes.pop("branch_b.ended"),
    ],
    "mode_fail_fast": [
        lambda f: f.runs.update(fail_fast=mode_run("fail_fast")),  # slow left to complete
        lambda f: f.runs.update(fail_fast=mode_run("fail_fast", slow_end=False,
                                                   after_slow=True)),
        lambda f: f.runs.update(fail_fast=mode_run("fail_fast", slow_end=False,
                                                   after_fail=True)),
        lambda f: setattr(f.runs["fail_fast"], "notes", {}),  # ZenML refused the mode
    ],
    "mode_stop_on_failure": [
        lambda f: f.runs.update(stop_on_failure=mode_run("stop_on_failure", slow_end=False,
                                                         slow_status="stopped")),
        lambda f: f.runs.update(stop_on_failure=mode_run("stop_on_failure", after_slow=True)),
    ],
    "mode_continue_on_failure": [
        lambda f: f.runs.update(continue_on_failure=mode_run("continue_on_failure")),
        lambda f: f.runs.update(continue_on_failure=mode_run(
            "continue_on_failure", after_slow=True, after_fail=True)),
        lambda f: setattr(f.runs["continue_on_failure"], "status", "completed"),
    ],
    "retry_killed": [
        lambda f: f.runs["shape"].notes.pop("victim.attempt2"),
        lambda f: f.runs["shape"].notes["victim.attempt2"].update(container_id="v" * 64),
        lambda f: setattr(f.runs["shape"], "status", "failed"),
        lambda f: f.runs["shape"].notes["victim.attempt1"].update(container_id=None),
    ],
    "resource_limits": [
        lambda f: f.runs["shape"].notes["branch_a.started"].update(limits={}),
        lambda f: f.runs["shape"].notes["branch_a.started"]["limits"].update(cpus=2.0),
    ],
    "stop": [
        lambda f: setattr(f.clients["stop"], "action_error", "NotImplementedError: no"),
        lambda f: setattr(f.clients["stop"], "exit_seconds", None),
        lambda f: setattr(f.clients["stop"], "container_running_after", True),
        lambda f: setattr(f.clients["stop"].run, "status", "stopping"),
        lambda f: f.clients["stop"].run.notes.update({"long_stop.ended": note(5.0)}),
    ],
    "interrupt": [
        lambda f: setattr(f.clients["interrupt"], "container_running_after", True),
        lambda f: setattr(f.clients["interrupt"].run, "status", "running"),
        lambda f: setattr(f.clients["interrupt"], "exit_seconds", None),
    ],
    "nothing_left_behind": [
        lambda f: setattr(f, "leftovers", ["zen_step (exited)"]),
    ],
    "fetch_status": [
        lambda f: f.fetched.__setitem__(0, (f.fetched[0][0], f.fetched[0][1],
                                            "NotImplementedError: not implemented")),
        lambda f: f.fetched.__setitem__(1, (f.fetched[1][0], f.fetched[1][1],
                                            ("completed", {"long_step": "running"}))),
        lambda f: f.fetched.__setitem__(2, (f.fetched[2][0], f.fetched[2][1],
                                            ("stopped", {"long_step": "failed"}))),
    ],
}


def test_every_property_has_breakers():
    assert set(BREAKERS) == set(PROPERTY_KEYS)


@pytest.mark.parametrize("key,index", [(key, i) for key, ways in BREAKERS.items()
                                       for i in range(len(ways))])
def test_each_judge_fails_when_its_property_is_broken(key, index):
    result = verdict(breaking(BREAKERS[key][index]), key)
    assert result.passed is False, result.detail
    assert result.detail


def test_a_sequential_orchestrator_passes_the_modes_it_honours():
    """Nothing ran next to the failure: nothing had to be stopped, and the verdict says so."""
    facts = good_facts()
    for mode in ("fail_fast", "stop_on_failure"):
        run = facts.runs[mode]
        run.notes["slow.started"] = note(-3.0)
        run.notes["slow.ended"] = note(-1.0)  # slow ran (and ended) before fail_soon
        run.steps["slow"] = "completed"
    for key in ("mode_fail_fast", "mode_stop_on_failure"):
        result = verdict(facts, key)
        assert result.passed and "nothing" in result.detail, result.detail


def test_a_probe_released_from_waiting_in_vain_is_named_in_the_parallel_verdict():
    facts = good_facts()
    facts.runs["shape"].notes.update({"branch_a.alone": note(20.0), "branch_a.ended": note(21.0),
                                      "branch_b.started": note(24.0, "b" * 64),
                                      "branch_b.ended": note(25.0, "b" * 64)})
    found = verdict(facts, "parallel")
    assert found.passed is False
    assert "started 3.0 s after the first ended" in found.detail, found.detail
    assert "branch_a stopped waiting when its sibling still had no container 20 s" \
        in found.detail, found.detail


def test_the_kit_reads_zenml_entrypoint_options_in_both_spellings():
    from orchestrator.conformance.notes import _option

    words = ["python", "-m", "zenml.entrypoints.entrypoint", "--snapshot_id", "s1",
             "--step_name=branch_b"]
    assert _option(words, "--snapshot_id") == "s1"
    assert _option(words, "--step_name") == "branch_b"
    assert _option(words, "--run_name") is None
    assert _option(["--snapshot_id"], "--snapshot_id") is None  # no value: cannot tell


def test_a_waiting_probe_is_released_only_when_its_sibling_has_no_live_container():
    from orchestrator.conformance.notes import sibling_has_container

    zenml = ["python", "-m", "zenml.entrypoints.entrypoint", "--entrypoint_config_source", "x"]
    waiter = {"Config": {"Entrypoint": zenml[:3], "Cmd": zenml[3:] + [
        "--snapshot_id", "s1", "--step_name", "branch_a"]}}

    def listed(step, state, snapshot="s1"):
        return {"Command": " ".join(zenml + ["--snapshot_id", snapshot, "--step_name", step]),
                "State": state}

    for state in ("created", "running", "paused", "restarting"):  # a parallel orchestrator's
        assert sibling_has_container(waiter, [listed("branch_b", state)], "branch_b") is True
    assert sibling_has_container(waiter, [], "branch_b") is False  # a sequential one
    assert sibling_has_container(waiter, [listed("branch_b", "exited")], "branch_b") is False
    assert sibling_has_container(waiter, [listed("victim", "running")], "branch_b") is False
    assert sibling_has_container(  # another run's branch_b (another battery at the same time)
        waiter, [listed("branch_b", "running", snapshot="s2")], "branch_b") is False
    unknown = {"Config": {"Entrypoint": ["sh", "-c"], "Cmd": ["python my_runner.py"]}}
    assert sibling_has_container(unknown, [], "branch_b") is None  # cannot tell: waits in full


def test_report_round_trips_and_renders():
    verdicts = judge(good_facts(), ["parallel", "labels"])
    report = Report(stack="s", flavor="f", verdicts=verdicts, seconds=12.3,
                    run_seconds={"shape": 4.0}, runs={"shape": {"notes": {}, "steps": {}}})
    again = Report.from_json(report.to_json())
    assert again.verdicts == report.verdicts and again.runs == report.runs
    assert again.checked == ["labels", "parallel"] and again.all_passed
    assert "pass" in report.text() and "labels" in reports_text([report, again])
    assert "<table" in reports_html([report]) and "notebook 4" in reports_html([report])


def test_a_report_saved_for_a_source_comes_back_only_for_that_very_source(tmp_path, monkeypatch):
    from orchestrator.conformance.saved import report_key, save_report, saved_report

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    report = Report(stack="my_orchestrator_stack", flavor="my_orchestrator", seconds=12.0,
                    verdicts=judge(good_facts(), list(PROPERTY_KEYS)))
    source = "class MyOrchestrator: ...\n"
    assert saved_report(source) is None
    path = save_report(source, report)
    assert path.parent == tmp_path / "my-docker" / "conformance"
    again = saved_report(source)
    assert again is not None and again.all_passed and again.checked == list(PROPERTY_KEYS)
    assert saved_report(source + "# changed\n") is None  # the reader changed the file
    assert report_key(source) != report_key(source + " ")
    path.write_text("{not json")
    assert saved_report(source) is None  # unreadable: the battery runs again
    failed = Report(stack="my_orchestrator_stack", flavor="my_orchestrator", seconds=12.0,
                    verdicts=judge(good_facts(), list(PROPERTY_KEYS)))
    failed.verdicts["stop"] = Verdict("stop", False, "the client timed out (a loaded machine)")
    assert save_report(source, failed) is None  # a failure is worth a new battery: not kept
    assert saved_report(source) is None


def test_unknown_property_is_refused():
    from orchestrator.conformance import run_conformance

    with pytest.raises(ValueError, match="Unknown propert"):
        run_conformance("whatever", ["no_such_property"])


def test_command_line_says_what_is_wrong(project_dir):
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator.conformance", "--stack", "no_such_stack"],
        capture_output=True, text=True, cwd=project_dir, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "No stack named 'no_such_stack'" in result.stderr


@pytest.mark.engine
def test_command_line_needs_a_project(tmp_path):
    import os

    environment = dict(os.environ, ZENML_CONFIG_PATH=str(tmp_path / "config"))
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator.conformance", "--stack", "default"],
        capture_output=True, text=True, cwd=tmp_path, env=environment, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "zenml init" in result.stderr


# --------------------------------------------------------------------------
# Real batteries (Docker, ZenML), all at once
# --------------------------------------------------------------------------

# piece made wrong -> (its wrong source, the property that must catch it)
WRONG_PIECES = {
    "ready_steps": ('''
def ready_steps(upstreams, states, max_parallelism):
    if any(state == "running" for state in states.values()):
        return []  # one at a time, whatever the cap
    return [s for s in upstreams if states[s] == "pending"
            and all(states[u] == "completed" for u in upstreams[s])][:1]
''', "parallel"),
    "retry_delay": ('''
def retry_delay(retry, failed_attempt):
    return None  # never retries
''', "retry_killed"),
    "resource_limits": ('''
def resource_limits(resources):
    return {}  # ignores ResourceSettings
''', "resource_limits"),
    "after_failure": ('''
def after_failure(mode, failed, upstreams, states):
    return [], [s for s in upstreams if states[s] == "pending"]  # stops nothing, even in FAIL_FAST
''', "mode_fail_fast"),
    "stop_containers": ('''
def stop_containers(client, label, graceful, grace_seconds):
    return 0  # stops nothing
''', "stop"),
    "container_labels": ('''
def container_labels(run, step_name, attempt):
    return {"my-orchestrator.step": step_name}  # not the package's schema
''', "labels"),
}


def _register(client, module, project_dir, text):
    from zenml.enums import StackComponentType as T

    (project_dir / f"{module}.py").write_text(text.replace('return "my_orchestrator"',
                                                           f'return "{module}"'))
    client.create_flavor(source=f"{module}.MyOrchestratorFlavor", component_type=T.ORCHESTRATOR)
    client.create_stack_component(module, module, T.ORCHESTRATOR, {})
    client.create_stack(module, components={T.ORCHESTRATOR: module, T.ARTIFACT_STORE: "default"})


@pytest.fixture(scope="module")
def batteries(project_dir, parent_image):
    """One battery per wrong piece, each checking its property, all at once: stack -> report."""
    from zenml.client import Client

    from orchestrator.conformance import run_conformance_many
    from orchestrator.teaching.assembly import reference_file

    client = Client()
    modules, wanted = [], {}
    for piece, (source, key) in WRONG_PIECES.items():
        module = f"reader_wrong_{piece}"
        modules.append(module)
        _register(client, module, project_dir, reference_file(6, wrong={piece: source.strip()}))
        wanted[module] = [key]
    try:
        reports = run_conformance_many(list(wanted), wanted, timeout=1800)
        yield {report.stack: report for report in reports}
    finally:
        for module in modules:
            (project_dir / f"{module}.py").unlink(missing_ok=True)


@pytest.mark.parametrize("piece", sorted(WRONG_PIECES))
def test_one_wrong_piece_fails_its_property(batteries, piece):
    report = batteries[f"reader_wrong_{piece}"]
    key = WRONG_PIECES[piece][1]
    assert report.checked == [key], report.text()
    assert report.failed == [key], report.text()
    if key == "parallel":  # one step at a time: the kit did not let the probe wait in vain
        assert "still had no container" in report.verdicts[key].detail, report.text()


# --------------------------------------------------------------------------
# The kit's processes end with the process that started them
# --------------------------------------------------------------------------

STARTER = """
import time
from orchestrator.conformance import start_conformance_many
start_conformance_many(["my_stack"], ["stop"])
time.sleep(900)
"""


def _family(pid):
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _wait_for_child_run(starter, docker_client, timeout=400.0):
    """The battery's process and all below the starter, once the child run has a container.

    Before its step starts (and writes the note the battery acts on): the
    battery has not stopped the run yet.
    """
    import time

    import psutil

    def command_line(process):  # a short-lived process may end between listing and reading
        try:
            return process.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return []

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        family = _family(starter.pid)
        battery = [p for p in family if "--stack" in command_line(p)]
        child = [p for p in family if "orchestrator.conformance.child" in command_line(p)]
        if battery and child and docker_client.containers.list(
                all=True, ignore_removed=True,
                filters={"label": f"io.my-docker.client-pid={child[0].pid}"}):
            return battery[0], _family(starter.pid)
        assert starter.poll() is None, "the starter ended early"
        time.sleep(0.2)
    raise AssertionError("the battery's child run did not create its container")


def _assert_all_gone(family, docker_client, timeout=240.0):
    """Every process of `family` ends, and no container any of them started is left."""
    import time

    import psutil

    def running(process):  # a killed process its parent has not reaped yet has ended
        try:
            return process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + timeout
    while any(running(p) for p in family) and time.monotonic() < deadline:
        time.sleep(1)
    alive = [p for p in family if running(p)]
    assert not alive, f"still running: {[' '.join(p.cmdline())[:120] for p in alive]}"
    time.sleep(5)  # a container created at the last moment shows up
    pids = {str(p.pid) for p in family}
    left = [c.name for c in docker_client.containers.list(ignore_removed=True, all=True)
            if (c.labels or {}).get("io.my-docker.client-pid") in pids]
    assert not left, f"containers of the battery's runs left behind: {left}"


@pytest.mark.usefixtures("parent_image")
def test_a_battery_ends_with_whoever_started_it(project_dir, docker_client):
    """SIGKILL leaves no cleanup to the killed process: what it started ends by itself.

    A notebook's kernel that runs batteries in the background may be killed
    (Jupyter kills a kernel that does not shut down, with its process group),
    and a battery may be killed (its time ran out). Once a battery's child run
    had outlived both, with its step container, for the ten minutes of its
    long step.
    """
    import signal

    # the kernel killed: its battery stops its child run and removes the containers
    starter = subprocess.Popen([sys.executable, "-c", STARTER], cwd=project_dir)
    try:
        _battery, family = _wait_for_child_run(starter, docker_client)
        starter.send_signal(signal.SIGKILL)
        starter.wait()
        _assert_all_gone(family, docker_client)
    finally:
        if starter.poll() is None:
            starter.kill()
    # the battery killed: its child run interrupts itself and removes its containers
    starter = subprocess.Popen([sys.executable, "-c", STARTER], cwd=project_dir)
    try:
        battery, family = _wait_for_child_run(starter, docker_client)
        battery.send_signal(signal.SIGKILL)
        _assert_all_gone(family, docker_client)
    finally:
        starter.kill()
        starter.wait()
